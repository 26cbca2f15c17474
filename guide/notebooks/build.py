"""Write the guide's notebooks from their plain sources in ``guide/notebooks/src/``.

    python -m guide.notebooks.build           # (re)write the .ipynb files
    python -m guide.notebooks.build --check   # exit 1 if a committed file differs

A source is a Python file in the keras-io "tutobook" style: prose sits in
top-level triple-quoted strings between the code.  Each string becomes a
markdown cell and each stretch of code between two strings a code cell, so the
source runs as a script (its labels show both languages) and reads as the notebook.  Rules:

* a string opened by ``\"\"\"en`` or ``\"\"\"es`` goes only into that language's notebook;
  a bare ``\"\"\"`` goes into every one;
* the code is the same in every language; only its comments and the text of its strings
  are chosen by language.  A comment line ``# en: ...`` or ``# es: ...`` goes only into
  that language's cell, without its tag; a line of code may end in both,
  ``x = f(x)  # en: why  # es: por qué``; and ``«English|Español»`` inside a string
  keeps one side (the English side holds no ``|``; a choice stays on one line).  Untagged
  comments (shapes such as ``# (batch, 28, 8)``) go everywhere.  ``tests/test_notebooks.py``
  checks that both languages run the same code (``guide.runner.code_signature``);
* code before the first string is the file's header, not a cell;
* a stretch of code that is one line ``# install: keras>=3.15 jax matplotlib`` becomes the
  install cell (``install_cell``): it installs, with pip, those of the packages that are
  missing or older than the minimum given, and nothing else, so it is harmless where they are
  present (the tests' machine) and brings what Colab lacks (a recent Keras, torchinfo);
* the notebooks are stored without outputs, with fixed cell ids.

Edit the sources, never the .ipynb files: ``tests/test_notebooks.py`` fails when
they differ from what this writes, and runs each one in quick mode.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"

# notebook -> (source file, language)
NOTEBOOKS = {
    "keras_stacked_rnn_en.ipynb": ("keras_stacked_rnn.py", "en"),
    "keras_rnn_apiladas_es.ipynb": ("keras_stacked_rnn.py", "es"),
    "torch_rnn_apiladas_es.ipynb": ("torch_rnn_apiladas.py", "es"),
}
LANGUAGES = ("en", "es")
OPEN = re.compile(r'^"""(en|es)?\s*$')
CLOSE = re.compile(r'^"""\s*$')
TAGGED_LINE = re.compile(r"^(\s*)# (en|es): ?(.*)$")
TAGGED_END = re.compile(r"^(.*?\S)(\s+)# en: (.*?)\s+# es: (.*)$")
CHOICE = re.compile(r"«([^«»|]*)\|([^«»]*)»")
INSTALL = re.compile(r"^# install: (.+)$")
INSTALL_WORDS = {
    "en": ("Installs what this notebook needs and this machine lacks (on Colab: {lacks});",
           "where everything is present, as on the tests' machine, it installs nothing.",
           "the notebook needs"),
    "es": ("Instala lo que este cuaderno necesita y falta en esta máquina (en Colab: {lacks});",
           "donde ya está todo, como en la máquina de las pruebas, no instala nada.",
           "lo que necesita el cuaderno"),
}
COLAB_LACKS = {"keras": {"en": "a recent Keras", "es": "un Keras reciente"}, "torchinfo": {"en": "torchinfo", "es": "torchinfo"}}


def install_cell(requirements: str, language: str) -> str:
    """The notebook's first code cell: pip installs those of ``requirements`` ("keras>=3.15 jax")
    that are missing or older than their minimum, and nothing when all are there."""
    needed = {}
    for requirement in requirements.split():
        name, _, least = requirement.partition(">=")
        needed[name] = least
    first, second, what = INSTALL_WORDS[language]
    lacks = ", ".join(COLAB_LACKS[name][language] for name in needed if name in COLAB_LACKS)
    return "\n".join([
        f"# {first.format(lacks=lacks)}",
        f"# {second}",
        "import importlib.metadata",
        "import re",
        "import subprocess",
        "import sys",
        "",
        f"NEEDED = {needed!r}  # {what}: package -> least version",
        "",
        "",
        "def version(text):",
        "    return tuple(int(n) for n in re.findall(r\"\\d+\", text.split(\"+\")[0])[:3])",
        "",
        "",
        "def lacking(name, least):",
        "    try:",
        "        have = importlib.metadata.version(name)",
        "    except importlib.metadata.PackageNotFoundError:",
        "        return True",
        "    return bool(least) and version(have) < version(least)",
        "",
        "",
        "missing = [f\"{name}>={least}\" if least else name for name, least in NEEDED.items() if lacking(name, least)]",
        "if missing:",
        "    subprocess.check_call([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", *missing])",
        "print(\"pip install:\", \" \".join(missing) or \"-\")",
    ])


def is_install_cell(code: str) -> bool:
    """Whether a code cell is the one ``install_cell`` writes (the walkthrough does not show it)."""
    return "NEEDED = {" in code and "pip\", \"install\"" in code


def localise(code: list[str], language: str, where: str = "", first: int = 1) -> list[str]:
    """One language's version of some source lines (the first is line ``first`` of ``where``):
    its tagged comments and string text."""
    out: list[str] = []
    run: set[str] = set()  # the languages of the current run of tagged comment lines
    for n, line in enumerate(code + [""]):
        tagged = TAGGED_LINE.match(line)
        if tagged is None and run:
            if run != set(LANGUAGES):
                raise ValueError(f"{where}:{first + n - 1}: this comment is in {''.join(run)} only")
            run = set()
        if tagged is not None:
            indent, tag, text = tagged.groups()
            run.add(tag)
            if tag == language:
                out.append(f"{indent}# {text}".rstrip())
            continue
        end = TAGGED_END.match(line)
        if end is not None:
            line = f"{end.group(1)}{end.group(2)}# {end.group(3 if language == 'en' else 4)}"
        line = CHOICE.sub(lambda m: m.group(1 if language == "en" else 2), line)
        if "«" in line or "»" in line or re.search(r"# (en|es):", line):
            raise ValueError(f"{where}:{first + n}: a language marker the build cannot read: {line.strip()}")
        out.append(line)
    return out[:-1]


def parse(path: Path, language: str) -> list[tuple[str, str]]:
    """The cells of one source for one language, as ``(kind, text)`` with kind "markdown" or "code"."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    cells: list[tuple[str, str]] = []
    code: list[str] = []
    seen_prose = False
    i = 0

    def flush_code(end: int):  # end: the index of the line after the code
        text = "\n".join(localise(code, language, str(path), end - len(code) + 1)).strip("\n")
        install = INSTALL.match(text)
        if install and "\n" not in text:
            text = install_cell(install.group(1), language)
        if text and seen_prose:  # code before the first string is the file's header
            cells.append(("code", text))
        code.clear()

    while i < len(lines):
        opening = OPEN.match(lines[i])
        if opening is None:
            code.append(lines[i])
            i += 1
            continue
        start, tag, body = i, opening.group(1), []
        i += 1
        while i < len(lines) and not CLOSE.match(lines[i]):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"{path}:{start + 1}: the prose string opened here is never closed")
        i += 1
        flush_code(start)
        seen_prose = True
        if tag in (None, language):
            cells.append(("markdown", "\n".join(body).strip("\n")))
    flush_code(len(lines))
    return cells


def notebook(name: str) -> nbformat.NotebookNode:
    """One notebook, with fixed cell ids and no outputs."""
    source, language = NOTEBOOKS[name]
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "guide": {"language": language, "source": f"guide/notebooks/src/{source}",
                  "generated_by": "python -m guide.notebooks.build"},
    }
    stem = Path(name).stem
    for i, (kind, text) in enumerate(parse(SOURCES / source, language)):
        cell = nbformat.v4.new_code_cell(text) if kind == "code" else nbformat.v4.new_markdown_cell(text)
        cell["id"] = f"{stem}-{i:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(name: str) -> str:
    return nbformat.writes(notebook(name)) + "\n"


def code_cells(name: str, language: str | None = None) -> list[str]:
    """The code cells of one notebook, in order, as the notebook holds them; with ``language``,
    as its source gives them in that language (the PyTorch notebook's code in English, say)."""
    source, own = NOTEBOOKS[name]
    language = language or own
    return [text for kind, text in parse(SOURCES / source, language) if kind == "code"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m guide.notebooks.build", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if a file differs")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        path, text = HERE / name, render(name)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        elif not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python -m guide.notebooks.build", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
