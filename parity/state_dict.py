"""Reading a bare state dict as this project's ``StackedRNN``, with what weights cannot show given by flags.

A state dict holds tensors and their names, never the forward that uses them.  So a state dict
converts only when nothing about the forward is assumed: its tensors must be the
``StackedRNN`` template (stacked ``nn.RNN``/``nn.GRU``/``nn.LSTM`` layers of one cell, hidden
size and direction count whose shapes chain, then one ``nn.Linear``; any module names), and
every choice that changes the outputs must be settled by a flag or by what the file records:

* ``readout`` (``READOUTS``): what the Linear reads.  ``last-output`` is ``out[:, -1]``; ``h_n``
  is each direction's final state.  For a unidirectional stack the two are the same value
  (``h_n[-1] == out[:, -1]``), and either flag says "my forward hands the Linear the last step";
  a forward that pools over time (``out.mean(1)``, ``out.max(1)``) or does anything else is
  another model, which only its own forward can show (a ``.pt2``, or ``parity.convert_module``).
* ``nonlinearity`` for ``nn.RNN`` layers: ``tanh`` and ``relu`` have identical weights.

:func:`infer_from_state_dict` returns the architecture and the state dict renamed for
``StackedRNN``, or raises ConversionError naming the first tensor that cannot be mapped or the
flag that is missing.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from common.config import READOUTS, check_choice, check_nonlinearity
from common.errors import ConversionError

__all__ = ["Architecture", "infer_from_state_dict", "READOUT_MEANS", "FORWARD_ROUTES"]

_CELL_BY_GATES = {1: "rnn", 3: "gru", 4: "lstm"}
_TORCH_CLASS = {"rnn": "nn.RNN", "gru": "nn.GRU", "lstm": "nn.LSTM"}
_RECURRENT_PARAM = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")
READOUT_MEANS = {"h_n": "h_n, each direction's final state (the forward direction's last step beside the "
                        "backward direction's first)",
                 "last-output": "out[:, -1], both directions at the last time step"}
# The two routes that read the user's forward instead of asking about it.
FORWARD_ROUTES = ("convert the forward itself: save it with torch.export.save(torch.export.export(model, (x,)), "
                  "'model.pt2') and convert the .pt2, or call parity.convert_module(model, x)")


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
    (nn.RNN's) and ``readout`` (every stack's, ``READOUTS``), or from
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

    assumptions: list[str] = []
    bidirectional = first.directions == 2
    if readout is not None:
        check_choice("readout", readout, READOUTS)
    if nonlinearity is not None:
        check_nonlinearity(first.cell, nonlinearity)
    nonlinearity = _settled("nonlinearity", nonlinearity, recorded, where) if first.cell == "rnn" else "tanh"
    readout = _settled("readout", readout, recorded, where)
    missing = [key for key, value in (("readout", readout), ("nonlinearity", nonlinearity)) if value is None]
    if missing:
        raise ConversionError(_unsettled(where, first.cell, bidirectional, missing, recorded))
    if not bidirectional:
        readout = "h_n"  # one direction: h_n[-1] is out[:, -1], and StackedRNN reads it either way
    bias = any(r.bias for r in recurrent)
    arch = Architecture(input_size=first.input_size, hidden_size=first.hidden,
                        num_layers=sum(r.layers for r in recurrent), num_classes=int(weight.shape[0]),
                        cell=first.cell, bidirectional=bidirectional,
                        nonlinearity=nonlinearity, bias=bias, readout=readout)
    if recorded is not None:
        for key, value in arch.kwargs().items():
            if key in recorded and key not in recorded.get("assumed", ()) and recorded[key] != value \
                    and key not in ("from", "assumed") and not (key == "readout" and not bidirectional):
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
    assumptions.append("the layers run in the order of the file on (batch, time, features) input "
                       "(batch_first=True), as the flags (or SRC's record) say the forward does: the self-check compares the "
                       "converted model with StackedRNN, not with your forward, which a .pt2 or "
                       "parity.convert_module(model, x) checks against")
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



def _unsettled(where: str, cell: str, bidirectional: bool, missing: list[str], recorded: Mapping | None) -> str:
    """The one line for a state dict whose flags leave a choice that changes the outputs open."""
    asks = []
    if "readout" in missing:
        asks.append("--readout h_n (each direction's final state) or --readout last-output (out[:, -1]), as your "
                    "forward hands the Linear" if bidirectional else
                    "--readout last-output if your forward hands the Linear the last step, out[:, -1] (for one "
                    "direction the same as h_n[-1]: --readout h_n says the same), and nothing else")
    if "nonlinearity" in missing:
        asks.append("--nonlinearity tanh or --nonlinearity relu, as your nn.RNN was built (the weights are the same "
                    "for both)")
    older = [f"{key}={recorded[key]!r}" for key in missing if recorded and recorded.get(key) is not None]
    says = f" (it records {' and '.join(older)} only as an older convert's assumption)" if older else ""
    return (f"{where} holds weights only, which cannot show what your forward computes{says}: pass "
            + " and ".join(asks) + "; a forward that pools over time (mean, max) or does anything else is another "
            f"model: {FORWARD_ROUTES}")
