"""``check_equivalent`` / ``assert_equivalent`` on models people write, not the notebook's: each pair below is
built in both frameworks by hand, its weights copied with NumPy, and the layers are paired from each model's own
computation (torch: the order the forward calls them; Keras: the functional graph).  Every test runs once per
Keras backend."""
from __future__ import annotations

import copy

import keras
import numpy as np
import pytest
import torch
from torch import nn

from common.errors import ConfigError, ConversionError, ShapeError, UserError
from parity import check_equivalent
from parity.testing import assert_equivalent

pytestmark = pytest.mark.backend

VOCAB, STEPS, BATCH = 50, 7, 6


# --- copying weights by hand ------------------------------------------------------------------------------------

def _np(t):
    # A copy: jax on CPU adopts NumPy buffers without copying, which would tie the Keras weights to torch's.
    return np.array(t.detach().numpy(), copy=True)


def copy_recurrent(module, layer: int, keras_layer):
    """torch layer ``layer`` of an nn.RNN/GRU/LSTM -> a Keras recurrent layer or Bidirectional."""
    bidirectional = isinstance(keras_layer, keras.layers.Bidirectional)
    parts = [keras_layer.forward_layer, keras_layer.backward_layer] if bidirectional else [keras_layer]
    h = module.hidden_size
    for suffix, part in zip(["", "_reverse"], parts):
        w_ih, w_hh = (_np(getattr(module, f"{n}_l{layer}{suffix}")) for n in ("weight_ih", "weight_hh"))
        b_ih, b_hh = (_np(getattr(module, f"{n}_l{layer}{suffix}")) for n in ("bias_ih", "bias_hh"))
        if isinstance(module, nn.GRU):  # torch gates r, z, n; Keras z, r, h
            order = np.r_[h:2 * h, 0:h, 2 * h:3 * h]
            part.set_weights([w_ih[order].T.copy(), w_hh[order].T.copy(), np.stack([b_ih[order], b_hh[order]])])
        else:
            part.set_weights([w_ih.T.copy(), w_hh.T.copy(), b_ih + b_hh])


def copy_linear(module, dense):
    dense.set_weights([_np(module.weight).T.copy(), _np(module.bias)])


def copy_norm(module, keras_layer):
    weights = [_np(module.weight), _np(module.bias)]
    if isinstance(module, nn.BatchNorm1d):
        weights += [_np(module.running_mean), _np(module.running_var)]
    keras_layer.set_weights(weights)


# --- the pairs -------------------------------------------------------------------------------------------------

class EmbeddingBiLSTM(nn.Module):
    """Token ids -> Embedding -> a two-layer bidirectional LSTM -> out[:, -1] -> Linear, ReLU, Linear."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 8)
        self.lstm = nn.LSTM(8, 6, num_layers=2, bidirectional=True, batch_first=True)
        self.fc1, self.fc2 = nn.Linear(12, 16), nn.Linear(16, 5)

    def forward(self, ids):
        out, _ = self.lstm(self.embedding(ids))        # (batch, time, 12)
        return self.fc2(torch.relu(self.fc1(out[:, -1])))


def keras_embedding_bilstm(torch_model):
    ids = keras.Input((STEPS,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, 8, name="embedding")(ids)
    bi = [keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True), name=f"bi_{i}") for i in (1, 2)]
    x = bi[1](bi[0](x))                                 # (batch, time, 12)
    x = keras.layers.Dense(16, activation="relu", name="dense_1")(x[:, -1])
    model = keras.Model(ids, keras.layers.Dense(5, name="dense_2")(x))
    model.get_layer("embedding").set_weights([_np(torch_model.embedding.weight)])
    for i, layer in enumerate(bi):
        copy_recurrent(torch_model.lstm, i, layer)
    copy_linear(torch_model.fc1, model.get_layer("dense_1"))
    copy_linear(torch_model.fc2, model.get_layer("dense_2"))
    return model


class UnequalGRUs(nn.Module):
    """GRU(12) then GRU(5), the mean over time, Linear(5, 3): keras-io's stacks of different sizes."""

    def __init__(self):
        super().__init__()
        self.gru1, self.gru2, self.head = nn.GRU(4, 12, batch_first=True), nn.GRU(12, 5, batch_first=True), \
            nn.Linear(5, 3)

    def forward(self, x):
        out, _ = self.gru2(self.gru1(x)[0])
        return self.head(out.mean(dim=1))


def keras_unequal_grus(torch_model):
    inputs = keras.Input((STEPS, 4))
    g1, g2 = keras.layers.GRU(12, return_sequences=True), keras.layers.GRU(5, return_sequences=True)
    x = keras.layers.GlobalAveragePooling1D()(g2(g1(inputs)))
    head = keras.layers.Dense(3)
    model = keras.Model(inputs, head(x))
    copy_recurrent(torch_model.gru1, 0, g1)
    copy_recurrent(torch_model.gru2, 0, g2)
    copy_linear(torch_model.head, head)
    return model


class TimeMajor(nn.Module):
    """A time-major nn.RNN (batch_first=False) wrapped by a transpose; out[-1] is the last step."""

    def __init__(self, head_scale: float = 1.0):
        super().__init__()
        self.rnn, self.fc = nn.RNN(4, 8), nn.Linear(8, 3)
        with torch.no_grad():
            self.fc.weight *= head_scale

    def forward(self, x):
        out, _ = self.rnn(x.transpose(0, 1))            # (time, batch, 8)
        return self.fc(out[-1])


def keras_time_major(torch_model):
    inputs = keras.Input((STEPS, 4))
    rnn = keras.layers.RNN(keras.layers.SimpleRNNCell(8), name="rnn_of_cell")  # the RNN(cell) wrapper, last step
    fc = keras.layers.Dense(3, name="fc")
    model = keras.Model(inputs, fc(rnn(inputs)))
    copy_recurrent(torch_model.rnn, 0, rnn)
    copy_linear(torch_model.fc, fc)
    return model


class NormHead(nn.Module):
    """LSTM -> h_n[-1] -> LayerNorm or BatchNorm1d -> Linear."""

    def __init__(self, norm: str):
        super().__init__()
        self.lstm = nn.LSTM(4, 8, batch_first=True)
        self.norm = nn.LayerNorm(8) if norm == "layer" else nn.BatchNorm1d(8)
        self.fc = nn.Linear(8, 3)
        with torch.no_grad():  # not the identity: scale, offset and (BatchNorm) moving statistics of their own
            self.norm.weight.uniform_(0.5, 1.5)
            self.norm.bias.uniform_(-0.5, 0.5)
            if norm == "batch":
                self.norm.running_mean.uniform_(-0.2, 0.2)
                self.norm.running_var.uniform_(0.5, 2.0)

    def forward(self, x):
        _, (h_n, _) = self.lstm(x)
        return self.fc(self.norm(h_n[-1]))


def keras_norm_head(torch_model):
    inputs = keras.Input((STEPS, 4))
    lstm = keras.layers.LSTM(8)
    norm = (keras.layers.LayerNormalization(epsilon=1e-5) if isinstance(torch_model.norm, nn.LayerNorm)
            else keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9))
    fc = keras.layers.Dense(3)
    model = keras.Model(inputs, fc(norm(lstm(inputs))))
    copy_recurrent(torch_model.lstm, 0, lstm)
    copy_norm(torch_model.norm, norm)
    copy_linear(torch_model.fc, fc)
    return model


BUILDERS = {"embedding-bilstm": (EmbeddingBiLSTM, keras_embedding_bilstm),
            "unequal-grus": (UnequalGRUs, keras_unequal_grus),
            "time-major": (TimeMajor, keras_time_major),
            "layernorm": (lambda: NormHead("layer"), keras_norm_head),
            "batchnorm": (lambda: NormHead("batch"), keras_norm_head)}

NAMES = {"embedding-bilstm": (["embedding", "lstm:l0", "lstm:l1", "fc1", "fc2"],
                              ["embedding", "bi_1", "bi_2", "dense_1", "dense_2"]),
         "unequal-grus": (["gru1", "gru2", "head"], None),
         "time-major": (["rnn", "fc"], ["rnn_of_cell", "fc"]),
         "layernorm": (["lstm", "norm", "fc"], None),
         "batchnorm": (["lstm", "norm", "fc"], None)}


@pytest.fixture(scope="module")
def built():
    """Every pair, built once (a Keras model keeps its compiled probe between calls)."""
    pairs = {}
    for i, (name, (make_torch, make_keras)) in enumerate(BUILDERS.items()):
        torch.manual_seed(i)
        torch_model = make_torch().eval()
        pairs[name] = (torch_model, make_keras(torch_model))
    return pairs


def inputs_for(name: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    if name == "embedding-bilstm":
        x = rng.integers(0, VOCAB, size=(BATCH, STEPS))                   # (batch, time) token ids
    else:
        x = rng.normal(size=(BATCH, STEPS, 4)).astype(np.float32)        # (batch, time, features)
    return x, rng.integers(0, 3, size=BATCH)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_each_pair_agrees_layer_by_layer_and_in_its_gradients(built, name):
    torch_model, keras_model = built[name]
    x, y = inputs_for(name)
    report = assert_equivalent(torch_model, keras_model, x, y=y, gradients=True)
    torch_names, keras_names = NAMES[name]
    assert [d.torch_name for d in report.layers] == torch_names
    if keras_names:
        assert [d.keras_name for d in report.layers] == keras_names
    width = {"embedding-bilstm": 12, "unequal-grus": 5, "time-major": 8, "layernorm": 8, "batchnorm": 8}[name]
    recurrent = [d for d in report.layers if d.what == "output sequence"]
    assert recurrent and recurrent[-1].torch_shape == (BATCH, STEPS, width)  # batch-first, time axis aligned
    assert all(d.torch_shape == d.keras_shape for d in report.layers)
    assert report.max_abs_diff <= 1e-5 and report.logits_scale > 0.05
    assert sorted(g.keras_path for g in report.gradients) == sorted(v.path for v in keras_model.trainable_variables)
    assert max(g.scale for g in report.gradients) > 1e-3  # gradients that are not all zero


def test_a_dense_with_an_activation_is_compared_after_it(built):
    report = check_equivalent(*built["embedding-bilstm"], inputs_for("embedding-bilstm")[0])
    assert [d.what for d in report.layers] == ["output", "output sequence", "output sequence", "output after relu",
                                               "output"]


@pytest.mark.parametrize("name, parameter, index", [
    ("embedding-bilstm", "embedding.weight", 0),
    ("embedding-bilstm", "lstm.weight_hh_l0_reverse", 1),
    ("embedding-bilstm", "lstm.weight_ih_l1", 2),
    ("embedding-bilstm", "fc2.bias", 4),
    ("unequal-grus", "gru2.weight_hh_l0", 1),
    ("time-major", "rnn.bias_hh_l0", 0),
    ("layernorm", "norm.weight", 1),
    ("batchnorm", "norm.running_var", 1),
])
def test_one_perturbed_weight_names_its_layer(built, name, parameter, index):
    torch_model, keras_model = built[name]
    changed = copy.deepcopy(torch_model)
    with torch.no_grad():
        if "running" in parameter:  # a BatchNorm moving statistic: a buffer, not a parameter
            changed.get_buffer(parameter).mul_(2.0)
        else:
            tensor = changed.get_parameter(parameter)
            (tensor[:, 0] if tensor.ndim == 2 else tensor[:3]).add_(0.3)  # every token's row, for an embedding
    x = inputs_for(name)[0]
    report = check_equivalent(changed, keras_model, x)
    diffs = [d.max_abs_diff for d in report.layers]
    assert all(d <= 1e-5 for d in diffs[:index]) and diffs[index] > 1e-3, diffs
    layer = report.layers[index]
    with pytest.raises(AssertionError) as info:
        assert_equivalent(changed, keras_model, x)
    first = str(info.value).splitlines()[0]
    assert first.startswith(f"layer {index} (torch '{layer.torch_name}', keras '{layer.keras_name}'): the "
                            f"{layer.what} differs by up to {diffs[index]:.3g} (atol 1e-05)"), first


# --- pairing that fails, in one line -----------------------------------------------------------------------------

class ExtraLinear(UnequalGRUs):
    """One more Linear than the Keras twin has."""

    def __init__(self):
        super().__init__()
        self.extra = nn.Linear(3, 3)

    def forward(self, x):
        return self.extra(super().forward(x))


class WithUnusedModules(UnequalGRUs):
    """Modules the forward never calls, one of a paired kind and one not: both are left out."""

    def __init__(self):
        super().__init__()
        self.unused_linear, self.unused_conv = nn.Linear(5, 3), nn.Conv1d(4, 4, 1)


class GRUThenLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru1, self.lstm, self.head = nn.GRU(4, 12, batch_first=True), nn.LSTM(12, 5, batch_first=True), \
            nn.Linear(5, 3)

    def forward(self, x):
        out, _ = self.lstm(self.gru1(x)[0])
        return self.head(out.mean(dim=1))


def test_a_layer_without_counterpart_is_named_in_one_line(built):
    _, keras_model = built["unequal-grus"]
    x = inputs_for("unequal-grus")[0]
    with pytest.raises(ConversionError, match=r"^torch layer 'extra' \(Linear\), paired layer 3, has no counterpart "
                                              r"in the keras model, whose 3 paired layers are all matched before it$"):
        check_equivalent(ExtraLinear(), keras_model, x)
    with pytest.raises(ConversionError, match=r"^torch layer 'lstm' \(LSTM\), paired layer 1, has no counterpart: "
                                              r"keras has keras layer '\w+' \(GRU\) there, a different kind of layer$"):
        check_equivalent(GRUThenLSTM(), keras_model, x)
    # a Keras model with a LayerNormalization that torch lacks
    inputs = keras.Input((STEPS, 4))
    x_k = keras.layers.GRU(5, return_sequences=True)(keras.layers.GRU(12, return_sequences=True)(inputs))
    x_k = keras.layers.LayerNormalization(name="extra_norm")(keras.layers.GlobalAveragePooling1D()(x_k))
    longer = keras.Model(inputs, keras.layers.Dense(3)(x_k))
    with pytest.raises(ConversionError, match=r"^keras layer 'extra_norm' \(LayerNormalization\), paired layer 2, has "
                                              r"no counterpart in the torch model \(torch's next layer 'head' pairs "
                                              r"with keras '\w+'\)$"):
        check_equivalent(UnequalGRUs(), longer, x)
    with pytest.raises(AssertionError, match=r"^the models cannot be paired layer by layer: keras layer 'extra_norm'"):
        assert_equivalent(UnequalGRUs(), longer, x)
    unused = WithUnusedModules()
    unused.load_state_dict(built["unequal-grus"][0].state_dict(), strict=False)
    assert [d.torch_name for d in assert_equivalent(unused, keras_model, x).layers] == ["gru1", "gru2", "head"]
    with pytest.raises(ConversionError) as info:
        check_equivalent(torch.nn.Sequential(nn.Conv1d(7, 7, 1)), keras_model, x)
    assert str(info.value).startswith("torch module '0' (Conv1d) has parameters but no Keras counterpart")
    assert "\n" not in str(info.value)


# --- bad x or y: one line that blames the input, before either model runs ---------------------------------------

def _bad_inputs(x_tokens, x_float, y):
    return [
        ("embedding-bilstm", x_tokens[:, :, None], None, ShapeError,
         r"x has shape \(6, 7, 1\) \(3 axes\), but the models read \(batch, time\) token ids: 2 axes"),
        ("embedding-bilstm", x_tokens.astype(np.float32), None, ConfigError,
         r"x holds float32 values, but the models read token ids \(an Embedding comes first\); pass integer ids"),
        ("embedding-bilstm", np.where(x_tokens == x_tokens[1, 2], VOCAB, x_tokens), None, ConfigError,
         rf"x holds token id {VOCAB} at \(\d, \d\), outside the Embedding's vocabulary 0\.\.{VOCAB - 1}"),
        ("embedding-bilstm", x_tokens[:, :5], None, ShapeError,
         r"x has 5 time steps \(shape \(6, 5\)\), but the keras model reads 7"),
        ("unequal-grus", x_float[:, :, 0], None, ShapeError,
         r"x has shape \(6, 7\) \(2 axes\), but the models read \(batch, time, features\): 3 axes"),
        ("unequal-grus", x_float[:, :, :3], None, ShapeError,
         r"x has 3 features per step \(shape \(6, 7, 3\)\), but the keras model reads 4"),
        ("unequal-grus", np.where(np.arange(4) == 2, np.nan, x_float), None, ConfigError,
         r"x holds 42 nan or infinite value\(s\), the first at \(0, 0, 2\); every comparison would be nan"),
        ("unequal-grus", np.where(np.arange(4) == 3, np.inf, x_float)[:1], None, ConfigError,
         r"x holds 7 nan or infinite value\(s\), the first at \(0, 0, 3\)"),
        ("unequal-grus", x_float, y + 3, ConfigError,
         r"y holds label \d at index \d, but the models have 3 logits: labels run from 0 to 2"),
        ("unequal-grus", x_float, y - 1, ConfigError, r"y holds label -1 at index \d"),
        ("unequal-grus", x_float, y.astype(np.float32) + 0.5, ConfigError,
         r"y holds float32 values; labels are integer class indices"),
        ("unequal-grus", x_float, y[:4], ShapeError, r"y has 4 labels but x holds 6 examples"),
        ("unequal-grus", x_float, np.eye(3, dtype=np.int64)[y], ShapeError,
         r"y has shape \(6, 3\); pass one class index per example, shape \(6,\) \(one-hot\? pass y\.argmax\(-1\)\)"),
    ]


@pytest.mark.parametrize("case", range(13))
def test_bad_x_or_y_is_blamed_in_one_line_before_any_model_runs(built, case):
    x_tokens, _ = inputs_for("embedding-bilstm")
    x_float, y = inputs_for("unequal-grus")
    name, x, labels, error, message = _bad_inputs(x_tokens, x_float, y)[case]
    torch_model, keras_model = built[name]
    calls = []
    handle = torch_model.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        for caller, check in (("check_equivalent", check_equivalent), ("assert_equivalent", assert_equivalent)):
            with pytest.raises(error, match=rf"^{caller}: {message}") as info:
                check(torch_model, keras_model, x, y=labels)
            assert isinstance(info.value, UserError) and "\n" not in str(info.value)
    finally:
        handle.remove()
    assert calls == []  # refused before the torch model ran


# --- the tolerance ---------------------------------------------------------------------------------------------

def test_a_bool_tolerance_is_refused(built):
    torch_model, keras_model = built["time-major"]
    x = inputs_for("time-major")[0]
    with pytest.raises(TypeError, match=r"^assert_equivalent: atol must be a number, got bool True$"):
        assert_equivalent(torch_model, keras_model, x, atol=True)
    with pytest.raises(TypeError, match=r"^assert_equivalent: rtol must be a number, got bool False$"):
        assert_equivalent(torch_model, keras_model, x, rtol=False)
    with pytest.raises(TypeError, match=r"^assert_equivalent: atol must be a number, got bool np\.True_$"):
        assert_equivalent(torch_model, keras_model, x, atol=np.bool_(True))


@pytest.mark.parametrize("head_scale", [100.0, 0.01])
def test_the_layer_rtol_is_relative_to_the_torch_outputs_magnitude(built, head_scale):
    """|Δ| <= atol + rtol * max|torch output|, per layer.  With outputs near 100, an rtol of 2Δ/scale passes (an
    rtol read as absolute would fail); with outputs near 0.01, an rtol of 1.5Δ fails (read as absolute, it would
    pass)."""
    torch.manual_seed(7)
    torch_model = TimeMajor(head_scale)
    keras_model = keras_time_major(torch_model)
    with torch.no_grad():
        torch_model.fc.bias[1] += 1e-3 * head_scale
    x = inputs_for("time-major")[0]
    report = check_equivalent(torch_model, keras_model, x)
    fc = report.layers[1]
    assert fc.torch_name == "fc" and fc.max_abs_diff == pytest.approx(1e-3 * head_scale, rel=1e-3)
    if head_scale > 1:
        assert fc.scale > 20
        assert_equivalent(torch_model, keras_model, x, atol=0, rtol=2 * fc.max_abs_diff / fc.scale)
    else:
        assert fc.scale < 0.5
        with pytest.raises(AssertionError, match=rf"^layer 1 \(torch 'fc', keras 'fc'\): the output differs by up to "
                                                 rf"{fc.max_abs_diff:.3g} \(atol 0, rtol {1.5 * fc.max_abs_diff:g} × "
                                                 rf"max\|torch\| {fc.scale:.3g} = "):
            assert_equivalent(torch_model, keras_model, x, atol=0, rtol=1.5 * fc.max_abs_diff)


# --- wrappers and transposes --------------------------------------------------------------------------------

class Merges(nn.Module):
    """Token ids transposed to time-major, a time-major bidirectional RNN whose directions are summed, BatchNorm1d
    over (batch, channels, time), then a two-layer bidirectional GRU started from explicit zeros, out[:, -1]."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 8)
        self.rnn = nn.RNN(8, 6, bidirectional=True)                    # batch_first=False
        self.bn = nn.BatchNorm1d(6)
        self.gru = nn.GRU(6, 5, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(10, 3)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.2, 0.2)
            self.bn.running_var.uniform_(0.5, 2.0)

    def forward(self, ids):
        out, _ = self.rnn(self.embedding(ids.T))                       # (time, batch, 12)
        out = (out[..., :6] + out[..., 6:]).transpose(0, 1)            # (batch, time, 6): merge_mode="sum"
        out = self.bn(out.transpose(1, 2)).transpose(1, 2)             # BatchNorm1d reads (batch, channels, time)
        h0 = torch.zeros(4, ids.shape[0], 5)                           # (layers * directions, batch, hidden)
        out, _ = self.gru(out, h0)                                     # (batch, time, 10)
        return self.fc(out[:, -1])


def keras_merges(torch_model):
    ids = keras.Input((STEPS,), dtype="int32")
    embedding = keras.layers.Embedding(VOCAB, 8)
    rnn = keras.layers.Bidirectional(keras.layers.SimpleRNN(6, return_sequences=True), merge_mode="sum")
    bn = keras.layers.BatchNormalization(epsilon=1e-5)
    gru1 = keras.layers.Bidirectional(keras.layers.GRU(5, return_sequences=True))
    gru2 = keras.layers.Bidirectional(keras.layers.GRU(5, return_sequences=True), merge_mode=None, name="split")
    fc = keras.layers.Dense(3)
    forward, backward = gru2(gru1(bn(rnn(embedding(ids)))))
    model = keras.Model(ids, fc(keras.layers.Concatenate()([forward, backward])[:, -1]))
    embedding.set_weights([_np(torch_model.embedding.weight)])
    copy_recurrent(torch_model.rnn, 0, rnn)
    copy_norm(torch_model.bn, bn)
    copy_recurrent(torch_model.gru, 0, gru1)
    copy_recurrent(torch_model.gru, 1, gru2)
    copy_linear(torch_model.fc, fc)
    return model


def test_merge_modes_time_major_tokens_and_channels_first_batchnorm_pair():
    torch.manual_seed(3)
    torch_model = Merges().eval()
    keras_model = keras_merges(torch_model)
    x = inputs_for("embedding-bilstm")[0]
    report = assert_equivalent(torch_model, keras_model, x)
    assert [d.torch_name for d in report.layers] == ["embedding", "rnn", "bn", "gru:l0", "gru:l1", "fc"]
    assert [d.torch_shape for d in report.layers] == [(BATCH, STEPS, 8), (BATCH, STEPS, 6), (BATCH, STEPS, 6),
                                                      (BATCH, STEPS, 10), (BATCH, STEPS, 10), (BATCH, 3)]
    assert report.layers[-2].keras_name == "split" and report.max_abs_diff <= 1e-5
    with torch.no_grad():
        torch_model.gru.weight_hh_l0_reverse[:, 1] += 0.3
    with pytest.raises(AssertionError, match=r"^layer 3 \(torch 'gru:l0', keras '\w+'\): the output sequence differs"):
        assert_equivalent(torch_model, keras_model, x)


class TimeMajorWithoutTranspose(TimeMajor):
    """The time-major RNN fed (batch, time, features) as it comes: it reads the batch as time."""

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[-1])


def test_a_time_major_module_fed_batch_first_is_caught_and_explained(built):
    torch_model, keras_model = built["time-major"]
    wrong = TimeMajorWithoutTranspose()
    wrong.load_state_dict(torch_model.state_dict())
    with pytest.raises(AssertionError, match=r"^layer 0 \(torch 'rnn', keras 'rnn_of_cell'\): the output sequence has "
                                             r"shape \(7, 6, 8\) in torch but \(6, 7, 8\) in keras \(batch and time "
                                             r"swapped: a batch_first=False torch module reads \(time, batch, "
                                             r"features\); transpose x in its forward\)"):
        assert_equivalent(wrong, keras_model, inputs_for("time-major")[0])


def test_layers_that_cannot_compute_the_same_thing_are_refused_with_the_reason(built):
    _, keras_model = built["unequal-grus"]
    x = inputs_for("unequal-grus")[0]
    inputs = keras.Input((STEPS, 4))
    hidden = keras.layers.GRU(12, return_sequences=True, reset_after=False, name="gru_v2")(inputs)
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.GRU(5, return_sequences=True)(hidden))
    other = keras.Model(inputs, keras.layers.Dense(3)(pooled))
    with pytest.raises(ConversionError, match=r"^paired layer 0, torch 'gru1' \(GRU\) and keras 'gru_v2' \(GRU\), "
                                              r"cannot compute the same thing: keras GRU reset_after=False applies"):
        check_equivalent(UnequalGRUs(), other, x)
    with pytest.raises(ConversionError, match=r"precisions differ: torch parameters are float64, keras '\w+' keeps "
                                              r"float32 weights and computes in float32$"):
        check_equivalent(UnequalGRUs().double(), keras_model, x)


def test_gradients_need_labels_and_two_logits(built):
    torch_model, keras_model = built["unequal-grus"]
    x, y = inputs_for("unequal-grus")
    with pytest.raises(ConfigError, match=r"^check_equivalent: gradients=True needs the labels y$"):
        check_equivalent(torch_model, keras_model, x, gradients=True)
    one_logit = nn.Sequential()  # a torch side is not even run: the Keras model's output width decides
    inputs = keras.Input((STEPS, 4))
    binary = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GRU(5)(inputs)))
    with pytest.raises(ConfigError, match=r"needs at least two logits; the models have 1: compare the layers and "
                                          r"outputs with gradients=False$"):
        check_equivalent(one_logit, binary, x, y % 2, gradients=True)
