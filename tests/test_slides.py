"""The slide decks (tools/slides.py): every notebook gives a deck, and in headless Chromium at
1280x720 (a projector) no slide overflows the screen, no page logs an error and nothing is
requested from outside the deck's folder.

The decks are built from a temporary copy of notebooks/ to which `tools/slides.py --write` is
applied: while the committed notebooks carry no slide metadata this shows what --write would give;
once they carry it the copy is the committed notebooks unchanged (test_committed_metadata_is_current
checks that). The build needs nbconvert and, the first time on a machine, npm (reveal.js and
MathJax; then cached in ~/.cache/resnet_edu); the browser tests need Chromium and the `playwright`
package, as tests/test_browser.py does. Without them the tests skip, or fail where
RESNET_EDU_REQUIRE_BROWSER=1 (CI). Screenshots and slides.json (slide and overflow counts per deck)
go to $RESNET_EDU_ARTIFACTS, by default test-artifacts/slides.
"""

import functools
import http.server
import json
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest
from test_browser import CHROMIUM_ARGS, chromium  # noqa: F401  (a fixture: Chromium's path, or a skip)

pytestmark = pytest.mark.slow  # builds every deck and walks it in Chromium: CI runs it (pytest -m slow)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import slides  # noqa: E402

DECKS = [path.stem for path in slides.notebook_paths(ROOT / "notebooks")]
STEP_TIMEOUT_MS = 300_000  # a busy 2-core machine takes up to a minute to load a deck with its MathJax
# Every slide and sub-slide in turn, all its fragments shown, measured in the page (one round trip):
# its size, whether it runs past the 1280x720 screen, and which of its boxes clip their content
# (a scroll bar: content the room cannot see).
WALK = """async () => {
    const frame = () => new Promise(resolve => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    const {width, height} = Reveal.getConfig();
    const measured = [];
    for (const slide of Reveal.getSlides()) {
        const {h, v} = Reveal.getIndices(slide);
        Reveal.slide(h, v, slide.querySelectorAll('.fragment').length - 1);
        await frame();
        let bottom = 0, right = 0;
        const clipped = [];
        for (const box of slide.querySelectorAll('div, pre, p, ul, ol, table, img, h1, h2, h3, mjx-container')) {
            const rect = box.getBoundingClientRect();
            bottom = Math.max(bottom, rect.bottom);
            right = Math.max(right, rect.right);
            const style = getComputedStyle(box);
            const hides = value => value !== 'visible';
            if ((hides(style.overflowX) && box.scrollWidth > box.clientWidth + 1)
                    || (hides(style.overflowY) && box.scrollHeight > box.clientHeight + 1)) {
                clipped.push(`${box.tagName.toLowerCase()}.${[...box.classList].join('.')}: `
                             + `${box.scrollWidth}x${box.scrollHeight} in ${box.clientWidth}x${box.clientHeight}`);
            }
        }
        measured.push({h, v, height: slide.scrollHeight, width: slide.scrollWidth, fit: Number(slide.dataset.fit),
                       figures: slide.querySelectorAll('img').length,
                       tall: slide.scrollHeight > height || bottom > window.innerHeight + 1,
                       wide: slide.scrollWidth > width || right > window.innerWidth + 1, clipped,
                       text: slide.innerText.trim().slice(0, 80)});
    }
    return measured;
}"""


def _require_or_skip(reason):
    if os.environ.get("RESNET_EDU_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + "; RESNET_EDU_REQUIRE_BROWSER=1 forbids skipping", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def artifacts():
    folder = Path(os.environ.get("RESNET_EDU_ARTIFACTS") or ROOT / "test-artifacts" / "slides")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The decks built from a copy of notebooks/ with the slide metadata the rules give."""
    if shutil.which("npm") is None and not slides.vendor_is_cached():
        _require_or_skip("building the decks needs npm the first time (reveal.js and MathJax): apt-get install npm")
    folder = tmp_path_factory.mktemp("slides")
    shutil.copytree(ROOT / "notebooks", folder / "notebooks")
    slides.write(folder / "notebooks")
    slides.build(folder / "notebooks", folder / "out")
    return folder / "out"


@pytest.fixture(scope="module")
def served(built):
    """The decks' folder on a free loopback port, as a teacher's web server would show it."""
    handler = functools.partial(_QuietHandler, directory=str(built))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def report(artifacts):
    counts = {}
    yield counts
    (artifacts / "slides.json").write_text(json.dumps(counts, indent=1) + "\n")


def test_rules_give_every_notebook_a_deck_of_slides_and_skip_the_set_up():
    for path in slides.notebook_paths(ROOT / "notebooks"):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        types = slides.slide_types(notebook)
        assert types[0] == "slide", path.name  # the title
        assert types.count("slide") >= 4, path.name
        assert set(types) <= {"slide", "subslide", "fragment", "-", "skip", "notes"}
        first_section = next(i for i, cell in enumerate(notebook["cells"]) if slides.heading_level(cell) == 2)
        assert set(types[1:first_section]) == {"skip"}, path.name  # the Colab install and the imports
        for cell, kind in zip(notebook["cells"], types):
            text = slides.source(cell)
            if "about_this_run(" in text or "## About this run" in text:
                assert kind == "skip", (path.name, text[:60])


def test_an_optional_section_is_a_sub_slide_and_a_long_code_cell_its_own():
    def markdown(text):
        return {"cell_type": "markdown", "metadata": {}, "source": text}

    def code(lines, outputs=()):
        return {"cell_type": "code", "metadata": {}, "outputs": list(outputs), "source": "x = 1\n" * lines}

    notebook = {"cells": [markdown("# Title"), code(3), markdown("## 1. Idea"), code(2),
                          markdown("More about it."), code(60), markdown("## 2. (optional) Depth"),
                          code(1, [{"output_type": "stream", "name": "stdout", "text": "ok\n"}]),
                          code(1, [{"output_type": "stream", "name": "stdout", "text": "line\n" * 80}]),
                          code(1), markdown("Stuck? Run show_solution()"), code(1) | {"source": "# show_solution()"},
                          markdown("## About this run"), code(1)]}
    assert slides.slide_types(notebook) == [
        "slide", "skip", "slide", "fragment", "subslide", "subslide", "subslide", "fragment", "subslide",
        "subslide", "skip", "skip", "skip", "skip"]  # the last code cell: no room left after 80 lines


def test_check_finds_what_write_would_change(tmp_path):
    shutil.copy(ROOT / "notebooks" / f"{DECKS[0]}.ipynb", tmp_path)
    slides.write(tmp_path)
    assert slides.check(tmp_path) == []
    path = tmp_path / f"{DECKS[0]}.ipynb"
    notebook = json.loads(path.read_text())
    notebook["cells"][0]["metadata"]["slideshow"]["slide_type"] = "skip"
    path.write_text(slides.dump(notebook))
    assert slides.check(tmp_path) == [path.name]
    assert slides.main(["--check", "--notebooks", str(tmp_path)]) == 1


def test_committed_metadata_is_current():
    carries = any("slideshow" in cell.get("metadata", {})
                  for path in slides.notebook_paths(ROOT / "notebooks")
                  for cell in json.loads(path.read_text(encoding="utf-8"))["cells"])
    if not carries:
        pytest.skip("the committed notebooks carry no slide metadata yet: python tools/slides.py --write")
    assert slides.check(ROOT / "notebooks") == [], "run python tools/slides.py --write"


def test_every_notebook_gives_a_deck_that_loads_nothing_from_outside(built):
    assert sorted(path.stem for path in built.glob("[0-9][0-9]_*.html")) == DECKS
    for deck in DECKS:
        html = (built / f"{deck}.html").read_text(encoding="utf-8")
        for attribute in ("src=", "href="):
            for value in html.split(attribute)[1:]:
                target = value[1:].split(value[0])[0]
                assert not target.startswith(("http:", "https:", "//")) or attribute == "href=" \
                    and not target.endswith((".css", ".js")), (deck, target)
    assert (built / "vendor" / "reveal.js" / "dist" / "reveal.js").exists()


@pytest.mark.parametrize("deck", DECKS)
def test_no_slide_overflows_a_1280x720_screen(deck, served, chromium, tmp_path, artifacts, report):  # noqa: F811
    from playwright.sync_api import sync_playwright

    outside, errors = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.set_default_timeout(STEP_TIMEOUT_MS)
            page.on("request", lambda request: outside.append(request.url)
                    if not request.url.startswith((served, "data:", "blob:")) else None)
            page.on("requestfailed", lambda request: errors.append(f"request failed: {request.url}"))
            page.on("response", lambda response: errors.append(f"HTTP {response.status}: {response.url}")
                    if response.status >= 400 else None)
            page.on("console", lambda message: errors.append(f"console: {message.text}")
                    if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
            page.goto(served + f"{deck}.html")
            page.wait_for_function("() => window.Reveal && Reveal.isReady()")
            page.evaluate("() => MathJax.startup.promise")
            page.evaluate("() => Reveal.configure({transition: 'none', backgroundTransition: 'none'})")
            measured = _walk(page, deck, artifacts)
        finally:
            browser.close()

    overflowing = [m for m in measured if m["tall"] or m["wide"] or m["clipped"]]
    report[deck] = {"slides": sum(1 for m in measured if m["v"] == 0), "slides_and_sub_slides": len(measured),
                    "overflowing": len(overflowing), "shrunk_to_fit": sum(m["fit"] < 1 for m in measured),
                    "smallest_fit": min(m["fit"] for m in measured)}
    print(f"\n{deck}: {report[deck]}")
    assert not outside, f"{deck} requested from outside its folder: {outside[:5]}"
    assert not errors, f"{deck}: " + "\n".join(errors[:10])
    assert not overflowing, f"{deck}: {len(overflowing)} of {len(measured)} slides do not fit 1280x720:\n" + \
        "\n".join(f"  {m['h']}.{m['v']}: {m['height']} x {m['width']} px at {m['fit']} {m['clipped'][:2]} {m['text']!r}"
                  for m in overflowing)


def _walk(page, deck, artifacts):
    """Every slide measured (WALK); screenshots of the title, the first slide with a figure and
    the slide shrunk most to fit."""
    page.evaluate("() => Reveal.slide(0, 0)")
    page.screenshot(path=artifacts / f"{deck}_title.png")
    measured = page.evaluate(WALK)
    with_figure = [m for m in measured if m["figures"]]
    for name, shown in [("figure", with_figure[0] if with_figure else None),
                        ("shrunk_most", min(measured, key=lambda m: m["fit"]))]:
        if shown:
            page.evaluate("([h, v]) => Reveal.slide(h, v, 99)", [shown["h"], shown["v"]])
            page.screenshot(path=artifacts / f"{deck}_{name}.png")
    return measured
