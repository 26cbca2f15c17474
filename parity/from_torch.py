"""Convert a torch model to Keras from its own forward, and check the result against it.

* :func:`convert_module` takes a live ``nn.Module`` and an example batch;
* :func:`convert_exported` takes a ``torch.export.ExportedProgram`` (what
  ``torch.export.load`` reads from a ``.pt2`` file) and, by default, the example
  inputs the program carries.

Both trace the forward (:mod:`parity.torch_graph`: ``torch.export``, one tracer for
live modules and ``.pt2`` files, whose nodes carry the module path and source line),
map it node by node onto a Keras functional model (:mod:`parity.keras_from_graph`),
run the user's object and the converted model on the example, and return the model
only when every logit agrees within :func:`parity.check.within` (``ATOL + RTOL ×
max|logits|``).  Otherwise :class:`common.errors.ConversionError` says by how much
they differ, the allowance, and the first node whose Keras value differs.

What the result is:

* a ``keras.Model`` built from standard layers and ``keras.ops`` calls; it saves to
  ``.keras`` and loads back with ``keras.models.load_model(path, safe_mode=True)``;
* its input is always batch-first, ``(batch, time, features)`` floats or
  ``(batch, time)`` int32 token ids, with the time length fixed to the example's:
  a time-major module's input is passed to Keras transposed;
* ``nn.Embedding``'s ``padding_idx`` (and ``scale_grad_by_freq``, ``sparse``) change
  only the gradients, so ``layers.Embedding`` computes the same forward without them;
* dropout (``nn.Dropout`` and an RNN's ``dropout`` between layers) is the identity at
  inference, and the Keras model has none;
* parameters the forward never reads are left out: a :class:`UnusedParameterWarning`
  names them in one line, and ``model.unused_parameters`` lists them (an empty tuple
  when there are none).

``readout`` and ``nonlinearity`` are checks, not choices: the forward decides.  Given,
they must agree with what the traced forward does, or the call is refused with a line
saying what it does.  The converter works in float32: a float64 (or half) module is
refused with the cast to apply.
"""
from __future__ import annotations

import warnings

import numpy as np

from common.errors import ConversionError
from parity.check import (check_example, check_timesteps, describe_allowance, describe_difference, float64_gap,
                          max_abs_diff, within)

__all__ = ["convert_module", "convert_exported", "forward_readouts", "UnusedParameterWarning", "READOUT_MEANINGS"]

# What ``readout=`` can check, and how a refusal says it.
READOUT_MEANINGS = {
    "h_n": "the final states h_n",
    "last-output": "out[:, -1], the outputs at the last time step",
    "first-output": "out[:, 0], the outputs at the first time step",
    "mean": "the mean of the outputs over time",
    "max": "the max of the outputs over time",
    "sum": "the sum of the outputs over time",
    "other": "the outputs through other operations",
}
_READOUT_ALIASES = {"last-step": "last-output"}


class UnusedParameterWarning(UserWarning):
    """The module owns parameters its forward never reads; the Keras model leaves them out."""


def convert_module(torch_module, example_x, *, readout: str | None = None, nonlinearity: str | None = None,
                   timesteps: int | None = None):
    """A Keras model computing what ``torch_module``'s forward computes, checked on ``example_x``.

    ``example_x``: the batch the module reads, ``(batch, time, features)`` floats or
    ``(batch, time)`` token ids, or time-major as the module expects it.  ``readout``
    (``"h_n"``, ``"last-output"``, ``"mean"``, ``"max"``, ``"sum"``) and ``nonlinearity``
    (nn.RNN's ``"tanh"`` or ``"relu"``) are checked against the forward; ``timesteps``,
    when given, must equal the example's length.  Keras must be importable with the
    chosen backend.
    """
    import torch
    from torch import nn
    if not isinstance(torch_module, nn.Module) or _is_keras_model(torch_module):
        raise TypeError(f"convert_module takes a torch nn.Module first, got {type(torch_module).__name__}"
                        + ("; for a Keras model use parity.convert_keras_model" if _is_keras_model(torch_module)
                           else ""))
    where = f"torch module {type(torch_module).__name__}"
    _check_precision(((n, p) for n, p in torch_module.state_dict().items()), where, "model.float()")
    readout = _check_readout_name(readout)
    _check_nonlinearity_name(nonlinearity)
    x = _example_tensor(example_x)
    was_training = torch_module.training
    try:
        reference = _run(torch_module.eval(), x, where)
        batch_axis = _batch_axis(x, reference, lambda xs: torch_module(xs), where)
        _check_steps(x, batch_axis, timesteps)
        from parity.torch_graph import read_exported, trace_module
        program = trace_module(torch_module, x)
    finally:
        torch_module.train(was_training)
    graph = read_exported(program, type(torch_module).__name__)
    gap64 = float64_gap(torch_module, x, reference)
    return _convert(graph, x, reference, batch_axis, where, readout=readout, nonlinearity=nonlinearity,
                    gap64=gap64)


def convert_exported(exported_program, example_inputs=None, *, timesteps: int | None = None):
    """A Keras model computing what ``exported_program`` computes, checked against ``exported_program.module()``.

    ``example_inputs``: a tensor or a one-element tuple; None uses the example inputs
    the program was exported with (``torch.export.save`` stores them in the ``.pt2``).
    """
    return convert_exported_batch_first(exported_program, example_inputs, timesteps=timesteps)[0]


def convert_exported_batch_first(exported_program, example_inputs=None, *, timesteps: int | None = None):
    """``(model, batch_axis)``: :func:`convert_exported`'s model and the axis of the program's input that
    holds the sequences (1 for a time-major forward); the Keras model reads them batch-first."""
    import torch
    if not isinstance(exported_program, torch.export.ExportedProgram):
        raise TypeError(f"convert_exported takes a torch.export.ExportedProgram, got "
                        f"{type(exported_program).__name__}")
    where = "the exported program"
    _check_precision(((n, p) for n, p in list(exported_program.state_dict.items())
                      + list(exported_program.constants.items()) if hasattr(p, "dtype")), where,
                     "model.float() before torch.export.export")
    if example_inputs is None:
        stored = exported_program.example_inputs
        if stored is None:
            raise ConversionError("the exported program carries no example inputs; pass example_inputs=(x,)")
        args, kwargs = stored
        if kwargs or len(args) != 1:
            raise ConversionError(f"the exported program takes {len(args)} positional and {len(kwargs)} keyword "
                                  "inputs; convert maps models with one input, the sequences")
        example_inputs = args[0]
    elif isinstance(example_inputs, (tuple, list)):
        if len(example_inputs) != 1:
            raise ConversionError(f"example_inputs holds {len(example_inputs)} inputs; convert maps models with "
                                  "one input, the sequences")
        example_inputs = example_inputs[0]
    x = _example_tensor(example_inputs)
    module = exported_program.module()
    reference = _run(module, x, where)
    batch_axis = _batch_axis(x, reference, module, where, exported_program)
    _check_steps(x, batch_axis, timesteps)
    from parity.torch_graph import read_exported
    graph = read_exported(exported_program)
    return _convert(graph, x, reference, batch_axis, where, gap64=float64_gap(module, x, reference)), batch_axis


# --- The shared steps ------------------------------------------------------------------------------

def _is_keras_model(obj) -> bool:
    import sys
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)


def _check_precision(named_tensors, where: str, cast: str) -> None:
    import torch
    for name, t in named_tensors:
        if t.is_floating_point() and t.dtype != torch.float32:
            dtype = str(t.dtype).removeprefix("torch.")
            raise ConversionError(f"{where} holds {dtype} parameters ({name!r}); the converter works in float32: "
                                  f"cast it with {cast} and pass float32 example inputs")


def _check_readout_name(readout):
    if readout is None:
        return None
    readout = _READOUT_ALIASES.get(readout, readout)
    if readout not in READOUT_MEANINGS or readout == "other":
        raise ConversionError(f"unknown readout {readout!r}; choose one of: "
                              f"{', '.join(r for r in READOUT_MEANINGS if r != 'other')}")
    return readout


def _check_nonlinearity_name(nonlinearity):
    if nonlinearity is not None and nonlinearity not in ("tanh", "relu"):
        raise ConversionError(f"unknown nonlinearity {nonlinearity!r}; choose one of: tanh, relu")


def _example_tensor(example_x):
    """``example_x`` as a torch tensor: float32 sequences or int64 token ids; finite."""
    import torch
    if isinstance(example_x, torch.Tensor):
        x = example_x.detach().cpu()
    elif hasattr(example_x, "shape") and hasattr(example_x, "dtype"):
        x = torch.from_numpy(np.array(example_x))
    else:
        raise TypeError(f"example_x must be an array or tensor of sequences, got {type(example_x).__name__}")
    if x.is_floating_point():
        if not torch.isfinite(x).all():
            raise ConversionError("example_x holds nan or infinite values; the check needs finite inputs")
        return x.to(torch.float32).contiguous()
    if x.dtype == torch.bool or x.is_complex():
        raise ConversionError(f"example_x is {str(x.dtype).removeprefix('torch.')}; pass float sequences or "
                              "integer token ids")
    return x.to(torch.int64).contiguous()


def _run(module, x, where: str) -> np.ndarray:
    import torch
    try:
        with torch.no_grad():
            out = module(x)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ConversionError(f"{where} could not run on example_x of shape {tuple(x.shape)} "
                              f"({type(e).__name__}: {first[:200]})") from None
    if not isinstance(out, torch.Tensor):
        raise ConversionError(f"{where} returns {type(out).__name__}; convert maps forwards that return the logits "
                              "alone, one tensor of shape (batch, ...)")
    out = out.detach().cpu()
    if out.ndim == 0:
        raise ConversionError(f"{where} returns a scalar; convert maps forwards that return (batch, ...) logits")
    values = out.to(torch.float32).numpy()
    if not np.isfinite(values).all():
        raise ConversionError(f"{where} returns nan or infinite logits on example_x; the check needs finite ones")
    return values


def _batch_axis(x, reference: np.ndarray, run, where: str, program=None) -> int:
    """Which axis of the example holds the sequences: the one whose size the logits' rows follow."""
    n = reference.shape[0]
    candidates = [d for d in range(min(2, x.ndim)) if x.shape[d] == n]
    if not candidates:
        raise ConversionError(f"{where} returns {n} rows of logits for example_x of shape {tuple(x.shape)}; "
                              "convert maps models that return one row per sequence")
    if len(candidates) == 1:
        return candidates[0]
    for d in candidates:  # as many sequences as steps: ask the model which axis is the batch
        try:
            import torch
            with torch.no_grad():
                rows = run(x.narrow(d, 0, n - 1)).shape[0]
        except Exception:
            continue
        if rows == n - 1:
            return d
    raise ConversionError(f"example_x has as many sequences as time steps ({n}), so the batch axis cannot be told "
                          "from the time axis; pass a batch of another size")


def _check_steps(x, batch_axis: int, timesteps) -> None:
    x_keras = np.moveaxis(x.numpy(), batch_axis, 0)
    check_example(x_keras)
    check_timesteps(timesteps, x_keras.shape[1])


def _convert(graph, x, reference, batch_axis: int, where: str, *, readout=None, nonlinearity=None, gap64=0.0):
    from common.quiet import import_tensorflow_quietly
    import_tensorflow_quietly()
    import keras
    from parity.keras_from_graph import RECURRENT_OPS, build_keras_model, first_difference
    from parity.torch_graph import op_name

    recurrent = [n for n in graph.nodes if n.op == "call_function" and op_name(n) in RECURRENT_OPS]
    if nonlinearity is not None:
        _check_nonlinearity(graph, recurrent, nonlinearity)
    if readout is not None:
        found = forward_readouts(graph, recurrent)
        if found != {readout}:
            said = " and ".join(READOUT_MEANINGS[r] for r in sorted(found)) if found else "no recurrent layer's outputs"
            raise ConversionError(f"readout={readout!r} but the forward reads {said}; drop readout= (the forward "
                                  "decides) or pass the module whose forward you mean")
    tokens = not x.is_floating_point()
    model, mapped, keras_input = build_keras_model(graph, batch_axis, "int32" if tokens else "float32")
    x_keras = np.ascontiguousarray(np.moveaxis(x.numpy(), batch_axis, 0))
    if tokens:
        x_keras = x_keras.astype(np.int32)
    got = np.asarray(keras.ops.convert_to_numpy(model.predict(x_keras, batch_size=len(x_keras), verbose=0)))
    diff = max_abs_diff(got, reference)
    if not within(diff, reference, gap64=gap64):
        first = first_difference(graph, mapped, keras_input, _torch_node_values(graph, x), x_keras, reference)
        raise ConversionError(f"the converted Keras model's logits and {where}'s {describe_difference(diff)} on "
                              f"example_x, beyond {describe_allowance(reference, gap64=gap64)}"
                              + (f"; {first}" if first else ""))
    unused = tuple(graph.unused_parameters())
    if unused:
        warnings.warn(UnusedParameterWarning(
            f"{where}'s forward never reads {', '.join(unused)}; the Keras model leaves "
            f"{'it' if len(unused) == 1 else 'them'} out"), stacklevel=3)
    model.unused_parameters = unused
    return model


def _check_nonlinearity(graph, recurrent, nonlinearity: str) -> None:
    from parity.torch_graph import describe_node, op_name
    rnns = [n for n in recurrent if op_name(n) in ("aten.rnn_tanh.input", "aten.rnn_relu.input")]
    if not rnns:
        if nonlinearity != "tanh":
            raise ConversionError(f"nonlinearity={nonlinearity!r} but the forward has no nn.RNN; its GRU and LSTM "
                                  "cells use tanh")
        return
    for n in rnns:
        own = "relu" if op_name(n) == "aten.rnn_relu.input" else "tanh"
        if own != nonlinearity:
            raise ConversionError(f"nonlinearity={nonlinearity!r} but the forward's nn.RNN uses {own!r}: "
                                  f"{describe_node(n, graph.root_name)}; drop nonlinearity= (the forward decides)")


def forward_readouts(graph, recurrent=None) -> set[str]:
    """What the forward reads from its last recurrent layer, as ``READOUT_MEANINGS`` keys."""
    from parity.keras_from_graph import RECURRENT_OPS
    from parity.torch_graph import op_name, tensor_shape
    if recurrent is None:
        recurrent = [n for n in graph.nodes if n.op == "call_function" and op_name(n) in RECURRENT_OPS]
    if not recurrent:
        return set()
    last = recurrent[-1]
    batch_first = last.args[8] if len(last.args) > 8 else last.kwargs.get("batch_first", False)
    found: set[str] = set()
    for item in last.users:
        if op_name(item) != "getitem" or not item.users:
            continue
        if item.args[1] != 0:
            found.add("h_n")
            continue
        shape = tensor_shape(item)
        found |= _reads_of_outputs(item, 1 if batch_first else 0, shape[1 if batch_first else 0])
    return found


_PASS_THROUGH = {"aten.contiguous.default", "aten.clone.default", "aten.alias.default", "aten.detach.default",
                 "aten.dropout.default", "aten._to_copy.default"}


def _reads_of_outputs(node, time_axis: int, steps: int) -> set[str]:
    from parity.torch_graph import op_name
    found: set[str] = set()
    for user in node.users:
        op = op_name(user)
        args = user.args
        if op in _PASS_THROUGH:
            found |= _reads_of_outputs(user, time_axis, steps)
        elif op in ("aten.transpose.int", "aten.permute.default"):
            ndim = len(user.args[0].meta["val"].shape)
            if op == "aten.transpose.int":
                perm = list(range(ndim))
                a, b = args[1] % ndim, args[2] % ndim
                perm[a], perm[b] = perm[b], perm[a]
            else:
                perm = [p % ndim for p in args[1]]
            found |= _reads_of_outputs(user, perm.index(time_axis), steps)
        elif op == "aten.select.int":
            ndim = len(args[0].meta["val"].shape)
            if args[1] % ndim != time_axis:
                found |= _reads_of_outputs(user, time_axis - (1 if args[1] % ndim < time_axis else 0), steps)
            else:
                index = args[2] % steps
                found.add("last-output" if index == steps - 1 else "first-output" if index == 0 else "other")
        elif op in ("aten.mean.dim", "aten.sum.dim_IntList", "aten.amax.default", "aten.max.dim",
                    "aten.avg_pool1d.default", "aten.max_pool1d.default", "aten.adaptive_max_pool1d.default",
                    "aten.adaptive_avg_pool1d.default"):
            ndim = len(args[0].meta["val"].shape)
            if "pool" in op:
                dims = [ndim - 1]
            else:
                dims = args[1] if len(args) > 1 else []
                dims = [dims] if isinstance(dims, int) else list(dims)
            if time_axis in [d % ndim for d in dims]:
                found.add("mean" if "mean" in op or "avg" in op else "sum" if "sum" in op else "max")
            else:
                found.add("other")
        else:
            found.add("other")
    return found


def _torch_node_values(graph, x) -> dict:
    """Every node's torch value on ``x`` (by node name), for the per-node check."""
    import torch
    import torch.fx

    values: dict = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if isinstance(out, torch.Tensor) and out.is_floating_point():
                values[n.name] = out.detach().cpu().numpy()
            return out

    try:
        with torch.no_grad():
            Recorder(graph.program.module()).run(x)
    except Exception:
        return {}
    return values
