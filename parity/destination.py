"""DST of ``python -m parity convert``: checked before anything is read, and written so that no file is lost.

* :func:`check_destination` refuses, in one line, a DST that would lose a file or cannot be
  written: SRC itself (by any path, a symbolic link or a hard link), an existing file or
  symbolic link (a dangling one included) unless ``overwrite``, a folder, a symbolic-link
  loop, and a DST whose folder does not exist or is a file.
* :func:`write_destination` writes the finished file under a temporary name beside DST,
  syncs it, and only then installs it.  Without ``overwrite`` it installs with
  ``os.link(tmp, dst)``, which fails if DST exists: a file that appeared at DST after the
  check (another conversion racing for it, or anything else) is kept, and this conversion
  says so in one line.  With ``overwrite`` it installs with ``os.replace``.  Either way
  DST is never half-written, and the temporary file is removed.
* A full disk is one line that names DST.
"""
from __future__ import annotations

import errno
import os
import secrets
import shlex
import stat
from collections.abc import Callable
from pathlib import Path

from common.errors import CheckpointError, ConversionError, OutputError

__all__ = ["target_kind", "check_destination", "write_destination", "about_to_install"]

TORCH_SUFFIXES = (".pt", ".pth")
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NO_HARD_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV)


def target_kind(dst: Path) -> str:
    """``"keras"`` or ``"torch"`` from DST's suffix; ConversionError for any other suffix."""
    dst = Path(dst)
    if dst.suffix == ".keras":
        return "keras"
    if dst.suffix in TORCH_SUFFIXES:
        return "torch"
    shown = f"suffix {dst.suffix!r}" if dst.suffix else "no suffix"
    raise ConversionError(f"DST {dst} has {shown}; name it *.keras (a Keras model) or *.pt (a PyTorch state dict)")


def _stat(path: Path, what: str) -> os.stat_result | None:
    """``os.stat`` following links; None when nothing is there (or a link leads nowhere)."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ConversionError(f"{what} {path} is a symbolic link that leads back to itself (a loop); remove it "
                                  f"or choose another {what}") from None
        raise CheckpointError(f"cannot reach {what} {path} ({e.strerror}); check its permissions") from None


def _check_folder(dst: Path) -> None:
    """DST's folder must exist and be a folder; say which ancestor is in the way, and how to make it."""
    parent = dst.parent
    if _stat(parent, "the folder of DST") is not None and parent.is_dir():
        return
    ancestor = parent
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    found = _stat(ancestor, "the folder of DST")
    if found is not None and not stat.S_ISDIR(found.st_mode):
        if ancestor == parent:
            raise ConversionError(f"the folder of DST, {parent}, is a file; choose another DST")
        raise ConversionError(f"the folder of DST, {parent}, cannot be created: {ancestor} is a file; choose "
                              "another DST")
    if found is None and os.path.islink(ancestor):
        raise ConversionError(f"the folder of DST, {parent}, is a symbolic link to {os.readlink(ancestor)}, which "
                              "does not exist; choose another DST")
    raise ConversionError(f"the folder of DST, {parent}, does not exist; create it with "
                          f"`mkdir -p {shlex.quote(str(parent))}`, or choose another DST")


def check_destination(src, dst, overwrite: bool = False) -> None:
    """Refuse a DST that would lose a file or cannot be written (see the module docstring)."""
    src, dst = Path(src), Path(dst)
    target_kind(dst)
    found = _stat(dst, "DST")
    same = os.path.realpath(src) == os.path.realpath(dst)
    if not same and found is not None:
        try:  # a hard link, or the same file by another path
            source = os.stat(src)
            same = (source.st_dev, source.st_ino) == (found.st_dev, found.st_ino)
        except OSError:
            pass
    if same:
        raise ConversionError(f"DST {dst} is SRC {src} itself; converting a file onto itself would replace your "
                              "model: choose another DST")
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise CheckpointError(f"cannot write {dst} (Is a directory); choose another DST")
    if found is None and os.path.islink(dst) and not overwrite:
        raise ConversionError(f"DST {dst} already exists (a symbolic link to {os.readlink(dst)}, which does not "
                              "exist); pass --overwrite to replace the link, or choose another DST")
    if found is not None and not overwrite:
        raise ConversionError(f"DST {dst} already exists; pass --overwrite to replace it, or choose another DST")
    _check_folder(dst)


def about_to_install(dst: Path) -> None:
    """Called between the last check and the install: the tests put a file at DST here."""


def disk_full(dst: Path, e: OSError) -> OutputError:
    return OutputError(f"no space left on the device to write {dst} ({os.strerror(e.errno)}); free some space or "
                       "choose another DST")


def write_destination(dst: Path, write: Callable[[Path], None], overwrite: bool = False) -> Path:
    """``write(tmp)`` a temporary file beside ``dst``, sync it, then install it (see the module docstring)."""
    dst = Path(dst)
    # keeps the suffix: Keras checks it
    tmp = dst.with_name(f".{dst.stem}.tmp{os.getpid()}-{secrets.token_hex(4)}{dst.suffix}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        about_to_install(dst)
        if overwrite:
            os.replace(tmp, dst)
        else:
            _link(tmp, dst)
    except OSError as e:
        if e.errno in DISK_FULL:
            raise disk_full(dst, e) from None
        raise CheckpointError(f"cannot write {dst} ({e.strerror or type(e).__name__}); choose another DST") from None
    finally:
        tmp.unlink(missing_ok=True)
    return dst


def _link(tmp: Path, dst: Path) -> None:
    """Install ``tmp`` as ``dst`` only if nothing is at ``dst`` now (not even a dangling link)."""
    try:
        os.link(tmp, dst)
        return
    except FileExistsError:
        raise ConversionError(f"DST {dst} appeared while converting (another conversion or program wrote it); it "
                              "was kept as it is: pass --overwrite to replace it, or choose another DST") from None
    except OSError as e:
        if e.errno not in NO_HARD_LINKS:
            raise
    # A file system without hard links: claim the name exclusively, then replace the empty claim.
    try:
        os.close(os.open(dst, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        raise ConversionError(f"DST {dst} appeared while converting (another conversion or program wrote it); it "
                              "was kept as it is: pass --overwrite to replace it, or choose another DST") from None
    os.replace(tmp, dst)
