"""MkDocs hooks for the guide's website (mkdocs.yml names this file under ``hooks:``).

* the Topics section of the navigation: every page in ``topics/``, in the order the reference
  table (``reference.md``) links them, then any page it does not link, by name;
* links to the repository's files outside the site (``../../README.md``, ``../../common``)
  pointed at the repository on GitHub, and links to the other language's pages
  (``../es/index.md``) at that page of the site: the Markdown reads right on the code host too;
* fences such as ```` ```python not-executed ```` (the guide runner's marks) highlighted as python;
* the head's ``<link rel="alternate">`` pointed at each language's root: Material fetches
  ``sitemap.xml`` beside each of them, and only the roots have one.  The language menu's links
  lead to the page's counterpart (mkdocs-static-i18n finds none for the notebook pages), with
  ``target="_self"`` so that Material's click handler leaves them alone;
* each notebook page's ``.ipynb`` beside its folder (``notebooks/keras.ipynb`` beside
  ``notebooks/keras/``), for the page's download link (mkdocs-jupyter's own ``include_source`` does
  not copy it under mkdocs-static-i18n);
* a ``sitemap.xml`` in each language's root;
* one search index per language: mkdocs-static-i18n writes one for both, in the site's root;
  the Spanish pages' ``base`` (which Material's search reads it from) is the Spanish root.
"""
from __future__ import annotations

import json
import logging
import posixpath
import re
import shutil
import sys
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.utils import get_relative_url

DEFAULT_LANGUAGE = "en"  # built at the site's root; the others in a folder named after them
LANGUAGE_FOLDERS = ("en", "es")
OTHER_LANGUAGE = "other-language:"  # a scheme, so MkDocs leaves the link alone
TOPICS_SECTION = "Topics"
TOPIC_LINK = re.compile(r"\]\((?:\./)?topics/([\w-]+\.md)(?:#[\w-]*)?\)")
FENCE_MARKS = re.compile(r"^(\s*```+\s*python)[ \t]+(?:not-executed|notebook)[ \t]*$", re.M)
MENU_LINK = re.compile(r'<a href="[^"]*" hreflang="([\w-]+)" class="md-select__link">')
ALTERNATE = re.compile(r'<link rel="alternate" href="[^"]*" hreflang="([\w-]+)">')


def topic_pages(docs_dir: Path, language: str = "en") -> list[str]:
    """``topics/NAME.md`` for every topic page, in the reference table's order."""
    folder = docs_dir / language / "topics"
    present = sorted(p.name for p in folder.glob("*.md")) if folder.is_dir() else []
    reference = docs_dir / language / "reference.md"
    linked = TOPIC_LINK.findall(reference.read_text(encoding="utf-8")) if reference.is_file() else []
    ordered = [name for name in dict.fromkeys(linked) if name in present]
    return [f"topics/{name}" for name in ordered + [n for n in present if n not in ordered]]


log = logging.getLogger("mkdocs.hooks.site")  # a warning here fails the strict build


def pages_of(docs_dir: Path, language: str) -> set[str]:
    folder = docs_dir / language
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.suffix in (".md", ".ipynb")}


@event_priority(100)  # before mkdocs-static-i18n (-100) builds each language's navigation
def on_config(config):
    # mkdocs-static-i18n would quietly show the English page in the Spanish site
    english, spanish = (pages_of(Path(config.docs_dir), language) for language in LANGUAGE_FOLDERS)
    for missing, language in ((english - spanish, "es"), (spanish - english, "en")):
        for page in sorted(missing):
            log.warning(f"guide/{language}/{page} is missing: every page needs its counterpart")
    for entry in config.nav or []:
        if isinstance(entry, dict) and TOPICS_SECTION in entry and not entry[TOPICS_SECTION]:
            entry[TOPICS_SECTION] = topic_pages(Path(config.docs_dir))
    return config


@event_priority(-200)  # after mkdocs-static-i18n (-100), which rebuilds every File as a plain one
def on_files(files, config):
    """Notebooks back to mkdocs-jupyter's NotebookFile, so that they are pages, not static files."""
    from mkdocs_jupyter.plugin import NotebookFile
    for plain in [f for f in files if f.src_uri.endswith(".ipynb") and not isinstance(f, NotebookFile)]:
        notebook = NotebookFile(plain, **config)
        # where mkdocs-static-i18n put it (the default language at the root)
        notebook.dest_path, notebook.abs_dest_path, notebook.url = plain.dest_uri, plain.abs_dest_path, plain.url
        files.remove(plain)
        files.append(notebook)
    return files


def _language_url(language: str, path: str) -> str:
    """The site-relative URL of a page at ``path`` (its URL inside its language) in ``language``."""
    return path if language == DEFAULT_LANGUAGE else f"{language}/{path}"


ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"(\]\()([^)\s]+)(\))")
FENCE = re.compile(r"^\s*(```|~~~)")


def _page_url(path: str) -> str:
    """``walkthrough/index.md`` -> ``walkthrough/``, ``differ.md`` -> ``differ/``."""
    path = path.removesuffix(".md").removesuffix(".ipynb")
    path = "" if path == "index" else path.removesuffix("/index")
    return f"{path}/" if path else ""


def _relink(target: str, page, config, files) -> str:
    if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):
        return target
    path, _, fragment = target.partition("#")
    fragment = f"#{fragment}" if fragment else ""
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), path))
    language = page.file.src_uri.split("/")[0]
    head, _, rest = resolved.partition("/")
    if (head != language and head in LANGUAGE_FOLDERS and rest.endswith(".md")
            and (Path(config.docs_dir) / resolved).is_file()):
        # MkDocs builds one language at a time and would call the other's page missing: the link
        # is checked here and written as a placeholder that on_post_page turns into a URL
        return f"{OTHER_LANGUAGE}{_language_url(head, _page_url(rest))}{fragment}"
    on_disk = (Path(config.docs_dir) / resolved).resolve()
    inside = on_disk.is_relative_to(Path(config.docs_dir).resolve())
    is_page = inside and on_disk.suffix in (".md", ".ipynb") and on_disk.is_relative_to(Path(config.docs_dir, language).resolve())
    if on_disk.exists() and not is_page and not (inside and on_disk.is_file() and on_disk.suffix in (".png", ".svg", ".jpg")):
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from guide.site import repository
        kind = "tree" if on_disk.is_dir() else "blob"
        return f"https://github.com/{repository()}/{kind}/main/{on_disk.relative_to(ROOT).as_posix()}{fragment}"
    return target


def on_page_markdown(markdown, page, config, files):
    lines, fenced = [], False
    for line in markdown.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            line = LINK.sub(lambda m: m[1] + _relink(m[2], page, config, files) + m[3], line)
        lines.append(line)
    return FENCE_MARKS.sub(r"\1", "\n".join(lines))


def _language_url(language: str, path: str) -> str:
    """The site-relative URL of the page whose URL inside its language is ``path``."""
    return path if language == DEFAULT_LANGUAGE else f"{language}/{path}"


def on_post_page(output, page, config):
    def to_root(match):
        root = _language_url(match.group(1), "./" )
        return f'<link rel="alternate" href="{get_relative_url(root, page.url)}" hreflang="{match.group(1)}">'

    # The menu: mkdocs-static-i18n finds no counterpart for the notebook pages (files it does not
    # take for pages), links the home page with an absolute "/", which breaks in a subfolder.
    language, _, inner = page.file.src_uri.partition("/")
    path = page.url if language == DEFAULT_LANGUAGE else page.url.removeprefix(f"{language}/")

    def to_counterpart(match):
        other = match.group(1)
        target = _language_url(other, path if (Path(config.docs_dir) / other / inner).is_file() else "./")
        # target="_self": Material's click handler then leaves the link alone (it would map the
        # page through the other language's sitemap.xml, whose URLs carry make docs-serve's port)
        return (f'<a href="{get_relative_url(target, page.url)}" hreflang="{other}" target="_self" '
                f'class="md-select__link">')

    output = ALTERNATE.sub(to_root, output)
    if language != DEFAULT_LANGUAGE:  # Material reads the search index from {base}/search/
        base = get_relative_url(_language_url(language, "./"), page.url).rstrip("/") or "."
        output = re.sub(r'("base": )"[^"]*"', lambda m: f'{m[1]}"{base}"', output, count=1)
    output = re.sub(rf'href="{OTHER_LANGUAGE}([^"#]*)', lambda m: f'href="{get_relative_url(m[1] or "./", page.url)}', output)
    output = MENU_LINK.sub(to_counterpart, output)
    if page.file.src_uri.endswith(".ipynb"):
        dest = Path(page.file.abs_dest_path)  # .../notebooks/keras/index.html
        shutil.copyfile(page.file.abs_src_path, dest.parent.parent / Path(page.file.src_uri).name)
    return output


@event_priority(-200)  # after mkdocs-static-i18n (-100) has built every language and its index
def on_post_build(config):
    """Each language's root gets the sitemap (both languages' pages), which Material fetches,
    and a search index of its own pages."""
    site = Path(config.site_dir)
    index_path = site / "search" / "search_index.json"
    index = json.loads(index_path.read_text(encoding="utf-8")) if index_path.is_file() else {"docs": []}
    prefixes = {language: f"{language}/" for language in LANGUAGE_FOLDERS if language != DEFAULT_LANGUAGE}
    if any(doc["location"].startswith(tuple(prefixes.values())) for doc in index["docs"]):
        for language, prefix in prefixes.items():
            own = [{**doc, "location": doc["location"][len(prefix):]} for doc in index["docs"]
                   if doc["location"].startswith(prefix)]
            (site / language / "search").mkdir(parents=True, exist_ok=True)
            (site / language / "search" / "search_index.json").write_text(
                json.dumps({**index, "docs": own}, ensure_ascii=False), encoding="utf-8")
        index["docs"] = [doc for doc in index["docs"] if not doc["location"].startswith(tuple(prefixes.values()))]
        index_path.write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")
    for alternate in config.extra.get("alternate", []):
        root = site / _language_url(alternate["lang"], "")
        if (site / "sitemap.xml").is_file() and root.is_dir() and root != site:
            shutil.copyfile(site / "sitemap.xml", root / "sitemap.xml")
