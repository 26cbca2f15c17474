"""Checkpoint bookkeeping shared by both versions: atomic writes and the run's state file.

A run folder holds ``checkpoints/epoch-NNNN.{pt,keras}`` and ``checkpoints/state.json``.
Each file is written to a temporary name and renamed into place, so a run killed at
any moment leaves the previous checkpoint and a state file that points at it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from common.errors import CheckpointError

STATE = "state.json"


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` then rename ``tmp`` to ``path``; a crash leaves ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")  # keeps the suffix Keras checks
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_json(path: Path, obj) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2) + "\n"))


class CheckpointDir:
    """The checkpoints of one run: save after each epoch, find the last good one."""

    def __init__(self, folder: Path, suffix: str):
        self.folder, self.suffix = Path(folder), suffix

    def model_path(self, epoch: int) -> Path:
        return self.folder / f"epoch-{epoch:04d}{self.suffix}"

    def save(self, epochs_done: int, write_model: Callable[[Path], None], state: dict) -> Path:
        """Write the model, then the state that names it, then drop older model files."""
        path = atomic_write(self.model_path(epochs_done), write_model)
        atomic_write_json(self.folder / STATE, {**state, "epochs_done": epochs_done, "file": path.name})
        for old in self.folder.glob(f"epoch-*{self.suffix}"):
            if old != path:
                old.unlink(missing_ok=True)
        for stale in self.folder.glob(".*.tmp*"):  # half-written files of a run that was killed
            stale.unlink(missing_ok=True)
        return path

    def clear(self) -> None:
        """Delete the state file first (so no state names a missing file), then every model file."""
        (self.folder / STATE).unlink(missing_ok=True)
        for pattern in (f"epoch-*{self.suffix}", ".*.tmp*"):
            for old in self.folder.glob(pattern):
                old.unlink(missing_ok=True)

    def latest(self) -> tuple[dict, Path] | None:
        """``(state, model_path)`` of the last completed epoch, or None if there is none."""
        state_file = self.folder / STATE
        if not state_file.exists():
            return None
        try:
            state = json.loads(state_file.read_text())
            path = self.folder / state["file"]
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{state_file} is unreadable ({e}); delete it to start afresh") from None
        if not path.exists():
            raise CheckpointError(f"{state_file} names {path.name}, which is missing; delete {self.folder} to start afresh")
        return state, path


def check_same_architecture(saved: dict, current: dict, where: Path) -> None:
    """Refuse to resume a run whose architecture differs from the one asked for now."""
    for key, value in current.items():
        if saved.get(key) != value:
            raise CheckpointError(f"{where} was trained with {key}={saved.get(key)!r}, but this run asks for "
                                  f"{key}={value!r}; pass the same settings to resume it, or start afresh with "
                                  "another --out")
