"""The new topic pages of the guide (guide/{en,es}/topics/): checks that read their Markdown.

Running the pages is the job of the tests that execute every page; these tests check what a run
cannot: that the cheat sheet's table and its executed list of pairs are the same rows, that the
two languages hold the same code, and that each page ends with exercises whose solutions run.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

GUIDE = ROOT / "guide"
LANGS = ("en", "es")
PAGES = ("lr-schedules.md", "jax-training-loop.md", "torch-backend-loop.md", "ops-cheatsheet.md")
EXERCISES = {"en": ("## Exercises", "/// details | Solution"), "es": ("## Ejercicios", "/// details | Solución")}
CELL = re.compile(r"^`(.*)`$")


def page(lang: str, name: str) -> Path:
    return GUIDE / lang / "topics" / name


def cheatsheet_table(path: Path) -> list[tuple[str, str]]:
    """The (torch call, keras.ops call) of each row of the table whose header names `keras.ops`."""
    rows, inside = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("| PyTorch | `keras.ops` |"):
            inside = True
            continue
        if inside and line.startswith("|---"):
            continue
        if inside and not line.startswith("|"):
            break
        if inside:
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            calls = [CELL.match(cell) for cell in cells[:2]]
            assert all(calls), f"{path}: a row whose calls are not in backticks: {line}"
            rows.append((calls[0].group(1), calls[1].group(1)))
    return rows


def cheatsheet_pairs(path: Path) -> tuple[list[tuple[str, str]], str | None]:
    """The literal ``PAIRS = [...]`` of the page's code, and the expected output of its block."""
    from guide.runner import parse
    for block in parse(path):
        for node in ast.parse(block.code).body:
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["PAIRS"]:
                return ast.literal_eval(node.value), block.expected
    raise AssertionError(f"{path}: no block assigns PAIRS")


@pytest.mark.parametrize("lang", LANGS)
def test_cheatsheet_table_and_code_are_the_same_rows(lang):
    path = page(lang, "ops-cheatsheet.md")
    table = cheatsheet_table(path)
    pairs, expected = cheatsheet_pairs(path)
    assert len(table) >= 30, f"{path}: {len(table)} rows, the issue asks for at least 30"
    assert len(pairs) == len(table), f"{path}: {len(pairs)} pairs executed for {len(table)} table rows"
    assert [tuple(pair) for pair in pairs] == table, "the table and PAIRS differ row by row"
    assert len(set(table)) == len(table), "a row appears twice"
    # The block prints the count; its expected output must state the table's.
    assert expected is not None and re.match(rf"{len(table)}\b", expected.strip())


def test_cheatsheet_is_the_same_in_both_languages():
    assert cheatsheet_table(page("en", "ops-cheatsheet.md")) == cheatsheet_table(page("es", "ops-cheatsheet.md"))


@pytest.mark.parametrize("name", PAGES)
def test_topic_page_has_the_same_code_in_both_languages(name):
    from guide.runner import code_signature, parse
    en, es = (parse(page(lang, name)) for lang in LANGS)
    assert len(en) == len(es), f"{name}: {len(en)} python blocks in English, {len(es)} in Spanish"
    for a, b in zip(en, es):
        assert a.info == b.info, f"{name}: en line {a.line} is ```{a.info}, es line {b.line} ```{b.info}"
        assert code_signature(a.code) == code_signature(b.code), \
            f"{name}: en line {a.line} and es line {b.line} differ beyond comments and strings"
        assert (a.expected is None) == (b.expected is None), f"{name}: en line {a.line}: expected output on one side only"
        if a.expected is not None:
            assert len(a.expected.splitlines()) == len(b.expected.splitlines())


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", PAGES)
def test_topic_page_shape(lang, name):
    """Setup block first, a link back to the reference table, at most 400 lines, and exercises
    at the end with at least two folded solutions, each an executed python block."""
    from guide.runner import fenced_blocks
    path = page(lang, name)
    text = path.read_text(encoding="utf-8")
    heading, solution = EXERCISES[lang]
    assert len(text.splitlines()) <= 400
    assert "](../reference.md)" in text
    assert text.count(f"\n{heading}\n") == 1 and not re.search(r"\n## ", text.split(f"\n{heading}\n")[1])
    blocks = fenced_blocks(text)
    assert blocks[0][1] == "python" and "KERAS_BACKEND" in blocks[0][2], "the first block is the setup"
    solutions = [i for i, line in enumerate(text.splitlines()) if line == solution]
    assert len(solutions) >= 2
    lines = text.splitlines()
    for i in solutions:
        assert lines[i + 1] == "    type: success" and lines[i + 2] == "```python", f"{path}:{i + 1}"
