"""Short real training runs: both frameworks consume the same batches, lower the loss and beat chance."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from common.data import Batches
from tests.conftest import ROOT


class RecordingBatches(Batches):
    """Batches that remember a fingerprint of every (epoch, step) they serve."""

    def __init__(self, source: Batches):
        super().__init__(source.x, source.y, source.batch_size, source.seed)
        self.served = {}

    def batch(self, epoch, step, order=None):
        x, y = super().batch(epoch, step, order)
        self.served.setdefault((epoch, step), (float(x.sum()), y.tobytes()))
        return x, y


def train_torch(data, epochs, lr=1e-2):
    import torch
    from torch_version.model import StackedRNN
    from torch_version.train import train
    torch.manual_seed(0)
    model = StackedRNN()
    return train(model, data.train, epochs, torch.nn.CrossEntropyLoss(),
                 torch.optim.Adam(model.parameters(), lr=lr), (data.x_val, data.y_val), verbose=False)


def train_keras(data, epochs, lr=1e-2):
    import keras
    from keras_version.model import build_model
    from keras_version.train import compile_model, train
    keras.utils.set_random_seed(0)
    model = compile_model(build_model(), lr)
    return train(model, data.train, epochs, (data.x_val, data.y_val), verbose=False)


def check_learned(history, epochs):
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    assert all(len(v) == epochs for v in history.values())
    assert history["loss"][-1] < 0.9 * history["loss"][0]
    assert history["val_accuracy"][-1] > 0.2  # twice chance, after only 32 steps
    assert all(0.0 <= a <= 1.0 for a in history["accuracy"] + history["val_accuracy"])


def test_torch_training_learns(small_data):
    check_learned(train_torch(small_data, epochs=4), 4)


@pytest.mark.backend
def test_keras_training_learns(small_data):
    check_learned(train_keras(small_data, epochs=4), 4)


@pytest.mark.backend
def test_both_frameworks_see_the_same_batches_in_the_same_order(small_data):
    import dataclasses
    epochs = 2
    seen = {}
    for name, fn in (("torch", train_torch), ("keras", train_keras)):
        recorder = RecordingBatches(small_data.train)
        fn(dataclasses.replace(small_data, train=recorder), epochs)
        seen[name] = recorder.served
    # tf.data may prefetch the first batches of the epoch after the last one; they are never trained on
    seen["keras"] = {k: v for k, v in seen["keras"].items() if k[0] < epochs}
    expected_keys = {(e, s) for e in range(epochs) for s in range(len(small_data.train))}
    assert set(seen["torch"]) == set(seen["keras"]) == expected_keys
    assert seen["torch"] == seen["keras"]


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_keras_on_jax_or_tensorflow_runs_without_torch(backend, tmp_path):
    """The Keras side must not need torch unless torch is the backend."""
    code = ("import sys, runpy; sys.modules['torch'] = None; "  # any `import torch` now fails
            "sys.argv = ['keras_version', 'train', '--backend', sys.argv[1], '--epochs', '1', '--subset', '512', "
            "'--batch-size', '256', '--out', sys.argv[2]]; runpy.run_module('keras_version', run_name='__main__')")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run([sys.executable, "-c", code, backend, str(tmp_path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "metrics.json").read_text())["backend"] == backend
