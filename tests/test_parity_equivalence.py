"""``parity.check_equivalent`` and ``parity.testing.assert_equivalent``: what they measure, and that they fail
where they should.  Every test runs once per Keras backend."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from parity import check_equivalent, torch_to_keras
from parity.testing import assert_equivalent

pytestmark = pytest.mark.backend


class OneModule(nn.Module):
    """One three-layer bidirectional LSTM module and a head reading h_n, as StackedRNN does."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(28, 6, num_layers=3, batch_first=True, bidirectional=True)
        self.head = nn.Linear(12, 10)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(torch.cat([out[:, -1, :6], out[:, 0, 6:]], dim=-1))


class MeanOverTime(OneModule):
    """The same layers, used differently: the head reads the mean over time."""

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out.mean(dim=1))


@pytest.fixture(scope="module")
def converted():
    """A torch model and its Keras twin, built once: each test perturbs a copy of the torch model, and
    the Keras model keeps its compiled probe (check_equivalent caches it per model)."""
    from keras_version.model import build_model
    torch.manual_seed(0)
    torch_model = OneModule()
    keras_model = build_model(hidden_size=6, cell="lstm", bidirectional=True, timesteps=13)
    torch_to_keras(torch_model, keras_model)
    return torch_model, keras_model


@pytest.fixture
def models(converted):
    torch_model, keras_model = converted
    return copy.deepcopy(torch_model), keras_model


@pytest.fixture
def batch(small_data):
    x, y = small_data.train.batch(0, 0)
    return np.ascontiguousarray(x[:16, :13]), y[:16]  # real images, the first 13 rows


def test_report_per_layer_logits_and_gradients(models, batch):
    torch_model, keras_model = models
    x, y = batch
    report = check_equivalent(torch_model, keras_model, x, y, gradients=True)
    assert [d.torch_name for d in report.layers] == ["rnn:l0", "rnn:l1", "rnn:l2", "head"]
    assert [d.keras_name for d in report.layers] == ["bi_lstm_1", "bi_lstm_2", "bi_lstm_3", "fc"]
    assert [d.torch_shape for d in report.layers] == [(16, 13, 12)] * 3 + [(16, 10)]
    assert [d.keras_shape for d in report.layers] == [d.torch_shape for d in report.layers]
    assert all(d.max_abs_diff <= 1e-5 for d in report.layers) and report.logits <= 1e-5
    assert sorted(g.keras_path for g in report.gradients) == sorted(v.path for v in keras_model.trainable_variables)
    assert all(g.max_abs_diff <= 1e-5 for g in report.gradients) and report.max_abs_diff <= 1e-5
    assert report.first_failure(1e-5) is None
    table = str(report).splitlines()
    assert len(table) == 1 + 4 + 1 + 20  # header, layers, logits, gradients
    assert table[0].split() == ["#", "torch", "keras", "compared", "shape", "max", "|Δ|"]
    assert torch_model.training  # left in the mode it was in


@pytest.mark.parametrize("layer", [1, 2])
def test_a_perturbed_layer_inside_a_multi_layer_module_is_found(models, batch, layer):
    """Layers of one nn.LSTM(num_layers=3) are replayed one by one: the change shows at its own layer."""
    torch_model, keras_model = models
    with torch.no_grad():
        getattr(torch_model.rnn, f"weight_hh_l{layer}_reverse")[2, 3] += 0.5
    report = check_equivalent(torch_model, keras_model, batch[0])
    diffs = [d.max_abs_diff for d in report.layers]
    assert all(d <= 1e-5 for d in diffs[:layer]) and diffs[layer] > 1e-3, diffs
    with pytest.raises(AssertionError) as info:
        assert_equivalent(torch_model, keras_model, batch[0])
    first = str(info.value).splitlines()[0]
    assert first.startswith(f"layer {layer} (torch 'rnn:l{layer}', keras 'bi_lstm_{layer + 1}'): the output sequence "
                            f"differs by up to {diffs[layer]:.3g} (atol 1e-05)"), first


def test_a_perturbed_head_shows_in_its_output(models, batch):
    torch_model, keras_model = models
    with torch.no_grad():
        torch_model.head.bias[0] += 1e-3
    report = check_equivalent(torch_model, keras_model, batch[0])
    assert all(d.max_abs_diff <= 1e-5 for d in report.layers[:3])
    assert report.layers[3].max_abs_diff == pytest.approx(1e-3, rel=1e-2) == report.logits
    with pytest.raises(AssertionError, match=r"^layer 3 \(torch 'head', keras 'fc'\): the output differs by up to "):
        assert_equivalent(torch_model, keras_model, batch[0])


class Tempered(OneModule):
    """The same layers and head, then the logits divided by a temperature."""

    def forward(self, x):
        return super().forward(x) / 2


def test_a_forward_that_uses_the_layers_differently_is_caught(batch):
    from keras_version.model import build_model
    keras_model = build_model(hidden_size=6, cell="lstm", bidirectional=True, timesteps=13)
    torch.manual_seed(1)
    mean_over_time, tempered = MeanOverTime(), Tempered()
    torch_to_keras(mean_over_time, keras_model)
    with pytest.raises(AssertionError, match=r"^layer 3 \(torch 'head', keras 'fc'\): the output differs"):
        assert_equivalent(mean_over_time, keras_model, batch[0])
    tempered.load_state_dict(mean_over_time.state_dict())
    with pytest.raises(AssertionError, match=r"^the logits: the output differs by up to \S+ \(atol 1e-05\), although "
                                             r"every paired layer agrees"):
        assert_equivalent(tempered, keras_model, batch[0])


def test_nan_is_a_difference(models, batch):
    torch_model, keras_model = models
    with torch.no_grad():
        torch_model.rnn.weight_ih_l0[0, 0] = float("nan")
    report = check_equivalent(torch_model, keras_model, batch[0])
    assert np.isnan(report.layers[0].max_abs_diff) and np.isnan(report.max_abs_diff)
    with pytest.raises(AssertionError, match=r"^layer 0 \(torch 'rnn:l0', keras 'bi_lstm_1'\): the output sequence "
                                             r"cannot be compared: it holds a nan or infinite value on one side or "
                                             r"both \(atol 1e-05\)\n") as info:
        assert_equivalent(torch_model, keras_model, batch[0])
    assert "up to nan" not in str(info.value).splitlines()[0]


class OneLogitMoved(OneModule):
    """The same model, but logit 5 (and only it) is moved after the head: a column the others do not show."""

    def forward(self, x):
        logits = super().forward(x)
        return logits + torch.nn.functional.one_hot(torch.tensor(5), 10) * 1e-3


def test_every_logit_is_compared_not_one_column(models, batch):
    torch_model, keras_model = models
    moved = OneLogitMoved()
    moved.load_state_dict(torch_model.state_dict())
    report = check_equivalent(moved, keras_model, batch[0])
    assert all(d.max_abs_diff <= 1e-5 for d in report.layers)  # the head's own output is untouched
    assert report.logits == pytest.approx(1e-3, rel=1e-2)
    with pytest.raises(AssertionError, match=r"^the logits: the output differs by up to 0\.001 \(atol 1e-05\)"):
        assert_equivalent(moved, keras_model, batch[0])


def test_atol_is_the_tolerance(models, batch):
    """A pair 1e-3 apart passes at atol=1e-2 and fails at 1e-5 (and by rtol, relative to the logits)."""
    torch_model, keras_model = models
    with torch.no_grad():
        torch_model.head.bias += 1e-3
    report = assert_equivalent(torch_model, keras_model, batch[0], atol=1e-2)
    assert report.logits == pytest.approx(1e-3, rel=1e-2)
    with pytest.raises(AssertionError, match=r"^layer 3 \(torch 'head', keras 'fc'\): the output differs by up to "
                                             r"0\.001 \(atol 1e-05\)"):
        assert_equivalent(torch_model, keras_model, batch[0], atol=1e-5)
    scale = report.logits_scale
    assert scale > 0.01
    assert_equivalent(torch_model, keras_model, batch[0], atol=0, rtol=2e-3 / scale)
    with pytest.raises(AssertionError, match=r"\(atol 0, rtol "):
        assert_equivalent(torch_model, keras_model, batch[0], atol=0, rtol=0.5e-3 / scale)


def test_arguments_of_the_wrong_kind_order_or_size_are_refused(models, batch):
    torch_model, keras_model = models
    x = batch[0]
    with pytest.raises(TypeError, match=r"^assert_equivalent\(torch_model, keras_model, x\): the first argument is a "
                                        r"Keras model and the second a torch module; swap them$"):
        assert_equivalent(keras_model, torch_model, x)
    with pytest.raises(TypeError, match=r"^check_equivalent\(torch_model, keras_model, x\): the first argument is a "
                                        r"Keras model and the second a torch module; swap them$"):
        check_equivalent(keras_model, torch_model, x)
    with pytest.raises(TypeError, match=r"keras_model must be a Keras model, got OneModule$"):
        check_equivalent(torch_model, copy.deepcopy(torch_model), x)
    with pytest.raises(TypeError, match=r"x must be an array or tensor of shape \(batch, time, features\), got list"):
        check_equivalent(torch_model, keras_model, x.tolist())
    for empty in (x[:0], np.zeros((4, 0, 28), np.float32)):
        with pytest.raises(ValueError, match=rf"x of shape \({empty.shape[0]}, {empty.shape[1]}, 28\) holds no "
                                             r"examples, so nothing would be compared; pass at least one sequence"):
            assert_equivalent(torch_model, keras_model, empty)
        with pytest.raises(ValueError, match=r"holds no examples"):
            check_equivalent(torch_model, keras_model, empty)
    with pytest.raises(TypeError, match=r"^assert_equivalent: atol must be a number, got str '1e-5'$"):
        assert_equivalent(torch_model, keras_model, x, atol="1e-5")
    with pytest.raises(TypeError, match=r"^assert_equivalent: rtol must be a number, got NoneType None$"):
        assert_equivalent(torch_model, keras_model, x, rtol=None)
    with pytest.raises(ValueError, match=r"^assert_equivalent: atol must be finite and at least 0, got inf: an "
                                         r"infinite tolerance passes any two models$"):
        assert_equivalent(torch_model, keras_model, x, atol=float("inf"))
    for bad in (float("nan"), -1e-5):
        with pytest.raises(ValueError, match=r"atol must be finite and at least 0"):
            assert_equivalent(torch_model, keras_model, x, atol=bad)


class ReadsLastOutput(OneModule):
    """The same layers, the head reading out[:, -1] (both directions at the last step) instead of h_n."""

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1, :])


def test_the_bidirectional_readout_is_named(models, batch):
    """Keras built for h_n, torch reading out[:, -1]: every layer agrees, the logits do not, and the message
    says which readout each side reads; a Keras model built with readout='last-output' agrees."""
    from keras_version.model import build_model
    torch_model, keras_model = models
    last_output = ReadsLastOutput()
    last_output.load_state_dict(torch_model.state_dict())
    with pytest.raises(AssertionError, match=r"^layer 3 \(torch 'head', keras 'fc'\): the output differs by up to "
                                             r"\S+ \(atol 1e-05\): the torch forward reads out\[:, -1\] \(both "
                                             r"directions at the last step\) of the last bidirectional layer, the "
                                             r"Keras model h_n \(each direction's final state\); build the Keras "
                                             r"model with readout='last-output'"):
        assert_equivalent(last_output, keras_model, batch[0])
    matching = build_model(hidden_size=6, cell="lstm", bidirectional=True, timesteps=13, readout="last-output")
    torch_to_keras(last_output, matching)
    report = assert_equivalent(last_output, matching, batch[0])
    assert report.logits <= 1e-5 and [d.keras_name for d in report.layers][-1] == "fc"
