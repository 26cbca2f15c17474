"""The parts of a training run that do not depend on the framework: the output folder (one
writer at a time, never another run's checkpoints lost), resuming, what a run that stops
early says it kept, and the artifacts written at the end (metrics.json, history.png,
predictions.png)."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np

from common.checkpoint import (CheckpointDir, FolderMovedError, atomic_write, check_same_architecture,
                               check_still_held, finish_interrupted_save, lock_folder, remove_temporary_files,
                               state_error, unlink_in, unlock_folder)
from common.config import RunConfig
from common.data import COUNTS
from common.errors import CheckpointError, ConfigError, NonFiniteLossError, OutputError
from common.report import empty_history, finite_or_none, label, write_metrics

GRID = 25  # the 5 x 5 prediction grid
FRAMEWORK_OF_SUFFIX = {".pt": ("PyTorch", "python -m torch_version"), ".keras": ("Keras", "python -m keras_version")}
# Settings a resumed run must share with the run it continues: they fix the batches or the optimizer.
SAME_ON_RESUME = {"seed": "the batches would differ", "batch_size": "the batches would differ",
                  "subset": "the batches would differ", "source": "the batches would differ",
                  "learning_rate": "the optimizer keeps the checkpoint's learning rate"}
# What a finished run leaves beside its checkpoints; a run started with --overwrite removes
# the earlier run's copies when it saves its first checkpoint.
RESULTS = ("metrics.json", "summary.txt", "history.png", "predictions.png", "model.pt", "model.keras")
BUSY = ("{folder} is in use by another run (process {pid}); wait for it to finish, or choose another --out")


# --- The output folder ---------------------------------------------------------------------------------

def make_out_dir(config: RunConfig) -> Path:
    """Create the output folder (or check the one to resume), check that it is writable, and return
    its real path: a run resolves ``--out`` once, here, and writes only there (``common.checkpoint``),
    so a symlink re-pointed later changes nothing for it."""
    out = Path(config.out)
    check_still_held(out)  # a folder this process locked is not made anew at its path
    if config.resume and not out.is_dir():
        raise CheckpointError(f"{out} is not a folder, so there is no run to resume; check the path given to --resume")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"the output folder {out} is a file; choose another --out")
    if out.resolve() == Path(out.resolve().anchor):
        raise ConfigError(f"the output folder {out} is the root of the file system; give the run a folder of "
                          "its own with --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise OutputError(f"cannot write to the output folder {out} ({e.strerror or type(e).__name__}); "
                          "choose another --out") from None
    return Path(os.path.realpath(out))


def lock_out_dir(out: Path) -> bool:
    """Make this process the only writer of ``out`` until :func:`unlock_out_dir` or its end.

    A second run into the same folder gets :class:`OutputError` at once, and the first
    goes on unharmed, even if ``.lock`` was deleted (the lock is on the folder itself).
    The holder finishes a checkpoint whose save was killed after its state.json was
    written, then removes what killed runs left half-written.  Re-entrant: returns True
    only for the call that took the lock.
    """
    taken = lock_folder(out, busy=BUSY)
    if taken:
        finish_interrupted_save(out / "checkpoints")
        for folder in (out, out / "checkpoints"):
            remove_temporary_files(folder)
    return taken


def unlock_out_dir(out: Path) -> None:
    unlock_folder(out)


def preflight(config: RunConfig, suffix: str) -> RunConfig:
    """Check what needs no framework (the output folder, what ``--resume`` would continue,
    whether the model fits in memory) and raise the same errors ``run.main`` would; the
    command lines call this before importing torch or keras, so such a mistake is
    reported at once.  The folder stays locked for the rest of the process.  Returns
    ``config`` with ``out`` resolved to the real folder, which the run is to be given."""
    check_fits_in_memory(config)
    config = dataclasses.replace(config, out=make_out_dir(config))
    lock_out_dir(config.out)
    resume_point(config, checkpoints(config, suffix))
    return config


def checkpoints(config: RunConfig, suffix: str) -> CheckpointDir:
    return CheckpointDir(Path(config.out) / "checkpoints", suffix, epochs=config.epochs)


@contextlib.contextmanager
def run_folder(config: RunConfig, suffix: str):
    """Create and lock ``--out`` for the block; yield ``(config, ckpt)``: ``config`` with ``out``
    resolved to the real folder (the run writes there and nowhere else) and the run's
    :class:`CheckpointDir`.

    What stops the run inside the block says which checkpoint of *this* run is kept:
    a NaN/Inf loss (``NonFiniteLossError.checkpoint``), Ctrl-C (a ``KeyboardInterrupt``
    whose message says it) and a full disk (``OutputError``).  A folder moved or deleted
    under the run took its checkpoints with it: its line says only that.
    """
    config = dataclasses.replace(config, out=make_out_dir(config))
    out = config.out
    taken = lock_out_dir(out)
    ckpt = checkpoints(config, suffix)
    try:
        yield config, ckpt
    except NonFiniteLossError as e:
        e.checkpoint = ckpt.current
        raise
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"interrupted; {kept(ckpt, config)}") from None
    except FolderMovedError:
        raise
    except OutputError as e:
        raise OutputError(f"{e}; {kept(ckpt, config)}") from None
    finally:
        if taken:
            unlock_out_dir(out)


def kept(ckpt: CheckpointDir, config: RunConfig) -> str:
    """What a run that stops now leaves to continue from."""
    if ckpt.current is None:
        return "no epoch of this run had completed, so it saved no checkpoint"
    return f"{ckpt.current} is kept (continue with --resume {config.out})"


# --- Checkpoints ------------------------------------------------------------------------------------------

def checkpoint_state(config: RunConfig, history: dict) -> dict:
    """What state.json records beside the model file."""
    return {"architecture": config.model_kwargs(), **{key: getattr(config, key) for key in SAME_ON_RESUME},
            "history": {key: finite_or_none(values) for key, values in history.items()}}


def save_checkpoint(config: RunConfig, ckpt: CheckpointDir, epochs_done: int, write_model, history: dict) -> Path:
    """Save this run's checkpoint after ``epochs_done`` epochs.

    The first one a fresh run saves replaces an earlier run's checkpoint (``--overwrite``);
    that run's results go with it, so the folder never mixes two runs.
    """
    check_still_held(config.out)  # the folder this run locked, not one made in its place
    first = ckpt.current is None
    path = ckpt.save(epochs_done, write_model, checkpoint_state(config, history))
    if first and not config.resume:
        for name in RESULTS:
            unlink_in(config.out, name)
    return path


def resume_point(config: RunConfig, ckpt: CheckpointDir):
    """``(start_epoch, history, model_path)`` to continue from, or ``(0, empty, None)``.

    A fresh run into a folder that holds a run's checkpoints is refused unless
    ``config.overwrite``; even then the earlier checkpoint stays until this run saves its
    first one (:func:`save_checkpoint`), so a fresh run killed early loses nothing.
    """
    if not config.resume:
        found = ckpt.found()
        if found is not None and not config.overwrite:
            raise CheckpointError(f"{config.out} already holds a run's checkpoints ({found}); continue that run with "
                                  f"--resume {config.out}, or start afresh with --overwrite (its checkpoint is kept "
                                  "until this run saves its first epoch), or choose another --out")
        return 0, empty_history(), None
    found = ckpt.latest()
    if found is None:
        raise CheckpointError(f"{ckpt.folder} holds no checkpoint to resume from; run without --resume first")
    state, path = found
    if path.suffix != ckpt.suffix:
        name, command = FRAMEWORK_OF_SUFFIX[path.suffix]
        raise CheckpointError(f"{path} is a {name} checkpoint; resume it with `{command} train --resume {config.out}`")
    state_file = ckpt.folder / "state.json"
    done = state["epochs_done"]
    history = check_history(state, done, state_file)
    architecture = state.get("architecture")
    if not isinstance(architecture, dict):
        raise state_error(state_file, "architecture", f"must be an object such as {config.model_kwargs()}, "
                                                      f"got {architecture!r}")
    check_same_architecture(architecture, config.model_kwargs(), path)
    for key, why in SAME_ON_RESUME.items():
        if key not in state:
            raise state_error(state_file, key, "is missing")
        if state[key] != getattr(config, key):
            raise CheckpointError(f"{path} was trained with {key}={state[key]!r}, but this run asks for "
                                  f"{key}={getattr(config, key)!r}; {why}")
    if done > config.epochs:
        raise ConfigError(f"{config.out} already holds {done} completed epochs, more than the {config.epochs} "
                          f"asked for; pass --epochs {done} or more")
    ckpt.current = path
    return done, history, path


def check_history(state: dict, done: int, state_file: Path) -> dict:
    """state.json's history: one number per completed epoch under each key (null: a NaN or an infinity)."""
    history = state.get("history")
    keys = tuple(empty_history())
    if not isinstance(history, dict) or set(history) != set(keys):
        raise state_error(state_file, "history", f"must be an object with the lists {', '.join(keys)}, "
                                                 f"got {str(history)[:80]!r}")
    for key in keys:
        values = history[key]
        if not isinstance(values, list) or not all(v is None or isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   for v in values):
            raise state_error(state_file, "history", f"list '{key}' must hold numbers, got {str(values)[:80]!r}")
        if len(values) != done:
            entries = f"{len(values)} {'entry' if len(values) == 1 else 'entries'}"
            raise state_error(state_file, "history", f"list '{key}' has {entries}, but field 'epochs_done' is {done}")
    return {key: [float("nan") if v is None else float(v) for v in history[key]] for key in keys}


# --- Resources -------------------------------------------------------------------------------------------

GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def training_bytes(config: RunConfig, input_size: int = 28, time_steps: int = 28, classes: int = 10) -> tuple[int, int]:
    """``(parameters, bytes)``: a lower bound of the memory one training step needs.

    float32 parameters with their gradients and Adam's two moments (16 bytes each), plus
    every recurrent layer's output over the batch, kept for the backward pass.  The batch
    is at most the training examples (``--batch-size`` beyond them makes one batch of all).
    """
    directions = 2 if config.bidirectional else 1
    gates, h = GATES[config.cell], config.hidden_size
    params, inputs = 0, input_size
    for _ in range(config.num_layers):
        params += directions * gates * h * (inputs + h + 2)  # weights and torch's two biases
        inputs = directions * h
    params += inputs * classes + classes
    outputs = real_batch(config) * time_steps * h * directions * config.num_layers
    return params, 16 * params + 4 * outputs


def real_batch(config: RunConfig) -> int:
    """The largest batch a run trains on: ``--batch-size``, or all its training examples if fewer."""
    examples = min(config.subset or COUNTS["train"], COUNTS["train"])
    return min(config.batch_size, examples - int(round(examples * config.val_fraction)))


def memory_bytes() -> int | None:
    """This machine's memory, or the container's limit if that is lower; None if unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            limit = int(Path(limit_file).read_text().strip())
        except (OSError, ValueError):
            continue
        total = min(total, limit)
    return total


def check_fits_in_memory(config: RunConfig) -> None:
    """Refuse, before anything is allocated, a model and batch that cannot train in this machine's memory."""
    params, needed = training_bytes(config)
    available = memory_bytes()
    if available is not None and needed > available:
        raise ConfigError(f"this model and batch need at least {needed / 2**30:,.1f} GiB to train ({params:,} "
                          f"parameters with their gradients and Adam's state, and the outputs of "
                          f"{config.num_layers} layers of {config.hidden_size} units over a batch of "
                          f"{real_batch(config)}), more than the {available / 2**30:,.1f} GiB of this machine; "
                          "choose a smaller --hidden-size, --num-layers or --batch-size")


# --- The end of a run ---------------------------------------------------------------------------------------

def grid_record(images: np.ndarray, labels: np.ndarray, predictions: np.ndarray) -> dict:
    """What predictions.png shows, for metrics.json: the labels and predicted classes, in reading order,
    and the SHA-256 of the images (uint8, (25, 28, 28)), so a reader can check which images they were."""
    import hashlib
    return {"images_sha256": hashlib.sha256(np.ascontiguousarray(images, np.uint8).tobytes()).hexdigest(),
            "labels": [int(v) for v in labels], "predicted": [int(v) for v in predictions]}


def finish_run(config: RunConfig, *, framework: str, backend: str, params: int, test_loss: float,
               test_accuracy: float, history: dict, images: np.ndarray, labels: np.ndarray,
               predictions: np.ndarray, model_file: str, summary: str) -> dict:
    """Write metrics.json, history.png, predictions.png and summary.txt (each atomically); print the result."""
    from common.plots import plot_history, plot_predictions  # matplotlib: only when there is something to plot
    out = Path(config.out)
    check_still_held(out)
    name = label(framework, backend)
    atomic_write(out / "summary.txt", lambda tmp: tmp.write_text(summary + "\n"))
    if history["loss"]:
        title = f"{name}: {config.cell} x {config.num_layers}, {config.hidden_size} units"
        atomic_write(out / "history.png", lambda tmp: plot_history(history, tmp, title))
    grid = (images[:GRID], labels[:GRID], predictions[:GRID])
    atomic_write(out / "predictions.png", lambda tmp: plot_predictions(*grid, tmp, name))
    metrics = write_metrics(out, framework=framework, backend=backend, config=config, params=params,
                            test_loss=test_loss, test_accuracy=test_accuracy, history=history,
                            model_file=model_file, prediction_grid=grid_record(*grid))
    print(f"test accuracy ({metrics['accuracy_kind']}): {100 * test_accuracy:.2f} %  test loss: {test_loss:.4f}  "
          f"-> {out}")
    return metrics
