"""``parity.from_keras.convert_keras_model``: Keras models read from their own graph, converted and checked.

Every model here is small (units 4-16, 5-7 steps) and gets random weights everywhere,
biases, moving statistics and LayerNorm/BatchNorm scales included, so a bias or a
statistic left behind shows in the outputs.  Each conversion is compared twice: by the
converter itself on ``example_x``, and here on a second batch it never saw, against
``parity.check.within``.  Tests that run Keras numbers carry the ``backend`` marker (torch, JAX and TensorFlow);
refusals happen while the graph is read, before Keras runs anything, so they run once.
Layers are gathered into branches of one model where possible: under JAX every new
recurrent model costs a compile.
"""
from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
import torch
from keras import layers, ops
from torch import nn

from common.errors import ConversionError
from parity import keras_layers_to_torch
from parity.check import allowance, describe_difference, max_abs_diff, within
from parity.from_keras import build_torch_module, convert_keras_model

backend = pytest.mark.backend

STEPS, FEATURES, VOCAB = 6, 5, 30


def randomize(model, seed: int = 0):
    """Give every weight random values (variances stay positive), so nothing passes by being zero or one."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        values = rng.normal(0.0, 0.5, tuple(w.shape)).astype("float32")
        w.assign(np.abs(values) + 0.5 if "variance" in w.path else values)
    return model


def floats(batch: int = 4, steps: int = STEPS, features: int = FEATURES, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, steps, features)).astype("float32")


def tokens(batch: int = 4, steps: int = STEPS, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, VOCAB, (batch, steps)).astype("int32")


def converted(model, x, other=None, **kwargs):
    """Convert on ``x``, then hold the module to the Keras model on ``other``, a batch it never saw."""
    module = convert_keras_model(randomize(model), x, **kwargs)
    if other is None:
        other = (np.random.default_rng(7).integers(0, VOCAB, x.shape).astype(x.dtype) if x.dtype.kind == "i"
                 else np.random.default_rng(7).standard_normal(x.shape).astype("float32"))
    expected = keras.ops.convert_to_numpy(model(other, training=False))
    with torch.no_grad():
        got = module(torch.from_numpy(other)).numpy()
    diff = max_abs_diff(got, expected)
    assert within(diff, expected), describe_difference(diff)
    assert np.abs(expected).max() > 1e-3  # the comparison is about numbers, not zeros
    return module


def seq(*stack, shape=(STEPS, FEATURES), dtype="float32", name=None):
    return keras.Sequential([keras.Input(shape, dtype=dtype), *stack], name=name)


# --- recurrent layers ----------------------------------------------------------------------------------

def branches(layer_list, head=None):
    """One model reading the same input through each layer, every branch ending in its own Dense, concatenated.

    One conversion (and one Keras compile per backend) checks many layers at once; a wrong
    branch is named by the converter's "first step that differs"."""
    inputs = keras.Input((STEPS, FEATURES))
    outs = [layers.Dense(2, name=f"head{i}")(head(layer(inputs)) if head else layer(inputs))
            for i, layer in enumerate(layer_list)]
    return keras.Model(inputs, layers.Concatenate()(outs))


def recurrent_layers():
    """Each Keras recurrent layer and option, with the torch module it must become."""
    return [
        (layers.SimpleRNN(8, name="b0"), nn.RNN),
        (layers.SimpleRNN(8, activation="relu", name="b1"), nn.RNN),
        (layers.GRU(8, name="b2"), nn.GRU),
        (layers.LSTM(8, name="b3"), nn.LSTM),
        (layers.RNN(layers.SimpleRNNCell(8), name="b4"), nn.RNN),
        (layers.RNN(layers.GRUCell(8), name="b5"), nn.GRU),
        (layers.RNN(layers.LSTMCell(8), name="b6"), nn.LSTM),
        (layers.LSTM(8, use_bias=False, name="b7"), nn.LSTM),
        (layers.GRU(8, use_bias=False, name="b8"), nn.GRU),
        (layers.GRU(8, go_backwards=True, name="b9"), nn.GRU),
        (layers.LSTM(8, dropout=0.5, recurrent_dropout=0.3, name="b10"), nn.LSTM),
    ]


@backend
@pytest.mark.extended  # JAX compiles each new recurrent model: torch in make test, JAX and TF in test-extended
def test_stacked_cells_become_one_module_per_cell():
    cells = layers.RNN([layers.GRUCell(6), layers.LSTMCell(4), layers.SimpleRNNCell(8)], go_backwards=True, name="r")
    module = converted(seq(cells, layers.Dense(3)), floats())
    assert [(type(m), m.input_size, m.hidden_size) for m in module.children() if not isinstance(m, nn.Linear)] == [
        (nn.GRU, FEATURES, 6), (nn.LSTM, 6, 4), (nn.RNN, 4, 8)]


@backend
@pytest.mark.extended  # JAX compiles each new recurrent model: torch in make test, JAX and TF in test-extended
def test_each_recurrent_layer_converts_to_its_torch_module():
    made = recurrent_layers()
    module = converted(branches([layer for layer, _ in made]), floats())
    for i, (layer, torch_class) in enumerate(made):
        rnn = module.get_submodule(f"b{i}")
        assert type(rnn) is torch_class and rnn.hidden_size == 8 and rnn.batch_first, i
        assert rnn.bias == layer.cell.use_bias, i
        if torch_class is nn.RNN:
            assert rnn.nonlinearity == keras.activations.serialize(layer.cell.activation), i
    assert "b9_reversed_input = torch.flip(x, (1,))" in module.code  # go_backwards reads the steps in reverse
    # The same with each layer returning its sequence, read through Flatten (every step compared)
    again = [layers.LSTM(6, go_backwards=True, return_sequences=True), layers.GRU(6, return_sequences=True)]
    converted(branches(again, head=layers.Flatten()), floats())


@backend
@pytest.mark.extended  # JAX compiles each new recurrent model: torch in make test, JAX and TF in test-extended
def test_bidirectional_merge_modes():
    modes = ["concat", "sum", "mul", "ave"]
    last = [layers.Bidirectional(layers.GRU(6), merge_mode=m, name=f"b{i}") for i, m in enumerate(modes)]
    every = [layers.Bidirectional(layers.LSTM(6, return_sequences=True), merge_mode=m, name=f"b{i}")
             for i, m in enumerate(modes)]
    for stack, head in [(last, None), (every, layers.GlobalMaxPooling1D())]:
        module = converted(branches(stack, head=head), floats())
        for i, mode in enumerate(modes):
            rnn = module.get_submodule(f"b{i}")
            assert rnn.bidirectional and rnn.hidden_size == 6
            assert module.get_submodule(f"head{i}").in_features == (12 if mode == "concat" else 6)


@backend
@pytest.mark.extended  # JAX compiles each new recurrent model: torch in make test, JAX and TF in test-extended
def test_keras_io_stacks_of_unequal_layers():
    # keras-io's working_with_rnns: Bidirectional(LSTM(64, seq)) -> Bidirectional(LSTM(32)), sizes shrunk
    inputs = keras.Input((None,), dtype="int32")
    x = layers.Embedding(VOCAB, 8)(inputs)
    x = layers.Bidirectional(layers.LSTM(16, return_sequences=True))(x)
    x = layers.Bidirectional(layers.LSTM(8))(x)
    module = converted(keras.Model(inputs, layers.Dense(1, activation="sigmoid")(x)), tokens())
    lstms = [m for m in module.modules() if isinstance(m, nn.LSTM)]
    assert [(m.input_size, m.hidden_size, m.bidirectional) for m in lstms] == [(8, 16, True), (32, 8, True)]
    # ... and GRU(256, seq) -> SimpleRNN(128), shrunk
    module = converted(seq(layers.Embedding(VOCAB, 8), layers.GRU(16, return_sequences=True), layers.SimpleRNN(8),
                           layers.Dense(4), shape=(None,), dtype="int32"), tokens())
    assert [type(m) for m in module.children()] == [nn.Embedding, nn.GRU, nn.RNN, nn.Linear]
    # integer ids go in uncast (no aten.to for the way back), int32 or int64 alike
    assert [n.target for n in module.graph.nodes if n.op == "call_method"] == []
    with torch.no_grad():
        ids = torch.from_numpy(tokens())
        assert torch.equal(module(ids), module(ids.long()))


@backend
def test_return_state_and_readouts_from_the_graph():
    inputs = keras.Input((STEPS, FEATURES))
    out, h, c = layers.LSTM(6, return_sequences=True, return_state=True)(inputs)
    both = layers.Bidirectional(layers.SimpleRNN(4, return_state=True))(out)  # [merged, h_fwd, h_bwd]
    read = layers.Concatenate()([ops.mean(out, axis=1), h, c, out[:, 0] + out[:, -1], ops.max(out, axis=1),
                                 ops.sum(out, axis=1), both[0], both[1] * both[2]])
    module = converted(keras.Model(inputs, layers.Dense(3)(read)), floats())
    assert "torch.mean" in module.code and "torch.amax" in module.code and "torch.cat" in module.code


@backend
def test_embedding_with_float_token_input_and_pooling():
    inputs = keras.Input((STEPS,))  # float ids, which Keras's Embedding casts to integers
    x = layers.Embedding(VOCAB, 8, name="embedding")(inputs)
    x = layers.GRU(8, return_sequences=True)(x)
    x = layers.Add()([layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])
    module = converted(keras.Model(inputs, layers.Dense(3)(x)), tokens().astype("float32"),
                       other=tokens(seed=9).astype("float32"))
    assert module.embedding.weight.shape == (VOCAB, 8)
    assert [n.target for n in module.graph.nodes if n.op == "call_method"] == ["long"]  # float ids cast, as Keras


# --- heads -------------------------------------------------------------------------------------------------

ACTIVATIONS = [("relu", nn.ReLU), ("tanh", nn.Tanh), ("sigmoid", nn.Sigmoid), ("gelu", nn.GELU),
               (keras.ops.gelu, nn.GELU), ("softmax", nn.Softmax), ("log_softmax", nn.LogSoftmax), ("linear", None)]


@backend
def test_dense_activations():
    inputs = keras.Input((STEPS, FEATURES))
    h = layers.LSTM(8)(inputs)
    outs = [layers.Dense(6, activation=act, name=f"d{i}")(h) for i, (act, _) in enumerate(ACTIVATIONS)]
    module = converted(keras.Model(inputs, layers.Concatenate()(outs)), floats())
    for i, (activation, torch_class) in enumerate(ACTIVATIONS):
        found = [m for name, m in module.named_children() if name.startswith(f"d{i}_")]
        assert [type(m) for m in found] == ([torch_class] if torch_class else []), activation
        if torch_class is nn.GELU:
            assert found[0].approximate == ("tanh" if activation is keras.ops.gelu else "none")


@backend
def test_activation_layers_dropout_and_one_sigmoid_logit():
    module = converted(seq(layers.GRU(8), layers.Dropout(0.5), layers.Dense(6), layers.Activation("relu", name="act"),
                           layers.Dense(1, activation="sigmoid", name="out")), floats())
    assert isinstance(module.act, nn.ReLU) and isinstance(module.out_sigmoid, nn.Sigmoid)
    converted(seq(layers.LSTM(8), layers.Dense(4), layers.Activation("softmax")), floats())


@backend
def test_layer_and_batch_normalization():
    module = converted(seq(layers.LSTM(8, return_sequences=True), layers.BatchNormalization(momentum=0.9),
                           layers.BatchNormalization(axis=1, name="over_time"),  # (batch, channels=time, 8)
                           layers.LSTM(8), layers.LayerNormalization(epsilon=1e-3),
                           layers.BatchNormalization(epsilon=1e-2), layers.Dense(3)), floats())
    norms = [m for m in module.children() if isinstance(m, (nn.LayerNorm, nn.BatchNorm1d))]
    assert [type(m) for m in norms] == [nn.BatchNorm1d, nn.BatchNorm1d, nn.LayerNorm, nn.BatchNorm1d]
    assert module.over_time.num_features == STEPS
    norms = norms[:1] + norms[2:]
    assert norms[0].momentum == pytest.approx(0.1) and norms[2].eps == pytest.approx(1e-2)
    assert norms[1].eps == pytest.approx(1e-3)
    assert not np.allclose(norms[0].running_var.numpy(), 1.0)  # the moving statistics came along


@backend
def test_stack_reshape_and_the_activation_layers_that_from_torch_writes():
    """What parity.from_torch puts in the Keras models it builds comes back: ops.stack, Reshape, LeakyReLU, ELU, gelu."""
    inputs = keras.Input((STEPS, FEATURES))
    h = layers.LSTM(8, return_sequences=True)(inputs)                     # (batch, time, 8)
    pair = ops.stack([h[:, -1], ops.max(h, axis=1)], axis=1)              # (batch, 2, 8)
    last = ops.stack([h[:, 0], h[:, -1]], axis=-1)                        # (batch, 8, 2)
    flat = layers.Reshape((-1,), name="flat")(pair)                       # (batch, 16)
    # gelu's two forms part by ~1e-4 only where |x| > 1, so it reads 4 * flat (LSTM outputs lie in (-1, 1))
    grid = layers.Reshape((4, 4), name="grid")(layers.Reshape((2, 8))(flat))
    parts = [layers.LeakyReLU(negative_slope=0.2, name="leaky")(flat), layers.ELU(alpha=0.7, name="elu")(flat),
             ops.gelu(flat * 4.0), ops.gelu(flat * 4.0, approximate=False), layers.Flatten()(grid), layers.Flatten()(last)]
    module = converted(keras.Model(inputs, layers.Dense(3)(layers.Concatenate()(parts))), floats())
    assert module.leaky.negative_slope == pytest.approx(0.2) and module.elu.alpha == pytest.approx(0.7)
    found = {n.target for n in module.graph.nodes if n.op == "call_function"}
    assert {torch.stack, torch.reshape, torch.nn.functional.gelu} <= found
    gelus = [n.kwargs["approximate"] for n in module.graph.nodes if n.target is torch.nn.functional.gelu]
    assert gelus == ["tanh", "none"]
    with torch.no_grad():  # the batch axis stays free: another batch size runs
        assert tuple(module(torch.from_numpy(floats(batch=3))).shape) == (3, 3)


@backend
def test_module_is_plain_and_its_state_dict_reloads(tmp_path):
    model = seq(layers.Embedding(VOCAB, 8), layers.Bidirectional(layers.LSTM(6), name="bidirectional"), layers.Dense(3),
                shape=(None,), dtype="int32")
    module = converted(model, tokens())
    assert isinstance(module, torch.fx.GraphModule) and not module.training
    assert "self.bidirectional(" in module.code and "LSTM(8, 6, batch_first=True, bidirectional=True)" in str(module)
    torch.save(module.state_dict(), tmp_path / "model.pt")
    fresh, _ = build_torch_module(randomize(model, seed=5))  # same layers, other weights
    x = torch.from_numpy(tokens(seed=3)).long()
    with torch.no_grad():
        assert not torch.allclose(fresh(x), module(x))
        fresh.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
        assert torch.equal(fresh(x), module(x))


@backend
@pytest.mark.filterwarnings("ignore:Layer .* does not support masking")  # Keras's note on GlobalMaxPooling1D
def test_mask_zero_is_refused_only_where_the_mask_is_read():
    masked = keras.Input((None,), dtype="int32")
    x = layers.Embedding(VOCAB, 8, mask_zero=True, name="emb")(masked)
    with pytest.raises(ConversionError, match=r"'emb' \(Embedding\) has mask_zero=True and its mask reaches keras "
                                              r"layer 'rnn' \(LSTM\)") as e:
        convert_keras_model(keras.Model(masked, layers.Dense(2)(layers.LSTM(4, name="rnn")(layers.Dense(6)(x)))),
                            tokens())
    assert "\n" not in str(e.value)
    # Dense and max-pooling ignore the mask, so it cannot change the outputs: accepted, with token 0 present
    unread = keras.Model(masked, layers.Dense(2)(layers.GlobalMaxPooling1D()(layers.Dense(6)(x))))
    with_zeros = tokens()
    with_zeros[:, -2:] = 0
    converted(unread, with_zeros)


# --- refusals: one line naming the layer -----------------------------------------------------------------

class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.rnn, self.head = layers.LSTM(4), layers.Dense(2)

    def call(self, x):
        return self.head(self.rnn(x))


def functional(body):
    """``keras.Model(i, body(i))`` for a float sequence input ``i``."""
    inputs = keras.Input((STEPS, FEATURES))
    return keras.Model(inputs, body(inputs))


def called_once(model):
    model(floats())  # a subclassed model is built by its first call, as a trained one has been
    return model


def refusal(model, x=None, **kwargs) -> str:
    with pytest.raises(ConversionError) as e:
        convert_keras_model(model, floats() if x is None else x, **kwargs)
    assert "\n" not in str(e.value)
    return str(e.value)


@pytest.mark.parametrize("make, expected", [
    (lambda: seq(layers.SimpleRNN(4, activation="sigmoid", name="r"), layers.Dense(2)),
     r"keras layer 'r' \(SimpleRNN\) uses activation='sigmoid'; torch's nn.RNN offers"),
    (lambda: seq(layers.LSTM(4, recurrent_activation="hard_sigmoid", name="r"), layers.Dense(2)),
     r"'r' \(LSTM\) uses activation='tanh', recurrent_activation='hard_sigmoid'"),
    (lambda: seq(layers.GRU(4, activation="relu", name="r"), layers.Dense(2)),
     r"'r' \(GRU\) uses activation='relu'"),
    (lambda: seq(layers.GRU(4, reset_after=False, name="r"), layers.Dense(2)),
     r"'r' \(GRU\) has reset_after=False"),
    (lambda: functional(lambda i: layers.Dense(2)(layers.RNN([layers.GRUCell(4), layers.LSTMCell(4)],
                                                             return_state=True, name="r")(i)[0])),
     r"'r' \(RNN\) runs a StackedRNNCells"),
    (lambda: seq(layers.LSTM(4, name="r"), layers.LayerNormalization(rms_scaling=True, name="n"), layers.Dense(2)),
     r"'n' \(LayerNormalization\) has rms_scaling=True"),
    (lambda: seq(layers.LSTM(4, return_sequences=True), layers.LayerNormalization(axis=1, name="n"), layers.Flatten(),
                 layers.Dense(2)),
     r"'n' \(LayerNormalization\) normalizes over axis \[1\] of a rank-3 input"),
    (lambda: seq(layers.Conv1D(4, 3, name="c"), layers.LSTM(4), layers.Dense(2)),
     r"keras layer 'c' \(Conv1D\) has no torch mapping in convert; it maps Embedding, SimpleRNN"),
    (lambda: seq(layers.LSTM(4), layers.Lambda(lambda t: t * 2, name="l"), layers.Dense(2)),
     r"keras layer 'l' \(Lambda\) has no torch mapping"),
    (lambda: seq(layers.LSTM(4), layers.Dense(2, activation="selu", name="d")),
     r"keras layer 'd' \(Dense\) uses activation 'selu', which convert does not map"),
    (lambda: seq(layers.LSTM(4), layers.Dense(2, dtype="mixed_float16", name="d")),
     r"'d' \(Dense\) keeps float32 weights and computes in float16; convert works in float32"),
    (lambda: functional(lambda i: layers.Dense(2)(ops.cumsum(layers.LSTM(4, return_sequences=True)(i), axis=1)[:, -1])),
     r"keras op 'cumsum' \(Cumsum\) has no torch mapping"),
    (lambda: called_once(Subclassed()), r"is a subclassed keras.Model \(Subclassed\).*functional API"),
])
@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")  # Keras deprecates it; users still have it
def test_what_has_no_exact_torch_counterpart_is_refused_by_name(make, expected):
    model = make()  # built: it has its input shape, or (subclassed) was called once
    assert pytest.raises(ConversionError, convert_keras_model, model, floats()).match(expected)
    refusal(model)


def test_bad_examples_are_refused_in_one_line():
    model = seq(layers.LSTM(4), layers.Dense(2), name="m")
    assert refusal(model, floats(features=4)) == ("example_x has 4 features per step but Keras model 'm' "
                                                  f"takes {FEATURES} (input shape (None, {STEPS}, {FEATURES})); "
                                                  "pass examples of the model's own width")
    assert refusal(model, floats()[:, :, 0]) == ("example_x has shape (4, 6) but Keras model 'm' takes input of "
                                                 "shape (None, 6, 5); pass a batch of sequences of that shape")
    free = seq(layers.LSTM(4), layers.Dense(2), shape=(None, FEATURES))
    assert "one time step" in refusal(free, floats(steps=1))
    assert "repeats one sequence" in refusal(free, np.repeat(floats()[:1], 3, axis=0))
    assert "timesteps=5 but example_x has 6 steps" in refusal(free, floats(), timesteps=5)
    assert "timesteps must be a positive whole number" in refusal(free, floats(), timesteps="6")
    text = seq(layers.Embedding(VOCAB, 4), layers.GRU(4), layers.Dense(2), shape=(None,), dtype="int32")
    assert f"Embedding has {VOCAB} rows" in refusal(text, tokens() + VOCAB)


def test_a_wrong_mapping_is_caught_and_the_first_differing_layer_named(monkeypatch):
    model = randomize(seq(layers.GRU(6, name="g"), layers.Dense(5, name="d1", activation="tanh"),
                          layers.Dense(3, name="d2"), name="m"))
    real = keras_layers_to_torch._port

    def off_by_a_little(module, attr, array, where):  # a Linear bias ported wrong
        real(module, attr, array + (0.1 if isinstance(module, nn.Linear) and attr == "bias" else 0.0), where)

    monkeypatch.setattr(keras_layers_to_torch, "_port", off_by_a_little)
    message = refusal(model)
    assert message.startswith("the converted torch module's outputs and Keras model 'm''s differ by up to ")
    assert "the float32 allowance 1e-05 + 1e-05" in message
    assert message.endswith("the first step that differs is keras layer 'd1' (Dense) (differ by up to "
                            + message.rsplit("(differ by up to ", 1)[1])


@backend
@pytest.mark.extended  # JAX compiles each new recurrent model: torch in make test, JAX and TF in test-extended
def test_partial_gelu_and_nested_models():
    gelu_tanh = functools.partial(keras.activations.gelu, approximate=True)
    inner = seq(layers.GRU(6, return_sequences=True), layers.Dense(4, activation=gelu_tanh))
    inputs = keras.Input((STEPS, FEATURES))
    x = inner(inputs)
    module = converted(keras.Model(inputs, layers.Dense(2)(ops.squeeze(x[:, -1:], axis=1))), floats())
    gelu = [m for m in module.modules() if isinstance(m, nn.GELU)]
    assert [g.approximate for g in gelu] == ["tanh"]


@backend
@pytest.mark.extended_only
def test_wide_long_model_stays_well_inside_the_float32_allowance(fashion):
    """Bidirectional(LSTM(128)) x 2 over 28 steps of real images, logits near 10: measured at 4e-7 to 9e-7 of
    the logits' magnitude on the three backends, under a tenth of the allowance; a quarter leaves room for BLAS."""
    (images, _), _ = fashion
    x = (images[:128] / 255.0).astype("float32")  # (128, 28, 28)
    inputs = keras.Input((28, 28))
    h = layers.Bidirectional(layers.LSTM(128, return_sequences=True))(inputs)
    model = keras.Model(inputs, layers.Dense(10, name="head")(layers.Bidirectional(layers.LSTM(128))(h)))
    rng = np.random.default_rng(0)
    for w in model.weights:
        w.assign(rng.normal(0, 0.15 if "recurrent" in w.path else 0.1, tuple(w.shape)).astype("float32"))
    model.get_layer("head").kernel.assign(model.get_layer("head").kernel.numpy() * 12)
    module = convert_keras_model(model, x)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    with torch.no_grad():
        diff = max_abs_diff(module(torch.from_numpy(x)).numpy(), expected)
    assert np.abs(expected).max() > 5  # logits of a trained classifier's size
    assert diff < 0.25 * allowance(expected), describe_difference(diff)
