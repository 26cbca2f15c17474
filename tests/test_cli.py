"""The command line writes every artifact a run promises, with the same keys on both sides."""
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PNG = b"\x89PNG\r\n\x1a\n"


# The Keras side must not need torch unless torch is the backend: on JAX and TensorFlow the command
# runs with torch made unimportable (any `import torch` fails).
WITHOUT_TORCH = ("import sys, runpy; sys.modules['torch'] = None; sys.argv = sys.argv[1:]; "
                 "runpy.run_module(sys.argv[0], run_name='__main__')")


def run_cli(module, *args, backend=None):
    cmd = [sys.executable, "-m", module, "train", *args]
    if backend:
        cmd += ["--backend", backend]
    if backend in ("jax", "tensorflow"):
        cmd[1:3] = ["-c", WITHOUT_TORCH, module]  # then sys.argv = [module, "train", ...]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)


def check_artifacts(out, result, framework, backend, model_file, params):
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == 2
    assert any(line.startswith("test accuracy (micro): ") for line in lines)
    assert "Param #" in result.stdout  # the summary table
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["framework"], metrics["backend"], metrics["params"]) == (framework, backend, params)
    assert 0.1 < metrics["test_accuracy"] <= 1.0 and metrics["test_loss"] > 0
    assert len(metrics["epoch_seconds"]) == 2 and all(s > 0 for s in metrics["epoch_seconds"])
    assert set(metrics["history"]) == {"loss", "val_loss", "accuracy", "val_accuracy"}
    assert all(len(v) == 2 for v in metrics["history"].values())
    assert metrics["config"]["subset"] == 1024 and metrics["config"]["epochs"] == 2
    assert (out / model_file).stat().st_size > 1000
    for picture in ("history.png", "predictions.png"):
        assert (out / picture).read_bytes()[:8] == PNG and (out / picture).stat().st_size > 10_000
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["epochs_done"] == 2 and (out / "checkpoints" / state["file"]).exists()


def test_torch_cli_writes_every_artifact(tmp_path, small_test_set):
    result = run_cli("torch_version", "--epochs", "2", "--subset", "1024", "--batch-size", "128",
                     "--learning-rate", "0.01", "--out", str(tmp_path))
    check_artifacts(tmp_path, result, "torch", "native", "model.pt", 682)
    # The reported test metrics are those of the saved model on the test set, exactly.
    from torch_version.model import StackedRNN
    from torch_version.train import evaluate, load_model
    model = load_model(tmp_path / "model.pt", StackedRNN())
    check_test_metrics(tmp_path, evaluate(model, *small_test_set, batch_size=128))
    from torch_version.train import predict
    check_prediction_grid(tmp_path, predict(model, small_test_set[0][:25]), small_test_set[1])


@pytest.mark.backend
def test_keras_cli_writes_every_artifact(tmp_path, keras_backend, small_test_set):
    result = run_cli("keras_version", "--epochs", "2", "--subset", "1024", "--batch-size", "128",
                     "--learning-rate", "0.01", "--out", str(tmp_path), backend=keras_backend)
    check_artifacts(tmp_path, result, "keras", keras_backend, "model.keras", 658)
    from keras_version.train import evaluate, load_model
    from keras_version.train import predict
    model = load_model(tmp_path / "model.keras")
    check_test_metrics(tmp_path, evaluate(model, *small_test_set, batch_size=128))
    check_prediction_grid(tmp_path, predict(model, small_test_set[0][:25]), small_test_set[1])


@pytest.fixture(scope="module")
def small_test_set(fashion):
    """The 10 000 test images and labels, preprocessed as the runs above see them."""
    from common.config import RunConfig
    from common.data import prepare_data
    data = prepare_data(RunConfig(subset=1024, batch_size=128), arrays=fashion)
    return data.x_test, data.y_test


def check_prediction_grid(out, predicted, y_test):
    """predictions.png shows the saved model's predictions on the first 25 test images (not, say, on
    validation images): metrics.json's prediction_grid records what the picture was drawn from."""
    import hashlib

    from common.data import load_fashion_mnist
    grid = json.loads((out / "metrics.json").read_text())["prediction_grid"]
    assert len(predicted) == 25 and grid["predicted"] == [int(p) for p in predicted]
    assert grid["labels"] == [int(y) for y in y_test[:25]]
    first_images = load_fashion_mnist("files")[1][0][:25]  # (25, 28, 28) uint8, as the picture shows them
    assert grid["images_sha256"] == hashlib.sha256(first_images.tobytes()).hexdigest()


def check_test_metrics(out, evaluated):
    """metrics.json's test loss and accuracy equal a fresh evaluation of the saved model on the test set,
    bit for bit (not, say, the validation set's, which the run also computes)."""
    metrics = json.loads((out / "metrics.json").read_text())
    loss, accuracy = evaluated
    assert (metrics["test_loss"], metrics["test_accuracy"]) == (loss, accuracy)


@pytest.mark.parametrize("module, args, message", [
    ("torch_version", ["--cell", "transformer"], "unknown cell 'transformer'; choose one of: rnn, gru, lstm"),
    ("keras_version", ["--backend", "mxnet"], "unknown backend 'mxnet'; choose one of: torch, jax, tensorflow"),
    ("torch_version", ["--epochs", "0"], "argument --epochs: expected a positive integer, got '0'"),
])
def test_bad_flags_give_one_line(module, args, message):
    result = run_cli(module, *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert message in result.stderr
