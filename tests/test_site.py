"""The course's static site (tools/build_site.py) in a real browser.

    .venv/bin/python -m pytest tests/test_site.py -q

Builds the site into a temporary folder (or uses the built site in $RESNET_EDU_SITE), serves it on
a loopback port and opens every page in headless Chromium: every image loads, every link to the
site leads to a page (and to the anchor it names), no request leaves the machine, the search page
finds "bottleneck" and "Grad-CAM", and each notebook's "Open in Colab" link is
`tools/colab_links.colab_url(notebook)`. Also checks that alternative text stored with a
notebook's image output reaches the page, and that each figure shows the text that
tools/figure_alt.py stores from docs/figure_alt.json. Needs the site's build tools
(docs/requirements.txt), Chromium and the `playwright` package (.ci/install_browser.sh); without
them the tests skip, or fail where RESNET_EDU_REQUIRE_SITE=1 (CI). Screenshots go to
$RESNET_EDU_ARTIFACTS, by default test-artifacts/site.
"""

import functools
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_site  # noqa: E402
import figure_alt  # noqa: E402
from colab_links import NOTEBOOKS, colab_url  # noqa: E402
from test_browser import CHROMIUM_ARGS, find_chromium  # noqa: E402

pytestmark = pytest.mark.slow  # builds the site and opens every page in Chromium: CI runs it (pytest -m slow)

COLAB = "https://colab.research.google.com/"
TIMEOUT_MS = 60_000


def _skip_or_fail(reason):
    if os.environ.get("RESNET_EDU_REQUIRE_SITE") == "1":
        pytest.fail(reason + "; RESNET_EDU_REQUIRE_SITE=1 forbids skipping", pytrace=False)
    pytest.skip(reason)


def _require_build_tools():
    missing = build_site.missing_tools()
    if missing:
        _skip_or_fail(f"building the site needs {', '.join(missing)} (pip install -r docs/requirements.txt)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site's folder."""
    if os.environ.get("RESNET_EDU_SITE"):
        return Path(os.environ["RESNET_EDU_SITE"])
    _require_build_tools()
    out = tmp_path_factory.mktemp("site") / "html"
    assert build_site.build(out) == 0, "tools/build_site.py failed: its output above says why"
    return out


@pytest.fixture(scope="module")
def chromium():
    path, missing = find_chromium()
    if missing:
        _skip_or_fail("the site's browser tests need " + " and ".join(missing) + " (.ci/install_browser.sh)")
    return path


@pytest.fixture(scope="module")
def server(site):
    """The site served on a free loopback port; yields its address."""
    handler = functools.partial(QuietHandler, directory=str(site))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
        httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):
    """A headless Chromium context that lets no request leave the machine; the addresses it stopped
    are in `context.offsite`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"), executable_path=chromium, args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1280, "height": 900}, timeout=TIMEOUT_MS)
        context.offsite = []

        def stop_offsite(route):
            if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                context.offsite.append(route.request.url)
                route.abort()

        context.route("**/*", stop_offsite)
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def artifacts():
    folder = Path(os.environ.get("RESNET_EDU_ARTIFACTS") or ROOT / "test-artifacts") / "site"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _pages(site):
    return sorted(path.relative_to(site).as_posix() for path in site.rglob("*.html"))


def _anchors(site, page):
    return set(re.findall(r'\bid="([^"]+)"', (site / page).read_text()))


def _broken_local_links(site, server, page_path, hrefs):
    """The links of a page that point into the site but to no file, or to an anchor its page lacks."""
    broken = []
    for href in hrefs:
        parts = urlsplit(href)
        if f"{parts.scheme}://{parts.netloc}" != server:
            continue
        target = unquote(parts.path).lstrip("/") or "index.html"
        target = f"{target}index.html" if target.endswith("/") else target
        if not (site / target).is_file():
            broken.append(f"{page_path}: {href} (no file {target})")
        elif parts.fragment and target.endswith(".html") and unquote(parts.fragment) not in _anchors(site, target):
            broken.append(f"{page_path}: {href} (no anchor #{parts.fragment})")
    return broken


def test_every_page_shows_its_images_and_links_within_the_site_and_loads_nothing_from_outside(
        site, server, browser, artifacts):
    pages = _pages(site)
    assert "index.html" in pages and "search.html" in pages
    assert {f"notebooks/{path.stem}.html" for path in NOTEBOOKS} <= set(pages)
    assert "docs/teaching.html" in pages and "results.html" in pages
    page = browser.new_page()
    errors, failed = [], []
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    page.on("response", lambda response: failed.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)
    broken_links, missing_images, image_count = [], [], 0
    for page_path in pages:
        page.goto(f"{server}/{page_path}", wait_until="load")
        images = page.evaluate("() => [...document.images].map(i => [i.currentSrc || i.src, i.complete && "
                               "i.naturalWidth > 0])")
        image_count += len(images)
        missing_images += [f"{page_path}: {src}" for src, loaded in images if not loaded]
        hrefs = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
        broken_links += _broken_local_links(site, server, page_path, hrefs)
    page.screenshot(path=artifacts / "last_page.png")
    page.goto(f"{server}/notebooks/07_what_resnet_sees.html", wait_until="load")
    page.evaluate("() => window.scrollTo(0, window.scrollY - 420 + "
                  "document.querySelectorAll('.cell_output img')[1].getBoundingClientRect().top)")
    page.screenshot(path=artifacts / "notebook_07.png")
    page.close()
    print(f"{len(pages)} pages, {image_count} images")
    assert not browser.offsite, "requests that would leave the machine:\n" + "\n".join(browser.offsite)
    assert not missing_images, "images that did not load:\n" + "\n".join(missing_images)
    assert not broken_links, "links to nothing on the site:\n" + "\n".join(broken_links)
    assert not failed, "requests that failed:\n" + "\n".join(failed)
    assert not errors, "script errors:\n" + "\n".join(errors)


def _search(page, server, query):
    """Search as a reader does, from the search box of the home page; returns the pages found."""
    page.goto(f"{server}/index.html", wait_until="load")
    page.locator("input[name=q]").first.fill(query)
    page.locator("input[name=q]").first.press("Enter")
    page.wait_for_url(re.compile(r"/search\.html\?q="))
    page.wait_for_function("() => /Search finished|did not match/.test("
                           "document.querySelector('#search-results .search-summary')?.innerText ?? '')")
    hrefs = page.evaluate("() => [...document.querySelectorAll('#search-results ul.search > li > a')]"
                          ".map(a => a.getAttribute('href'))")
    return {urlsplit(href).path for href in hrefs}


@pytest.mark.parametrize("query, expected_page", [("bottleneck", "notebooks/04_resnet50_bottleneck.html"),
                                                  ("Grad-CAM", "notebooks/07_what_resnet_sees.html")])
def test_search_finds_the_notebook_that_teaches_it(server, browser, artifacts, query, expected_page):
    page = browser.new_page()
    found = _search(page, server, query)
    page.screenshot(path=artifacts / f"search_{query}.png")
    page.close()
    assert expected_page in found, f"searching {query!r} found {sorted(found)}"


def test_every_notebook_page_opens_its_notebook_in_colab(server, browser):
    page = browser.new_page()
    for notebook in NOTEBOOKS:
        page.goto(f"{server}/notebooks/{notebook.stem}.html", wait_until="load")
        links = page.evaluate(f"() => [...document.querySelectorAll('a[href^=\"{COLAB}\"]')].map(a => a.href)")
        assert links, f"no Open in Colab link on {notebook.stem}.html"
        assert set(links) == {colab_url(notebook)}, notebook.name
        badge = page.locator(f'a[href^="{COLAB}"] img')
        assert badge.get_attribute("alt") == "Open in Colab"
        assert urlsplit(badge.evaluate("img => img.src")).hostname == "127.0.0.1"
    page.close()


def _one_image_notebook(path):
    """A notebook of three cells with the same PNG: alt text in the output's metadata, in the cell's
    MyST-NB metadata, and none."""
    png = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")

    def cell(number, metadata, output_metadata):
        return {"cell_type": "code", "id": f"c{number}", "execution_count": number, "metadata": metadata,
                "source": "show()", "outputs": [{"output_type": "display_data", "data": {"image/png": png},
                                                 "metadata": output_metadata}]}

    cells = [{"cell_type": "markdown", "id": "title", "metadata": {}, "source": "# Alt text"},
             cell(1, {}, {"image/png": {"alt": "alt from the output"}}),
             cell(2, {"mystnb": {"image": {"alt": "alt from the cell"}}}, {}),
             cell(3, {}, {})]
    metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3"}, "language_info": {"name": "python"}}
    path.write_text(json.dumps({"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}))


def test_alternative_text_stored_with_an_image_output_reaches_the_page(tmp_path):
    _require_build_tools()
    source = tmp_path / "source"
    shutil.copytree(build_site.SITE_SOURCE, source)
    (source / "results.md").unlink()
    (source / "index.md").write_text("# Site\n\n```{toctree}\nalt\n```\n")
    _one_image_notebook(source / "alt.ipynb")
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "-q", str(source), str(tmp_path / "html")]
    subprocess.run(command, check=True)
    alts = re.findall(r'<img [^>]*alt="([^"]*)"', (tmp_path / "html" / "alt.html").read_text())
    assert alts == ["alt from the output", "alt from the cell", "figure (no description yet)"], alts


def test_the_site_marks_exactly_the_notebook_images_that_lack_alternative_text(site):
    pages = [site / "notebooks" / f"{path.stem}.html" for path in NOTEBOOKS]
    marked = sum(len(re.findall(r'<img [^>]*class="[^"]*missing-alt', page.read_text())) for page in pages)
    assert marked == len(build_site.images_lacking_alt_text())


def test_every_image_in_the_notebooks_has_alternative_text():
    lacking = build_site.images_lacking_alt_text()
    assert not lacking, (f"{len(lacking)} images without alternative text, the first: {lacking[0]} "
                         "(python tools/figure_alt.py --write stores the texts of docs/figure_alt.json)")


def test_each_figure_shows_its_alternative_text_on_the_site(site):
    """The texts of docs/figure_alt.json, as tools/figure_alt.py stores them, are the figures' alt."""
    texts = figure_alt.load_alt_texts()
    for notebook in NOTEBOOKS:
        page = (site / "notebooks" / f"{notebook.stem}.html").read_text()
        shown = {html.unescape(alt) for alt in re.findall(r'<img [^>]*alt="([^"]*)"', page)}
        wanted = [text for cell_texts in texts.get(notebook.name, {}).values() for text in cell_texts]
        missing = [text for text in wanted if text not in shown]
        assert not missing, f"{notebook.name}: {len(missing)} figure(s) without their text, the first: {missing[0]!r}"
