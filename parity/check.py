"""The self-check every conversion ends with: how close two models' logits must be, and whether an example can tell.

Both directions of the converter (``convert_module``, ``convert_keras_model``, the ``.pt2``
route and ``python -m parity convert``) run the user's model and the converted one on the
same inputs and accept the conversion only when every logit agrees within

    ATOL + RTOL * max|reference logits| + ROUNDING_FACTOR * gap64

float32 rounding grows with the logits' magnitude (an LSTM whose logits reach 9 differs by
about 5e-5 between two correct float32 implementations), so a fixed 1e-5 refuses correct
conversions of trained models; ``ATOL`` keeps the allowance from vanishing when the logits
are near zero.  How much a recurrence amplifies rounding depends on its weights, not only
on the logits' size: a 2 x LSTM(128) with large weights and logits near 5 has torch's own
float32 logits 5.6e-5 away from its float64 ones, beyond ``ATOL + RTOL * 5``.  So the torch
side is also run in float64 (:func:`float64_gap`), and a conversion may differ by up to
``ROUNDING_FACTOR`` times the gap between torch's own float32 and float64 logits: a correct
conversion rounds differently, not worse.  A wrong one (another readout, gate order, bias)
differs by far more than the rounding, which stays small unless the model is chaotic, and a
model whose float32 logits are far from their float64 value (:data:`MAX_GAP64`) is refused:
no check could tell an error from its rounding.  ``docs/convert.md`` lists the measurements.

An example that cannot tell two different models apart checks nothing: a single time
step makes ``h_n``, ``out[:, -1]``, ``out[:, 0]`` and every pooling over time the same
value.  :func:`check_example` refuses such examples with a line that says what is missing.
"""
from __future__ import annotations

import math

import numpy as np

from common.errors import ConversionError

__all__ = ["ATOL", "RTOL", "ROUNDING_FACTOR", "MAX_GAP64", "allowance", "float64_gap", "describe_allowance", "max_abs_diff", "describe_difference",
           "within", "check_example", "check_timesteps"]

ATOL = 1e-5  # the floor: logits near zero still get float32's absolute rounding
RTOL = 1e-5  # per unit of the reference logits' largest magnitude (about 84 float32 ulps)
ROUNDING_FACTOR = 4  # times torch's own |float32 - float64| logits: a correct conversion rounds differently
MAX_GAP64 = 1e-3  # per unit of scale (at least 1): beyond it float32 rounding hides conversion errors


def _scale(reference) -> float:
    ref = np.asarray(reference, dtype=np.float64)
    finite = ref[np.isfinite(ref)]
    return float(np.max(np.abs(finite))) if finite.size else 0.0


def allowance(reference, atol: float = ATOL, rtol: float = RTOL, gap64: float = 0.0) -> float:
    """The largest |Δ logit| accepted against ``reference``: ``atol + rtol * max|reference| + 4 * gap64``."""
    return atol + rtol * _scale(reference) + ROUNDING_FACTOR * gap64


def describe_allowance(reference, atol: float = ATOL, rtol: float = RTOL, gap64: float = 0.0) -> str:
    """``"the float32 allowance 1e-05 + 1e-05 × 9.13 (the logits' largest magnitude) = 1.01e-04"``."""
    scale = _scale(reference)
    measured = (f" + {ROUNDING_FACTOR} × {gap64:.2e} (torch's own float32 rounding, measured against float64)"
                if gap64 > 0 else "")
    return (f"the float32 allowance {atol:.0e} + {rtol:.0e} × {scale:.3g} (the logits' largest magnitude)"
            f"{measured} = {allowance(reference, atol, rtol, gap64):.2e}")


def float64_gap(torch_module, x, reference) -> float:
    """Largest |float32 - float64| of ``torch_module``'s logits on ``x``: its own float32 rounding, measured.

    ``reference`` is the module's float32 output on ``x``.  The module is copied and run in
    float64 (token ids stay integers); a forward that cannot run in float64 (one that makes
    float32 tensors of its own, e.g. an explicit ``torch.zeros`` initial state) gives 0, so only
    ``ATOL`` and ``RTOL`` apply.  ConversionError when the gap exceeds ``MAX_GAP64``.
    """
    import copy

    import torch
    try:
        double = copy.deepcopy(torch_module).double().eval()
        xt = torch.as_tensor(np.ascontiguousarray(x))
        with torch.no_grad():
            out = double(xt.double() if xt.is_floating_point() else xt)
        gap = max_abs_diff(np.asarray(reference, dtype=np.float64), out.numpy())
    except Exception:  # the float64 run is an estimate; without it the fixed allowance still holds
        return 0.0
    if not math.isfinite(gap):
        return 0.0
    scale = max(1.0, _scale(reference))
    if gap > MAX_GAP64 * scale:
        raise ConversionError(f"the torch model's own float32 logits differ from its float64 logits by {gap:.2e} on "
                              f"example_x: its recurrence amplifies rounding so much that no check can tell a "
                              f"conversion error from it; check the weights (are they trained or scaled?)")
    return gap


def max_abs_diff(a, b) -> float:
    """Largest |a - b|; inf when the shapes differ, nan when either holds a nan."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return math.inf
    with np.errstate(all="ignore"):  # inf - inf is nan, said by the value rather than a RuntimeWarning
        return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def describe_difference(diff: float) -> str:
    """``"differ by up to 3.1e-02"``; a nan (a non-finite logit on one side) said in words."""
    if math.isnan(diff):
        return "are not comparable: one of them holds a nan or infinite logit"
    if math.isinf(diff):
        return "have different shapes"
    return f"differ by up to {diff:.2e}"


def within(diff: float, reference, atol: float = ATOL, rtol: float = RTOL, gap64: float = 0.0) -> bool:
    """True when ``diff`` (from :func:`max_abs_diff`) is inside the allowance; never for nan or inf."""
    return math.isfinite(diff) and diff <= allowance(reference, atol, rtol, gap64)


def check_timesteps(timesteps, example_steps: int | None) -> int | None:
    """``timesteps`` validated: None, or a positive int equal to example_x's number of steps."""
    if timesteps is None:
        return None
    if isinstance(timesteps, bool) or not isinstance(timesteps, (int, np.integer)):
        raise ConversionError(f"timesteps must be a positive whole number of steps or None, got {timesteps!r}")
    if timesteps <= 0:
        raise ConversionError(f"timesteps must be a positive whole number of steps or None, got {timesteps}")
    if example_steps is not None and int(timesteps) != example_steps:
        raise ConversionError(f"timesteps={int(timesteps)} but example_x has {example_steps} steps; pass example "
                              f"sequences of the declared length (or timesteps=None for any length)")
    return int(timesteps)


def check_example(x, recurrent: bool = True) -> None:
    """Refuse an example that cannot tell apart models that differ on other inputs.

    ``x`` is the example as the model reads it: ``(batch, time, features)`` floats or
    ``(batch, time)`` token ids (batch-first; a time-major model's caller passes it
    transposed).  A recurrent model needs at least two time steps, and the batch must hold
    at least two different sequences (one repeated sequence cannot show a batch-axis mix-up).
    """
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ConversionError(f"example_x has shape {tuple(x.shape)}; the check needs a batch of sequences")
    if recurrent and x.shape[1] < 2:
        raise ConversionError("example_x has one time step: h_n, out[:, -1], out[:, 0] and any pooling over time "
                              "all agree on it, so the check could not tell them apart; pass a full-length batch")
    if x.shape[0] >= 2 and all(np.array_equal(x[0], x[i]) for i in range(1, x.shape[0])):
        raise ConversionError("example_x repeats one sequence: the check could not see a mix-up between "
                              "examples; pass a batch of different sequences")
    if x.shape[0] < 2:
        raise ConversionError("example_x holds one sequence: the check could not see a mix-up between examples; "
                              "pass a batch of at least two different sequences")
