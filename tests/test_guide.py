"""The translation guide (guide/en, guide/es), its notebooks and its pictures.

* The two languages must hold the same code blocks apart from comments and the text
  of strings (``guide.runner.code_signature``), expected outputs with the same lines
  and the same numbers, and the same anchors and links, in the same order.
* Every block runs, in order, in one namespace, in a fresh process
  (``python -m guide.runner``), and must print its ```text block.  The English
  and Spanish guides run under every Keras backend (the tests are marked ``backend`` and
  ``extended``: ``make test`` runs them under torch, ``make test-extended``, which CI runs
  too, under jax and tensorflow).
* The notebooks, and section 2's blocks taken from them: ``tests/test_notebooks.py``.
* Section 2 reads the data as the notebooks do, from Keras's cache: the runs get a
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
GUIDES = {"en": GUIDE / "en" / "README.md", "es": GUIDE / "es" / "README.md"}

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


# --- The two languages agree ------------------------------------------------------------------

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def test_english_and_spanish_have_the_same_code_blocks():
    from guide.runner import code_signature, parse
    en, es = (parse(GUIDES[lang]) for lang in ("en", "es"))
    assert len(en) == len(es) > 40
    for a, b in zip(en, es):
        where = f"block at en:{a.line} / es:{b.line}"
        assert a.info == b.info, where
        assert code_signature(a.code) == code_signature(b.code), f"{where}: code differs beyond comments and strings"
        assert (a.expected is None) == (b.expected is None), where
        if a.expected is not None:
            assert len(a.expected.splitlines()) == len(b.expected.splitlines()), f"{where}: outputs differ in length"
            assert NUMBER.findall(a.expected) == NUMBER.findall(b.expected), f"{where}: outputs show other numbers"
    assert all(b.expected is not None for b in en + es if b.executed), "every executed block shows its output"
    assert sum(not b.executed for b in en) == 1  # grain: shown, not executed


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


def test_english_and_spanish_have_the_same_sections_anchors_and_links():
    def skeleton(path):
        body = text(path)
        headings = [(len(m.group(1)), m.group(2) if re.fullmatch(r"\d+(\.\d+)*\.?", m.group(2)) else "-")
                    for m in re.finditer(r"^(#{1,6}) (\S+)", body, re.M)]
        # Each guide links the other language's guide, and its own language's Keras notebook.
        links = [target.replace("keras_rnn_apiladas_es.ipynb", "keras_stacked_rnn_en.ipynb")
                 for target in LINK.findall(body) if not target.startswith(("../en/", "../es/"))]
        table_rows = [line.count("|") for line in body.splitlines() if line.startswith("| [")]
        return headings[1:], ANCHOR.findall(body), links, table_rows

    en, es = skeleton(GUIDES["en"]), skeleton(GUIDES["es"])
    assert en[0] == es[0], "same headings, levels and numbering"
    assert en[1] == es[1], "same anchors in the same order"
    assert en[2] == es[2], "same links and images in the same order"
    assert en[3] == es[3] and len(en[3]) == 29, "one table row per concept, four columns, in both"


@pytest.mark.parametrize("lang", ["en", "es"])
def test_every_internal_link_has_an_anchor(lang):
    body = text(GUIDES[lang])
    anchors = set(ANCHOR.findall(body))
    targets = [t[1:] for t in LINK.findall(body) if t.startswith("#")]
    assert targets and set(targets) <= anchors, sorted(set(targets) - anchors)
    assert len(anchors) == len(ANCHOR.findall(body)), "anchors are unique"


@pytest.mark.parametrize("page", ["guide/README.md", "guide/en/README.md", "guide/es/README.md"])
def test_relative_links_and_images_exist(page):
    path = ROOT / page
    missing = []
    for target in LINK.findall(text(path)):
        if target.startswith(("http://", "https://", "#")):
            continue
        file, _, fragment = target.partition("#")
        resolved = (path.parent / file).resolve()
        if not resolved.exists():
            missing.append(target)
        elif fragment:
            assert fragment in ANCHOR.findall(text(resolved)), f"{page}: {target} has no such anchor"
    assert not missing, f"{page} links to missing files: {missing}"


def test_table_images_are_pngs():
    for name in ["architectures", "training_curves", "predictions_torch", "predictions_keras"]:
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


def test_runner_rejects_an_unclosed_fence(tmp_path):
    from guide.runner import parse
    page = tmp_path / "page.md"
    page.write_text("```python\nprint(1)\n", encoding="utf-8")
    with pytest.raises(ValueError, match="never closed"):
        parse(page)


# --- Executing every block, on every backend ---------------------------------------------------

def run_guide(lang: str, keras_backend: str, keras_home: Path, tmp_path: Path) -> None:
    """Run every block of one guide in a fresh process; each must print its text block."""
    from guide.runner import parse
    report = tmp_path / f"results_{lang}.json"
    proc = subprocess.run([sys.executable, "-m", "guide.runner", str(GUIDES[lang]), "--json", str(report)],
                          cwd=ROOT, env=quiet_env(KERAS_BACKEND=keras_backend, KERAS_HOME=str(keras_home)),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{lang}, KERAS_BACKEND={keras_backend}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    results = json.loads(report.read_text())["results"]
    blocks = parse(GUIDES[lang])
    assert len(results) == len(blocks)
    assert [r["status"] for r in results] == ["ok" if b.executed else "not executed" for b in blocks]
    assert sum(r.get("checked_output", False) for r in results) == sum(b.executed for b in blocks)


@pytest.mark.backend
@pytest.mark.extended
@pytest.mark.slow
def test_guide_blocks_run_and_print_what_the_text_says(keras_backend, keras_home, tmp_path):
    run_guide("en", keras_backend, keras_home, tmp_path)


@pytest.mark.backend
@pytest.mark.extended
@pytest.mark.slow
def test_spanish_guide_blocks_run_and_print_what_the_text_says(keras_backend, keras_home, tmp_path):
    run_guide("es", keras_backend, keras_home, tmp_path)


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


def fake_run(folder: Path, framework: str, backend: str, label: str, epochs: int = 3) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    folder.mkdir(parents=True)
    history = {key: [1.0 / (e + 1) for e in range(epochs)] for key in ("loss", "accuracy", "val_loss", "val_accuracy")}
    (folder / "metrics.json").write_text(json.dumps({
        "framework": framework, "backend": backend, "label": label, "history": history,
        "config": {"subset": None, "batch_size": 8192}}))
    fig = plt.figure(figsize=(1, 1))
    fig.savefig(folder / "predictions.png")
    plt.close(fig)
    return folder


def test_figures_from_runs(tmp_path):
    from guide.figures import draw_from_runs, main
    runs = [fake_run(tmp_path / "t", "torch", "native", "PyTorch"),
            fake_run(tmp_path / "k", "keras", "jax", "Keras (jax)")]
    out = tmp_path / "images"
    out.mkdir()
    written = draw_from_runs(runs, out)
    assert sorted(p.name for p in written) == ["predictions_keras.png", "predictions_torch.png", "training_curves.png"]
    assert (out / "predictions_torch.png").read_bytes() == (runs[0] / "predictions.png").read_bytes()
    with pytest.raises(SystemExit, match="has no metrics.json"):
        main(["--out", str(out), "--from-runs", str(tmp_path / "nowhere")])
