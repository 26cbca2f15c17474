"""Parity between the PyTorch and Keras versions of the stacked RNN: weight transfer and lockstep training.

``import parity`` imports neither torch nor keras; each name is loaded on first
use, so a caller can still choose ``KERAS_BACKEND`` after importing the package.

* :func:`torch_to_keras`, :func:`keras_to_torch`: copy weights in place (``parity.weights``).
* :func:`torch_to_keras_arrays`, :func:`keras_to_torch_arrays`: the same mapping,
  returned as NumPy arrays instead of assigned (also for gradients).
* :func:`convert_file`: a model file to another (``python -m parity convert SRC DST``;
  ``parity.convert_command``).
* :func:`convert_module`, :func:`convert_exported`: a torch module, or a ``torch.export``
  program, to a Keras model read off its traced forward (``parity.from_torch``);
  :func:`convert_keras_model`: a Keras model to a torch module read off its functional graph
  (``parity.from_keras``).  Each is checked against the user's own object on an example batch.
* :func:`check_equivalent`: per paired layer, how far the outputs of a torch model
  and a Keras model lie apart (``parity.equivalence``); ``parity.testing.assert_equivalent``
  makes it a test assertion.
* ``parity.lockstep``: bias alignment, equivalent Adam settings, per-step training
  and drift measurement (imports keras: set the backend first).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "torch_to_keras": "parity.weights",
    "keras_to_torch": "parity.weights",
    "torch_to_keras_arrays": "parity.weights",
    "keras_to_torch_arrays": "parity.weights",
    "convert_file": "parity.convert_command",
    "convert_module": "parity.from_torch",
    "convert_exported": "parity.from_torch",
    "convert_keras_model": "parity.from_keras",
    "check_equivalent": "parity.equivalence",
    "align_torch_for_lockstep": "parity.lockstep",
    "TorchAdam": "parity.lockstep",
    "keras_adam_like_torch": "parity.lockstep",
    "torch_adam_like_keras": "parity.lockstep",
    "keras_gradients": "parity.lockstep",
    "compile_for_lockstep": "parity.lockstep",
    "keras_train_step": "parity.lockstep",
    "torch_train_step": "parity.lockstep",
    "param_drift": "parity.lockstep",
    "run_lockstep": "parity.lockstep",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'parity' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
