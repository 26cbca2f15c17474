"""The converter's self-check (``parity.check``): the allowance, the measured float64 gap, the example checks."""
import numpy as np
import pytest
import torch
from torch import nn

from common.errors import ConversionError
from parity.check import (ATOL, MAX_GAP64, ROUNDING_FACTOR, RTOL, allowance, check_example, check_timesteps,
                          describe_allowance, float64_gap, max_abs_diff, within)


class LastStep(nn.Module):
    def __init__(self, hidden=64, scale=1.0):
        super().__init__()
        torch.manual_seed(0)
        self.rnn = nn.LSTM(28, hidden, num_layers=2, batch_first=True)
        self.fc = nn.Linear(hidden, 10)
        with torch.no_grad():
            for p in self.rnn.parameters():
                p.mul_(scale)

    def forward(self, x):
        out, _ = self.rnn(x)  # (batch, time, hidden)
        return self.fc(out[:, -1])


def _x(n=64):
    return np.random.default_rng(0).uniform(0, 1, (n, 28, 28)).astype(np.float32)


def test_the_allowance_scales_with_the_logits_and_the_measured_gap():
    ref = np.array([[9.0, -3.0], [1.0, 0.5]])
    assert allowance(ref) == pytest.approx(ATOL + RTOL * 9.0)
    assert allowance(ref, gap64=2e-5) == pytest.approx(ATOL + RTOL * 9.0 + ROUNDING_FACTOR * 2e-5)
    assert within(5.2e-5, ref) and not within(1.01e-4, ref)  # yunjey's trained LSTM: 5.2e-5 on logits near 9
    assert not within(float("nan"), ref) and not within(float("inf"), ref)
    assert describe_allowance(ref, gap64=2e-5).endswith("(torch's own float32 rounding, measured against float64) "
                                                        f"= {ATOL + RTOL * 9 + 4 * 2e-5:.2e}")
    assert "measured" not in describe_allowance(ref)


def test_a_large_weight_lstm_rounds_beyond_the_fixed_allowance_and_within_the_measured_one():
    """Scaled weights amplify float32 rounding: the model's own float32 logits leave the fixed allowance."""
    model = LastStep(hidden=128, scale=10.0).eval()
    x = _x(32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    gap = float64_gap(model, x, ref)
    assert allowance(ref) < gap < MAX_GAP64 * max(1.0, np.abs(ref).max())  # measured here: 4.3e-5 vs 1.6e-5
    # the model's float32 logits are `gap` from its float64 ones: another correct float32 run may differ by as much
    assert allowance(ref, gap64=gap) >= allowance(ref) + 4 * gap
    # a wrong model (one recurrent weight moved by 1 %) stays outside even the measured allowance
    wrong = LastStep(hidden=128, scale=10.0).eval()
    with torch.no_grad():
        wrong.rnn.weight_hh_l1[0, 0] *= 1.01
        wrong.fc.bias[0] += 0.01
        diff = max_abs_diff(wrong(torch.from_numpy(x)).numpy(), ref)
    assert not within(diff, ref, gap64=gap), (diff, allowance(ref, gap64=gap))


def test_a_model_that_amplifies_rounding_beyond_any_check_is_refused():
    model = LastStep(scale=20.0).eval()  # float32 vs float64: 2e-2 on logits below 1
    x = _x(32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    with pytest.raises(ConversionError, match=r"^the torch model's own float32 logits differ from its float64 "
                                              r"logits by [\d.e+-]+ on example_x: .*no check can tell"):
        float64_gap(model, x, ref)


def test_a_forward_that_cannot_run_in_float64_falls_back_to_the_fixed_allowance():
    class OwnZeros(LastStep):
        def forward(self, x):
            h0 = torch.zeros(2, x.shape[0], 64)  # float32 whatever the weights: the float64 run fails
            out, _ = self.rnn(x, (h0, h0))
            return self.fc(out[:, -1])
    model = OwnZeros().eval()
    x = _x(8)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert float64_gap(model, x, ref) == 0.0


def test_examples_that_cannot_tell_models_apart_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ConversionError, match="one time step: h_n, out"):
        check_example(rng.uniform(size=(4, 1, 3)))
    with pytest.raises(ConversionError, match="repeats one sequence"):
        check_example(np.ones((3, 5, 2)))
    with pytest.raises(ConversionError, match="holds one sequence"):
        check_example(rng.uniform(size=(1, 5, 2)))
    check_example(rng.uniform(size=(3, 5, 2)))
    check_example(rng.uniform(size=(3, 1, 2)), recurrent=False)


@pytest.mark.parametrize("timesteps, steps, ok", [(None, 28, True), (28, 28, True), (28, 27, False), (0, 28, False),
                                                  (-5, 28, False), (True, 1, False), ("28", 28, False)])
def test_timesteps_is_a_positive_int_equal_to_the_examples_length(timesteps, steps, ok):
    if ok:
        assert check_timesteps(timesteps, steps) == timesteps
    else:
        with pytest.raises(ConversionError, match=r"^timesteps"):
            check_timesteps(timesteps, steps)
