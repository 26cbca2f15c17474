"""The new topic pages of the guide (guide/{en,es}/topics/): checks that read their Markdown.

Running the pages is the job of the tests that execute every page; these tests check what a run
cannot: that the cheat sheet's table and its executed list of pairs are the same rows, that the
two languages hold the same code, that each page ends with exercises whose solutions run, that
every topic page links the official API pages of what it introduces, and that the pages a
learner copies import pip packages only.
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
    assert "](index.md)" in text  # the Topics index, which is the reference table
    assert text.count(f"\n{heading}\n") == 1 and not re.search(r"\n## ", text.split(f"\n{heading}\n")[1])
    blocks = fenced_blocks(text)
    assert blocks[0][1] == "python" and "KERAS_BACKEND" in blocks[0][2], "the first block is the setup"
    solutions = [i for i, line in enumerate(text.splitlines()) if line == solution]
    assert len(solutions) >= 2
    lines = text.splitlines()
    for i in solutions:
        assert lines[i + 1] == "    type: success" and lines[i + 2] == "```python", f"{path}:{i + 1}"


# --- Every topic page names the official API pages (issue 22 §5) -------------------------------------

EXTERNAL = re.compile(r"\]\((https?://[^)\s]+)\)")
KERAS_DOCS = ("https://keras.io/api/", "https://keras.io/guides/")
TORCH_SIDE_DOCS = ("https://pytorch.org/docs/", "https://pytorch.org/vision/", "https://pytorch.org/tutorials/",
                   "https://jax.readthedocs.io/", "https://lightning.ai/docs/torchmetrics/")


def topic_pages() -> list[Path]:
    pages = [path for lang in LANGS for path in sorted((GUIDE / lang / "topics").glob("*.md"))
             if path.name != "index.md"]  # the index is the reference table, not a topic
    assert len(pages) >= 2 * 33
    return pages


def api_links(text: str) -> tuple[list[str], list[str]]:
    """The page's links to keras.io's reference or guides, and to PyTorch's (or JAX's, torchmetrics') docs."""
    links = EXTERNAL.findall(text)
    return [u for u in links if u.startswith(KERAS_DOCS)], [u for u in links if u.startswith(TORCH_SIDE_DOCS)]


def test_api_links_are_told_apart():
    keras_links, torch_links = api_links("[a](https://keras.io/api/layers/) [b](https://pytorch.org/docs/stable/nn.html) "
                                         "[c](https://example.com/keras.io/api/) [d](https://jax.readthedocs.io/en/latest/jax.html)")
    assert keras_links == ["https://keras.io/api/layers/"]
    assert torch_links == ["https://pytorch.org/docs/stable/nn.html", "https://jax.readthedocs.io/en/latest/jax.html"]


def test_every_topic_page_links_the_official_api_docs():
    missing = []
    for path in topic_pages():
        text = path.read_text(encoding="utf-8")
        keras_links, torch_links = api_links(text)
        if not keras_links or not torch_links:
            missing.append(f"{path.relative_to(GUIDE)}: keras.io {len(keras_links)}, pytorch.org/jax {len(torch_links)}")
        assert "**API:**" in text, f"{path.relative_to(GUIDE)}: no **API:** line"
    assert not missing, f"topic pages without an official API link on each side: {missing}"


# --- The pages a learner copies need pip packages only (issue 22 §1) --------------------------------

PROJECT_PACKAGES = {"parity", "common", "keras_version", "torch_version", "guide", "benchmarks", "tests"}


def front_matter(text: str) -> str:
    return text.split("\n---\n", 1)[0] if text.startswith("---\n") else ""


def project_imports(code: str) -> list[str]:
    """The project's packages that some Python code imports (at any depth, in any block)."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] in PROJECT_PACKAGES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [node.module] if node.module.split(".")[0] in PROJECT_PACKAGES else []
    return found


def test_project_imports_are_found_wherever_they_stand():
    assert project_imports("import keras\nfrom torch import nn\n") == []
    assert project_imports("def f():\n    import parity.weights\n    from common.data import load\n") == [
        "parity.weights", "common.data"]


@pytest.mark.parametrize("lang", LANGS)
def test_topic_and_walkthrough_pages_import_no_project_package(lang):
    """Only pages whose front matter says `requires_project: true` (and that open with a box telling
    how to install the project) may import it; the topic and walkthrough pages and `differ` may not."""
    from guide.runner import parse
    pages = [*sorted((GUIDE / lang / "topics").glob("*.md")), *sorted((GUIDE / lang / "walkthrough").glob("*.md")),
             GUIDE / lang / "differ.md"]
    offenders = []
    for path in pages:
        text = path.read_text(encoding="utf-8")
        assert "requires_project" not in front_matter(text), f"{path.relative_to(GUIDE)} must run without the project"
        offenders += [f"{path.relative_to(GUIDE)}: {name}" for block in parse(path) for name in project_imports(block.code)]
    assert not offenders, f"pages that import this project: {offenders}"


@pytest.mark.parametrize("lang", LANGS)
def test_pages_that_use_the_project_say_so_at_the_top(lang):
    from guide.runner import parse
    box = {"en": "/// admonition | This page uses this project's code", "es": "/// admonition | Esta página usa el código de este proyecto"}[lang]
    marked = 0
    for path in sorted((GUIDE / lang).rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        uses = any(project_imports(block.code) for block in parse(path))
        if "requires_project: true" in front_matter(text):
            marked += 1
            assert box in text.split("```", 1)[0] and "make install" in text, f"{path.relative_to(GUIDE)}: no install box at the top"
        elif path.parent.name in ("topics", "walkthrough", "appendix") or path.name in ("differ.md", "performance.md"):
            assert not uses, f"{path.relative_to(GUIDE)} imports the project but has no requires_project front matter"
    assert marked >= 2  # performance and the plain-code appendix
