"""Checkpoint bookkeeping shared by both versions: atomic writes, the run's state file, one
writer per folder, and the size checks made before a model archive is opened.

A run folder holds ``checkpoints/epoch-NNNN.{pt,keras}`` and ``checkpoints/state.json``.
Each file is written to a temporary name and renamed into place; a checkpoint's
state.json is written between the two, naming both (:meth:`CheckpointDir.save`), so a
run killed at any moment leaves a checkpoint that ``--resume`` continues from.  The
state file is checked against the disk before it is believed: its epoch count, the
file it names (a plain name inside ``checkpoints/``, holding the epoch it claims, with
the SHA-256 recorded when it was saved).

A folder has one writer at a time: :func:`lock_folder` takes an ``flock`` on the
folder's own descriptor, held until released or until the process ends, however it ends.

A run writes only into the folder it locked, whatever happens to its path meanwhile (a
symlink re-pointed, the folder renamed or deleted, another folder made in its place).
Two guards, because neither is enough alone:

* the run resolves ``--out`` once, at the start, to the real folder (``common.runs``), and
  before every write checks that this path still leads to the folder it locked
  (:func:`check_still_held`), stopping with one line if not;
* the libraries write by path (``torch.save``, Keras's ``model.save``, Matplotlib), so each
  file is first written under a temporary name by path, after that check, but it takes
  its final name only through the locked folder's descriptor (``os.replace`` with
  ``dir_fd``), as do deletions.  A folder moved between the check and the write cannot
  receive a file under its final name: the rename fails, the stray temporary is deleted,
  and the run stops with the same line.  A full ``dir_fd`` write was not chosen because
  those three libraries would each need their own byte-level writer.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import stat
import zipfile
from pathlib import Path
from typing import Callable

from common.errors import CheckpointError, OutputError

STATE = "state.json"
LOCK = ".lock"
MODEL_FILE = re.compile(r"^epoch-(\d{4,})(\.pt|\.keras)$")  # what state.json's "file" may name
TEMPORARY = re.compile(r"^\.(?P<stem>.+)\.tmp\d+(-[0-9a-f]+)?(?P<suffix>\.[A-Za-z]+)?$")  # atomic_write's names
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


# --- Atomic writes ------------------------------------------------------------------------------

def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` then rename ``tmp`` to ``path``; a crash leaves ``path`` as it was.

    The temporary name is unique to this call (process id and a random token), so two
    processes never touch each other's temporary files.  A full disk raises
    :class:`OutputError`, with ``path`` left as it was and no temporary file behind.
    In a folder this process has locked, the rename goes through the lock's descriptor
    (see the module's docstring).
    """
    path = Path(path)
    tmp = write_temporary(path, write)
    try:
        replace_in(path.parent, tmp.name, path.name)
    except OSError as e:
        raise disk_error(e, path) from None
    finally:
        tmp.unlink(missing_ok=True)  # nothing after the rename; a stray copy if the folder moved
    return path


def write_temporary(path: Path, write: Callable[[Path], None]) -> Path:
    """Write what will become ``path`` under a temporary name beside it, synced to disk; return that name.

    The caller renames it into place (``os.replace``); a process killed before that leaves
    an orphan that :func:`remove_temporary_files` recognises."""
    path = Path(path)
    check_still_held(path.parent)  # a locked folder still where the run locked it
    if descriptor(path.parent, create=True) is None:  # a locked folder's subfolder is made through its descriptor
        path.parent.mkdir(parents=True, exist_ok=True)
    # keeps the suffix: Keras checks it, matplotlib picks the format from it
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise disk_error(e, path) from None
        raise
    return tmp


def disk_error(e: OSError, path: Path) -> Exception:
    """A full disk as :class:`OutputError` (one line that names the file); any other OSError as it was."""
    if e.errno in DISK_FULL:
        return OutputError(f"no space left on the device to write {final_name(path)} ({os.strerror(e.errno)}); "
                           "free some space, or choose another --out")
    return e


def final_name(path: Path) -> Path:
    """The file a temporary name of :func:`atomic_write` stands for (writes may nest)."""
    path = Path(path)
    while (match := TEMPORARY.match(path.name)) is not None:
        path = path.with_name(match["stem"] + (match["suffix"] or ""))
    return path


def atomic_write_json(path: Path, obj) -> Path:
    """Write ``obj`` as strict JSON: a NaN or an infinity is refused (``ValueError``), never written as
    ``NaN`` or ``Infinity``, which JSON does not have; the writers turn them into null first."""
    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def remove_temporary_files(folder: Path) -> list[Path]:
    """Delete what :func:`atomic_write` left in ``folder`` when its process was killed.

    Only a process that holds the folder's lock may call this: then no other process
    is writing there, and every temporary file is an orphan.
    """
    removed = []
    for name in names_in(folder):
        path = Path(folder) / name
        if TEMPORARY.match(name) and path.is_file():
            unlink_in(folder, name)
            removed.append(path)
    return removed


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- One writer per folder --------------------------------------------------------------------------

_held: dict[str, list] = {}  # the folder's real path when it was locked -> [its descriptor, times taken]
_inner: dict[str, int] = {}  # a subfolder of a locked folder (checkpoints/) -> its descriptor, opened through the folder's


class FolderMovedError(OutputError):
    """The folder a run locked is no longer at the path it locked (moved, deleted or replaced)."""


def _held_key(folder) -> str | None:
    """The key under which this process locked ``folder``: the path it was locked under (a run
    gives the path it resolved at its start), else the folder's real path now."""
    for key in (os.path.abspath(folder), os.path.realpath(folder)):
        if key in _held:
            return key
    return None


def _moved(folder) -> FolderMovedError:
    return FolderMovedError(f"the output folder {folder} was moved or deleted while this run wrote to it; nothing "
                            "more is written there (start again with another --out)")


def descriptor(folder, create: bool = False) -> int | None:
    """The open descriptor of ``folder`` if this process locked it or the folder it lies directly in
    (such a subfolder is opened, and with ``create`` made if missing, through the locked folder's
    descriptor); else None, also for a subfolder that does not exist (yet)."""
    key = _held_key(folder)
    if key is not None:
        return _held[key][0]
    parent, name = os.path.split(os.path.abspath(folder))
    parent_key = _held_key(parent)
    if parent_key is None:
        return None
    inner = os.path.join(parent_key, name)
    if inner not in _inner:
        parent_fd = _held[parent_key][0]
        try:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, dir_fd=parent_fd)
            _inner[inner] = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                    dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                return None
            raise _moved(parent) from None
        except OSError as e:
            raise OutputError(f"{folder} is not a folder this run can write ({e.strerror}); remove it, or "
                              "choose another --out") from None
    return _inner[inner]


def replace_in(folder, src: str, dst: str) -> None:
    """Rename ``folder/src`` to ``folder/dst``; in a locked folder through its descriptor."""
    fd = descriptor(folder)
    if fd is None:
        os.replace(Path(folder) / src, Path(folder) / dst)
        return
    try:
        os.replace(src, dst, src_dir_fd=fd, dst_dir_fd=fd)
    except FileNotFoundError:  # the temporary file was written into whatever now stands at the path
        check_still_held(folder)
        raise _moved(folder) from None


def unlink_in(folder, name: str) -> None:
    """Delete ``folder/name`` if it is there; in a locked folder through its descriptor."""
    fd = descriptor(folder)
    with contextlib.suppress(FileNotFoundError):
        if fd is None:
            os.unlink(Path(folder) / name)
        else:
            os.unlink(name, dir_fd=fd)


def names_in(folder) -> list[str]:
    """The names in ``folder`` (none if it is missing); in a locked folder through its descriptor."""
    fd = descriptor(folder)
    try:
        return sorted(os.listdir(Path(folder) if fd is None else fd))
    except FileNotFoundError:
        return []


def lock_folder(folder: Path, *, name: str = LOCK, wait: bool = False, busy: str | None = None,
                unwritable: str | None = None) -> bool:
    """Take the exclusive lock of ``folder``: an ``flock`` on the folder's own descriptor.

    A lock on a file inside the folder could be lost with the file: delete ``.lock`` and
    the next process creates a new one and locks that.  A lock on the folder goes only
    with the folder, and a run checks before it writes that its path still leads to the
    folder it locked (:func:`check_still_held`).  ``folder/name`` only tells others which
    process holds it (its pid); deleting it changes nothing.

    Returns True if this call took it, False if this process held it already (the lock
    is re-entrant within a process).  If another process holds it: wait for it when
    ``wait``, else raise :class:`OutputError` with ``busy`` (``{folder}`` and ``{pid}``
    are filled in); if the folder cannot be opened or written, the message is
    ``unwritable`` (``{folder}`` and ``{reason}``).  The kernel drops the lock when the
    holder ends, however it ends, so a killed run never leaves a stale lock behind.
    """
    key = os.path.realpath(folder)
    if key in _held:
        check_still_held(key)  # the same folder, not one made at its path since
        _held[key][1] += 1
        return False
    message = unwritable or "cannot write to the folder {folder} ({reason}); choose another --out"
    try:
        fd = os.open(key, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise OutputError(message.format(folder=folder, reason=e.strerror or type(e).__name__)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        raise OutputError((busy or "{folder} is in use by another process (pid {pid})").format(
            folder=folder, pid=holder(Path(key) / name))) from None
    except BaseException:
        os.close(fd)
        raise
    try:  # for the message another process gets
        atomic_write(Path(key) / name, lambda tmp: tmp.write_text(f"{os.getpid()}\n"))
    except (OSError, OutputError) as e:
        os.close(fd)
        raise OutputError(message.format(folder=folder, reason=getattr(e, "strerror", None) or str(e))) from None
    _held[key] = [fd, 1]
    return True


def holder(pid_file: Path) -> str:
    """The pid the holder of a lock wrote, or "unknown" (the file was deleted, or is being replaced)."""
    try:
        with open(pid_file, "rb") as f:
            return f.read(32).decode(errors="replace").strip() or "unknown"
    except OSError:
        return "unknown"


def check_still_held(folder: Path) -> None:
    """If this process locked ``folder`` (or the folder it lies directly in), check that the path
    it was locked under still leads to the directory it locked.

    A folder can be moved away or deleted with ``rm -rf`` while a run writes to it, and another
    run can then create and lock a new one at the same path: the first run would write into the
    second's folder.  Raises :class:`FolderMovedError` then; does nothing for a folder this
    process has not locked.  The path is the one the lock was taken under, not the folder's
    real path now: looked up by the real path, a re-pointed symlink would find no lock and
    check nothing."""
    key = _held_key(folder)
    inner = None
    if key is None:
        parent, name = os.path.split(os.path.abspath(folder))
        key = _held_key(parent)
        if key is None:
            return
        inner = os.path.join(key, name)
    for path, fd in ((key, _held[key][0]), (inner, _inner.get(inner))):
        if path is None or fd is None:
            continue
        locked = os.fstat(fd)
        try:
            now = os.stat(path, follow_symlinks=False)
        except OSError:
            now = None
        if now is None or (now.st_dev, now.st_ino) != (locked.st_dev, locked.st_ino):
            raise _moved(folder if path == key else path)


def unlock_folder(folder: Path, *, name: str = LOCK) -> None:
    """Give back one :func:`lock_folder` of this process; the last one releases the lock."""
    key = _held_key(folder)
    if key is None:
        return
    held = _held[key]
    held[1] -= 1
    if held[1] == 0:
        del _held[key]
        for inner in [inner for inner in _inner if os.path.dirname(inner) == key]:
            os.close(_inner.pop(inner))
        os.close(held[0])  # closing the descriptor releases the flock


@contextlib.contextmanager
def folder_locked(folder: Path, **kwargs):
    """Hold ``folder``'s lock inside the block (re-entrant; see :func:`lock_folder`)."""
    lock_folder(folder, **kwargs)
    try:
        yield
    finally:
        unlock_folder(folder, name=kwargs.get("name", LOCK))


# --- The checkpoints of a run ---------------------------------------------------------------------

def state_error(state_file: Path, field: str, problem: str) -> CheckpointError:
    """The one line for a state.json field that does not hold: names the file and the field."""
    return CheckpointError(f"{state_file}: field '{field}' {problem}; the file was edited or damaged, so the run "
                           "cannot be resumed from it (start afresh with --overwrite, or choose another --out)")


class CheckpointDir:
    """The checkpoints of one run: save after each epoch, find the last good one.

    ``current`` is this run's own checkpoint: the one it resumed from, then each one it
    saved; None while it has saved none (an earlier run's files may still be there).
    """

    def __init__(self, folder: Path, suffix: str, epochs: int = 0):
        self.folder, self.suffix = Path(folder), suffix
        self.epochs = epochs  # the run's --epochs: how long a history state.json may hold
        self.current: Path | None = None

    def model_path(self, epoch: int) -> Path:
        return self.folder / f"epoch-{epoch:04d}{self.suffix}"

    def save(self, epochs_done: int, write_model: Callable[[Path], None], state: dict) -> Path:
        """Save the model after ``epochs_done`` epochs so that a kill at any point leaves a run to resume.

        1. the model is written under a temporary name and synced;
        2. state.json is replaced by one that names the new file, its SHA-256 and, under
           ``pending``, the temporary name (the new checkpoint now counts as saved);
        3. the temporary file is renamed into place;
        4. every other model file is deleted.

        Killed before 2, the folder still holds the previous checkpoint and the state that
        names it (the lock's next holder deletes the orphan).  Killed between 2 and 3, the
        next run to lock the folder verifies the temporary file against the SHA-256 and
        renames it (:func:`finish_interrupted_save`).  Killed between 3 and 4, an old
        file is left over, deleted by the next save.
        """
        path = self.model_path(epochs_done)
        fault_point("before-checkpoint", epochs_done)
        tmp = write_temporary(path, write_model)
        try:
            fault_point("before-state", epochs_done)
            atomic_write_json(self.folder / STATE, {**state, "epochs_done": epochs_done, "file": path.name,
                                                    "sha256": sha256(tmp), "pending": tmp.name})
            fault_point("before-rename", epochs_done)
            replace_in(self.folder, tmp.name, path.name)
        except OSError as e:
            raise disk_error(e, path) from None
        finally:
            tmp.unlink(missing_ok=True)
        fault_point("before-cleanup", epochs_done)
        for name in names_in(self.folder):
            if name != path.name and MODEL_FILE.match(name):
                unlink_in(self.folder, name)
        self.current = path
        return path

    def clear(self) -> None:
        """Delete the state file first (so no state names a missing file), then every model file."""
        unlink_in(self.folder, STATE)
        for name in names_in(self.folder):
            if MODEL_FILE.match(name):
                unlink_in(self.folder, name)

    def found(self) -> Path | None:
        """A model file or the state file, if the folder holds any: a run's checkpoint is there."""
        models = sorted(p for p in self.folder.glob("epoch-*") if MODEL_FILE.match(p.name))
        if models:
            return models[-1]
        return self.folder / STATE if (self.folder / STATE).exists() else None

    def latest(self) -> tuple[dict, Path] | None:
        """``(state, model_path)`` of the last completed epoch, or None if there is none.

        The state is checked against the disk first: ``epochs_done`` a non-negative
        integer, ``file`` a plain checkpoint name in this folder whose epoch is
        ``epochs_done``, and the file's SHA-256 the one recorded beside it.
        """
        state_file = self.folder / STATE
        if not state_file.exists():
            return None
        state = read_json(state_file, state_limit(self.epochs))
        if not isinstance(state, dict):
            raise CheckpointError(f"{state_file} holds {type(state).__name__}, not the JSON object this project "
                                  "writes; start afresh with --overwrite, or choose another --out")
        for field in ("epochs_done", "file", "sha256"):
            if field not in state:
                raise state_error(state_file, field, "is missing")
        done, name = state["epochs_done"], state["file"]
        if isinstance(done, bool) or not isinstance(done, int) or done < 0:
            raise state_error(state_file, "epochs_done", f"must be a non-negative integer, got {done!r}")
        match = MODEL_FILE.match(name) if isinstance(name, str) else None
        if match is None:
            raise state_error(state_file, "file", f"must be a plain name such as epoch-0002{self.suffix} inside "
                                                  f"{self.folder}, got {name!r}")
        if int(match.group(1)) != done:
            raise state_error(state_file, "epochs_done", f"is {done}, but field 'file' names {name}, the checkpoint "
                                                         f"after epoch {int(match.group(1))}")
        path = self.folder / name
        if not path.exists():
            raise CheckpointError(f"{state_file} names {name}, which is missing; start afresh with --overwrite, "
                                  "or choose another --out")
        if not stat.S_ISREG(path.lstat().st_mode):
            raise state_error(state_file, "file", f"names {name}, which is not a regular file")
        try:
            digest = sha256(path)
        except OSError as e:
            raise CheckpointError(f"cannot read {path} ({e.strerror}); check its permissions") from None
        if state["sha256"] != digest:
            raise state_error(state_file, "sha256", f"does not match {name}: the checkpoint was replaced or "
                                                    "changed after the state was written")
        return state, path


MAX_STATE_BYTES = 16 << 20  # enough for a run of up to ~80,000 epochs
ENTRY_BYTES = 40  # one number of the history in state.json, as json.dumps(indent=2) writes it: ",\n" + 6 spaces + 24


def state_limit(epochs: int = 0) -> int:
    """The most bytes state.json may hold: 16 MiB, or more for a run long enough to write more
    (5 history entries per epoch), so that a run's own state.json always resumes."""
    return max(MAX_STATE_BYTES, 65536 + 5 * ENTRY_BYTES * epochs)


def read_json(path: Path, limit: int = MAX_STATE_BYTES):
    """Parse a JSON file this project wrote; one line if it cannot be read or parsed, or is over ``limit`` bytes."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise CheckpointError(f"{path} is not a regular file; start afresh with --overwrite, "
                                  "or choose another --out")
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
        if len(raw) > limit:
            raise CheckpointError(f"{path} is larger than the {limit:,} bytes a run of this length writes there; "
                                  "pass the --epochs of the run to resume it, or start afresh with --overwrite, "
                                  "or choose another --out")
        return json.loads(raw)
    except PermissionError as e:
        raise CheckpointError(f"cannot read {path} ({e.strerror}); check its permissions") from None
    except (OSError, ValueError, RecursionError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise CheckpointError(f"{path} is unreadable ({reason}); start afresh with --overwrite, "
                              "or choose another --out") from None


def finish_interrupted_save(folder: Path) -> Path | None:
    """Finish a :meth:`CheckpointDir.save` killed between writing state.json and renaming the model.

    state.json then names ``file`` and its SHA-256, and the model is still under the
    temporary name ``pending``: if that file holds exactly the bytes recorded, rename it
    into place and return its path.  Anything else is left for :meth:`CheckpointDir.latest`
    to judge.  Only the holder of the folder's lock calls this, before the orphans are removed.
    """
    folder = Path(folder)
    try:
        if (folder / STATE).stat().st_size > 1 << 30:
            return None  # not this project's: latest() refuses it with one line
        state = json.loads((folder / STATE).read_bytes())
        pending, name, digest = state["pending"], state["file"], state["sha256"]
    except (OSError, ValueError, RecursionError, KeyError, TypeError):
        return None
    if not (isinstance(pending, str) and isinstance(name, str) and MODEL_FILE.match(name)
            and TEMPORARY.match(pending) and final_name(folder / pending).name == name):
        return None
    tmp = folder / pending
    if not tmp.is_file() or tmp.is_symlink() or sha256(tmp) != digest:
        return None
    replace_in(folder, pending, name)
    return folder / name


# --- Faults on purpose, for the tests ------------------------------------------------------------------

FAULT_ENV = "STACKED_RNN_FAULT"  # e.g. "before-rename:2": only the tests set it
FAULT_EXIT = 86
FAULT_POINTS = ("before-checkpoint", "before-state", "before-rename", "before-cleanup")


def fault_point(name: str, epochs_done: int) -> None:
    """End the process at once, as a kill would, if ``$STACKED_RNN_FAULT`` is ``name:epochs_done``.

    The tests kill a run at each step of :meth:`CheckpointDir.save` this way, exactly where
    they mean to, which timing a SIGKILL from outside cannot promise."""
    if os.environ.get(FAULT_ENV) == f"{name}:{epochs_done}":
        os._exit(FAULT_EXIT)


def check_same_architecture(saved: dict, current: dict, where: Path) -> None:
    """Refuse to resume a run whose architecture differs from the one asked for now."""
    for key, value in current.items():
        if saved.get(key) != value:
            raise CheckpointError(f"{where} was trained with {key}={saved.get(key)!r}, but this run asks for "
                                  f"{key}={value!r}; pass the same settings to resume it, or start afresh with "
                                  "another --out")


# --- Model archives ----------------------------------------------------------------------------------

# A .keras file is a zip: config.json and metadata.json (a few kB for this project's models)
# and model.weights.h5.  Keras stores the entries uncompressed; deflate cannot exceed about
# 1032:1.  Keras's own guard (saving_lib._reject_zip_bomb) starts at 4 GiB per entry, which
# lets a 2 MB file make it read gigabytes; these limits refuse such a file before Keras opens it.
MAX_JSON_ENTRY = 16 << 20        # config.json, metadata.json
MAX_ENTRY = 4 << 30              # any entry, e.g. the weights
MAX_RATIO = 100                  # uncompressed / stored, for entries over RATIO_FLOOR
RATIO_FLOOR = 1 << 20


def check_keras_archive(path: Path, what: str = "Keras model") -> None:
    """Refuse a ``.keras`` file whose entries are out of proportion, before it is loaded.

    ``what`` names the kind of file in the messages: ``parity convert`` also checks
    PyTorch's zip files (``torch.save``) this way before ``torch.load`` reads them.

    Reads only the zip's directory: the declared size of each entry (Python's zipfile
    never inflates an entry past it) and how it is compressed.  Raises
    :class:`CheckpointError` with one line.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path} ({e.strerror}); check its permissions") from None
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{path} is not a regular file; a {what} is a zip file")
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except PermissionError as e:
        raise CheckpointError(f"cannot read {path} ({e.strerror}); check its permissions") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable {what} ({type(e).__name__}); "
                              "was it written by this project?") from None
    for entry in entries:
        where = f"{path}: entry {entry.filename!r}"
        if entry.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(f"{where} uses compression method {entry.compress_type}, which {what.split()[0]} never "
                                  "writes; the file is refused unopened")
        limit = MAX_JSON_ENTRY if entry.filename.endswith(".json") else MAX_ENTRY
        if entry.file_size > limit:
            raise CheckpointError(f"{where} would inflate to {entry.file_size:,} bytes, more than the "
                                  f"{limit:,} allowed; the file is refused unopened")
        if entry.file_size > RATIO_FLOOR and entry.file_size > MAX_RATIO * max(entry.compress_size, 1):
            raise CheckpointError(f"{where} would inflate {entry.compress_size:,} stored bytes to "
                                  f"{entry.file_size:,} (more than {MAX_RATIO} times); the file is refused unopened")
