"""Copy weights between a PyTorch model and a Keras 3 model, layer by layer, in order.

The two sides are walked independently and paired by position:

* torch: ``model.named_modules()`` order; every ``nn.RNN``/``nn.GRU``/``nn.LSTM``
  contributes one layer per ``num_layers``, every ``nn.Linear`` one layer.
  Containers (no parameters of their own) are skipped; any other module that
  owns parameters is rejected.
* keras: ``model.layers`` order (nested models are flattened); ``SimpleRNN``,
  ``GRU``, ``LSTM``, ``Bidirectional`` of those, and ``Dense``.  Layers without
  weights (``InputLayer``, ``Dropout``...) are skipped; others are rejected.

So ``nn.RNN(28, 8, num_layers=3)`` and three stacked ``nn.RNN`` both map onto
three Keras ``SimpleRNN`` layers.

Layout facts used below (H = hidden size, torch weights are (out, in)):

* Keras kernels are torch weights transposed: ``kernel = weight_ih.T``.
* SimpleRNN and LSTM have one bias where torch has ``bias_ih`` and ``bias_hh``,
  which only ever appear summed: torch -> keras stores ``bias_ih + bias_hh``
  (added in the parameters' own dtype, exactly as an in-place torch fold would);
  keras -> torch stores the bias in ``bias_ih`` and zeros in ``bias_hh``.
* LSTM gates: torch i, f, g, o == Keras i, f, c, o, so no reordering.
* GRU gates: torch r, z, n; Keras z, r, h.  Keras ``GRU(reset_after=True)``
  keeps both biases as a (2, 3H) array ``[input bias; recurrent bias]`` and
  computes exactly torch's cell, so the GRU mapping loses nothing.
  ``reset_after=False`` is a different cell and is rejected.
* Bidirectional: torch's ``*_reverse`` parameters are Keras's ``backward_layer``;
  ``merge_mode="concat"`` puts forward before backward, as torch does.

Whatever would make the two sides compute different things is refused: another
cell or activation, ``go_backwards`` on one direction, ``stateful``, GRU
``reset_after=False``, a ``merge_mode`` other than concat, LSTM ``proj_size``,
``batch_first=False``, another precision, a ``Dense`` with an activation or with
LoRA/quantization weights.  ``docs/convert.md`` audits every constructor argument of
the seven recurrent classes (mapped, refused, or no effect on the forward pass), and
``tests/test_parity_refusals.py`` holds that table to the installed signatures.

Every mismatch raises :class:`common.errors.ConversionError` with a one-line
message that names both layers (index and name) and their weight shapes.  All
new values are computed and validated before the first assignment, so a failed
conversion leaves the target untouched.

Neither torch nor keras is imported at module import time: callers must set
``KERAS_BACKEND`` before Keras is first imported.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from common.errors import ConversionError

__all__ = ["torch_to_keras", "keras_to_torch", "torch_to_keras_arrays", "keras_to_torch_arrays"]

_KERAS_KIND = {"SimpleRNN": "rnn", "GRU": "gru", "LSTM": "lstm"}
_KERAS_CLASS = {"rnn": "SimpleRNN", "gru": "GRU", "lstm": "LSTM", "linear": "Dense"}
_TORCH_CLASS = {"rnn": "nn.RNN", "gru": "nn.GRU", "lstm": "nn.LSTM", "linear": "nn.Linear"}


# --- The two walks --------------------------------------------------------------------

@dataclasses.dataclass
class _TorchLayer:
    """One logical layer on the torch side: a Linear, or layer ``l`` of a recurrent module."""
    index: int
    name: str             # module path; ":l{k}" appended for a layer of a multi-layer module
    module_name: str      # module path, "" for the root
    module: object        # the nn.Module
    kind: str             # "rnn" | "gru" | "lstm" | "linear"
    layer: int = 0        # which of the module's num_layers

    @property
    def directions(self) -> list[str]:
        """Parameter-name suffixes, one per direction."""
        if self.kind == "linear":
            return [""]
        return ["", "_reverse"] if self.module.bidirectional else [""]

    def param_attrs(self, suffix: str) -> list[str]:
        """Attribute names of one direction's parameters, torch order."""
        if self.kind == "linear":
            return ["weight"] + (["bias"] if self.module.bias is not None else [])
        l = self.layer
        names = [f"weight_ih_l{l}{suffix}", f"weight_hh_l{l}{suffix}"]
        if self.module.bias:
            names += [f"bias_ih_l{l}{suffix}", f"bias_hh_l{l}{suffix}"]
        if self.kind == "lstm" and self.module.proj_size > 0:
            names.append(f"weight_hr_l{l}{suffix}")
        return names

    def full_name(self, attr: str) -> str:
        return f"{self.module_name}.{attr}" if self.module_name else attr

    def describe(self) -> str:
        shapes = ", ".join(f"{attr} {tuple(getattr(self.module, attr).shape)}"
                           for sfx in self.directions for attr in self.param_attrs(sfx))
        return f"torch layer {self.index} '{self.name}' ({type(self.module).__name__}: {shapes})"


@dataclasses.dataclass
class _KerasLayer:
    """One Keras layer: a recurrent layer, a Bidirectional wrapper, or a Dense."""
    index: int
    layer: object
    kind: str             # "rnn" | "gru" | "lstm" | "linear"

    @property
    def parts(self) -> list:
        """The layers that own weights, one per direction (forward first)."""
        if _is_bidirectional(self.layer):
            return [self.layer.forward_layer, self.layer.backward_layer]
        return [self.layer]

    def describe(self) -> str:
        parts = self.parts
        shapes = []
        for prefix, part in zip(["forward.", "backward."] if len(parts) == 2 else [""], parts):
            shapes += [f"{prefix}{w.name} {tuple(w.shape)}" for w in part.weights]
        inner = ", ".join(shapes) if shapes else "not built"
        return f"keras layer {self.index} '{self.layer.name}' ({type(self.layer).__name__}: {inner})"


def _is_bidirectional(layer) -> bool:
    import keras
    return isinstance(layer, keras.layers.Bidirectional)


def _torch_layers(torch_model) -> list[_TorchLayer]:
    from torch import nn
    out: list[_TorchLayer] = []
    for module_name, module in torch_model.named_modules():
        shown = module_name or type(module).__name__
        if isinstance(module, (nn.RNN, nn.GRU, nn.LSTM)):
            kind = "rnn" if isinstance(module, nn.RNN) else "gru" if isinstance(module, nn.GRU) else "lstm"
            for l in range(module.num_layers):
                name = f"{shown}:l{l}" if module.num_layers > 1 else shown
                out.append(_TorchLayer(len(out), name, module_name, module, kind, l))
        elif isinstance(module, nn.Linear):
            out.append(_TorchLayer(len(out), shown, module_name, module, "linear"))
        elif any(True for _ in module.parameters(recurse=False)):
            shapes = ", ".join(f"{n} {tuple(p.shape)}" for n, p in module.named_parameters(recurse=False))
            raise ConversionError(
                f"torch module '{shown}' ({type(module).__name__}: {shapes}) owns parameters but has no "
                "Keras counterpart; supported: nn.RNN, nn.GRU, nn.LSTM, nn.Linear")
    return out


def _keras_layers(keras_model) -> list[_KerasLayer]:
    import keras
    supported = (keras.layers.SimpleRNN, keras.layers.GRU, keras.layers.LSTM)
    out: list[_KerasLayer] = []

    def walk(layer):
        if isinstance(layer, keras.layers.Bidirectional):
            inner = layer.forward_layer
            if not isinstance(inner, supported):
                raise ConversionError(
                    f"keras layer {len(out)} '{layer.name}' wraps {type(inner).__name__}; "
                    "only SimpleRNN, GRU and LSTM can be mapped to torch")
            out.append(_KerasLayer(len(out), layer, _KERAS_KIND[_keras_class(inner)]))
        elif isinstance(layer, supported):
            out.append(_KerasLayer(len(out), layer, _KERAS_KIND[_keras_class(layer)]))
        elif isinstance(layer, keras.layers.Dense):
            out.append(_KerasLayer(len(out), layer, "linear"))
        elif isinstance(layer, keras.Model):
            for sub in layer.layers:
                walk(sub)
        elif layer.weights:
            shapes = ", ".join(f"{w.name} {tuple(w.shape)}" for w in layer.weights)
            raise ConversionError(
                f"keras layer {len(out)} '{layer.name}' ({type(layer).__name__}: {shapes}) has weights but "
                "no torch counterpart; supported: SimpleRNN, GRU, LSTM, Bidirectional, Dense")

    walk(keras_model)
    return out


def _keras_class(layer) -> str:
    """The supported base class name of a Keras layer (subclasses map like their base)."""
    import keras
    for cls in (keras.layers.SimpleRNN, keras.layers.GRU, keras.layers.LSTM):
        if isinstance(layer, cls):
            return cls.__name__
    return type(layer).__name__


# --- Pairing and validation -----------------------------------------------------------------

def _fail(direction: str, t: _TorchLayer | None, k: _KerasLayer | None, reason: str, n_t: int, n_k: int):
    left = t.describe() if t is not None else f"torch layer {k.index} (none: torch has {n_t} mappable layers)"
    right = k.describe() if k is not None else f"keras layer {t.index} (none: keras has {n_k} mappable layers)"
    raise ConversionError(f"{direction}: {left} vs {right}: {reason}")


def _pairs(direction: str, torch_model, keras_model) -> list[tuple[_TorchLayer, _KerasLayer]]:
    """Pair the two walks by position and check everything except the numbers themselves."""
    ts, ks = _torch_layers(torch_model), _keras_layers(keras_model)
    pairs = []
    for i in range(max(len(ts), len(ks))):
        t = ts[i] if i < len(ts) else None
        k = ks[i] if i < len(ks) else None
        if t is None or k is None:
            _fail(direction, t, k, f"the models have different numbers of layers "
                                   f"(torch {len(ts)}, keras {len(ks)})", len(ts), len(ks))
        reason = _mismatch(t, k)
        if reason:
            if len(ts) != len(ks):
                reason += f" (torch has {len(ts)} mappable layers, keras {len(ks)})"
            _fail(direction, t, k, reason, len(ts), len(ks))
        pairs.append((t, k))
    return pairs


def _mismatch(t: _TorchLayer, k: _KerasLayer) -> str | None:
    """Why ``t`` and ``k`` cannot be mapped onto each other, or None."""
    import keras
    if t.kind != k.kind:
        return (f"layer kinds differ: {_TORCH_CLASS[t.kind]} maps to {_KERAS_CLASS[t.kind]}, "
                f"not to {type(k.layer).__name__}")
    parts = k.parts
    if any(not part.weights for part in parts):
        return "the keras layer is not built; call the model on an input (or build it) first"
    act = keras.activations.serialize
    if t.kind == "linear":
        dense = parts[0]
        extra = sorted(set(_weights_by_name(dense)) - {"kernel", "bias"})
        if extra:
            return (f"keras Dense has weights {extra} besides kernel and bias (LoRA or quantization); "
                    "torch's Linear has only weight and bias")
        if act(dense.activation) != "linear":
            return (f"keras Dense applies activation={act(dense.activation)!r}; torch's Linear applies none "
                    "(the models here end in logits)")
        kernel = _weights_by_name(dense)["kernel"]
        if tuple(kernel.shape) != tuple(t.module.weight.shape[::-1]):
            return (f"sizes differ: torch Linear({t.module.in_features}, {t.module.out_features}) "
                    f"vs keras Dense kernel {tuple(kernel.shape)}")
        if (t.module.bias is not None) != parts[0].use_bias:
            return f"bias presence differs: torch bias={t.module.bias is not None}, keras use_bias={parts[0].use_bias}"
        return _precision_mismatch(t, parts)

    m = t.module
    if not m.batch_first:
        return "torch batch_first=False is not supported: the Keras layers are batch-major (batch, time, features)"
    if t.kind == "lstm" and m.proj_size > 0:
        return f"torch LSTM proj_size={m.proj_size} (projected hidden state) has no Keras equivalent"
    bidir = _is_bidirectional(k.layer)
    if m.bidirectional != bidir:
        keras_kind = "Bidirectional" if bidir else "unidirectional"
        return f"directions differ: torch bidirectional={m.bidirectional}, keras {keras_kind}"
    if bidir and k.layer.merge_mode != "concat":
        return (f"Bidirectional merge_mode={k.layer.merge_mode!r} is not supported; "
                "torch concatenates (merge_mode='concat')")
    for j, part in enumerate(parts):
        where = ("backward layer " if j == 1 else "forward layer ") if bidir else ""
        if _keras_class(part) != _keras_class(parts[0]):
            return f"keras backward layer is {type(part).__name__} but the forward layer is {type(parts[0]).__name__}"
        if part.go_backwards != (j == 1):
            return f"keras {where}has go_backwards={part.go_backwards}; torch has no such option"
        if part.stateful:
            return (f"keras {where}has stateful=True, which carries the state from one batch to the next; "
                    "torch's modules start every batch from zeros")
        extra = sorted(set(_weights_by_name(part)) - {"kernel", "recurrent_kernel", "bias"})
        if extra:
            return f"keras {where}has weights {extra} that torch's {_TORCH_CLASS[t.kind]} lacks"
        if t.kind == "gru" and not part.reset_after:
            return ("keras GRU reset_after=False applies the reset gate before the recurrent matmul; "
                    "torch's GRU is reset_after=True")
        if t.kind == "rnn":
            if act(part.activation) != m.nonlinearity:
                return (f"activations differ: torch nonlinearity={m.nonlinearity!r}, "
                        f"keras {where}activation={act(part.activation)!r}")
        else:
            if act(part.activation) != "tanh" or act(part.recurrent_activation) != "sigmoid":
                return (f"keras {where}uses activation={act(part.activation)!r}, recurrent_activation="
                        f"{act(part.recurrent_activation)!r}; torch uses tanh and sigmoid")
        if part.use_bias != bool(m.bias):
            return f"bias presence differs: torch bias={bool(m.bias)}, keras {where}use_bias={part.use_bias}"
        kernel = _weights_by_name(part)["kernel"]
        in_size = m.input_size if t.layer == 0 else m.hidden_size * (2 if m.bidirectional else 1)
        if part.units != m.hidden_size:
            return f"hidden sizes differ: torch hidden_size={m.hidden_size}, keras {where}units={part.units}"
        if kernel.shape[0] != in_size:
            return f"input sizes differ: torch {in_size}, keras {where}kernel {tuple(kernel.shape)}"
    return _precision_mismatch(t, parts + ([k.layer] if bidir else []))  # the wrapper casts its outputs too


def _precision_mismatch(t: _TorchLayer, parts: list) -> str | None:
    """Both sides must compute in one precision: the mapping casts, the computation would not."""
    dtypes = {str(p.dtype).removeprefix("torch.") for p in t.module.parameters()}
    for part in parts:
        policy = part.dtype_policy
        if dtypes != {policy.variable_dtype} or policy.compute_dtype != policy.variable_dtype:
            return (f"precisions differ: torch parameters are {'/'.join(sorted(dtypes))}, keras '{part.name}' "
                    f"keeps {policy.variable_dtype} weights and computes in {policy.compute_dtype}")
    return None


def _weights_by_name(layer) -> dict:
    return {w.name: w for w in layer.weights}


# --- The numbers -------------------------------------------------------------------------------

def _gru_order(hidden: int) -> np.ndarray:
    """Row permutation between torch (r, z, n) and Keras (z, r, h) gate blocks; its own inverse."""
    h = np.arange(hidden)
    return np.concatenate([h + hidden, h, h + 2 * hidden])


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _torch_to_keras_direction(kind: str, p: list[np.ndarray], has_bias: bool, hidden: int) -> dict[str, np.ndarray]:
    """torch [W_ih (G, in), W_hh (G, H), b_ih (G,), b_hh (G,)] -> keras {kernel (in, G), ...}; G = gates * H."""
    w_ih, w_hh = p[0], p[1]
    if kind == "gru":
        order = _gru_order(hidden)
        out = {"kernel": w_ih[order].T, "recurrent_kernel": w_hh[order].T}
        if has_bias:
            out["bias"] = np.stack([p[2][order], p[3][order]])  # (2, 3H): [input; recurrent]
        return out
    out = {"kernel": w_ih.T, "recurrent_kernel": w_hh.T}
    if has_bias:
        out["bias"] = p[2] + p[3]  # same dtype in, same dtype out: one correctly rounded addition
    return out


def _keras_to_torch_direction(kind: str, w: dict[str, np.ndarray], has_bias: bool, hidden: int) -> list[np.ndarray]:
    """keras {kernel (in, G), recurrent_kernel (H, G), bias} -> torch [W_ih, W_hh, b_ih, b_hh]."""
    if kind == "gru":
        order = _gru_order(hidden)
        out = [w["kernel"].T[order], w["recurrent_kernel"].T[order]]
        if has_bias:
            out += [w["bias"][0][order], w["bias"][1][order]]
        return out
    out = [w["kernel"].T, w["recurrent_kernel"].T]
    if has_bias:
        out += [w["bias"], np.zeros_like(w["bias"])]
    return out


def _check_shape(direction, t, k, target_name, new, target_shape, n):
    if tuple(new.shape) != tuple(target_shape):
        _fail(direction, t, k, f"{target_name} would get shape {tuple(new.shape)} but has {tuple(target_shape)}", n, n)


def torch_to_keras_arrays(torch_model, keras_model, values: Mapping | None = None) -> dict[str, np.ndarray]:
    """The Keras weights equivalent to ``torch_model``'s parameters, keyed by Keras variable path.

    ``values`` optionally replaces parameters by name (``named_parameters()`` names),
    e.g. with gradients; everything else is read from ``torch_model``.  Validates
    the whole pairing and every shape; assigns nothing.
    """
    direction = "torch_to_keras"
    pairs = _pairs(direction, torch_model, keras_model)
    values = values or {}
    new: dict[str, np.ndarray] = {}
    for t, k in pairs:
        def read(attr):
            full = t.full_name(attr)
            return _to_numpy(values[full] if full in values else getattr(t.module, attr))
        for suffix, part in zip(t.directions, k.parts):
            targets = _weights_by_name(part)
            if t.kind == "linear":
                arrays = {"kernel": read("weight").T}
                if t.module.bias is not None:
                    arrays["bias"] = read("bias")
            else:
                arrays = _torch_to_keras_direction(
                    t.kind, [read(a) for a in t.param_attrs(suffix)], bool(t.module.bias), t.module.hidden_size)
            if set(arrays) != set(targets):
                _fail(direction, t, k, f"keras weights {sorted(targets)} do not match {sorted(arrays)}",
                      len(pairs), len(pairs))
            for name, array in arrays.items():
                var = targets[name]
                _check_shape(direction, t, k, f"{part.name}/{name}", array, var.shape, len(pairs))
                if var.path in new:
                    _fail(direction, t, k, f"keras variable path {var.path!r} occurs twice", len(pairs), len(pairs))
                # A fresh copy: jax on CPU adopts NumPy buffers without copying, so an array
                # that shares memory with a torch parameter would tie the two models together.
                new[var.path] = np.array(array, dtype=var.dtype, order="C", copy=True)
    return new


def keras_to_torch_arrays(keras_model, torch_model, values: Mapping | None = None) -> dict[str, np.ndarray]:
    """The torch parameters equivalent to ``keras_model``'s weights, keyed by ``named_parameters()`` name.

    ``values`` optionally replaces Keras weights by variable path.  Validates the
    whole pairing and every shape; assigns nothing.
    """
    direction = "keras_to_torch"
    pairs = _pairs(direction, torch_model, keras_model)
    values = values or {}
    new: dict[str, np.ndarray] = {}
    for t, k in pairs:
        for suffix, part in zip(t.directions, k.parts):
            w = {name: _to_numpy(values[v.path] if v.path in values else v.numpy())
                 for name, v in _weights_by_name(part).items()}
            attrs = t.param_attrs(suffix)
            if t.kind == "linear":
                arrays = [w["kernel"].T] + ([w["bias"]] if "bias" in w else [])
            else:
                arrays = _keras_to_torch_direction(t.kind, w, bool(t.module.bias), t.module.hidden_size)
            for attr, array in zip(attrs, arrays, strict=True):
                param = getattr(t.module, attr)
                _check_shape(direction, t, k, t.full_name(attr), array, param.shape, len(pairs))
                dtype = _to_numpy(param.detach()[:0]).dtype  # torch dtype -> numpy dtype
                new[t.full_name(attr)] = np.array(array, dtype=dtype, order="C", copy=True)
    return new


# --- In-place copies -----------------------------------------------------------------------------

def torch_to_keras(torch_model, keras_model) -> None:
    """Copy every parameter of ``torch_model`` into ``keras_model`` (in place, all or nothing)."""
    new = torch_to_keras_arrays(torch_model, keras_model)
    for k in _keras_layers(keras_model):
        for part in k.parts:
            part.set_weights([new[w.path] for w in part.weights])


def keras_to_torch(keras_model, torch_model) -> None:
    """Copy every weight of ``keras_model`` into ``torch_model`` (in place, all or nothing)."""
    import torch
    new = keras_to_torch_arrays(keras_model, torch_model)
    with torch.no_grad():
        for name, array in new.items():
            torch_model.get_parameter(name).copy_(torch.from_numpy(array))
