"""Each notebook as slides in JupyterLab (jupyterlab-rise), driven in headless Chromium: the slide view opens on an
executed notebook (`make notebooks` wrote it), its slides are the ones mtst.lab.slides marked, it advances, and a
slide shows a figure; the view asks nothing of another host."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import free_port, http_status

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXECUTED = ROOT / "build" / "executed" / "ci"
NOTEBOOK = "00_data_tour.ipynb"


@pytest.fixture(scope="module")
def slides_server(tmp_path_factory):
    """JupyterLab, as `make lab` starts it, on a folder holding an executed copy of the notebook (the notebooks in
    notebooks/ are kept without outputs, and slides of cells never run would show no figure)."""
    if not (EXECUTED / NOTEBOOK).exists():
        pytest.fail(f"{(EXECUTED / NOTEBOOK).relative_to(ROOT)} is missing: run `make notebooks` (`make test` does it first)")
    folder = tmp_path_factory.mktemp("slides")
    shutil.copy(EXECUTED / NOTEBOOK, folder / NOTEBOOK)
    shutil.copy(ROOT / "notebooks" / "rise.css", folder / "rise.css")
    port, token = free_port(), secrets.token_hex(16)
    root_flag = ["--allow-root"] if os.getuid() == 0 else []
    log = (folder / "lab.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("jupyter")), "lab", f"--notebook-dir={folder}", "--ServerApp.ip=127.0.0.1",
                             f"--ServerApp.port={port}", "--ServerApp.open_browser=False", *root_flag],
                            env={**os.environ, "JUPYTER_TOKEN": token, "JUPYTERLAB_WORKSPACES_DIR": str(folder / "ws")},
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while http_status_or_none(f"{base}/api/status?token={token}") != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start for the slides:\n{(folder / 'lab.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield base, token, folder
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def http_status_or_none(url: str) -> int | None:
    try:
        return http_status(url)
    except OSError:
        return None


def test_the_slide_view_opens_advances_and_shows_a_figure(slides_server, browser):
    base, token, folder = slides_server
    cells = json.loads((folder / NOTEBOOK).read_text())["cells"]
    marked = [c["metadata"]["slideshow"]["slide_type"] for c in cells]
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/rise/{NOTEBOOK}?token={token}")
    page.wait_for_selector(".reveal .slides > section.present", timeout=90_000)
    assert page.locator(".reveal .slides > section").count() == marked.count("slide")  # one per slide cell: the marks took
    first = page.locator(".reveal .slides > section.present").inner_text()
    assert cells[0]["source"][0].lstrip("# ").strip().upper() in first.upper()  # the title slide (the theme sets headings in capitals)
    seen_figure = False
    for _ in range(marked.count("slide") + marked.count("subslide")):
        before = page.evaluate("Array.from(document.querySelectorAll('.reveal section.present')).map(s => s.innerText).join('|')")
        page.keyboard.press("Space")  # reveal.js: the next slide or sub-slide
        page.wait_for_function("b => Array.from(document.querySelectorAll('.reveal section.present')).map(s => s.innerText).join('|') !== b",
                               arg=before, timeout=10_000)
        images = page.locator(".reveal section.present img")
        if images.count() and images.first.evaluate("im => im.complete && im.naturalWidth") > 0:
            seen_figure = True
            break
    assert seen_figure, "no slide showed a decoded figure"
    page.screenshot(path=str(ROOT / "reports" / "screenshots" / "slides-00.png"))
    assert not [u for u in requests if not u.startswith((base, "data:", "blob:"))], "the slide view asked another host"
    assert not errors, errors
    page.close()
