"""Compare a PyTorch model with its Keras twin, layer by layer: ``parity.check_equivalent``.

    report = check_equivalent(torch_model, keras_model, x)          # x: (batch, time, features) or token ids
    print(report)              # one row per paired layer, then the logits (and the gradients)
    report.max_abs_diff        # the largest of them all

The two models are walked independently, each from its own computation, and their layers
are paired in order:

* torch: the module runs once with forward hooks on every module that carries
  computation (``nn.Embedding``, ``nn.RNN``/``nn.GRU``/``nn.LSTM``, ``nn.Linear``,
  ``nn.LayerNorm``, ``nn.BatchNorm1d``), so the layers come in the order the forward
  calls them, with their inputs and outputs.  A recurrent module with ``num_layers > 1``
  counts as that many layers: its inner layers are replayed one by one from the recorded
  input, each in a one-layer copy holding that layer's weights.
* Keras: the functional graph's layers in topological order (``model.layers``), the
  same kinds (``Embedding``, ``SimpleRNN``/``GRU``/``LSTM``/``RNN(cell)``, each possibly
  inside ``Bidirectional``, ``Dense``, ``LayerNormalization``, ``BatchNormalization``),
  their outputs read through a probe model.

Layers without weights (activations, dropout, flatten, pooling, slicing, transposes) are
not paired: what they do shows in the next paired layer, or in the logits.  Per pair:

* a recurrent layer: its **full output sequence**, ``(batch, time, features)``, time axis
  aligned (a ``batch_first=False`` torch module is transposed).  A Keras layer with
  ``return_sequences=False`` runs a second time as a ``return_sequences=True`` copy with
  the same weights; a ``Bidirectional`` ``merge_mode`` other than concat is applied to
  torch's concatenated directions.
* an ``Embedding``, ``Linear``/``Dense`` or normalization: its output.  A ``Dense`` with an
  ``activation`` is compared with that activation applied to torch's ``Linear`` output; a
  ``BatchNorm1d`` on ``(batch, channels, time)`` is compared transposed.
* then the outputs of the two models: the logits.
* with ``gradients=True`` (and labels ``y``): d(mean cross-entropy)/d(weight) for every
  trainable Keras weight, torch's gradients mapped into Keras's layout as the weights are
  (an RNN/LSTM bias pair maps to the one Keras bias, whose gradient is ``bias_ih``'s).

A layer on one side with no counterpart on the other raises ``ConversionError`` in one
line that names it; an ``x`` or ``y`` that does not fit the models raises ``ShapeError``
or ``ConfigError`` before either model runs.  Both models run in inference mode (torch
``eval()``, Keras ``training=False``), so dropout is off.  ``parity.testing.assert_equivalent``
turns the report into a test; its tolerance is ``parity.check``'s: atol + rtol * max|torch value|.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import numbers
import sys
import weakref

import numpy as np

from common.errors import ConfigError, ConversionError, ShapeError
from parity.check import allowance, max_abs_diff
from parity.weights import _gru_order, _to_numpy

__all__ = ["check_equivalent", "EquivalenceReport", "LayerDifference", "GradientDifference"]


@dataclasses.dataclass(frozen=True)
class LayerDifference:
    index: int            # position in the pairing (0 = first layer)
    torch_name: str       # module path, ":l{k}" for layer k of a multi-layer module
    keras_name: str
    what: str             # "output sequence" | "output" | "output after relu" ...
    torch_shape: tuple    # batch-first, as compared
    keras_shape: tuple
    max_abs_diff: float   # inf when the shapes differ
    scale: float = 0.0    # max |torch output|, which rtol multiplies


@dataclasses.dataclass(frozen=True)
class GradientDifference:
    index: int            # the paired layer the weight belongs to
    torch_name: str
    keras_path: str       # the Keras variable, e.g. "rnn_1/simple_rnn_cell/kernel"
    max_abs_diff: float
    scale: float = 0.0    # max |torch gradient|


def _limit(atol: float, rtol: float, scale: float) -> str:
    """The allowance in words: ``atol 1e-05`` or ``atol 0, rtol 0.001 × max|torch| 3.2 = 0.0032``."""
    if not rtol:
        return f"atol {atol:g}"
    return f"atol {atol:g}, rtol {rtol:g} × max|torch| {scale:.3g} = {allowance(np.float64(scale), atol, rtol):.3g}"


def _passes(diff: float, scale: float, atol: float, rtol: float) -> bool:
    # parity.check's allowance: atol + rtol * max|reference|; nan and inf never pass.
    return math.isfinite(diff) and diff <= allowance(np.float64(scale), atol, rtol)


@dataclasses.dataclass(frozen=True)
class EquivalenceReport:
    layers: list[LayerDifference]
    logits: float                                  # max |Δ| of the two models' outputs
    logits_shapes: tuple[tuple, tuple]
    gradients: list[GradientDifference] | None = None
    logits_scale: float = 0.0                      # max |torch logit|
    readouts: str | None = None                    # which bidirectional readout each side's logits match

    @property
    def max_abs_diff(self) -> float:
        values = [d.max_abs_diff for d in self.layers] + [self.logits]
        values += [g.max_abs_diff for g in self.gradients or []]
        return math.nan if any(math.isnan(v) for v in values) else max(values)

    def first_failure(self, atol: float, rtol: float = 0.0) -> str | None:
        """A one-line description of the first comparison above ``atol + rtol * max |torch value|`` (or
        nan), in layer order; None if none."""
        for d in self.layers:
            if not _passes(d.max_abs_diff, d.scale, atol, rtol):
                why = f": {self.readouts}" if self.readouts and d is self.layers[-1] else ""
                return (f"layer {d.index} (torch '{d.torch_name}', keras '{d.keras_name}'): "
                        f"{_differs(d.max_abs_diff, d.torch_shape, d.keras_shape, d.what)} "
                        f"({_limit(atol, rtol, d.scale)}){why}")
        if not _passes(self.logits, self.logits_scale, atol, rtol):
            why = self.readouts or "do the two forward passes use the layers the same way?"
            return (f"the logits: {_differs(self.logits, *self.logits_shapes, 'output')} "
                    f"({_limit(atol, rtol, self.logits_scale)}), although every paired layer agrees: {why}")
        for g in self.gradients or []:
            if not _passes(g.max_abs_diff, g.scale, atol, rtol):
                return (f"layer {g.index} (torch '{g.torch_name}'): the loss gradient of keras weight "
                        f"'{g.keras_path}' {_by(g.max_abs_diff)} ({_limit(atol, rtol, g.scale)})")
        return None

    def __str__(self) -> str:
        rows = [("#", "torch", "keras", "compared", "shape", "max |Δ|")]
        rows += [(str(d.index), d.torch_name, d.keras_name, d.what, str(d.torch_shape), f"{d.max_abs_diff:.3g}")
                 for d in self.layers]
        rows.append(("", "(model)", "(model)", "logits", str(self.logits_shapes[0]), f"{self.logits:.3g}"))
        rows += [(str(g.index), g.torch_name, g.keras_path, "loss gradient", "", f"{g.max_abs_diff:.3g}")
                 for g in self.gradients or []]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _differs(diff: float, torch_shape, keras_shape, what: str) -> str:
    if torch_shape != keras_shape:
        swapped = len(torch_shape) >= 2 and torch_shape[1::-1] + torch_shape[2:] == keras_shape
        hint = (" (batch and time swapped: a batch_first=False torch module reads (time, batch, features); "
                "transpose x in its forward)") if swapped else ""
        return f"the {what} has shape {torch_shape} in torch but {keras_shape} in keras{hint}"
    return f"the {what} {_by(diff)}"


def _by(diff: float) -> str:
    if math.isnan(diff):
        return "cannot be compared: it holds a nan or infinite value on one side or both"
    return f"differs by up to {diff:.3g}"


# --- the arguments: the models, x and y, checked before either model runs --------------------------------

def _check_models(torch_model, keras_model, caller: str) -> None:
    from torch import nn
    keras = sys.modules.get("keras")
    is_keras = (lambda m: keras is not None and isinstance(m, keras.Model))
    call = f"{caller}(torch_model, keras_model, x)"
    if is_keras(torch_model) and not is_keras(keras_model) and isinstance(keras_model, nn.Module):
        raise TypeError(f"{call}: the first argument is a Keras model and the second a torch module; swap them")
    if not isinstance(torch_model, nn.Module) or is_keras(torch_model):
        raise TypeError(f"{call}: torch_model must be a torch nn.Module, got {type(torch_model).__name__}")
    if not is_keras(keras_model):
        raise TypeError(f"{call}: keras_model must be a Keras model, got {type(keras_model).__name__}")


def _input_spec(keras_model, caller: str):
    """(the Keras input's shape, batch axis included; whether it reads token ids; the vocabulary size or None)."""
    try:
        inputs = keras_model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ConversionError(f"{caller}: keras model '{keras_model.name}' has no defined input; build it as a "
                              "functional or Sequential model with keras.Input(shape=...)")
    if len(inputs) != 1:
        raise ConversionError(f"{caller}: keras model '{keras_model.name}' has {len(inputs)} inputs; the comparison "
                              "feeds one x to both models")
    spec = inputs[0]
    shape = tuple(spec.shape)
    vocabulary = None
    for layer in _flat_layers(keras_model):
        if _keras_kind(layer)[0] == "embedding" and _reads_model_input(layer, spec):
            vocabulary = int(layer.input_dim)
    tokens = vocabulary is not None or "int" in str(spec.dtype)
    return shape, tokens, vocabulary


def _reads_model_input(layer, spec) -> bool:
    try:
        return layer.input is spec
    except (AttributeError, ValueError):
        return False


def _where(mask: np.ndarray) -> str:
    return str(tuple(int(i) for i in np.argwhere(mask)[0]))


def check_arguments(torch_model, keras_model, x, caller: str = "check_equivalent", y=None):
    """``(x, y)``: ``x`` as NumPy (float32, or int64 token ids), ``y`` as int64 labels or None, after refusing
    models in the wrong order or of the wrong kind (TypeError) and an ``x`` or ``y`` that does not fit the
    Keras model's input and output (ShapeError, ConfigError: one line that blames the input)."""
    _check_models(torch_model, keras_model, caller)
    if not hasattr(x, "shape"):
        raise TypeError(f"{caller}(torch_model, keras_model, x): x must be an array or tensor of shape "
                        f"(batch, time, features), got {type(x).__name__}")
    x = np.asarray(_to_numpy(x))
    if x.ndim == 0 or x.shape[0] == 0 or x.size == 0:
        raise ShapeError(f"{caller}: x of shape {tuple(x.shape)} holds no examples, so nothing would be compared; "
                         "pass at least one sequence")
    shape, tokens, vocabulary = _input_spec(keras_model, caller)
    what = "(batch, time) token ids" if tokens else "(batch, time, features)"
    if x.ndim != len(shape):
        raise ShapeError(f"{caller}: x has shape {tuple(x.shape)} ({x.ndim} axes), but the models read {what}: "
                         f"{len(shape)} axes, keras input {shape}; reshape x")
    for axis, (got, want) in enumerate(zip(x.shape[1:], shape[1:]), start=1):
        if want is not None and got != want:
            name = "time steps" if axis == 1 else "features per step" if axis == len(shape) - 1 else f"axis {axis}"
            raise ShapeError(f"{caller}: x has {got} {name} (shape {tuple(x.shape)}), but the keras model reads "
                             f"{want} (input {shape}); pass x of that size")
    if tokens:
        if not np.issubdtype(x.dtype, np.integer):
            raise ConfigError(f"{caller}: x holds {x.dtype} values, but the models read token ids (an Embedding "
                              "comes first); pass integer ids, e.g. x.astype('int64')")
        if vocabulary is not None and (x.min() < 0 or x.max() >= vocabulary):
            bad = (x < 0) | (x >= vocabulary)
            raise ConfigError(f"{caller}: x holds token id {int(x[bad].flat[0])} at {_where(bad)}, outside the "
                              f"Embedding's vocabulary 0..{vocabulary - 1}; pass ids below {vocabulary}")
        x = x.astype(np.int64)
    else:
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)) or x.dtype == bool:
            raise ConfigError(f"{caller}: x holds {x.dtype} values; pass real numbers, e.g. x.astype('float32')")
        x = np.ascontiguousarray(x, dtype=np.float32)
        bad = ~np.isfinite(x)
        if bad.any():
            raise ConfigError(f"{caller}: x holds {int(bad.sum())} nan or infinite value(s), the first at "
                              f"{_where(bad)}; every comparison would be nan: pass finite inputs")
    if y is not None:
        y = _check_labels(keras_model, y, x.shape[0], caller)
    return x, y


def _check_labels(keras_model, y, batch: int, caller: str) -> np.ndarray:
    """``y`` as int64 class indices, one per example of x, each below the number of logits."""
    y = np.asarray(_to_numpy(y))
    if y.ndim != 1:
        hint = " (one-hot? pass y.argmax(-1))" if y.ndim == 2 else ""
        raise ShapeError(f"{caller}: y has shape {tuple(y.shape)}; pass one class index per example, shape "
                         f"({batch},){hint}")
    if len(y) != batch:
        raise ShapeError(f"{caller}: y has {len(y)} labels but x holds {batch} examples; pass one label per example")
    if not np.issubdtype(y.dtype, np.integer) or y.dtype == bool:
        raise ConfigError(f"{caller}: y holds {y.dtype} values; labels are integer class indices "
                          "(y.astype('int64'))")
    classes = keras_model.outputs[0].shape[-1]
    if classes is not None and y.size and (y.min() < 0 or y.max() >= max(classes, 2)):
        bad = (y < 0) | (y >= max(classes, 2))
        raise ConfigError(f"{caller}: y holds label {int(y[bad][0])} at index {int(np.argmax(bad))}, but the models "
                          f"have {classes} logits: labels run from 0 to {max(classes, 2) - 1}")
    return y.astype(np.int64)


def check_tolerance(name: str, value, caller: str = "assert_equivalent") -> float:
    """``value`` as a finite, non-negative float; TypeError or ValueError naming ``name`` otherwise.
    A bool is refused: ``atol=True`` reads as a tolerance of 1."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{caller}: {name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{caller}: {name} must be finite and at least 0, got {value!r}"
                         + (": an infinite tolerance passes any two models" if value == math.inf else ""))
    return value


# --- the two walks ------------------------------------------------------------------------------------------

_TORCH_KINDS = {"Embedding": "embedding", "RNN": "rnn", "GRU": "gru", "LSTM": "lstm", "Linear": "linear",
                "LayerNorm": "layernorm", "BatchNorm1d": "batchnorm"}
_KIND_NAMES = {"embedding": "Embedding", "rnn": "RNN", "gru": "GRU", "lstm": "LSTM", "linear": "Linear/Dense",
               "layernorm": "LayerNorm", "batchnorm": "BatchNorm"}
_RECURRENT = ("rnn", "gru", "lstm")


def _torch_kind(module) -> str | None:
    from torch import nn
    for name, kind in _TORCH_KINDS.items():
        if isinstance(module, getattr(nn, name)):
            return kind
    return None


def _keras_kind(layer) -> tuple[str | None, bool]:
    """(kind, bidirectional) of a Keras layer; kind None for layers that are not paired."""
    import keras
    L = keras.layers
    if isinstance(layer, L.Bidirectional):
        return _keras_kind(layer.forward_layer)[0], True
    if isinstance(layer, L.RNN):  # SimpleRNN, GRU, LSTM and RNN(cell) alike: the cell says which
        cell = layer.cell
        for cls, kind in ((L.SimpleRNNCell, "rnn"), (L.GRUCell, "gru"), (L.LSTMCell, "lstm")):
            if isinstance(cell, cls):
                return kind, False
        return None, False
    for cls, kind in ((L.Embedding, "embedding"), (L.Dense, "linear"), (L.LayerNormalization, "layernorm"),
                      (L.BatchNormalization, "batchnorm")):
        if isinstance(layer, cls):
            return kind, False
    return None, False


def _flat_layers(keras_model) -> list:
    import keras
    layers = []
    for layer in keras_model.layers:
        if isinstance(layer, keras.Model):
            raise ConversionError(f"keras model '{keras_model.name}' nests model '{layer.name}'; check_equivalent "
                                  "reads flat functional or Sequential models: build the outer model from the inner "
                                  "one's layers")
        layers.append(layer)
    return layers


@dataclasses.dataclass
class _Unit:
    """One paired layer on either side."""
    name: str
    kind: str
    layer: object                 # the nn.Module or the Keras layer
    bidirectional: bool = False
    sublayer: int = 0             # torch: which of the module's num_layers
    value: np.ndarray | None = None  # torch: the output, batch-first

    def describe(self, side: str) -> str:
        direction = "bidirectional " if self.bidirectional else ""
        return f"{side} layer '{self.name}' ({direction}{type(self.layer).__name__})"


def _keras_units(keras_model) -> list[_Unit]:
    units = []
    for layer in _flat_layers(keras_model):
        kind, bidirectional = _keras_kind(layer)
        if kind is not None:
            units.append(_Unit(layer.name, kind, layer, bidirectional))
        elif layer.weights:
            raise ConversionError(f"keras layer '{layer.name}' ({type(layer).__name__}) has weights but no torch "
                                  "counterpart that check_equivalent pairs (Embedding, SimpleRNN/GRU/LSTM/RNN(cell), "
                                  "Bidirectional, Dense, LayerNormalization, BatchNormalization)")
    return units


def _torch_units(model, x: np.ndarray, caller: str):
    """Run ``model`` once on ``x`` with hooks: its paired layers in call order, each holding its output
    (batch-first), and the model's output."""
    import torch
    names = {}  # every module that carries computation, and (to refuse them if called) other owners of parameters
    for name, module in model.named_modules():
        if _torch_kind(module) is not None or (name and any(True for _ in module.parameters(recurse=False))):
            names[module] = name or type(module).__name__
    calls = []

    def hook(module, args, kwargs, output):
        calls.append((module, args, kwargs, output))

    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in names]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(_torch_input(model, x))
            units = _units_from_calls(calls, names, x)
    except (ConversionError, ShapeError, ConfigError):
        raise
    except Exception as e:  # the torch model's own failure on an x that fits the Keras model
        line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ConversionError(f"{caller}: the torch model fails on x of shape {tuple(x.shape)}, which the keras "
                              f"model reads: {type(e).__name__}: {line}") from None
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    return units, logits.detach().float().cpu().numpy()


def _torch_input(model, x: np.ndarray):
    import torch
    xt = torch.from_numpy(x)
    first = next((p for p in model.parameters() if p.is_floating_point()), None)
    if xt.is_floating_point() and first is not None:
        xt = xt.to(first.dtype)  # a float64 module reads float64
    return xt


def _units_from_calls(calls, names, x: np.ndarray) -> list[_Unit]:
    import torch
    units, seen = [], {}
    time_major = False  # whether the 3-D tensors flowing now are (time, batch, features)
    for module, args, kwargs, output in calls:
        kind = _torch_kind(module)
        if kind is None:  # a module the forward calls, with parameters of its own; an unused one is left out
            raise ConversionError(f"torch module '{names[module]}' ({type(module).__name__}) has parameters but no "
                                  "Keras counterpart that check_equivalent pairs (Embedding, RNN/GRU/LSTM, Linear, "
                                  "LayerNorm, BatchNorm1d)")
        seen[module] = seen.get(module, 0) + 1
        name = names[module] + (f"#{seen[module]}" if seen[module] > 1 else "")
        value = output[0] if isinstance(output, tuple) else output
        if not isinstance(value, torch.Tensor):
            raise ConversionError(f"torch module '{name}' returned a {type(value).__name__}; check_equivalent "
                                  "compares padded batches, not PackedSequence")
        if kind == "embedding":
            ids = args[0].cpu().numpy()
            if ids.shape == x.shape and np.array_equal(ids, x):
                time_major = False
            elif ids.shape == x.T.shape and np.array_equal(ids, x.T):
                time_major = True  # the forward transposed the token ids: (time, batch)
        if kind in _RECURRENT:
            time_major = not module.batch_first
            layers = module.num_layers
            for sub in range(layers):
                if sub == layers - 1:
                    out = value
                else:  # an inner layer of a num_layers > 1 module: replay the layers up to it
                    h = args[0]
                    for j in range(sub + 1):
                        h = _one_layer(module, j)(h, *_initial_state(module, args, kwargs, j))[0]
                    out = h
                out = out.transpose(0, 1) if time_major else out
                label = f"{name}:l{sub}" if layers > 1 else name
                units.append(_Unit(label, kind, module, module.bidirectional, sub, _numpy(out)))
            continue
        if kind == "batchnorm" and value.ndim == 3:
            value = value.transpose(1, 2)  # (batch, channels, time) -> (batch, time, channels), Keras's layout
        elif value.ndim >= 3 and _is_time_major(tuple(value.shape[:2]), x.shape, time_major):
            value = value.transpose(0, 1)
        units.append(_Unit(name, kind, module, value=_numpy(value)))
    return units


def _is_time_major(leading: tuple, x_shape: tuple, flowing: bool) -> bool:
    """Whether a 3-D tensor whose first two axes are ``leading`` is (time, batch, ...): its shape says so unless
    batch and time have one length; then the orientation of the last recurrent module (or embedding) decides."""
    batch, steps = x_shape[0], x_shape[1] if len(x_shape) > 1 else None
    if batch == steps or leading not in ((batch, steps), (steps, batch)):
        return flowing
    return leading == (steps, batch)


def _numpy(t) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def _initial_state(module, args, kwargs, layer: int) -> tuple:
    """The explicit initial state passed to a multi-layer module, sliced for one layer; () for zeros."""
    hx = args[1] if len(args) > 1 else kwargs.get("hx")
    if hx is None:
        return ()
    d = 2 if module.bidirectional else 1
    pick = (lambda s: s[layer * d:(layer + 1) * d])
    return ((pick(hx[0]), pick(hx[1])),) if isinstance(hx, tuple) else (pick(hx),)


def _one_layer(module, layer: int):
    """A one-layer copy of layer ``layer`` of a multi-layer nn.RNN/nn.GRU/nn.LSTM, with its weights."""
    from torch import nn
    base = next(c for c in (nn.RNN, nn.GRU, nn.LSTM) if isinstance(module, c))
    directions = 2 if module.bidirectional else 1
    kwargs = dict(input_size=module.input_size if layer == 0 else module.hidden_size * directions,
                  hidden_size=module.hidden_size, num_layers=1, bias=module.bias, batch_first=module.batch_first,
                  bidirectional=module.bidirectional)
    if base is nn.RNN:
        kwargs["nonlinearity"] = module.nonlinearity
    first = next(module.parameters())
    single = base(**kwargs).to(device=first.device, dtype=first.dtype).eval()
    for name, param in single.named_parameters():
        param.data.copy_(getattr(module, name.replace("_l0", f"_l{layer}", 1)))
    return single


# --- pairing -----------------------------------------------------------------------------------------------

def _pair(ts: list[_Unit], ks: list[_Unit]) -> list[tuple[_Unit, _Unit]]:
    """Pair the two walks in order; a layer with no counterpart raises ConversionError in one line."""
    def same(t, k):
        return t.kind == k.kind and (t.kind not in _RECURRENT or t.bidirectional == k.bidirectional)

    for i in range(max(len(ts), len(ks))):
        t = ts[i] if i < len(ts) else None
        k = ks[i] if i < len(ks) else None
        if t is not None and k is not None and same(t, k):
            continue
        if k is None:
            raise ConversionError(f"{t.describe('torch')}, paired layer {i}, has no counterpart in the keras model, "
                                  f"whose {len(ks)} paired layers are all matched before it")
        if t is None:
            raise ConversionError(f"{k.describe('keras')}, paired layer {i}, has no counterpart in the torch model, "
                                  f"whose {len(ts)} paired layers are all matched before it")
        if i + 1 < len(ks) and same(t, ks[i + 1]):
            raise ConversionError(f"{k.describe('keras')}, paired layer {i}, has no counterpart in the torch model "
                                  f"(torch's next layer '{t.name}' pairs with keras '{ks[i + 1].name}')")
        if i + 1 < len(ts) and same(ts[i + 1], k):
            raise ConversionError(f"{t.describe('torch')}, paired layer {i}, has no counterpart in the keras model "
                                  f"(keras's next layer '{k.name}' pairs with torch '{ts[i + 1].name}')")
        raise ConversionError(f"{t.describe('torch')}, paired layer {i}, has no counterpart: keras has "
                              f"{k.describe('keras')} there, a different kind of layer")
    return list(zip(ts, ks))


def _computes_differently(t: _Unit, k: _Unit) -> str | None:
    """Why a paired torch layer and Keras layer cannot compute the same thing whatever their weights (another
    activation, cell variant, direction, state or precision), or None.  Worded as ``parity.weights`` words the
    same refusals.  What can agree (a time-major module, a merge_mode, a Dense activation) is left to the numbers."""
    m = t.layer
    if t.kind in _RECURRENT:
        if t.kind == "lstm" and m.proj_size > 0:
            return f"torch LSTM proj_size={m.proj_size} (projected hidden state) has no Keras equivalent"
        parts = [k.layer.forward_layer, k.layer.backward_layer] if k.bidirectional else [k.layer]
        for j, part in enumerate(parts):
            where = ("backward layer " if j == 1 else "forward layer ") if k.bidirectional else ""
            cell = part.cell
            if _keras_kind(part)[0] != t.kind:
                return (f"keras backward layer is {type(part).__name__} but the forward layer is "
                        f"{type(parts[0]).__name__}")
            if part.go_backwards != (j == 1):
                return f"keras {where}has go_backwards={part.go_backwards}; torch has no such option"
            if part.stateful:
                return (f"keras {where}has stateful=True, which carries the state from one batch to the next; "
                        "torch's modules start every batch from zeros")
            if t.kind == "gru" and not cell.reset_after:
                return ("keras GRU reset_after=False applies the reset gate before the recurrent matmul; "
                        "torch's GRU is reset_after=True")
            act = _activation_name
            if t.kind == "rnn":
                if act(cell.activation) != m.nonlinearity:
                    return (f"activations differ: torch nonlinearity={m.nonlinearity!r}, "
                            f"keras {where}activation={act(cell.activation)!r}")
            elif act(cell.activation) != "tanh" or act(cell.recurrent_activation) != "sigmoid":
                return (f"keras {where}uses activation={act(cell.activation)!r}, recurrent_activation="
                        f"{act(cell.recurrent_activation)!r}; torch uses tanh and sigmoid")
        layers = parts + ([k.layer] if k.bidirectional else [])  # the wrapper casts its outputs too
    else:
        layers = [k.layer]
    dtypes = {str(p.dtype).removeprefix("torch.") for p in m.parameters()}
    for layer in layers:
        policy = layer.dtype_policy
        if dtypes and (dtypes != {policy.variable_dtype} or policy.compute_dtype != policy.variable_dtype):
            return (f"precisions differ: torch parameters are {'/'.join(sorted(dtypes))}, keras '{layer.name}' "
                    f"keeps {policy.variable_dtype} weights and computes in {policy.compute_dtype}")
    return None


def _activation_name(fn) -> str:
    import keras
    return keras.activations.serialize(fn)


def _check_pairs(pairs) -> None:
    for i, (t, k) in enumerate(pairs):
        reason = _computes_differently(t, k)
        if reason:
            raise ConversionError(f"paired layer {i}, torch '{t.name}' ({type(t.layer).__name__}) and keras "
                                  f"'{k.name}' ({type(k.layer).__name__}), cannot compute the same thing: {reason}")


# --- keras: a probe model, and return_sequences copies of last-step layers ----------------------------

def full_sequence_copy(layer):
    """An unbuilt copy of a recurrent layer (or Bidirectional) that returns the whole sequence."""
    config = copy.deepcopy(layer.get_config())
    config["name"] = f"{layer.name}_sequences"
    for key in ("layer", "backward_layer"):
        if isinstance(config.get(key), dict):
            config[key]["config"]["return_sequences"] = True
    if "return_sequences" in config:
        config["return_sequences"] = True
    return type(layer).from_config(config)


_PROBES = weakref.WeakKeyDictionary()  # keras model -> (paired layer ids, probe, [(copy, layer)], [outputs per unit])


def _probe(model, units):
    """A model returning every paired layer's output (recurrent ones as full sequences), then the logits; built
    once per model and set of layers, so that a compiled probe (jax, tensorflow) is reused across calls."""
    import keras
    key = tuple(id(k.layer) for k in units)
    cached = _PROBES.get(model)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2], cached[3]
    outputs, copies, counts = [], [], []
    try:
        for k in units:
            layer = k.layer
            if k.kind in _RECURRENT:
                inner = layer.forward_layer if k.bidirectional else layer
                out = layer.output
                if not inner.return_sequences:
                    full = full_sequence_copy(layer)
                    out = full(layer.input)  # builds it
                    copies.append((full, layer))
                if isinstance(out, (list, tuple)):
                    # return_state: the sequence first; Bidirectional merge_mode=None: the two directions first
                    out = list(out[:2]) if k.bidirectional and layer.merge_mode is None else out[0]
            else:
                out = layer.output
            out = out if isinstance(out, list) else [out]
            counts.append(len(out))
            outputs += out
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # .input fails on torch's Sequential
        probe = keras.Model(inputs, outputs + list(model.outputs[:1]))
    except (ValueError, AttributeError) as e:
        raise ConversionError(f"check_equivalent cannot read the outputs of the layers of keras model "
                              f"'{model.name}' ({type(e).__name__}); it reads functional and Sequential models "
                              "whose layers are called once") from None
    _PROBES[model] = (key, probe, copies, counts)
    return probe, copies, counts


def _keras_outputs(model, units, x):
    import keras
    probe, copies, counts = _probe(model, units)
    for full, layer in copies:  # the copies follow the layers' current weights
        full.set_weights(layer.get_weights())
    values = [np.asarray(keras.ops.convert_to_numpy(v)) for v in probe.predict_on_batch(x)]
    outs, at = [], 0
    for n in counts:  # a merge_mode=None Bidirectional gave two outputs: concatenated, as torch's
        outs.append(values[at] if n == 1 else np.concatenate(values[at:at + n], axis=-1))
        at += n
    return outs, values[-1]


def _as_keras_computes(t: _Unit, k: _Unit) -> tuple[np.ndarray, str]:
    """Torch's output made comparable with the Keras layer's: a Bidirectional merge applied, a Dense's
    activation applied; and what is compared, in words."""
    import keras
    value = t.value
    if t.kind in _RECURRENT:
        mode = k.layer.merge_mode if k.bidirectional else "concat"
        if mode not in ("concat", None) and value.shape[-1] % 2 == 0:
            forward, backward = np.split(value, 2, axis=-1)
            value = {"sum": forward + backward, "mul": forward * backward,
                     "ave": (forward + backward) / 2}[mode]
        return value, "output sequence"
    if t.kind == "linear":
        activation = _activation_name(k.layer.activation)
        if activation != "linear":
            applied = k.layer.activation(keras.ops.convert_to_tensor(value))
            return np.asarray(keras.ops.convert_to_numpy(applied)), f"output after {activation}"
    return value, "output"


def _scale(a) -> float:
    a = np.asarray(a)
    with np.errstate(all="ignore"):
        return float(np.max(np.abs(a))) if a.size else 0.0


# --- the comparison --------------------------------------------------------------------------------------

def check_equivalent(torch_model, keras_model, x, y=None, *, gradients: bool = False) -> EquivalenceReport:
    """Run both models on ``x`` and measure, per paired layer, how far apart their outputs are; see the module
    docstring.  ``gradients=True`` also compares the loss gradients of every weight, for labels ``y``."""
    x, y = check_arguments(torch_model, keras_model, x, "check_equivalent", y)
    if gradients and y is None:
        raise ConfigError("check_equivalent: gradients=True needs the labels y")
    classes = keras_model.outputs[0].shape[-1]
    if gradients and classes is not None and classes < 2:
        raise ConfigError(f"check_equivalent: gradients=True compares the gradients of the cross-entropy of the "
                          f"logits, which needs at least two logits; the models have {classes}: compare the layers "
                          "and outputs with gradients=False")
    ks = _keras_units(keras_model)
    ts, torch_logits = _torch_units(torch_model, x, "check_equivalent")
    pairs = _pair(ts, ks)
    _check_pairs(pairs)
    keras_outs, keras_logits = _keras_outputs(keras_model, ks, x if x.dtype != np.int64 else x.astype(np.int32))
    layers = []
    for i, ((t, k), b) in enumerate(zip(pairs, keras_outs, strict=True)):
        a, what = _as_keras_computes(t, k)
        layers.append(LayerDifference(i, t.name, k.name, what, tuple(a.shape), tuple(b.shape), max_abs_diff(a, b),
                                      _scale(a)))
    logits_diff = max_abs_diff(torch_logits, keras_logits)
    readouts = None
    if len(pairs) >= 2 and not (logits_diff <= 1e-5 and layers[-1].max_abs_diff <= 1e-5) \
            and pairs[-1][0].kind == "linear" and pairs[-2][0].kind in _RECURRENT and pairs[-2][0].bidirectional:
        readouts = _readouts(pairs[-1][0].layer, pairs[-2][0].value, torch_logits, keras_logits)
    report = EquivalenceReport(layers, logits_diff, (torch_logits.shape, keras_logits.shape),
                               logits_scale=_scale(torch_logits), readouts=readouts)
    if gradients:
        report = dataclasses.replace(report, gradients=_gradient_differences(torch_model, keras_model, pairs, x, y))
    return report


_READ = {"h_n": "h_n (each direction's final state)", "last-output": "out[:, -1] (both directions at the last step)"}


def _readouts(fc, sequence: np.ndarray, torch_logits, keras_logits) -> str | None:
    """Which bidirectional readout of the last recurrent layer's output each side's logits match, said in
    words when they differ; None when that does not explain the difference."""
    import torch
    h = sequence.shape[-1] // 2
    if sequence.ndim != 3 or fc.in_features != 2 * h:
        return None
    features = {"h_n": np.concatenate([sequence[:, -1, :h], sequence[:, 0, h:]], axis=-1),
                "last-output": sequence[:, -1, :]}
    dtype = fc.weight.dtype
    with torch.no_grad():
        candidates = {r: fc(torch.from_numpy(np.ascontiguousarray(f)).to(dtype)).float().numpy()
                      for r, f in features.items()}
    reads = {}
    for side, values in (("torch", torch_logits), ("keras", keras_logits)):
        reads[side] = next((r for r, c in candidates.items() if max_abs_diff(c, values) <= 1e-5), None)
    if None in reads.values() or reads["torch"] == reads["keras"]:
        return None
    return (f"the torch forward reads {_READ[reads['torch']]} of the last bidirectional layer, the Keras model "
            f"{_READ[reads['keras']]}; build the Keras model with readout={reads['torch']!r} "
            "(keras_version.model.build_model), or convert with parity.convert_module, which finds it")


# --- gradients ------------------------------------------------------------------------------------------

def _gradient_differences(torch_model, keras_model, pairs, x, y) -> list[GradientDifference]:
    import torch
    from parity.lockstep import keras_gradients
    params = {name: p for name, p in torch_model.named_parameters() if p.requires_grad}
    was_training = torch_model.training
    torch_model.eval()
    try:
        logits = torch_model(_torch_input(torch_model, x))
        logits = logits[0] if isinstance(logits, (tuple, list)) else logits
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    finally:
        torch_model.train(was_training)
    by_param = {p: (g if g is not None else torch.zeros_like(p)) for p, g in zip(params.values(), grads)}
    expected, owner = {}, {}
    for i, (t, k) in enumerate(pairs):
        for path, array in _keras_layout(t, k, lambda p: _to_numpy(by_param.get(p, torch.zeros_like(p)))).items():
            expected[path] = array
            owner[path] = (i, t.name)
    actual = keras_gradients(keras_model, x if x.dtype != np.int64 else x.astype(np.int32), y.astype(np.int32),
                             training=False)
    missing = [path for path in actual if path not in expected]
    if missing:
        raise ConversionError(f"check_equivalent: keras weight '{missing[0]}' has no torch gradient mapped to it; "
                              "gradients=True is not supported for its layer")
    return [GradientDifference(owner[path][0], owner[path][1], path, max_abs_diff(expected[path], actual[path]),
                               _scale(expected[path]))
            for path in expected if path in actual]


def _keras_layout(t: _Unit, k: _Unit, grad) -> dict[str, np.ndarray]:
    """Torch gradients (``grad(param)``) of one paired layer, in the Keras layer's layout, keyed by variable path."""
    m = t.layer
    by_name = lambda layer: {w.name: w for w in layer.trainable_weights}  # noqa: E731
    out = {}
    if t.kind in _RECURRENT:
        parts = [k.layer.forward_layer, k.layer.backward_layer] if k.bidirectional else [k.layer]
        for suffix, part in zip(["", "_reverse"], parts):
            names = [f"weight_ih_l{t.sublayer}{suffix}", f"weight_hh_l{t.sublayer}{suffix}"]
            if m.bias:
                names += [f"bias_ih_l{t.sublayer}{suffix}", f"bias_hh_l{t.sublayer}{suffix}"]
            g = [grad(getattr(m, n)) for n in names]
            if t.kind == "gru":
                order = _gru_order(m.hidden_size)
                arrays = {"kernel": g[0][order].T, "recurrent_kernel": g[1][order].T}
                if m.bias:
                    arrays["bias"] = np.stack([g[2][order], g[3][order]])  # (2, 3H): [input; recurrent]
            else:
                # Keras's one bias stands for bias_ih + bias_hh: its gradient is either one's (bias_ih's).
                arrays = {"kernel": g[0].T, "recurrent_kernel": g[1].T}
                if m.bias:
                    arrays["bias"] = g[2]
            weights = by_name(part)
            out.update({weights[n].path: a for n, a in arrays.items() if n in weights})
        return out
    layer = k.layer
    weights = by_name(layer)
    if t.kind == "linear":
        arrays = {"kernel": grad(m.weight).T}
        if m.bias is not None:
            arrays["bias"] = grad(m.bias)
    elif t.kind == "embedding":
        arrays = {"embeddings": grad(m.weight)}
    else:  # layernorm, batchnorm: scale and offset
        arrays = {}
        if getattr(m, "weight", None) is not None:
            arrays["gamma"] = grad(m.weight)
        if getattr(m, "bias", None) is not None:
            arrays["beta"] = grad(m.bias)
    return {weights[n].path: a for n, a in arrays.items() if n in weights}
