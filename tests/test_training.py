"""Short real training runs: both frameworks consume the same batches, lower the loss and beat chance."""

import numpy as np
import pytest

from common.data import Batches


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


# --- Accuracy is micro on both sides, and evaluate means the same in both frameworks ----------------------------

# A hand-made, imbalanced batch: 6 examples of class 0, all predicted right; 2 of class 1 and 1 of class 2,
# all predicted wrong.  Micro accuracy (correct / total) is 6/9; macro (the mean of per-class recalls,
# torchmetrics' default) would be 1/3.
IMBALANCED_TARGETS = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2])
IMBALANCED_PREDICTIONS = np.array([0, 0, 0, 0, 0, 0, 3, 4, 5])


def imbalanced_batch():
    """``(x, y)`` in the model's input shape: the logits of the linear readout below are ``x[:, 0, :10]``."""
    x = np.zeros((len(IMBALANCED_TARGETS), 28, 28), np.float32)
    x[np.arange(len(x)), 0, IMBALANCED_PREDICTIONS] = 5.0  # (batch, time, features)
    return x, IMBALANCED_TARGETS.astype(np.int64)


def readout_weights() -> np.ndarray:
    """(784, 10): logit k is input feature k of the first time step."""
    return np.eye(784, 10, dtype=np.float32)


def test_torch_accuracy_and_evaluate_are_micro_on_an_imbalanced_batch():
    import torch
    from torch_version.train import accuracy, evaluate
    x, y = imbalanced_batch()
    logits = torch.from_numpy(x[:, 0, :10])
    assert accuracy(logits, torch.from_numpy(y)).item() == pytest.approx(6 / 9)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.from_numpy(readout_weights().T))
    for batch_size in (9, 4, 1):  # weighted by batch length, whatever the batching
        loss, acc = evaluate(model, x, y, batch_size=batch_size)
        assert acc == pytest.approx(6 / 9)
        expected_loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y)).item()
        assert loss == pytest.approx(expected_loss, rel=1e-6)


@pytest.mark.backend
def test_keras_evaluate_is_micro_on_an_imbalanced_batch():
    import keras
    from keras_version.train import compile_model, evaluate
    x, y = imbalanced_batch()
    inputs = keras.Input((28, 28))
    model = keras.Model(inputs, keras.layers.Dense(10, use_bias=False)(keras.layers.Flatten()(inputs)))
    model.layers[-1].set_weights([readout_weights()])
    compile_model(model)
    for batch_size in (9, 4, 1):
        assert evaluate(model, x, y, batch_size=batch_size)[1] == pytest.approx(6 / 9)


@pytest.mark.backend
def test_torch_and_keras_evaluate_agree_on_converted_weights(fashion, small_data):
    """A trained PyTorch model, its weights copied into Keras: test loss and accuracy over the 10 000 real
    test images agree to float32 round-off (loss within 1e-5, at most one prediction flipped)."""
    import torch
    from keras_version.model import build_model as build_keras
    from keras_version.train import compile_model, evaluate as keras_evaluate
    from parity import torch_to_keras
    from torch_version.model import StackedRNN
    from torch_version.train import evaluate as torch_evaluate, train
    torch.manual_seed(0)
    model = StackedRNN()
    train(model, small_data.train, 2, torch.nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=1e-2),
          (small_data.x_val, small_data.y_val), verbose=False)
    keras_model = compile_model(build_keras())
    torch_to_keras(model, keras_model)
    x, y = small_data.x_test, small_data.y_test
    torch_loss, torch_acc = torch_evaluate(model, x, y, batch_size=2048)
    keras_loss, keras_acc = keras_evaluate(keras_model, x, y, batch_size=2048)
    print(f"\ntorch: loss {torch_loss:.7f}, accuracy {torch_acc:.4f}; "
          f"keras: loss {keras_loss:.7f}, accuracy {keras_acc:.4f}")
    assert 0.2 < torch_acc < 0.9  # trained, not at chance: a meaningful comparison
    assert abs(torch_loss - keras_loss) < 1e-5
    assert abs(torch_acc - keras_acc) <= 1 / len(y)
