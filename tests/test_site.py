"""The guide's website in a real browser: Debian's chromium, headless, driven through chromedriver.

Run by ``make docs-test`` (which builds the site first), not by ``make test``:

    make docs-test
    .venv/bin/python -m pytest -m site -n 0 tests/test_site.py   # against the site/ already built

The built site (``site/``) is served on 127.0.0.1 from a free port.  Every page of both languages
is loaded and checked for console errors and requests off the machine; the tabs, the language
menu, the navigation, search (ten queries per language, each with the page it must find first),
the 404 page under a sub-folder and the phone layout (390 px: nothing wider than the screen, the
reference table as cards, figures that open full size) are exercised; a second build, with a
repository and a site address given, is checked for its Colab, GitHub and canonical links; and
four pages are photographed in each language, on a desktop and on a phone, into
``docs/screenshots/`` (the README shows some).
"""
from __future__ import annotations

import functools
import http.server
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.site]

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
GUIDE = ROOT / "guide"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
LANGUAGES = {"en": "", "es": "es/"}  # each language's folder in the site
DESKTOP, PHONE = (1366, 800), (390, 844)
PHONE_METRICS = {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 1, "mobile": True}
# page (URL inside its language), language, file name: photographed on a desktop and on a phone
PHOTOGRAPHED = [(page, language, f"{name}-{language}") for language in LANGUAGES for page, name in (
    ("walkthrough/model/", "walkthrough-model"), ("topics/return-sequences/", "return-sequences"),
    ("topics/", "reference-table"), ("notebooks/keras/", "notebook-keras"))]


# --- the site, its pages, the server and the browser --------------------------------------------

def source_pages(language: str) -> set[str]:
    """Each page's URL inside its language, from the Markdown and notebook sources."""
    folder = GUIDE / language
    urls = set()
    for path in list(folder.rglob("*.md")) + list(folder.rglob("*.ipynb")):
        relative = path.relative_to(folder).with_suffix("")
        if relative.name in ("README",) or any(part.startswith(".") for part in relative.parts):
            continue
        url = "/".join(relative.parts[:-1] if relative.name == "index" else relative.parts)
        urls.add(f"{url}/" if url else "")
    return urls


def built_pages(language: str) -> set[str]:
    """Each page's URL inside its language, from the built site."""
    base = SITE / LANGUAGES[language]
    urls = set()
    for path in base.rglob("index.html"):
        relative = path.parent.relative_to(base)
        if language == "en" and relative.parts[:1] in [(folder.rstrip("/"),) for folder in LANGUAGES.values() if folder]:
            continue
        if relative.parts[:1] in [("search",), ("assets",)]:
            continue
        urls.add(f"{relative.as_posix()}/" if relative.parts else "")
    return urls


@pytest.fixture(scope="module")
def pages() -> dict[str, list[str]]:
    if not (SITE / "index.html").is_file():
        pytest.fail("site/ is not built: run make docs (or make docs-test, which builds it)")
    found = {language: sorted(built_pages(language)) for language in LANGUAGES}
    for language in LANGUAGES:
        assert set(found[language]) == source_pages(language), f"{language}: the site and guide/{language} differ"
    assert found["en"] == found["es"], "every page needs its counterpart in the other language"
    return found


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # port 0: a free one
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver  # the docs extra installs it: a missing one fails, never skips
    from selenium.webdriver.chrome.service import Service
    for program, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not program.is_file():
            pytest.fail(f"{program} is missing: install Debian's {package} (make docs-test does, as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={DESKTOP[0]},{DESKTOP[1]}", "--hide-scrollbars",
                 # the browser's own traffic (updates, sync, translation) stays off too
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-default-apps", "--disable-features=Translate,MediaRouter"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # Both paths given: selenium-manager has nothing to look up or download.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait(condition, timeout: float = 10.0, what: str = "a condition"):
    """Poll ``condition()`` until it returns something true; return it."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def open_page(driver, url: str):
    driver.get(url)
    wait(lambda: driver.execute_script("return document.readyState") == "complete", what=f"{url} to load")


def url_of(base: str, language: str, page: str) -> str:
    return f"{base}{LANGUAGES[language]}{page}"


def requests_made(driver) -> list[str]:
    """Every URL the page asked for since the last call (Chrome DevTools' Network events)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            urls.append(message["params"]["url"])
    return urls


def off_machine(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in ("data", "blob", "about") and parts.hostname != "127.0.0.1"


# --- the checks ---------------------------------------------------------------------------------

def test_every_page_loads_clean_and_stays_on_the_machine(browser, server, pages):
    """No console error, and no request but to 127.0.0.1, on every page of both languages; the
    sitemap.xml that Material fetches beside each alternate link is there (no 404 in the console)."""
    assert len(pages["en"]) >= 20, pages["en"]  # the page tree of guide/en and its notebooks
    browser.get_log("browser"), browser.get_log("performance")  # drop what came before
    errors, strangers, loaded, sitemaps = [], [], 0, set()
    for language, urls in pages.items():
        for page in urls:
            url = url_of(server, language, page)
            open_page(browser, url)
            # Material fetches each language root's sitemap.xml once the page has loaded
            fetched = wait(lambda: browser.execute_script(
                "return performance.getEntriesByType('resource')"
                ".filter(e => e.name.endsWith('/sitemap.xml') && e.responseEnd > 0).map(e => e.name)"),
                what=f"the sitemap fetches of {url}")
            sitemaps.update(fetched)
            errors += [f"{url}: {e['message']}" for e in browser.get_log("browser") if e["level"] == "SEVERE"]
            strangers += [f"{url}: {u}" for u in requests_made(browser) if off_machine(u)]
            loaded += 1
    assert loaded == 2 * len(pages["en"])
    assert errors == [], "\n".join(errors[:20])
    assert strangers == [], "\n".join(strangers[:20])
    assert sitemaps == {f"{server}sitemap.xml", f"{server}es/sitemap.xml"}


def tab_choices(driver) -> list[str]:
    """The label of the chosen tab in every PyTorch | Keras group of the page."""
    return driver.execute_script("""
        return [...document.querySelectorAll('.tabbed-set')].map(set => {
            const chosen = set.querySelector(':scope > input:checked');
            return set.querySelector(`label[for="${chosen.id}"]`).textContent.trim();
        });""")


def pages_by_tab_groups(pages: list[str]) -> list[tuple[int, str]]:
    """(number of tab groups, page) for the English pages that have any, most first."""
    counted = []
    for page in pages:
        html = (SITE / page / "index.html").read_text(encoding="utf-8")
        groups = html.count('<div class="tabbed-set')
        if groups:
            counted.append((groups, page))
    return sorted(counted, reverse=True)


def test_choosing_keras_switches_every_tab_group_and_holds_on_the_next_page(browser, server, pages):
    tabbed = pages_by_tab_groups(pages["en"])
    assert len(tabbed) >= 2 and tabbed[0][0] >= 2, tabbed
    (groups, first), (next_groups, second) = tabbed[0], tabbed[1]
    open_page(browser, url_of(server, "en", first))
    browser.execute_script("localStorage.clear()")
    open_page(browser, url_of(server, "en", first))
    assert tab_choices(browser) == ["PyTorch"] * groups
    label = browser.find_element("xpath", "(//div[contains(@class,'tabbed-set')])[1]//label[normalize-space()='Keras']")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", label)
    label.click()
    wait(lambda: tab_choices(browser) == ["Keras"] * groups, what=f"all {groups} groups to show Keras")
    open_page(browser, url_of(server, "en", second))
    assert tab_choices(browser) == ["Keras"] * next_groups
    # and on the Spanish counterpart too: the labels are the same in both languages
    open_page(browser, url_of(server, "es", first))
    assert tab_choices(browser) == ["Keras"] * groups
    browser.execute_script("localStorage.clear()")


def counterpart_link(driver, language: str):
    return driver.find_element("css selector", f"a.md-select__link[hreflang='{language}']")


def test_the_language_menu_leads_to_each_pages_counterpart(browser, server, pages):
    """From every English page to its Spanish counterpart, and from there back, by the menu."""
    from selenium.webdriver.common.action_chains import ActionChains
    # Once the way a reader does it: hover over the menu button, then click the language.
    open_page(browser, url_of(server, "en", "topics/return-sequences/"))
    ActionChains(browser).move_to_element(
        browser.find_element("css selector", ".md-select > button")).perform()
    link = counterpart_link(browser, "es")
    wait(link.is_displayed, what="the language menu to open")
    link.click()
    wait(lambda: browser.current_url == url_of(server, "es", "topics/return-sequences/"),
         what="the Spanish return_sequences page")
    moves = 0
    for page in pages["en"]:
        for here, there in (("en", "es"), ("es", "en")):
            if browser.current_url != url_of(server, here, page):
                open_page(browser, url_of(server, here, page))
            browser.execute_script("arguments[0].click()", counterpart_link(browser, there))
            wait(lambda: browser.current_url == url_of(server, there, page),
                 what=f"{here} {page or 'home'} -> {there} (at {browser.current_url})")
            moves += 1
    assert moves == 2 * len(pages["en"])


@pytest.mark.parametrize("language", LANGUAGES)
def test_search_finds_the_return_sequences_page(browser, server, pages, language):
    open_page(browser, url_of(server, language, ""))
    box = browser.find_element("css selector", "input.md-search__input")
    box.click()
    box.send_keys("return_sequences")
    target = url_of(server, language, "topics/return-sequences/")

    def found():
        links = browser.execute_script(
            "return [...document.querySelectorAll('.md-search-result__link')].map(a => a.href)")
        return [link for link in links if re.split(r"[?#]", link)[0] == target]
    assert len(wait(found, timeout=60, what=f"a search result linking {target}")) >= 1
    # each language searches its own pages only
    links = browser.execute_script(
        "return [...document.querySelectorAll('.md-search-result__link')].map(a => a.href)")
    elsewhere = [link for link in links
                 if any(link.startswith(url_of(server, other, "")) for other in LANGUAGES if other != language and LANGUAGES[other])
                 or not link.startswith(url_of(server, language, ""))]
    assert len(links) >= 3 and elsewhere == [], elsewhere


# What a learner types, and the page that must come first (the misses among them).
SEARCHES = {
    "en": [("save model", "topics/saving/"), ("LSTM", "topics/weight-layouts/"),
           ("return_sequences", "topics/return-sequences/"), ("learning rate", "topics/lr-schedules/"),
           ("initial state", "topics/states/"), ("masking", "topics/masking/"),
           ("gradient clipping", "topics/gradient-clipping/"), ("early stopping", "topics/callbacks/"),
           ("mixed precision", "topics/mixed-precision/"), ("weight decay", "topics/weight-decay/"),
           ("bidirectional", "topics/bidirectional/")],
    "es": [("guardar modelo", "topics/saving/"), ("LSTM", "topics/weight-layouts/"),
           ("tasa de aprendizaje", "topics/lr-schedules/"), ("estado inicial", "topics/states/"),
           ("enmascaramiento", "topics/masking/"), ("recorte de gradientes", "topics/gradient-clipping/"),
           ("parada temprana", "topics/callbacks/"), ("precisión mixta", "topics/mixed-precision/"),
           ("decaimiento de pesos", "topics/weight-decay/"), ("bidireccional", "topics/bidirectional/"),
           ("semilla", "topics/seeds/")],
}


def first_hit(driver, query: str) -> str:
    """The page of the first search result for ``query`` (its address without the anchor), once
    the results have stopped changing."""
    box = driver.find_element("css selector", "input.md-search__input")
    box.click()
    driver.execute_script("arguments[0].value = ''", box)
    box.send_keys(query)
    read = ("const link = document.querySelector('.md-search-result__item a.md-search-result__link');"
            "return link ? link.href : null;")
    last, steady = None, 0
    deadline = time.monotonic() + 60
    while steady < 4 and time.monotonic() < deadline:  # the same first hit for 0.4 s
        now = driver.execute_script(read)
        steady = steady + 1 if now and now == last else 0
        last = now
        time.sleep(0.1)
    return re.split(r"[?#]", last or "")[0]


@pytest.mark.parametrize("language", LANGUAGES)
def test_search_puts_the_page_a_learner_means_first(browser, server, pages, language):
    assert len(SEARCHES[language]) >= 10
    misses = []
    for query, page in SEARCHES[language]:
        open_page(browser, url_of(server, language, ""))
        hit = first_hit(browser, query)
        if hit != url_of(server, language, page):
            misses.append(f"{query!r}: {hit.removeprefix(server) or '(nothing)'}, not {LANGUAGES[language]}{page}")
    assert misses == [], misses


# Elements of the content that stick out of the screen, and code blocks whose lines do not wrap.
# Printed output (tables drawn with characters) may scroll inside its own box, if the box fits.
WIDER_THAN_THE_SCREEN = """
    const width = document.documentElement.clientWidth, found = [];
    const scrolls = e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
    for (const element of document.querySelectorAll('.md-content *')) {
        const box = element.getBoundingClientRect();
        if (box.width === 0 || box.height === 0) continue;  // not shown: a closed fold, another tab
        if (box.right <= width + 1 && box.left >= -1) continue;
        let inside = element.parentElement;
        while (inside && !scrolls(inside)) inside = inside.parentElement;
        if (inside && inside.getBoundingClientRect().right <= width + 1) continue;  // scrolls in a box that fits
        found.push(`${element.tagName.toLowerCase()}.${element.className}: ${Math.round(box.left)}..${Math.round(box.right)} px`);
    }
    for (const code of document.querySelectorAll('.md-content .language-python pre > code, .md-content .jp-InputArea pre')) {
        if (code.getBoundingClientRect().width > 0 && code.scrollWidth > code.clientWidth + 1) {
            found.push(`code cut: ${code.textContent.split('\\n').sort((a, b) => b.length - a.length)[0].slice(0, 60)}`);
        }
    }
    return [document.documentElement.scrollWidth, width, found.slice(0, 3)];"""


def test_at_390_px_nothing_in_the_content_is_wider_than_the_screen(browser, server, pages):
    widths = []
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE_METRICS)
    try:
        for language, urls in pages.items():
            for page in urls:
                open_page(browser, url_of(server, language, page))
                widths.append((browser.execute_script(WIDER_THAN_THE_SCREEN), f"{LANGUAGES[language]}{page}"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert len(widths) == 2 * len(pages["en"])
    assert all(client == PHONE[0] for (_, client, _), _ in widths), widths[:3]
    wide = [f"{page}: {scroll} px, {found}" for (scroll, client, found), page in widths if scroll > client or found]
    assert wide == [], wide[:10]


@pytest.mark.parametrize("language", LANGUAGES)
def test_at_390_px_the_reference_table_is_one_labelled_card_per_row(browser, server, pages, language):
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE_METRICS)
    try:
        open_page(browser, url_of(server, language, "topics/"))
        cells = browser.execute_script("""
            return [...document.querySelectorAll('article table td')].map(td => [
                td.getBoundingClientRect().width, td.dataset.label || '',
                getComputedStyle(td, '::before').content]);""")
        headers = browser.execute_script(
            "return [...document.querySelectorAll('article table th')].map(th => th.textContent.trim())")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    rows = len(re.findall(r"^\| \[", (GUIDE / language / "topics" / "index.md").read_text(encoding="utf-8"), re.M))
    assert rows >= 30 and len(cells) >= 3 * rows
    narrow = [width for width, _, _ in cells if width < 120]
    assert narrow == [], f"{len(narrow)} cells narrower than 120 px"
    assert all(label in headers and before == f'"{label}"' for _, label, before in cells), cells[:4]


def test_at_390_px_every_figure_opens_full_size(browser, server, pages):
    """Every figure, the notebooks' plots included, sits in the lightbox's link; a tap on one
    opens it full size."""
    unwrapped = []
    for language in LANGUAGES:
        for page in pages[language]:
            text = (SITE / LANGUAGES[language] / page / "index.html").read_text(encoding="utf-8")
            article = text.split('<article', 1)[-1].split('</article>', 1)[0]
            for image in re.finditer(r"<img [^>]*>", article):
                before = article[:image.start()]
                if not re.search(r'<a class="glightbox"[^>]*>\s*$', before):
                    unwrapped.append(f"{language} {page}: {image.group(0)[:80]}")
    assert unwrapped == [], unwrapped[:10]
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE_METRICS)
    try:
        for language, page, selector in (("en", "walkthrough/history/", "article a.glightbox"),
                                         ("es", "walkthrough/predictions/", "article a.glightbox"),
                                         ("en", "notebooks/keras/", "article a.glightbox[href^='data:image']")):
            open_page(browser, url_of(server, language, page))
            figure = browser.find_element("css selector", selector)
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", figure)
            figure.click()
            # the lightbox's zoom takes a moment: wait for the figure at (nearly) the screen's width
            shown = wait(lambda: browser.execute_script("""
                const image = document.querySelector('.glightbox-container .gslide.current img');
                return image && image.complete && image.naturalWidth >= 400
                    && image.getBoundingClientRect().width >= arguments[0] ? image.naturalWidth : null;""",
                0.8 * PHONE[0]), what=f"the full-size figure of {language} {page}")
            assert shown >= 400, (page, shown)
            browser.execute_script("document.querySelector('.gclose').click()")
            wait(lambda: not browser.find_elements("css selector", ".glightbox-container"), what="the lightbox to close")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_screenshots_on_a_desktop_and_a_phone(browser, server, pages):
    """Four pages in each language, twice each, with Keras chosen in the tabs and a notebook's
    first plot in view: docs/screenshots/*.png."""
    from PIL import Image
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    open_page(browser, url_of(server, "en", ""))
    browser.execute_script("localStorage.clear()")
    written = []
    for size, metrics in (("desktop", None), ("phone", PHONE_METRICS)):
        if metrics:
            browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        try:
            for page, language, name in PHOTOGRAPHED:
                assert page in pages[language]
                open_page(browser, url_of(server, language, page))
                keras = browser.find_elements("xpath", "//div[contains(@class,'tabbed-set')]//label[normalize-space()='Keras']")
                if keras:  # the first tab group just under the header, Keras chosen
                    browser.execute_script("arguments[0].click(); const set = arguments[0].closest('.tabbed-set');"
                                           "window.scrollTo(0, set.getBoundingClientRect().top + window.scrollY - 120)",
                                           keras[0])
                pictures = browser.find_elements("css selector", ".jp-RenderedImage img")
                if pictures:  # a notebook: show a plot it drew, and the cell that drew it
                    browser.execute_script("arguments[0].scrollIntoView({block: 'end'})", pictures[0])
                time.sleep(0.3)  # the tab's slide and the header's shadow settle
                path = SCREENSHOTS / f"{name}-{size}.png"
                assert browser.save_screenshot(str(path))
                written.append(path)
        finally:
            if metrics:
                browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.execute_script("localStorage.clear()")
    assert len(written) == 2 * len(PHOTOGRAPHED)
    for path in written:
        with Image.open(path) as image:
            width = image.size[0]
            colours = len(set(image.convert("L").getdata()))
        assert width == (DESKTOP[0] if "desktop" in path.name else PHONE[0]), (path, width)
        assert colours > 50, f"{path.name} is nearly blank ({colours} grey levels)"
        assert path.stat().st_size < 400_000, path


def test_notebook_pages_link_their_download_and_every_anchor_they_link_exists(browser, server, pages):
    """Each notebook page: a download link to its .ipynb with outputs, and no link that leads
    nowhere, anchors included (nbconvert, not MkDocs, renders a notebook's cells, so the strict
    build checks none of them; mkdocs-jupyter's table of contents slugs headings its own way)."""
    import urllib.request
    from guide.site import PAGES
    checked = anchors = 0
    for language, notebooks in PAGES.items():
        for page_name, notebook in notebooks.items():
            url = url_of(server, language, f"notebooks/{page_name.removesuffix('.ipynb')}/")
            open_page(browser, url)
            download = browser.find_element("css selector", f"a[download='{notebook}']").get_attribute("href")
            assert download == url_of(server, language, f"notebooks/{page_name}")
            with urllib.request.urlopen(download, timeout=10) as response:
                cells = json.load(response)["cells"]
            assert sum(len(c.get("outputs", [])) for c in cells) >= 10, f"{download} has no outputs"
            links = browser.execute_script(
                "return [...document.querySelectorAll('a[href]')].map(a => a.href)"
                ".filter(h => h.startsWith(location.origin))")
            ids_of = {}
            for link in sorted(set(links)):
                address, _, fragment = link.partition("#")
                address = address.split("?")[0]
                if address not in ids_of:
                    with urllib.request.urlopen(address, timeout=10) as response:
                        assert response.status == 200, link
                        body = response.read().decode("utf-8", "replace")
                    ids_of[address] = set(re.findall(r'\bid="([^"]+)"', body))
                if fragment:
                    assert fragment in ids_of[address], f"{url}: {link} leads to no element"
                    anchors += 1
            checked += 1
    assert checked == 4
    assert anchors >= 4 * 5, anchors  # each page's table of contents, at least


def expected_links(repo: str, language: str, source: str) -> dict[str, str]:
    """The Colab and GitHub addresses a page must link, computed here from the repository and the
    page's source path (guide/LANGUAGE/PATH.md or one of the three notebooks), not by the code
    that writes them."""
    if source.startswith("guide/notebooks/"):
        return {"colab": f"https://colab.research.google.com/github/{repo}/blob/main/{source}",
                "github": f"https://github.com/{repo}/blob/main/{source}"}
    notebook = source.removeprefix("guide/").removesuffix(".md") + ".ipynb"  # en/topics/saving.ipynb
    return {"colab": f"https://colab.research.google.com/github/{repo}/blob/guide-notebooks/{notebook}",
            "github": f"https://github.com/{repo}/blob/main/{source}"}


def page_sources(language: str) -> dict[str, str]:
    """Each page's URL inside its language -> the repository path of what it shows."""
    from guide.site import PAGES
    sources = {}
    for path in (GUIDE / language).rglob("*.md"):
        relative = path.relative_to(GUIDE / language).with_suffix("")
        url = "/".join(relative.parts[:-1] if relative.name == "index" else relative.parts)
        sources[f"{url}/" if url else ""] = path.relative_to(ROOT).as_posix()
    for page_name, notebook in PAGES[language].items():
        sources[f"notebooks/{page_name.removesuffix('.ipynb')}/"] = f"guide/notebooks/{notebook}"
    return sources


OFF_SITE = re.compile(r'href="(https://(?:colab\.research\.google\.com|github\.com)/[^"]*)"')


def test_a_build_with_a_repository_links_colab_github_and_canonical_addresses_on_every_page(tmp_path, pages):
    """GUIDE_REPOSITORY and SITE_URL, as the Pages workflow sets them: every page links its
    notebook in Colab and its source on GitHub, at the addresses computed here, and names its
    canonical address under SITE_URL."""
    repo, site_url = "someone/rnn-guide", "https://someone.github.io/rnn-guide/"
    env = {**os.environ, "GUIDE_REPOSITORY": repo, "SITE_URL": site_url, "NO_MKDOCS_2_WARNING": "1",
           "PYTHONPATH": str(ROOT)}
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, built.stderr[-3000:]
    checked = 0
    for language in LANGUAGES:
        for page, source in page_sources(language).items():
            text = (tmp_path / "site" / LANGUAGES[language] / page / "index.html").read_text(encoding="utf-8")
            want = expected_links(repo, language, source)
            found = OFF_SITE.findall(text)
            colab = [link for link in found if link.startswith("https://colab")]
            assert colab == [want["colab"]], f"{language} {page}: {colab}"
            assert want["github"] in found, f"{language} {page}: no link to {want['github']}"
            assert all(link.startswith((f"https://github.com/{repo}/", f"https://colab.research.google.com/github/{repo}/"))
                       for link in found), f"{language} {page}: {found}"
            canonical = re.search(r'<link rel="canonical" href="([^"]+)"', text)
            assert canonical and canonical.group(1) == f"{site_url}{LANGUAGES[language]}{page}", (language, page)
            checked += 1
    assert checked == 2 * len(pages["en"])
    # the page's notebook, where the download link leads: prose, then the code of both tabs
    notebook = json.loads((tmp_path / "site" / "walkthrough" / "model.ipynb").read_text(encoding="utf-8"))
    code = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    blocks = re.findall(r"^```python\n(.*?)^```", (GUIDE / "en" / "walkthrough" / "model.md").read_text(encoding="utf-8"),
                        re.M | re.S)
    assert [c.strip("\n") for c in code] == [b.strip("\n") for b in blocks] and len(code) >= 4
    assert notebook["cells"][0]["cell_type"] == "markdown"
    assert f"{site_url}" in json.dumps(notebook) and "](../" not in json.dumps(notebook), \
        "the notebook's links are the site's addresses"


def test_without_a_repository_no_page_links_colab_or_github(pages):
    """The site as built here: no GitHub origin and no GUIDE_REPOSITORY, so not one Colab or
    GitHub link, and never a placeholder; every page still links its notebook for download."""
    from guide.site import repository
    assert "GUIDE_REPOSITORY" not in os.environ and repository() is None, \
        "this check needs a build with no repository known: unset GUIDE_REPOSITORY"
    linked, downloads = [], 0
    for language in LANGUAGES:
        for page in pages[language]:
            path = SITE / LANGUAGES[language] / page / "index.html"
            text = path.read_text(encoding="utf-8")
            linked += [f"{language} {page}: {link}" for link in OFF_SITE.findall(text)]
            assert "stacked-rnn-parity/stacked-rnn-parity" not in text, f"{language} {page}: the placeholder"
            download = re.search(r'<a [^>]*\bdownload="[^"]*"[^>]*>', text)
            assert download, f"{language} {page}: no download link"
            target = re.search(r'href="([^"]+\.ipynb)"', download.group(0)).group(1)
            assert (path.parent / target).resolve().is_file(), (language, page, target)
            downloads += 1
    assert linked == [], linked[:10]
    assert downloads == 2 * len(pages["en"])
    assert "canonical" not in (SITE / "index.html").read_text(encoding="utf-8"), "no SITE_URL: no canonical link"


TABS = {"en": ["Start", "Notebooks", "The notebook step by step", "Topics", "Tools", "Appendix"],
        "es": ["Inicio", "Cuadernos", "El cuaderno paso a paso", "Temas", "Herramientas", "Apéndice"]}


def table_groups(language: str) -> list[str]:
    """The reference table's groups: the bold lines above its tables, in the Markdown source."""
    return re.findall(r"^\*\*([^*]+)\*\*\s*$", (GUIDE / language / "topics" / "index.md").read_text(encoding="utf-8"), re.M)


@pytest.mark.parametrize("language", LANGUAGES)
def test_six_tabs_in_each_language_and_topics_grouped_as_the_table(browser, server, pages, language):
    """The tabs, named in the page's language (dropping a translation fails here); the Topics
    tab opens the reference table, and its sidebar holds the table's groups, in its order."""
    open_page(browser, url_of(server, language, "topics/"))
    tabs = browser.execute_script("return [...document.querySelectorAll('.md-tabs__link')].map(a => a.textContent.trim())")
    assert tabs == TABS[language]
    assert browser.find_element("css selector", "article h1").text.strip() in ("Reference table", "Tabla de referencia")
    groups = browser.execute_script("""
        const active = document.querySelector('.md-nav__item--active > .md-nav');
        return [...active.querySelectorAll(':scope > ul > li.md-nav__item--nested > label, :scope > ul > li.md-nav__item--nested > div > label, :scope > ul > li.md-nav__item--nested > .md-nav__link')]
            .map(e => e.textContent.trim()).filter(t => t);""")
    assert groups == table_groups(language) and len(groups) >= 3, (groups, table_groups(language))


ENGLISH_SITE_STRINGS = ["Permanent link", "Back to top", "Copy to clipboard", "Made with", "Previous", "Next",
                        "Download this page", "Skip to content", "Table of contents", "Type to start searching",
                        "Reference table", "Start", "Topics", "Tools", "Notebooks", "Appendix", "not exist"]


def visible_strings(html: str) -> str:
    """The page's text and the attributes a reader meets (titles, labels), without its code."""
    html = re.sub(r"<(pre|code|script|style)\b.*?</\1>", " ", html, flags=re.S)
    attributes = " ".join(re.findall(r'(?:title|aria-label|placeholder|alt)="([^"]*)"', html))
    return re.sub(r"<[^>]+>", " ", html) + " " + attributes


def test_spanish_pages_hold_no_english_site_strings(pages):
    """Footer, permalink tooltip, menus, the page links and the 404 page: Spanish on /es/."""
    found = []
    for page in pages["es"] + ["404.html"]:
        path = SITE / "es" / (page if page.endswith(".html") else f"{page}index.html")
        text = visible_strings(path.read_text(encoding="utf-8"))
        found += [f"es/{page}: {s!r}" for s in ENGLISH_SITE_STRINGS if re.search(rf"\b{re.escape(s)}\b", text)]
    assert found == [], found[:20]
    text = (SITE / "es" / "topics" / "saving" / "index.html").read_text(encoding="utf-8")
    assert 'title="Enlace permanente"' in text and "Descarga esta página como cuaderno" in text


def test_start_gives_the_install_line_and_the_versions_the_pages_ran_with(pages):
    """Read here from the installed packages, not from the code that writes the table."""
    for language in LANGUAGES:
        text = (SITE / LANGUAGES[language] / "index.html").read_text(encoding="utf-8")
        assert "<!-- tested-versions -->" not in text
        plain = re.sub(r"<[^>]+>", "", text)
        assert "pip install torch keras jax tensorflow numpy matplotlib torchmetrics" in plain, language
        for package in ("torch", "keras", "jax", "numpy", "matplotlib", "torchmetrics"):
            version = importlib.metadata.version(package).split("+")[0]
            assert re.search(rf"<code>{package}</code></td>\s*<td[^>]*>{re.escape(version)}</td>", text), (language, package)


class SubFolderHandler(http.server.SimpleHTTPRequestHandler):
    """The site under /repo/, with its 404.html for any missing address, as GitHub Pages serves a
    project's site."""
    def log_message(self, *args):
        pass

    def translate_path(self, path):
        return super().translate_path(path.replace("/repo/", "/", 1) if path.startswith("/repo/") else "/missing/")

    def send_error(self, code, message=None, explain=None):
        if code != 404:
            return super().send_error(code, message, explain)
        body = (SITE / "404.html").read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_the_404_page_works_under_a_sub_folder_in_each_language(browser, pages):
    handler = functools.partial(SubFolderHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/repo/"
    try:
        browser.get_log("browser")
        for missing, language, title, start in (("topics/no-such-page/", "en", "404: this page does not exist", base),
                                                ("no-such-page", "en", "404: this page does not exist", base),
                                                ("es/temas/nada/", "es", "404: esta página no existe", f"{base}es/")):
            open_page(browser, base + missing)
            wait(lambda: browser.execute_script("return document.documentElement.lang") == language,
                 what=f"the {language} 404 page at {missing}")
            assert browser.find_element("css selector", "article h1").text.strip() == title
            # Material's style loaded (the header is fixed at the top), links lead to the site's root
            assert browser.execute_script("return getComputedStyle(document.querySelector('.md-header')).position") == "sticky"
            first = browser.execute_script("return document.querySelector('article a').href")
            assert first == start, (missing, first)
            errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"
                      and "404 (Not Found)" not in e["message"]]  # the page's own status
            assert errors == [], errors
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_exercises_are_numbered_in_order_around_their_folded_solutions(pages):
    """A folded solution ends the list it follows: the next exercise's list must start where the
    source's number says (Python-Markdown's sane_lists), not at 1 again."""
    checked = 0
    for language, urls in pages.items():
        for page in urls:
            html = (SITE / LANGUAGES[language] / page / "index.html").read_text(encoding="utf-8")
            found = re.search(r'<h2 id="(?:exercises|ejercicios)"', html)
            if not found:
                continue
            section = html[found.end():].split("<h2", 1)[0]
            starts = [int(start or 1) for start in re.findall(r'<ol(?: start="(\d+)")?>', section)]
            if not starts:  # numbered by hand ("**1.**")
                continue
            assert starts == sorted(set(starts)) and starts[0] == 1, f"{language} {page}: lists start at {starts}"
            checked += 1
    assert checked >= 2 * 10, checked  # in each language: six walkthrough pages and four topics
