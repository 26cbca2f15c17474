"""Compare a PyTorch model with its Keras twin, layer by layer: ``parity.check_equivalent``.

    report = check_equivalent(torch_model, keras_model, x)          # x: (batch, time, features)
    print(report)              # one row per paired layer, then the logits (and the gradients)
    report.max_abs_diff        # the largest of them all

Layers are paired exactly as ``parity.weights`` pairs them for a weight transfer
(torch: ``named_modules()`` order, one layer per ``num_layers``; Keras: ``model.layers``
order), and a pair that could not be converted raises ``ConversionError``.  Per pair:

* a recurrent layer: its **full output sequence**, ``(batch, time, hidden * directions)``.
  torch: forward hooks record every recurrent module's input and output during one
  forward pass of the whole model.  A module with ``num_layers > 1`` exposes only
  its last layer's output, so its layers are replayed one by one from the recorded
  input, each in a one-layer copy that holds that layer's weights; the last layer
  is the recorded output itself.  Keras: a probe model returns each layer's output;
  a layer with ``return_sequences=False`` (the last one) runs a second time as a
  ``return_sequences=True`` copy with the same weights, on the same input.
* a ``Linear``/``Dense``: its output.
* then the outputs of the two models: the logits.
* with ``gradients=True`` (and labels ``y``): d(mean cross-entropy)/d(weight) for every
  Keras weight, torch's gradients mapped into Keras's layout as the weights are (an
  RNN/LSTM bias pair maps to the one Keras bias, whose gradient is ``bias_ih``'s).

Both models run in inference mode (torch ``eval()``, Keras ``training=False``), so
dropout is off.  ``parity.testing.assert_equivalent`` turns the report into a test.
Keras models must be functional or ``Sequential`` (what a ``.keras`` file holds).
"""
from __future__ import annotations

import copy
import dataclasses
import math
import numbers
import sys
import weakref

import numpy as np

from common.errors import ConversionError
from parity.weights import _pairs, _to_numpy, torch_to_keras_arrays
from parity.files import max_abs_diff

__all__ = ["check_equivalent", "EquivalenceReport", "LayerDifference", "GradientDifference"]


@dataclasses.dataclass(frozen=True)
class LayerDifference:
    index: int            # position in the pairing (0 = first layer)
    torch_name: str       # module path, ":l{k}" for layer k of a multi-layer module
    keras_name: str
    what: str             # "output sequence" | "output"
    torch_shape: tuple
    keras_shape: tuple
    max_abs_diff: float   # inf when the shapes differ
    scale: float = 0.0    # max |torch output|, for a relative tolerance


@dataclasses.dataclass(frozen=True)
class GradientDifference:
    index: int            # the paired layer the weight belongs to
    torch_name: str
    keras_path: str       # the Keras variable, e.g. "rnn_1/simple_rnn_cell/kernel"
    max_abs_diff: float
    scale: float = 0.0    # max |torch gradient|


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
        limit = f"atol {atol:g}" + (f", rtol {rtol:g}" if rtol else "")
        for d in self.layers:
            if not d.max_abs_diff <= atol + rtol * d.scale:
                why = f": {self.readouts}" if self.readouts and d is self.layers[-1] else ""
                return (f"layer {d.index} (torch '{d.torch_name}', keras '{d.keras_name}'): "
                        f"{_differs(d.max_abs_diff, d.torch_shape, d.keras_shape, d.what)} ({limit}){why}")
        if not self.logits <= atol + rtol * self.logits_scale:
            why = self.readouts or "do the two forward passes use the layers the same way?"
            return (f"the logits: {_differs(self.logits, *self.logits_shapes, 'output')} ({limit}), "
                    f"although every paired layer agrees: {why}")
        for g in self.gradients or []:
            if not g.max_abs_diff <= atol + rtol * g.scale:
                return (f"layer {g.index} (torch '{g.torch_name}'): the loss gradient of keras weight "
                        f"'{g.keras_path}' {_by(g.max_abs_diff)} ({limit})")
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
        return f"the {what} has shape {torch_shape} in torch but {keras_shape} in keras"
    return f"the {what} {_by(diff)}"


def _by(diff: float) -> str:
    if math.isnan(diff):
        return "cannot be compared: it holds a nan or infinite value on one side or both"
    return f"differs by up to {diff:.3g}"


def check_arguments(torch_model, keras_model, x, caller: str = "check_equivalent") -> np.ndarray:
    """``x`` as float32 NumPy, after refusing arguments in the wrong order, of the wrong kind, or empty."""
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
    if not hasattr(x, "shape"):
        raise TypeError(f"{call}: x must be an array or tensor of shape (batch, time, features), "
                        f"got {type(x).__name__}")
    x = np.ascontiguousarray(_to_numpy(x), dtype=np.float32)
    if x.ndim == 0 or x.shape[0] == 0 or x.size == 0:
        raise ValueError(f"{call}: x of shape {tuple(x.shape)} holds no examples, so nothing would be compared; "
                         "pass at least one sequence")
    return x


def check_tolerance(name: str, value, caller: str = "assert_equivalent") -> float:
    """``value`` as a finite, non-negative float; TypeError or ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{caller}: {name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{caller}: {name} must be finite and at least 0, got {value!r}"
                         + (": an infinite tolerance passes any two models" if value == math.inf else ""))
    return value


def check_equivalent(torch_model, keras_model, x, y=None, *, gradients: bool = False) -> EquivalenceReport:
    """Run both models on ``x`` (``(batch, time, features)``) and measure, per paired layer, how far apart
    their outputs are; see the module docstring.  ``gradients=True`` also compares the loss gradients
    of every weight, for labels ``y``."""
    x = check_arguments(torch_model, keras_model, x)
    pairs = _pairs("check_equivalent", torch_model, keras_model)
    torch_outs, torch_logits = _torch_outputs(torch_model, pairs, x)
    keras_outs, keras_logits = _keras_outputs(keras_model, pairs, x)
    layers = []
    for (t, k), a, b in zip(pairs, torch_outs, keras_outs, strict=True):
        what = "output" if t.kind == "linear" else "output sequence"
        layers.append(LayerDifference(t.index, t.name, k.layer.name, what, a.shape, b.shape, max_abs_diff(a, b),
                                      _scale(a)))
    logits_diff = max_abs_diff(torch_logits, keras_logits)
    readouts = None
    if not (logits_diff <= 1e-5 and layers[-1].max_abs_diff <= 1e-5) and len(pairs) >= 2 and pairs[-1][0].kind == "linear" \
            and pairs[-2][0].kind != "linear" and pairs[-2][0].module.bidirectional:
        readouts = _readouts(pairs[-1][0].module, torch_outs[-2], torch_logits, keras_logits)
    report = EquivalenceReport(layers, logits_diff, (torch_logits.shape, keras_logits.shape),
                               logits_scale=_scale(torch_logits), readouts=readouts)
    if gradients:
        if y is None:
            raise ValueError("gradients=True needs the labels y")
        report = dataclasses.replace(report, gradients=_gradient_differences(torch_model, keras_model, pairs, x, y))
    return report


def _scale(a) -> float:
    a = np.asarray(a)
    with np.errstate(all="ignore"):
        return float(np.max(np.abs(a))) if a.size else 0.0


_READ = {"h_n": "h_n (each direction's final state)", "last-output": "out[:, -1] (both directions at the last step)"}


def _readouts(fc, sequence: np.ndarray, torch_logits, keras_logits) -> str | None:
    """Which bidirectional readout of the last recurrent layer's output each side's logits match, said in
    words when they differ; None when that does not explain the difference."""
    import torch
    h = sequence.shape[-1] // 2
    features = {"h_n": np.concatenate([sequence[:, -1, :h], sequence[:, 0, h:]], axis=-1),
                "last-output": sequence[:, -1, :]}
    with torch.no_grad():
        candidates = {r: fc(torch.from_numpy(np.ascontiguousarray(f))).numpy() for r, f in features.items()}
    reads = {}
    for side, values in (("torch", torch_logits), ("keras", keras_logits)):
        reads[side] = next((r for r, c in candidates.items() if max_abs_diff(c, values) <= 1e-5), None)
    if None in reads.values() or reads["torch"] == reads["keras"]:
        return None
    return (f"the torch forward reads {_READ[reads['torch']]} of the last bidirectional layer, the Keras model "
            f"{_READ[reads['keras']]}; build the Keras model with readout={reads['torch']!r} "
            "(keras_version.model.build_model), or convert with parity.convert_module, which finds it")


# --- torch: hooks, and a replay of multi-layer modules ------------------------------------------------

def _torch_outputs(model, pairs, x):
    import torch
    recorded = {}
    modules = {id(t.module): t.module for t, _ in pairs}

    def hook(module, args, output):
        recorded[id(module)] = (args[0], output[0] if isinstance(output, tuple) else output)

    handles = [m.register_forward_hook(hook) for m in modules.values()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(torch.from_numpy(x))
            outs = []
            for t, _ in pairs:
                if id(t.module) not in recorded:
                    raise ConversionError(f"check_equivalent: torch module '{t.name}' is never called by the "
                                          "model's forward, so it cannot be compared")
                module_input, module_output = recorded[id(t.module)]
                if t.kind == "linear" or t.layer == t.module.num_layers - 1:
                    outs.append(module_output)
                else:  # a layer inside a num_layers > 1 module: replay the layers up to it
                    h = module_input
                    for layer in range(t.layer + 1):
                        h = _one_layer(t.module, layer)(h)[0]
                    outs.append(h)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return [o.detach().cpu().numpy() for o in outs], logits.detach().cpu().numpy()


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


_PROBES = weakref.WeakKeyDictionary()  # keras model -> (paired layer ids, probe, [(copy, layer)])


def _probe(model, pairs):
    """A model returning every paired layer's output (full sequences), then the logits; built once per
    model and set of pairs, so that a compiled probe (jax, tensorflow) is reused across calls."""
    import keras
    key = tuple(id(k.layer) for _, k in pairs)
    cached = _PROBES.get(model)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    outputs, copies = [], []
    try:
        for t, k in pairs:
            layer = k.layer
            if t.kind != "linear" and not layer.return_sequences:
                full = full_sequence_copy(layer)
                outputs.append(full(layer.input))  # builds it
                copies.append((full, layer))
            else:
                outputs.append(layer.output)
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # .input fails on torch's Sequential
        probe = keras.Model(inputs, outputs + list(model.outputs))
    except (ValueError, AttributeError) as e:
        raise ConversionError(f"check_equivalent cannot read the outputs of the layers of keras model "
                              f"'{model.name}' ({type(e).__name__}); it reads functional and Sequential models "
                              "whose layers are called once") from None
    _PROBES[model] = (key, probe, copies)
    return probe, copies


def _keras_outputs(model, pairs, x):
    import keras
    probe, copies = _probe(model, pairs)
    for full, layer in copies:  # the copies follow the layers' current weights
        full.set_weights(layer.get_weights())
    values = [np.asarray(keras.ops.convert_to_numpy(v)) for v in probe.predict_on_batch(x)]
    return values[:-1], values[-1]


# --- gradients ------------------------------------------------------------------------------------------

def _gradient_differences(torch_model, keras_model, pairs, x, y) -> list[GradientDifference]:
    import torch
    from parity.lockstep import keras_gradients
    y = np.asarray(_to_numpy(y)).astype(np.int64)
    params = {name: p for name, p in torch_model.named_parameters() if p.requires_grad}
    was_training = torch_model.training
    torch_model.eval()
    try:
        loss = torch.nn.functional.cross_entropy(torch_model(torch.from_numpy(x)), torch.from_numpy(y))
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    finally:
        torch_model.train(was_training)
    grads = {name: (g if g is not None else torch.zeros_like(p)) for (name, p), g in zip(params.items(), grads)}
    owner = {}
    for t, k in pairs:
        for suffix in t.directions:
            for attr in t.param_attrs(suffix):
                name = t.full_name(attr)
                if t.kind in ("rnn", "lstm") and "bias_hh" in attr and name in grads:
                    # Keras's one bias stands for bias_ih + bias_hh; both have its gradient, and the
                    # mapping adds the two: map bias_ih's alone.
                    grads[name] = torch.zeros_like(grads[name])
        for part in k.parts:
            for w in part.weights:
                owner[w.path] = t
    expected = torch_to_keras_arrays(torch_model, keras_model, values=grads)
    actual = keras_gradients(keras_model, x, y.astype(np.int32), training=False)
    return [GradientDifference(owner[path].index, owner[path].name, path, max_abs_diff(expected[path], actual[path]),
                               _scale(expected[path]))
            for path in expected if path in actual]
