"""The parts of a training run that do not depend on the framework: output folder,
resuming, and the artifacts written at the end (metrics.json, history.png, predictions.png)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.checkpoint import CheckpointDir, check_same_architecture
from common.config import RunConfig
from common.errors import CheckpointError
from common.plots import plot_history, plot_predictions
from common.report import empty_history, label, write_metrics

GRID = 25  # the 5 x 5 prediction grid


def checkpoints(config: RunConfig, suffix: str) -> CheckpointDir:
    return CheckpointDir(Path(config.out) / "checkpoints", suffix)


def checkpoint_state(config: RunConfig, history: dict) -> dict:
    """What state.json records beside the model file."""
    return {"architecture": config.model_kwargs(), "seed": config.seed, "batch_size": config.batch_size,
            "subset": config.subset, "history": history}


def resume_point(config: RunConfig, ckpt: CheckpointDir):
    """``(start_epoch, history, model_path)`` to continue from, or ``(0, empty, None)``."""
    if not config.resume:
        return 0, empty_history(), None
    found = ckpt.latest()
    if found is None:
        raise CheckpointError(f"{ckpt.folder} holds no checkpoint to resume from; run without --resume first")
    state, path = found
    check_same_architecture(state.get("architecture", {}), config.model_kwargs(), path)
    for key in ("seed", "batch_size", "subset"):
        if state.get(key) != getattr(config, key):
            raise CheckpointError(f"{path} was trained with {key}={state.get(key)!r}, but this run asks for "
                                  f"{key}={getattr(config, key)!r}; the batches would differ")
    return int(state["epochs_done"]), state["history"], path


def finish_run(config: RunConfig, *, framework: str, backend: str, params: int, test_loss: float,
               test_accuracy: float, history: dict, images: np.ndarray, labels: np.ndarray,
               predictions: np.ndarray, model_file: str, summary: str) -> dict:
    """Write metrics.json, history.png, predictions.png and summary.txt; print the result."""
    out = Path(config.out)
    name = label(framework, backend)
    (out / "summary.txt").write_text(summary + "\n")
    if history["loss"]:
        plot_history(history, out / "history.png", f"{name}: {config.cell} x {config.num_layers}, "
                                                   f"{config.hidden_size} units")
    plot_predictions(images[:GRID], labels[:GRID], predictions[:GRID], out / "predictions.png", name)
    metrics = write_metrics(out, framework=framework, backend=backend, config=config, params=params,
                            test_loss=test_loss, test_accuracy=test_accuracy, history=history,
                            model_file=model_file)
    print(f"test accuracy ({metrics['accuracy_kind']}): {100 * test_accuracy:.2f} %  test loss: {test_loss:.4f}  "
          f"-> {out}")
    return metrics
