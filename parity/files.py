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
linear classifier: this project's ``StackedRNN``.  What the weights cannot say and
what changes the outputs is never guessed: ``nn.RNN``'s nonlinearity (``--nonlinearity``)
and a bidirectional stack's readout (``--readout h_n|last-output``) come from the flag
or from what SRC records, or the conversion is refused.  What is still assumed (the
order of the layers, ``batch_first``) is printed.  Whatever cannot be mapped exactly
is refused with one line naming the tensor or layer, and so are tensors that are
sparse, quantized, meta or non-finite, or that describe more than ``MAX_MODEL_BYTES``.
Then both models run the first 1000 Fashion-MNIST test images (a seeded random batch
when the data is not on this machine or the input is not 28 features wide), the
largest difference of their logits is printed, and DST is written only if it is at
most 1e-5: a check of the converted model against the architecture the flags describe,
not against the user's forward, which only :func:`convert_module` and
:func:`convert_keras_model` can run.  DST is never SRC, never an existing file without
``overwrite``, never in a folder that does not exist.  Files are never unpickled beyond
tensors (``torch.load(weights_only=True)``), nor Keras code deserialised.

The table of every constructor argument and what happens to it is in ``docs/convert.md``.
"""
from __future__ import annotations

import dataclasses
import math
import os
import pickle
import re
import shlex
import stat
import sys
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from common.checkpoint import atomic_write, check_keras_archive
from common.config import READOUTS, check_choice, check_nonlinearity
from common.errors import CheckpointError, ConversionError, DataError

__all__ = ["Architecture", "ConvertResult", "convert_file", "check_destination", "infer_from_state_dict",
           "infer_from_keras", "read_source", "self_check_inputs", "TOLERANCE", "CHECK_EXAMPLES", "MAX_MODEL_BYTES"]

TOLERANCE = 1e-5        # largest |Δ logits| accepted by the self-check
CHECK_EXAMPLES = 1000   # test images (or random sequences) the self-check runs
# What SRC's tensors may describe in all (numel x itemsize, whatever their strides: an expand()ed
# tensor of a few bytes on disk describes its whole shape, and every copy made here is that size).
# 1 GiB is 268 million float32 weights, about 16 times an LSTM of 2048 units.
MAX_MODEL_BYTES = 1 << 30
TORCH_SUFFIXES = (".pt", ".pth")
HOW_TO_SAVE = "save one with torch.save(model.state_dict(), path)"
WHAT_SRC_IS = ("give a state dict saved with torch.save(model.state_dict(), path), this project's model.pt, "
               "or a .keras file")
_CELL_BY_GATES = {1: "rnn", 3: "gru", 4: "lstm"}
_TORCH_CLASS = {"rnn": "nn.RNN", "gru": "nn.GRU", "lstm": "nn.LSTM"}
_RECURRENT_PARAM = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")
_STACKED_RNN_KEY = re.compile(r"^(rnns\.\d+\.(weight_ih|weight_hh|bias_ih|bias_hh)_l0(_reverse)?|fc\.(weight|bias))$")
_READOUT_MEANS = {"h_n": "h_n, each direction's final state (the forward direction's last step beside the "
                         "backward direction's first)",
                  "last-output": "out[:, -1], both directions at the last time step"}
_FILE_CHECK = ("the self-check of a file compares the converted model with the architecture the flags describe, "
               "not with your model's forward")


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
    readout: str = "h_n"    # what a bidirectional stack hands the Linear; "h_n" when unidirectional

    def kwargs(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        shown = {k: v for k, v in self.kwargs().items() if k != "readout" or self.bidirectional}
        return "StackedRNN(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


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
            names = archive.namelist()
        kind = "keras" if "config.json" in names else "torch"
        outside = next((n for n in names if n.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", n)), None)
        if outside is not None:
            raise CheckpointError(f"{path}: entry {outside!r} names a path outside the archive, which neither Keras "
                                  "nor torch.save writes; the file is refused unopened")
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
        others = [str(k) for k in loaded if k not in ("model", "architecture", "assumed")]
        if recorded is None and "optimizer" in loaded and all(
                isinstance(k, str) and _STACKED_RNN_KEY.match(k) for k in state):
            # this project's own training checkpoint: StackedRNN trains tanh layers read through h_n
            recorded = {"nonlinearity": "tanh", "readout": "h_n", "from": "project"}
        kind = "a checkpoint {'model': state dict" + "".join(f", {str(k)!r}: ..." for k in loaded
                                                             if k not in ("model", "assumed")) + "}"
        if others:
            kind += f" ({', '.join(others)}: not converted)"
    elif isinstance(loaded, Mapping):
        state, kind = loaded, "a PyTorch state dict"
    else:
        raise CheckpointError(f"{path} holds a {type(loaded).__name__}, not a state dict; {HOW_TO_SAVE}")
    if not state:
        raise CheckpointError(f"{path} holds an empty state dict; {HOW_TO_SAVE}")
    described = 0
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            what = f"is not a tensor ({type(value).__name__})" if isinstance(key, str) else "is not named by a string"
            raise CheckpointError(f"{path}: entry {str(key)!r} {what}, so this is not a state dict; {HOW_TO_SAVE} "
                                  "(this project's checkpoints keep it under 'model')")
        odd = ("sparse" if value.layout != torch.strided else "quantized" if value.is_quantized
               else "a meta tensor (a shape without values)" if value.is_meta else None)
        if odd is not None:
            raise ConversionError(f"tensor {key!r} in {path} is {odd}; convert maps the dense float32 weights of a "
                                  "trained model: save them with torch.save(model.state_dict(), path) after "
                                  "model.float() (and .to_dense() for a sparse tensor)")
        # what the tensor describes, whatever its strides (a stride-0 expand() takes no room on disk)
        described += value.numel() * value.element_size()
        if described > MAX_MODEL_BYTES:
            raise ConversionError(f"tensor {key!r} in {path} describes {tuple(value.shape)} values, which brings the "
                                  f"file's tensors to {described:,} bytes, more than the {MAX_MODEL_BYTES:,} convert "
                                  "accepts; a stacked RNN of this project's kind is far smaller: is this the right "
                                  "file?")
        if value.dtype != torch.float32:
            raise ConversionError(f"tensor {key!r} in {path} is {str(value.dtype).removeprefix('torch.')}; convert "
                                  "maps float32 models (both sides compute in float32): call model.float() before "
                                  "saving the state dict")
    for key, value in state.items():  # after the sizes: counting non-finite values copies the tensor
        bad = int(value.numel() - torch.isfinite(value).sum())
        if bad:
            kinds = sorted({"nan" if math.isnan(v) else "+inf" if v > 0 else "-inf"
                            for v in value[~torch.isfinite(value)].tolist()})
            raise ConversionError(f"tensor {key!r} in {path} holds {bad} non-finite value{'s' if bad > 1 else ''} "
                                  f"({', '.join(kinds)}); a model with such weights computes no usable logits, so "
                                  "it is refused: convert the last checkpoint whose weights were finite")
    if recorded is not None and not isinstance(recorded, Mapping):
        raise CheckpointError(f"{path}: its 'architecture' entry is a {type(recorded).__name__}, not a dict")
    if recorded is not None and recorded.get("from") != "project":
        recorded = dict(recorded)
        if "readout" not in recorded:
            # written by an older convert, which recorded its assumptions (tanh, h_n) as if they were facts
            recorded["assumed"] = ["nonlinearity", "readout"]
        else:
            recorded["assumed"] = list(loaded.get("assumed", ())) if isinstance(loaded.get("assumed"), list) else []
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
                          where: str = "the state dict", readout: str | None = None,
                          ) -> tuple[Architecture, dict, list[str], list[str]]:
    """Infer the StackedRNN that ``state`` (any module names) describes.

    Returns ``(architecture, state dict renamed for StackedRNN, one line per source
    module, the assumptions made)``.  Raises ConversionError naming the first tensor
    that cannot be mapped.  What weights cannot show must come from ``nonlinearity``
    (nn.RNN's) and ``readout`` (a bidirectional stack's, ``READOUTS``), or from
    ``recorded``, the architecture a ``.pt`` written by convert stores; otherwise
    ConversionError names the flag.  A recorded value listed in ``recorded["assumed"]``
    (an older convert guessed it) settles nothing, and a flag replaces it.
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
    bidirectional = first.directions == 2
    if readout is not None:
        check_choice("readout", readout, READOUTS)
    if nonlinearity is not None:
        check_nonlinearity(first.cell, nonlinearity)
    nonlinearity = _settled("nonlinearity", nonlinearity, recorded, where) if first.cell == "rnn" else "tanh"
    readout = _settled("readout", readout, recorded, where) if bidirectional else "h_n"
    if nonlinearity is None:
        stored = recorded.get("nonlinearity") if recorded else None
        says = (f"records nonlinearity={stored!r} only as an older convert's assumption" if stored
                else "records no nonlinearity")
        raise ConversionError(
            f"{where} holds nn.RNN weights, which are the same for tanh and relu, and {says}: pass "
            "--nonlinearity tanh or --nonlinearity relu, as your nn.RNN was built, or call "
            f"parity.convert_module(your_model, x), which checks against your model itself ({_FILE_CHECK})")
    if readout is None:
        stored = recorded.get("readout") if recorded else None
        says = f" ({where} records readout={stored!r} only as an older convert's assumption)" if stored else ""
        raise ConversionError(
            f"{where} holds bidirectional layers, and weights cannot show what your forward hands the Linear{says}: pass "
            "--readout h_n (each direction's final state) or --readout last-output (out[:, -1]), or call "
            f"parity.convert_module(your_model, x), which checks against your model itself ({_FILE_CHECK})")
    bias = any(r.bias for r in recurrent)
    arch = Architecture(input_size=first.input_size, hidden_size=first.hidden,
                        num_layers=sum(r.layers for r in recurrent), num_classes=int(weight.shape[0]),
                        cell=first.cell, bidirectional=bidirectional,
                        nonlinearity=nonlinearity, bias=bias, readout=readout)
    if recorded is not None:
        for key, value in arch.kwargs().items():
            if key in recorded and key not in recorded.get("assumed", ()) and recorded[key] != value \
                    and key not in ("from", "assumed"):
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
                       + (f"; the Linear reads {_READOUT_MEANS[readout]} (--readout {readout})"
                          if arch.bidirectional else "")
                       + f"; {_FILE_CHECK}: parity.convert_module(your_model, x) checks against it")
    return arch, renamed, lines, assumptions


def _settled(key: str, flag: str | None, recorded: Mapping | None, where: str) -> str | None:
    """The value of ``key`` from the flag or the file; None when neither settles it."""
    stored = recorded.get(key) if recorded else None
    assumed = stored is not None and key in recorded.get("assumed", ())
    option = f"--{key} {flag}"
    if flag is not None and stored is not None and flag != stored and not assumed:
        raise ConversionError(f"{option} contradicts {where}, which records {key}={stored!r}")
    if flag is not None:
        return flag
    return None if assumed else stored


def infer_from_keras(model, nonlinearity: str | None = None, where: str = "the Keras model",
                     readout: str | None = None) -> tuple[Architecture, list[str], list[str]]:
    """Infer the StackedRNN that a Keras model is, or raise ConversionError naming the first layer that is not.

    Returns ``(architecture, one line per layer, notes)``.  The model must be a chain:
    one input, recurrent layers (``SimpleRNN``, ``GRU``, ``LSTM``, or ``Bidirectional``
    of one), all but the last returning sequences, then one ``Dense``; ``Dropout``
    layers (inference: the identity) are skipped.  The last recurrent layer may return
    its sequence if the model then takes its last step, ``x[:, -1]`` (the readout
    ``"last-output"`` of a bidirectional stack).  What the cells compute is checked
    layer by layer when the weights are mapped (``parity.weights``).
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

    def flat(layer):  # layers and ops (x[:, -1] is an op, not a layer), in the order they run
        for sub in getattr(layer, "operations", layer.layers):
            yield from (flat(sub) if isinstance(sub, keras.Model) else [sub])

    recurrent, dense, notes, last_step = [], None, [], None
    for layer in flat(model):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if not isinstance(layer, keras.layers.Layer):  # an op called on the model's tensors
            if type(layer).__name__ == "GetItem" and recurrent and dense is None and last_step is None \
                    and _takes_last_step(layer):
                last_step = layer
                continue
            raise ConversionError(f"keras op '{layer.name}' ({type(layer).__name__}) has no counterpart in "
                                  "StackedRNN (recurrent layers, then x[:, -1] at most, then one Dense); convert "
                                  "refuses it rather than change what the model computes")
        if last_step is not None and dense is None and not isinstance(layer, keras.layers.Dense):
            raise ConversionError(f"keras layer '{layer.name}' comes after '{last_step.name}' (x[:, -1]); convert "
                                  "reads x[:, -1] only between the last recurrent layer and the Dense")
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
        if last and inner.return_sequences and last_step is None:
            raise ConversionError(f"keras layer '{layer.name}' is the last recurrent layer but returns the whole "
                                  "sequence (return_sequences=True); StackedRNN's classifier reads the last step")
        if last and last_step is not None and not inner.return_sequences:
            raise ConversionError(f"keras op '{last_step.name}' takes x[:, -1] of '{layer.name}', which returns one "
                                  "step already (return_sequences=False); convert reads x[:, -1] of a sequence only")
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
    bidirectional = isinstance(first_layer, keras.layers.Bidirectional)
    found = "last-output" if bidirectional and last_step is not None else "h_n"
    if readout is not None and bidirectional and readout != found:
        reads = ("takes x[:, -1] of the last layer's sequence" if found == "last-output"
                 else "reads each direction's final state (return_sequences=False)")
        raise ConversionError(f"--readout {readout} contradicts {where}, which {reads}: readout {found}; leave "
                              "the flag out")
    if last_step is not None:
        lines.insert(len(lines) - 1, f"{last_step.name}: x[:, -1]" + (" -> readout='last-output'" if bidirectional
                                                                       else " (the last step)"))
    arch = Architecture(input_size=int(shape[2]), hidden_size=int(first.units), num_layers=len(recurrent),
                        num_classes=int(dense.units), cell=cell, bidirectional=bidirectional,
                        nonlinearity=activation, bias=bool(first.use_bias), readout=found)
    return arch, lines, notes


def _takes_last_step(op) -> bool:
    """Whether a Keras ``GetItem`` op is ``x[:, -1]`` (or ``x[:, -1, :]``)."""
    try:
        key = op._inbound_nodes[0].arguments.args[1]
    except (AttributeError, IndexError):
        return False
    key = tuple(key) if isinstance(key, (list, tuple)) else (key,)
    everything = slice(None, None, None)
    return key in ((everything, -1), (everything, -1, everything))


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


def read_source(src: Path, nonlinearity: str | None = None, readout: str | None = None) -> Source:
    """Read SRC and turn it into a StackedRNN; raise a one-line UserError when that is impossible."""
    from torch_version.model import StackedRNN
    src = Path(src)
    kind = _sniff(src)
    if kind == "torch":
        state, recorded, description = _state_dict_of(src, _load_torch(src))
        arch, renamed, layers, assumptions = infer_from_state_dict(state, nonlinearity, recorded, where=str(src),
                                                                   readout=readout)
        model = StackedRNN(**arch.kwargs())
        model.load_state_dict(renamed)
        return Source("torch", description, arch, model, None, layers, assumptions, [], None)
    _keras_ready()
    from keras_version.train import load_model
    keras_model = load_model(src)
    arch, layers, notes = infer_from_keras(keras_model, nonlinearity, where=str(src), readout=readout)
    for w in keras_model.weights:
        values = np.asarray(w.numpy())
        if not np.isfinite(values).all():
            raise ConversionError(f"weight {w.path!r} in {src} holds {int(values.size - np.isfinite(values).sum())} "
                                  "non-finite values (nan or inf); a model with such weights computes no usable "
                                  "logits, so it is refused: convert the last checkpoint whose weights were finite")
    from parity.weights import keras_to_torch
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
    with np.errstate(all="ignore"):  # inf - inf is nan, said by the value rather than a RuntimeWarning
        return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def describe_difference(diff: float) -> str:
    """``"differ by up to 3.1e-02"``; a nan (a non-finite logit on one side) said in words."""
    if math.isnan(diff):
        return "are not comparable: one of them holds a nan or infinite logit"
    return f"differ by up to {diff:.2e}"


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


def check_destination(src, dst, overwrite: bool = False) -> None:
    """Refuse a DST that would lose a file: SRC itself, an existing file (unless ``overwrite``),
    or a file in a folder that does not exist."""
    src, dst = Path(src), Path(dst)
    target_kind(dst)
    same = dst.resolve() == src.resolve()
    if not same and dst.exists() and src.exists():
        try:
            same = os.path.samefile(src, dst)  # a hard link, or the same file by another path
        except OSError:
            pass
    if same:
        raise ConversionError(f"DST {dst} is SRC {src} itself; converting a file onto itself would replace your "
                              "model: choose another DST")
    if dst.is_dir():
        raise CheckpointError(f"cannot write {dst} (Is a directory); choose another DST")
    if (dst.exists() or dst.is_symlink()) and not overwrite:
        raise ConversionError(f"DST {dst} already exists; pass --overwrite to replace it, or choose another DST")
    parent = dst.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise ConversionError(f"the folder of DST, {parent}, {what}; create it with `mkdir -p {shlex.quote(str(parent))}`"
                              ", or choose another DST")


def convert_file(src, dst, nonlinearity: str | None = None, out: Callable[[str], None] = print, *,
                 readout: str | None = None, overwrite: bool = False) -> ConvertResult:
    """Convert SRC to DST (see the module docstring), printing each step through ``out``.

    ``nonlinearity`` (nn.RNN's) and ``readout`` (a bidirectional stack's) give what
    weights cannot show; SRC may record them.  DST must not be SRC, nor exist unless
    ``overwrite``, and its folder must exist.  DST is written atomically, and only after
    the model read back from it has passed the self-check; on any error DST is left
    as it was.  The Keras backend is whatever ``KERAS_BACKEND`` said when Keras was
    first imported.
    """
    src, dst = Path(src), Path(dst)
    target = target_kind(dst)
    check_destination(src, dst, overwrite)
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        out(line)

    source = read_source(src, nonlinearity, readout)
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
            from parity.weights import torch_to_keras
            model = build_model(**arch.kwargs(), timesteps=source.timesteps)
            torch_to_keras(source.torch_model, model)
            model.save(tmp)
            written = load_model(tmp)
        diff = max_abs_diff(logits(written, x), expected)
        measured.append(diff)
        shown = "not comparable (a nan or infinite logit)" if math.isnan(diff) else f"{diff:.2e}"
        say(f"self-check{_backend_note(source.kind, target)} on {what}: largest |Δ logits| = {shown} "
            f"(limit {TOLERANCE:.0e})")
        if not diff <= TOLERANCE:  # also catches nan
            more = "" if math.isnan(diff) else f", more than {TOLERANCE:.0e}"
            raise ConversionError(f"self-check failed: the logits of {src} and of the converted model "
                                  f"{describe_difference(diff)}{more}; {dst} was not written")

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


# --- Python entry points: converted and checked against the user's own model ----------------------------

def _example_input(example_x, input_size: int | None = None) -> np.ndarray:
    """``example_x`` as float32 (batch, time, features), refusing what cannot check anything."""
    from parity.weights import _to_numpy
    if not hasattr(example_x, "shape"):
        raise TypeError(f"example_x must be an array or tensor of shape (batch, time, features), got "
                        f"{type(example_x).__name__}")
    x = np.ascontiguousarray(_to_numpy(example_x), dtype=np.float32)
    if x.ndim != 3 or x.shape[0] == 0 or x.size == 0:
        raise ConversionError(f"example_x has shape {tuple(x.shape)}; the check needs at least one sequence of "
                              "shape (time, features), e.g. a few of the images the model reads")
    if input_size is not None and x.shape[2] != input_size:
        raise ConversionError(f"example_x has {x.shape[2]} features per step but the model reads {input_size}")
    if not np.isfinite(x).all():
        raise ConversionError("example_x holds nan or infinite values; the check needs finite inputs")
    return x


def _user_logits(model, x: np.ndarray, who: str) -> np.ndarray:
    try:
        values = logits(model, x)
    except Exception as e:
        raise ConversionError(f"{who} could not run on example_x of shape {x.shape} ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[0] != x.shape[0]:
        raise ConversionError(f"{who} returns shape {values.shape} for example_x of shape {x.shape}; convert maps "
                              "models that return logits of shape (batch, classes)")
    return values


def convert_module(torch_module, example_x, *, readout: str | None = None, nonlinearity: str | None = None,
                   timesteps: int | None = None):
    """A Keras model computing what ``torch_module`` computes, checked on ``example_x`` against the module itself.

    The layers are read as ``convert`` reads a state dict (recurrent layers, then one
    Linear).  ``nonlinearity`` defaults to the module's own ``nn.RNN.nonlinearity``;
    ``readout`` (bidirectional stacks: ``"h_n"`` or ``"last-output"``, i.e. ``out[:, -1]``)
    defaults to whichever the module's forward turns out to use.  Both models run
    ``example_x`` (``(batch, time, features)``); unless every logit agrees within
    ``TOLERANCE``, ConversionError says which readout or nonlinearity would match,
    or that none does.  ``timesteps`` is the Keras model's declared length (default:
    example_x's).  Keras must be importable with the chosen backend.
    """
    from torch import nn
    if not isinstance(torch_module, nn.Module) or _is_keras_model(torch_module):
        raise TypeError(f"convert_module takes a torch nn.Module first, got {type(torch_module).__name__}"
                        + ("; for a Keras model use parity.convert_keras_model" if _is_keras_model(torch_module)
                           else ""))
    if readout is not None:
        check_choice("readout", readout, READOUTS)
    where = f"torch module {type(torch_module).__name__}"
    state = {k: v.detach().cpu() for k, v in torch_module.state_dict().items()}
    own = {m.nonlinearity for m in torch_module.modules() if isinstance(m, nn.RNN)}
    if nonlinearity is not None:
        check_nonlinearity("rnn", nonlinearity)
    x = _example_input(example_x)
    expected = _user_logits(torch_module, x, where)
    if not np.isfinite(expected).all():
        raise ConversionError(f"{where} returns nan or infinite logits on example_x; the check needs finite ones")

    # Candidates: the given or the module's own values first, then the alternatives.
    nonlinearities = [nonlinearity] if nonlinearity else sorted(own, key=lambda n: n != "tanh") or ["tanh"]
    if own:  # nn.RNN layers: the other nonlinearity is worth naming if it is the one that matches
        nonlinearities += [n for n in ("tanh", "relu") if n not in nonlinearities]
    readouts = [readout] if readout else ["h_n", "last-output"]
    readouts += [r for r in READOUTS if r not in readouts]
    tried = []
    from torch_version.model import StackedRNN
    for n in nonlinearities:
        for r in readouts:
            arch, renamed, _, _ = infer_from_state_dict(state, n, None, where=where, readout=r)
            if x.shape[2] != arch.input_size:
                raise ConversionError(f"example_x has {x.shape[2]} features per step but {where} reads "
                                      f"{arch.input_size}")
            if any(t[0] == arch for t in tried):
                continue  # a unidirectional stack has one readout
            candidate = StackedRNN(**arch.kwargs())
            candidate.load_state_dict(renamed)
            tried.append((arch, arch.nonlinearity, arch.readout, max_abs_diff(logits(candidate, x), expected)))
    matching = [t for t in tried if t[3] <= TOLERANCE]
    # readout: whichever matches, unless given; nonlinearity: the given or the module's own
    chosen = [t for t in matching if t[1] == nonlinearities[0] and (readout is None or t[2] == readout)]
    if not chosen:
        arch, _, _, diff = tried[0]
        raise ConversionError(_no_match(where, arch, diff, tried, matching, readout, nonlinearity))
    arch, n, r, diff = chosen[0]
    _keras_ready()
    from keras_version.model import build_model
    from parity.weights import torch_to_keras
    model = build_model(**arch.kwargs(), timesteps=timesteps if timesteps is not None else x.shape[1])
    candidate = StackedRNN(**arch.kwargs())
    candidate.load_state_dict(infer_from_state_dict(state, n, None, where=where, readout=r)[1])
    torch_to_keras(candidate, model)
    diff = max_abs_diff(logits(model, x), expected)
    if not diff <= TOLERANCE:
        raise ConversionError(f"the converted Keras model's logits and {where}'s {describe_difference(diff)} on "
                              f"example_x, more than {TOLERANCE:.0e}")
    return model


def _no_match(where, arch, diff, tried, matching, readout, nonlinearity) -> str:
    chose = ([f"nonlinearity={arch.nonlinearity!r}"] if arch.cell == "rnn" else []) + (
        [f"readout={arch.readout!r}"] if arch.bidirectional else [])
    head = (f"{where}: a StackedRNN" + (f" with {', '.join(chose)}" if chose else "")
            + f" gives logits that {describe_difference(diff)} from the module's on example_x")
    if matching:
        _, n, r, _ = matching[0]
        says = []
        if arch.bidirectional and r != arch.readout:
            says.append(f"its forward reads {_READOUT_MEANS[r]}: pass readout={r!r}")
        if arch.cell == "rnn" and n != arch.nonlinearity:
            says.append(f"it computes as nonlinearity={n!r}: pass nonlinearity={n!r}")
        return f"{head}; {' and '.join(says)} (that matches within {TOLERANCE:.0e})"
    best = min(tried, key=lambda t: t[3] if not math.isnan(t[3]) else math.inf)
    options = "; ".join(" ".join(([f"nonlinearity={n!r}"] if arch.cell == "rnn" else [])
                                 + ([f"readout={r!r}"] if arch.bidirectional else [])) for _, n, r, _ in tried)
    others = f", and no other choice matches either (tried {options}; " if len(tried) > 1 else " ("
    return (f"{head}{others}the closest logits {describe_difference(best[3])}): "
            "its forward does something besides running these layers in order and feeding the last step to the "
            "Linear, which convert cannot map")


def convert_keras_model(keras_model, example_x):
    """A torch ``StackedRNN`` computing what ``keras_model`` computes, checked on ``example_x`` against it.

    The model is read as ``convert`` reads a ``.keras`` file (``infer_from_keras``).  Both
    run ``example_x`` (``(batch, time, features)``); ConversionError unless every logit
    agrees within ``TOLERANCE``.
    """
    if not _is_keras_model(keras_model):
        raise TypeError(f"convert_keras_model takes a Keras model, got {type(keras_model).__name__}"
                        + ("; for a torch module use parity.convert_module" if hasattr(keras_model, "state_dict")
                           else ""))
    from parity.weights import keras_to_torch
    from torch_version.model import StackedRNN
    where = f"Keras model '{keras_model.name}'"
    arch, _, _ = infer_from_keras(keras_model, where=where)
    x = _example_input(example_x, arch.input_size)
    expected = _user_logits(keras_model, x, where)
    if not np.isfinite(expected).all():
        raise ConversionError(f"{where} returns nan or infinite logits on example_x; the check needs finite ones")
    model = StackedRNN(**arch.kwargs())
    keras_to_torch(keras_model, model)
    diff = max_abs_diff(logits(model, x), expected)
    if not diff <= TOLERANCE:
        raise ConversionError(f"the converted torch module's logits and {where}'s {describe_difference(diff)} on "
                              f"example_x, more than {TOLERANCE:.0e}: the model computes something its layers do "
                              "not show")
    return model.eval()


def _is_keras_model(obj) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)
