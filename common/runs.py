"""The parts of a training run that do not depend on the framework: output folder,
resuming, and the artifacts written at the end (metrics.json, history.png, predictions.png)."""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import numpy as np

from common.checkpoint import CheckpointDir, check_same_architecture
from common.config import RunConfig
from common.errors import CheckpointError, ConfigError, NonFiniteLossError
from common.report import empty_history, label, write_metrics

GRID = 25  # the 5 x 5 prediction grid
FRAMEWORK_OF_SUFFIX = {".pt": ("PyTorch", "python -m torch_version"), ".keras": ("Keras", "python -m keras_version")}
# Settings a resumed run must share with the run it continues: they fix the batches or the optimizer.
SAME_ON_RESUME = {"seed": "the batches would differ", "batch_size": "the batches would differ",
                  "subset": "the batches would differ", "source": "the batches would differ",
                  "learning_rate": "the optimizer keeps the checkpoint's learning rate"}


def make_out_dir(config: RunConfig) -> Path:
    """Create the output folder (or check the one to resume) and check that it is writable."""
    out = Path(config.out)
    if config.resume and not out.is_dir():
        raise CheckpointError(f"{out} is not a folder, so there is no run to resume; check the path given to --resume")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"the output folder {out} is a file; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise ConfigError(f"cannot write to the output folder {out} ({e.strerror or type(e).__name__}); "
                          "choose another --out") from None
    return out


def preflight(config: RunConfig, suffix: str) -> None:
    """Check what needs no framework (the output folder, what ``--resume`` would continue)
    and raise the same errors ``run.main`` would; the command lines call this before
    importing torch or keras, so such a mistake is reported at once."""
    make_out_dir(config)
    resume_point(config, checkpoints(config, suffix))


def checkpoints(config: RunConfig, suffix: str) -> CheckpointDir:
    return CheckpointDir(Path(config.out) / "checkpoints", suffix)


@contextlib.contextmanager
def last_checkpoint_on_nan(ckpt: CheckpointDir):
    """Let a NaN/Inf loss raised inside the block name the last good checkpoint."""
    try:
        yield
    except NonFiniteLossError as e:
        latest = ckpt.latest()
        e.checkpoint = latest[1] if latest else None
        raise


def checkpoint_state(config: RunConfig, history: dict) -> dict:
    """What state.json records beside the model file."""
    return {"architecture": config.model_kwargs(), **{key: getattr(config, key) for key in SAME_ON_RESUME},
            "history": history}


def resume_point(config: RunConfig, ckpt: CheckpointDir):
    """``(start_epoch, history, model_path)`` to continue from, or ``(0, empty, None)``.

    A run that starts afresh first deletes the checkpoints an earlier run left in its
    folder: they would otherwise pass for its own until its first epoch ends.
    """
    if not config.resume:
        ckpt.clear()
        return 0, empty_history(), None
    found = ckpt.latest()
    if found is None:
        raise CheckpointError(f"{ckpt.folder} holds no checkpoint to resume from; run without --resume first")
    state, path = found
    if path.suffix != ckpt.suffix and path.suffix in FRAMEWORK_OF_SUFFIX:
        name, command = FRAMEWORK_OF_SUFFIX[path.suffix]
        raise CheckpointError(f"{path} is a {name} checkpoint; resume it with `{command} train --resume {config.out}`")
    check_same_architecture(state.get("architecture", {}), config.model_kwargs(), path)
    for key, why in SAME_ON_RESUME.items():
        if key in state and state[key] != getattr(config, key):
            raise CheckpointError(f"{path} was trained with {key}={state[key]!r}, but this run asks for "
                                  f"{key}={getattr(config, key)!r}; {why}")
    done = int(state["epochs_done"])
    if done > config.epochs:
        raise ConfigError(f"{config.out} already holds {done} completed epochs, more than the {config.epochs} "
                          f"asked for; pass --epochs {done} or more")
    return done, state["history"], path


def finish_run(config: RunConfig, *, framework: str, backend: str, params: int, test_loss: float,
               test_accuracy: float, history: dict, images: np.ndarray, labels: np.ndarray,
               predictions: np.ndarray, model_file: str, summary: str) -> dict:
    """Write metrics.json, history.png, predictions.png and summary.txt; print the result."""
    from common.plots import plot_history, plot_predictions  # matplotlib: only when there is something to plot
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
