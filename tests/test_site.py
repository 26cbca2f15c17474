"""The guide's website in a real browser: Debian's chromium, headless, driven through chromedriver.

Run by ``make docs-test`` (which builds the site first), not by ``make test``:

    make docs-test
    .venv/bin/python -m pytest -m site -n 0 tests/test_site.py   # against the site/ already built

The built site (``site/``) is served on 127.0.0.1 from a free port.  Every page of both languages
is loaded and checked for console errors and requests off the machine; the tabs, the language
menu, search and the phone layout are exercised; and three pages are photographed, on a desktop
and on a phone, into ``docs/screenshots/`` (the README shows one).
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
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
DESKTOP, PHONE = (1280, 800), (390, 844)
# page (URL inside its language), language, file name: photographed on a desktop and on a phone
PHOTOGRAPHED = [("walkthrough/model/", "en", "walkthrough-model"),
                ("topics/return-sequences/", "es", "return-sequences-es"),
                ("notebooks/keras/", "en", "notebook-keras")]


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


def test_at_390_px_the_body_never_scrolls_sideways(browser, server, pages):
    widths = []
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 1, "mobile": True})
    try:
        for language, urls in pages.items():
            for page in urls:
                open_page(browser, url_of(server, language, page))
                widths.append((browser.execute_script(
                    "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"),
                    f"{LANGUAGES[language]}{page}"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert len(widths) == 2 * len(pages["en"])
    assert all(client == PHONE[0] for (_, client), _ in widths), widths[:3]
    wide = [f"{page}: {scroll} px" for (scroll, client), page in widths if scroll > client]
    assert wide == [], wide


def test_screenshots_on_a_desktop_and_a_phone(browser, server, pages):
    """Three pages, twice each, with Keras chosen in the tabs and a notebook's first plot in view:
    docs/screenshots/*.png."""
    from PIL import Image
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    open_page(browser, url_of(server, "en", ""))
    browser.execute_script("localStorage.clear()")
    written = []
    for size, metrics in (("desktop", None), ("phone", {"width": PHONE[0], "height": PHONE[1],
                                                        "deviceScaleFactor": 1, "mobile": True})):
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
    assert len(written) == 6
    for path in written:
        with Image.open(path) as image:
            width = image.size[0]
            colours = len(set(image.convert("L").getdata()))
        assert width == (DESKTOP[0] if "desktop" in path.name else PHONE[0]), (path, width)
        assert colours > 50, f"{path.name} is nearly blank ({colours} grey levels)"
        assert path.stat().st_size < 400_000, path


def test_notebook_pages_link_their_download_and_colab(browser, server, pages):
    """Each notebook page: a download link to its .ipynb with outputs, an "Open in Colab" link to
    the notebook's path in the repository, and no relative link that leads nowhere (nbconvert,
    not MkDocs, renders a notebook's cells, so the strict build does not check them)."""
    import urllib.request
    from guide.site import PAGES, colab_url, repository
    checked = 0
    for language, notebooks in PAGES.items():
        for page_name, notebook in notebooks.items():
            url = url_of(server, language, f"notebooks/{page_name.removesuffix('.ipynb')}/")
            open_page(browser, url)
            download = browser.find_element("css selector", f"a[download='{notebook}']").get_attribute("href")
            assert download == url_of(server, language, f"notebooks/{page_name}")
            with urllib.request.urlopen(download, timeout=10) as response:
                cells = json.load(response)["cells"]
            assert sum(len(c.get("outputs", [])) for c in cells) >= 10, f"{download} has no outputs"
            colab = [a.get_attribute("href") for a in browser.find_elements("css selector", "a[href*='colab.research.google.com']")]
            assert colab == [colab_url(repository(), notebook)]
            relative = browser.execute_script(
                "return [...document.querySelectorAll('article a[href]')].map(a => a.href)"
                ".filter(h => h.startsWith(location.origin))")
            for link in {re.split(r"[?#]", link)[0] for link in relative}:
                with urllib.request.urlopen(link, timeout=10) as response:
                    assert response.status == 200, link
            checked += 1
    assert checked == 4


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
