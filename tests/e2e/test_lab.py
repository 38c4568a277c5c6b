"""The suite in a real JupyterLab, started by `make lab`, driven in Debian's headless Chromium by Playwright.

Each notebook runs at size ci in the browser; the test then clicks its widgets and reads the DOM. Every wait
is bounded, so a hung kernel fails the test instead of hanging CI. Screenshots go to reports/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import free_port, http_status

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "reports" / "screenshots"
START_TIMEOUT_S = 90
RUN_TIMEOUT_S = {"03_freezing_scenarios.ipynb": 480, "01_sentence_encoder.ipynb": 300, "04_layerwise_lr.ipynb": 480}
# The parameters cell runs in milliseconds: if it has no number this long after "Run All", the run never started
# (the click was lost, or the kernel is not taking requests), and the test retries once before it fails.
FIRST_CELL_S = 60
# JupyterLab settings for the test's server: no news or update checks; no autosave, so that running the
# notebooks in the browser never writes their outputs back into notebooks/; and every cell kept in the DOM
# (no windowing), so the checks below see the whole notebook, not only the cells in view.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket in LISTEN state on `port`, read from /proc/net/tcp{,6}."""
    found = set()
    for name, width in (("tcp", 8), ("tcp6", 32)):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.split(":")
            if int(p, 16) == port and state == "0A":
                if width == 8:
                    found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
                else:
                    raw = bytes.fromhex(addr)
                    found.add(socket.inet_ntop(socket.AF_INET6, b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))))
    return found


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """`make lab` on a free port with a known token; yields (base_url, token, port, log_path); always shut down."""
    tmp = tmp_path_factory.mktemp("lab")
    settings = tmp / "settings"
    for rel, value in LAB_SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(value))
    port, token = free_port(), secrets.token_hex(16)
    # The notebooks run as a user runs them: with the run cache (the unit tests' conftest turns it off for themselves).
    env = {k: v for k, v in os.environ.items() if k != "MTST_RUN_CACHE"}
    env = {**env, "JUPYTER_TOKEN": token, "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"), "MTST_SIZE": "ci", "PORT": str(port)}
    log = (tmp / "lab.log").open("w")
    proc = subprocess.Popen(["make", "-s", "lab", f"PORT={port}"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"`make lab` exited with code {proc.returncode} before answering:\n{(tmp / 'lab.log').read_text()[-3000:]}")
            try:
                if http_status(f"{base}/api/status?token={token}") == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within {START_TIMEOUT_S} s:\n{(tmp / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, token, port, tmp / "lab.log"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_make_lab_listens_on_localhost_only_and_needs_the_token(lab):
    base, token, port, _ = lab
    addresses = _listening_addresses(port)
    assert addresses and addresses <= {"127.0.0.1", "::1"}, f"JupyterLab listens on {addresses}, expected localhost only"
    assert http_status(f"{base}/api/kernels") == 403
    assert http_status(f"{base}/api/kernels?token=wrong{token}") == 403
    assert http_status(f"{base}/api/kernels?token={token}") == 200


def _kernel_state(lab, name: str) -> str:
    """The server's view of the notebook's kernel (idle, busy, starting, dead, ...), from the sessions API."""
    base, token, _, _ = lab
    try:
        with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5) as r:
            sessions = json.load(r)
    except OSError as e:
        return f"unknown ({e})"
    states = [s["kernel"]["execution_state"] for s in sessions if s.get("path", "").endswith(name) and s.get("kernel")]
    return ", ".join(states) or "no session"


def _diagnosis(page, lab, name: str, shot: str) -> str:
    """What a failed run looked like: the kernel's state, any open dialog, a screenshot (its name ends in `shot`)
    and the end of the JupyterLab log."""
    dialogs = page.locator(".jp-Dialog")
    dialog = dialogs.first.inner_text()[:300] if dialogs.count() else "none"
    return (f"kernel: {_kernel_state(lab, name)}; dialog: {dialog!r}; screenshot: {_shot(page, name, shot).relative_to(ROOT)}\n"
            f"end of the JupyterLab log:\n{lab[3].read_text(errors='replace')[-2000:]}")


def _accept_dialog(page, wait_ms: int) -> None:
    """Accept a dialog such as "Select Kernel", which can cover the notebook on first open, if one shows within wait_ms."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    dialog = page.locator(".jp-Dialog")
    try:
        dialog.wait_for(state="visible", timeout=wait_ms)
        dialog.locator("button.jp-mod-accept").click()
    except PlaywrightTimeout:
        pass  # no dialog: nothing to dismiss


def _run_all(page) -> None:
    _accept_dialog(page, 1000)
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()


def _run_notebook(browser, lab, name: str):
    """Open a notebook, run all cells, wait (bounded) until every code cell has run; return the page."""
    base, token = lab[:2]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    page.goto(f"{base}/lab/tree/{name}?reset&token={token}")  # reset: no tabs restored from an earlier page
    panel = page.locator(".jp-NotebookPanel:visible")
    panel.wait_for(state="visible", timeout=START_TIMEOUT_S * 1000)
    ran = lambda t: re.search(r"\[\d+\]", t)  # noqa: E731 - a prompt reads [3] once its cell has run
    prompts = panel.locator(".jp-CodeCell .jp-InputPrompt")
    _accept_dialog(page, 3000)
    _until(lambda: _kernel_state(lab, name) == "idle", START_TIMEOUT_S,
           lambda: f"{name}: the kernel did not start (not idle within {START_TIMEOUT_S} s; {_diagnosis(page, lab, name, '-no-kernel')})")
    for attempt in (1, 2):
        _run_all(page)
        deadline = time.monotonic() + FIRST_CELL_S
        while not ran(prompts.first.inner_text()) and time.monotonic() < deadline:
            time.sleep(1)
        if ran(prompts.first.inner_text()):
            break
        if attempt == 2:
            pytest.fail(f"{name}: Run All twice, and the first cell had not run {FIRST_CELL_S} s after either; "
                        f"{_diagnosis(page, lab, name, '-not-started-2')}")
        _shot(page, name, "-not-started-1")
    deadline = time.monotonic() + RUN_TIMEOUT_S[name]
    while True:
        texts = prompts.all_inner_texts()
        if texts and all(ran(t) for t in texts):
            break
        if time.monotonic() > deadline:
            pending = [i for i, t in enumerate(texts) if not ran(t)]
            pytest.fail(f"{name}: {len(pending)} of {len(texts)} code cells (from cell {pending[0]}) had not finished "
                        f"after {RUN_TIMEOUT_S[name]} s; {_diagnosis(page, lab, name, '-timeout')}")
        time.sleep(1)
    return page


def _shot(page, name: str, suffix: str = "") -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{Path(name).stem}{suffix}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _assert_no_errors(page, name: str) -> None:
    text = page.locator(".jp-Notebook").inner_text()
    assert "Error displaying widget" not in text, f"{name}: a widget failed to render"
    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"], .jp-OutputArea-output:has-text("Traceback")')
    assert errors.count() == 0, f"{name}: error output in the notebook:\n{errors.first.inner_text()[:2000]}"


def _assert_figures_drawn(page, name: str) -> None:
    """Plots came out as images that the browser decoded and laid out, none as a `<Figure size ...>` line of text."""
    assert "<Figure size" not in page.locator(".jp-Notebook").inner_text(), f"{name}: a figure printed as text"
    images = page.locator(".jp-OutputArea-output img")
    assert images.count() >= 1, f"{name}: no figure drawn as an image after Run All"
    for i in range(images.count()):
        img = images.nth(i)
        img.scroll_into_view_if_needed()
        box = img.bounding_box()
        assert img.is_visible() and box and box["width"] > 0 and box["height"] > 0, f"{name}: figure {i} is not laid out"
        assert img.evaluate("im => im.complete && im.naturalWidth") > 0, f"{name}: figure {i} did not decode"


def _until(predicate, seconds: float, message) -> None:
    """Poll predicate until it holds; fail with message() after `seconds`."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(message())
        time.sleep(0.2)


def _readout_count(page) -> int:
    text = page.locator(".mtst-trainable-readout").inner_text()
    m = re.search(r"trainable: ([\d,]+) of", text)
    assert m, f"unexpected readout {text!r}"
    return int(m.group(1).replace(",", ""))


def test_freezing_notebook_runs_and_its_panel_responds(lab, browser):
    import mtst

    name = "03_freezing_scenarios.ipynb"
    page = _run_notebook(browser, lab, name)
    _assert_no_errors(page, name)
    _assert_figures_drawn(page, name)
    panel = page.locator(".mtst-freeze-panel")
    panel.scroll_into_view_if_needed()
    before = _readout_count(page)
    layer5 = sum(p.numel() for p in mtst.SentenceEncoder.from_pretrained().layers[5].parameters())
    box = panel.locator(".widget-checkbox", has_text="layer_5").locator("input[type=checkbox]")
    was_checked = box.is_checked()
    box.click()
    expected = before - layer5 if was_checked else before + layer5
    _until(lambda: _readout_count(page) == expected, 10,
           lambda: f"readout stayed at {_readout_count(page):,} after toggling layer_5; expected {expected:,}")
    assert box.is_checked() != was_checked
    # The trial button: a short run with layer_5 toggled, its validation scores added as a new row within 20 s.
    rows = panel.locator(".mtst-trials tbody tr")
    before_rows = rows.count()
    panel.locator(".mtst-trial-button").click()
    _until(lambda: rows.count() == before_rows + 1, 20,
           lambda: f"the trials table still has {rows.count()} rows 20 s after pressing the trial button")
    last = rows.nth(before_rows).inner_text()
    assert "→" in last and ("layer 5" in last) == was_checked, last
    _assert_no_errors(page, name)
    _shot(page, name)
    page.close()


def test_encoder_notebook_text_widget_searches(lab, browser):
    name = "01_sentence_encoder.ipynb"
    page = _run_notebook(browser, lab, name)
    _assert_no_errors(page, name)
    widget = page.locator(".mtst-neighbours")
    widget.scroll_into_view_if_needed()
    before = widget.locator(".widget-html").inner_text()
    query = "a warm and funny film with a great cast"
    field = widget.locator("input[type=text]")
    field.fill(query)
    field.press("Enter")
    _until(lambda: widget.locator(".widget-html").inner_text() != before, 20,
           lambda: "the neighbour table did not change after a new sentence was entered")
    assert widget.locator(".widget-html table tr").count() >= 2
    _assert_no_errors(page, name)
    _shot(page, name)
    page.close()


def test_layerwise_lr_notebook_runs_and_its_schedule_widget_follows_the_decay_slider(lab, browser):
    """Two key presses on the decay slider's handle (0.9 → 0.8): the kernel recomputes the groups, and the status line
    and group table show the new rates. The embeddings sit six steps below the top layer, so their rate is ξ⁶ × lr."""
    name = "04_layerwise_lr.ipynb"
    page = _run_notebook(browser, lab, name)
    _assert_no_errors(page, name)
    widget = page.locator(".mtst-lr-schedule")
    widget.scroll_into_view_if_needed()
    status = widget.locator(".mtst-lr-status")

    def ratio() -> float:
        m = re.search(r"a ratio of ([\d.]+)×", status.inner_text())
        assert m, f"unexpected status {status.inner_text()!r}"
        return float(m.group(1))

    assert ratio() == round(0.9**-6, 1)
    table_before = widget.locator(".mtst-lr-groups").inner_text()
    handle = widget.locator(".widget-slider", has_text="decay").locator(".noUi-handle")
    handle.focus()
    handle.press("ArrowLeft")
    handle.press("ArrowLeft")
    _until(lambda: ratio() == round(0.8**-6, 1), 20, lambda: f"status stayed at {status.inner_text()!r} after moving decay to 0.8")
    assert widget.locator(".mtst-lr-groups").inner_text() != table_before
    # The trial button: a short run at ξ = 0.8, its validation scores added as a new row within 30 s.
    rows = widget.locator(".mtst-lr-trials tbody tr")
    before_rows = rows.count()
    widget.locator(".mtst-lr-trial-button").click()
    _until(lambda: rows.count() == before_rows + 1, 30,
           lambda: f"the trials table still has {rows.count()} rows 30 s after pressing the trial button")
    last = rows.nth(before_rows).inner_text()
    assert "ξ 0.8" in last and "→" in last, last
    _assert_no_errors(page, name)
    _shot(page, name)
    page.close()
