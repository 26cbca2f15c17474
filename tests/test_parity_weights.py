"""Weight transfer between the PyTorch and Keras models (``parity.weights``), checked by the numbers.

Shapes at every layer, parameter counts, forward outputs of every layer after a
transfer in either direction, exact round trips, gradients, and the errors for
models that do not match.  Every test that touches Keras runs once per backend.
"""
from __future__ import annotations

import copy
import subprocess
import sys

import keras
import numpy as np
import pytest
import torch
from torch import nn

from common.errors import ConversionError
from keras_version.model import build_model as build_keras
from parity import keras_to_torch, keras_to_torch_arrays, torch_to_keras, torch_to_keras_arrays
from parity.equivalence import full_sequence_copy
from parity.lockstep import align_torch_for_lockstep, keras_gradients
from tests.conftest import ROOT
from torch_version.model import build_model as build_torch
from torch_version.model import count_params as torch_count_params

TOL = dict(atol=1e-5, rtol=1e-5)
backend = pytest.mark.backend


# --- Helpers ------------------------------------------------------------------------------------

class RecurrentClassifier(nn.Module):
    """One torch recurrent module (any num_layers) -> its final outputs -> Linear."""

    def __init__(self, rnn: nn.Module, fc: nn.Linear):
        super().__init__()
        self.rnn, self.fc = rnn, fc

    def forward(self, x):
        out, _ = self.rnn(x)  # (batch, time, hidden * directions)
        if self.rnn.bidirectional:
            h = self.rnn.hidden_size
            return self.fc(torch.cat([out[:, -1, :h], out[:, 0, h:]], dim=-1))
        return self.fc(out[:, -1, :])


def keras_sequential(*layers, timesteps=28, features=28) -> keras.Model:
    return keras.Sequential([keras.Input((timesteps, features)), *layers])


def np_out(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    return keras.ops.convert_to_numpy(value)


def torch_sequences(model, x: np.ndarray) -> list[np.ndarray]:
    """Every recurrent layer's full output sequence of a StackedRNN, then the logits."""
    h, outs = torch.from_numpy(x), []
    with torch.no_grad():
        for rnn in model.rnns:
            h, _ = rnn(h)
            outs.append(h.numpy())  # (batch, time, hidden * directions)
        outs.append(model(torch.from_numpy(x)).numpy())  # (batch, classes)
    return outs


class KerasSequences:
    """Every recurrent layer's full output sequence, then the logits, of one Keras model.

    A probe model returns the real layers' outputs.  The last recurrent layer
    returns only its last step, so a return_sequences clone of it runs on the same
    input with the same weights (copied at every call, so the probe follows
    ``set_weights``), and the clone is checked to end where the real layer does.
    ``predict_on_batch`` compiles the probe once (jit on jax, tf.function on
    tensorflow) instead of compiling every recurrent loop eagerly.
    """

    def __init__(self, model: keras.Model):
        recurrent = [layer for layer in model.layers if layer.weights][:-1]
        self.last, self.clone = recurrent[-1], full_sequence_copy(recurrent[-1])
        clone_out = self.clone(recurrent[-2].output if len(recurrent) > 1 else model.input)  # builds it
        self.probe = keras.Model(model.input, [layer.output for layer in recurrent] + [clone_out, model.output])

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        self.clone.set_weights(self.last.get_weights())
        *real, full, logits = [np_out(o) for o in self.probe.predict_on_batch(x)]
        half = full.shape[-1] // 2
        final = np.concatenate([full[:, -1, :half], full[:, 0, half:]], axis=-1) \
            if isinstance(self.last, keras.layers.Bidirectional) else full[:, -1, :]
        np.testing.assert_allclose(final, real[-1], atol=1e-6, rtol=0)
        return real[:-1] + [full, logits]  # (batch, time, hidden * directions) per layer, (batch, classes)


def assert_same_outputs(torch_outs, keras_outs):
    assert len(torch_outs) == len(keras_outs)
    for i, (a, b) in enumerate(zip(torch_outs, keras_outs)):
        assert a.shape == b.shape, f"layer {i}: torch {a.shape} vs keras {b.shape}"
        np.testing.assert_allclose(b, a, **TOL, err_msg=f"layer {i}")


def randomize_keras(model: keras.Model, seed: int) -> None:
    """Replace Keras's initial weights (zero biases, orthogonal kernels) with random ones."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32) for w in model.get_weights()])


def torch_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def keras_state(model: keras.Model) -> list[np.ndarray]:
    return [np.array(w, copy=True) for w in model.get_weights()]


def inputs(batch: int, timesteps: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (batch, timesteps, 28)).astype(np.float32)


# --- 1. Shapes: torch returns sequences, Keras the last step --------------------------------------

@backend
def test_layer_output_shapes_of_the_notebook_model():
    torch.manual_seed(0)
    t, k = build_torch(), build_keras()
    x = inputs(4, 28)
    torch_shapes = [o.shape for o in torch_sequences(t, x)]
    probe = keras.Model(k.input, [layer.output for layer in k.layers if layer.weights])
    keras_shapes = [tuple(np_out(o).shape) for o in probe(x)]
    assert torch_shapes == [(4, 28, 8), (4, 28, 8), (4, 28, 8), (4, 10)]
    # Keras's last recurrent layer returns only the last step: torch's out[:, -1, :].
    assert keras_shapes == [(4, 28, 8), (4, 28, 8), (4, 8), (4, 10)]
    assert [tuple(layer.output.shape) for layer in probe.layers if layer.weights] == [
        (None, 28, 8), (None, 28, 8), (None, 8), (None, 10)]


@backend
def test_torch_rnn_returns_the_sequence_keras_simple_rnn_the_last_step():
    torch.manual_seed(0)
    t = nn.RNN(28, 8, batch_first=True)
    k = keras_sequential(keras.layers.SimpleRNN(8))  # return_sequences=False, the default
    torch_to_keras(t, k)
    x = inputs(4, 28)
    out, h_n = t(torch.from_numpy(x))
    keras_out = np_out(k(x))
    assert tuple(out.shape) == (4, 28, 8) and tuple(h_n.shape) == (1, 4, 8)
    assert keras_out.shape == (4, 8)
    np.testing.assert_allclose(keras_out, np_out(out)[:, -1, :], **TOL)
    np.testing.assert_allclose(keras_out, np_out(h_n)[0], **TOL)


# the same on every backend (a demonstration of Keras's error): once, under torch
def test_stacking_keras_layers_without_return_sequences_fails():
    """A demonstration of Keras's own behaviour (the trap of guide §1), not a test of this project:
    it fails only if Keras changes, and no code here can make it pass or fail."""
    inputs_ = keras.Input((28, 28))
    last_step = keras.layers.SimpleRNN(8)(inputs_)  # (batch, 8): no time axis left
    with pytest.raises(ValueError, match=r"expected ndim=3, found ndim=2") as info:
        keras.layers.SimpleRNN(8)(last_step)
    assert "ndim" in str(info.value)


# --- 2. Parameter counts --------------------------------------------------------------------------

# the same on every backend (counts): once, under torch
def test_parameter_counts_differ_by_one_bias_per_layer():
    t, k = build_torch(), build_keras()
    extra = sum(p.numel() for rnn in t.rnns for name, p in rnn.named_parameters() if name.startswith("bias_hh"))
    assert torch_count_params(t) == 682
    assert k.count_params() == 658
    assert extra == 3 * 8 == 24
    assert torch_count_params(t) - k.count_params() == extra


# --- 3. Forward: every layer, both directions -----------------------------------------------------

FORWARD_CASES = [  # cell, layers, hidden, bidirectional, timesteps
    ("rnn", 3, 8, False, 28),   # the notebook model
    ("rnn", 2, 5, True, 13),
    ("gru", 1, 7, False, 13),
    ("gru", 3, 5, True, 13),
    ("lstm", 3, 5, False, 13),
    ("lstm", 1, 7, True, 28),
]


@backend
@pytest.mark.parametrize("cell, layers, hidden, bidirectional, timesteps", FORWARD_CASES)
def test_forward_matches_at_every_layer(cell, layers, hidden, bidirectional, timesteps):
    kwargs = dict(hidden_size=hidden, num_layers=layers, cell=cell, bidirectional=bidirectional)
    x = inputs(3, timesteps)

    torch.manual_seed(1)
    t = build_torch(**kwargs)
    k = build_keras(**kwargs, timesteps=timesteps)
    keras_sequences = KerasSequences(k)
    torch_to_keras(t, k)
    assert_same_outputs(torch_sequences(t, x), keras_sequences(x))

    randomize_keras(k, seed=2)  # weights that did not come from torch
    t2 = build_torch(**kwargs)
    keras_to_torch(k, t2)
    assert_same_outputs(torch_sequences(t2, x), keras_sequences(x))


@backend
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_round_trips_are_exact(cell):
    """torch -> keras -> torch and keras -> torch -> keras, compared bit for bit.

    Weights and GRU biases only move (transpose, gate permutation), so they come
    back bit-identical.  An RNN/LSTM bias pair comes back folded: bias_ih holds
    fl(bias_ih + bias_hh) (one correctly rounded float32 addition, the same in
    NumPy and torch) and bias_hh holds 0.  So the round-tripped model equals,
    bit for bit, the original after ``align_torch_for_lockstep``, and computes
    exactly what that folded model computes; against the unfolded original it
    differs only by that one rounding per bias.  Keras -> torch -> keras is
    exact because torch gets (bias, 0) and bias + 0 == bias.
    """
    kwargs = dict(hidden_size=5, num_layers=2, cell=cell, bidirectional=True)
    x = torch.from_numpy(inputs(3, 13))
    torch.manual_seed(3)
    original = build_torch(**kwargs)
    k = build_keras(**kwargs, timesteps=13)
    torch_to_keras(original, k)
    back = build_torch(**kwargs)
    keras_to_torch(k, back)

    folded = copy.deepcopy(original)
    frozen = align_torch_for_lockstep(folded)
    assert bool(frozen) == (cell != "gru")
    originals, folded_state = dict(original.named_parameters()), dict(folded.named_parameters())
    for name, p in back.named_parameters():
        assert torch.equal(p, folded_state[name]), name
        if "bias_hh" in name and cell != "gru":
            assert not p.any(), name
        elif "bias_ih" in name and cell != "gru":
            assert torch.equal(p, originals[name] + originals[name.replace("bias_ih", "bias_hh")]), name
        else:
            assert torch.equal(p, originals[name]), name
    with torch.no_grad():
        assert torch.equal(back(x), folded(x))
        np.testing.assert_allclose(np_out(back(x)), np_out(original(x)), atol=1e-6, rtol=0)

    k_back = build_keras(**kwargs, timesteps=13)
    torch_to_keras(back, k_back)
    for a, b in zip(k.get_weights(), k_back.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@backend
def test_transferred_weights_are_copies():
    """jax adopts NumPy buffers without copying; the transfer must not tie the two models together."""
    torch.manual_seed(4)
    t = build_torch(hidden_size=5, num_layers=1)
    k = build_keras(hidden_size=5, num_layers=1)
    torch_to_keras(t, k)
    before = keras_state(k)
    with torch.no_grad():
        for p in t.parameters():
            p.add_(1.0)
    for a, b in zip(before, k.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)

    keras_to_torch(k, t)
    before_t = torch_state(t)
    randomize_keras(k, seed=5)
    for name, p in t.named_parameters():
        assert torch.equal(p, before_t[name]), name


# --- 4. One nn.RNN(num_layers=3) is three Keras layers --------------------------------------------

@backend
@pytest.mark.parametrize("cell, bidirectional", [("rnn", False), ("lstm", True)])
def test_multi_layer_torch_module_maps_to_stacked_keras_layers(cell, bidirectional):
    d = 2 if bidirectional else 1
    torch.manual_seed(6)
    rnn_cls = {"rnn": nn.RNN, "lstm": nn.LSTM}[cell]
    t = RecurrentClassifier(rnn_cls(28, 8, num_layers=3, batch_first=True, bidirectional=bidirectional),
                            nn.Linear(8 * d, 10))
    k = build_keras(cell=cell, bidirectional=bidirectional)
    torch_to_keras(t, k)
    x = inputs(3, 28)
    with torch.no_grad():
        out, state = t.rnn(torch.from_numpy(x))
        logits = np_out(t(torch.from_numpy(x)))
    h_n = np_out(state[0] if cell == "lstm" else state)  # (layers * directions, batch, hidden)
    seqs = KerasSequences(k)(x)
    np.testing.assert_allclose(seqs[-1], logits, **TOL)
    np.testing.assert_allclose(seqs[2], np_out(out), **TOL)  # the last layer's full sequence
    for layer in range(3):  # every layer's final state, forward (and backward)
        np.testing.assert_allclose(seqs[layer][:, -1, :8], h_n[layer * d], **TOL)
        if bidirectional:
            np.testing.assert_allclose(seqs[layer][:, 0, 8:], h_n[layer * d + 1], **TOL)

    # The same weights in three separate modules (the notebook's layout) compute the same logits.
    stacked = build_torch(cell=cell, bidirectional=bidirectional)
    keras_to_torch(k, stacked)
    with torch.no_grad():
        np.testing.assert_allclose(np_out(stacked(torch.from_numpy(x))), logits, **TOL)
    again = RecurrentClassifier(rnn_cls(28, 8, num_layers=3, batch_first=True, bidirectional=bidirectional),
                                nn.Linear(8 * d, 10))
    keras_to_torch(k, again)
    with torch.no_grad():
        np.testing.assert_allclose(np_out(again(torch.from_numpy(x))), logits, **TOL)


@backend
@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_relu_and_bias_free_layers(cell):
    """nn.RNN(nonlinearity='relu', bias=False) == SimpleRNN(activation='relu', use_bias=False); GRU without biases."""
    torch.manual_seed(7)
    if cell == "rnn":
        t_rnn = nn.RNN(28, 6, nonlinearity="relu", bias=False, batch_first=True)
        k_rnn = keras.layers.SimpleRNN(6, activation="relu", use_bias=False)
    else:
        t_rnn = nn.GRU(28, 6, bias=False, batch_first=True)
        k_rnn = keras.layers.GRU(6, use_bias=False)
    t = RecurrentClassifier(t_rnn, nn.Linear(6, 10))
    k = keras_sequential(k_rnn, keras.layers.Dense(10), timesteps=13)
    torch_to_keras(t, k)
    x = inputs(3, 13)
    with torch.no_grad():
        expected = np_out(t(torch.from_numpy(x)))
    np.testing.assert_allclose(np_out(k(x)), expected, **TOL)
    with torch.no_grad():
        for p in t.parameters():
            p.zero_()
    keras_to_torch(k, t)
    with torch.no_grad():
        np.testing.assert_allclose(np_out(t(torch.from_numpy(x))), expected, **TOL)


# --- 5. Mismatches --------------------------------------------------------------------------------

def torch_classifier(rnn: nn.Module) -> RecurrentClassifier:
    features = rnn.proj_size or rnn.hidden_size * (2 if rnn.bidirectional else 1)
    return RecurrentClassifier(rnn, nn.Linear(features, 10))


MISMATCHES = {  # name: (torch model, keras model, fragments the message must contain)
    "hidden size": (lambda: build_torch(hidden_size=8), lambda: build_keras(hidden_size=7),
                    ["torch layer 0 'rnns.0'", "keras layer 0 'rnn_1'", "(8, 28)", "(28, 7)", "hidden sizes differ"]),
    "layer count": (lambda: build_torch(num_layers=3), lambda: build_keras(num_layers=2),
                    ["torch layer 2 'rnns.2'", "keras layer 2 'fc'", "(8, 8)", "(8, 10)",
                     "torch has 4 mappable layers, keras 3"]),
    "cell kind": (lambda: build_torch(cell="gru"), lambda: build_keras(cell="lstm"),
                  ["torch layer 0 'rnns.0'", "keras layer 0 'lstm_1'", "(24, 28)", "(28, 32)", "nn.GRU maps to GRU"]),
    "LSTM proj_size": (lambda: torch_classifier(nn.LSTM(28, 8, proj_size=4, batch_first=True)),
                       lambda: build_keras(cell="lstm", num_layers=1),
                       ["torch layer 0 'rnn'", "keras layer 0 'lstm_1'", "weight_hr_l0 (4, 8)", "(28, 32)",
                        "proj_size=4"]),
    "GRU reset_after=False": (lambda: build_torch(cell="gru", num_layers=1),
                              lambda: keras_sequential(keras.layers.GRU(8, reset_after=False, name="gru_v1"),
                                                       keras.layers.Dense(10, name="fc")),
                              ["torch layer 0 'rnns.0'", "keras layer 0 'gru_v1'", "bias_hh_l0 (24,)", "bias (24,)",
                               "reset_after=False"]),
    "directions": (lambda: build_torch(num_layers=1, bidirectional=True), lambda: build_keras(num_layers=1),
                   ["torch layer 0 'rnns.0'", "keras layer 0 'rnn_1'", "weight_ih_l0_reverse (8, 28)", "(28, 8)",
                    "bidirectional=True"]),
    "batch_first=False": (lambda: torch_classifier(nn.RNN(28, 8)), lambda: build_keras(num_layers=1),
                          ["torch layer 0 'rnn'", "keras layer 0 'rnn_1'", "(8, 28)", "(28, 8)", "batch_first=False"]),
    "merge_mode": (lambda: build_torch(num_layers=1, bidirectional=True),
                   lambda: keras_sequential(keras.layers.Bidirectional(keras.layers.SimpleRNN(8), merge_mode="sum",
                                                                       name="bi_sum"),
                                            keras.layers.Dense(10, name="fc")),
                   ["torch layer 0 'rnns.0'", "keras layer 0 'bi_sum'", "(8, 28)", "forward.kernel (28, 8)",
                    "merge_mode='sum'"]),
    "nonlinearity": (lambda: torch_classifier(nn.RNN(28, 8, nonlinearity="relu", batch_first=True)),
                     lambda: build_keras(num_layers=1),
                     ["torch layer 0 'rnn'", "keras layer 0 'rnn_1'", "(8, 28)", "(28, 8)",
                      "nonlinearity='relu'", "activation='tanh'"]),
    "bias": (lambda: torch_classifier(nn.GRU(28, 8, bias=False, batch_first=True)),
             lambda: build_keras(cell="gru", num_layers=1),
             ["torch layer 0 'rnn'", "keras layer 0 'gru_1'", "(24, 28)", "bias (2, 24)", "bias=False"]),
    "classes (last layer)": (lambda: build_torch(num_classes=10), lambda: build_keras(num_classes=5),
                             ["torch layer 3 'fc'", "keras layer 3 'fc'", "(10, 8)", "(8, 5)", "sizes differ"]),
}


# refused before anything is assigned, the same on every backend: once, under torch
@pytest.mark.parametrize("name", list(MISMATCHES))
def test_mismatches_raise_and_leave_the_target_untouched(name):
    make_torch, make_keras, fragments = MISMATCHES[name]
    torch.manual_seed(8)
    t, k = make_torch(), make_keras()

    keras_before = keras_state(k)
    with pytest.raises(ConversionError) as info:
        torch_to_keras(t, k)
    message = str(info.value)
    assert "\n" not in message and message.startswith("torch_to_keras: ")
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    for a, b in zip(keras_before, k.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)

    torch_before = torch_state(t)
    with pytest.raises(ConversionError) as info:
        keras_to_torch(k, t)
    assert "\n" not in str(info.value) and str(info.value).startswith("keras_to_torch: ")
    assert all(fragment in str(info.value) for fragment in fragments)
    for p_name, p in t.named_parameters():
        assert torch.equal(p, torch_before[p_name]), p_name


# the same on every backend (refused before anything is assigned): once, under torch
def test_layers_without_a_counterpart_are_rejected():
    conv = nn.Sequential(nn.Conv1d(28, 8, 3), nn.Linear(8, 10))
    with pytest.raises(ConversionError, match=r"torch module '0' \(Conv1d: weight \(8, 28, 3\), bias \(8,\)\) owns "
                                              r"parameters but has no Keras counterpart"):
        torch_to_keras(conv, build_keras())
    k = keras_sequential(keras.layers.Conv1D(8, 3, name="conv"), keras.layers.Dense(10))
    with pytest.raises(ConversionError, match=r"keras layer 0 'conv' \(Conv1D: kernel \(3, 28, 8\), bias \(8,\)\) "
                                              r"has weights but no torch counterpart"):
        keras_to_torch(k, build_torch())


def test_importing_parity_imports_neither_keras_nor_torch():
    code = ("import sys, parity, parity.weights, parity.files, parity.equivalence, parity.testing; "
            "assert 'keras' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules); "
            "assert callable(parity.torch_to_keras)")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# --- 6. Gradients ---------------------------------------------------------------------------------

GRADIENT_CASES = [  # cell, layers, hidden, bidirectional, timesteps
    ("rnn", 3, 8, False, 28),   # the notebook model
    ("gru", 2, 5, True, 13),
    ("lstm", 2, 7, False, 13),
]


@backend
@pytest.mark.parametrize("cell, layers, hidden, bidirectional, timesteps", GRADIENT_CASES)
def test_gradients_match_per_parameter(small_data, cell, layers, hidden, bidirectional, timesteps):
    """d(mean cross-entropy)/d(parameter), torch autograd vs the Keras backend's own autodiff.

    torch's gradients go through the same mapping as the weights.  The Keras RNN/LSTM
    bias stands for bias_ih + bias_hh, and d/d(bias_ih) == d/d(bias_hh) == d/d(keras bias),
    so bias_hh's gradient is replaced by zeros before mapping (the mapping adds the two)
    and is checked separately to equal bias_ih's.
    """
    kwargs = dict(hidden_size=hidden, num_layers=layers, cell=cell, bidirectional=bidirectional)
    x, y = small_data.train.batch(0, 0)
    x, y = np.ascontiguousarray(x[:32, :timesteps]), y[:32]  # real images, first `timesteps` rows
    torch.manual_seed(9)
    t = build_torch(**kwargs)
    k = build_keras(**kwargs, timesteps=timesteps)
    torch_to_keras(t, k)

    loss = nn.CrossEntropyLoss()(t(torch.from_numpy(x)), torch.from_numpy(y))
    params = dict(t.named_parameters())
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))
    if cell != "gru":
        for name in [n for n in grads if "bias_hh" in n]:
            np.testing.assert_allclose(np_out(grads[name]), np_out(grads[name.replace("bias_hh", "bias_ih")]),
                                       atol=1e-7, rtol=1e-6)
            grads[name] = torch.zeros_like(grads[name])
    expected = torch_to_keras_arrays(t, k, values=grads)
    actual = keras_gradients(k, x, y)
    assert sorted(actual) == sorted(expected) == sorted(v.path for v in k.trainable_variables)
    for path in expected:
        np.testing.assert_allclose(actual[path], expected[path], **TOL, err_msg=path)
    assert max(np.abs(g).max() for g in actual.values()) > 1e-3  # the comparison is not between zeros


# the same on every backend (names only): once, under torch
def test_arrays_api_maps_names_both_ways_and_assigns_nothing():
    torch.manual_seed(10)
    t = build_torch(cell="gru", num_layers=2, bidirectional=True)
    k = build_keras(cell="gru", num_layers=2, bidirectional=True)
    torch_before, keras_before = torch_state(t), keras_state(k)
    to_keras = torch_to_keras_arrays(t, k)
    to_torch = keras_to_torch_arrays(k, t)
    assert sorted(to_keras) == sorted(v.path for v in k.weights)
    assert sorted(to_torch) == sorted(name for name, _ in t.named_parameters())
    for a, b in zip(keras_before, k.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for name, p in t.named_parameters():
        assert torch.equal(p, torch_before[name]), name
    # What the arrays promise is what the in-place copy writes.
    torch_to_keras(t, k)
    for v in k.weights:
        np.testing.assert_array_equal(v.numpy(), to_keras[v.path])
