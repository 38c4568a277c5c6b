"""What the browser tests share: a headless Chromium (Debian's, else Playwright's own), driven by Playwright."""

from __future__ import annotations

import os
import shutil

import pytest

# MTST_CHROMIUM, else Debian's chromium on PATH, else Playwright's own Chromium (`make e2e` gets one: tools/need_chromium.sh).
CHROMIUM = os.environ.get("MTST_CHROMIUM") or shutil.which("chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        except Exception as e:  # noqa: BLE001 - any failure to start: say how to get a browser
            which = CHROMIUM or "Playwright's own"
            pytest.fail(f"no Chromium starts ({which}: {e}); run `make e2e` (tools/need_chromium.sh gets one)")
        try:
            yield b
        finally:
            b.close()
