"""Map each step of a Keras graph onto torch: real ``nn`` modules for layers, torch functions for ops.

:class:`GraphBuilder` writes a ``torch.fx`` graph by hand, one Keras step at a time:

* a Keras layer with weights becomes a ``call_module`` node on a plain ``nn`` module
  (``nn.LSTM``, ``nn.GRU``, ``nn.RNN``, ``nn.Linear``, ``nn.Embedding``, ``nn.LayerNorm``,
  ``nn.BatchNorm1d``) named after the Keras layer, its weights copied in;
* an activation becomes ``nn.ReLU``/``nn.Tanh``/``nn.Sigmoid``/``nn.GELU``/``nn.Softmax``/
  ``nn.LogSoftmax`` after it;
* reshaping and reading steps (``x[:, -1]``, ``ops.mean(x, axis=1)``, ``ops.stack``,
  ``Concatenate``, ``Add``, pooling over time, ``Flatten``, ``Reshape``) become ``call_function`` nodes on torch
  functions (``torch.cat``, ``torch.mean``, ``operator.getitem``...).

Every weight is copied through :func:`_port`, which checks the shape first (the habit of
keras-hub's checkpoint converters, whose ``port_weight`` transforms and checks each tensor
as it lands).  The recurrent layouts (transposed kernels, the GRU's z, r, h -> r, z, n gate
order, Keras's one LSTM/SimpleRNN bias -> ``bias_ih`` with zeros in ``bias_hh``, the GRU's
(2, 3H) bias -> ``bias_ih``/``bias_hh``) come from :mod:`parity.weights`, the notebook's
weight copy, so they are written once.

Whatever has no exact torch counterpart raises :class:`common.errors.ConversionError`, one
line naming the Keras layer or op and what the converter maps instead.
"""
from __future__ import annotations

import functools
import keyword
import operator
import re

import numpy as np

from common.errors import ConversionError
from parity.keras_graph import Step, graph_of, is_model, steps, tensors_in
from parity.weights import _keras_to_torch_direction, _to_numpy

__all__ = ["GraphBuilder", "MAPPED"]

MAPPED = ("Embedding, SimpleRNN, GRU, LSTM, RNN(SimpleRNNCell|GRUCell|LSTMCell), Bidirectional, Dense, "
          "Activation, ReLU, LeakyReLU, ELU, Softmax, Dropout, LayerNormalization, BatchNormalization, Flatten, "
          "Reshape, Permute, GlobalAveragePooling1D, GlobalMaxPooling1D, Concatenate, Add, Subtract, Multiply, Average, Maximum, "
          "Minimum, nested functional/Sequential models, and the ops x[...], mean, max, min, sum, concatenate, "
          "stack, squeeze, expand_dims, transpose, reshape, +, -, *, /, relu, tanh, sigmoid, gelu, softmax, log_softmax")

# Layers that compute nothing at inference (Keras calls them with training=False).
_INFERENCE_IDENTITY = ("Dropout", "SpatialDropout1D", "GaussianDropout", "GaussianNoise", "AlphaDropout",
                       "ActivityRegularization")
# Layers whose output changes with a mask: the torch modules have none, so a mask reaching them is refused.
_MASK_READERS = ("RNN", "Bidirectional", "GlobalAveragePooling1D", "Softmax", "MultiHeadAttention", "Attention")


# --- Activations -----------------------------------------------------------------------------------

def _activation_module(fn, where: str):
    """The torch module computing Keras activation ``fn`` (None for linear); one line when there is none."""
    import keras
    from torch import nn
    get = keras.activations.get
    if fn is None or fn is get("linear"):
        return None
    simple = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "silu": nn.SiLU, "elu": nn.ELU,
              "softplus": nn.Softplus}
    for name, cls in simple.items():
        if fn is get(name):
            return cls()
    if fn is get("softmax"):
        return nn.Softmax(dim=-1)
    if fn is get("log_softmax"):
        return nn.LogSoftmax(dim=-1)
    # keras.activations.gelu defaults to the exact erf form, keras.ops.gelu to the tanh approximation.
    gelus = {get("gelu"): False, keras.ops.gelu: True}
    if fn in gelus:
        return nn.GELU(approximate="tanh" if gelus[fn] else "none")
    if isinstance(fn, functools.partial) and fn.func in gelus and not fn.args and set(fn.keywords) <= {"approximate"}:
        return nn.GELU(approximate="tanh" if fn.keywords.get("approximate", gelus[fn.func]) else "none")
    shown = getattr(fn, "__name__", repr(fn))
    raise ConversionError(f"{where} uses activation {shown!r}, which convert does not map; it maps linear, relu, tanh, "
                          "sigmoid, gelu (exact or approximate), softmax, log_softmax, silu, elu and softplus")


_NAMED = ("linear", "relu", "tanh", "sigmoid", "gelu", "softmax", "log_softmax", "silu", "elu", "softplus", "selu",
          "hard_sigmoid", "exponential", "softsign", "relu6", "leaky_relu", "mish", "swish")


def _activation_name(fn) -> str:
    """Keras's name for an activation function (``keras.activations.serialize`` is slow: it inspects)."""
    import keras
    for name in _NAMED:
        try:
            if keras.activations.get(name) is fn:
                return name
        except ValueError:  # a name this Keras does not know
            continue
    return getattr(fn, "__name__", repr(fn))


# --- Weights -------------------------------------------------------------------------------------

def _weights(layer) -> dict[str, np.ndarray]:
    """A layer's own weights by short name (``kernel``, ``bias``...), as float32 NumPy arrays."""
    return {w.name: _to_numpy(w.numpy()) for w in layer.weights}


def _port(module, attr: str, array: np.ndarray, where: str) -> None:
    """Copy ``array`` into ``module.<attr>`` after checking the shape (keras-hub's port_weight habit)."""
    import torch
    target = getattr(module, attr)
    if tuple(target.shape) != tuple(array.shape):
        raise ConversionError(f"{where}: the weight for torch {attr} has shape {tuple(array.shape)} but "
                              f"{type(module).__name__}.{attr} has {tuple(target.shape)}")
    with torch.no_grad():
        target.copy_(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)))


def _only_weights(layer, allowed: set[str], where: str) -> dict[str, np.ndarray]:
    w = _weights(layer)
    extra = sorted(set(w) - allowed)
    if extra:
        raise ConversionError(f"{where} has weights {extra} besides {sorted(allowed)} (LoRA or quantization?); "
                              "convert maps plain float32 layers: merge or drop them first")
    return w


# --- Recurrent layers ------------------------------------------------------------------------------

_CELL_KIND = {"SimpleRNNCell": "rnn", "GRUCell": "gru", "LSTMCell": "lstm"}


def _rnn_kind(layer, where: str) -> str:
    """``"rnn" | "gru" | "lstm"`` for a Keras RNN layer, after refusing what torch's modules cannot compute."""
    if layer.stateful:
        raise ConversionError(f"{where} has stateful=True, which carries the state from one batch to the next; "
                              "torch's modules start every batch from zeros: rebuild it with stateful=False")
    return _cell_kind(layer.cell, where)


def _cell_kind(cell, where: str) -> str:
    import keras
    kind = next((k for name, k in _CELL_KIND.items() if isinstance(cell, getattr(keras.layers, name))), None)
    if kind is None:
        raise ConversionError(f"{where} runs a {type(cell).__name__}; convert maps RNN layers of SimpleRNNCell, "
                              "GRUCell or LSTMCell (or a StackedRNNCells of them, without return_state)")
    act = _activation_name(cell.activation)
    if kind == "rnn":
        if cell.activation not in (keras.activations.get("tanh"), keras.activations.get("relu")):
            raise ConversionError(f"{where} uses activation={act!r}; torch's nn.RNN offers nonlinearity "
                                  "'tanh' or 'relu' only")
    else:
        rec = _activation_name(cell.recurrent_activation)
        if cell.activation is not keras.activations.get("tanh") \
                or cell.recurrent_activation is not keras.activations.get("sigmoid"):
            raise ConversionError(f"{where} uses activation={act!r}, recurrent_activation={rec!r}; torch's "
                                  f"nn.{kind.upper()} computes tanh and sigmoid only")
        if kind == "gru" and not cell.reset_after:
            raise ConversionError(f"{where} has reset_after=False, which applies the reset gate before the recurrent "
                                  "matmul; torch's nn.GRU has no such cell (it is reset_after=True)")
    return kind


def _torch_rnn(kind: str, cells: list, input_size: int, where: str):
    """A one-layer torch RNN/GRU/LSTM (bidirectional for two cells) holding the Keras cells' weights."""
    from torch import nn
    first = cells[0]
    cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[kind]
    extra = {"nonlinearity": _activation_name(first.activation)} if kind == "rnn" else {}
    module = cls(input_size, first.units, batch_first=True, bias=bool(first.use_bias),
                 bidirectional=len(cells) == 2, **extra)
    for suffix, cell in zip(["", "_reverse"], cells):
        w = _only_weights(cell, {"kernel", "recurrent_kernel", "bias"}, where)
        if set(w) != ({"kernel", "recurrent_kernel", "bias"} if first.use_bias else {"kernel", "recurrent_kernel"}):
            raise ConversionError(f"{where} is not built (weights {sorted(w)}); call the model on a batch first")
        arrays = _keras_to_torch_direction(kind, w, bool(first.use_bias), first.units)
        names = ["weight_ih_l0", "weight_hh_l0"] + (["bias_ih_l0", "bias_hh_l0"] if first.use_bias else [])
        for name, array in zip(names, arrays, strict=True):
            _port(module, name + suffix, array, where)
    return module


# --- The builder ---------------------------------------------------------------------------------------

class GraphBuilder:
    """Writes the torch.fx graph of a Keras model, one step at a time.

    ``values`` maps ``id(keras_tensor)`` to the fx node holding that tensor on the torch
    side; ``origin`` maps fx node names back to the Keras step that made them (for
    naming the first layer that differs when the check fails).
    """

    def __init__(self):
        import torch
        from torch import fx
        self.fx = fx
        self.torch = torch
        self.root = torch.nn.Module()
        self.graph = fx.Graph()
        self.values: dict[int, object] = {}
        self.keras_tensors: dict[int, object] = {}  # id -> the KerasTensor itself (keeps ids stable)
        self.masked: dict[int, str] = {}            # id(tensor) -> the layer whose mask it carries
        self.has_recurrent = False
        self.notes: list[str] = []

    # -- fx plumbing
    def _target(self, name: str) -> str:
        base = re.sub(r"\W", "_", name).strip("_") or "layer"
        if base[0].isdigit() or keyword.iskeyword(base):  # `self.class` or `self.1st` would not be Python
            base = "l_" + base
        target, i = base, 1
        while hasattr(self.root, target):
            target, i = f"{base}_{i}", i + 1
        return target

    def module(self, name: str, module, *args, node_name: str | None = None):
        """Add ``module`` as attribute ``name`` (made unique) and call it on ``args``."""
        target = self._target(name)
        self.root.add_module(target, module)
        return self.graph.create_node("call_module", target, args, {}, name=node_name or target)

    def fn(self, function, *args, name: str, **kwargs):
        return self.graph.create_node("call_function", function, args, kwargs, name=name)

    def method(self, method: str, *args, name: str):
        return self.graph.create_node("call_method", method, args, {}, name=name)

    def item(self, value, key, name: str):
        return self.fn(operator.getitem, value, key, name=name)

    def bind(self, keras_tensor, node) -> None:
        self.values[id(keras_tensor)] = node
        self.keras_tensors[id(keras_tensor)] = keras_tensor

    def value(self, keras_tensor, step: Step):
        try:
            return self.values[id(keras_tensor)]
        except KeyError:
            raise ConversionError(f"{step.describe()} reads a tensor that is not computed from the model's input "
                                  "(a constant or a second input?); convert maps one-input models") from None

    def finish(self, class_name: str):
        return self.fx.GraphModule(self.root, self.graph, class_name=class_name)

    # -- the walk
    def emit_model(self, model, inputs: list, where: str) -> list:
        """Emit ``model``'s graph with its inputs bound to ``inputs`` (fx nodes); returns its outputs' nodes."""
        functional = graph_of(model, where)
        if len(functional.inputs) != len(inputs):
            raise ConversionError(f"{where} takes {len(functional.inputs)} inputs; convert maps one-input models")
        for t, node in zip(functional.inputs, inputs):
            self.bind(t, node)
        for step in steps(functional):
            outs = self.emit_step(step)
            if len(outs) != len(step.outputs):
                raise ConversionError(f"{step.describe()} gives {len(step.outputs)} outputs but convert mapped "
                                      f"{len(outs)}")
            for t, node in zip(step.outputs, outs):
                self.bind(t, node)
            # Which Embedding's mask a tensor carries, to name it if a layer that reads masks gets one.
            if type(step.operation).__name__ == "Embedding" and getattr(step.operation, "mask_zero", False):
                for t in step.outputs:
                    self.masked[id(t)] = f"keras layer '{step.name}' (Embedding)"
            source = next((self.masked[id(t)] for t in tensors_in(step.args) if id(t) in self.masked), None)
            if source is not None:
                for t in step.outputs:
                    self.masked.setdefault(id(t), source)
        return [self.value(t, Step(functional, (), {}, [])) for t in tensors_in(functional.outputs)]

    def emit_step(self, step: Step) -> list:
        import keras
        op = step.operation
        where = step.describe()
        mask = step.kwargs.get("mask")
        if mask is not None and tensors_in(mask):
            self._check_mask(step, where)
        if step.kwargs.get("initial_state") is not None or any(
                k not in ("mask", "training") and tensors_in(v) for k, v in step.kwargs.items()):
            raise ConversionError(f"{where} is called with tensors other than its input ({sorted(step.kwargs)}), "
                                  "e.g. initial_state; convert maps layers called on one input, states from zeros")
        if is_model(op):
            return self.emit_model(op, [self.value(t, step) for t in tensors_in(step.args)], where)
        if isinstance(op, keras.layers.Layer):
            self._check_precision(op, where)
            return self.emit_layer(step, where)
        return [self.emit_op(step, where)]

    def _check_mask(self, step: Step, where: str) -> None:
        if any(isinstance(step.operation, getattr(__import__("keras").layers, n)) for n in _MASK_READERS):
            source = next((self.masked[id(t)] for t in tensors_in(step.args) if id(t) in self.masked), "a layer")
            raise ConversionError(f"{source} has mask_zero=True and its mask reaches {where}, which then skips the "
                                  "padded (token 0) steps; torch's modules read every step: rebuild the Keras model "
                                  "with mask_zero=False (the same model only if no sequence holds token 0)")

    def _check_precision(self, layer, where: str) -> None:
        if not layer.weights:
            return
        policy = layer.dtype_policy
        if policy.compute_dtype != "float32" or policy.variable_dtype != "float32":
            raise ConversionError(f"{where} keeps {policy.variable_dtype} weights and computes in "
                                  f"{policy.compute_dtype}; convert works in float32: rebuild the model with "
                                  "dtype='float32' and load its weights")

    # -- layers
    def emit_layer(self, step: Step, where: str) -> list:
        import keras
        from torch import nn
        L = keras.layers
        layer = step.operation
        name = layer.name
        inputs = [self.value(t, step) for t in tensors_in(step.args)]
        x = inputs[0] if inputs else None
        kind = type(layer).__name__
        if any(isinstance(layer, getattr(L, n)) for n in _INFERENCE_IDENTITY if hasattr(L, n)):
            return [x]  # identity at inference (training=False)
        if isinstance(layer, L.Embedding):
            return [self._embedding(layer, x, str(step.args[0].dtype), where)]
        if isinstance(layer, L.Bidirectional):
            return self._bidirectional(layer, x, step, where)
        if isinstance(layer, L.RNN):
            return self._recurrent(layer, x, step, where)
        if isinstance(layer, L.Dense):
            w = _only_weights(layer, {"kernel", "bias"}, where)
            if "kernel" not in w:
                raise ConversionError(f"{where} is not built; call the model on a batch first")
            linear = nn.Linear(w["kernel"].shape[0], w["kernel"].shape[1], bias=layer.use_bias)
            _port(linear, "weight", w["kernel"].T, where)
            if layer.use_bias:
                _port(linear, "bias", w["bias"], where)
            out = self.module(name, linear, x, node_name=self._target(name))
            return [self._activate(layer.activation, out, name, where)]
        if isinstance(layer, L.Activation):
            return [self._activate(layer.activation, x, name, where, alone=True)]
        if isinstance(layer, L.ReLU):
            if layer.max_value is not None or float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
                raise ConversionError(f"{where} has max_value/negative_slope/threshold set; convert maps the plain "
                                      "ReLU only")
            return [self.module(name, nn.ReLU(), x)]
        if isinstance(layer, L.LeakyReLU):
            return [self.module(name, nn.LeakyReLU(negative_slope=float(layer.negative_slope)), x)]
        if isinstance(layer, L.ELU):
            return [self.module(name, nn.ELU(alpha=float(layer.alpha)), x)]
        if isinstance(layer, L.Softmax):
            axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
            if len(axes) != 1:
                raise ConversionError(f"{where} normalizes over axes {list(axes)}; convert maps one axis")
            return [self.module(name, nn.Softmax(dim=int(axes[0])), x)]
        if isinstance(layer, L.LayerNormalization):
            return [self._layer_norm(layer, x, step, where)]
        if isinstance(layer, L.BatchNormalization):
            return [self._batch_norm(layer, x, step, where)]
        if isinstance(layer, L.Flatten):
            if layer.data_format == "channels_first" and len(step.args[0].shape) > 2:
                raise ConversionError(f"{where} has data_format='channels_first'; convert maps channels_last")
            return [self.fn(self.torch.flatten, x, 1, name=self._target(name))]
        if isinstance(layer, L.Reshape):
            # target_shape leaves out the batch axis: (batch, ...) -> (batch, *target_shape), at most one -1
            batch = self.method("size", x, 0, name=self._target(f"{name}_batch"))
            target = tuple(int(d) for d in layer.target_shape)
            return [self.fn(self.torch.reshape, x, (batch, *target), name=self._target(name))]
        if isinstance(layer, L.Permute):
            return [self.method("permute", x, 0, *[int(d) for d in layer.dims], name=self._target(name))]
        if isinstance(layer, (L.GlobalAveragePooling1D, L.GlobalMaxPooling1D)):
            axis = 1 if layer.data_format == "channels_last" else 2
            function = self.torch.mean if isinstance(layer, L.GlobalAveragePooling1D) else self.torch.amax
            return [self.fn(function, x, dim=axis, keepdim=bool(layer.keepdims), name=self._target(name))]
        if isinstance(layer, L.Concatenate):
            return [self.fn(self.torch.cat, tuple(inputs), dim=int(layer.axis), name=self._target(name))]
        merges = {"Add": operator.add, "Subtract": operator.sub, "Multiply": operator.mul,
                  "Maximum": self.torch.maximum, "Minimum": self.torch.minimum}
        if kind in merges and isinstance(layer, getattr(L, kind)):
            out = inputs[0]
            for i, other in enumerate(inputs[1:]):
                out = self.fn(merges[kind], out, other, name=self._target(f"{name}_{i}" if len(inputs) > 2 else name))
            return [out]
        if isinstance(layer, L.Average):
            total = inputs[0]
            for other in inputs[1:]:
                total = self.fn(operator.add, total, other, name=self._target(f"{name}_sum"))
            return [self.fn(operator.truediv, total, len(inputs), name=self._target(name))]
        raise ConversionError(f"{where} has no torch mapping in convert; it maps {MAPPED}")

    def _activate(self, fn, x, name: str, where: str, alone: bool = False):
        module = _activation_module(fn, where)
        if module is None:
            return x
        return self.module(name if alone else f"{name}_{_activation_name(fn)}", module, x)

    def _embedding(self, layer, x, dtype: str, where: str):
        from torch import nn
        w = _only_weights(layer, {"embeddings"}, where)
        if "embeddings" not in w:
            raise ConversionError(f"{where} is not built; call the model on a batch first")
        table = w["embeddings"]
        embedding = nn.Embedding(table.shape[0], table.shape[1])
        _port(embedding, "weight", table, where)
        # Keras casts float ids to int; integer ids (int32 or int64, both of which nn.Embedding takes) go in
        # as they are, so the module holds no cast for parity.from_torch to map on the way back.
        if "int" not in dtype:
            x = self.method("long", x, name=self._target(f"{layer.name}_tokens"))
        out = self.module(layer.name, embedding, x, node_name=self._target(layer.name))
        return out

    def _rnn_outputs(self, base: str, kind: str, result, bidirectional: bool):
        """torch's ``(out, h_n)`` / ``(out, (h_n, c_n))`` taken apart: ``out`` and each direction's final states."""
        out = self.item(result, 0, name=f"{base}_out")        # (batch, time, directions * H)
        states = self.item(result, 1, name=f"{base}_states")
        if kind == "lstm":
            h_n = self.item(states, 0, name=f"{base}_h_n")       # (directions, batch, H)
            c_n = self.item(states, 1, name=f"{base}_c_n")
            per_direction = [[self.item(h_n, d, name=f"{base}_h{d}"), self.item(c_n, d, name=f"{base}_c{d}")]
                             for d in range(2 if bidirectional else 1)]
        else:
            h_n = states
            per_direction = [[self.item(h_n, d, name=f"{base}_h{d}")] for d in range(2 if bidirectional else 1)]
        return out, per_direction

    def _recurrent(self, layer, x, step: Step, where: str) -> list:
        import keras
        if isinstance(layer.cell, keras.layers.StackedRNNCells) and not layer.return_state and not layer.stateful:
            return self._stacked_cells(layer, x, step, where)
        kind = _rnn_kind(layer, where)
        self.has_recurrent = True
        input_size = int(step.args[0].shape[-1])
        module = _torch_rnn(kind, [layer.cell], input_size, where)
        base = self._target(layer.name)
        if layer.go_backwards:  # Keras reads the steps last to first and returns them in that order
            x = self.fn(self.torch.flip, x, (1,), name=f"{base}_reversed_input")
        result = self.module(base, module, x, node_name=f"{base}_result")
        out, (states,) = self._rnn_outputs(base, kind, result, False)
        # out[:, -1]: the last step's output (the same values as h_n[-1])
        output = out if layer.return_sequences else self.fn(self.torch.select, out, 1, -1, name=f"{base}_last")
        return [output] + (states if layer.return_state else [])

    def _stacked_cells(self, layer, x, step: Step, where: str) -> list:
        """``RNN([cell_a, cell_b])``: at each step cell_b reads cell_a's output, the same as two stacked layers."""
        self.has_recurrent = True
        base = self._target(layer.name)
        if layer.go_backwards:
            x = self.fn(self.torch.flip, x, (1,), name=f"{base}_reversed_input")
        size = int(step.args[0].shape[-1])
        for i, cell in enumerate(layer.cell.cells):
            kind = _cell_kind(cell, f"{where} cell {i}")
            target = self._target(f"{base}_cell{i}")
            result = self.module(target, _torch_rnn(kind, [cell], size, where), x, node_name=f"{target}_result")
            x, _ = self._rnn_outputs(target, kind, result, False)
            size = cell.units
        return [x if layer.return_sequences else self.fn(self.torch.select, x, 1, -1, name=f"{base}_last")]

    def _bidirectional(self, layer, x, step: Step, where: str) -> list:
        forward, backward = layer.forward_layer, layer.backward_layer
        kind = _rnn_kind(forward, where + " forward layer")
        if _rnn_kind(backward, where + " backward layer") != kind or backward.cell.units != forward.cell.units \
                or backward.cell.use_bias != forward.cell.use_bias \
                or _activation_name(backward.cell.activation) != _activation_name(forward.cell.activation):
            raise ConversionError(f"{where} has a backward layer unlike its forward one; torch's bidirectional "
                                  "modules run the same cell both ways")
        if forward.go_backwards or not backward.go_backwards:
            raise ConversionError(f"{where} has go_backwards={forward.go_backwards} forward and "
                                  f"{backward.go_backwards} backward; torch runs forward then reversed")
        if layer.merge_mode not in ("concat", "sum", "mul", "ave", None):
            raise ConversionError(f"{where} has merge_mode={layer.merge_mode!r}; convert maps concat, sum, mul, "
                                  "ave and None")
        self.has_recurrent = True
        module = _torch_rnn(kind, [forward.cell, backward.cell], int(step.args[0].shape[-1]), where)
        base = self._target(layer.name)
        result = self.module(base, module, x, node_name=f"{base}_result")
        out, per_direction = self._rnn_outputs(base, kind, result, True)
        if layer.return_sequences:
            if layer.merge_mode == "concat":  # torch's out is [forward; backward] on the last axis, as Keras
                merged = [out]
            else:  # (batch, time, 2H) -> two (batch, time, H) halves, aligned in time as Keras aligns them
                halves = self.method("chunk", out, 2, -1, name=f"{base}_halves")
                halves = [self.item(halves, 0, name=f"{base}_forward"), self.item(halves, 1, name=f"{base}_backward")]
                merged = self._merge(layer.merge_mode, halves, base)
        else:  # each direction's final state: h_n[0] read all steps forward, h_n[1] all steps backward
            halves = [per_direction[0][0], per_direction[1][0]]
            if layer.merge_mode == "concat":
                merged = [self.fn(self.torch.cat, tuple(halves), dim=-1, name=f"{base}_merged")]
            else:
                merged = self._merge(layer.merge_mode, halves, base)
        states = per_direction[0] + per_direction[1] if layer.return_state else []
        return merged + states

    def _merge(self, mode, halves, base) -> list:
        a, b = halves
        if mode is None:
            return [a, b]
        if mode == "sum":
            return [self.fn(operator.add, a, b, name=f"{base}_merged")]
        if mode == "mul":
            return [self.fn(operator.mul, a, b, name=f"{base}_merged")]
        total = self.fn(operator.add, a, b, name=f"{base}_sum")
        return [self.fn(operator.truediv, total, 2, name=f"{base}_merged")]  # Keras "ave": (y + y_rev) / 2

    def _last_axis(self, layer, step: Step, where: str) -> int:
        rank = len(step.args[0].shape)
        axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        axes = sorted(int(a) % rank for a in axes)
        if axes != [rank - 1]:
            raise ConversionError(f"{where} normalizes over axis {layer.axis} of a rank-{rank} input; convert maps "
                                  "the last axis (axis=-1) only")
        return int(step.args[0].shape[-1])

    def _layer_norm(self, layer, x, step: Step, where: str):
        from torch import nn
        if layer.rms_scaling:
            raise ConversionError(f"{where} has rms_scaling=True, which skips the mean and scales by the variance; "
                                  "convert maps the plain LayerNormalization (nn.LayerNorm): set rms_scaling=False")
        size = self._last_axis(layer, step, where)
        w = _only_weights(layer, {"gamma", "beta"}, where)
        norm = nn.LayerNorm(size, eps=float(layer.epsilon), elementwise_affine=layer.scale or layer.center,
                            bias=layer.center)
        if layer.scale or layer.center:
            _port(norm, "weight", w.get("gamma", np.ones(size, np.float32)), where)
        if layer.center:
            _port(norm, "bias", w["beta"], where)
        return self.module(layer.name, norm, x, node_name=self._target(layer.name))

    def _batch_norm(self, layer, x, step: Step, where: str):
        from torch import nn
        if getattr(layer, "renorm", False):
            raise ConversionError(f"{where} has renorm=True; convert maps plain batch normalization only")
        shape = step.args[0].shape
        axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        # (batch, channels, time) with axis=1 is BatchNorm1d's own layout (what parity.from_torch writes)
        channels_first = len(shape) == 3 and [int(a) % 3 for a in axes] == [1]
        size = int(shape[1]) if channels_first else self._last_axis(layer, step, where)
        w = _only_weights(layer, {"gamma", "beta", "moving_mean", "moving_variance"}, where)
        # Keras's running average keeps `momentum` of the old value, torch's keeps 1 - momentum.
        norm = nn.BatchNorm1d(size, eps=float(layer.epsilon), momentum=1.0 - float(layer.momentum),
                              affine=layer.scale or layer.center)
        if layer.scale or layer.center:
            _port(norm, "weight", w.get("gamma", np.ones(size, np.float32)), where)
            _port(norm, "bias", w.get("beta", np.zeros(size, np.float32)), where)
        _port(norm, "running_mean", w["moving_mean"], where)
        _port(norm, "running_var", w["moving_variance"], where)
        base = self._target(layer.name)
        if len(step.args[0].shape) == 2 or channels_first:  # (batch, features) or (batch, features, time)
            return self.module(layer.name, norm, x, node_name=base)
        if len(step.args[0].shape) != 3:
            raise ConversionError(f"{where} reads a rank-{len(step.args[0].shape)} input; convert maps "
                                  "(batch, features) and (batch, time, features)")
        # (batch, time, features) -> BatchNorm1d's (batch, features, time) and back
        moved = self.method("transpose", x, 1, 2, name=f"{base}_input")
        normed = self.module(layer.name, norm, moved, node_name=f"{base}_channels_first")
        return self.method("transpose", normed, 1, 2, name=base)

    # -- keras.ops calls
    def emit_op(self, step: Step, where: str):
        torch = self.torch
        kind, op = step.kind, step.operation
        base = self._target(step.name)
        args = step.args
        if any(tensors_in(v) for v in step.kwargs.values()):
            raise ConversionError(f"{where} takes tensors as keyword arguments; convert maps ops on positional ones")

        def val(a):  # a symbolic tensor -> its fx node; numbers pass through
            if tensors_in(a):
                if isinstance(a, (list, tuple)):
                    return tuple(val(v) for v in a)
                return self.value(a, step)
            if isinstance(a, (int, float)) and not isinstance(a, bool):
                return a
            raise ConversionError(f"{where} takes {type(a).__name__} {a!r}; convert maps ops on tensors and numbers")

        def axes(axis):
            return None if axis is None else tuple(int(a) for a in axis) if isinstance(axis, (list, tuple)) \
                else int(axis)

        if kind == "GetItem":
            key = args[1]
            if tensors_in(key) or not all(k is None or k is Ellipsis or isinstance(k, (int, slice))
                                          for k in (key if isinstance(key, tuple) else (key,))):
                raise ConversionError(f"{where} indexes with {key!r}; convert maps integers, slices, None and ...")
            return self.item(val(args[0]), key, name=base)
        reductions = {"Mean": torch.mean, "Sum": torch.sum, "Max": torch.amax, "Min": torch.amin}
        if kind in reductions:
            if getattr(op, "initial", None) is not None:
                raise ConversionError(f"{where} has initial={op.initial}; convert maps max/min without it")
            axis = axes(op.axis)
            kwargs = {"dim": axis} if axis is not None else {}
            if kind in ("Max", "Min") and axis is None:
                kwargs = {"dim": tuple(range(len(args[0].shape)))}
            return self.fn(reductions[kind], val(args[0]), keepdim=bool(op.keepdims), name=base, **kwargs)
        binary = {"Add": operator.add, "Subtract": operator.sub, "Multiply": operator.mul,
                  "Divide": operator.truediv, "TrueDivide": operator.truediv}
        if kind in binary and len(args) == 2:
            return self.fn(binary[kind], val(args[0]), val(args[1]), name=base)
        if kind == "Concatenate":
            return self.fn(torch.cat, val(args[0]), dim=int(op.axis), name=base)
        if kind == "Stack":  # keras.ops.stack's axis counts the batch axis, as torch.stack's dim does
            return self.fn(torch.stack, val(args[0]), dim=int(op.axis), name=base)
        if kind == "Squeeze":
            axis = axes(op.axis)
            return self.fn(torch.squeeze, val(args[0]), *(() if axis is None else (axis,)), name=base)
        if kind == "ExpandDims":
            axis = axes(op.axis)
            if not isinstance(axis, int):
                raise ConversionError(f"{where} expands several axes; convert maps one")
            return self.fn(torch.unsqueeze, val(args[0]), axis, name=base)
        if kind == "Transpose":
            if op.axes is None:
                return self.method("permute", val(args[0]), *reversed(range(len(args[0].shape))), name=base)
            return self.method("permute", val(args[0]), *[int(a) for a in op.axes], name=base)
        if kind == "Reshape":
            return self.fn(torch.reshape, val(args[0]), tuple(int(d) for d in op.newshape), name=base)
        unary = {"Relu": torch.relu, "Tanh": torch.tanh, "Sigmoid": torch.sigmoid}
        if kind in unary and len(args) == 1:
            return self.fn(unary[kind], val(args[0]), name=base)
        if kind == "Gelu" and len(args) == 1:  # keras.ops.gelu: the tanh form unless approximate=False
            return self.fn(torch.nn.functional.gelu, val(args[0]), approximate="tanh" if op.approximate else "none",
                           name=base)
        if kind in ("Softmax", "LogSoftmax"):
            axis = axes(op.axis)
            if not isinstance(axis, int):
                raise ConversionError(f"{where} normalizes over axes {axis}; convert maps one axis")
            function = torch.softmax if kind == "Softmax" else torch.log_softmax
            return self.fn(function, val(args[0]), axis, name=base)
        raise ConversionError(f"{where} has no torch mapping in convert; it maps {MAPPED}")
