"""The translation guide (guide/en, guide/es: one Markdown page per topic), its notebooks and its pictures.

* The two languages have the same pages (the same relative paths), and each pair holds the
  same code blocks apart from comments and the text of strings
  (``guide.runner.code_signature``), expected outputs with the same lines and the same
  numbers, and the same headings and links, in the same order.
* No page is longer than 400 lines; the reference table links every topic page, and every
  topic page links back to it.
* Every page runs alone: its blocks run, in order, in one namespace, in a process of its own
  (``python -m guide.runner PAGE ...``), and must print their ```text blocks.  Both
  languages run under every Keras backend (the tests are marked ``backend`` and
  ``extended``: ``make test`` runs them under torch, ``make test-extended``, which CI runs
  too, under jax and tensorflow).
* The notebooks, and the walkthrough's tabbed blocks taken from them: ``tests/test_notebooks.py``.
* The walkthrough reads the data as the notebooks do, from Keras's cache: the runs get a
  KERAS_HOME that holds the four local files (``make data`` fills ~/.keras the same way).

Subprocesses get ``OMP_NUM_THREADS=1`` unless it is set: the
examples are tiny, and on a busy 2-core machine torch's thread pool spinning
against other processes made them 10 to 80 times slower.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.guide

GUIDE = ROOT / "guide"
LANGS = ("en", "es")
MAX_LINES = 400


def pages(lang: str) -> list[str]:
    """The relative paths of one language's pages, sorted."""
    return sorted(str(p.relative_to(GUIDE / lang)) for p in (GUIDE / lang).rglob("*.md"))


PAGES = pages("en")

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
ANCHOR = re.compile(r'<a id="([^"]+)"></a>')


def quiet_env(**extra) -> dict:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.update(extra)
    return env


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# --- The page tree ---------------------------------------------------------------------------

def without_counterpart(guide: Path) -> list[str]:
    """``lang/page`` for every page of one language that the other language lacks, both ways."""
    found = {lang: set(str(p.relative_to(guide / lang)) for p in (guide / lang).rglob("*.md")) for lang in LANGS}
    return sorted(f"{lang}/{page}" for lang in LANGS for other in LANGS if other != lang
                  for page in found[lang] - found[other])


def test_the_counterpart_check_works_both_ways(tmp_path):
    for lang in LANGS:
        (tmp_path / lang / "topics").mkdir(parents=True)
        (tmp_path / lang / "topics" / "shared.md").write_text("# Both\n")
    assert without_counterpart(tmp_path) == []
    (tmp_path / "es" / "topics" / "solo.md").write_text("# Solo en español\n")
    (tmp_path / "en" / "only.md").write_text("# English only\n")
    assert without_counterpart(tmp_path) == ["en/only.md", "es/topics/solo.md"]


def test_every_page_has_its_counterpart_in_the_other_language():
    assert without_counterpart(GUIDE) == []
    assert pages("en") == pages("es")
    assert len(PAGES) >= 44 and {"index.md", "topics/index.md", "walkthrough/index.md", "appendix/tests.md"} <= set(PAGES)
    assert not (GUIDE / "en" / "README.md").exists(), "the Start page is index.md"


@pytest.mark.parametrize("lang", LANGS)
def test_no_page_is_longer_than_400_lines(lang):
    lengths = {page: len(text(GUIDE / lang / page).splitlines()) for page in pages(lang)}
    too_long = {page: n for page, n in lengths.items() if n > MAX_LINES}
    assert not too_long, f"split these pages: {too_long}"


@pytest.mark.parametrize("lang", LANGS)
def test_the_reference_table_links_every_topic_page_and_each_links_back(lang):
    table = text(GUIDE / lang / "topics" / "index.md")  # the reference table is the Topics index
    linked = {f"topics/{target.partition('#')[0]}" for target in LINK.findall(table)}
    topics = {page for page in pages(lang) if page.startswith("topics/") and page != "topics/index.md"}
    assert len(topics) >= 29 and topics <= linked, sorted(topics - linked)
    for page in topics:
        assert "index.md" in LINK.findall(text(GUIDE / lang / page)), f"{lang}/{page} has no link back to the table"


# --- The two languages agree ------------------------------------------------------------------

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


@pytest.mark.parametrize("page", PAGES)
def test_english_and_spanish_pages_have_the_same_code_blocks(page):
    from guide.runner import code_signature, parse
    en, es = (parse(GUIDE / lang / page) for lang in LANGS)
    assert len(en) == len(es), page
    for a, b in zip(en, es):
        where = f"{page}: block at en:{a.line} / es:{b.line}"
        assert (a.info, a.tab) == (b.info, b.tab), where
        assert code_signature(a.code) == code_signature(b.code), f"{where}: code differs beyond comments and strings"
        assert (a.expected is None) == (b.expected is None), where
        if a.expected is not None:
            assert len(a.expected.splitlines()) == len(b.expected.splitlines()), f"{where}: outputs differ in length"
            assert NUMBER.findall(a.expected) == NUMBER.findall(b.expected), f"{where}: outputs show other numbers"


def test_code_blocks_start_every_page_and_a_few_are_shown_only():
    from guide.runner import parse
    blocks = {page: parse(GUIDE / "en" / page) for page in PAGES}
    with_code = [page for page, found in blocks.items() if found]
    assert len(with_code) >= 39
    for page in with_code:
        lines = text(GUIDE / "en" / page).splitlines()
        first_fence = next(i for i, line in enumerate(lines) if line.startswith("```"))
        assert lines[first_fence] == "```python", f"{page}: the first block is the page's setup block"
    shown_only = sorted(page for page, found in blocks.items() for b in found if not b.executed)
    assert shown_only == ["topics/feeding-data.md", "walkthrough/data.md"]  # grain; the torchvision cell


def test_code_signature_ignores_comments_and_string_text_only():
    from guide.runner import code_signature
    english = 'x = 2  # two\nprint(f"value={x * 21:.1f} seen", "done")\n'
    same = ['x = 2  # dos\nprint(f"valor={x * 21:.1f} visto", "hecho")\n',
            'x = 2\nprint(\n    f"value={x * 21:.1f}",\n    "done",\n)\n']
    different = ['x = 3\nprint(f"value={x * 21:.1f} seen", "done")\n',       # a number
                 'x = 2\nprint(f"value={x * 20:.1f} seen", "done")\n',       # an expression inside an f-string
                 'x = 2\nprint(f"value={x * 21:.2f} seen", "done")\n',       # a format spec
                 'x = 2\nprint(f"value={x * 21:.1f} seen", "done", x)\n']    # an argument
    assert all(code_signature(code) == code_signature(english) for code in same)
    assert all(code_signature(code) != code_signature(english) for code in different)


@pytest.mark.parametrize("page", PAGES)
def test_english_and_spanish_pages_have_the_same_headings_and_links(page):
    def skeleton(lang):
        body = text(GUIDE / lang / page)
        headings = [len(m.group(1)) for m in re.finditer(r"^(#{1,6}) \S", body, re.M)]
        # Each page links the other language's page, its own language's Keras notebook and diagram.
        links = [target.replace("keras_rnn_apiladas_es.ipynb", "keras_stacked_rnn_en.ipynb")
                 .replace("_es.png", ".png")
                 for target in LINK.findall(body) if not target.startswith(("../en/", "../es/"))]
        containers = re.findall(r"^/// (tab \| \w+|details)", body, re.M)
        table_rows = [line.count("|") for line in body.splitlines() if line.startswith("| [")]
        return headings, links, [c.split(" |")[0] if c.startswith("details") else c for c in containers], table_rows

    en, es = skeleton("en"), skeleton("es")
    assert en[0] == es[0], "same heading levels"
    assert en[1] == es[1], "same links and images in the same order"
    assert en[2] == es[2], "same tabs and folded solutions"
    assert en[3] == es[3], "the same table rows"


def slug(heading: str) -> str:
    """The anchor MkDocs gives a heading (the toc extension's default slugify, roughly)."""
    plain = re.sub(r"[^\w\s-]", "", heading.lower()).strip()
    return re.sub(r"[\s-]+", "-", plain)


def anchors(path: Path) -> set[str]:
    body = text(path)
    return set(ANCHOR.findall(body)) | {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", body, re.M)}


def generated_notebook(path: Path) -> bool:
    """A notebook page that `guide.site prepare` executes from a source notebook that exists."""
    from guide.site import PAGES as NOTEBOOK_PAGES, SOURCES
    for lang, pages in NOTEBOOK_PAGES.items():
        if path.parent == GUIDE / lang / "notebooks" and path.name in pages:
            return (SOURCES / pages[path.name]).is_file()
    return False


@pytest.mark.parametrize("page", ["guide/README.md"] + [f"guide/{lang}/{page}" for lang in LANGS for page in PAGES])
def test_relative_links_and_images_exist(page):
    path = ROOT / page
    missing = []
    for target in LINK.findall(text(path)):
        if target.startswith(("http://", "https://")):
            continue
        file, _, fragment = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if generated_notebook(resolved):  # written by `python -m guide.site prepare` (make docs)
            continue
        if not resolved.exists():
            missing.append(target)
        elif fragment and resolved.suffix == ".md":
            assert fragment in anchors(resolved), f"{page}: {target} has no such anchor"
    assert not missing, f"{page} links to missing files: {missing}"


def test_table_images_are_pngs():
    names = []
    for name in ["architectures", "training_curves", "predictions_torch", "predictions_keras"]:
        names.extend([name, f"{name}_es"])
    for name in names:
        head = (GUIDE / "images" / f"{name}.png").read_bytes()[:8]
        assert head == b"\x89PNG\r\n\x1a\n", name


# --- The runner itself ---------------------------------------------------------------------------

def test_runner_pairs_blocks_with_outputs_and_stops_at_a_failure(tmp_path):
    from guide.runner import parse, run
    page = tmp_path / "page.md"
    page.write_text(
        "Prose.\n\n```python\nvalue = 2\nprint(value * 21)\n```\n\n```text\n42\n```\n\n"
        "```python not-executed\nimport not_installed\n```\n\n```bash\necho ignored\n```\n\n"
        "```text\nnot an output: no python block right before it\n```\n\n```python\nprint(value)\n```\n"
        "Prose between.\n```text\nnot an output either\n```\n\n```python\nprint('never run')\n```\n",
        encoding="utf-8")
    blocks = parse(page)
    assert [(b.line, b.executed, b.expected) for b in blocks] == [
        (3, True, "42\n"), (12, False, None), (24, True, None), (32, True, None)]
    results = run(blocks)
    assert [r["status"] for r in results] == ["ok", "not executed", "ok", "ok"]

    page.write_text("```python\nprint(2)\n```\n\n```text\n3\n```\n\n```python\nprint('never run')\n```\n",
                    encoding="utf-8")
    results = run(parse(page))
    assert [r["status"] for r in results] == ["wrong output"] and results[0]["stdout"] == "2\n"

    page.write_text("```python\nraise KeyError('boom')\n```\n", encoding="utf-8")
    (result,) = run(parse(page))
    assert result["status"] == "error" and "KeyError: 'boom'" in result["error"]


def test_runner_ellipsis_stands_for_lines_or_text_within_a_line(tmp_path):
    from guide.runner import output_matches, parse, run
    assert output_matches("Keras 3.15.1 on the jax backend\n", "Keras ... on the ... backend")
    assert output_matches("Epoch 1/2\n8/8 - 3s\nEpoch 2/2\n8/8 - 0s\ndone\n", "Epoch 1/2\n...\nEpoch 2/2\n...\ndone")
    assert output_matches("a\nb\n", "a\n...\nb")  # none
    assert not output_matches("Keras 3\nx on the jax backend\n", "Keras ... on the ... backend")  # one line only
    assert not output_matches("a\nb\nc\n", "a\n...\nb")  # the lines after the wildcard must all match
    page = tmp_path / "page.md"
    page.write_text("```python\nprint('loss', 2.3)\nprint('end')\n```\n\n```text\nloss ...\nend\n```\n\n"
                    "```python\nprint('x')\n```\n\n```text\n...\ny\n```\n", encoding="utf-8")
    assert [r["status"] for r in run(parse(page))] == ["ok", "wrong output"]


def test_runner_reads_tabs_and_runs_each_page_alone(tmp_path):
    from guide.runner import parse
    first, second = tmp_path / "first.md", tmp_path / "second.md"
    first.write_text("/// tab | PyTorch\n```python\nshared = 1\nprint(shared)\n```\n\n```text\n1\n```\n///\n\n"
                     "/// tab | Keras\n```python\nprint(shared + 1)\n```\n///\n\n```python\nprint(3)\n```\n",
                     encoding="utf-8")
    second.write_text("# Second\n\n```python\nprint(shared)\n```\n", encoding="utf-8")
    assert [(b.tab, b.expected) for b in parse(first)] == [("PyTorch", "1\n"), ("Keras", None), (None, None)]
    proc = subprocess.run([sys.executable, "-m", "guide.runner", str(first), str(second), "--spawn"],
                          cwd=ROOT, env=quiet_env(KERAS_BACKEND="torch"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    # the second page does not see the first page's names; one line names the page and the line
    assert proc.stderr.strip().splitlines()[-1] == f"{second}:3: NameError: name 'shared' is not defined"
    assert "2 page(s), 1 failed" in proc.stdout and "0 forked, 2 spawned" in proc.stdout  # --spawn, even on torch
    bad = subprocess.run([sys.executable, "-m", "guide.runner", str(tmp_path / "nowhere.md")],
                         cwd=ROOT, env=quiet_env(), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "no such page" in bad.stderr


def test_a_page_that_sets_its_backend_gets_it_even_when_the_others_are_forked(tmp_path):
    """Forked children find Keras imported with the parent's backend; a page that sets
    KERAS_BACKEND itself (the JAX-loop page) must run in a new interpreter to get its own."""
    from guide.runner import own_backend
    own, plain = tmp_path / "own.md", tmp_path / "plain.md"
    own.write_text('```python\nimport os\nos.environ["KERAS_BACKEND"] = "jax"\nimport keras\n'
                   'print(keras.config.backend())\n```\n\n```text\njax\n```\n', encoding="utf-8")
    plain.write_text("```python\nimport keras\nprint(keras.config.backend())\n```\n\n```text\ntorch\n```\n",
                     encoding="utf-8")
    assert (own_backend(own), own_backend(plain)) == ("jax", None)
    proc = subprocess.run([sys.executable, "-m", "guide.runner", str(own), str(plain), "--fork"],
                          cwd=ROOT, env=quiet_env(KERAS_BACKEND="torch"), capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 page(s), 0 failed" in proc.stdout and "1 forked, 1 spawned" in proc.stdout


def test_pages_run_in_an_empty_folder_without_the_project_unless_marked(tmp_path):
    """A reader has the pip packages, not this repository: a page that imports the project fails
    with one line saying so, unless its front matter says ``requires_project: true``; a page's
    current folder is a fresh, empty one."""
    code = "```python\nimport parity\nimport os\nprint(os.path.isfile('Makefile'))\n```\n\n```text\nTrue\n```\n"
    imports, marked = tmp_path / "imports.md", tmp_path / "marked.md"
    imports.write_text("# Imports the project\n\n" + code, encoding="utf-8")
    marked.write_text("---\nrequires_project: true\n---\n\n# Marked\n\n" + code,
                      encoding="utf-8")
    relative = tmp_path / "relative.md"
    relative.write_text("```python\nimport os\nprint(os.listdir('.'), os.path.exists('guide'))\n```\n\n"
                        "```text\n[] False\n```\n\n```python\nfrom common import data\n```\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "guide.runner", str(imports), str(marked), str(relative), "--fork"],
                          cwd=ROOT, env=quiet_env(KERAS_BACKEND="torch"), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1 and "3 page(s), 2 failed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert f"{marked}: 1/1 blocks ran, 1 outputs checked" in proc.stdout
    # the relative page's first block found an empty folder; its second could not import common
    assert f"{relative}:10: ModuleNotFoundError: No module named 'common': this page imports the project" in proc.stderr
    assert proc.stderr.splitlines()[0].startswith(f"{imports}:3: ModuleNotFoundError: No module named 'parity'")
    assert "requires_project: true" in proc.stderr


def test_runner_rejects_an_unclosed_fence(tmp_path):
    from guide.runner import parse
    page = tmp_path / "page.md"
    page.write_text("```python\nprint(1)\n", encoding="utf-8")
    with pytest.raises(ValueError, match="never closed"):
        parse(page)
    proc = subprocess.run([sys.executable, "-m", "guide.runner", str(page)],
                          cwd=ROOT, env=quiet_env(), capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"python -m guide.runner: {page}:1: code fence ``` is never closed; close it with a line of three backticks\n"


def test_runner_refuses_what_it_cannot_run_in_one_line_before_any_page_runs(tmp_path, capsys):
    """An unreadable page, a page with nothing to run, or a --json it cannot write: one line,
    exit 2, and the good page given first never ran (it would have written its marker)."""
    from guide.runner import main
    marker = tmp_path / "ran"
    good = tmp_path / "good.md"
    good.write_text(f"```python\nopen({str(marker)!r}, 'w').close()\n```\n", encoding="utf-8")
    (tmp_path / "latin1.md").write_bytes("```python\nprint('año')\n```\n".encode("latin-1"))
    (tmp_path / "prose.md").write_text("# Prose only\n\n```python not-executed\nshown()\n```\n", encoding="utf-8")
    (tmp_path / "folder.md").mkdir()
    (tmp_path / "a-file").write_text("")
    cases = {
        ("latin1.md",): "latin1.md:2: not UTF-8 text (byte 0xf1); save the page as UTF-8",
        ("folder.md",): "folder.md is a folder, not a page",
        ("missing.md",): "no such page: ",
        ("prose.md",): "prose.md has no ```python block to run",
        ("--json", "nowhere/r.json"): "the folder ",
        ("--json", "a-file/r.json"): "a-file is a file, not a folder",
        ("--json", "folder.md"): "folder.md is a folder; give a file name",
    }
    for extra, expected in cases.items():
        bad = [str(tmp_path / extra[0])] if len(extra) == 1 else ["--json", str(tmp_path / extra[1])]
        with pytest.raises(SystemExit) as stop:
            main([str(good), *bad])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and len(err.splitlines()) == 1 and expected in err, (extra, err)
        assert err.startswith("python -m guide.runner: ") and "Traceback" not in err
    assert not marker.exists()


# --- Executing every page, on every backend ---------------------------------------------------

def run_pages(lang: str, keras_backend: str, keras_home: Path, tmp_path: Path) -> None:
    """Run every page of one language, each in a process of its own; each block must print its text block."""
    from guide.runner import parse
    report = tmp_path / f"results_{lang}.json"
    # the runner refuses a page with nothing to run (the reference table, the index pages)
    paths = [str(GUIDE / lang / page) for page in PAGES if any(b.executed for b in parse(GUIDE / lang / page))]
    assert len(paths) >= 39
    # --fork: every page in a forked child of one process that has imported the libraries, on
    # every backend (a new interpreter per page costs about 10 s of imports on JAX)
    proc = subprocess.run([sys.executable, "-m", "guide.runner", *paths, "--fork", "--json", str(report)],
                          cwd=ROOT, env=quiet_env(KERAS_BACKEND=keras_backend, KERAS_HOME=str(keras_home)),
                          capture_output=True, text=True, timeout=4800)
    assert proc.returncode == 0, f"{lang}, KERAS_BACKEND={keras_backend}\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    summaries = json.loads(report.read_text())["pages"]
    assert [s["page"] for s in summaries] == paths
    for summary in summaries:
        blocks = parse(Path(summary["page"]))
        results = summary["results"]
        assert [r["status"] for r in results] == ["ok" if b.executed else "not executed" for b in blocks], summary["page"]
        assert sum(r.get("checked_output", False) for r in results) == sum(b.expected is not None for b in blocks if b.executed)


@pytest.mark.backend
@pytest.mark.extended
@pytest.mark.slow
def test_english_pages_run_and_print_what_the_text_says(keras_backend, keras_home, tmp_path):
    run_pages("en", keras_backend, keras_home, tmp_path)


@pytest.mark.backend
@pytest.mark.extended
@pytest.mark.slow
def test_spanish_pages_run_and_print_what_the_text_says(keras_backend, keras_home, tmp_path):
    run_pages("es", keras_backend, keras_home, tmp_path)


# --- Pictures -------------------------------------------------------------------------------------

def test_architecture_diagram_counts_and_shapes(tmp_path):
    from guide.figures import draw_architectures, keras_layers, torch_layers
    torch_rows, keras_rows = torch_layers(), keras_layers()
    assert [(shape, params) for _, shape, params in torch_rows] == [
        ("(B, 28, 28)", 0), ("(B, 28, 8)", 304), ("(B, 28, 8)", 144), ("(B, 28, 8)", 144),
        ("(B, 8)", 0), ("(B, 10)", 90)]
    assert [(shape, params) for _, shape, params in keras_rows] == [
        ("(None, 28, 28)", 0), ("(None, 28, 8)", 296), ("(None, 28, 8)", 136), ("(None, 8)", 136),
        ("(None, 10)", 90)]
    assert [name for name, _, _ in keras_rows][1:4] == [
        "SimpleRNN(8, return_sequences=True)", "SimpleRNN(8, return_sequences=True)", "SimpleRNN(8)"]
    png = draw_architectures(tmp_path / "a.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    spanish = draw_architectures(tmp_path / "a_es.png", "es")  # the Spanish pages' copy, in Spanish
    assert spanish.read_bytes()[:4] == b"\x89PNG" and spanish.read_bytes() != png.read_bytes()


def fake_run(folder: Path, framework: str, backend: str, label: str, epochs: int = 3, grid=None) -> Path:
    folder.mkdir(parents=True)
    history = {key: [1.0 / (e + 1) for e in range(epochs)] for key in ("loss", "accuracy", "val_loss", "val_accuracy")}
    (folder / "metrics.json").write_text(json.dumps({
        "framework": framework, "backend": backend, "label": label, "history": history,
        "config": {"subset": None, "batch_size": 8192}, **({"prediction_grid": grid} if grid else {})}))
    return folder


def test_figures_from_runs(tmp_path):
    """The curves and both grids, in English and Spanish, redrawn from what metrics.json records."""
    from common.data import load_fashion_mnist
    from common.runs import grid_record
    from guide.figures import draw_from_runs, main
    (_, _), (images, labels) = load_fashion_mnist()
    right = grid_record(images[:25], labels[:25], labels[:25])
    wrong = grid_record(images[:25], labels[:25], (labels[:25] + 1) % 10)
    runs = [fake_run(tmp_path / "t", "torch", "native", "PyTorch", grid=right),
            fake_run(tmp_path / "k", "keras", "jax", "Keras (jax)", grid=wrong)]
    out = tmp_path / "images"
    out.mkdir()
    written = draw_from_runs(runs, out)
    assert sorted(p.name for p in written) == sorted(f"{name}{suffix}.png" for suffix in ("", "_es") for name in
                                                     ("predictions_keras", "predictions_torch", "training_curves"))
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
    assert (out / "predictions_torch.png").read_bytes() != (out / "predictions_torch_es.png").read_bytes()
    assert (out / "predictions_torch.png").read_bytes() != (out / "predictions_keras.png").read_bytes()
    no_grid = fake_run(tmp_path / "old", "torch", "native", "PyTorch")
    with pytest.raises(SystemExit, match="has no prediction_grid; rerun the training"):
        draw_from_runs([no_grid], out)
    other = dict(right, images_sha256="0" * 64)
    with pytest.raises(SystemExit, match="images_sha256 differs"):
        draw_from_runs([fake_run(tmp_path / "other", "torch", "native", "PyTorch", grid=other)], out)
    with pytest.raises(SystemExit, match="has no metrics.json"):
        main(["--out", str(out), "--from-runs", str(tmp_path / "nowhere")])
