"""Checkpoints: atomic writes, exact round trips, resuming gives the uninterrupted result bit
for bit, a run killed with SIGKILL resumes to that same result, and a model saved by one
framework loads into the other through ``parity``.

The uninterrupted reference of each framework (and Keras backend) is computed once, in
this process, through ``run.main``; the resumed runs go through ``run.main`` too, and the
killed one through the command line in subprocesses.  Equality is exact (``==`` on every
float of metrics.json, ``np.array_equal`` on every weight and optimizer variable).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest

from common.checkpoint import CheckpointDir, atomic_write, atomic_write_json
from common.config import RunConfig
from common.data import prepare_data
from common.errors import CheckpointError
from common.report import empty_history
from common.runs import checkpoint_state, checkpoints, lock_out_dir, resume_point, save_checkpoint, unlock_out_dir
from tests import cli_support as cli

# The torch loop is cheap per step; Keras on the torch backend pays per step, so it takes few large batches.
TORCH = dict(subset=2048, batch_size=256)    # 8 steps per epoch
KERAS = dict(subset=4096, batch_size=2048)   # 2 steps per epoch
# Enough epochs left after the first checkpoint to be killed mid-run (Keras on torch: ~1 s per epoch)
EPOCHS = {"torch_version": 6, "torch": 3, "jax": 10, "tensorflow": 10,
          "torch_version-3": 3}  # the runs killed at a save: the kill comes at epoch 2's save whatever the timing


def args_of(kwargs: dict, epochs: int) -> list[str]:
    """``dict(subset=2048, batch_size=256)`` -> ``--subset 2048 --batch-size 256 --epochs N``."""
    flags = [[f"--{key.replace('_', '-')}", str(value)] for key, value in kwargs.items()]
    return [item for flag in flags for item in flag] + ["--epochs", str(epochs)]


# --- Atomic writes and the checkpoint folder ----------------------------------------------------------

def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = atomic_write(tmp_path / "model.bin", lambda p: p.write_bytes(b"epoch 1"))

    def dies_half_way(p):
        p.write_bytes(b"half of epoch 2")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, dies_half_way)
    assert path.read_bytes() == b"epoch 1"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]  # no half-written file left behind


def test_checkpoint_folder_keeps_the_last_epoch_and_leaves_other_files_alone(tmp_path):
    folder = tmp_path / "checkpoints"
    ckpt = CheckpointDir(folder, ".pt")
    folder.mkdir()
    other = folder / ".epoch-0007.tmp4242-0a1b2c3d.pt"
    other.write_bytes(b"another process may still be writing this")
    for epoch in (1, 2):
        ckpt.save(epoch, lambda p: p.write_bytes(f"weights {epoch}".encode()), {"seed": 0})
    state, path = ckpt.latest()
    pending = state.pop("pending")  # the name the model had until it was renamed into place
    assert re.fullmatch(r"\.epoch-0002\.tmp\d+-[0-9a-f]{8}\.pt", pending)
    assert state == {"seed": 0, "epochs_done": 2, "file": "epoch-0002.pt",
                     "sha256": hashlib.sha256(b"weights 2").hexdigest()} and path.read_bytes() == b"weights 2"
    # save() never deletes a temporary file: only a run that holds the folder's lock removes orphans
    assert sorted(p.name for p in folder.iterdir()) == [other.name, "epoch-0002.pt", "state.json"]
    assert not locked(tmp_path)
    assert lock_out_dir(tmp_path) and [p.name for p in folder.glob(".*")] == []
    try:
        assert locked(tmp_path)  # held: another open of the folder cannot take it
        (tmp_path / ".lock").unlink()
        assert locked(tmp_path)  # and deleting .lock does not release it
    finally:
        unlock_out_dir(tmp_path)
    assert not locked(tmp_path)


def test_a_folder_moved_away_mid_run_is_not_written_to(tmp_path):
    """The lock holds the folder, not its path: if the folder is moved (or deleted) and another made in its
    place, the run that locked the first one refuses to write into the second."""
    from common.errors import OutputError
    config = RunConfig(out=tmp_path / "run", **TORCH, epochs=3)
    ckpt = checkpoints(config, ".pt")
    config.out.mkdir()
    assert lock_out_dir(config.out)
    try:
        save_checkpoint(config, ckpt, 1, lambda p: p.write_bytes(b"epoch 1"), {k: [0.5] for k in empty_history()})
        (tmp_path / "run").rename(tmp_path / "moved")
        (tmp_path / "run").mkdir()  # another run's new folder
        with pytest.raises(OutputError, match=r"was moved or deleted while this run wrote to it"):
            save_checkpoint(config, ckpt, 2, lambda p: p.write_bytes(b"epoch 2"), {k: [0.5] * 2 for k in empty_history()})
        assert list((tmp_path / "run").iterdir()) == []
    finally:
        unlock_out_dir(config.out)


def test_an_interrupted_save_is_finished_only_with_the_bytes_state_json_recorded(tmp_path):
    """A save killed between writing state.json and renaming the model leaves the model under its
    temporary name; the next holder renames it only if its SHA-256 is the one recorded."""
    from common.checkpoint import finish_interrupted_save
    folder = tmp_path / "checkpoints"
    ckpt = CheckpointDir(folder, ".pt")
    ckpt.save(1, lambda p: p.write_bytes(b"epoch 1"), {"seed": 0})
    pending = ".epoch-0002.tmp4242-0a1b2c3d.pt"
    state = {"seed": 0, "epochs_done": 2, "file": "epoch-0002.pt", "sha256": hashlib.sha256(b"epoch 2").hexdigest(),
             "pending": pending}
    atomic_write_json(folder / "state.json", state)
    (folder / pending).write_bytes(b"epoch 2, changed after its state was written")
    assert finish_interrupted_save(folder) is None
    assert (folder / pending).exists() and not (folder / "epoch-0002.pt").exists()
    with pytest.raises(CheckpointError, match=r"names epoch-0002\.pt, which is missing"):
        ckpt.latest()
    (folder / pending).write_bytes(b"epoch 2")  # the bytes state.json recorded
    assert finish_interrupted_save(folder) == folder / "epoch-0002.pt"
    assert ckpt.latest()[1].read_bytes() == b"epoch 2" and not (folder / pending).exists()


# --- A run writes only into the folder it locked ---------------------------------------------------------

RESULT_FILES = ["checkpoints", "history.png", "metrics.json", "model.pt", "predictions.png", "summary.txt"]


def run_tampered(monkeypatch, small_data, out, tamper, epochs: int = 3):
    """``torch_version.run.main`` into ``out`` (3 epochs of 8 steps); ``tamper()`` runs once epoch 1's
    checkpoint is on disk, before epoch 2 trains: each save is waited for, so "mid-run" is exact."""
    import torch_version.run as torch_run
    from common.checkpoint_writer import CheckpointWriter

    class WaitsForEachSave(CheckpointWriter):
        def save(self, epochs_done, snapshot, history):
            super().save(epochs_done, snapshot, history)
            self.wait()
            if epochs_done == 1:
                tamper()

    monkeypatch.setattr(torch_run, "CheckpointWriter", WaitsForEachSave)
    return torch_run.main(RunConfig(out=out, **TORCH, epochs=epochs), small_data)


def listing(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != ".lock")


def test_a_run_keeps_writing_into_the_folder_its_symlink_led_to_at_the_start(monkeypatch, small_data, tmp_path):
    """The issue's repro: --out link, link re-pointed from A to B after the first epoch. Every later file
    goes to A, the folder the run resolved and locked; B gets nothing, and stays free for another run."""
    a, b, link = tmp_path / "A", tmp_path / "B", tmp_path / "link"
    a.mkdir(), b.mkdir()
    link.symlink_to(a)

    def repoint():  # ln -sfn B link.new && mv -T link.new link
        (tmp_path / "link.new").symlink_to(b)
        (tmp_path / "link.new").rename(link)
        assert not locked(b)

    metrics = run_tampered(monkeypatch, small_data, link, repoint)
    assert metrics["config"]["out"] == str(a)  # resolved once, at the start
    assert listing(a) == RESULT_FILES and listing(a / "checkpoints") == ["epoch-0003.pt", "state.json"]
    assert list(b.iterdir()) == []


@pytest.mark.parametrize("how", ["renamed", "renamed, and a new folder made in its place", "removed"])
def test_a_run_whose_folder_is_moved_or_removed_stops_and_writes_nowhere_else(monkeypatch, small_data, tmp_path, how):
    from common.checkpoint import FolderMovedError
    import shutil
    out = tmp_path / "run"

    def tamper():
        if how == "removed":
            shutil.rmtree(out)
            return
        out.rename(tmp_path / "moved")
        if "new folder" in how:
            out.mkdir()

    with pytest.raises(FolderMovedError, match=rf"^the output folder {re.escape(str(out))} was moved or deleted while "
                                              r"this run wrote to it; nothing more is written there"):
        run_tampered(monkeypatch, small_data, out, tamper)
    if how == "removed":
        assert not out.exists()  # not made anew
    else:
        assert listing(tmp_path / "moved" / "checkpoints") == ["epoch-0001.pt", "state.json"]
        assert listing(tmp_path / "moved") == ["checkpoints"]
        assert ("new folder" in how) == out.exists() and (not out.exists() or list(out.iterdir()) == [])


def test_a_file_never_takes_its_name_in_a_folder_made_in_place_of_the_locked_one(tmp_path):
    """The libraries write by path; if the folder moves between the check and the write, the file lands
    in whatever stands at the path, under a temporary name: it is renamed through the locked folder's
    descriptor, which fails, and the stray copy is deleted."""
    from common.checkpoint import FolderMovedError
    out = tmp_path / "run"
    out.mkdir()

    def moved_while_writing(tmp):
        out.rename(tmp_path / "moved")
        out.mkdir()
        tmp.write_bytes(b"model")

    assert lock_out_dir(out)
    try:
        with pytest.raises(FolderMovedError, match="was moved or deleted while this run wrote to it"):
            atomic_write(out / "model.pt", moved_while_writing)
    finally:
        unlock_out_dir(out)
    assert list(out.iterdir()) == [] and listing(tmp_path / "moved") == []


def test_a_second_run_reaching_the_locked_folder_by_another_path_is_refused(monkeypatch, small_data, tmp_path):
    """The lock is on the folder, not on a path: runs started through a symlink to it, or through
    a path with ``..`` in it, while the first trains, each get one line and exit 2."""
    out = tmp_path / "run"
    (tmp_path / "link").symlink_to(out)
    (tmp_path / "sub").mkdir()
    seen = {}

    def others():
        jobs = {name: ("torch_version", [*args_of(TORCH, 3), "--out", path], None, None)
                for name, path in (("link", tmp_path / "link"), ("dots", tmp_path / "sub" / ".." / "run"))}
        seen.update(cli.run_many(jobs))

    run_tampered(monkeypatch, small_data, out, others)
    for result in seen.values():
        cli.one_error_line(result, "torch_version", rf"^python -m torch_version: error: .* is in use by another run "
                                                    rf"\(process {os.getpid()}\); wait for it to finish, or choose "
                                                    r"another --out$")
    assert len(seen) == 2 and listing(out) == RESULT_FILES


def locked(folder) -> bool:
    """Whether some open file description holds ``folder``'s lock (flock: a new descriptor of this
    process counts as another holder, so this sees this process's lock too)."""
    import fcntl
    import os
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def test_a_fresh_run_never_deletes_another_runs_checkpoints(tmp_path):
    """Refused without --overwrite; with it, the earlier checkpoint stays until the new run saves its own."""
    config = RunConfig(out=tmp_path, **TORCH, epochs=3)
    ckpt = checkpoints(config, ".pt")
    ckpt.save(2, lambda p: p.write_bytes(b"earlier run"), checkpoint_state(config, {k: [0.5] * 2 for k in
                                                                                    empty_history()}))
    (tmp_path / "metrics.json").write_text("{}")
    before = sorted(p.name for p in ckpt.folder.iterdir())
    with pytest.raises(CheckpointError, match="already holds a run's checkpoints"):
        resume_point(config, checkpoints(config, ".pt"))
    fresh = dataclasses.replace(config, overwrite=True)
    new = checkpoints(fresh, ".pt")
    assert resume_point(fresh, new)[0] == 0
    assert sorted(p.name for p in ckpt.folder.iterdir()) == before  # nothing deleted yet
    save_checkpoint(fresh, new, 1, lambda p: p.write_bytes(b"new run"), {k: [0.4] for k in empty_history()})
    assert sorted(p.name for p in ckpt.folder.iterdir()) == ["epoch-0001.pt", "state.json"]
    assert not (tmp_path / "metrics.json").exists()  # the earlier run's results went with its checkpoint
    assert new.latest()[1].read_bytes() == b"new run"


def test_a_long_runs_own_state_resumes_and_an_oversized_one_is_refused(tmp_path):
    """state.json grows by 5 numbers per epoch: a run of 150,000 epochs writes more than 16 MiB, and its
    own state.json still resumes; the same file is refused for a run of 3 epochs, which never writes that much."""
    from common.checkpoint import MAX_STATE_BYTES
    epochs = 150_000
    config = RunConfig(out=tmp_path, **TORCH, epochs=epochs)
    rng = np.random.default_rng(0)
    history = {key: rng.random(epochs).tolist() for key in empty_history()}  # 17 digits each, as a run writes
    save_checkpoint(config, checkpoints(config, ".pt"), epochs, lambda p: p.write_bytes(b"weights"), history)
    assert (tmp_path / "checkpoints" / "state.json").stat().st_size > MAX_STATE_BYTES
    done, resumed, path = resume_point(dataclasses.replace(config, resume=True), checkpoints(config, ".pt"))
    assert (done, path.name) == (epochs, f"epoch-{epochs:04d}.pt") and resumed == history
    short = dataclasses.replace(config, epochs=3, resume=True)
    with pytest.raises(CheckpointError, match=r"state\.json is larger than the 16,777,216 bytes a run of this length "
                                              r"writes there; pass the --epochs of the run to resume it"):
        resume_point(short, checkpoints(short, ".pt"))


def test_metrics_and_state_are_strict_json(tmp_path):
    """A NaN or an infinity in the history is written as null, never as JSON's missing NaN/Infinity;
    metrics.json says where and which, and reading it back (and resuming) gives the numbers again."""
    import math

    from common.report import read_metrics, write_metrics

    def strict(text):
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in strict JSON"))

    config = RunConfig(out=tmp_path, **TORCH, epochs=3)
    history = {key: [0.5, 0.25] for key in empty_history()}
    history["val_loss"] = [float("inf"), float("nan")]
    write_metrics(tmp_path, framework="torch", backend="native", config=config, params=682, test_loss=float("nan"),
                  test_accuracy=0.5, history=history)
    metrics = strict((tmp_path / "metrics.json").read_text())
    assert metrics["history"]["val_loss"] == [None, None] and metrics["test_loss"] is None
    assert metrics["non_finite"] == {"test_loss": "nan", "history.val_loss[0]": "inf", "history.val_loss[1]": "nan"}
    back = read_metrics(tmp_path)
    assert back["history"]["val_loss"][0] == math.inf and math.isnan(back["history"]["val_loss"][1])
    assert math.isnan(back["test_loss"]) and back["history"]["loss"] == [0.5, 0.25]

    save_checkpoint(config, checkpoints(config, ".pt"), 2, lambda p: p.write_bytes(b"weights"), history)
    assert strict((tmp_path / "checkpoints" / "state.json").read_text())["history"]["val_loss"] == [None, None]
    _, resumed, _ = resume_point(dataclasses.replace(config, resume=True), checkpoints(config, ".pt"))
    assert all(math.isnan(v) for v in resumed["val_loss"]) and resumed["loss"] == [0.5, 0.25]
    with pytest.raises(ValueError):  # the one writer of JSON refuses a NaN that slipped past the writers above
        atomic_write_json(tmp_path / "x.json", {"loss": float("nan")})
    assert not (tmp_path / "x.json").exists()


# --- Exact round trips ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keras_data(fashion):
    return prepare_data(RunConfig(**KERAS), arrays=fashion)


def test_torch_round_trip_is_exact(small_data, tmp_path):
    import torch
    from torch_version.model import StackedRNN
    from torch_version.train import load_model, save_model, train
    torch.manual_seed(0)
    model = StackedRNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    train(model, small_data.train, 1, torch.nn.CrossEntropyLoss(), optimizer, (small_data.x_val, small_data.y_val),
          verbose=False)
    save_model(tmp_path / "m.pt", model, optimizer)
    torch.manual_seed(1)
    again = StackedRNN()
    again_optimizer = torch.optim.Adam(again.parameters(), lr=1e-2)
    load_model(tmp_path / "m.pt", again, again_optimizer)
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    saved, loaded = optimizer.state_dict()["state"], again_optimizer.state_dict()["state"]
    assert saved.keys() == loaded.keys() and len(saved) == 14  # Adam's step, exp_avg, exp_avg_sq per parameter
    for key in saved:
        assert int(saved[key]["step"]) == int(loaded[key]["step"]) == len(small_data.train)
        assert all(torch.equal(saved[key][s], loaded[key][s]) for s in ("exp_avg", "exp_avg_sq"))
    x = torch.from_numpy(small_data.x_test[:512])
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


@pytest.mark.backend
def test_keras_round_trip_is_exact(keras_data, tmp_path):
    import keras
    from keras_version.model import build_model
    from keras_version.train import compile_model, load_model, save_model, train
    keras.utils.set_random_seed(0)
    model = compile_model(build_model(), 1e-2)
    train(model, keras_data.train, 1, (keras_data.x_val, keras_data.y_val), verbose=False)
    save_model(tmp_path / "m.keras", model)
    loaded = load_model(tmp_path / "m.keras", build_model())
    cli.same_arrays({w.path: np.asarray(w) for w in model.weights}, {w.path: np.asarray(w) for w in loaded.weights})
    saved = {v.path: np.asarray(v) for v in model.optimizer.variables}
    cli.same_arrays(saved, {v.path: np.asarray(v) for v in loaded.optimizer.variables})
    assert len(saved) == 2 + 2 * len(model.trainable_weights)  # iterations, learning rate, Adam's two moments
    assert int(loaded.optimizer.iterations) == len(keras_data.train)
    x = keras_data.x_test[:512]
    assert np.array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


# --- Resume == uninterrupted ------------------------------------------------------------------------------

def run_main(module: str, out, epochs: int, resume: bool = False) -> dict:
    """``run.main`` in this process (the resume path the command line takes)."""
    if module == "torch_version":
        from torch_version.run import main
        kwargs = TORCH
    else:
        from keras_version.run import main
        kwargs = KERAS
    return main(RunConfig(**kwargs, epochs=epochs, out=out, resume=resume))


def final_state(module: str, out) -> tuple[dict, dict]:
    """(weights of model.{pt,keras}, optimizer state of the last checkpoint) as NumPy arrays."""
    state = cli.read_state(out)
    ckpt = out / "checkpoints" / state["file"]
    if module == "torch_version":
        import torch
        saved = torch.load(ckpt, weights_only=True)["optimizer"]["state"]
        optimizer = {f"{k}/{s}": np.asarray(v[s]) for k, v in saved.items() for s in ("step", "exp_avg", "exp_avg_sq")}
        return cli.torch_weights(out / "model.pt"), optimizer
    return cli.keras_weights(out / "model.keras"), cli.keras_optimizer_state(ckpt)


def check_same_run(module: str, a, b) -> None:
    cli.same_result(cli.read_metrics(a), cli.read_metrics(b))
    (weights_a, opt_a), (weights_b, opt_b) = final_state(module, a), final_state(module, b)
    cli.same_arrays(weights_a, weights_b)
    cli.same_arrays(opt_a, opt_b)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """``{module-or-backend: out}`` of uninterrupted runs, made on first use."""
    made = {}

    def get(module: str, key: str):
        if key not in made:
            made[key] = tmp_path_factory.mktemp(f"uninterrupted-{key}")
            run_main(module, made[key], EPOCHS[key])
        return made[key]
    return get


def test_torch_resume_equals_uninterrupted(uninterrupted, tmp_path):
    """Stop after one epoch, then ``--resume``.  (Keras: the killed run below takes this path.)"""
    reference = uninterrupted("torch_version", "torch_version")
    out = tmp_path / "resumed"
    run_main("torch_version", out, 1)
    assert cli.read_state(out)["epochs_done"] == 1
    run_main("torch_version", out, EPOCHS["torch_version"], resume=True)
    check_same_run("torch_version", reference, out)


# --- Killed with SIGKILL mid-run, then resumed ------------------------------------------------------------------

def check_kill(module: str, key: str, backend, uninterrupted, tmp_path) -> None:
    epochs = EPOCHS[key]
    args = args_of(TORCH if module == "torch_version" else KERAS, epochs)
    out = tmp_path / "killed"
    reference = uninterrupted(module, key)
    proc = cli.start(module, [*args, "--out", out], backend)
    cli.wait_for_checkpoint(proc, out)
    code, _, _ = cli.interrupt(proc, signal.SIGKILL)
    assert code == -signal.SIGKILL
    state = cli.read_state(out)
    assert 1 <= state["epochs_done"] < epochs, "the run finished before it could be killed"
    assert not (out / "metrics.json").exists()
    # The last good checkpoint is readable (killed after state.json named it but before its rename, it is
    # still under its temporary name, verified and renamed by the next run to lock the folder, as here).
    path = out / "checkpoints" / state["file"]
    if not path.exists():
        from common.checkpoint import finish_interrupted_save
        assert finish_interrupted_save(out / "checkpoints") == path
    if module == "torch_version":
        from torch_version.model import StackedRNN
        from torch_version.train import load_model
        load_model(path, StackedRNN())
    else:  # Keras: the checkpoint written in on_epoch_end holds that epoch's weights and Adam's state
        from keras_version.model import build_model
        from keras_version.train import load_model
        loaded = load_model(path, build_model())
        assert int(loaded.optimizer.iterations) == 2 * state["epochs_done"]  # (JAX: state synced before the save)
        moments = [np.asarray(v) for v in loaded.optimizer.variables if "momentum" in v.path]
        assert len(moments) == len(loaded.trainable_weights) and all(np.any(m != 0) for m in moments)
    resumed = cli.run(module, [*args, "--resume", out], backend)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {path} after epoch {state['epochs_done']}" in resumed.stdout
    check_same_run(module, reference, out)


def test_torch_killed_run_resumes_to_the_same_result(uninterrupted, tmp_path):
    check_kill("torch_version", "torch_version", None, uninterrupted, tmp_path)


@pytest.mark.backend
@pytest.mark.extended_only  # make test-extended (and CI), every backend; make test kills the PyTorch run
def test_keras_killed_run_resumes_to_the_same_result(uninterrupted, tmp_path, keras_backend):
    check_kill("keras_version", keras_backend, keras_backend, uninterrupted, tmp_path)


# --- Killed at each step of a checkpoint's save, then resumed ---------------------------------------------------

# (fault point, epoch whose save is cut, the epoch --resume continues after, what checkpoints/ holds after the kill)
FAULTS = [
    ("before-checkpoint", 2, 1, ["epoch-0001", "state.json"]),            # epoch 2's save had not begun
    ("before-state", 2, 1, ["epoch-0001", "state.json", "temporary"]),     # written, not yet named by state.json
    ("before-rename", 2, 2, ["epoch-0001", "state.json", "temporary"]),    # named, still under its temporary name
    ("before-cleanup", 2, 2, ["epoch-0001", "epoch-0002", "state.json"]),  # renamed, epoch 1's not yet deleted
    ("before-rename", 1, 1, ["state.json", "temporary"]),                  # the first save: no earlier checkpoint
]


def holds(out, suffix: str) -> list[str]:
    """What checkpoints/ holds: model files without their suffix, state.json, "temporary" for an unfinished write."""
    names = sorted({"temporary" if p.name.startswith(".") else p.name.removesuffix(suffix)
                    for p in (out / "checkpoints").iterdir()})
    return names


def check_faults(module: str, key: str, backend, faults, uninterrupted, tmp_path, capsys) -> None:
    """Each run dies (os._exit, as a kill would) at one step of one save; its folder then holds what the
    table says, and --resume continues from the epoch it says, to the uninterrupted result bit for bit."""
    from common.checkpoint import FAULT_ENV, FAULT_EXIT
    epochs, suffix = EPOCHS[key], ".pt" if module == "torch_version" else ".keras"
    args = args_of(TORCH if module == "torch_version" else KERAS, epochs)
    reference = uninterrupted(module, key)
    outs = {f"{point}:{epoch}": tmp_path / f"{point}-{epoch}" for point, epoch, _, _ in faults}
    killed = cli.run_many({fault: (module, [*args, "--out", out], backend, {FAULT_ENV: fault})
                           for fault, out in outs.items()}, workers=len(outs))
    for (point, epoch, resumes_after, holding), (fault, out) in zip(faults, outs.items()):
        result = killed[fault]
        assert result.returncode == FAULT_EXIT, (fault, result.returncode, result.stderr[-3000:])
        assert result.stderr == "" and not (out / "metrics.json").exists(), fault
        assert holds(out, suffix) == holding, fault
        capsys.readouterr()
        if backend is None:
            run_main(module, out, epochs, resume=True)  # the resume path of the command line, in this process
            resumed = capsys.readouterr().out
        else:
            completed = cli.run(module, [*args, "--resume", out], backend)
            assert completed.returncode == 0, completed.stderr[-3000:]
            resumed = completed.stdout
        name = out / "checkpoints" / f"epoch-{resumes_after:04d}{suffix}"
        assert f"resuming from {name} after epoch {resumes_after}" in resumed, (fault, resumed[-2000:])
        check_same_run(module, reference, out)
        assert holds(out, suffix) == [f"epoch-{epochs:04d}", "state.json"], fault


def test_torch_killed_at_each_step_of_a_save_resumes_to_the_same_result(uninterrupted, tmp_path, capsys):
    check_faults("torch_version", "torch_version-3", None, FAULTS, uninterrupted, tmp_path, capsys)


@pytest.mark.backend
@pytest.mark.extended_only  # Keras starts slowly: make test-extended (and CI), every backend
def test_keras_killed_at_each_step_of_a_save_resumes_to_the_same_result(uninterrupted, tmp_path, capsys,
                                                                         keras_backend):
    """The steps are common/'s; what Keras adds is its own model file, written under the temporary name.
    Two steps keep this affordable: a first checkpoint named but not renamed, and a save not yet named."""
    faults = [f for f in FAULTS if (f[0], f[1]) in (("before-rename", 1), ("before-state", 2))]
    check_faults("keras_version", keras_backend, keras_backend, faults, uninterrupted, tmp_path, capsys)


# --- One framework's file, the other framework's model ------------------------------------------------------------

@pytest.mark.backend
def test_saved_model_loads_into_the_other_framework(small_data, tmp_path):
    """torch file -> torch model -> parity.torch_to_keras, and .keras file -> Keras -> parity.keras_to_torch:
    the other framework then computes the same logits (float32 round-off apart) and the same classes."""
    import keras
    import torch
    from keras_version.model import build_model as build_keras
    from keras_version.train import load_model as load_keras, save_model as save_keras
    from parity import keras_to_torch, torch_to_keras
    from torch_version.model import StackedRNN
    from torch_version.train import load_model as load_torch, save_model as save_torch
    x = small_data.x_test[:1000]

    torch.manual_seed(0)
    saved = StackedRNN()
    save_torch(tmp_path / "m.pt", saved)
    keras_model = build_keras()
    torch_to_keras(load_torch(tmp_path / "m.pt", StackedRNN()), keras_model)
    with torch.no_grad():
        expected = saved(torch.from_numpy(x)).numpy()
    got = keras.ops.convert_to_numpy(keras_model(x))
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert np.array_equal(got.argmax(1), expected.argmax(1))

    keras.utils.set_random_seed(0)
    saved = build_keras()
    for w in saved.weights:  # Keras starts its biases at zero: give them values worth carrying over
        if "bias" in w.path:
            w.assign(np.linspace(-0.5, 0.5, int(np.prod(w.shape)), dtype="float32").reshape(w.shape))
    save_keras(tmp_path / "m.keras", saved)
    torch_model = StackedRNN()
    keras_to_torch(load_keras(tmp_path / "m.keras", build_keras()), torch_model)
    expected = keras.ops.convert_to_numpy(saved(x))
    with torch.no_grad():
        got = torch_model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert np.array_equal(got.argmax(1), expected.argmax(1))


# --- One writer per folder; a fresh run killed early leaves the earlier run resumable --------------------------

def test_a_second_run_into_the_same_folder_is_refused_and_the_first_is_unharmed(uninterrupted, tmp_path):
    """Two real processes: while the first trains, runs into its folder (fresh, --resume, --overwrite) each get
    one line and exit 2, and again after ``.lock`` was deleted; the first then ends exactly as the
    uninterrupted run of the same settings."""
    args = args_of(TORCH, EPOCHS["torch_version"])
    reference = uninterrupted("torch_version", "torch_version")
    out = tmp_path / "shared"
    first = cli.start("torch_version", [*args, "--out", out])
    lock = out / ".lock"
    deadline = time.monotonic() + 120
    while not (lock.exists() and lock.read_text().strip() == str(first.pid)):  # it holds the folder
        assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()[-3000:]
        time.sleep(0.01)
    jobs = {"fresh": ("torch_version", [*args, "--out", out], None, None),
            "resume": ("torch_version", [*args, "--resume", out], None, None),
            "overwrite": ("torch_version", [*args, "--out", out, "--overwrite"], None, None)}
    others = cli.run_many(jobs)
    lock.unlink()  # the lock is on the folder itself: deleting the file that names the holder changes nothing
    without_lock_file = cli.run_many(jobs)
    assert first.poll() is None, "the first run ended before the others tried: the test proved nothing"
    for results, pid in ((others, first.pid), (without_lock_file, "unknown")):
        for result in results.values():
            cli.one_error_line(result, "torch_version", rf"^python -m torch_version: error: {re.escape(str(out))} is "
                                                        rf"in use by another run \(process {pid}\); wait for it to "
                                                        r"finish, or choose another --out$")
    stdout, stderr = first.communicate(timeout=1200)
    assert first.returncode == 0, stderr[-3000:]
    check_same_run("torch_version", reference, out)


def test_a_fresh_run_stopped_before_its_first_checkpoint_leaves_the_earlier_run_resumable(uninterrupted, tmp_path):
    """The issue's repro: a run into R, then a fresh run into R (--overwrite) stopped during its first epoch,
    by Ctrl-C and by SIGKILL: R's checkpoint is untouched, and --resume R ends as if never disturbed."""
    out = tmp_path / "R"
    run_main("torch_version", out, 2)
    state_before = (out / "checkpoints" / "state.json").read_bytes()
    slow = ["--subset", "60000", "--batch-size", "64", "--epochs", "1", "--out", out, "--overwrite"]  # 844 steps
    for sig in (signal.SIGINT, signal.SIGKILL):
        proc = subprocess.Popen(cli.train_command("torch_version", slow), cwd=cli.ROOT,
                                env=cli.cli_env({"PYTHONUNBUFFERED": "1"}), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        for line in proc.stdout:  # the model summary's last line: training starts next
            if line.startswith("Estimated Total Size"):
                break
        code, _, stderr = cli.interrupt(proc, sig)
        if sig == signal.SIGINT:
            cli.one_error_line(subprocess.CompletedProcess(proc.args, code, "", stderr), "torch_version",
                               r"^python -m torch_version: interrupted; no epoch of this run had completed, so it "
                               r"saved no checkpoint$", code=130)
        else:
            assert code == -signal.SIGKILL
        assert (out / "checkpoints" / "state.json").read_bytes() == state_before
        assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch-0002.pt", "state.json"]
    resumed = cli.run("torch_version", [*args_of(TORCH, EPOCHS["torch_version"]), "--resume", out])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {out / 'checkpoints' / 'epoch-0002.pt'} after epoch 2" in resumed.stdout
    check_same_run("torch_version", uninterrupted("torch_version", "torch_version"), out)
