"""The notebooks as pages of the guide's website: run them once, put the results in the docs tree.

    python -m guide.site prepare            # what `make docs` runs before `mkdocs build`
    python -m guide.site prepare --force    # run the notebooks even if nothing changed
    python -m guide.site repository         # the OWNER/NAME the Colab links point at

Each notebook in ``guide/notebooks/`` (stored without outputs) is executed with nbclient in the
quick recipe (2 epochs, batch 64, 2,560 training images), alone in an empty folder as a reader
would run it, into ``.cache/site/``.  A stamp (the notebook's hash and the recipe) skips the run
when nothing changed.  Then each language's copies are written, with a line under the title that
links the .ipynb for download (the site adds Colab and GitHub when the repository is known),
to ``guide/en/notebooks/`` and
``guide/es/notebooks/`` (ignored by git), where mkdocs-jupyter renders them as pages.

Both sites have the same two notebook pages, ``notebooks/keras`` and ``notebooks/pytorch``, so
the language switch leads from one to its counterpart: the Keras notebook in the site's language,
and the PyTorch notebook, which exists in Spanish only (labelled as such on the English site).

The Colab and GitHub links need the repository's GitHub name: ``GUIDE_REPOSITORY`` (OWNER/NAME)
if set, else ``git remote get-url origin`` when it is a GitHub URL.  With neither, the pages carry
no Colab or GitHub link at all (never a placeholder); the download links always work, offline.

Besides, for ``guide/site_hooks.py``: every Markdown page as a notebook of its own
(``page_notebook``: prose as Markdown cells, the code of both tabs, PyTorch then Keras, as code
cells), the Colab and GitHub addresses of a page, and the table of the versions the pages were
executed with (``tested_versions``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "guide"
SOURCES = GUIDE / "notebooks"
CACHE = ROOT / ".cache" / "site"
QUICK = {"GUIDE_EPOCHS": "2", "GUIDE_BATCH_SIZE": "64", "GUIDE_SUBSET": "2560"}  # the one quick recipe (tests use it too)
GITHUB = re.compile(r"^(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)([\w.-]+/[\w.-]+?)(?:\.git)?/?$")
OWNER_NAME = re.compile(r"^[\w.-]+/[\w.-]+$")
# a notebook's link to a guide page, written for the code host: ](../en/walkthrough/index.md#anchor)
GUIDE_LINK = re.compile(r"\]\(\.\./(en|es)/([\w/-]+)\.md(#[\w-]*)?\)")

# page in each language's notebooks/ -> the notebook in guide/notebooks/
PAGES = {
    "en": {"keras.ipynb": "keras_stacked_rnn_en.ipynb", "pytorch.ipynb": "torch_rnn_apiladas_es.ipynb"},
    "es": {"keras.ipynb": "keras_rnn_apiladas_es.ipynb", "pytorch.ipynb": "torch_rnn_apiladas_es.ipynb"},
}
LINKS = {
    "en": "**{name}** · <a href=\"{download}\" download=\"{name}\">Download the notebook</a> (with the outputs "
          "below, from a quick run: 2 epochs, batch 64, 2,560 training images)",
    "es": "**{name}** · <a href=\"{download}\" download=\"{name}\">Descarga el cuaderno</a> (con las salidas "
          "de abajo, de una ejecución rápida: 2 épocas, lotes de 64, 2560 imágenes de entrenamiento)",
}
# Notebook cells are rendered by nbconvert, not MkDocs: links in them are URLs of the built site.
IN_SPANISH = ("*This notebook is in Spanish. [The walkthrough](../../walkthrough/) sets each of its "
              "cells, with English comments, beside its Keras translation.*")


class UserError(Exception):
    """A problem the user can fix; main() prints it as one line and exits 2."""


def repository() -> str | None:
    """OWNER/NAME on GitHub, for the Colab and GitHub links; None when no repository is known."""
    name = os.environ.get("GUIDE_REPOSITORY", "").strip()
    if name:
        if not OWNER_NAME.match(name):
            raise UserError(f"GUIDE_REPOSITORY={name!r} is not OWNER/NAME; set it like GUIDE_REPOSITORY=me/stacked-rnn")
        return name
    try:
        url = subprocess.run(["git", "remote", "get-url", "origin"], cwd=ROOT, capture_output=True,
                             text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        url = ""
    found = GITHUB.match(url)
    return found.group(1) if found else None


# The Pages workflow (.github/workflows/pages.yml) pushes every page's notebook to this branch, as
# LANGUAGE/PATH.ipynb (en/topics/saving.ipynb), for Colab, which opens notebooks from GitHub only.
PAGE_NOTEBOOKS_BRANCH = "guide-notebooks"


def colab_url(repo: str, notebook: str) -> str:
    """Colab's address of one of the three notebooks, committed in guide/notebooks/."""
    return f"https://colab.research.google.com/github/{repo}/blob/main/guide/notebooks/{notebook}"


def page_notebook_path(src_uri: str) -> str:
    """``en/topics/saving.md`` -> ``en/topics/saving.ipynb``: the page's notebook, in the site
    (under the language's folder) and on the notebooks branch."""
    return src_uri.removesuffix(".md") + ".ipynb"


def page_links(repo: str, src_uri: str) -> dict[str, str]:
    """The Colab address of a Markdown page's notebook and the GitHub address of its source."""
    return {"colab": f"https://colab.research.google.com/github/{repo}/blob/{PAGE_NOTEBOOKS_BRANCH}/"
                     f"{page_notebook_path(src_uri)}",
            "github": f"https://github.com/{repo}/blob/main/guide/{src_uri}"}


# --- The versions the pages ran with -----------------------------------------------------------

TESTED = ("torch", "keras", "jax", "tensorflow", "numpy", "matplotlib", "torchmetrics")
DISTRIBUTIONS = {"tensorflow": ("tensorflow", "tensorflow-cpu")}  # the pip names that provide it
VERSION_WORDS = {
    "en": ("Install what the pages use:", "Versions the pages were executed with", "package", "version"),
    "es": ("Instala lo que usan las páginas:", "Versiones con las que se ejecutaron las páginas", "paquete", "versión"),
}


def installed_version(package: str) -> str | None:
    import importlib.metadata
    for name in DISTRIBUTIONS.get(package, (package,)):
        try:
            return importlib.metadata.version(name).split("+")[0]
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def tested_versions(language: str) -> str:
    """Markdown: the ``pip install`` line and a table of the installed versions (this build's)."""
    install, caption, package, version = VERSION_WORDS[language]
    rows = [f"| `{name}` | {installed_version(name) or '—'} |" for name in TESTED]
    python = ".".join(map(str, sys.version_info[:3]))
    return "\n".join([install, "", "```bash", f"pip install {' '.join(TESTED)}", "```", "",
                       f"**{caption}** (Python {python}):", "", f"| {package} | {version} |", "|---|---|",
                       *rows, ""])


# --- Every page as a notebook -------------------------------------------------------------------

FENCE_OPEN = re.compile(r"^(\s*)(```+|~~~+)\s*([\w-]*)(.*)$")
CONTAINER = re.compile(r"^/// (tab|details|admonition|note|warning|tip)(?: \| (.*))?$")
MD_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")


def page_notebook(markdown: str, src_uri: str, site_url: str | None = None):
    """A Markdown page as a notebook: each stretch of prose a Markdown cell, each ``python`` block
    a code cell (both tabs, in the page's order: PyTorch, then Keras), each printed output a
    Markdown cell that shows it.  Links become the site's absolute addresses when ``site_url``
    is known; otherwise they are left as they are."""
    import posixpath

    import nbformat
    language = src_uri.split("/")[0]

    def absolute(match):
        target = match.group(2)
        if not site_url or re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):
            return match.group(0)
        path, _, fragment = target.partition("#")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(src_uri), path))
        head, _, rest = resolved.partition("/")
        if resolved.endswith(".md") and head in ("en", "es"):
            rest = rest.removesuffix(".md")
            rest = "" if rest == "index" else rest.removesuffix("/index") + "/"
            url = ("" if head == "en" else f"{head}/") + rest
        else:
            url = resolved
        return f"{match.group(1)}{site_url.rstrip('/')}/{url}{'#' + fragment if fragment else ''}{match.group(3)}"

    cells, prose, lines = [], [], markdown.split("\n")

    def flush():
        text = "\n".join(prose).strip("\n")
        if text.strip():
            cells.append(nbformat.v4.new_markdown_cell(MD_LINK.sub(absolute, text)))
        prose.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE_OPEN.match(line)
        if fence:
            indent, ticks, info, rest = fence.groups()
            body, i = [], i + 1
            while i < len(lines) and not lines[i].strip().startswith(ticks):
                body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
                i += 1
            i += 1
            if info == "python" and not rest.strip():
                flush()
                cells.append(nbformat.v4.new_code_cell("\n".join(body).strip("\n")))
            else:  # printed output, shell lines, code the page does not run: shown, not run
                prose.extend([f"```{info or 'text'}", *body, "```"])
            continue
        container = CONTAINER.match(line.strip())
        if container:
            kind, title = container.groups()
            prose.append(f"**{title.strip()}**" if title else "")
        elif line.strip() != "///" and "<!-- tested-versions -->" not in line:
            prose.append(line)
        i += 1
    flush()
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"},
                   "guide": {"language": language, "page": f"guide/{src_uri}"}}
    for n, cell in enumerate(nb.cells + cells):
        cell["id"] = f"cell-{n:03d}"
    nb.cells = cells
    return nb


def stamp_of(source: Path) -> str:
    digest = hashlib.sha256(source.read_bytes())
    digest.update(json.dumps(QUICK, sort_keys=True).encode())
    return digest.hexdigest()


def execute(name: str) -> tuple[str, float]:
    """Run one notebook alone, in quick mode, into CACHE/name; skip it if its stamp matches."""
    import nbformat
    from nbclient import NotebookClient

    source, target, stamp = SOURCES / name, CACHE / name, CACHE / f"{name}.stamp"
    if not source.is_file():
        raise UserError(f"{source.relative_to(ROOT)} is missing; write it with python -m guide.notebooks.build")
    wanted = stamp_of(source)
    if target.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return "unchanged", 0.0
    start = time.perf_counter()
    env = {**os.environ, **QUICK}
    env.pop("PYTHONPATH", None)
    env.pop("KERAS_BACKEND", None)  # the notebook's own default, as a reader runs it
    with tempfile.TemporaryDirectory(prefix="guide-site-") as folder:
        shutil.copyfile(source, Path(folder) / name)
        nb = nbformat.read(Path(folder) / name, as_version=4)
        client = NotebookClient(nb, timeout=900, kernel_name="python3",
                                resources={"metadata": {"path": folder}})
        client.execute(env=env)  # the kernel's whole environment
    errors = [f"{o.ename}: {o.evalue}" for c in nb.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    if errors:
        raise UserError(f"{name} failed when run: {errors[0]}")
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    nbformat.write(nb, partial)
    partial.replace(target)
    stamp.write_text(wanted)
    return "executed", time.perf_counter() - start


def site_links(markdown: str, language: str, page_name: str) -> str:
    """Links to guide pages as the built site's URLs, relative to the notebook's page."""
    from mkdocs.utils import get_relative_url

    def in_site(lang: str, path: str) -> str:
        path = path.removesuffix("index").strip("/")
        return ("" if lang == "en" else f"{lang}/") + (f"{path}/" if path else "")

    here = in_site(language, f"notebooks/{Path(page_name).stem}")
    return GUIDE_LINK.sub(lambda m: f"]({get_relative_url(in_site(m[1], m[2]), here)}{m[3] or ''})", markdown)


def page(language: str, page_name: str, notebook: str):
    """The executed notebook with a line of links under its title, as a page of one language."""
    import nbformat
    nb = nbformat.read(CACHE / notebook, as_version=4)
    # the Colab and GitHub links are added by guide/site_hooks.py when the site is built, only
    # when the repository is known then
    lines = [LINKS[language].format(name=notebook, download=f"../{page_name}")]
    if language == "en" and notebook.endswith("_es.ipynb"):
        lines.append(IN_SPANISH)
    cell = nbformat.v4.new_markdown_cell("\n\n".join(lines))
    cell.id = "site-links"
    title = 1 if nb.cells and nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ") else 0
    if title:  # the title alone in its cell, the links right under it
        head, _, rest = nb.cells[0].source.partition("\n")
        nb.cells[0].source = head + (" (in Spanish)" if len(lines) > 1 else "")
        if rest.strip():
            extra = nbformat.v4.new_markdown_cell(rest.strip("\n"))
            extra.id = "site-intro"
            nb.cells.insert(1, extra)
    nb.cells.insert(title, cell)
    for other in nb.cells:
        if other.cell_type == "markdown":
            other.source = site_links(other.source, language, page_name)
    folder = GUIDE / language / "notebooks"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / page_name)


def prepare(force: bool = False) -> None:
    names = sorted({n for pages in PAGES.values() for n in pages.values()})
    if force:
        for name in names:
            (CACHE / f"{name}.stamp").unlink(missing_ok=True)
    # Two at a time: one keeps a core busy, and the machines this runs on have at least two.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for name, (what, seconds) in zip(names, pool.map(execute, names)):
            print(f"{name}: {what}" + (f" in {seconds:.0f} s" if seconds else " (stamp matches)"))
    for language, pages in PAGES.items():
        for page_name, notebook in pages.items():
            page(language, page_name, notebook)
    print("notebook pages written to guide/en/notebooks and guide/es/notebooks")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m guide.site", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("prepare", help="execute the notebooks (quick recipe) and write their pages")
    run.add_argument("--force", action="store_true", help="run them even if the stamp matches (default: off)")
    commands.add_parser("repository", help="print the OWNER/NAME that the Colab links use (or say there is none)")
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            prepare(force=args.force)
        else:
            print(repository() or "no repository known: set GUIDE_REPOSITORY=OWNER/NAME (or a GitHub origin)")
    except UserError as error:
        print(f"guide.site: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
