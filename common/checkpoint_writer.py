"""Checkpoints written while the next epoch trains: the end of an epoch only takes a snapshot.

Writing a checkpoint (serialising, writing, two fsyncs, two renames) took 0.13-0.28 s
per epoch here, about a third of an epoch of the notebook's recipe.  A run now copies
its state at the end of the epoch (``snapshot()``: torch serialises it to bytes,
Keras copies it into a twin model, a few milliseconds) and one background thread
hands that copy to ``CheckpointDir.save`` (through ``common.runs.save_checkpoint``), which still
does all the writing, so its guarantees hold as they were: each file is written
atomically, and a kill at any step of a save leaves a checkpoint to resume from.

What the background thread adds, and how the promises are kept:

* one save at a time, in epoch order: ``save`` first waits for the save before it,
  so at most one epoch is on its way to disk and the snapshot is never overwritten
  while it is being written;
* ``wait()`` returns once everything handed over is on disk, and raises the error of
  a save that failed.  The run leaves the ``with`` block only through it: at the end,
  on Ctrl-C (the last completed epoch is kept) and on a NaN loss (the last good
  checkpoint is named after the pending one has been written);
* a process killed while a save is in flight leaves ``state.json`` naming the
  previous complete checkpoint, or the new one once it is written in full (the next
  run renames it into place), so ``--resume`` continues from there, bit-exactly.
"""
from __future__ import annotations

import copy
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

Writer = Callable[[Path], None]  # writes a model file to the path it is given


class CheckpointWriter:
    """Save checkpoints through ``save`` on a background thread, one at a time, in order.

    ``save(epochs_done, write_model, history)`` does the writing: the runs pass
    ``common.runs.save_checkpoint``, which hands it to ``CheckpointDir.save`` (and, for the
    first checkpoint of a run started with ``--overwrite``, then removes the earlier run's
    results).  The output folder stays locked by the run for as long as this block lasts.
    """

    def __init__(self, save: Callable[[int, Writer, dict], object]):
        self._save = save
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint-writer")
        self._pending: Future | None = None

    def save(self, epochs_done: int, snapshot: Callable[[], Writer], history: dict) -> None:
        """Wait for the previous save, take ``snapshot()`` now (on this thread), write it later.

        ``snapshot()`` copies the model's state and returns the function that writes that
        copy; ``history`` is copied too, as it goes on growing."""
        self.wait()
        write_model, history = snapshot(), copy.deepcopy(history)
        self._pending = self._pool.submit(self._save, epochs_done, write_model, history)

    def wait(self) -> None:
        """Block until every save handed over is on disk; raise the error of one that failed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> "CheckpointWriter":
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if kind is None:
            self.close()  # a failed save is this block's error
            return False
        try:  # training failed or was interrupted: still finish the save of the last completed epoch
            self.close()
        except Exception:
            pass  # the error that stopped training is the one to report; the previous checkpoint stands
        return False
