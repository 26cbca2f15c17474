"""Training in lockstep: torch and Keras take the same steps on the same real batches and stay equal.

Starting from transferred weights, with torch's ``bias_hh`` folded into ``bias_ih``
and frozen, and with an Adam whose epsilon means the same on both sides
(``parity.lockstep``), five SGD or Adam steps leave the parameters within 1e-6:
the aligned drift below is at most 2.7e-7, and a misaligned epsilon alone drifts
far beyond it.  Without those alignments the models drift apart measurably; the
drift is recorded below.

Measured drift (max |parameter difference| in Keras's layout, torch's bias pair
compared through its sum) on 64-example batches of real Fashion-MNIST, notebook
model (3 x RNN(8); GRU/LSTM: 1 layer), 2-core CPU shared with other jobs; the
same on the torch, jax and tensorflow backends unless noted:

    aligned, SGD lr 0.1                         3.0e-08 at every step
    aligned, Adam, torch eps (TorchAdam)        8.9e-08 after 5 steps; GRU 1.2e-07;
                                                LSTM 1.2e-07 (torch), 2.7e-07 (jax), 1.6e-07 (tensorflow)
    aligned, Adam, Keras eps (torch side hook)  1.2e-07
    biases aligned, default epsilons            7.4e-05 after step 1, 7.5e-05 after 5: ~800 times
      (torch 1e-8, Keras 1e-7)                  the aligned drift
    unaligned biases, SGD lr 0.1                3.9e-03 after step 1, 1.65e-02 after 5
    unaligned biases + default epsilons, Adam   1.0e-03 per step (= lr: torch's bias sum takes two
                                                Adam steps per step), 4.94e-03 after 5
"""
from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
import torch

from keras_version.model import build_model as build_keras
from parity import torch_to_keras
from parity.lockstep import (TorchAdam, align_torch_for_lockstep, keras_adam_like_torch, run_lockstep,
                             torch_adam_like_keras)
from torch_version.model import build_model as build_torch

# What aligned training achieves (2.7e-7 at worst, LSTM on JAX), with room for float32 round-off
# on other CPUs: a TorchAdam whose epsilon is off by a factor of 10 drifts 2.4e-6, and fails.
STEPS, BATCH, TOLERANCE = 5, 64, 1e-6
backend = pytest.mark.backend


@pytest.fixture(scope="module")
def batches(small_data):
    """The first STEPS training batches of epoch 0, cut to BATCH real examples each."""
    return [tuple(a[:BATCH] for a in small_data.train.batch(0, step)) for step in range(STEPS)]


@pytest.fixture(scope="module")
def lockstep(batches):
    """run(cell, optimizer, aligned_biases) -> per-step history; each distinct run happens once per module.

    optimizer: "sgd" (lr 0.1 both sides); "adam-torch" (stock torch Adam, Keras TorchAdam,
    eps 1e-8); "adam-keras" (torch Adam with the step-dependent eps, stock Keras Adam,
    epsilon 1e-7); "adam-default" (both stock, default epsilons: the unaligned case).
    """
    @functools.cache
    def run(cell: str, optimizer: str, aligned_biases: bool) -> tuple[dict, ...]:
        # The notebook model; GRU and LSTM with one layer, to keep the run short.
        kwargs = dict(cell=cell, num_layers=3 if cell == "rnn" else 1)
        torch.manual_seed(0)
        t = build_torch(**kwargs)
        if aligned_biases:
            align_torch_for_lockstep(t)
        k = build_keras(**kwargs)
        torch_to_keras(t, k)
        params = [p for p in t.parameters() if p.requires_grad]
        t_opt, k_opt = {
            "sgd": lambda: (torch.optim.SGD(params, lr=0.1), keras.optimizers.SGD(0.1)),
            "adam-torch": lambda: (torch.optim.Adam(params, lr=1e-3), keras_adam_like_torch(1e-3)),
            "adam-keras": lambda: (torch_adam_like_keras(params, lr=1e-3), keras.optimizers.Adam(1e-3)),
            "adam-default": lambda: (torch.optim.Adam(params, lr=1e-3), keras.optimizers.Adam(1e-3)),
        }[optimizer]()
        history = tuple(run_lockstep(t, t_opt, k, k_opt, batches))
        print(f"{keras.backend.backend()} {cell} {optimizer} aligned_biases={aligned_biases}: drift per step "
              + " ".join(f"{h['drift']:.2e}" for h in history))
        return history

    return run


def assert_lockstep(history, tolerance=TOLERANCE):
    assert len(history) == STEPS
    for h in history:
        assert h["drift"] < tolerance, h
        assert abs(h["torch_loss"] - h["keras_loss"]) < 1e-5, h
    assert history[-1]["torch_loss"] != history[0]["torch_loss"]  # the models did train


@backend
def test_sgd_in_lockstep(lockstep):
    assert_lockstep(lockstep("rnn", "sgd", True))


@backend
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_adam_in_lockstep_with_torch_epsilon(lockstep, cell):
    assert_lockstep(lockstep(cell, "adam-torch", True))


@backend
def test_adam_in_lockstep_with_keras_epsilon(lockstep):
    assert_lockstep(lockstep("rnn", "adam-keras", True))


@backend
def test_drift_without_alignment(lockstep):
    aligned = max(lockstep("rnn", "sgd", True)[-1]["drift"], lockstep("rnn", "adam-torch", True)[-1]["drift"])
    sgd_biases = lockstep("rnn", "sgd", False)
    adam_eps = lockstep("rnn", "adam-default", True)
    adam_both = lockstep("rnn", "adam-default", False)
    measured = {"aligned (max of SGD, Adam)": aligned, "SGD, unaligned biases": sgd_biases[-1]["drift"],
                "Adam, default epsilons": adam_eps[-1]["drift"],
                "Adam, unaligned biases + default epsilons": adam_both[-1]["drift"]}
    print("\n".join(f"{name:45s} {value:.2e}" for name, value in measured.items()))

    assert aligned < 1e-6
    # Each misalignment on its own is at least 100 times the aligned drift.
    assert sgd_biases[-1]["drift"] > 100 * aligned
    assert adam_eps[-1]["drift"] > 100 * aligned
    assert adam_both[-1]["drift"] > 100 * aligned
    # Separately trained biases leave the tolerance: SGD moves torch's bias sum by -2 lr g
    # where Keras moves its bias by -lr g; Adam takes two full steps (about lr each) instead of one.
    assert sgd_biases[-1]["drift"] > 1000 * TOLERANCE
    assert adam_both[-1]["drift"] > 0.8 * STEPS * 1e-3
    assert sgd_biases[-1]["drift"] > sgd_biases[0]["drift"]  # and it grows step by step


def test_alignment_folds_and_freezes_biases_without_changing_the_function():
    torch.manual_seed(1)
    x = torch.randn(3, 13, 28)
    for cell in ("rnn", "gru", "lstm"):
        model = build_torch(cell=cell, num_layers=2, bidirectional=True)
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        with torch.no_grad():
            expected = model(x)
        frozen = align_torch_for_lockstep(model)
        if cell == "gru":  # GRU's b_hn is multiplied by the reset gate: it cannot be folded, nor need it be
            assert frozen == []
            continue
        assert frozen == [f"rnns.{i}.bias_hh_l0{s}" for i in range(2) for s in ("", "_reverse")]
        params = dict(model.named_parameters())
        for name in frozen:
            assert not params[name].requires_grad and not params[name].any()
            ih = name.replace("bias_hh", "bias_ih")
            assert torch.equal(params[ih], before[ih] + before[name])
        with torch.no_grad():
            torch.testing.assert_close(model(x), expected, atol=1e-6, rtol=0)


@backend
def test_adam_epsilon_equivalences_on_one_tensor():
    """The two exact equivalences hold on gradients from 1e-9 to 1; the stock defaults do not.

    Tiny gradients are where epsilon matters: with |g| = 1e-9 torch's first step is
    lr * 1e-9 / (1e-9 + 1e-8) ~ 0.09 lr, Keras's lr * 1e-9 / (1e-9 + 1e-7 / sqrt(0.001)) ~ 3e-4 lr.
    """
    rng = np.random.default_rng(0)
    grads = [(rng.normal(size=64) * 10.0 ** rng.uniform(-9, 0, size=64)).astype(np.float32) for _ in range(20)]

    def torch_run(make):
        p = torch.zeros(64, requires_grad=True)
        opt = make([p])
        for g in grads:
            p.grad = torch.from_numpy(g)
            opt.step()
        return p.detach().numpy()

    def keras_run(opt):
        v = keras.Variable(np.zeros(64, np.float32))
        for g in grads:
            opt.apply_gradients([(keras.ops.convert_to_tensor(g), v)])
        return keras.ops.convert_to_numpy(v)

    torch_default = torch_run(lambda ps: torch.optim.Adam(ps, lr=1e-3))  # eps 1e-8
    keras_default = keras_run(keras.optimizers.Adam(1e-3))               # epsilon 1e-7
    like_torch = keras_run(keras_adam_like_torch(1e-3))
    like_keras = torch_run(lambda ps: torch_adam_like_keras(ps, lr=1e-3))
    assert isinstance(keras_adam_like_torch(), TorchAdam)
    np.testing.assert_allclose(like_torch, torch_default, atol=1e-8, rtol=1e-5)
    np.testing.assert_allclose(like_keras, keras_default, atol=1e-8, rtol=1e-5)
    assert np.abs(torch_default - keras_default).max() > 1e-4
    assert np.abs(torch_default).max() > 5e-3  # 20 steps of up to lr each
