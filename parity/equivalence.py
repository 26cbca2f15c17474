"""Compare a PyTorch model with its Keras twin, layer by layer: ``parity.check_equivalent``.

    report = check_equivalent(torch_model, keras_model, x)          # x: (batch, time, features)
    print(report)              # one row per paired layer, then the logits (and the gradients)
    report.max_abs_diff        # the largest of them all

Layers are paired exactly as ``parity.convert`` pairs them for a weight transfer
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
import weakref

import numpy as np

from common.errors import ConversionError
from parity.convert import _pairs, _to_numpy, torch_to_keras_arrays
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


@dataclasses.dataclass(frozen=True)
class GradientDifference:
    index: int            # the paired layer the weight belongs to
    torch_name: str
    keras_path: str       # the Keras variable, e.g. "rnn_1/simple_rnn_cell/kernel"
    max_abs_diff: float


@dataclasses.dataclass(frozen=True)
class EquivalenceReport:
    layers: list[LayerDifference]
    logits: float                                  # max |Δ| of the two models' outputs
    logits_shapes: tuple[tuple, tuple]
    gradients: list[GradientDifference] | None = None

    @property
    def max_abs_diff(self) -> float:
        values = [d.max_abs_diff for d in self.layers] + [self.logits]
        values += [g.max_abs_diff for g in self.gradients or []]
        return math.nan if any(math.isnan(v) for v in values) else max(values)

    def first_failure(self, atol: float) -> str | None:
        """A one-line description of the first comparison above ``atol`` (or nan), in layer order; None if none."""
        for d in self.layers:
            if not d.max_abs_diff <= atol:
                return (f"layer {d.index} (torch '{d.torch_name}', keras '{d.keras_name}'): "
                        f"{_differs(d.max_abs_diff, d.torch_shape, d.keras_shape, d.what)} (atol {atol:g})")
        if not self.logits <= atol:
            return (f"the logits: {_differs(self.logits, *self.logits_shapes, 'output')} (atol {atol:g}), "
                    "although every paired layer agrees: do the two forward passes use the layers the same way?")
        for g in self.gradients or []:
            if not g.max_abs_diff <= atol:
                return (f"layer {g.index} (torch '{g.torch_name}'): the loss gradient of keras weight "
                        f"'{g.keras_path}' differs by up to {g.max_abs_diff:.3g} (atol {atol:g})")
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
    return f"the {what} differs by up to {diff:.3g}"


def check_equivalent(torch_model, keras_model, x, y=None, *, gradients: bool = False) -> EquivalenceReport:
    """Run both models on ``x`` (``(batch, time, features)``) and measure, per paired layer, how far apart
    their outputs are; see the module docstring.  ``gradients=True`` also compares the loss gradients
    of every weight, for labels ``y``."""
    x = np.ascontiguousarray(_to_numpy(x), dtype=np.float32)
    pairs = _pairs("check_equivalent", torch_model, keras_model)
    torch_outs, torch_logits = _torch_outputs(torch_model, pairs, x)
    keras_outs, keras_logits = _keras_outputs(keras_model, pairs, x)
    layers = []
    for (t, k), a, b in zip(pairs, torch_outs, keras_outs, strict=True):
        what = "output" if t.kind == "linear" else "output sequence"
        layers.append(LayerDifference(t.index, t.name, k.layer.name, what, a.shape, b.shape, max_abs_diff(a, b)))
    report = EquivalenceReport(layers, max_abs_diff(torch_logits, keras_logits),
                               (torch_logits.shape, keras_logits.shape))
    if gradients:
        if y is None:
            raise ValueError("gradients=True needs the labels y")
        report = dataclasses.replace(report, gradients=_gradient_differences(torch_model, keras_model, pairs, x, y))
    return report


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
    return [GradientDifference(owner[path].index, owner[path].name, path, max_abs_diff(expected[path], actual[path]))
            for path in expected if path in actual]
