"""Build a Keras functional model from a traced torch forward, one ATen node at a time.

:mod:`parity.torch_graph` traces the forward; here every node is mapped onto
standard Keras layers (``Embedding``, ``SimpleRNN``/``GRU``/``LSTM``,
``Bidirectional``, ``Dense``, ``LayerNormalization``, ``BatchNormalization``,
``Activation``, ``Softmax``, ``Permute``, ``Reshape``, ``Concatenate``) or
``keras.ops`` calls (slicing, reductions, ``log_softmax``), which a functional
model records as operations: the result saves to ``.keras`` and loads back with
``safe_mode=True``, with no Lambda layer.

**The batch axis.**  Keras models are batch-first; a torch forward may hold the batch
on any axis (a time-major ``nn.LSTM`` reads ``(time, batch, features)``; ``h_n`` is
``(layers * directions, batch, hidden)``).  Every torch tensor is carried as a
:class:`Tensor`: the Keras tensor holds the same values with the batch axis moved to
the front, and ``b`` says where torch keeps it.  A transpose that only moves the
batch costs nothing on the Keras side; an operation that would mix examples (a
reduction over the batch, a reshape that merges it) is refused.  The Keras model's
input is therefore always ``(batch, time[, features])``: a time-major module's
example is passed to Keras transposed.

**What was taken from nobuco** (github.com/AlexanderLutsenko/nobuco): one converter
per operator, looked up in a table keyed by the operator, so what is supported is
a list and anything else is refused by name; and the per-node check: when the
converted model's logits differ, every mapped node's Keras output is compared with
the torch value of the same node, and the first one that differs is named
(:func:`first_difference`).

Anything not listed in ``HANDLERS`` raises a one-line :class:`ConversionError`
naming the ATen operator, the module path and the user's source line.
"""
from __future__ import annotations

import dataclasses
import operator
import re

import numpy as np

from common.errors import ConversionError
from parity.torch_graph import Graph, as_numpy, describe_node, module_path, op_name, tensor_shape

__all__ = ["Tensor", "build_keras_model", "HANDLERS", "RECURRENT_OPS", "first_difference"]

RECURRENT_OPS = {"aten.lstm.input": "lstm", "aten.gru.input": "gru",
                 "aten.rnn_tanh.input": "rnn", "aten.rnn_relu.input": "rnn"}


@dataclasses.dataclass
class Tensor:
    """A torch tensor on the Keras side: ``k`` is its value with the batch axis moved to the front."""
    k: object                  # KerasTensor, (batch, *other torch axes in order)
    b: int                     # the torch axis that holds the batch
    shape: tuple[int, ...]     # the torch shape (from the trace)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def axis(self, d: int) -> int:
        """The Keras axis of torch axis ``d``."""
        d = d % self.ndim
        return 0 if d == self.b else d + 1 if d < self.b else d


@dataclasses.dataclass
class Zeros:
    """A constant tensor built in the forward (``torch.zeros(...)``): only an initial state of zeros is mapped."""
    shape: tuple[int, ...]
    value: float = 0.0


@dataclasses.dataclass
class Param:
    """A parameter, buffer or constant tensor of the module."""
    name: str
    value: np.ndarray


@dataclasses.dataclass
class Unusable:
    """An output the converter does not build (``torch.max``'s indices): refused if anything reads it."""
    what: str


class _Builder:
    def __init__(self, graph: Graph, batch_axis: int, input_dtype: str):
        import keras
        self.keras, self.graph = keras, graph
        self.env: dict[str, object] = {}
        self.mapped: list[tuple[object, Tensor]] = []   # (node, value) in graph order, for the per-node check
        self.names: set[str] = set()
        self.node = None
        user = next(n for n in graph.nodes if n.name == graph.user_input)
        shape = tensor_shape(user)
        if batch_axis >= len(shape):
            self.fail("the input has no batch axis")
        k_shape = tuple(s for i, s in enumerate(shape) if i != batch_axis)
        self.input = keras.Input(shape=k_shape, dtype=input_dtype, name="x")
        self.env[user.name] = Tensor(self.input, batch_axis, shape)

    # --- helpers ---------------------------------------------------------------------------
    def fail(self, reason: str):
        where = describe_node(self.node, self.graph.root_name) if self.node is not None else "the input"
        raise ConversionError(f"cannot map {where}: {reason}")

    def tensor(self, value, what: str = "its input") -> Tensor:
        if isinstance(value, Tensor):
            return value
        if isinstance(value, Unusable):
            self.fail(f"it reads {value.what}, which convert does not map")
        if isinstance(value, Zeros):
            self.fail(f"it reads a constant tensor made in the forward ({value.value:g}s); convert maps such a "
                      "tensor only as a recurrent layer's initial state of zeros")
        if isinstance(value, Param):
            self.fail(f"it reads the parameter {value.name!r} directly; convert maps parameters only inside "
                      "the layers that own them")
        self.fail(f"{what} is {type(value).__name__}, not a tensor")

    def name(self, suffix: str = "") -> str:
        """A unique Keras layer name from the node's module path (``rnn``, ``head_0``)."""
        base = module_path(self.node, self.graph.root_name)
        base = re.sub(r"[^0-9A-Za-z_]", "_", base).strip("_") or "layer"
        base += suffix
        name, i = base, 1
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    def out(self, k, b: int, node=None, index: int | None = None) -> Tensor:
        node = node or self.node
        val = node.meta.get("val")
        if index is not None:
            val = val[index]
        return Tensor(k, b, tuple(int(d) for d in val.shape))

    # --- the walk --------------------------------------------------------------------------
    def build(self):
        keras = self.keras
        result = None
        for node in self.graph.nodes:
            self.node = node
            if node.op == "placeholder":
                if node.name in self.graph.values:
                    self.env[node.name] = Param(self.graph.parameter_names.get(node.name, node.name),
                                                as_numpy(self.graph.values[node.name]))
                continue
            if node.op == "output":
                result = self._output(node)
                continue
            if node.op != "call_function":
                self.fail(f"node kind {node.op!r} is not an operator call")
            if not node.users and op_name(node) != "getitem":
                continue  # computed but never used (the forward drops it)
            handler = HANDLERS.get(op_name(node))
            if handler is None:
                self.fail(f"convert maps {', '.join(_SHOWN)}")
            args = [self.resolve(a) for a in node.args]
            kwargs = {k: self.resolve(v) for k, v in node.kwargs.items()}
            value = handler(self, *_bind(node, args, kwargs))
            self.env[node.name] = value
            if isinstance(value, Tensor):
                self.mapped.append((node, value))
        model = keras.Model(self.input, result.k, name=re.sub(r"[^0-9A-Za-z_]", "_", self.graph.root_name))
        return model

    def resolve(self, a):
        import torch.fx
        if isinstance(a, torch.fx.Node):
            return self.env[a.name]
        if isinstance(a, (list, tuple)):
            return type(a)(self.resolve(x) for x in a)
        return a

    def _output(self, node):
        outs = node.args[0]
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        if len(outs) != 1:
            self.fail(f"the forward returns {len(outs)} values; convert maps forwards that return the logits alone")
        value = self.tensor(self.env[outs[0].name], "the output")
        if value.b != 0:
            self.fail(f"the forward returns a tensor of shape {value.shape} with the batch on axis {value.b}; "
                      "convert maps forwards that return (batch, ...) logits")
        return value


def _bind(node, args, kwargs):
    """(args, by-name dict) with defaults filled from the operator's schema."""
    schema = getattr(node.target, "_schema", None)
    if schema is None:
        return [args, kwargs]
    named = {}
    for i, arg in enumerate(schema.arguments):
        if i < len(args) and not arg.kwarg_only:
            named[arg.name] = args[i]
        elif arg.name in kwargs:
            named[arg.name] = kwargs[arg.name]
        elif arg.has_default_value():
            named[arg.name] = arg.default_value
        else:
            named[arg.name] = None
    return [named]


# The weights are overwritten right after the layer is built, so it is built with zero
# initializers: on JAX every random initializer (the orthogonal one above all) is compiled
# per shape, which cost seconds per layer.  The default initializers are put back afterwards,
# so the saved config is what a Keras user would write and a fresh clone trains as usual.
_INITIALIZERS = {"kernel_initializer": "glorot_uniform", "recurrent_initializer": "orthogonal",
                 "bias_initializer": "zeros", "embeddings_initializer": "uniform"}


def _zero_init(*names: str) -> dict:
    return {name: "zeros" for name in names}


def _restore_initializers(obj, *names: str) -> None:
    import keras
    for name in names:
        if hasattr(obj, name):
            setattr(obj, name, keras.initializers.get(_INITIALIZERS[name]))


# --- The handlers: one per ATen operator ---------------------------------------------------------

def _getitem(self: _Builder, args, kwargs):
    container, index = args
    return container[index]


def _identity(self: _Builder, a):
    value = a["self"] if "self" in a else a["input"]
    return value if isinstance(value, (Param, Zeros)) else self.tensor(value)


def _expand(self: _Builder, a):
    """``h0.expand(...)``/``repeat``: only to be read by a recurrent layer, which says what it holds."""
    value = a["self"]
    if isinstance(value, Zeros):
        return Zeros(tensor_shape(self.node), value.value)
    if isinstance(value, Param):
        return value
    self.fail("expand/repeat of a computed tensor is not mapped")


def _dropout(self: _Builder, a):
    if a.get("train"):
        self.fail("dropout runs in training mode; convert traces the module in eval mode (module.eval())")
    return self.tensor(a["input"])


def _to_copy(self: _Builder, a):
    """A cast that keeps the values is the identity: float32 to float32, and integer token ids to an
    integer dtype (``ids.long()`` before an Embedding; Keras's Embedding reads the int32 input as is)."""
    import torch
    value = a["self"]
    dtype = a.get("dtype")
    if isinstance(value, Zeros):
        return value
    source = getattr(self.node.args[0], "meta", {}).get("val") if self.node.args else None
    source_dtype = getattr(source, "dtype", None)
    integer = (torch.int32, torch.int64)
    if dtype is not None and dtype != torch.float32 and not (dtype in integer and source_dtype in integer):
        came = f" from {str(source_dtype).removeprefix('torch.')}" if source_dtype is not None else ""
        self.fail(f"the forward casts{came} to {str(dtype).removeprefix('torch.')}, which changes the values; "
                  "the converter works in float32 (and integer token ids)")
    return self.tensor(value)


def _index(self: _Builder, a):
    """``out[idx, ...]`` with index tensors: positions read from the data, which fixed Keras layers cannot pick."""
    self.fail("it indexes with tensors (out[idx, ...]), positions computed in the forward (from the input, or "
              "a list turned into a tensor); a Keras graph of fixed layers has no counterpart: index with plain "
              "integers or slices")


def _zeros(self: _Builder, a):
    fill = a.get("fill_value", 1.0 if "ones" in op_name(self.node) else 0.0)
    return Zeros(tensor_shape(self.node), float(fill))


def _sym_size(self: _Builder, a):
    return int(self.node.meta["val"])


def _embedding(self: _Builder, a):
    layers = self.keras.layers
    weight, ids = a["weight"], self.tensor(a["indices"])
    if not isinstance(weight, Param):
        self.fail("the embedding table is computed in the forward, not a parameter")
    if a.get("scale_grad_by_freq") or a.get("sparse"):
        pass  # both change only the gradients
    layer = layers.Embedding(weight.value.shape[0], weight.value.shape[1], name=self.name(), dtype="float32",
                             **_zero_init("embeddings_initializer"))
    k = layer(ids.k)
    _restore_initializers(layer, "embeddings_initializer")
    layer.embeddings.assign(weight.value.astype(np.float32))
    return self.out(k, ids.b)


def _linear(self: _Builder, a):
    x, w, bias = self.tensor(a["input"]), a["weight"], a["bias"]
    if not isinstance(w, Param) or (bias is not None and not isinstance(bias, Param)):
        self.fail("the weights are computed in the forward, not parameters")
    if x.b == x.ndim - 1:
        self.fail("the Linear reads the batch axis as its features")
    layer = self.keras.layers.Dense(w.value.shape[0], use_bias=bias is not None, name=self.name(), dtype="float32",
                                    **_zero_init("kernel_initializer", "bias_initializer"))
    k = layer(x.k)
    _restore_initializers(layer, "kernel_initializer", "bias_initializer")
    layer.kernel.assign(w.value.T.astype(np.float32))
    if bias is not None:
        layer.bias.assign(bias.value.astype(np.float32))
    return self.out(k, x.b)


def _activation(name: str):
    def handler(self: _Builder, a):
        x = self.tensor(a["self"])
        return self.out(self.keras.layers.Activation(name, name=self.name(f"_{name}"))(x.k), x.b)
    return handler


def _gelu(self: _Builder, a):
    x = self.tensor(a["self"])
    if a.get("approximate", "none") == "tanh":
        return self.out(self.keras.ops.gelu(x.k, approximate=True), x.b)
    return self.out(self.keras.layers.Activation("gelu", name=self.name("_gelu"))(x.k), x.b)  # exact erf


def _leaky_relu(self: _Builder, a):
    x = self.tensor(a["self"])
    layer = self.keras.layers.LeakyReLU(negative_slope=float(a["negative_slope"]), name=self.name("_leaky_relu"))
    return self.out(layer(x.k), x.b)


def _elu(self: _Builder, a):
    x = self.tensor(a["self"])
    if a["scale"] != 1 or a["input_scale"] != 1:
        self.fail("an ELU with scale or input_scale (SELU) is not mapped")
    return self.out(self.keras.layers.ELU(alpha=float(a["alpha"]), name=self.name("_elu"))(x.k), x.b)


def _softmax(log: bool):
    def handler(self: _Builder, a):
        x = self.tensor(a["self"])
        axis = x.axis(a["dim"])
        if axis == 0:
            self.fail("the softmax runs across the batch")
        if log:
            return self.out(self.keras.ops.log_softmax(x.k, axis=axis), x.b)
        return self.out(self.keras.layers.Softmax(axis=axis, name=self.name("_softmax"))(x.k), x.b)
    return handler


def _layer_norm(self: _Builder, a):
    x, shape, w, bias = self.tensor(a["input"]), a["normalized_shape"], a["weight"], a["bias"]
    if len(shape) != 1 or x.b == x.ndim - 1:
        self.fail(f"LayerNorm over {list(shape)}: convert maps a LayerNorm over the last axis only")
    layer = self.keras.layers.LayerNormalization(axis=-1, epsilon=float(a["eps"]), center=bias is not None,
                                                 scale=w is not None, name=self.name(), dtype="float32")
    k = layer(x.k)
    if w is not None:
        layer.gamma.assign(w.value.astype(np.float32))
    if bias is not None:
        layer.beta.assign(bias.value.astype(np.float32))
    return self.out(k, x.b)


def _native_layer_norm(self: _Builder, a):
    return (_layer_norm(self, a), Unusable("LayerNorm's mean"), Unusable("LayerNorm's rstd"))


def _batch_norm(self: _Builder, a):
    x, w, bias = self.tensor(a["input"]), a["weight"], a["bias"]
    mean, var = a["running_mean"], a["running_var"]
    if a.get("training") or mean is None or var is None:
        self.fail("the BatchNorm normalises with the batch's own statistics (track_running_stats=False or "
                  "training mode); convert maps BatchNorm with running statistics in eval mode")
    axis = x.axis(1 if x.ndim > 1 else 0)
    if axis == 0:
        self.fail("the BatchNorm's channel axis is the batch axis")
    momentum = a.get("momentum")
    layer = self.keras.layers.BatchNormalization(
        axis=axis, epsilon=float(a["eps"]), momentum=1.0 - float(momentum if momentum is not None else 0.1),
        center=bias is not None, scale=w is not None, name=self.name(), dtype="float32")
    k = layer(x.k, training=False)
    if w is not None:
        layer.gamma.assign(w.value.astype(np.float32))
    if bias is not None:
        layer.beta.assign(bias.value.astype(np.float32))
    layer.moving_mean.assign(mean.value.astype(np.float32))
    layer.moving_variance.assign(var.value.astype(np.float32))
    return self.out(k, x.b)


def _native_batch_norm(self: _Builder, a):
    a = dict(a, training=False)
    return (_batch_norm(self, a), Unusable("BatchNorm's saved mean"), Unusable("BatchNorm's saved invstd"))


def _reduce_axes(self: _Builder, x: Tensor, dims) -> list[int]:
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        self.fail("the reduction runs over every axis, the batch included")
    dims = [dims] if isinstance(dims, int) else list(dims)
    dims = sorted({d % x.ndim for d in dims})
    if x.b in dims:
        self.fail("the reduction runs over the batch axis, mixing examples")
    return dims


def _reduced_b(x: Tensor, dims: list[int], keepdim: bool) -> int:
    return x.b if keepdim else x.b - sum(1 for d in dims if d < x.b)


def _reduction(kind: str):
    def handler(self: _Builder, a):
        ops = self.keras.ops
        x = self.tensor(a["self"])
        dims = _reduce_axes(self, x, a.get("dim"))
        keep = bool(a.get("keepdim"))
        axes = tuple(x.axis(d) for d in dims)
        k = {"mean": ops.mean, "sum": ops.sum, "max": ops.max, "min": ops.min}[kind](x.k, axis=axes, keepdims=keep)
        value = self.out(k, _reduced_b(x, dims, keep), index=0 if op_name(self.node).endswith(".dim")
                         and kind in ("max", "min") else None)
        if kind in ("max", "min") and op_name(self.node) in ("aten.max.dim", "aten.min.dim"):
            return (value, Unusable(f"the indices of torch.{kind}"))
        return value
    return handler


def _pool1d(kind: str, adaptive: bool):
    def handler(self: _Builder, a):
        ops = self.keras.ops
        x = self.tensor(a["self"])
        length = x.shape[-1]
        if adaptive:
            whole = list(a["output_size"]) == [1]
        else:
            stride = list(a.get("stride") or [length])
            padding = list(a.get("padding") or [0])
            dilation = list(a.get("dilation") or [1])
            whole = (list(a["kernel_size"]) == [length] and padding == [0] and dilation == [1]
                     and stride[0] >= 1)
        if not whole or x.b == x.ndim - 1:
            self.fail(f"a {kind} pooling over windows shorter than the whole axis ({length}); convert maps "
                      "pooling over the whole time axis (kernel_size = its length)")
        fn = ops.max if kind == "max" else ops.mean
        value = self.out(fn(x.k, axis=x.axis(-1), keepdims=True), x.b, index=0 if adaptive and kind == "max" else None)
        if adaptive and kind == "max":
            return (value, Unusable("the indices of adaptive_max_pool1d"))
        return value
    return handler


def _select(self: _Builder, a):
    x = self.tensor(a["self"])
    dim, index = a["dim"] % x.ndim, a["index"]
    if dim == x.b:
        self.fail("it picks one example out of the batch")
    index = index % x.shape[dim]
    key = (slice(None),) * x.axis(dim) + (index,)
    return self.out(x.k[key], x.b - (1 if dim < x.b else 0))


def _slice(self: _Builder, a):
    x = self.tensor(a["self"])
    dim = a["dim"] % x.ndim
    start, end, step = slice(a.get("start"), a.get("end"), a.get("step") or 1).indices(x.shape[dim])
    if dim == x.b:
        if (start, end, step) == (0, x.shape[dim], 1):
            return x
        self.fail("it slices the batch axis")
    key = (slice(None),) * x.axis(dim) + (slice(start, end, step),)
    return self.out(x.k[key], x.b)


def _permuted(self: _Builder, x: Tensor, perm: list[int]) -> Tensor:
    """Torch ``x.permute(perm)``: only the non-batch axes move on the Keras side."""
    perm = [p % x.ndim for p in perm]
    new_b = perm.index(x.b)
    order = [x.axis(perm[i]) for i in range(len(perm)) if i != new_b]   # old Keras axes, in the new order
    if order == sorted(order):
        return Tensor(x.k, new_b, tuple(x.shape[p] for p in perm))
    k = self.keras.layers.Permute(tuple(order), name=self.name("_permute"))(x.k)
    return Tensor(k, new_b, tuple(x.shape[p] for p in perm))


def _permute(self: _Builder, a):
    return _permuted(self, self.tensor(a["self"]), list(a["dims"]))


def _transpose(self: _Builder, a):
    x = self.tensor(a["self"])
    perm = list(range(x.ndim))
    d0, d1 = a["dim0"] % x.ndim, a["dim1"] % x.ndim
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return _permuted(self, x, perm)


def _t(self: _Builder, a):
    x = self.tensor(a["self"])
    return _permuted(self, x, list(range(x.ndim))[::-1])


def _reshape(self: _Builder, a):
    """view/reshape/flatten/squeeze/unsqueeze: the output shape comes from the trace."""
    x = self.tensor(a["self"])
    out = tensor_shape(self.node)
    batch = x.shape[x.b]
    before = int(np.prod(x.shape[:x.b]))
    # The batch must stay one axis, with the same number of elements before it (then the
    # torch reshape acts on the axes before and after it separately, as the Keras one does).
    hits = [j for j in range(len(out)) if out[j] == batch and int(np.prod(out[:j])) == before]
    if len(hits) != 1:
        self.fail(f"the reshape from {x.shape} to {out} merges or splits the batch axis (size {batch})")
    j = hits[0]
    target = tuple(out[:j]) + tuple(out[j + 1:])
    current = tuple(x.shape[:x.b]) + tuple(x.shape[x.b + 1:])
    if target == current:
        return Tensor(x.k, j, out)
    # keras.ops.reshape, not layers.Reshape: the way back to torch (keras_layers_to_torch) maps the op
    k = self.keras.ops.reshape(x.k, (-1,) + target)
    return Tensor(k, j, out)


def _cat(self: _Builder, a):
    parts = [self.tensor(t) for t in a["tensors"]]
    if len(parts) == 1:
        return parts[0]
    b = parts[0].b
    if any(p.b != b or p.ndim != parts[0].ndim for p in parts):
        self.fail("the joined tensors hold the batch on different axes")
    dim = a["dim"] % parts[0].ndim
    if dim == b:
        self.fail("it joins along the batch axis")
    k = self.keras.layers.Concatenate(axis=parts[0].axis(dim), name=self.name("_concat"))([p.k for p in parts])
    return self.out(k, b)


def _stack(self: _Builder, a):
    parts = [self.tensor(t) for t in a["tensors"]]
    b = parts[0].b
    if any(p.b != b or p.shape != parts[0].shape for p in parts):
        self.fail("the stacked tensors differ in shape or batch axis")
    dim = a["dim"] % (parts[0].ndim + 1)
    new_b = b if dim > b else b + 1
    kaxis = dim + 1 if dim < new_b else dim
    return self.out(self.keras.ops.stack([p.k for p in parts], axis=kaxis), new_b)


def _binary(kind: str):
    def handler(self: _Builder, a):
        ops = self.keras.ops
        x, y = a["self"], a["other"]
        if a.get("alpha", 1) != 1:
            self.fail("an add or sub with alpha is not mapped")
        fn = {"add": ops.add, "sub": ops.subtract, "mul": ops.multiply, "div": ops.divide}[kind]
        if isinstance(y, (int, float)):
            x = self.tensor(x)
            return self.out(fn(x.k, float(y)), x.b)
        x, y = self.tensor(x), self.tensor(y, "its second input")
        # With the same rank and batch axis, moving the batch to the front moves it in both,
        # so torch's trailing-axis broadcasting lines up the same axes on the Keras side.
        if x.ndim != y.ndim or x.b != y.b or x.shape[x.b] != y.shape[y.b]:
            self.fail(f"it broadcasts {x.shape} against {y.shape} (batch on axes {x.b} and {y.b}); convert maps "
                      "elementwise operations on tensors of one rank with the batch on one axis")
        return self.out(fn(x.k, y.k), x.b)
    return handler


def _recurrent(self: _Builder, a):
    """``aten.lstm/gru/rnn_tanh/rnn_relu.input``: one Keras layer per torch layer, in order."""
    from parity.weights import _torch_to_keras_direction
    layers = self.keras.layers
    op = op_name(self.node)
    kind = RECURRENT_OPS[op]
    x = self.tensor(a["input"])
    has_bias, num_layers, bidir, batch_first = a["has_biases"], a["num_layers"], a["bidirectional"], a["batch_first"]
    if a["train"]:
        self.fail("the recurrent layer runs in training mode; convert traces the module in eval mode")
    if x.ndim != 3:
        self.fail(f"the recurrent layer reads an unbatched input of shape {x.shape}")
    if x.b != (0 if batch_first else 1):
        self.fail(f"the recurrent layer (batch_first={batch_first}) reads its batch on axis "
                  f"{0 if batch_first else 1}, where the forward keeps the {'time' if x.b != 2 else 'features'}; "
                  "its input has the batch on axis " + str(x.b))
    states = a["hx"] if kind == "lstm" else [a["hx"]]
    for s in states:
        if not isinstance(s, Zeros) or s.value != 0:
            what = ("a parameter" if isinstance(s, Param) else f"filled with {s.value:g}" if isinstance(s, Zeros)
                    else "a computed tensor")
            self.fail(f"the initial state is {what}, not zeros; convert maps zero initial states (Keras "
                      "recurrent layers start from zeros)")
    params = [p for p in a["params"]]
    if any(not isinstance(p, Param) for p in params):
        self.fail("the recurrent weights are computed in the forward, not parameters")
    directions = 2 if bidir else 1
    per = 2 + (2 if has_bias else 0)
    if len(params) != per * num_layers * directions:
        if kind == "lstm" and len(params) == (per + 1) * num_layers * directions:
            self.fail("LSTM proj_size > 0 (a projected hidden state) has no Keras counterpart")
        self.fail(f"{len(params)} weight tensors for {num_layers} layer(s): not a layout convert knows")
    hidden = params[1].value.shape[1]
    users = {u.args[1] for u in self.node.users if op_name(u) == "getitem" and u.users}
    need_state = bool(users & {1, 2})
    nonlinearity = "relu" if op == "aten.rnn_relu.input" else "tanh"
    seq = x.k
    finals: dict[int, list] = {1: [], 2: []}   # torch output 1 (h_n) and 2 (c_n), one entry per layer-direction
    for layer_index in range(num_layers):
        def make(backwards: bool = False, name: str | None = None):
            kw = dict(units=hidden, use_bias=bool(has_bias), return_sequences=True, return_state=need_state,
                      go_backwards=backwards, dtype="float32", name=name,
                      **_zero_init("kernel_initializer", "recurrent_initializer", "bias_initializer"))
            if kind == "lstm":
                return layers.LSTM(**kw)
            if kind == "gru":
                return layers.GRU(**kw, reset_after=True)
            return layers.SimpleRNN(**kw, activation=nonlinearity)
        suffix = f"_l{layer_index}" if num_layers > 1 else ""
        if bidir:
            layer = layers.Bidirectional(make(), merge_mode="concat",
                                         name=self.name(suffix))
            parts = [layer.forward_layer, layer.backward_layer]
        else:
            layer = make(name=self.name(suffix))
            parts = [layer]
        res = layer(seq)
        res = list(res) if need_state else [res]
        seq = res[0]
        n_states = 2 if kind == "lstm" else 1
        for d, part in enumerate(parts):
            _restore_initializers(part.cell, "kernel_initializer", "recurrent_initializer", "bias_initializer")
            start = (layer_index * directions + d) * per
            p = [params[start + i].value for i in range(per)]
            arrays = _torch_to_keras_direction(kind, p, bool(has_bias), hidden)
            by_name = {w.name: w for w in part.weights}
            if set(by_name) != set(arrays):
                self.fail(f"Keras {type(part).__name__} weights {sorted(by_name)} do not match {sorted(arrays)}")
            for wname, array in arrays.items():
                by_name[wname].assign(np.asarray(array, dtype=np.float32))
            if need_state:
                got = res[1 + d * n_states: 1 + (d + 1) * n_states]
                finals[1].append(got[0])
                if kind == "lstm":
                    finals[2].append(got[1])
    ops = self.keras.ops
    outputs = [self.out(seq, x.b, index=0)]
    for i in (1, 2) if kind == "lstm" else (1,):
        if need_state:
            # (batch, layers*dirs, hidden), built from expand_dims and concatenate (not stack): the way
            # back to torch (keras_layers_to_torch) maps those two ops
            states = [ops.expand_dims(s, 1) for s in finals[i]]
            k = states[0] if len(states) == 1 else ops.concatenate(states, axis=1)
            outputs.append(self.out(k, 1, index=i))
        else:
            outputs.append(Unusable("a final state"))
    return tuple(outputs)


HANDLERS = {
    "getitem": _getitem,
    "aten.embedding.default": _embedding,
    "aten.linear.default": _linear,
    **{op: _recurrent for op in RECURRENT_OPS},
    "aten.relu.default": _activation("relu"),
    "aten.tanh.default": _activation("tanh"),
    "aten.sigmoid.default": _activation("sigmoid"),
    "aten.silu.default": _activation("silu"),
    "aten.gelu.default": _gelu,
    "aten.leaky_relu.default": _leaky_relu,
    "aten.elu.default": _elu,
    "aten.softmax.int": _softmax(False),
    "aten._softmax.default": _softmax(False),
    "aten.log_softmax.int": _softmax(True),
    "aten._log_softmax.default": _softmax(True),
    "aten.dropout.default": _dropout,
    "aten.feature_dropout.default": _dropout,
    "aten.alpha_dropout.default": _dropout,
    "aten.layer_norm.default": _layer_norm,
    "aten.native_layer_norm.default": _native_layer_norm,
    "aten.batch_norm.default": _batch_norm,
    "aten._native_batch_norm_legit_no_training.default": _native_batch_norm,
    "aten.mean.dim": _reduction("mean"),
    "aten.sum.dim_IntList": _reduction("sum"),
    "aten.amax.default": _reduction("max"),
    "aten.amin.default": _reduction("min"),
    "aten.max.dim": _reduction("max"),
    "aten.min.dim": _reduction("min"),
    "aten.max_pool1d.default": _pool1d("max", False),
    "aten.avg_pool1d.default": _pool1d("avg", False),
    "aten.adaptive_max_pool1d.default": _pool1d("max", True),
    "aten.adaptive_avg_pool1d.default": _pool1d("avg", True),
    "aten.select.int": _select,
    "aten.slice.Tensor": _slice,
    "aten.permute.default": _permute,
    "aten.transpose.int": _transpose,
    "aten.t.default": _t,
    "aten.numpy_T.default": _t,
    "aten.view.default": _reshape,
    "aten.reshape.default": _reshape,
    "aten._unsafe_view.default": _reshape,
    "aten.flatten.using_ints": _reshape,
    "aten.squeeze.dim": _reshape,
    "aten.squeeze.dims": _reshape,
    "aten.squeeze.default": _reshape,
    "aten.unsqueeze.default": _reshape,
    # hidden.squeeze_(0): torch.export keeps the in-place op, and later reads go through its node
    "aten.squeeze_.dim": _reshape,
    "aten.squeeze_.dims": _reshape,
    "aten.squeeze_.default": _reshape,
    "aten.unsqueeze_.default": _reshape,
    "aten.cat.default": _cat,
    "aten.concat.default": _cat,
    "aten.stack.default": _stack,
    "aten.add.Tensor": _binary("add"),
    "aten.sub.Tensor": _binary("sub"),
    "aten.mul.Tensor": _binary("mul"),
    "aten.div.Tensor": _binary("div"),
    "aten.contiguous.default": _identity,
    "aten.expand.default": _expand,
    "aten.repeat.default": _expand,
    "aten.clone.default": _identity,
    "aten.alias.default": _identity,
    "aten.detach.default": _identity,
    "aten.lift_fresh_copy.default": _identity,  # a tensor constant of the forward (torch.tensor([...]))
    "aten.index.Tensor": _index,
    "aten._to_copy.default": _to_copy,
    "aten.to.dtype_layout": _to_copy,
    "aten.to.device": _to_copy,
    "aten.to.dtype": _to_copy,
    "aten.zeros.default": _zeros,
    "aten.new_zeros.default": _zeros,
    "aten.zeros_like.default": _zeros,
    "aten.full.default": _zeros,
    "aten.ones.default": _zeros,
    "aten.new_ones.default": _zeros,
    "aten.ones_like.default": _zeros,
    "aten.sym_size.int": _sym_size,
}

# What a refusal lists: the operators as a user would recognise them.
_SHOWN = ["nn.Embedding", "nn.RNN/GRU/LSTM", "Linear", "ReLU/Tanh/Sigmoid/GELU/SiLU/LeakyReLU/ELU",
          "Softmax/LogSoftmax", "Dropout", "LayerNorm (last axis)", "BatchNorm1d", "mean/sum/max over an axis",
          "max/avg pooling over the whole time axis", "indexing and slicing", "transpose/permute",
          "view/reshape/flatten/squeeze", "cat/stack", "elementwise + - * /", "torch.zeros initial states"]


def build_keras_model(graph: Graph, batch_axis: int, input_dtype: str = "float32"):
    """``(keras.Model, mapped)``: the functional model, and (node, Tensor) for every mapped node in order."""
    builder = _Builder(graph, batch_axis, input_dtype)
    model = builder.build()
    return model, builder.mapped, builder.input


def first_difference(graph: Graph, mapped, keras_input, torch_values: dict, x_keras, reference_scale) -> str | None:
    """The first mapped node whose Keras value differs from torch's, described in one clause, or None.

    ``torch_values`` maps node names to the torch outputs of the same nodes on the example.
    """
    import keras
    from parity.check import allowance, max_abs_diff
    pairs = [(node, t) for node, t in mapped if node.name in torch_values]
    if not pairs:
        return None
    probe = keras.Model(keras_input, [t.k for _, t in pairs])
    got = probe.predict(x_keras, batch_size=len(x_keras), verbose=0)
    got = got if isinstance(got, (list, tuple)) else [got]
    for (node, t), value in zip(pairs, got):
        expected = np.moveaxis(np.asarray(torch_values[node.name], dtype=np.float32), t.b, 0)
        diff = max_abs_diff(keras.ops.convert_to_numpy(value), expected)
        if not diff <= allowance(expected):
            return (f"the first node that differs is {describe_node(node, graph.root_name)}: "
                    f"|Δ| {diff:.2e} there")
    return None


_ = operator  # getitem nodes are matched by name ("getitem")
