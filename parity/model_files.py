"""Reading SRC safely: what kind of file it is, and its tensors, without running code from it.

``python -m parity convert`` reads three kinds of file, told apart by their bytes (all three
are zip archives): a ``.keras`` file (it holds ``config.json``), a ``.pt2`` program written by
``torch.export.save`` (it holds ``archive_format``: :mod:`parity.exported_files` reads it), and
anything else ``torch.save`` wrote (a state dict, or this project's ``{"model": ...}``
checkpoint).  Before anything is inflated, the zip's directory is checked (entries outside the
archive, sizes out of proportion); a torch file is then read with
``torch.load(weights_only=True)``, which unpickles tensors and plain containers only.

Every tensor read from SRC passes :func:`check_tensors`: dense, not quantized, not meta,
float32, finite, and at most ``MAX_MODEL_BYTES`` described in all (summed over the tensors,
``numel x itemsize`` whatever the strides, so a stride-0 ``expand()`` of a few bytes on disk
counts as the whole matrix it describes).
"""
from __future__ import annotations

import errno
import math
import os
import pickle
import re
import stat
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

from common.checkpoint import check_keras_archive
from common.errors import CheckpointError, ConversionError

__all__ = ["MAX_MODEL_BYTES", "TORCH_SUFFIXES", "HOW_TO_SAVE", "WHAT_SRC_IS", "sniff", "load_torch",
           "state_dict_of", "check_tensors", "stat_src"]

# What SRC's tensors may describe in all.  1 GiB is 268 million float32 weights, about 16 times an
# LSTM of 2048 units.
MAX_MODEL_BYTES = 1 << 30
TORCH_SUFFIXES = (".pt", ".pth")
HOW_TO_SAVE = "save one with torch.save(model.state_dict(), path)"
WHAT_SRC_IS = ("give a state dict saved with torch.save(model.state_dict(), path), this project's model.pt, "
               "a .pt2 saved with torch.export.save, or a .keras file")
FLOAT32_ADVICE = ("convert works in float32 (both sides compute in float32): cast with model.float() before "
                  "saving")


def stat_src(path: Path) -> os.stat_result:
    """``os.stat(path)``, its failures said in one line (a symlink loop, a missing file, no permission)."""
    try:
        return path.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise CheckpointError(f"{path} is a symbolic link that leads back to itself (a loop); point it at "
                                  "the model file") from None
        if e.errno == errno.ENOENT:
            if path.is_symlink():
                raise CheckpointError(f"{path} is a symbolic link to {os.readlink(path)}, which does not "
                                      "exist") from None
            raise CheckpointError(f"{path} does not exist") from None
        raise CheckpointError(f"cannot read {path} ({e.strerror}); check its permissions") from None


def sniff(path: Path) -> str:
    """``"keras"``, ``"pt2"`` or ``"torch"``, from the bytes, after the zip directory's checks."""
    path = Path(path)
    mode = stat_src(path).st_mode
    if stat.S_ISDIR(mode):
        raise CheckpointError(f"{path} is a folder; give the model file in it (e.g. {path / 'model.pt'})")
    if not stat.S_ISREG(mode):  # a FIFO would block the first read forever
        raise CheckpointError(f"{path} is not a regular file; {WHAT_SRC_IS}")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        is_zip = zipfile.is_zipfile(path)
    except OSError as e:
        raise CheckpointError(f"cannot read {path} ({e.strerror}); check its permissions") from None
    if is_zip:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        kind = ("keras" if "config.json" in names
                else "pt2" if any(n.split("/", 1)[-1] == "archive_format" for n in names) else "torch")
        outside = next((n for n in names if n.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", n)), None)
        if outside is not None:
            raise CheckpointError(f"{path}: entry {outside!r} names a path outside the archive, which neither Keras "
                                  "nor torch.save writes; the file is refused unopened")
        # entry sizes from the zip's directory, before anything is inflated
        check_keras_archive(path, {"keras": "Keras model", "pt2": "PyTorch program", "torch": "PyTorch file"}[kind])
        return kind
    if head.startswith(b"PK"):
        raise CheckpointError(f"{path} is a zip archive cut short (it has no central directory): the file is "
                              "truncated; copy or save it again")
    if path.suffix in (".keras", ".pt2"):
        raise CheckpointError(f"{path} is not a {path.suffix} file (a {path.suffix} file is a zip archive); "
                              f"{WHAT_SRC_IS}")
    return "torch"


def load_torch(path: Path):
    """``torch.load(path, weights_only=True)``: tensors and plain containers, never code."""
    import torch
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+)", str(e))
        if found is None:
            raise CheckpointError(f"{path} is not a readable PyTorch file (UnpicklingError); {WHAT_SRC_IS}") from None
        raise CheckpointError(
            f"{path} refers to the Python object {found.group(1)} (a whole pickled model?); it is refused because "
            "convert never runs code from a file (torch.load(weights_only=True)): save the weights with "
            "torch.save(model.state_dict(), path), or the model with torch.export.save (a .pt2)") from None
    except Exception as e:  # torch raises KeyError, RuntimeError, EOFError... for files it cannot read
        raise CheckpointError(f"{path} is not a readable PyTorch file ({type(e).__name__}); {WHAT_SRC_IS}") from None


def check_tensors(tensors: Mapping, path, *, sparse_advice: str = "") -> None:
    """Refuse tensors convert cannot map: sparse (any layout), quantized, meta, not float32, non-finite,
    or more than ``MAX_MODEL_BYTES`` described in all."""
    import torch
    described = 0
    for key, value in tensors.items():
        odd = ("sparse" if value.layout != torch.strided else "quantized" if value.is_quantized
               else "a meta tensor (a shape without values)" if value.is_meta else None)
        if odd is not None:
            raise ConversionError(f"tensor {key!r} in {path} is {odd}; convert maps the dense float32 weights of a "
                                  "trained model: save them with torch.save(model.state_dict(), path) after "
                                  "model.float() (and .to_dense() for a sparse tensor)")
        # what the tensor describes, whatever its strides, summed over the file: several tensors under
        # the limit each may still describe more than it together
        described += value.numel() * value.element_size()
        if described > MAX_MODEL_BYTES:
            raise ConversionError(f"tensor {key!r} in {path} describes {tuple(value.shape)} values, which brings the "
                                  f"file's tensors to {described:,} bytes, more than the {MAX_MODEL_BYTES:,} convert "
                                  "accepts; a stacked RNN of this project's kind is far smaller: is this the right "
                                  "file?")
        if value.dtype != torch.float32:
            raise ConversionError(f"tensor {key!r} in {path} is {str(value.dtype).removeprefix('torch.')}; "
                                  f"{FLOAT32_ADVICE}")
    for key, value in tensors.items():  # after the sizes: counting non-finite values copies the tensor
        bad = int(value.numel() - torch.isfinite(value).sum())
        if bad:
            kinds = sorted({"nan" if math.isnan(v) else "+inf" if v > 0 else "-inf"
                            for v in value[~torch.isfinite(value)].tolist()})
            raise ConversionError(f"tensor {key!r} in {path} holds {bad} non-finite value{'s' if bad > 1 else ''} "
                                  f"({', '.join(kinds)}); a model with such weights computes no usable logits, so "
                                  "it is refused: convert the last checkpoint whose weights were finite")


def state_dict_of(path: Path, loaded) -> tuple[dict, dict | None, str]:
    """``(state dict, recorded architecture or None, description)`` of what ``torch.load`` returned.

    ``recorded`` is what a ``.pt`` written by convert stores (``{"architecture": ...}``), with
    ``recorded["assumed"]`` listing what its writer had assumed rather than known (an older
    convert recorded its guesses as if they were facts); such values settle nothing.
    """
    import torch
    recorded = None
    if isinstance(loaded, Mapping) and isinstance(loaded.get("model"), Mapping):
        state, recorded = loaded["model"], loaded.get("architecture")
        others = [str(k) for k in loaded if k not in ("model", "architecture", "assumed")]
        kind = "a checkpoint {'model': state dict" + "".join(f", {str(k)!r}: ..." for k in loaded
                                                             if k not in ("model", "assumed")) + "}"
        if others:
            kind += f" ({', '.join(others)}: not converted)"
    elif isinstance(loaded, Mapping):
        state, kind = loaded, "a PyTorch state dict"
    else:
        raise CheckpointError(f"{path} holds a {type(loaded).__name__}, not a state dict; {HOW_TO_SAVE}")
    if not state:
        raise CheckpointError(f"{path} holds an empty state dict; {HOW_TO_SAVE}")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            what = f"is not a tensor ({type(value).__name__})" if isinstance(key, str) else "is not named by a string"
            raise CheckpointError(f"{path}: entry {str(key)!r} {what}, so this is not a state dict; {HOW_TO_SAVE} "
                                  "(this project's checkpoints keep it under 'model')")
    check_tensors(state, path)
    if recorded is not None and not isinstance(recorded, Mapping):
        raise CheckpointError(f"{path}: its 'architecture' entry is a {type(recorded).__name__}, not a dict")
    if recorded is not None:
        recorded = dict(recorded)
        stated = loaded.get("assumed")
        if isinstance(stated, list):  # written by this convert: it lists what it assumed (nothing, now)
            recorded["assumed"] = list(stated)
        elif "readout" not in recorded:
            # written by the first convert, which recorded its assumptions (tanh, h_n) as if they were facts
            recorded["assumed"] = ["nonlinearity", "readout"]
        else:
            # written by the second, which asked for nn.RNN's nonlinearity and a bidirectional readout but
            # assumed a unidirectional stack's forward read the last step
            recorded["assumed"] = [] if recorded.get("bidirectional") else ["readout"]
    return dict(state), recorded, f"{kind}, {len(state)} tensors"
