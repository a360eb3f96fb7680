"""Notebook 01 in a real browser: JupyterLab runs every cell without an error, and the slider
renders as a widget and redraws its plot when moved.

Needs Chromium (/usr/bin/chromium or `chromium` on PATH) and the `playwright` package (never
`playwright install`: the test drives the system's Chromium). Without them the test skips, or
fails where RESNET_EDU_REQUIRE_BROWSER=1 (CI). Screenshots and JupyterLab's log go to the folder
$RESNET_EDU_ARTIFACTS, by default test-artifacts/browser.
"""

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # JupyterLab in headless Chromium: CI runs it (pytest -m slow)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/01_residual_block.ipynb"
TOKEN = secrets.token_hex(16)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
USER_SETTINGS = {
    # every cell in the DOM, not only those near the viewport
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    # no "get notified about Jupyter news?" pop-up over the notebook
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
RUN_ALL_TIMEOUT_MS = 6 * 60_000  # notebook 01 takes about 35 s here; leave room for a busy CPU
STEP_TIMEOUT_MS = 60_000


def find_chromium():
    """(Chromium's path or None, what is missing to drive it): the system's Chromium and Playwright's client."""
    path = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
    missing = [] if path else ["Chromium (/usr/bin/chromium or `chromium` on PATH)"]
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Python package `playwright`")
    return path, missing


@pytest.fixture
def chromium():
    """Chromium's path; skips (or, with RESNET_EDU_REQUIRE_BROWSER=1, fails) without a browser to drive."""
    path, missing = find_chromium()
    if missing:
        reason = "the browser test needs " + " and ".join(missing) + " (.ci/install_browser.sh installs them)"
        if os.environ.get("RESNET_EDU_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + "; RESNET_EDU_REQUIRE_BROWSER=1 forbids skipping", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture
def artifacts():
    folder = Path(os.environ.get("RESNET_EDU_ARTIFACTS") or ROOT / "test-artifacts" / "browser")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(url, path, method="GET"):
    request = urllib.request.Request(url + path, method=method, data=b"" if method == "POST" else None,
                                     headers={"Authorization": f"token {TOKEN}"})
    return urllib.request.urlopen(request, timeout=10)


def _fresh_jupyter_environment(home):
    """Environment variables that keep the user's Jupyter, JupyterLab and IPython settings out."""
    env = dict(os.environ, JUPYTER_TOKEN=TOKEN)
    for variable in ["JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR",
                     "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"]:
        env[variable] = str(home / variable.lower())
    for plugin, settings in USER_SETTINGS.items():
        path = home / "jupyterlab_settings_dir" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    return env


def _wait_until_serving(url, server, log, timeout_s=90):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            _api(url, "/api/status")
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {timeout_s} s:\n{log.read_text()[-3000:]}")


def _shut_down(url, server):
    """Ask JupyterLab to stop (it stops its kernels too); kill it if it has not within 30 s."""
    try:
        _api(url, "/api/shutdown", method="POST")
    except OSError:
        pass
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


@pytest.fixture
def jupyterlab(chromium, tmp_path, artifacts):
    """JupyterLab on a free loopback port, serving a copy of notebooks/; yields its URL.
    (It takes `chromium` so that it never starts when the test skips.)"""
    shutil.copytree(ROOT / "notebooks", tmp_path / "course" / "notebooks")  # 01 reads no other file
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--ServerApp.root_dir={tmp_path / 'course'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = artifacts / "jupyterlab.log"
    with open(log, "w") as log_file:
        server = subprocess.Popen(command, env=_fresh_jupyter_environment(tmp_path / "jupyter"),
                                  stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_until_serving(url, server, log)
        yield url
    finally:
        _shut_down(url, server)


@pytest.fixture
def page(chromium, tmp_path):
    """A page of a headless Chromium with a fresh profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile", executable_path=chromium, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 1000}, timeout=STEP_TIMEOUT_MS)
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.set_default_timeout(STEP_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def _wait_for_idle_kernel(page):
    idle = page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))
    kernel_dialog = page.locator(".jp-Dialog")
    idle.or_(kernel_dialog).first.wait_for()
    if kernel_dialog.is_visible():  # "Select Kernel": shown where the notebook's kernel is unknown
        kernel_dialog.locator("select").select_option(value='{"name":"python3"}')
        kernel_dialog.locator(".jp-mod-accept").click()
        idle.wait_for()


def _menu(page, menu, item):
    page.locator("#jp-MainMenu").get_by_text(menu, exact=True).click()
    page.locator(".lm-Menu").get_by_text(item, exact=True).click()


def _run_all_cells(page):
    """Clear the stored outputs first, so that a prompt with a number proves that this run set it
    (a fresh kernel numbers the cells 1, 2, ... exactly as the committed outputs do)."""
    prompts = "[...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim())"
    _menu(page, "Edit", "Clear Outputs of All Cells")
    page.wait_for_function(f"() => {prompts}.every(p => p === '[ ]:')")
    _menu(page, "Run", "Run All Cells")
    page.wait_for_function(f"() => {prompts}[0] !== '[ ]:'")  # started: every cell [*], or the first done
    # finished, or stopped by an error (which puts the cells after it back to [ ])
    page.wait_for_function(f"() => !{prompts}.includes('[*]:')", timeout=RUN_ALL_TIMEOUT_MS, polling=500)
    _wait_for_idle_kernel(page)


def _stderr_outputs(page):
    """Texts of the outputs JupyterLab shows in red: stderr streams (warnings) and errors alike."""
    return page.locator('.jp-Cell-outputArea [data-mime-type="application/vnd.jupyter.stderr"]').all_inner_texts()


def _is_traceback(text):
    return re.search(r"Traceback \(most recent call last\)|^\w+(Error|Exception)\b", text, re.M) is not None


def test_notebook_01_runs_in_jupyterlab_and_its_slider_redraws_the_plot(jupyterlab, page, artifacts):
    page.goto(f"{jupyterlab}/lab/tree/{NOTEBOOK}?token={TOKEN}&reset")
    _wait_for_idle_kernel(page)
    _run_all_cells(page)
    page.screenshot(path=artifacts / "01_after_run_all.png")

    stderr = _stderr_outputs(page)
    tracebacks = [text for text in stderr if _is_traceback(text)]
    assert not tracebacks, "a cell raised an error in JupyterLab:\n\n" + "\n\n".join(tracebacks)
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
    assert all(re.fullmatch(r"\[\d+\]:", prompt.strip()) for prompt in prompts), prompts
    for text in stderr:
        warnings.warn(f"notebook 01 wrote to stderr in JupyterLab: {text[:500]}", stacklevel=1)

    assert "interactive(children=" not in page.locator(".jp-Notebook").inner_text()
    interact = page.locator(".jp-Cell-outputArea", has=page.locator(".widget-slider"))
    slider, plot = interact.locator(".widget-slider"), interact.locator(".widget-output img")
    slider.scroll_into_view_if_needed()
    assert slider.is_visible()
    handle, readout = slider.locator('[role="slider"]'), slider.locator(".widget-readout")
    plot_before = plot.get_attribute("src")
    assert readout.inner_text() == "16"
    interact.screenshot(path=artifacts / "01_slider_before.png")

    handle.focus()
    page.keyboard.press("End")  # the slider's maximum, N = 48: one change, so one redraw
    page.wait_for_function("""([interact, before]) => {
        const img = interact.querySelector('.widget-output img');
        const readout = interact.querySelector('.widget-readout').textContent;
        return readout === '48' && img !== null && img.getAttribute('src') !== before;
    }""", arg=[interact.element_handle(), plot_before])
    _wait_for_idle_kernel(page)
    assert float(handle.get_attribute("aria-valuenow")) == 48
    interact.screenshot(path=artifacts / "01_slider_after.png")
