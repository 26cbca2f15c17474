"""``python -m parity convert SRC DST``: the command's flow, from reading SRC to the self-check and the write.

SRC is one of (told apart by its bytes, :func:`parity.model_files.sniff`):

* a ``.pt2``, ``torch.export.save(torch.export.export(model, (x,)), path)``: it carries the
  forward, so it converts like ``parity.convert_module`` (``parity.from_torch.convert_exported``),
  checked against that forward on the program's own example inputs; read without running
  code from it (:mod:`parity.exported_files`).  DST is a ``.keras`` file.
* a ``.keras`` file, loaded with ``safe_mode=True``; its graph must be the ``StackedRNN`` chain
  (:mod:`parity.keras_stack`).  DST is a ``.pt``.
* a PyTorch state dict (any module names), this project's ``model.pt`` or a checkpoint
  ``{"model": state dict, ...}``, or a ``.pt`` this command wrote, read with
  ``torch.load(weights_only=True)``.  A state dict cannot show the forward, so it converts only
  as the ``StackedRNN`` template with every choice that changes the outputs settled by
  ``--readout`` and ``--nonlinearity`` or recorded in the file (:mod:`parity.state_dict`).

DST ends in ``.keras`` (``keras.models.load_model(DST, safe_mode=True)``) or ``.pt``/``.pth``
(``{"model": StackedRNN state dict, "architecture": StackedRNN's arguments, "assumed": []}``).
DST is written to a temporary file, read back as a user would, and checked: its logits and
SRC's must agree within :func:`parity.check.allowance` (float32 rounding, relative to the
logits' scale with an absolute floor), and every message states that allowance.  Only then is
it installed, without replacing anything that appeared at DST meanwhile unless ``overwrite``
(:mod:`parity.destination`).
"""
from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from common.config import READOUTS, check_choice
from common.errors import ConversionError, DataError
from parity.check import describe_allowance, describe_difference, max_abs_diff, within
from parity.destination import check_destination, target_kind, write_destination
from parity.keras_stack import infer_from_keras
from parity.model_files import load_torch, sniff, state_dict_of
from parity.state_dict import Architecture, infer_from_state_dict

__all__ = ["ConvertResult", "convert_file", "read_source", "self_check_inputs", "logits", "CHECK_EXAMPLES"]

CHECK_EXAMPLES = 1000   # test images (or random sequences) the self-check runs


@dataclasses.dataclass
class ConvertResult:
    src: Path
    dst: Path
    architecture: Architecture | None   # None for a .pt2, which is converted from its graph, not a template
    max_abs_diff: float     # largest |Δ logits| between the SRC model and the written DST model
    allowance: float        # the largest accepted (parity.check.allowance of SRC's logits)
    check_input: str        # what the self-check ran on
    lines: list[str]        # everything that was printed


@dataclasses.dataclass
class Source:
    """What SRC holds: a StackedRNN with its weights, the loaded Keras model, or an exported program."""
    kind: str                 # "torch" | "keras" | "pt2"
    description: str
    architecture: Architecture | None
    torch_model: object       # torch_version.model.StackedRNN holding SRC's weights (None for a .pt2)
    keras_model: object       # the loaded Keras model, or None
    layers: list[str]         # one line per layer: source -> StackedRNN name
    assumptions: list[str]
    notes: list[str]
    timesteps: int | None     # declared sequence length (Keras), None when unknown
    program: object = None    # the torch.export.ExportedProgram of a .pt2


def _keras_ready() -> None:
    """Import TensorFlow first with stderr silenced (Keras imports it on every backend)."""
    from common.quiet import import_tensorflow_quietly
    import_tensorflow_quietly()


def read_source(src: Path, nonlinearity: str | None = None, readout: str | None = None) -> Source:
    """Read SRC; raise a one-line UserError when it cannot be converted without a guess."""
    from torch_version.model import StackedRNN
    src = Path(src)
    kind = sniff(src)
    if kind == "pt2":
        given = [f"--{k} {v}" for k, v in (("readout", readout), ("nonlinearity", nonlinearity)) if v]
        if given:
            raise ConversionError(f"{' and '.join(given)}: {src} is an exported program, which carries its forward; "
                                  "leave the flag out")
        from parity.exported_files import load_exported
        program = load_exported(src)
        args, _ = program.example_inputs
        shapes = ", ".join(str(tuple(a.shape)) for a in args if hasattr(a, "shape"))
        description = (f"an exported PyTorch program (torch.export), {len(program.state_dict)} weights, example "
                       f"input{'s' if len(args) > 1 else ''} of shape {shapes}")
        return Source("pt2", description, None, None, None, [], [], [], None, program)
    if kind == "torch":
        state, recorded, description = state_dict_of(src, load_torch(src))
        arch, renamed, layers, assumptions = infer_from_state_dict(state, nonlinearity, recorded, where=str(src),
                                                                   readout=readout)
        model = StackedRNN(**arch.kwargs())
        model.load_state_dict(renamed)
        return Source("torch", description, arch, model, None, layers, assumptions, [], None)
    _keras_ready()
    from keras_version.train import load_model
    keras_model = load_model(src)
    if readout is not None:
        check_choice("readout", readout, READOUTS)
    arch, layers, notes = infer_from_keras(keras_model, nonlinearity, where=str(src), readout=readout)
    for w in keras_model.weights:
        values = np.asarray(w.numpy())
        if not np.isfinite(values).all():
            raise ConversionError(f"weight {w.path!r} in {src} holds {int(values.size - np.isfinite(values).sum())} "
                                  "non-finite values (nan or inf); a model with such weights computes no usable "
                                  "logits, so it is refused: convert the last checkpoint whose weights were finite")
    from parity.weights import keras_to_torch
    model = StackedRNN(**arch.kwargs())
    keras_to_torch(keras_model, model)
    description = (f"a Keras model '{keras_model.name}' ({type(keras_model).__name__}, "
                   f"{len(keras_model.weights)} weights")
    description += ", optimizer state: not converted)" if getattr(keras_model, "optimizer", None) else ")"
    timesteps = keras_model.inputs[0].shape[1]
    return Source("keras", description, arch, model, keras_model, layers, [], notes, timesteps)


# --- The self-check ---------------------------------------------------------------------------------

def self_check_inputs(input_size: int, timesteps: int | None = None, n: int = CHECK_EXAMPLES) -> tuple[np.ndarray, str]:
    """The first ``n`` Fashion-MNIST test images (preprocessed as for training), or ``n`` seeded random
    sequences when the data is not on this machine or the model does not read 28 x 28 images."""
    from common.data import FILES, find_local_dir, preprocess, read_idx
    why = f"the model reads {input_size} features per step, not 28"
    if input_size == 28 and timesteps in (None, 28):
        try:
            folder = find_local_dir()
            if folder is not None:
                images = read_idx(folder / FILES["test"][0], 3)[:n]
                return preprocess(images), f"the first {n} Fashion-MNIST test images ({folder})"
            why = "Fashion-MNIST is not on this machine"
        except DataError as e:
            why = f"Fashion-MNIST could not be read: {e}"
    elif input_size == 28:
        why = f"the model declares {timesteps} time steps, not 28"
    steps = timesteps or 28
    x = np.random.default_rng(0).uniform(-1, 1, (n, steps, input_size)).astype(np.float32)
    return x, f"{n} random sequences of shape ({steps}, {input_size}), seed 0 ({why})"


def logits(model, x: np.ndarray) -> np.ndarray:
    """The logits of a torch module (eval mode, no gradients) or a Keras model, as float32 NumPy."""
    keras = sys.modules.get("keras")  # a Keras model on the torch backend is an nn.Module too: ask Keras first
    if keras is None or not isinstance(model, keras.Model):
        import torch
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
        finally:
            model.train(was_training)
    return np.asarray(keras.ops.convert_to_numpy(model.predict(x, batch_size=len(x), verbose=0)))


def _program_logits(program, args) -> np.ndarray:
    """What the exported forward returns on its example inputs (one tensor of logits)."""
    import torch
    with torch.no_grad():
        out = program.module()(*args)
    if not isinstance(out, torch.Tensor):
        raise ConversionError(f"the exported program returns a {type(out).__name__}, not one tensor of logits; "
                              "export a forward that returns the logits")
    return out.detach().cpu().numpy()


# --- SRC -> DST -----------------------------------------------------------------------------------

def convert_file(src, dst, nonlinearity: str | None = None, out: Callable[[str], None] = print, *,
                 readout: str | None = None, overwrite: bool = False) -> ConvertResult:
    """Convert SRC to DST (see the module docstring), printing each step through ``out``.

    ``readout`` and ``nonlinearity`` settle, for a state dict, what its weights cannot show;
    SRC may record them.  DST must not be SRC, nor exist unless ``overwrite``, and its folder
    must exist.  DST is installed only after the model read back from it has passed the
    self-check, and never over a file that appeared meanwhile unless ``overwrite``; on any
    error DST is left as it was.  The Keras backend is whatever ``KERAS_BACKEND`` said when
    Keras was first imported.
    """
    src, dst = Path(src), Path(dst)
    target = target_kind(dst)
    check_destination(src, dst, overwrite)
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        out(line)

    source = read_source(src, nonlinearity, readout)
    if source.kind == "pt2" and target != "keras":
        raise ConversionError(f"{src} is an exported PyTorch program already; convert it to a .keras file")
    say(f"source: {src}: {source.description}")
    if source.kind == "pt2":
        return _convert_program(src, dst, source, say, lines, overwrite)
    arch = source.architecture
    say("layers, in the order of the file:")
    for line in source.layers:
        say(f"  {line}")
    for note in source.notes:
        say(f"  note: {note}")
    say(f"architecture: {arch}")
    for assumption in source.assumptions:
        say(f"assumed: {assumption}")

    x, what = self_check_inputs(arch.input_size, source.timesteps)
    reference = source.keras_model if source.kind == "keras" else source.torch_model
    expected = logits(reference, x)

    def write(tmp: Path) -> object:
        if target == "torch":
            import io
            import torch
            from torch_version.model import StackedRNN
            from torch_version.train import load_model
            buffer = io.BytesIO()  # serialised in memory: Python's file then reports a full disk as ENOSPC
            torch.save({"model": source.torch_model.state_dict(), "architecture": arch.kwargs(), "assumed": []},
                       buffer)
            tmp.write_bytes(buffer.getvalue())
            return load_model(tmp, StackedRNN(**arch.kwargs()))
        _keras_ready()
        from keras_version.model import build_model
        from keras_version.train import load_model
        from parity.weights import torch_to_keras
        model = build_model(**arch.kwargs(), timesteps=source.timesteps)
        torch_to_keras(source.torch_model, model)
        model.save(tmp)
        return load_model(tmp)

    return _write_checked(src, dst, write, x, expected, what, _backend_note(source.kind, target), say, lines,
                          overwrite, arch, target)


def _convert_program(src: Path, dst: Path, source: Source, say, lines: list[str], overwrite: bool) -> ConvertResult:
    """A .pt2: the Keras model read off its graph, checked against the program on its example inputs."""
    import warnings
    _keras_ready()
    from parity.from_torch import UnusedParameterWarning, convert_exported_batch_first
    program = source.program
    args, _ = program.example_inputs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnusedParameterWarning)
        # raises unless it matches the program on the example inputs
        model, batch_axis = convert_exported_batch_first(program)
    for warning in caught:  # a parameter the forward never reads is left out: said, not refused
        if issubclass(warning.category, UnusedParameterWarning):
            say(f"note: {warning.message}")
    x = np.asarray(args[0].detach().cpu().numpy())
    expected = _program_logits(program, args)
    what = f"the program's example inputs, shape {tuple(x.shape)}"
    # The Keras model is batch-first: a time-major program's (time, batch, ...) inputs are moved
    x = np.ascontiguousarray(np.moveaxis(x, batch_axis, 0))
    if batch_axis:
        what += f", batch axis {batch_axis} moved to the front"
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.int32)  # token ids: the Keras model's input is int32

    def write(tmp: Path) -> object:
        from keras_version.train import load_model
        model.save(tmp)
        return load_model(tmp)

    return _write_checked(src, dst, write, x, expected, what, _backend_note("pt2", "keras"), say, lines, overwrite,
                          None, "keras")


def _write_checked(src, dst, write, x, expected, what, note, say, lines, overwrite, arch, target) -> ConvertResult:
    """Write DST through a temporary file, check what reads back from it, and install it only if it passes."""
    measured: list[float] = []

    def write_and_check(tmp: Path) -> None:
        written = write(tmp)
        diff = max_abs_diff(logits(written, x), expected)
        measured.append(diff)
        shown = describe_difference(diff).removeprefix("differ by up to ") if np.isfinite(diff) else (
            "not comparable (a nan or infinite logit)" if np.isnan(diff) else "not comparable (different shapes)")
        say(f"self-check{note} on {what}: largest |Δ logits| = {shown} (allowed: {describe_allowance(expected)})")
        if not within(diff, expected):
            raise ConversionError(f"self-check failed: the logits of {src} and of the converted model "
                                  f"{describe_difference(diff)}, beyond {describe_allowance(expected)}; {dst} was "
                                  "not written")

    write_destination(dst, write_and_check, overwrite)
    if target == "keras":
        say(f"wrote {dst}: load it with keras.models.load_model(path, safe_mode=True)")
    else:
        say(f"wrote {dst}: {{'model': state dict, 'architecture': dict}}; load it with "
            f"StackedRNN(**architecture).load_state_dict(torch.load(path, weights_only=True)['model'])")
    from parity.check import allowance
    return ConvertResult(src, dst, arch, measured[0], allowance(expected), what, lines)


def _backend_note(source_kind: str, target: str) -> str:
    if "keras" not in (source_kind, target):
        return ""
    _keras_ready()  # TensorFlow first, quietly: Keras imports it on every backend
    import keras
    return f" (Keras on {keras.config.backend()})"
