"""MkDocs hooks for the guide's website (mkdocs.yml names this file under ``hooks:``).

* the Topics section of the navigation: its index is the reference table (``topics/index.md``),
  then one group per group of the table's rows (the bold line above each table), each holding
  its pages in the table's order, then any page no row links; the Spanish names of the groups
  come from the Spanish table, in the same order;
* the marker line ``<!-- tested-versions -->`` replaced by the ``pip install`` line and the
  versions of the installed packages (``guide.site.tested_versions``);
* under each Markdown page's title, a line of links: download the page as a notebook (always;
  the notebook is written into the site beside the page's folder, ``topics/saving.ipynb``), and,
  only when the repository is known, open it in Colab and read its source on GitHub;
* links to the repository's files outside the site (``../../README.md``, ``../../common``)
  pointed at the repository on GitHub when it is known, and links to the other language's pages
  (``../es/index.md``) at that page of the site: the Markdown reads right on the code host too;
  a link to the old ``reference.md`` leads to the table's new place, ``topics/index.md``;
* fences such as ```` ```python not-executed ```` (the guide runner's marks) highlighted as python;
* the reference table as one card per row on a phone: each cell gets its column's name
  (``data-label``, shown by ``assets/extra.css``);
* the permalink's tooltip in the page's language;
* the head's ``<link rel="alternate">`` pointed at each language's root: Material fetches
  ``sitemap.xml`` beside each of them, and only the roots have one.  The language menu's links
  lead to the page's counterpart (mkdocs-static-i18n finds none for the notebook pages), with
  ``target="_self"`` so that Material's click handler leaves them alone;
* each notebook page's ``.ipynb`` beside its folder (``notebooks/keras.ipynb`` beside
  ``notebooks/keras/``), for the page's download link (mkdocs-jupyter's own ``include_source`` does
  not copy it under mkdocs-static-i18n);
* a ``sitemap.xml`` in each language's root;
* one search index per language: mkdocs-static-i18n writes one for both, in the site's root;
  the Spanish pages' ``base`` (which Material's search reads it from) is the Spanish root;
* the 404 pages made to work from any folder (``on_post_build``).
"""
from __future__ import annotations

import html
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
TOPICS_INDEX = "topics/index.md"  # the reference table
GROUP = re.compile(r"^\*\*([^*]+)\*\*\s*$")  # a group's name: a bold line of its own above its table
TOPIC_LINK = re.compile(r"\]\((?:\./)?([\w-]+\.md)(?:#[\w-]*)?\)")
FENCE_MARKS = re.compile(r"^(\s*```+\s*python)[ \t]+(?:not-executed|notebook)[ \t]*$", re.M)
MENU_LINK = re.compile(r'<a href="[^"]*" hreflang="([\w-]+)" class="md-select__link">')
ALTERNATE = re.compile(r'<link rel="alternate" href="[^"]*" hreflang="([\w-]+)">')
TESTED_VERSIONS = "<!-- tested-versions -->"
PERMALINK = {"en": "Permanent link", "es": "Enlace permanente"}  # Python-Markdown writes the English one
NOTEBOOK_LINKS = {
    "en": ("Download this page as a notebook", "Open in Colab", "Source on GitHub"),
    "es": ("Descarga esta página como cuaderno", "Ábrela en Colab", "Fuente en GitHub"),
}
ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"(!?\[(?:[^\[\]]|\[[^\]]*\])*\])\(([^)\s]+)\)")  # [text](target), text may hold [x]
FENCE = re.compile(r"^\s*(```|~~~)")

log = logging.getLogger("mkdocs.hooks.site")  # a warning here fails the strict build
REPOSITORY: dict[str, str | None] = {}  # "name": OWNER/NAME or None, found once per build (on_config)


def _site_module():
    """guide.site (the repository's name, the versions, the page notebooks)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import guide.site
    return guide.site


# --- The navigation -----------------------------------------------------------------------------

def topic_groups(docs_dir: Path, language: str = "en") -> list[tuple[str, list[str]]]:
    """``(group name, [topics/NAME.md, ...])`` in the reference table's order: one group per bold
    line of the table page, with the topic pages its rows link; the pages no row links come last,
    by name, in a group named after the section."""
    folder = docs_dir / language / "topics"
    present = sorted(p.name for p in folder.glob("*.md") if p.name != "index.md") if folder.is_dir() else []
    table = folder / "index.md"
    groups: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    for line in (table.read_text(encoding="utf-8").splitlines() if table.is_file() else []):
        named = GROUP.match(line)
        if named:
            groups.append((named.group(1).strip(), []))
        elif groups and line.startswith("|"):
            for name in TOPIC_LINK.findall(line):
                if name in present and name not in seen:
                    seen.add(name)
                    groups[-1][1].append(f"topics/{name}")
    rest = [f"topics/{n}" for n in present if n not in seen]
    if rest:
        groups.append((TOPICS_SECTION, rest))
    return [(name, pages) for name, pages in groups if pages]


def topic_pages(docs_dir: Path, language: str = "en") -> list[str]:
    """``topics/NAME.md`` for every topic page, in the reference table's order."""
    return [page for _, pages in topic_groups(docs_dir, language) for page in pages]


def pages_of(docs_dir: Path, language: str) -> set[str]:
    folder = docs_dir / language
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.suffix in (".md", ".ipynb")}


@event_priority(100)  # before mkdocs-static-i18n (-100) builds each language's navigation
def on_config(config):
    # mkdocs-static-i18n would quietly show the English page in the Spanish site
    REPOSITORY["name"] = _site_module().repository()  # once per build: it may ask git
    docs = Path(config.docs_dir)
    english_pages, spanish_pages = (pages_of(docs, language) for language in LANGUAGE_FOLDERS)
    for missing, language in ((english_pages - spanish_pages, "es"), (spanish_pages - english_pages, "en")):
        for page in sorted(missing):
            log.warning(f"guide/{language}/{page} is missing: every page needs its counterpart")
    english = topic_groups(docs, DEFAULT_LANGUAGE)
    for entry in config.nav or []:
        if isinstance(entry, dict) and TOPICS_SECTION in entry and not entry[TOPICS_SECTION]:
            entry[TOPICS_SECTION] = [TOPICS_INDEX] + [{name: pages} for name, pages in english]
    # The groups' names in the other languages: the same groups of the same table, in order.
    i18n = config.plugins.get("i18n")
    for language in (i18n.config.languages if i18n else []):
        if language.locale == DEFAULT_LANGUAGE:
            continue
        names = [name for name, _ in topic_groups(docs, language.locale)]
        if len(names) != len(english):
            log.warning(f"guide/{language.locale}/{TOPICS_INDEX} has {len(names)} groups of topics, "
                        f"guide/{DEFAULT_LANGUAGE}/{TOPICS_INDEX} has {len(english)}")
        language.nav_translations = {**dict(zip([name for name, _ in english], names)),
                                     **(language.nav_translations or {})}
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


# --- The Markdown ---------------------------------------------------------------------------------

def _language_url(language: str, path: str) -> str:
    """The site-relative URL of a page at ``path`` (its URL inside its language) in ``language``."""
    return path if language == DEFAULT_LANGUAGE else f"{language}/{path}"


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
    if resolved.endswith("/reference.md") and not (Path(config.docs_dir) / resolved).is_file():
        # the reference table moved to topics/index.md: a page that still links the old place gets there
        moved = f"{resolved.rpartition('/')[0]}/{TOPICS_INDEX}"
        return posixpath.relpath(moved, posixpath.dirname(page.file.src_uri) or ".") + fragment
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
        repo = REPOSITORY.get("name")
        if repo is None:  # no repository known: no address on a code host to give, so no link
            return None
        kind = "tree" if on_disk.is_dir() else "blob"
        return f"https://github.com/{repo}/{kind}/main/{on_disk.relative_to(ROOT).as_posix()}{fragment}"
    return target


def _notebook_links(page, language: str) -> str:
    """The line of links under a Markdown page's title (raw HTML, which MkDocs leaves alone)."""
    site = _site_module()
    notebook = site.page_notebook_path(page.file.src_uri)  # en/topics/saving.ipynb
    in_site = _language_url(language, notebook.partition("/")[2])
    download, colab, github = NOTEBOOK_LINKS[language]
    links = [f'<a class="page-notebook" href="{get_relative_url(in_site, page.url)}" '
             f'download="{Path(notebook).name}">{download}</a>']
    repo = REPOSITORY.get("name")
    if repo:
        addresses = site.page_links(repo, page.file.src_uri)
        links += [f'<a class="page-colab" href="{html.escape(addresses["colab"])}">{colab}</a>',
                  f'<a class="page-github" href="{html.escape(addresses["github"])}">{github}</a>']
    return '<p class="page-links" markdown="0">' + " · ".join(links) + "</p>"


def _link(match, page, config, files) -> str:
    target = _relink(match[2], page, config, files)
    if target is None:  # the link's text alone
        return match[1][1:-1] if match[1].startswith("[") else match[1]
    return f"{match[1]}({target})"


def on_page_markdown(markdown, page, config, files):
    language = page.file.src_uri.split("/")[0]
    if TESTED_VERSIONS in markdown:
        markdown = markdown.replace(TESTED_VERSIONS, _site_module().tested_versions(language))
    if page.file.src_uri.endswith(".md"):
        page.meta["notebook"] = markdown  # written into the site as the page's notebook by on_post_page
        title = re.search(r"^# .*$", markdown, re.M)
        if title:
            markdown = f"{markdown[:title.end()]}\n\n{_notebook_links(page, language)}\n{markdown[title.end():]}"
    lines, fenced = [], False
    for line in markdown.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            line = LINK.sub(lambda m: _link(m, page, config, files), line)
        lines.append(line)
    return FENCE_MARKS.sub(r"\1", "\n".join(lines))


# --- The HTML -------------------------------------------------------------------------------------

TABLE = re.compile(r"<table>(.*?)</table>", re.S)
HEADER_CELL = re.compile(r"<th[^>]*>(.*?)</th>", re.S)
ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
DATA_CELL = re.compile(r"<td([^>]*)>")


def label_table_cells(content: str) -> str:
    """Each table as cards on a phone (assets/extra.css): ``data-labelled``, and every cell its
    column's name in ``data-label``."""
    def one(table):
        body = table.group(1)
        names = [html.escape(re.sub(r"<[^>]+>", "", name).strip(), quote=True) for name in HEADER_CELL.findall(body)]
        if not names:
            return table.group(0)

        def row(match):
            cells = iter(names)
            return "<tr>" + DATA_CELL.sub(lambda c: f'<td{c.group(1)} data-label="{next(cells, "")}">', match.group(1)) + "</tr>"
        return "<table data-labelled>" + ROW.sub(row, body) + "</table>"
    return TABLE.sub(one, content)


# Pages that mention every topic in passing: the reference table and the two long notebooks. Search
# ranks them below the page that explains what a learner typed (Material reads meta.search.boost).
SEARCH_BELOW = re.compile(r"^(en|es)/(topics/index\.md|notebooks/[\w-]+\.ipynb)$")


def on_page_content(content, page, config, files):
    if page.file.src_uri.endswith(".md"):
        content = label_table_cells(content)
    return content


@event_priority(100)  # before Material's search plugin indexes the page
def on_page_context(context, page, config, nav):
    if SEARCH_BELOW.match(page.file.src_uri):
        page.meta = {**(page.meta or {}), "search": {"boost": 0.5, **(page.meta or {}).get("search", {})}}
    return context


HEADING_ID = re.compile(r'<h[1-6] id="([^"]+)"')
ANCHOR_HREF = re.compile(r'href="#([^"]+)"')


def _mend_notebook_anchors(output: str) -> str:
    """mkdocs-jupyter's table of contents slugs a heading without its code (``#a-model-with-several-layers``)
    while nbconvert's heading keeps it (``a-model-with-several-rnn-layers``): each link to a missing
    anchor goes to the heading whose words hold the link's, in order."""
    ids = HEADING_ID.findall(output)
    present = set(re.findall(r'\bid="([^"]+)"', output))

    def holds(words: list[str], candidate: str) -> bool:
        rest = iter(candidate.split("-"))
        return all(word in rest for word in words)  # a subsequence, in order

    def mend(match):
        anchor = match.group(1)
        if anchor in present:
            return match.group(0)
        found = [i for i in ids if holds(anchor.split("-"), i)]
        return f'href="#{found[0]}"' if found else match.group(0)
    return ANCHOR_HREF.sub(mend, output)


def _notebook_page_links(output: str, page, language: str) -> str:
    """A notebook page's line of links (written by guide.site prepare: the download link) gets
    the Colab and GitHub links when the repository is known."""
    site = _site_module()
    repo = REPOSITORY.get("name")
    notebook = site.PAGES.get(language, {}).get(Path(page.file.src_uri).name)
    if not repo or not notebook:
        return output
    download = re.search(rf'<a [^>]*download="{re.escape(notebook)}"[^>]*>.*?</p>', output, re.S)
    if not download:
        return output
    _, colab, github = NOTEBOOK_LINKS[language]
    links = (f' · <a class="page-colab" href="{html.escape(site.colab_url(repo, notebook))}">{colab}</a>'
             f' · <a class="page-github" href="https://github.com/{repo}/blob/main/guide/notebooks/{notebook}">{github}</a>')
    end = download.end() - len("</p>")
    return output[:end] + links + output[end:]


def on_post_page(output, page, config):
    def to_root(match):
        root = _language_url(match.group(1), "./")
        return f'<link rel="alternate" href="{get_relative_url(root, page.url)}" hreflang="{match.group(1)}">'

    # The menu: mkdocs-static-i18n finds no counterpart for the notebook pages (files it does not
    # take for pages), links the home page with an absolute "/", which breaks in a subfolder.
    language, _, inner = page.file.src_uri.partition("/")
    path = page.url if language == DEFAULT_LANGUAGE else page.url.removeprefix(f"{language}/")

    def to_counterpart(match):
        other = match.group(1)
        target = _language_url(other, path if (Path(config.docs_dir) / other / inner).is_file() else "./")
        # target="_self": Material's click handler then leaves the link alone (it would map the
        # page through the other language's sitemap.xml)
        return (f'<a href="{get_relative_url(target, page.url)}" hreflang="{other}" target="_self" '
                f'class="md-select__link">')

    output = ALTERNATE.sub(to_root, output)
    if language != DEFAULT_LANGUAGE:  # Material reads the search index from {base}/search/
        base = get_relative_url(_language_url(language, "./"), page.url).rstrip("/") or "."
        output = re.sub(r'("base": )"[^"]*"', lambda m: f'{m[1]}"{base}"', output, count=1)
    output = re.sub(rf'href="{OTHER_LANGUAGE}([^"#]*)', lambda m: f'href="{get_relative_url(m[1] or "./", page.url)}', output)
    output = MENU_LINK.sub(to_counterpart, output)
    if language in PERMALINK:
        output = output.replace('title="Permanent link"', f'title="{PERMALINK[language]}"')
    if "notebook" in page.meta:  # the page as a notebook, beside its folder: topics/saving.ipynb
        import nbformat
        site = _site_module()
        notebook = site.page_notebook(page.meta.pop("notebook"), page.file.src_uri, config.site_url or None)
        target = Path(config.site_dir) / _language_url(language, site.page_notebook_path(page.file.src_uri).partition("/")[2])
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
    if page.file.src_uri.endswith(".ipynb"):
        output = _notebook_page_links(_mend_notebook_anchors(output), page, language)
        dest = Path(page.file.abs_dest_path)  # .../notebooks/keras/index.html
        shutil.copyfile(page.file.abs_src_path, dest.parent.parent / Path(page.file.src_uri).name)
    return output


# --- After the build ------------------------------------------------------------------------------

# The 404 page is served for any missing address, at any depth, so its links cannot be relative
# to where it is. MkDocs writes them from the site's root path ("/", or the path of site_url);
# this script, first in the page's head, finds the site's root in the address instead: the part
# before the first of the site's top folders or language folders; else the path of site_url, if
# the address is under it; else the deepest folder of the address that holds the site's search
# index (asked with a HEAD request). It sets the document's base there, so that the same page
# works at / and under /REPO/. On the Spanish part of the site (ROOT/es/...), the root's 404
# page hands over to the Spanish one.
ROOT_FINDER = """<script>(function () {
  var tops = %(tops)s, languages = %(languages)s, own = %(own)s, known = %(known)s;
  var parts = location.pathname.split("/").slice(1, -1), root = null, i;
  var folder = function (n) { return "/" + parts.slice(0, n).join("/") + (n ? "/" : ""); };
  for (i = 0; i < parts.length && root === null; i++) {
    if (tops.indexOf(parts[i]) >= 0 || languages.indexOf(parts[i]) >= 0) root = folder(i);
  }
  if (root === null && known !== "/" && location.pathname.indexOf(known) === 0) root = known;
  for (i = parts.length; i >= 0 && root === null; i--) {
    try {
      var probe = new XMLHttpRequest();
      probe.open("HEAD", folder(i) + "search/search_index.json", false);
      probe.send();
      if (probe.status === 200) root = folder(i);
    } catch (error) {}
  }
  root = root || known;
  var rest = location.pathname.slice(root.length);
  if (!own) {
    for (i = 0; i < languages.length; i++) {
      if (rest.indexOf(languages[i] + "/") === 0) { location.replace(root + languages[i] + "/404.html"); return; }
    }
  }
  window.__siteBase = root + (own ? own + "/" : "");
  document.write('<base href="' + window.__siteBase + '">' + %(page)s);
})();</script>"""
# Material's own scripts take the site's root from its JSON configuration: the same root.
CONFIG_PATCH = """<script>(function () {
  var element = document.getElementById("__config"), config = JSON.parse(element.textContent);
  config.base = window.__siteBase; element.textContent = JSON.stringify(config);
})();</script>"""


def _relative_404(page: str, site_path: str, language: str) -> str:
    """A 404 page's absolute links (MkDocs writes them from ``site_path``, the root) made relative
    to its language's folder, which ROOT_FINDER makes the document's base; the language menu and
    the alternate links lead to each language's root."""
    up = "" if language == DEFAULT_LANGUAGE else "../"
    here = _language_url(language, "./")
    page = re.sub(r'((?:href|src)=")' + re.escape(site_path), lambda m: m[1] + up, page)
    page = MENU_LINK.sub(lambda m: (f'<a href="{get_relative_url(_language_url(m[1], "./"), here)}" hreflang="{m[1]}" '
                                    f'target="_self" class="md-select__link">'), page)
    return ALTERNATE.sub(lambda m: f'<link rel="alternate" href="{get_relative_url(_language_url(m[1], "./"), here)}" '
                                   f'hreflang="{m[1]}">', page)


@event_priority(-200)  # after mkdocs-static-i18n (-100) has built every language and its index
def on_post_build(config):
    """Each language's root gets the sitemap (both languages' pages), which Material fetches,
    and a search index of its own pages; the 404 pages work under a sub-folder."""
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
    from urllib.parse import urlsplit
    known = urlsplit(config.site_url or "/").path or "/"
    known = known if known.endswith("/") else known + "/"
    tops = sorted(p.name for p in site.iterdir() if p.is_dir() and p.name not in LANGUAGE_FOLDERS)
    for language, text in NOT_FOUND.items():  # every language built so far, from its own template
        own = "" if language == DEFAULT_LANGUAGE else language
        text = _relative_404(text, known, language)
        config_end = re.search(r'<script id="__config"[^>]*>.*?</script>', text, re.S)
        if config_end:
            text = text[:config_end.end()] + CONFIG_PATCH + text[config_end.end():]
        # Everything after <head> is written by the script, once the base is set: the browser's
        # preloader would otherwise fetch every asset from the wrong folder first.
        head, _, rest = text.partition("<head>")
        page = json.dumps(rest).replace("</", "<\\/")  # no "</script>" inside the script
        text = head + "<head>" + ROOT_FINDER % {
            "tops": json.dumps(tops), "known": json.dumps(known), "own": json.dumps(own), "page": page,
            "languages": json.dumps([l for l in LANGUAGE_FOLDERS if l != DEFAULT_LANGUAGE])}
        target = site / _language_url(language, "404.html")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


NOT_FOUND: dict[str, str] = {}  # language -> its 404 page as MkDocs rendered it


def on_post_template(output_content, template_name, config):
    """mkdocs-static-i18n builds every language's 404.html into the site's root, each over the
    last: keep each, for on_post_build to write where it belongs (es/404.html)."""
    if template_name == "404.html":
        language = config.theme.get("language", DEFAULT_LANGUAGE)
        NOT_FOUND[language if language in LANGUAGE_FOLDERS else DEFAULT_LANGUAGE] = output_content
    return output_content
