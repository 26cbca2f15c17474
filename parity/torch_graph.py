"""Read a torch model's forward as a graph: trace it, name its nodes, find its parameters.

Both routes of the torch -> Keras converter read the same thing, a
``torch.export.ExportedProgram``:

* a live ``nn.Module`` is traced here with ``torch.export.export(module.eval(), (x,))``;
* a ``.pt2`` file is what ``torch.export.save`` wrote from such a program.

Why ``torch.export`` rather than ``torch.fx.symbolic_trace``: one tracer serves live
modules and ``.pt2`` files alike; it sees through Python control flow and module
wrappers down to ATen operators, so an ``nn.LSTM`` arrives as one ``aten.lstm.input``
node whatever class the user wrapped it in; and every node carries
``nn_module_stack`` (which module ran it) and ``stack_trace`` (which line of the
user's source), so a refusal can name both.

The trace is static (no dynamic dimensions), as a ``.pt2`` saved without
``dynamic_shapes`` is: sizes in the graph are the example's.  The converter tracks
which axis of every tensor holds the batch (:mod:`parity.keras_from_graph`), so a
size that equals the batch is never taken for a constant of the model.
"""
from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np

from common.errors import ConversionError

__all__ = ["Graph", "trace_module", "read_exported", "describe_node", "source_line", "module_path"]


@dataclasses.dataclass
class Graph:
    """An exported program with what the converter needs to read it."""
    program: object                 # torch.export.ExportedProgram
    values: dict                    # placeholder name -> torch.Tensor (parameters, buffers, constants)
    parameter_names: dict           # placeholder name -> the parameter's name in the module ("rnn.weight_ih_l0")
    user_input: str                 # the placeholder name of the one user input
    root_name: str                  # the user's class name, shown for nodes of the root module

    @property
    def nodes(self):
        return self.program.graph.nodes

    def unused_parameters(self) -> list[str]:
        """Parameters (not buffers) that no node reads: the forward never uses them."""
        return [self.parameter_names[n.name] for n in self.nodes
                if n.op == "placeholder" and n.name in self.parameter_names and not n.users]


def trace_module(module, x):
    """``torch.export`` of ``module`` (in eval mode) on the example ``x``; one-line ConversionError on failure."""
    import torch
    with warnings.catch_warnings():
        # torch warns that nn.RNN's _flat_weights were "assigned during export": harmless here
        warnings.simplefilter("ignore")
        try:
            return torch.export.export(module.eval(), (x,), strict=False)
        except Exception as e:  # torch raises many types here; the user needs one line
            check = _failing_assert(e, module)
            if check is not None:
                raise ConversionError(
                    f"torch.export could not trace {type(module).__name__}'s forward: its data-dependent check "
                    f"`{check} needs tensor values that a trace does not have ({type(e).__name__}); export the "
                    "forward without that assert (delete it, or keep it in a test) and convert again") from None
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise ConversionError(f"torch.export could not trace {type(module).__name__}'s forward on example_x "
                                  f"({type(e).__name__}: {first[:200]}); convert maps forwards that torch.export "
                                  "can trace") from None


def _failing_assert(error, module) -> str | None:
    """``assert torch.equal(...)` (file.py:51)`` when the trace stopped on an ``assert`` of the
    module's own source (a check on tensor values, which torch.export cannot decide), else None."""
    import inspect
    import traceback
    try:
        source = inspect.getsourcefile(type(module))
    except (TypeError, OSError):
        return None
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == source]
    if not frames or not (frames[-1].line or "").lstrip().startswith("assert"):
        return None
    frame = frames[-1]
    return f"{frame.line.strip()}` ({frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})"


def read_exported(program, root_name: str | None = None) -> Graph:
    """The :class:`Graph` of an ExportedProgram: its parameters by placeholder, its one user input."""
    from torch.export.graph_signature import InputKind
    values, names, users = {}, {}, []
    for spec in program.graph_signature.input_specs:
        name = spec.arg.name
        if spec.kind == InputKind.USER_INPUT:
            users.append(name)
            continue
        target = spec.target
        if target in program.state_dict:
            values[name] = program.state_dict[target]
        elif target in program.constants:
            values[name] = program.constants[target]
        else:
            continue
        if spec.kind == InputKind.PARAMETER:
            names[name] = target
    if len(users) != 1:
        raise ConversionError(f"the exported program takes {len(users)} inputs; convert maps models with one "
                              "input, the (batch, time[, features]) sequences")
    if root_name is None:
        root_name = _root_class(program)
    return Graph(program, values, names, users[0], root_name)


def _root_class(program) -> str:
    for node in program.graph.nodes:
        stack = node.meta.get("nn_module_stack") or {}
        for path, cls in stack.values():
            if path == "":
                return str(cls).rsplit(".", 1)[-1]
    return "model"


def module_path(node, root_name: str = "model") -> str:
    """The module that ran ``node`` (``"rnn"``, ``"head.0"``), or the root's class name."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return root_name
    path, _ = list(stack.values())[-1]
    path = re.sub(r"L\['self'\]\.?|\bself\.", "", str(path))  # strict-mode paths carry the frame's names
    return path or root_name


_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def source_line(node) -> str | None:
    """``"my_model.py:41: out.cumsum(1)"``: the user's line that made ``node``, or None.

    The last frame of the stack outside torch itself: a node made inside ``nn.LSTM``
    is reported at the line of the user's forward that called the module.
    """
    trace = node.meta.get("stack_trace")
    if not trace:
        return None
    lines = trace.rstrip().splitlines()
    found = None
    for i, line in enumerate(lines):
        m = _FRAME.search(line)
        if m and not re.search(r"[/\\]torch[/\\]", m.group(1)):
            code = lines[i + 1].strip() if i + 1 < len(lines) and not _FRAME.search(lines[i + 1]) else ""
            file = m.group(1).replace("\\", "/").rsplit("/", 1)[-1]
            found = f"{file}:{m.group(2)}" + (f": {code}" if code else "")
    return found


def op_name(node) -> str:
    """``"aten.lstm.input"`` or ``"getitem"``."""
    target = node.target
    if not callable(target) or hasattr(target, "_schema"):  # ATen operators print as "aten.lstm.input"
        return str(target)
    return getattr(target, "__name__", str(target))  # operator.getitem


def describe_node(node, root_name: str = "model") -> str:
    """``"aten.cumsum.default (pool, my_model.py:41: out.cumsum(1))"``; an output of a tuple by its index."""
    name = op_name(node)
    if name == "getitem" and hasattr(node.args[0], "target"):  # (out, h_n) = lstm(...): "aten.lstm.input[0]"
        name = f"{op_name(node.args[0])}[{node.args[1]}]"
    where = [module_path(node, root_name)]
    line = source_line(node)
    if line:
        where.append(line)
    return f"{name} ({', '.join(where)})"


def tensor_shape(node) -> tuple[int, ...] | None:
    """The torch shape of ``node``'s output as ints (a symbolic size by its example value)."""
    val = node.meta.get("val")
    if val is None or not hasattr(val, "shape"):
        return None
    return tuple(_concrete(d) for d in val.shape)


def _concrete(d) -> int:
    try:
        return int(d)
    except Exception:  # an unbacked or symbolic size: its example value
        return int(d.node.hint)


def as_numpy(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()
