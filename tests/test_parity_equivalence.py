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
