"""The same seed gives the same numbers, bit for bit, on CPU: PyTorch, and Keras on each backend.

Measured on CPU (docs/determinism.md): every history value, every weight and every
test loss is *equal* (``==``, not close) between two runs with the same seed, in one
process and across processes, for PyTorch and for Keras on the torch, JAX and
TensorFlow backends, with no switch beyond ``keras.utils.set_random_seed`` /
``torch.manual_seed``.  TensorFlow's ``enable_op_determinism`` is not needed for that
on CPU (and is left off: it disables XLA in ``fit`` and changes the numbers).
Across processes the equality is checked by tests/test_checkpoints.py, whose
command-line runs must reproduce an in-process reference exactly.

Each test also builds the model with another seed and requires other initial weights,
so that it could not pass by comparing a run with itself.
"""
from __future__ import annotations

import numpy as np
import pytest

from common.config import RunConfig
from common.data import prepare_data

HISTORY = ("loss", "accuracy", "val_loss", "val_accuracy")


def torch_init(seed: int) -> dict:
    import torch
    from torch_version.model import StackedRNN
    torch.manual_seed(seed)
    return {k: v.numpy().copy() for k, v in StackedRNN().state_dict().items()}


def keras_init(seed: int) -> dict:
    import keras
    from keras_version.model import build_model
    keras.utils.set_random_seed(seed)
    return {w.path: np.array(w) for w in build_model().weights}


def torch_run(data, seed: int):
    import torch
    from torch_version.model import StackedRNN
    from torch_version.train import evaluate, train
    torch.manual_seed(seed)
    model = StackedRNN()
    history = train(model, data.train, 2, torch.nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), 1e-2),
                    (data.x_val, data.y_val), verbose=False)
    weights = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    return history, weights, evaluate(model, data.x_test[:2000], data.y_test[:2000])


def keras_run(data, seed: int):
    import keras
    from keras_version.model import build_model
    from keras_version.train import compile_model, evaluate, train
    keras.utils.set_random_seed(seed)
    model = compile_model(build_model(), 1e-2)
    history = train(model, data.train, 2, (data.x_val, data.y_val), verbose=False)
    weights = {w.path: np.array(w) for w in model.weights}
    return history, weights, evaluate(model, data.x_test[:2000], data.y_test[:2000], batch_size=2000)


def check_equal_runs(run, init, data):
    first, second = run(data, 0), run(data, 0)
    history, weights, test = first
    for key in HISTORY:
        assert history[key] == second[0][key], key  # exact
    assert weights.keys() == second[1].keys()
    for key in weights:
        assert np.array_equal(weights[key], second[1][key]), key
    assert test == second[2]
    a, b = init(0), init(1)  # the seed matters: another seed, other initial weights
    assert a.keys() == b.keys() and all(not np.array_equal(a[k], b[k]) for k in a if "bias" not in k)


def test_torch_same_seed_same_numbers(small_data):
    check_equal_runs(torch_run, torch_init, small_data)


@pytest.mark.backend
def test_keras_same_seed_same_numbers(fashion, keras_backend):
    data = prepare_data(RunConfig(subset=4096, batch_size=2048), arrays=fashion)
    check_equal_runs(keras_run, keras_init, data)
    if keras_backend == "tensorflow":  # and that without TensorFlow's determinism switch
        from tensorflow.python.framework.config import is_op_determinism_enabled
        assert not is_op_determinism_enabled()
