"""Execute the guide's pages: every code block of a page, in order, and check what each one prints.

    KERAS_BACKEND=jax python -m guide.runner guide/en/topics/stacking.md [PAGE ...]

Conventions of the pages (``guide/en/**.md``, ``guide/es/**.md``):

* A block fenced as ```` ```python ```` is executed, wherever it stands: in a
  PyTorch | Keras tab (``/// tab | ...``), in a folded solution (``/// details``)
  or in the open.  All blocks of one page run in order in one namespace, in a fresh
  process of their own: a page never uses the names of another page, and its first
  block is a short setup block.
* A block fenced as ```` ```python not-executed ```` is shown and compared
  between the languages, never run.
* A ```` ```text ```` block that follows a python block, with only blank lines in
  between, is that block's expected standard output; the runner compares it
  exactly (trailing spaces and trailing blank lines ignored), with one wildcard,
  as in doctest: ``...`` on a line of its own stands for any number of lines,
  none included, and ``...`` inside a line for any text within that line.  It
  covers what changes from run to run or from one backend to another (versions,
  timings, training logs); the block checks such values with ``assert``.

The two languages share their code: ``code_signature`` reduces a block to what must
be identical in English and Spanish (everything but comments and the text of string
literals), and the tests compare those signatures block by block, page by page.

Keras reads ``KERAS_BACKEND`` once per process, so one run covers one backend, and
each page runs in a child process.  On the torch backend the children are forked
from this process once it has imported NumPy, torch, Keras, Matplotlib and (when
installed) TensorFlow, which saves those imports on every page; on JAX and
TensorFlow, whose runtimes start threads that a fork would not copy, each page
gets a new interpreter (``--spawn`` asks for that on torch too; ``--fork`` forks there too,
which the tests use).  A page that sets ``KERAS_BACKEND`` itself (the JAX and torch-backend
training-loop pages) always gets a new interpreter.

Every page runs where a reader would run it: in a fresh, empty temporary folder (its current
directory), with this project's packages (``common``, ``torch_version``, ``keras_version``,
``parity``, ``guide``) out of reach: they are dropped from ``sys.modules`` and the repository
from ``sys.path``, and an import finder placed first on ``sys.meta_path`` answers an import of
any of them with ``ModuleNotFoundError`` and a line saying the page imports this project (the
editable install's own finder would otherwise still find them).  A page that shows a project
tool says so in its YAML front matter, ``requires_project: true``; it runs from the
repository's root folder with the project importable.

What the runner cannot run it refuses before the first page runs, with one line and exit 2:
a page that is missing, a folder, unreadable or not UTF-8, a page with an unclosed fence, a
page with no ``python`` block to execute (it would check nothing), and a ``--json`` path whose
folder is missing or which is itself a folder.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import io
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
import types
from pathlib import Path

FENCE = re.compile(r"^```(\S*)(.*)$")
TAB = re.compile(r"^/// tab \| (.+?)\s*$")


@dataclasses.dataclass
class Block:
    line: int                 # 1-based line of the opening fence
    info: str                 # the whole info string, e.g. "python" or "python not-executed"
    code: str
    expected: str | None = None  # the following ```text block, if any
    tab: str | None = None       # the label of the ``/// tab | ...`` container it stands in, if any

    @property
    def executed(self) -> bool:
        return self.info.split()[:1] == ["python"] and "not-executed" not in self.info.split()


def fenced_blocks(text: str) -> list[tuple[int, str, str, int]]:
    """Every fenced block as ``(line, info, body, end_line)``; unterminated fences are an error."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start, info, body = i, (m.group(1) + m.group(2)).strip(), []
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"line {start + 1}: code fence ``` is never closed")
        blocks.append((start + 1, info, "\n".join(body) + "\n", i + 1))
        i += 1
    return blocks


def parse(path: Path) -> list[Block]:
    """The python blocks of one guide, each with its expected output if one follows it."""
    text = Path(path).read_text(encoding="utf-8")
    lines = text.splitlines()
    found = fenced_blocks(text)
    tabs, label = {}, None  # line -> the tab container open at that line (containers hold no fences' text)
    inside = {line for start, _, _, end in found for line in range(start, end + 1)}
    for number, content in enumerate(lines, 1):
        if number in inside:
            tabs[number] = label
        elif TAB.match(content):
            label = TAB.match(content).group(1)
        elif content.startswith("///"):
            label = None  # the end of a container, or the start of another kind
    out: list[Block] = []
    previous = None  # (info's first word, end line) of the previous fenced block
    for line, info, body, end in found:
        lang = (info.split() or [""])[0]
        if lang == "python":
            out.append(Block(line, info, body, tab=tabs.get(line)))
        elif (lang == "text" and previous is not None and previous[0] == "python"
              and all(not s.strip() for s in lines[previous[1]:line - 1])):
            out[-1].expected = body
        previous = (lang, end)
    return out


class _StringsToPlaceholders(ast.NodeTransformer):
    """Replace the text of every string literal; keep the code inside f-string braces."""

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        if isinstance(node.value, (str, bytes)):
            return ast.Constant(value="<string>")
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.JoinedStr:
        # An f-string keeps its replacement fields (expression, conversion, format spec),
        # compared exactly; the literal text around them is dropped.
        fields = [value for value in node.values if isinstance(value, ast.FormattedValue)]
        for field in fields:
            field.value = self.visit(field.value)
        return ast.JoinedStr(values=fields)


def code_signature(code: str) -> str:
    """A block's code with comments dropped and string text replaced by a placeholder.

    Two blocks with the same signature run the same code: they may differ only in
    comments, in the words of strings (printed labels, docstrings) and in layout.
    The AST is used rather than ``tokenize`` because Python 3.11 tokenizes an
    f-string as one STRING token, which would hide the expressions it prints.
    """
    return ast.dump(_StringsToPlaceholders().visit(ast.parse(code)))


def normalise(output: str) -> str:
    return "\n".join(line.rstrip() for line in output.rstrip().splitlines())


ELLIPSIS = "..."


def output_matches(printed: str, expected: str) -> bool:
    """Whether ``printed`` is ``expected``, line by line: a line ``...`` matches any lines, and
    ``...`` within a line any text in that line."""
    pattern = "".join(r"(?:[^\n]*\n)*?" if line == ELLIPSIS
                      else "[^\n]*?".join(map(re.escape, line.split(ELLIPSIS))) + r"\n"
                      for line in normalise(expected).splitlines())
    text = "".join(line + "\n" for line in normalise(printed).splitlines())
    return re.fullmatch(pattern, text) is not None


def run(blocks: list[Block], path: str = "guide") -> list[dict]:
    """Execute the blocks in one namespace; return one result per block, stopping at the first failure."""
    # A real module, as for a script: classes defined in a block can be pickled.
    module = types.ModuleType("__guide__")
    sys.modules[module.__name__] = module
    namespace = module.__dict__
    results = []
    for block in blocks:
        if not block.executed:
            results.append({"line": block.line, "status": "not executed", "seconds": 0.0})
            continue
        buffer = io.StringIO()
        started = time.perf_counter()
        try:
            with contextlib.redirect_stdout(buffer):
                exec(compile(block.code, f"{path}:{block.line}", "exec"), namespace)
        except BaseException:  # noqa: BLE001 - report any failure of the reader-facing code
            results.append({"line": block.line, "status": "error", "seconds": time.perf_counter() - started,
                            "stdout": buffer.getvalue(), "error": traceback.format_exc(limit=6)})
            break
        seconds = time.perf_counter() - started
        printed = buffer.getvalue()
        if block.expected is not None and not output_matches(printed, block.expected):
            results.append({"line": block.line, "status": "wrong output", "seconds": seconds,
                            "stdout": printed, "expected": block.expected})
            break
        results.append({"line": block.line, "status": "ok", "seconds": seconds,
                        "checked_output": block.expected is not None})
    return results


def report(results: list[dict]) -> str:
    lines = []
    for r in results:
        lines.append(f"line {r['line']:>4}: {r['status']:<12} {r['seconds']:6.2f} s")
        if r["status"] == "error":
            lines.append(r["error"])
            if r.get("stdout"):
                lines.append("printed before the error:\n" + r["stdout"])
        elif r["status"] == "wrong output":
            lines.append("printed:\n" + r["stdout"] + "expected:\n" + r["expected"])
    return "\n".join(lines)


def failure_line(page: str, results: list[dict], expected_blocks: int) -> str | None:
    """One line naming the page and the line of its first failure, or None if every block ran."""
    for r in results:
        if r["status"] == "error":
            last = r["error"].strip().splitlines()[-1]
            return f"{page}:{r['line']}: {last}"
        if r["status"] == "wrong output":
            return f"{page}:{r['line']}: printed something else than its text block"
    ran = sum(r["status"] == "ok" for r in results)
    if ran != expected_blocks:
        return f"{page}: {ran} of {expected_blocks} blocks ran"
    return None


# --- Pages run as a reader runs them: from an empty folder, without this project -------------

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("common", "torch_version", "keras_version", "parity", "guide")
FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)^---[ \t]*$", re.S | re.M)
REQUIRES_PROJECT = re.compile(r"^requires_project:[ \t]*(true|yes)[ \t]*$", re.M | re.I)


def requires_project(text: str) -> bool:
    """Whether a page's YAML front matter says ``requires_project: true`` (it shows a project tool)."""
    m = FRONT_MATTER.match(text)
    return m is not None and REQUIRES_PROJECT.search(m.group(1)) is not None


class _NoProject:
    """A ``sys.meta_path`` finder that refuses this project's packages, whoever else could find them."""

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in PROJECT_PACKAGES:
            raise ModuleNotFoundError(
                f"No module named '{name}': this page imports the project's package '{top}', which a "
                f"reader's folder does not have (write the few lines it needs in the page, or mark the "
                f"page 'requires_project: true' in its front matter and say so in a box)", name=name)
        return None


def isolate_from_project() -> None:
    """Make this process's later imports of the project's packages fail (see ``_NoProject``)."""
    for name in list(sys.modules):
        if name.partition(".")[0] in PROJECT_PACKAGES:
            del sys.modules[name]
    root = os.path.realpath(ROOT)
    sys.path[:] = [entry for entry in sys.path
                   if entry and os.path.realpath(entry) != root]  # "" is the current folder
    sys.meta_path.insert(0, _NoProject())


def run_page(page: Path) -> dict:
    """Run one page in this process; the summary the parent collects.

    Unless the page requires the project, it runs in an empty temporary folder with the
    project's packages out of reach; meant for a child process (the changes are not undone)."""
    started = time.perf_counter()
    blocks = parse(page)
    exempt = requires_project(Path(page).read_text(encoding="utf-8"))
    folder = None
    if exempt:
        os.chdir(ROOT)
    else:
        folder = tempfile.mkdtemp(prefix="guide-page-")
        os.chdir(folder)
        isolate_from_project()
    try:
        results = run(blocks, str(page))
    finally:
        if folder is not None:
            os.chdir(tempfile.gettempdir())
            shutil.rmtree(folder, ignore_errors=True)
    return {"page": str(page), "results": results, "seconds": time.perf_counter() - started,
            "blocks": sum(b.executed for b in blocks)}


def _forked(page: Path) -> dict:
    """Run ``page`` in a forked child; its summary comes back as JSON through a pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, send, leave without running the parent's cleanup
        os.close(read_end)
        code = 0
        try:
            summary = run_page(page)
        except BaseException as e:  # noqa: BLE001 - a page that cannot be parsed
            summary = {"page": str(page), "results": [], "seconds": 0.0, "blocks": 1,
                       "crash": f"{type(e).__name__}: {e}"}
            code = 1
        with os.fdopen(write_end, "w") as pipe:
            json.dump(summary, pipe)
        sys.stdout.flush()
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not text:
        return {"page": str(page), "results": [], "seconds": 0.0, "blocks": 1,
                "crash": f"the child process died (wait status {status})"}
    return json.loads(text)


OWN_BACKEND = re.compile(r"""^\s*os\.environ\[["']KERAS_BACKEND["']\]\s*=\s*["'](\w+)["']""", re.M)


def own_backend(page: Path) -> str | None:
    """The backend a page sets for itself (``os.environ["KERAS_BACKEND"] = "jax"``), if any.

    Such a page is spawned, never forked: a forked child would find Keras already imported
    with the parent's backend, and the assignment would come too late."""
    found = {m.group(1) for b in parse(page) if b.executed for m in OWN_BACKEND.finditer(b.code)}
    return found.pop() if len(found) == 1 else None


def _spawned(page: Path) -> dict:
    """Run ``page`` in a new interpreter (``--one``)."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "summary.json"
        proc = subprocess.run([sys.executable, "-m", "guide.runner", "--one", str(out), str(page)])
        if out.exists():
            return json.loads(out.read_text())
    return {"page": str(page), "results": [], "seconds": 0.0, "blocks": 1,
            "crash": f"the child process exited with status {proc.returncode}"}


def preload() -> None:
    """Import what nearly every page imports, once, before the children are forked."""
    import keras  # noqa: F401
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import numpy  # noqa: F401
    import torch  # noqa: F401
    from common.quiet import import_tensorflow_quietly
    import_tensorflow_quietly()


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (a file name may hold them)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def page_problem(page: Path) -> str | None:
    """Why ``page`` cannot be run, in one line, or None: unreadable, not UTF-8, an unclosed
    fence, or no python block to execute (a page that runs nothing must not pass)."""
    hint = "give Markdown pages of the guide, e.g. guide/en/topics/stacking.md"
    if not page.exists():
        return f"no such page: {page} ({hint})"
    if page.is_dir():
        return f"{page} is a folder, not a page ({hint})"
    try:
        data = page.read_bytes()
        data.decode("utf-8")
    except OSError as e:
        return f"cannot read {page}: {e.strerror or e} ({hint})"
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        return (f"{page}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}); "
                "save the page as UTF-8")
    try:
        blocks = parse(page)
    except ValueError as e:
        return f"{page}:{str(e).removeprefix('line ')}; close it with a line of three backticks"
    if not any(b.executed for b in blocks):
        return (f"{page} has no ```python block to run, so running it would check nothing "
                "(give pages with code; shown-only blocks are ```python not-executed)")
    return None


def json_problem(path: Path) -> str | None:
    """Why the ``--json`` report could not be written to ``path``, or None."""
    if path.is_dir():
        return f"--json {path} is a folder; give a file name, e.g. {path / 'results.json'}"
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        return f"--json {path}: {folder} is a file, not a folder; choose another path"
    if not folder.is_dir():
        return f"--json {path}: the folder {folder} does not exist; create it or choose another path"
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"--json {path} cannot be written (permission denied); choose another path"
    return None


def main(argv=None) -> int:
    from common.cli import OneLineParser  # one line on stderr for bad arguments, no usage block
    parser = OneLineParser(prog="python -m guide.runner", description=__doc__.splitlines()[0])
    parser.add_argument("pages", type=Path, nargs="+", metavar="PAGE", help="Markdown pages of the guide")
    parser.add_argument("--json", type=Path, default=None, help="also write every page's results here")
    parser.add_argument("--spawn", action="store_true",
                        help="a new interpreter for every page, also on torch (default: fork on torch)")
    parser.add_argument("--fork", action="store_true",
                        help="fork every page from one process that has imported the libraries, on any backend")
    parser.add_argument("--one", type=Path, default=None, help=argparse.SUPPRESS)  # internal: a spawned child
    args = parser.parse_args(argv)
    # Everything a user can get wrong is checked before the first page runs: one line, exit 2.
    problem = next(filter(None, (page_problem(page) for page in args.pages)), None)
    if problem is None and args.json is not None:
        problem = json_problem(args.json)
    if problem is not None:
        parser.exit(2, f"python -m guide.runner: {one_line(problem)}\n")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    root = Path(__file__).resolve().parents[1]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    if args.one is not None:
        summary_file = args.one.absolute()  # run_page changes the current folder
        summary_file.write_text(json.dumps(run_page(args.pages[0])))
        return 0
    fork = hasattr(os, "fork") and not args.spawn and (
        args.fork or os.environ.get("KERAS_BACKEND", "jax") == "torch")
    if fork:
        preload()
    started = time.perf_counter()
    summaries, failures = [], []
    spawned = 0
    for page in args.pages:
        forked = fork and own_backend(page) is None
        spawned += not forked
        summary = _forked(page) if forked else _spawned(page)
        summaries.append(summary)
        results = summary["results"]
        if results:
            print(report(results))
        if summary.get("crash"):
            failed = f"{page}: {summary['crash']}"
        else:
            failed = failure_line(str(page), results, summary["blocks"])
        checked = sum(r.get("checked_output", False) for r in results)
        ran = sum(r["status"] == "ok" for r in results)
        print(f"{page}: {ran}/{summary['blocks']} blocks ran, {checked} outputs checked, {summary['seconds']:.1f} s")
        if failed:
            failures.append(failed)
    total = time.perf_counter() - started
    print(f"{len(args.pages)} page(s), {len(failures)} failed, {total:.1f} s, "
          f"KERAS_BACKEND={os.environ.get('KERAS_BACKEND')}, {len(args.pages) - spawned} forked, {spawned} spawned")
    for line in failures:
        print(line, file=sys.stderr)
    if args.json is not None:
        try:
            args.json.write_text(json.dumps({"pages": summaries, "seconds": total}, indent=1))
        except OSError as e:  # checked before the pages ran, but a folder can go away meanwhile
            print(f"python -m guide.runner: cannot write --json {one_line(str(args.json))}: {e.strerror}",
                  file=sys.stderr)
            return 2
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("python -m guide.runner: interrupted", file=sys.stderr)
        sys.exit(130)
