"""Execute the guide's code blocks in order and check what each one prints.

    KERAS_BACKEND=jax python -m guide.runner guide/en/README.md

Conventions of the guides (``guide/en/README.md``, ``guide/es/README.md``):

* A block fenced as ```` ```python ```` is executed.  All blocks of one guide run
  in order in one namespace, so a block may use the names of earlier blocks.
* A block fenced as ```` ```python not-executed ```` is shown and compared
  between the languages, never run (it needs a package the project does not install).
* A ```` ```text ```` block that follows a python block, with only blank lines in
  between, is that block's expected standard output; the runner compares it
  exactly (trailing spaces and trailing blank lines ignored), with one wildcard,
  as in doctest: ``...`` on a line of its own stands for any number of lines,
  none included, and ``...`` inside a line for any text within that line.  It
  covers what changes from run to run or from one backend to another (versions,
  timings, training logs); the block checks such values with ``assert``.

The two languages share their code: ``code_signature`` reduces a block to what must
be identical in English and Spanish (everything but comments and the text of string
literals), and the tests compare those signatures block by block.

Keras reads ``KERAS_BACKEND`` once per process, so one run covers one backend:
the tests start this module in a fresh subprocess per backend.
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
import sys
import time
import traceback
import types
from pathlib import Path

FENCE = re.compile(r"^```(\S*)(.*)$")


@dataclasses.dataclass
class Block:
    line: int                 # 1-based line of the opening fence
    info: str                 # the whole info string, e.g. "python" or "python not-executed"
    code: str
    expected: str | None = None  # the following ```text block, if any

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
    out: list[Block] = []
    previous = None  # (info's first word, end line) of the previous fenced block
    for line, info, body, end in found:
        lang = (info.split() or [""])[0]
        if lang == "python":
            out.append(Block(line, info, body))
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m guide.runner", description=__doc__.splitlines()[0])
    parser.add_argument("guide", type=Path, help="a guide's README.md")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    root = Path(__file__).resolve().parents[1]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    started = time.perf_counter()
    blocks = parse(args.guide)
    results = run(blocks, str(args.guide))
    total = time.perf_counter() - started
    print(report(results))
    executed = sum(r["status"] == "ok" for r in results)
    failed = any(r["status"] in ("error", "wrong output") for r in results)
    expected_ok = sum(b.executed for b in blocks)
    print(f"{args.guide}: {executed}/{expected_ok} blocks ran, "
          f"{sum(r.get('checked_output', False) for r in results)} outputs checked, {total:.1f} s, "
          f"KERAS_BACKEND={os.environ.get('KERAS_BACKEND')}")
    if args.json is not None:
        args.json.write_text(json.dumps({"results": results, "seconds": total}, indent=1))
    return 1 if failed or executed != expected_ok else 0


if __name__ == "__main__":
    sys.exit(main())
