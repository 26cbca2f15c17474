"""Run the zoo through the converters, and judge each result on inputs the converter never saw.

:func:`run` converts one zoo model in its author's direction (torch -> Keras with
``parity.from_torch.convert_module``, Keras -> torch with ``parity.from_keras.convert_keras_model``)
and, when that works, back again (the round trip).  A converter checks itself on the example
it is given; this harness checks the result independently, on a *held-out* batch
(:func:`held_out`: the example's tokens or time steps shuffled into new sequences), against
the author's own object, with the project's allowance (:func:`parity.check.within`).  So a
conversion that agrees on its example but computes something else is caught and reported
as "accepted wrong".

An :class:`Outcome` records what happened:

* ``converted``: the result agrees with the author's model on the held-out batch;
* ``refused``: the converter raised a ``UserError``; ``message`` is its line (``one_line``
  says whether it really was one line);
* ``accepted wrong``: the converter returned a model that differs on the held-out batch;
* ``error``: anything else escaped (a converter bug: a traceback instead of one line).

Shared by ``tests/test_convert_zoo.py`` and ``benchmarks/convert_zoo.py``.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from tests.zoo import load

ARROW = {"torch": "torch → Keras", "keras": "Keras → torch"}


@dataclass
class Step:
    """One conversion: its status, the held-out |Δ| and allowance, or the refusal's line."""
    status: str  # converted | refused | accepted wrong | error | not run
    diff: float | None = None
    allowance: float | None = None
    message: str = ""
    seconds: float = 0.0

    @property
    def one_line(self) -> bool:
        return bool(self.message.strip()) and "\n" not in self.message.strip()


@dataclass
class Outcome:
    name: str
    framework: str
    expect: str
    source: str
    forward: Step                      # the author's direction
    back: Step = field(default_factory=lambda: Step("not run"))  # the round trip, when forward converted
    cli: Step | None = None            # the command line on the .pt2 (torch models; see run_pt2)
    converted: object = None           # the converted model (the forward direction's result)

    @property
    def direction(self) -> str:
        return ARROW[self.framework]


def held_out(x: np.ndarray, seed: int = 1) -> np.ndarray:
    """A batch the converter never saw, of the example's shape and kind.

    Token ids (2-D integers): the example's ids shuffled over the whole batch, so every id is
    one the model accepts and every sequence is new.  Float sequences (3-D): the example's
    feature vectors (rows of one-hot letters included) shuffled over batch and time.
    """
    rng = np.random.default_rng(seed)
    if x.ndim == 2:
        return rng.permutation(x.reshape(-1)).reshape(x.shape)
    flat = x.reshape(-1, x.shape[-1])
    return flat[rng.permutation(flat.shape[0])].reshape(x.shape)


def batch_first(module, x: np.ndarray) -> np.ndarray:
    """``x`` as a Keras model reads it: a time-major torch module's input swapped to (batch, time, ...)."""
    return np.ascontiguousarray(np.swapaxes(x, 0, 1)) if getattr(module, "TIME_MAJOR", False) else x


def torch_logits(model, x: np.ndarray) -> np.ndarray:
    import torch
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x))).detach().numpy()


def keras_logits(model, x: np.ndarray) -> np.ndarray:
    import keras
    return np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))


def _judge(reference: np.ndarray, got: np.ndarray, seconds: float) -> Step:
    from parity.check import allowance, max_abs_diff, within
    diff = max_abs_diff(got, reference)
    status = "converted" if within(diff, reference) else "accepted wrong"
    return Step(status, diff, allowance(reference), seconds=seconds)


def _attempt(convert) -> tuple[object, Step | None]:
    """Run ``convert()``; (result, None), or (None, the refusal or the error as a Step)."""
    from common.errors import UserError
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # UnusedParameterWarning and Keras's input_shape advice
            return convert(), None
    except UserError as e:
        return None, Step("refused", message=str(e), seconds=time.perf_counter() - start)
    except Exception as e:  # noqa: BLE001 - anything else is a converter bug, recorded as such
        text = f"{type(e).__name__}: {e}"
        return None, Step("error", message=text, seconds=time.perf_counter() - start)


def run(name: str, round_trip: bool = True) -> Outcome:
    """Convert zoo model ``name`` in its author's direction and, when that works, back; judge both."""
    from parity.from_keras import convert_keras_model
    from parity.from_torch import convert_module
    zoo = load(name)
    model, x = zoo.make()
    unseen = zoo.held_out(x) if hasattr(zoo, "held_out") else held_out(x)
    outcome = Outcome(name, zoo.FRAMEWORK, zoo.EXPECT, zoo.SOURCE, Step("not run"))
    start = time.perf_counter()
    if zoo.FRAMEWORK == "torch":
        keras_model, failed = _attempt(lambda: convert_module(model, x))
        if failed:
            outcome.forward = failed
            return outcome
        reference = torch_logits(model, unseen)  # after: a refused forward may not run on one input
        outcome.converted = keras_model
        outcome.forward = _judge(reference, keras_logits(keras_model, batch_first(zoo, unseen)),
                                 time.perf_counter() - start)
        if round_trip:
            start = time.perf_counter()
            module, failed = _attempt(lambda: convert_keras_model(keras_model, batch_first(zoo, x)))
            outcome.back = failed or _judge(reference, torch_logits(module, batch_first(zoo, unseen)),
                                            time.perf_counter() - start)
    else:
        reference = keras_logits(model, unseen)
        module, failed = _attempt(lambda: convert_keras_model(model, x))
        if failed:
            outcome.forward = failed
            return outcome
        outcome.converted = module
        outcome.forward = _judge(reference, torch_logits(module, unseen), time.perf_counter() - start)
        if round_trip:
            start = time.perf_counter()
            keras_again, failed = _attempt(lambda: convert_module(module, x))
            outcome.back = failed or _judge(reference, keras_logits(keras_again, unseen), time.perf_counter() - start)
    return outcome



def run_pt2(name: str, folder) -> Step:
    """The command line on zoo model ``name`` saved as a ``.pt2``: ``python -m parity convert NAME.pt2 NAME.keras``.

    The ``.pt2`` is what the issue tells a user to write, ``torch.export.save(torch.export.export(model,
    (x,)), path)``.  The command runs in this process (its ``main`` under ``run_cli``, as
    ``python -m parity`` runs it), so its exit status and its lines are the user's.  Exit 0: the
    written ``.keras``, loaded with ``safe_mode=True``, is judged on the held-out batch against
    the author's module; exit 2: "refused" with the command's line; anything else: "error".
    A forward that ``torch.export`` itself cannot export (no ``.pt2`` can exist) is "not run".
    """
    import contextlib
    import io
    import os
    import sys
    from pathlib import Path

    import keras
    import torch

    zoo = load(name)
    model, x = zoo.make()
    unseen = zoo.held_out(x) if hasattr(zoo, "held_out") else held_out(x)
    src, dst = Path(folder) / f"{name}.pt2", Path(folder) / f"{name}.keras"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.export.save(torch.export.export(model, (torch.from_numpy(x),)), src)
    except Exception as e:  # noqa: BLE001 - the user could not have made the file
        return Step("not run", message=f"torch.export cannot export it: {type(e).__name__}: {str(e).splitlines()[0]}")
    from common.cli import run_cli
    from parity.__main__ import PROG, main
    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, [PROG, "convert", "--backend", os.environ["KERAS_BACKEND"], str(src), str(dst)]
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            status = run_cli(main, PROG)
    finally:
        sys.argv = argv
    seconds = time.perf_counter() - start
    said = err.getvalue().strip()
    if status == 2:
        return Step("refused", message=said, seconds=seconds)
    if status != 0:
        return Step("error", message=f"exit status {status}: {said}", seconds=seconds)
    written = keras.models.load_model(dst, safe_mode=True)
    return _judge(torch_logits(model, unseen), keras_logits(written, batch_first(zoo, unseen)), seconds)
