"""Reading a ``.pt2`` (``torch.export.save``) without running code from it.

A ``.pt2`` carries the model's forward as a graph of torch operators, which is why
``python -m parity convert model.pt2 model.keras`` needs no flags.  But ``torch.export.load``
(torch 2.13) is not a safe reader: its own docstring says never to load untrusted data,
and reading its code shows why.  It

* unpickles with ``torch.load(weights_only=False)`` every weight or constant marked
  ``use_pickle``, and falls back to it when the example inputs fail ``weights_only=True``;
* unpickles ``opaque_obj_*`` constants with ``pickle.loads`` and ``custom_obj_*`` ones
  with torch's own pickler;
* loads compiled AOTInductor libraries (native code) from ``data/aotinductor/``;
* parses each symbolic size (``expr_str``) with ``sympy.sympify``, which calls ``eval``;
* keeps ``guards_code``, Python source that ``ExportedProgram.module()`` compiles and runs;
* reads an older zip layout (torch 2.7's) through the same pickles.

So :func:`load_exported` checks the archive first and loads only what holds nothing but
tensors: the entries must be the ones ``torch.export.save`` writes for one plain program
(every other name is refused), no weight or constant may be pickled or an object, every
``expr_str`` must be a sympy expression built from an allowlist of names (``Symbol('s77',
positive=True, integer=True)``, ``Mul(Integer(8), ...)``), ``guards_code`` must be empty,
every operator must be a torch operator (``torch.ops.*``, ``_operator.getitem``), and the
example inputs must load with ``torch.load(weights_only=True)``.  Then ``torch.export.load``
runs with ``torch.load`` held to ``weights_only=True`` and ``pickle.loads`` refused, should
anything have slipped past.  The weights are then checked as a state dict's are
(:func:`parity.model_files.check_tensors`).
"""
from __future__ import annotations

import contextlib
import io
import json
import pickle
import re
import warnings
import zipfile
from pathlib import Path

from common.errors import CheckpointError, ConversionError

__all__ = ["load_exported", "check_archive"]

REFUSED = "the file is refused unopened, since convert never runs code from a file"
RESAVE = "export the model again with torch.export.save(torch.export.export(model, (x,)), path)"
# What torch.export.save writes for one program named "model", below the archive's root folder.
_ALLOWED_ENTRY = re.compile(r"^(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id|"
                            r"models/model\.json|data/sample_inputs/model\.pt|"
                            r"data/weights/model_weights_config\.json|data/weights/weight_\d+|"
                            r"data/constants/model_constants_config\.json|data/constants/tensor_\d+)$")
# A symbolic size, as torch writes it (sympy's srepr): names of sympy classes, quoted symbol names,
# keyword flags, numbers and arithmetic.  No attribute access, no subscripts, no other strings.
_EXPR_TOKEN = re.compile(r"\s+|\d+(?:\.\d+)?(?:e-?\d+)?|'[a-z]+\d+'|[A-Za-z_]\w*|==|!=|<=|>=|[-+*/%(),=<>]")
_SYMPY_NAMES = frozenset({
    "Symbol", "Integer", "Rational", "Float", "Mul", "Add", "Pow", "Mod", "Max", "Min", "Abs", "Eq", "Ne", "Lt",
    "Le", "Gt", "Ge", "StrictLessThan", "StrictGreaterThan", "LessThan", "GreaterThan", "Equality", "Unequality",
    "And", "Or", "Not", "True", "False", "BooleanTrue", "BooleanFalse", "Infinity", "NegativeInfinity", "oo",
    "IntInfinity", "NegativeIntInfinity", "FloorDiv", "CeilDiv", "CleanDiv", "ModularIndexing", "PythonMod",
    "FloatTrueDiv", "IntTrueDiv", "PowByNatural", "FloatPow", "ToFloat", "TruncToInt", "TruncToFloat",
    "RoundToInt", "RoundDecimal", "CeilToInt", "FloorToInt", "Where", "Identity", "LShift", "RShift",
    "IsNonOverlappingAndDenseIndicator"})
_KEYWORDS = frozenset({"positive", "negative", "nonnegative", "nonpositive", "integer", "real", "finite",
                       "commutative", "zero", "nonzero", "even", "odd", "extended_real"})


def _safe_expression(text: str) -> bool:
    """Whether ``text`` is a sympy expression made only of allowed names (no calls into Python)."""
    if not isinstance(text, str) or len(text) > 10_000 or "__" in text:
        return False
    position, tokens = 0, []
    while position < len(text):
        found = _EXPR_TOKEN.match(text, position)
        if found is None:
            return False
        if not found.group().isspace():
            tokens.append(found.group())
        position = found.end()
    for i, token in enumerate(tokens):
        if re.fullmatch(r"[A-Za-z_]\w*", token) and token not in _SYMPY_NAMES:
            # a keyword flag, e.g. positive=True: a name followed by a single "=", never called
            if token not in _KEYWORDS or i + 1 >= len(tokens) or tokens[i + 1] != "=":
                return False
    return True


def _walk(value, key=None):
    """Every (key, value) pair of a JSON document, depth first."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _walk(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v, key)


def _read_json(archive: zipfile.ZipFile, name: str, path: Path):
    try:
        return json.loads(archive.read(name))
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{path}: entry {name!r} is not valid JSON; the file is damaged: {RESAVE}") from None


def check_archive(path: Path) -> None:
    """Refuse a ``.pt2`` whose loading could run code (see the module docstring), before any of it is loaded."""
    import torch
    path = Path(path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        roots = {n.split("/", 1)[0] for n in names}
        if len(roots) != 1 or any("/" not in n for n in names):
            raise CheckpointError(f"{path} is not laid out as torch.export.save writes a .pt2 (one root folder); "
                                  f"{REFUSED}: {RESAVE}")
        root = roots.pop() + "/"
        inner = {n[len(root):]: n for n in names if not n.endswith("/")}
        for name in inner:
            if not _ALLOWED_ENTRY.match(name):
                what = ("compiled native code (AOTInductor)" if name.startswith("data/aotinductor/")
                        else "a pickled object" if "obj_" in name or name.endswith(".pt") else "an entry")
                raise CheckpointError(f"{path}: entry {name!r} is {what} that a plain exported program does not "
                                      f"hold; {REFUSED}: {RESAVE}")
        for needed in ("archive_format", "archive_version", "models/model.json", "data/sample_inputs/model.pt",
                       "data/weights/model_weights_config.json", "data/constants/model_constants_config.json"):
            if needed not in inner:
                raise CheckpointError(f"{path} lacks {needed!r}: it was not written by torch.export.save of torch "
                                      f"2.13 (an older layout is read through pickles); {REFUSED}: {RESAVE}")
        if archive.read(inner["archive_format"]).strip() != b"pt2":
            raise CheckpointError(f"{path} does not say it is a pt2 archive; {REFUSED}: {RESAVE}")
        for config_name in ("data/weights/model_weights_config.json", "data/constants/model_constants_config.json"):
            config = _read_json(archive, inner[config_name], path)
            entries = config.get("config") if isinstance(config, dict) else None
            if not isinstance(entries, dict):
                raise CheckpointError(f"{path}: {config_name!r} has no 'config' table; {RESAVE}")
            for fqn, payload in entries.items():
                if not isinstance(payload, dict) or payload.get("use_pickle") is not False \
                        or not str(payload.get("path_name", "")).startswith(("weight_", "tensor_")):
                    raise CheckpointError(f"{path}: {fqn!r} is stored as a pickled object, not as raw tensor "
                                          f"bytes; {REFUSED}: save plain float32 tensors ({RESAVE})")
        program = _read_json(archive, inner["models/model.json"], path)
        if not isinstance(program, dict) or not isinstance(program.get("graph_module"), dict):
            raise CheckpointError(f"{path}: models/model.json holds no graph; {RESAVE}")
        if program.get("guards_code"):
            raise CheckpointError(f"{path} carries guard code (Python source that loading would compile and run); "
                                  f"{REFUSED}: {RESAVE}")
        for key, value in _walk(program):
            if key == "expr_str" and not _safe_expression(value):
                raise CheckpointError(f"{path}: the symbolic size {str(value)[:60]!r} is not a plain sympy "
                                      f"expression (torch would eval it); {REFUSED}: {RESAVE}")
            if key == "custom_obj_values" and value:
                raise CheckpointError(f"{path} holds script objects (custom classes), which load through pickle; "
                                      f"{REFUSED}: {RESAVE}")
        graph = program["graph_module"].get("graph", {})
        for node in graph.get("nodes", []) if isinstance(graph, dict) else []:
            target = node.get("target") if isinstance(node, dict) else None
            if not isinstance(target, str) or not (target.startswith("torch.ops.") or target == "_operator.getitem"):
                raise CheckpointError(f"{path}: node target {str(target)[:60]!r} is not a torch operator; {REFUSED}: "
                                      f"{RESAVE}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.load(io.BytesIO(archive.read(inner["data/sample_inputs/model.pt"])), weights_only=True)
        except Exception as e:
            raise CheckpointError(f"{path}: its example inputs are not plain tensors ({type(e).__name__}), and "
                                  f"torch.export.load would unpickle them without weights_only; {REFUSED}: "
                                  f"{RESAVE}") from None


@contextlib.contextmanager
def _tensors_only():
    """While torch.export.load runs: torch.load reads tensors only, and pickle.loads is refused."""
    import torch
    from torch.export.pt2_archive import _package
    real_load = torch.load

    def load(*args, **kwargs):
        kwargs["weights_only"] = True
        return real_load(*args, **kwargs)

    def refuse(*args, **kwargs):
        raise pickle.UnpicklingError("convert refuses pickled objects in a .pt2")

    saved = (torch.load, _package.pickle)
    torch.load = load
    _package.pickle = type("NoPickle", (), {"loads": staticmethod(refuse)})
    try:
        yield
    finally:
        torch.load, _package.pickle = saved


def load_exported(path: Path):
    """The ``ExportedProgram`` in ``path``, loaded as the module docstring describes; one line otherwise."""
    import torch
    from parity.model_files import check_tensors
    path = Path(path)
    check_archive(path)
    try:
        with warnings.catch_warnings(), _tensors_only():
            warnings.simplefilter("ignore")
            program = torch.export.load(path)
    except Exception as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise CheckpointError(f"{path} is not a readable exported program ({type(e).__name__}: {first}); "
                              f"{RESAVE}") from None
    tensors = dict(program.state_dict)
    tensors.update({f"constant {k}": v for k, v in program.constants.items() if isinstance(v, torch.Tensor)})
    # Only floating tensors must be float32: an integer one (an index the forward built, BatchNorm's
    # num_batches_tracked) is not a precision problem; the graph's operators decide whether it maps.
    check_tensors({k: v for k, v in tensors.items() if v.is_floating_point() or v.is_complex()}, path)
    for key, value in tensors.items():
        if not (value.is_floating_point() or value.is_complex()) and (value.layout != torch.strided
                                                                      or value.is_quantized or value.is_meta):
            raise ConversionError(f"tensor {key!r} in {path} is not a plain dense tensor; {RESAVE}")
    if program.example_inputs is None:
        raise ConversionError(f"{path} holds no example inputs, and the check needs them: {RESAVE}")
    return program
