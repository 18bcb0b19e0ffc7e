"""The dashboard in a real browser: `dynmix --home FIXTURE dashboard --port P`, every page visited with Debian's
Chromium through Playwright, a full-page screenshot of each, and no Streamlit exception anywhere.

Screenshots go to test-artifacts/screenshots/<page>.png (git-ignored) and, when $DYNMIX_SCREENSHOT_DIR is set,
are copied there too.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
# (url path from st.navigation, title on the page, least number of Plotly charts drawn)
PAGES = [("", "DynMIX — overview", 0), ("data", "Data", 3), ("training", "Training", 3),
         ("embeddings", "Embedding map", 2), ("forecasts", "Forecasts", 2), ("planner", "Planner", 2)]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
EXCEPTION = "[data-testid='stException']"
SCROLLER = "[data-testid='stMain']"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason="Debian chromium is not installed at /usr/bin/chromium "
                                                       "(apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dynmix_command() -> list[str]:
    exe = Path(sys.executable).parent / "dynmix"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "dynmix"]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the dashboard exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:  # noqa: S310 - local server
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"no healthy dashboard at {url} after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def server(full_home: Path, tmp_path: Path):
    """The dashboard on a free local port, reading the fixture workspace; always stopped afterwards.

    $DYNMIX_BROWSER_HOME points it at another workspace instead (the README's screenshots are of a demo run).
    """
    home = Path(os.environ.get("DYNMIX_BROWSER_HOME") or full_home)
    port = free_port()
    log = tmp_path / "dashboard.log"
    env = {**os.environ, "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([*dynmix_command(), "--home", str(home), "dashboard", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc, log)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the dynmix process and the streamlit server it started
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_every_page_renders_in_chromium(server: str):
    sync_api = pytest.importorskip("playwright.sync_api")
    SHOTS.mkdir(parents=True, exist_ok=True)
    extra = os.environ.get("DYNMIX_SCREENSHOT_DIR")
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            for path, title, charts in PAGES:
                page.set_viewport_size({"width": 1400, "height": 900})
                page.goto(f"{server}/{path}", wait_until="domcontentloaded")
                page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
                page.wait_for_selector(IDLE, timeout=60_000)
                if charts:
                    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= "
                                           f"{charts}", timeout=30_000)
                height = page.evaluate(f"document.querySelector(\"{SCROLLER}\").scrollHeight")
                page.set_viewport_size({"width": 1400, "height": max(900, int(height))})  # stMain scrolls, not
                page.wait_for_timeout(800)  # the page: grow the window to all of it, let charts re-layout
                name = path or "overview"
                shot = SHOTS / f"{name}.png"
                page.screenshot(path=str(shot), full_page=True)
                if extra:
                    Path(extra).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(shot, Path(extra) / shot.name)
                errors = page.locator(EXCEPTION)
                if errors.count():
                    problems.append(f"{name}: {errors.count()} exception(s): {errors.first.inner_text()[:500]}")
        finally:
            browser.close()
    assert not problems, problems
