"""Convert a trained model file between PyTorch and Keras 3: ``python -m parity convert SRC DST``.

SRC is one of:

* a PyTorch state dict, ``torch.save(model.state_dict(), path)``, with any module
  names (the notebook's ``rnn1``, ``rnn2``, ``rnn3``, ``fc``; one ``nn.RNN(num_layers=3)``...);
* this project's ``model.pt`` or checkpoint, ``{"model": state dict, "optimizer": ...}``
  (the optimizer state is not converted), or a ``.pt`` this command wrote;
* a ``.keras`` file, loaded with ``safe_mode=True`` through ``keras_version.train.load_model``.

DST ends in ``.keras`` (a whole Keras model, ``keras.models.load_model(DST, safe_mode=True)``)
or ``.pt``/``.pth`` (``{"model": StackedRNN state dict, "architecture": StackedRNN's
arguments}``, which ``torch_version.train.load_model(DST, StackedRNN(**architecture))``
reads, as does ``StackedRNN(**architecture).load_state_dict(torch.load(DST, weights_only=True)["model"])``).

The architecture is inferred from the weights alone (:func:`infer_from_state_dict`,
:func:`infer_from_keras`) and must be a stack of one recurrent cell followed by one
linear classifier: this project's ``StackedRNN``.  Whatever the weights cannot say
is an assumption, printed (``nonlinearity``: ``--nonlinearity``; the order of the
layers; ``batch_first``).  Whatever cannot be mapped exactly is refused with one
line naming the tensor or layer.  Then both models run the first 1000 Fashion-MNIST
test images (a seeded random batch when the data is not on this machine or the
input is not 28 features wide), the largest difference of their logits is printed,
and DST is written only if it is at most 1e-5.  Files are never unpickled beyond
tensors (``torch.load(weights_only=True)``), nor Keras code deserialised.

The table of every constructor argument and what happens to it is in ``docs/convert.md``.
"""
from __future__ import annotations

import dataclasses
import math
import pickle
import re
import stat
import sys
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from common.checkpoint import atomic_write, check_keras_archive
from common.config import check_nonlinearity
from common.errors import CheckpointError, ConversionError, DataError

__all__ = ["Architecture", "ConvertResult", "convert_file", "infer_from_state_dict", "infer_from_keras",
           "read_source", "self_check_inputs", "TOLERANCE", "CHECK_EXAMPLES"]

TOLERANCE = 1e-5        # largest |Δ logits| accepted by the self-check
CHECK_EXAMPLES = 1000   # test images (or random sequences) the self-check runs
TORCH_SUFFIXES = (".pt", ".pth")
HOW_TO_SAVE = "save one with torch.save(model.state_dict(), path)"
WHAT_SRC_IS = ("give a state dict saved with torch.save(model.state_dict(), path), this project's model.pt, "
               "or a .keras file")
_CELL_BY_GATES = {1: "rnn", 3: "gru", 4: "lstm"}
_TORCH_CLASS = {"rnn": "nn.RNN", "gru": "nn.GRU", "lstm": "nn.LSTM"}
_RECURRENT_PARAM = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")


@dataclasses.dataclass(frozen=True)
class Architecture:
    """The arguments of ``torch_version.model.StackedRNN`` and ``keras_version.model.build_model``."""
    input_size: int
    hidden_size: int
    num_layers: int
    num_classes: int
    cell: str
    bidirectional: bool
    nonlinearity: str = "tanh"
    bias: bool = True

    def kwargs(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return "StackedRNN(" + ", ".join(f"{k}={v!r}" for k, v in self.kwargs().items()) + ")"


@dataclasses.dataclass
class ConvertResult:
    src: Path
    dst: Path
    architecture: Architecture
    max_abs_diff: float     # largest |Δ logits| between the SRC model and the written DST model
    check_input: str        # what the self-check ran on
    lines: list[str]        # everything that was printed


# --- Reading SRC ----------------------------------------------------------------------------------

def _sniff(path: Path) -> str:
    """``"keras"`` or ``"torch"``, from the bytes (a ``.keras`` file and a torch file are both zips)."""
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give the model file in it (e.g. {path / 'model.pt'})")
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block the first read forever
        raise CheckpointError(f"{path} is not a regular file; {WHAT_SRC_IS}")
    with open(path, "rb") as f:
        head = f.read(4)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            kind = "keras" if "config.json" in archive.namelist() else "torch"
        # entry sizes from the zip's directory, before anything is inflated
        check_keras_archive(path, "Keras model" if kind == "keras" else "PyTorch file")
        return kind
    if head.startswith(b"PK"):
        raise CheckpointError(f"{path} is a zip archive cut short (it has no central directory): the file is "
                              "truncated; copy or save it again")
    if path.suffix == ".keras":
        raise CheckpointError(f"{path} is not a .keras file (a .keras file is a zip archive); {WHAT_SRC_IS}")
    return "torch"


def _load_torch(path: Path):
    import torch
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+)", str(e))
        if found is None:
            raise CheckpointError(f"{path} is not a readable PyTorch file (UnpicklingError); {WHAT_SRC_IS}") from None
        raise CheckpointError(
            f"{path} refers to the Python object {found.group(1)} (a whole pickled model?); it is refused because "
            "convert never runs code from a file (torch.load(weights_only=True)): save the weights with "
            "torch.save(model.state_dict(), path)") from None
    except Exception as e:  # torch raises KeyError, RuntimeError, EOFError... for files it cannot read
        raise CheckpointError(f"{path} is not a readable PyTorch file ({type(e).__name__}); {WHAT_SRC_IS}") from None


def _state_dict_of(path: Path, loaded) -> tuple[dict, dict | None, str]:
    """``(state dict, recorded architecture or None, description)`` of what ``torch.load`` returned."""
    import torch
    recorded = None
    if isinstance(loaded, Mapping) and isinstance(loaded.get("model"), Mapping):
        state, recorded = loaded["model"], loaded.get("architecture")
        others = [str(k) for k in loaded if k not in ("model", "architecture")]
        kind = "a checkpoint {'model': state dict" + "".join(f", {str(k)!r}: ..." for k in loaded if k != "model") + "}"
        if others:
            kind += f" ({', '.join(others)}: not converted)"
    elif isinstance(loaded, Mapping):
        state, kind = loaded, "a PyTorch state dict"
    else:
        raise CheckpointError(f"{path} holds a {type(loaded).__name__}, not a state dict; {HOW_TO_SAVE}")
    if not state:
        raise CheckpointError(f"{path} holds an empty state dict; {HOW_TO_SAVE}")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            what = f"is not a tensor ({type(value).__name__})" if isinstance(key, str) else "is not named by a string"
            raise CheckpointError(f"{path}: entry {str(key)!r} {what}, so this is not a state dict; {HOW_TO_SAVE} "
                                  "(this project's checkpoints keep it under 'model')")
        if value.dtype != torch.float32:
            raise ConversionError(f"tensor {key!r} in {path} is {str(value.dtype).removeprefix('torch.')}; convert "
                                  "maps float32 models (both sides compute in float32): call model.float() before "
                                  "saving the state dict")
    if recorded is not None and not isinstance(recorded, Mapping):
        raise CheckpointError(f"{path}: its 'architecture' entry is a {type(recorded).__name__}, not a dict")
    return dict(state), recorded, f"{kind}, {len(state)} tensors"


@dataclasses.dataclass
class _Module:
    """The tensors of one torch module in a state dict, in file order."""
    prefix: str                     # "rnn1", "rnns.0", "" for a bare module
    tensors: dict[str, object]      # parameter name -> tensor

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def shape(self, name: str) -> tuple:
        return tuple(self.tensors[name].shape)

    def show(self, name: str) -> str:
        return f"tensor {self.key(name)!r} {self.shape(name)}"


def _modules(state: dict) -> list[_Module]:
    modules: dict[str, _Module] = {}
    for key, tensor in state.items():
        prefix, _, name = key.rpartition(".")
        modules.setdefault(prefix, _Module(prefix, {})).tensors[name] = tensor
    return list(modules.values())


@dataclasses.dataclass
class _Recurrent:
    module: _Module
    cell: str
    hidden: int
    input_size: int
    layers: int
    directions: int
    bias: bool

    def describe(self) -> str:
        extra = (f", num_layers={self.layers}" if self.layers > 1 else "") + (
            ", bidirectional=True" if self.directions == 2 else "") + ("" if self.bias else ", bias=False")
        return f"{_TORCH_CLASS[self.cell]}({self.input_size}, {self.hidden}{extra})"


_WHAT_CONVERT_READS = "convert reads stacked recurrent layers followed by one Linear classifier"
_NOT_OURS = f"belongs to neither a recurrent layer (nn.RNN, nn.GRU, nn.LSTM) nor a Linear; {_WHAT_CONVERT_READS}"


def _recurrent(m: _Module) -> _Recurrent:
    """Check one nn.RNN/nn.GRU/nn.LSTM's tensors and describe it."""
    found: dict[tuple[int, str], dict[str, str]] = {}  # (layer, "" | "_reverse") -> {kind: parameter name}
    for name in m.tensors:
        kind, layer, suffix = _RECURRENT_PARAM.match(name).groups()
        if kind == "weight_hr":
            raise ConversionError(f"{m.show(name)}: an LSTM with proj_size={m.shape(name)[0]} (a projected hidden "
                                  "state) has no Keras equivalent")
        found.setdefault((int(layer), suffix or ""), {})[kind] = name
    layers = sorted({layer for layer, _ in found})
    for expected, layer in enumerate(layers):
        if layer != expected:
            first = next(name for (k, _), names in found.items() if k == layer for name in names.values())
            raise ConversionError(f"{m.show(first)}: '{m.prefix}' has layer {layer} but no layer {expected} "
                                  "(a gap in the layers)")
    directions = 2 if any(suffix for _, suffix in found) else 1
    first = found.get((0, ""), {})
    if "weight_hh" not in first:
        any_name = next(iter(m.tensors))
        raise ConversionError(f"{m.show(any_name)}: '{m.prefix}' lacks {m.key('weight_hh_l0')!r}, so its hidden size "
                              "is unknown")
    hidden = m.shape(first["weight_hh"])[1]
    rows = m.shape(first["weight_hh"])[0]
    if hidden == 0 or rows % hidden or rows // hidden not in _CELL_BY_GATES:
        raise ConversionError(f"{m.show(first['weight_hh'])}: {rows} rows is not 1, 3 or 4 times the hidden size "
                              f"{hidden}, so it is no nn.RNN, nn.GRU or nn.LSTM")
    gates = rows // hidden
    cell = _CELL_BY_GATES[gates]
    has_bias = "bias_ih" in first
    wanted = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if has_bias else [])
    input_size = None
    for layer in layers:
        for suffix in ([""] if directions == 1 else ["", "_reverse"]):
            names = found.get((layer, suffix), {})
            # a tensor to name: one of this direction's, else one of the other direction's
            shown = next(iter((names or found[(layer, "" if suffix else "_reverse")]).values()))
            for kind in wanted:
                if kind not in names:
                    raise ConversionError(f"{m.show(shown)}: '{m.prefix}' lacks {m.key(f'{kind}_l{layer}{suffix}')!r}")
            if set(names) - set(wanted):
                extra = sorted(set(names) - set(wanted))[0]
                raise ConversionError(f"{m.show(names[extra])}: '{m.prefix}' has {extra} in layer {layer} but not in "
                                      "layer 0 (torch gives every layer the same parameters)")
            in_size = m.shape(names["weight_ih"])[1] if layer == 0 else hidden * directions
            expected = {"weight_ih": (gates * hidden, in_size), "weight_hh": (gates * hidden, hidden),
                        "bias_ih": (gates * hidden,), "bias_hh": (gates * hidden,)}
            for kind in wanted:
                if m.shape(names[kind]) != expected[kind]:
                    raise ConversionError(
                        f"{m.show(names[kind])}: expected {expected[kind]} for an {_TORCH_CLASS[cell]} of hidden size "
                        f"{hidden}" + (f" fed by {in_size} features" if kind == "weight_ih" else "")
                        + ": the shapes do not chain")
            input_size = input_size or in_size
    return _Recurrent(m, cell, hidden, input_size, len(layers), directions, has_bias)


def infer_from_state_dict(state: dict, nonlinearity: str | None = None, recorded: Mapping | None = None,
                          where: str = "the state dict") -> tuple[Architecture, dict, list[str], list[str]]:
    """Infer the StackedRNN that ``state`` (any module names) describes.

    Returns ``(architecture, state dict renamed for StackedRNN, one line per source
    module, the assumptions made)``.  Raises ConversionError naming the first tensor
    that cannot be mapped.  ``recorded`` is the architecture a ``.pt`` written by
    convert stores (its nonlinearity, which weights cannot show).
    """
    import torch
    recurrent: list[_Recurrent] = []
    linear: _Module | None = None
    for m in _modules(state):
        names = list(m.tensors)
        if all(_RECURRENT_PARAM.match(n) for n in names):
            if linear is not None:
                raise ConversionError(f"{m.show(names[0])} comes after the Linear '{linear.prefix}'; "
                                      f"{_WHAT_CONVERT_READS}")
            recurrent.append(_recurrent(m))
            continue
        bad = next((n for n in names if n not in ("weight", "bias")), None)
        if bad is None and (len(m.shape("weight")) != 2 if "weight" in names else True):
            bad = "weight" if "weight" in names else names[0]
        if bad is None and "bias" in names and m.shape("bias") != (m.shape("weight")[0],):
            bad = "bias"
        if bad is not None:
            raise ConversionError(f"{m.show(bad)} {_NOT_OURS}")
        if linear is not None:
            raise ConversionError(f"{m.show('weight')}: a second Linear after '{linear.prefix}'; convert reads one "
                                  "Linear classifier after the recurrent layers (StackedRNN)")
        if not recurrent:
            raise ConversionError(f"{m.show('weight')}: a 2-d weight (a Linear? an Embedding?) before any recurrent "
                                  f"layer; {_WHAT_CONVERT_READS}")
        linear = m
    if not recurrent:
        raise ConversionError(f"{where} holds no nn.RNN, nn.GRU or nn.LSTM weights; {_WHAT_CONVERT_READS}")
    if linear is None:
        raise ConversionError(f"{where} has recurrent layers but no Linear after them: convert needs the classifier "
                              f"too (e.g. the notebook's fc)")

    first = recurrent[0]
    features = first.input_size
    for r in recurrent:
        name = next(n for n in r.module.tensors if n.startswith("weight_ih"))
        for attr, what in (("cell", "cell"), ("hidden", "hidden size"), ("directions", "number of directions")):
            if getattr(r, attr) != getattr(first, attr):
                raise ConversionError(
                    f"{r.module.show(name)}: '{r.module.prefix}' has {what} {getattr(r, attr)} where "
                    f"'{first.module.prefix}' has {getattr(first, attr)}; convert maps stacks of equal layers "
                    "(StackedRNN)")
        if r.input_size != features:
            raise ConversionError(f"{r.module.show(name)}: '{r.module.prefix}' takes {r.input_size} features but the "
                                  f"layer before it gives {features}: the shapes do not chain")
        features = r.hidden * r.directions
    weight = linear.tensors["weight"]
    if weight.shape[1] != features:
        raise ConversionError(f"{linear.show('weight')}: the Linear takes {weight.shape[1]} features but the last "
                              f"recurrent layer gives {features}: the shapes do not chain")

    assumptions = []
    if first.cell == "rnn":
        stored = recorded.get("nonlinearity") if recorded else None
        if nonlinearity is not None and stored is not None and nonlinearity != stored:
            raise ConversionError(f"--nonlinearity {nonlinearity} contradicts {where}, which records "
                                  f"nonlinearity={stored!r}")
        nonlinearity = nonlinearity or stored
        if nonlinearity is None:
            nonlinearity = "tanh"
            assumptions.append("nonlinearity='tanh', nn.RNN's default, which weights cannot show "
                               "(pass --nonlinearity relu for nn.RNN(nonlinearity='relu'))")
    check_nonlinearity(first.cell, nonlinearity or "tanh")
    bias = any(r.bias for r in recurrent)
    arch = Architecture(input_size=first.input_size, hidden_size=first.hidden,
                        num_layers=sum(r.layers for r in recurrent), num_classes=int(weight.shape[0]),
                        cell=first.cell, bidirectional=first.directions == 2,
                        nonlinearity=nonlinearity or "tanh", bias=bias)
    if recorded is not None:
        for key, value in arch.kwargs().items():
            if key in recorded and recorded[key] != value:
                raise ConversionError(f"{where} records {key}={recorded[key]!r} but its weights say {key}={value!r}")

    renamed, lines, index = {}, [], 0
    for r in recurrent:
        targets = []
        for layer in range(r.layers):
            for suffix in ([""] if r.directions == 1 else ["", "_reverse"]):
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    source = f"{kind}_l{layer}{suffix}"
                    if source in r.module.tensors:
                        value = r.module.tensors[source]
                    elif bias:  # a bias-free layer in a model with biases: zeros compute the same
                        value = torch.zeros(r.module.shape(f"weight_hh_l{layer}{suffix}")[0])
                    else:
                        continue
                    renamed[f"rnns.{index}.{kind}_l0{suffix}"] = value
            targets.append(f"rnns.{index}")
            index += 1
        lines.append(f"{r.module.prefix or '(root)'}: {r.describe()}" + ("" if r.bias or not bias else ", no biases: "
                     "zeros in the converted model (the same outputs)") + f" -> {', '.join(targets)}")
    renamed["fc.weight"] = weight
    renamed["fc.bias"] = linear.tensors.get("bias", torch.zeros(weight.shape[0]))
    lines.append(f"{linear.prefix or '(root)'}: nn.Linear({weight.shape[1]}, {weight.shape[0]}"
                 + ("" if "bias" in linear.tensors else ", bias=False: a zero bias in the converted model, the same "
                    "outputs") + ") -> fc")
    assumptions.append("the model's forward runs these layers in this order on (batch, time, features) input "
                       "(batch_first=True) and feeds the last time step to the Linear, as the notebook's RNNModel does"
                       + ("; with bidirectional layers, the last step means h_n: the forward direction's output at "
                          "the last step and the backward direction's at the first (what Keras's Bidirectional "
                          "returns), not out[:, -1]" if arch.bidirectional else ""))
    return arch, renamed, lines, assumptions


def infer_from_keras(model, nonlinearity: str | None = None,
                     where: str = "the Keras model") -> tuple[Architecture, list[str], list[str]]:
    """Infer the StackedRNN that a Keras model is, or raise ConversionError naming the first layer that is not.

    Returns ``(architecture, one line per layer, notes)``.  The model must be a chain:
    one input, recurrent layers (``SimpleRNN``, ``GRU``, ``LSTM``, or ``Bidirectional``
    of one), all but the last returning sequences, then one ``Dense``; ``Dropout``
    layers (inference: the identity) are skipped.  What the cells compute is checked
    layer by layer when the weights are mapped (``parity.convert``).
    """
    import keras
    supported = (keras.layers.SimpleRNN, keras.layers.GRU, keras.layers.LSTM)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConversionError(f"{where} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; convert maps "
                              "one input and one output (StackedRNN)")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 3:
        raise ConversionError(f"{where} takes input of shape {shape}; a recurrent stack takes (batch, time, features)")
    if shape[0] is not None:
        raise ConversionError(f"{where} declares a fixed batch size of {shape[0]} (batch_shape); StackedRNN takes "
                              "batches of any size: rebuild it with keras.Input(shape=(time, features))")

    def flat(layer):
        for sub in layer.layers:
            yield from (flat(sub) if isinstance(sub, keras.Model) else [sub])

    recurrent, dense, notes = [], None, []
    for layer in flat(model):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.layers.Dropout):
            notes.append(f"'{layer.name}' ({type(layer).__name__}) acts in training only: not carried over")
            continue
        if isinstance(layer, (keras.layers.Bidirectional, *supported)):
            inner = layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer
            if not isinstance(inner, supported):
                raise ConversionError(f"keras layer '{layer.name}' wraps {type(inner).__name__}; convert maps "
                                      "SimpleRNN, GRU and LSTM")
            if dense is not None:
                raise ConversionError(f"keras layer '{layer.name}' comes after the Dense '{dense.name}'; convert reads "
                                      "stacked recurrent layers followed by one Dense classifier")
            recurrent.append((layer, inner))
        elif isinstance(layer, keras.layers.Dense):
            if dense is not None:
                raise ConversionError(f"keras layer '{layer.name}' is a second Dense after '{dense.name}'; convert "
                                      "reads one Dense classifier after the recurrent layers (StackedRNN)")
            if not recurrent:
                raise ConversionError(f"keras layer '{layer.name}' is a Dense before any recurrent layer; convert "
                                      "reads stacked recurrent layers followed by one Dense classifier")
            dense = layer
        else:
            raise ConversionError(f"keras layer '{layer.name}' ({type(layer).__name__}) has no counterpart in "
                                  "StackedRNN (recurrent layers, then one Dense); convert refuses it rather than "
                                  "change what the model computes")
    if not recurrent:
        raise ConversionError(f"{where} has no SimpleRNN, GRU or LSTM layer; convert reads stacked recurrent layers "
                              "followed by one Dense classifier")
    if dense is None:
        raise ConversionError(f"{where} has recurrent layers but no Dense after them: convert needs the classifier too")

    act = keras.activations.serialize
    first_layer, first = recurrent[0]
    lines = []
    for i, (layer, inner) in enumerate(recurrent):
        bidirectional = isinstance(layer, keras.layers.Bidirectional)
        last = i == len(recurrent) - 1
        if inner.return_state:
            raise ConversionError(f"keras layer '{layer.name}' has return_state=True; StackedRNN passes only the "
                                  "outputs on")
        if last and inner.return_sequences:
            raise ConversionError(f"keras layer '{layer.name}' is the last recurrent layer but returns the whole "
                                  "sequence (return_sequences=True); StackedRNN's classifier reads the last step")
        if type(inner) is not type(first) or inner.units != first.units or inner.use_bias != first.use_bias \
                or bidirectional != isinstance(first_layer, keras.layers.Bidirectional) \
                or act(inner.activation) != act(first.activation):
            raise ConversionError(
                f"keras layer '{layer.name}' ({_describe_keras(layer, inner)}) differs from '{first_layer.name}' "
                f"({_describe_keras(first_layer, first)}); convert maps stacks of equal layers (StackedRNN)")
        lines.append(f"{layer.name}: {_describe_keras(layer, inner)} -> rnns.{i}")
    lines.append(f"{dense.name}: Dense({dense.units}"
                 + (f", activation={act(dense.activation)!r}" if act(dense.activation) != "linear" else "")
                 + (", use_bias=False" if not dense.use_bias else "") + ") -> fc")
    if dense.use_bias is False:
        raise ConversionError(f"keras layer '{dense.name}' has use_bias=False; StackedRNN's Linear has a bias")

    cell = {"SimpleRNN": "rnn", "GRU": "gru", "LSTM": "lstm"}[
        next(c.__name__ for c in supported if isinstance(first, c))]
    activation = act(first.activation) if cell == "rnn" else "tanh"
    if cell == "rnn" and activation not in ("tanh", "relu"):
        raise ConversionError(f"keras layer '{first_layer.name}' uses activation={activation!r}; torch's nn.RNN "
                              "offers tanh and relu only")
    if nonlinearity is not None and nonlinearity != activation:
        raise ConversionError(f"--nonlinearity {nonlinearity} contradicts {where}, whose layers use "
                              f"activation={activation!r}; leave the flag out")
    arch = Architecture(input_size=int(shape[2]), hidden_size=int(first.units), num_layers=len(recurrent),
                        num_classes=int(dense.units), cell=cell,
                        bidirectional=isinstance(first_layer, keras.layers.Bidirectional),
                        nonlinearity=activation, bias=bool(first.use_bias))
    return arch, lines, notes


def _describe_keras(layer, inner) -> str:
    import keras
    act = keras.activations.serialize
    text = f"{type(inner).__name__}({inner.units}, activation={act(inner.activation)!r}"
    text += "" if inner.use_bias else ", use_bias=False"
    text += ", return_sequences=True)" if inner.return_sequences else ")"
    return f"Bidirectional({text})" if isinstance(layer, keras.layers.Bidirectional) else text


@dataclasses.dataclass
class Source:
    """What SRC holds, as a StackedRNN with its weights (and the Keras model, for a .keras SRC)."""
    kind: str                 # "torch" | "keras"
    description: str
    architecture: Architecture
    torch_model: object       # torch_version.model.StackedRNN holding SRC's weights
    keras_model: object       # the loaded Keras model, or None
    layers: list[str]         # one line per layer: source -> StackedRNN name
    assumptions: list[str]
    notes: list[str]
    timesteps: int | None     # declared sequence length (Keras), None when unknown


def _keras_ready() -> None:
    """Import TensorFlow first with stderr silenced (Keras imports it on every backend)."""
    from common.quiet import import_tensorflow_quietly
    import_tensorflow_quietly()


def read_source(src: Path, nonlinearity: str | None = None) -> Source:
    """Read SRC and turn it into a StackedRNN; raise a one-line UserError when that is impossible."""
    from torch_version.model import StackedRNN
    src = Path(src)
    kind = _sniff(src)
    if kind == "torch":
        state, recorded, description = _state_dict_of(src, _load_torch(src))
        arch, renamed, layers, assumptions = infer_from_state_dict(state, nonlinearity, recorded, where=str(src))
        model = StackedRNN(**arch.kwargs())
        model.load_state_dict(renamed)
        return Source("torch", description, arch, model, None, layers, assumptions, [], None)
    _keras_ready()
    from keras_version.train import load_model
    keras_model = load_model(src)
    arch, layers, notes = infer_from_keras(keras_model, nonlinearity, where=str(src))
    from parity.convert import keras_to_torch
    model = StackedRNN(**arch.kwargs())
    keras_to_torch(keras_model, model)
    description = (f"a Keras model '{keras_model.name}' ({type(keras_model).__name__}, "
                   f"{len(keras_model.weights)} weights")
    description += ", optimizer state: not converted)" if getattr(keras_model, "optimizer", None) else ")"
    timesteps = keras_model.inputs[0].shape[1]
    return Source("keras", description, arch, model, keras_model, layers, [], notes, timesteps)


# --- The self-check ---------------------------------------------------------------------------------

def self_check_inputs(input_size: int, timesteps: int | None = None, n: int = CHECK_EXAMPLES) -> tuple[np.ndarray, str]:
    """The first ``n`` Fashion-MNIST test images (preprocessed as for training), or ``n`` seeded random
    sequences when the data is not on this machine or the model does not read 28 x 28 images."""
    from common.data import FILES, find_local_dir, preprocess, read_idx
    why = f"the model reads {input_size} features per step, not 28"
    if input_size == 28 and timesteps in (None, 28):
        try:
            folder = find_local_dir()
            if folder is not None:
                images = read_idx(folder / FILES["test"][0], 3)[:n]
                return preprocess(images), f"the first {n} Fashion-MNIST test images ({folder})"
            why = "Fashion-MNIST is not on this machine"
        except DataError as e:
            why = f"Fashion-MNIST could not be read: {e}"
    elif input_size == 28:
        why = f"the model declares {timesteps} time steps, not 28"
    steps = timesteps or 28
    x = np.random.default_rng(0).uniform(-1, 1, (n, steps, input_size)).astype(np.float32)
    return x, f"{n} random sequences of shape ({steps}, {input_size}), seed 0 ({why})"


def logits(model, x: np.ndarray) -> np.ndarray:
    """The logits of a torch module (eval mode, no gradients) or a Keras model, as float32 NumPy."""
    keras = sys.modules.get("keras")  # a Keras model on the torch backend is an nn.Module too: ask Keras first
    if keras is None or not isinstance(model, keras.Model):
        import torch
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
        finally:
            model.train(was_training)
    return np.asarray(keras.ops.convert_to_numpy(model.predict(x, batch_size=len(x), verbose=0)))


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b|; inf when the shapes differ, nan when either holds a nan."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return math.inf
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


# --- SRC -> DST -----------------------------------------------------------------------------------

def target_kind(dst: Path) -> str:
    """``"keras"`` or ``"torch"`` from DST's suffix; ConversionError for any other suffix."""
    dst = Path(dst)
    if dst.suffix == ".keras":
        return "keras"
    if dst.suffix in TORCH_SUFFIXES:
        return "torch"
    shown = f"suffix {dst.suffix!r}" if dst.suffix else "no suffix"
    raise ConversionError(f"DST {dst} has {shown}; name it *.keras (a Keras model) or *.pt (a PyTorch state dict)")


def convert_file(src, dst, nonlinearity: str | None = None, out: Callable[[str], None] = print) -> ConvertResult:
    """Convert SRC to DST (see the module docstring), printing each step through ``out``.

    DST is written atomically, and only after the model read back from it has
    passed the self-check; on any error DST is left as it was.  The Keras backend
    is whatever ``KERAS_BACKEND`` said when Keras was first imported.
    """
    src, dst = Path(src), Path(dst)
    target = target_kind(dst)
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        out(line)

    source = read_source(src, nonlinearity)
    arch = source.architecture
    say(f"source: {src}: {source.description}")
    say("layers, in the order of the file:")
    for line in source.layers:
        say(f"  {line}")
    for note in source.notes:
        say(f"  note: {note}")
    say(f"architecture: {arch}")
    for assumption in source.assumptions:
        say(f"assumed: {assumption}")

    x, what = self_check_inputs(arch.input_size, source.timesteps)
    reference = source.keras_model if source.kind == "keras" else source.torch_model
    expected = logits(reference, x)
    measured: list[float] = []

    def write_and_check(tmp: Path) -> None:
        if target == "torch":
            import torch
            from torch_version.model import StackedRNN
            from torch_version.train import load_model
            torch.save({"model": source.torch_model.state_dict(), "architecture": arch.kwargs()}, tmp)
            written = load_model(tmp, StackedRNN(**arch.kwargs()))
        else:
            _keras_ready()
            from keras_version.model import build_model
            from keras_version.train import load_model
            from parity.convert import torch_to_keras
            model = build_model(**arch.kwargs(), timesteps=source.timesteps)
            torch_to_keras(source.torch_model, model)
            model.save(tmp)
            written = load_model(tmp)
        diff = max_abs_diff(logits(written, x), expected)
        measured.append(diff)
        say(f"self-check{_backend_note(source.kind, target)} on {what}: largest |Δ logits| = {diff:.2e} "
            f"(limit {TOLERANCE:.0e})")
        if not diff <= TOLERANCE:  # also catches nan
            raise ConversionError(f"self-check failed: the logits of {src} and of the converted model differ by up to "
                                  f"{diff:.2e}, more than {TOLERANCE:.0e}; {dst} was not written")

    try:
        atomic_write(dst, write_and_check)
    except OSError as e:
        raise CheckpointError(f"cannot write {dst} ({e.strerror or type(e).__name__}); choose another DST") from None
    if target == "keras":
        say(f"wrote {dst}: load it with keras.models.load_model(path, safe_mode=True)")
    else:
        say(f"wrote {dst}: {{'model': state dict, 'architecture': dict}}; load it with "
            f"StackedRNN(**architecture).load_state_dict(torch.load(path, weights_only=True)['model'])")
    return ConvertResult(src, dst, arch, measured[0], what, lines)


def _backend_note(source_kind: str, target: str) -> str:
    if "keras" not in (source_kind, target):
        return ""
    import keras
    return f" (Keras on {keras.config.backend()})"
