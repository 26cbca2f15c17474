"""The audit of every constructor argument (``docs/convert.md``), held to the installed signatures,
and one test per refusal.

Each refusal is checked where it applies: the in-memory transfer in both directions
(``parity.torch_to_keras``, ``parity.keras_to_torch``) and ``assert_equivalent``, or, for the
arguments ``convert`` alone refuses, ``parity.keras_stack.infer_from_keras``.  The refusals do not
depend on the backend, so these run once, under the torch backend.
"""
from __future__ import annotations

import inspect
import re

import keras
import pytest
import torch
from torch import nn

from common.errors import ConversionError
from parity import keras_to_torch, torch_to_keras
from parity.keras_stack import infer_from_keras
from parity.testing import assert_equivalent
from tests.conftest import ROOT

KERAS_CLASSES = ("SimpleRNN", "GRU", "LSTM", "Bidirectional")
TORCH_CLASSES = ("nn.RNN", "nn.GRU", "nn.LSTM")


def audit_rows() -> list[tuple[list[str], list[str], str]]:
    """``(arguments, classes, verdict)`` for every row of the audit tables."""
    text = (ROOT / "docs" / "convert.md").read_text(encoding="utf-8")
    rows = []
    for line in text[text.index("## The audit"):].splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows.append((re.findall(r"`(\w+)`", cells[0]), [c.strip() for c in cells[1].split(",")], cells[2]))
    return rows


def installed_arguments() -> dict[str, set[str]]:
    """Every constructor argument of the seven classes, as installed, including what reaches the Keras
    layers through **kwargs (keras.layers.RNN's and keras.layers.Layer's own arguments)."""
    def params(fn, drop=()):
        return {n for n in inspect.signature(fn).parameters if n not in ("self", "args", "kwargs", *drop)}

    layer = params(keras.layers.Layer.__init__)
    rnn_base = params(keras.layers.RNN.__init__, drop=("cell",))  # the subclasses build their own cell
    out = {cls: params(getattr(keras.layers, cls).__init__) | rnn_base | layer for cls in KERAS_CLASSES[:3]}
    out["Bidirectional"] = params(keras.layers.Bidirectional.__init__) | layer
    base = params(nn.modules.rnn.RNNBase.__init__, drop=("mode",))  # mode is set by the subclass
    out["nn.RNN"] = (base - {"proj_size"}) | {"nonlinearity"}  # nn.RNN.__init__ reads it from *args/**kwargs
    out["nn.GRU"] = base - {"proj_size"}
    out["nn.LSTM"] = base
    return out


def documented() -> dict[str, dict[str, str]]:
    """``{class: {argument: verdict}}`` from the tables."""
    out: dict[str, dict[str, str]] = {cls: {} for cls in KERAS_CLASSES + TORCH_CLASSES}
    for args, classes, verdict in audit_rows():
        for cls in classes:
            for arg in args:
                assert arg not in out[cls], f"{cls}.{arg} appears twice in the audit"
                out[cls][arg] = verdict
    return out


def test_the_audit_covers_every_installed_argument():
    installed, table = installed_arguments(), documented()
    assert len(installed["GRU"]) > 25 and "reset_after" in installed["GRU"] and "proj_size" in installed["nn.LSTM"]
    for cls in KERAS_CLASSES + TORCH_CLASSES:
        assert set(table[cls]) == installed[cls], (
            f"{cls}: missing from docs/convert.md {sorted(installed[cls] - set(table[cls]))}, "
            f"not installed {sorted(set(table[cls]) - installed[cls])}")
        for arg, verdict in table[cls].items():
            assert re.fullmatch(r"(mapped|refused|no effect)( / refused)?( by convert)?", verdict), (cls, arg, verdict)
    for cls in (nn.RNN, nn.GRU):  # why proj_size is missing from their rows: torch refuses it itself
        with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
            cls(4, 4, proj_size=2)


# --- One test per refusal ---------------------------------------------------------------------------

class Classifier(nn.Module):
    def __init__(self, rnn: nn.Module):
        super().__init__()
        self.rnn = rnn
        features = getattr(rnn, "proj_size", 0) or rnn.hidden_size * (2 if rnn.bidirectional else 1)
        self.fc = nn.Linear(features, 10, dtype=rnn.weight_ih_l0.dtype)

    def forward(self, x):
        return self.fc(self.rnn(x)[0][:, -1])


def stack(*layers, batch_size=None) -> keras.Model:
    return keras.Sequential([keras.Input((28, 28), batch_size=batch_size), *layers, keras.layers.Dense(10)])


TORCH = {"SimpleRNN": nn.RNN, "GRU": nn.GRU, "LSTM": nn.LSTM}
KERAS = {"SimpleRNN": keras.layers.SimpleRNN, "GRU": keras.layers.GRU, "LSTM": keras.layers.LSTM}


def pair(cls: str, bidirectional: bool = False, **keras_args):
    """A torch classifier and a Keras one that match except for ``keras_args``."""
    torch_model = Classifier(TORCH[cls](28, 8, batch_first=True, bidirectional=bidirectional))
    layer = KERAS[cls](8, **keras_args)
    return torch_model, stack(keras.layers.Bidirectional(layer) if bidirectional else layer)


def functional_with_state_for(cls: str) -> keras.Model:
    inputs = keras.Input((28, 28))
    out, *_ = KERAS[cls](8, return_state=True)(inputs)
    return keras.Model(inputs, keras.layers.Dense(10)(out))


REFUSALS = {  # (class, argument): (make the models, or a keras model for convert alone; message pattern)
    ("SimpleRNN", "activation"): (lambda: pair("SimpleRNN", activation="sigmoid"),
                                  r"activations differ: torch nonlinearity='tanh', keras activation='sigmoid'"),
    ("GRU", "activation"): (lambda: pair("GRU", activation="relu"),
                            r"keras uses activation='relu', recurrent_activation='sigmoid'; torch uses tanh and "
                            r"sigmoid"),
    ("LSTM", "activation"): (lambda: pair("LSTM", activation="relu"), r"keras uses activation='relu'"),
    ("GRU", "recurrent_activation"): (lambda: pair("GRU", recurrent_activation="hard_sigmoid"),
                                      r"recurrent_activation='hard_sigmoid'; torch uses tanh and sigmoid"),
    ("LSTM", "recurrent_activation"): (lambda: pair("LSTM", recurrent_activation="hard_sigmoid"),
                                       r"recurrent_activation='hard_sigmoid'"),
    ("GRU", "reset_after"): (lambda: pair("GRU", reset_after=False), r"keras GRU reset_after=False applies the reset "
                                                                     r"gate before the recurrent matmul"),
    ("Bidirectional", "layer"): (
        lambda: (Classifier(nn.RNN(28, 8, batch_first=True, bidirectional=True)),
                 stack(keras.layers.Bidirectional(keras.layers.RNN(keras.layers.SimpleRNNCell(8)), name="bi"))),
        r"keras layer 0 'bi' wraps RNN; only SimpleRNN, GRU and LSTM can be mapped to torch"),
    ("Bidirectional", "merge_mode"): (
        lambda: [(Classifier(nn.GRU(28, 8, batch_first=True, bidirectional=True)),
                  stack(keras.layers.Bidirectional(keras.layers.GRU(8), merge_mode=mode))) for mode in
                 ("sum", "mul", "ave")],
        r"Bidirectional merge_mode='(sum|mul|ave)' is not supported; torch concatenates"),
    ("Bidirectional", "backward_layer"): (
        lambda: [(Classifier(nn.RNN(28, 8, batch_first=True, bidirectional=True)),
                  stack(keras.layers.Bidirectional(keras.layers.SimpleRNN(8), backward_layer=backward)))
                 for backward in (keras.layers.SimpleRNN(8, activation="relu", go_backwards=True),
                                  keras.layers.GRU(8, go_backwards=True))],
        r"keras backward layer activation='relu'|keras backward layer is GRU but the forward layer is SimpleRNN"),
    ("Bidirectional", "dtype"): (
        lambda: (Classifier(nn.LSTM(28, 8, batch_first=True, bidirectional=True)),
                 stack(keras.layers.Bidirectional(keras.layers.LSTM(8), dtype="mixed_float16", name="bi16"))),
        r"precisions differ: torch parameters are float32, keras 'bi16' keeps float32 weights and computes in float16"),
    ("nn.LSTM", "proj_size"): (lambda: (Classifier(nn.LSTM(28, 8, proj_size=4, batch_first=True)),
                                        stack(keras.layers.LSTM(8))),
                               r"torch LSTM proj_size=4 \(projected hidden state\) has no Keras equivalent"),
}
for _cls in ("SimpleRNN", "GRU", "LSTM"):
    REFUSALS[(_cls, "go_backwards")] = (lambda c=_cls: pair(c, go_backwards=True),
                                        r"keras has go_backwards=True; torch has no such option")
    REFUSALS[(_cls, "stateful")] = (
        lambda c=_cls: (Classifier(TORCH[c](28, 8, batch_first=True)), stack(KERAS[c](8, stateful=True), batch_size=3)),
        r"keras has stateful=True, which carries the state from one batch to the next")
    REFUSALS[(_cls, "dtype")] = (lambda c=_cls: pair(c, dtype="mixed_float16", name="half"),
                                 r"precisions differ: torch parameters are float32, keras 'half' keeps float32 weights "
                                 r"and computes in float16")
    REFUSALS[(_cls, "return_sequences")] = (lambda c=_cls: stack(KERAS[c](8, return_sequences=True, name="seq")),
                                            r"keras layer 'seq' is the last recurrent layer but returns the whole "
                                            r"sequence \(return_sequences=True\)")
    REFUSALS[(_cls, "return_state")] = (lambda c=_cls: functional_with_state_for(c), r"has return_state=True")
for _cls, _torch in (("nn.RNN", nn.RNN), ("nn.GRU", nn.GRU), ("nn.LSTM", nn.LSTM)):
    _keras = {"nn.RNN": "SimpleRNN", "nn.GRU": "GRU", "nn.LSTM": "LSTM"}[_cls]
    REFUSALS[(_cls, "batch_first")] = (lambda t=_torch, k=_keras: (Classifier(t(28, 8)), stack(KERAS[k](8))),
                                       r"torch batch_first=False is not supported")
    REFUSALS[(_cls, "dtype")] = (
        lambda t=_torch, k=_keras: (Classifier(t(28, 8, batch_first=True, dtype=torch.float64)), stack(KERAS[k](8))),
        r"precisions differ: torch parameters are float64, keras '\w+' keeps float32 weights")


def test_every_refusal_in_the_audit_has_a_test():
    refused = {(cls, arg) for cls, args in documented().items()
               for arg, verdict in args.items() if "refused" in verdict}
    assert refused == set(REFUSALS), (sorted(refused - set(REFUSALS)), sorted(set(REFUSALS) - refused))


@pytest.mark.parametrize("key", sorted(REFUSALS), ids=lambda key: f"{key[0]}.{key[1]}")
def test_each_refusal(key):
    make, pattern = REFUSALS[key]
    cases = make()
    if isinstance(cases, keras.Model):  # refused by convert alone: the model is not a StackedRNN
        with pytest.raises(ConversionError) as info:
            infer_from_keras(cases)
        assert "\n" not in str(info.value) and re.search(pattern, str(info.value)), str(info.value)
        return
    for torch_model, keras_model in cases if isinstance(cases, list) else [cases]:
        for copy in (lambda: torch_to_keras(torch_model, keras_model),
                     lambda: keras_to_torch(keras_model, torch_model)):
            with pytest.raises(ConversionError) as info:
                copy()
            assert "\n" not in str(info.value) and re.search(pattern, str(info.value)), str(info.value)
        with pytest.raises(AssertionError, match=r"^the models cannot be paired layer by layer: .*" + pattern):
            assert_equivalent(torch_model, keras_model, torch.zeros(2, 28, 28).numpy())


def test_the_classifier_is_checked_too():
    torch_model = Classifier(nn.RNN(28, 8, batch_first=True))
    softmax = keras.Sequential([keras.Input((28, 28)), keras.layers.SimpleRNN(8), keras.layers.Dense(10, "softmax")])
    with pytest.raises(ConversionError, match=r"keras Dense applies activation='softmax'; torch's Linear applies none"):
        torch_to_keras(torch_model, softmax)
    lora = stack(keras.layers.SimpleRNN(8))
    lora.layers[-1].enable_lora(2)
    with pytest.raises(ConversionError, match=r"keras Dense has weights \['lora_kernel_a', 'lora_kernel_b'\] besides "
                                              r"kernel and bias \(LoRA or quantization\)"):
        keras_to_torch(lora, torch_model)


def test_what_has_no_effect_is_accepted():
    """A sample of 'no effect' arguments, all at once: the transfer accepts them and the logits agree."""
    import numpy as np
    torch.manual_seed(0)
    torch_model = Classifier(nn.GRU(28, 8, batch_first=True, dropout=0.0))
    layer = keras.layers.GRU(8, kernel_initializer="ones", kernel_regularizer="l2", recurrent_constraint="non_neg",
                             dropout=0.3, recurrent_dropout=0.2, seed=3, unroll=True, use_cudnn=False,
                             trainable=False, name="anything")
    keras_model = stack(layer)
    torch_to_keras(torch_model, keras_model)
    x = np.random.default_rng(0).uniform(-1, 1, (4, 28, 28)).astype(np.float32)
    report = assert_equivalent(torch_model, keras_model, x)
    assert report.max_abs_diff <= 1e-5
    assert [d.keras_name for d in report.layers] == ["anything", keras_model.layers[-1].name]
