"""An assertion for test suites: the PyTorch and Keras versions of a model compute the same thing.

    from parity.testing import assert_equivalent

    def test_keras_port_matches_torch():
        assert_equivalent(torch_model, keras_model, x, atol=1e-5)

Imports neither torch nor keras until it is called, so a test suite can still
choose ``KERAS_BACKEND`` (e.g. in ``conftest.py``) after importing it.
"""
from __future__ import annotations

from common.errors import ConversionError

__all__ = ["assert_equivalent"]


def assert_equivalent(torch_model, keras_model, x, atol: float = 1e-5, *, rtol: float = 0.0, y=None,
                      gradients: bool = False):
    """Raise ``AssertionError`` unless every paired layer's output, the logits and (with
    ``gradients=True`` and labels ``y``) every weight's loss gradient agree within
    ``atol + rtol * max |torch value|``.

    The layers are paired from each model's own computation (see :mod:`parity.equivalence`).
    The message names the first layer that differs (torch and Keras names), its index in
    the pairing, the difference and the allowance, followed by the whole report; models that
    cannot be paired fail with the one layer that has no counterpart.  Returns the
    :class:`parity.equivalence.EquivalenceReport`.

    Arguments of the wrong kind or order raise ``TypeError``, and so does a tolerance that is
    not a number (``atol=True`` included); a tolerance that is not finite and non-negative
    raises ``ValueError``.  An ``x`` or ``y`` that does not fit the models (rank, width, time
    steps, token dtype or range, nan or inf; labels of the wrong length, not integers or out of
    range) raises :class:`common.errors.ShapeError` or :class:`~common.errors.ConfigError`, in
    one line that blames the input, before either model runs.
    """
    from parity.equivalence import check_arguments, check_equivalent, check_tolerance
    __tracebackhide__ = True  # pytest shows the caller's line
    atol, rtol = check_tolerance("atol", atol), check_tolerance("rtol", rtol)
    x, y = check_arguments(torch_model, keras_model, x, "assert_equivalent", y)
    try:
        report = check_equivalent(torch_model, keras_model, x, y, gradients=gradients)
    except ConversionError as e:
        raise AssertionError(f"the models cannot be paired layer by layer: {e}") from None
    failure = report.first_failure(atol, rtol)
    if failure is not None:
        raise AssertionError(f"{failure}\n{report}")
    return report
