"""The built site (`make site`, build/site/html) served by `python -m http.server` and read in headless Chromium:
every page loads without a console error, every image decodes, every internal link resolves, and nothing is
requested from another host."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import torch
from helpers import free_port

from mtst.config import SCHEDULES
from mtst.optim import make_scheduler

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "build" / "site" / "html"
SRC = ROOT / "build" / "site" / "src"
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


def _pages() -> list[str]:
    return sorted(str(p.relative_to(HTML)) for p in HTML.rglob("*.html") if not p.relative_to(HTML).parts[0].startswith("_"))


@pytest.fixture(scope="module")
def site():
    """The site on a free localhost port; yields its base URL."""
    if not (HTML / "index.html").exists():
        pytest.fail(f"{HTML.relative_to(ROOT)}/index.html is missing: run `make site` (`make e2e` does it first)")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(HTML)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{base}/index.html", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("python -m http.server did not answer within 20 s")
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _ids(path: Path, cache: dict = {}) -> set[str]:  # noqa: B006 - a cache over one test run
    if path not in cache:
        cache[path] = set(re.findall(r'\sid="([^"]+)"', path.read_text(errors="replace")))
    return cache[path]


def _visit(browser, base: str, rel: str) -> dict:
    """Load one page; return what it requested, its console errors, its images and its links."""
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"HTTP {r.status} for {r.url}") if r.status >= 400 else None)
    page.goto(f"{base}/{rel}", wait_until="networkidle", timeout=30_000)
    page.evaluate("document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=15_000)
    seen = {
        "requests": requests,
        "errors": errors,
        "images": page.evaluate("Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])"),
        "article_images": page.locator("article img").count(),
        "links": page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"),
        "text": page.locator("article").inner_text(),
    }
    page.close()
    return seen


@pytest.fixture(scope="module")
def visits(site, browser):
    return {rel: _visit(browser, site, rel) for rel in _pages()}


def test_the_site_has_a_page_per_notebook_the_docs_and_the_api():
    pages = set(_pages())
    expected = {"index.html", "api.html", *(f"notebooks/{n}.html" for n in NOTEBOOKS),
                *(f"docs/{p.stem}.html" for p in (ROOT / "docs").glob("*.md"))}
    assert expected <= pages, f"missing pages: {sorted(expected - pages)}"


def test_every_page_loads_without_console_errors(visits):
    bad = {rel: v["errors"] for rel, v in visits.items() if v["errors"]}
    assert not bad, f"console errors: {bad}"


def test_nothing_is_requested_from_another_host(site, visits):
    outside = {u for v in visits.values() for u in v["requests"] if not u.startswith((site + "/", "data:", "blob:"))}
    assert not outside, f"requests to other hosts: {sorted(outside)[:10]}"
    assert all(v["requests"] for v in visits.values())  # the log was recording


def test_every_image_decodes(visits):
    broken = [(rel, src) for rel, v in visits.items() for src, width in v["images"] if not width]
    assert not broken, f"images with no natural width (missing or undecodable): {broken[:10]}"


def test_every_internal_link_resolves(site, visits):
    bad = []
    for rel, v in visits.items():
        for href in v["links"]:
            if not href.startswith(site + "/"):
                continue
            parts = urlsplit(href)
            target = HTML / unquote(parts.path).lstrip("/")
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                bad.append((rel, href))
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _ids(target):
                bad.append((rel, href))
    assert not bad, f"{len(bad)} internal links that do not resolve: {bad[:10]}"


def test_the_site_reads_from_disk_too(browser):
    """Opened as files, with no server: the landing page and a notebook load, images decode, nothing leaves the disk."""
    for rel in ("index.html", "notebooks/03_freezing_scenarios.html"):
        v = _visit(browser, HTML.as_uri(), rel)
        assert not v["errors"], f"{rel} from disk: {v['errors']}"
        assert all(u.startswith(("file://", "data:", "blob:")) for u in v["requests"]), v["requests"]
        assert v["images"] and all(width for _, width in v["images"])


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_notebook_page_shows_the_figures_of_its_run(visits, name):
    nb = json.loads((SRC / "notebooks" / f"{name}.ipynb").read_text())
    figures = sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))
    assert figures >= 1, f"{name}: the executed notebook holds no figure"
    assert visits[f"notebooks/{name}.html"]["article_images"] >= figures


def test_the_landing_page_links_every_notebook_and_the_claims_verdicts_show(visits):
    links = visits["index.html"]["links"]
    for name in NOTEBOOKS:
        assert any(urlsplit(u).path.endswith(f"/notebooks/{name}.html") for u in links), f"index.html has no link to {name}"
    text = visits["notebooks/03_freezing_scenarios.html"]["text"]
    assert re.search(r"F1\s.*(supported|not supported)", text), "03's claims table with its verdicts is not on the page"


def _open_panels(browser, base: str, notebook: str):
    """A notebook page with its panels drawn by mtst-widgets.js; the page, its request log and its errors."""
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/notebooks/{notebook}.html", wait_until="networkidle", timeout=30_000)
    return page, requests, errors


@pytest.mark.parametrize("notebook,kinds", [("03_freezing_scenarios", ["freeze"]), ("04_layerwise_lr", ["schedule", "grad_steps"]),
                                            ("05_gradient_diagnostics", ["grad_steps"])])
def test_the_panels_are_drawn_from_the_data_in_the_page(site, browser, notebook, kinds):
    page, requests, errors = _open_panels(browser, site, notebook)
    assert page.eval_on_selector_all(".mtst-static", "els => els.map(e => e.dataset.kind)") == kinds
    assert page.locator(".mtst-static-ready").count() == len(kinds) and page.locator(".mtst-static-fallback").count() == 0
    assert page.locator(".mtst-static svg").count() == len(kinds) and not errors
    assert all(u.startswith(site + "/") or u.startswith("data:") for u in requests), requests
    page.close()


def test_the_freeze_panel_on_the_site_responds_without_a_kernel(site, browser):
    page, requests, errors = _open_panels(browser, site, "03_freezing_scenarios")
    panel = page.locator(".mtst-static[data-kind=freeze]")
    state = json.loads(panel.locator("script").text_content())
    total = sum(p["params"] for p in state["parts"])
    trainable = sum(p["params"] for p in state["parts"] if p["trainable"])
    readout = panel.locator(".mtst-site-readout")
    assert readout.inner_text() == f"trainable: {trainable:,} of {total:,} parameters ({trainable / total:.1%})"
    figure = panel.locator(".mtst-site-figure").inner_html()
    n_before = len(requests)
    part = next(p for p in state["parts"] if p["trainable"])
    panel.locator(f"input[data-part='{part['part']}']").uncheck()
    trainable -= part["params"]
    assert readout.inner_text() == f"trainable: {trainable:,} of {total:,} parameters ({trainable / total:.1%})"
    assert panel.locator(".mtst-site-figure").inner_html() != figure
    assert panel.locator(".mtst-site-title").text_content().endswith(f"{trainable / total:.1%} trainable")
    assert len(requests) == n_before and not errors  # redrawn in the page: nothing fetched
    page.close()


def test_the_schedule_and_step_sliders_on_the_site_respond_without_a_kernel(site, browser):
    page, requests, errors = _open_panels(browser, site, "04_layerwise_lr")
    panel = page.locator(".mtst-static[data-kind=schedule]")
    lines = panel.locator("path.mtst-site-line")
    first = lines.first.get_attribute("d")
    n_before = len(requests)
    panel.locator("input[aria-label='decay ξ']").fill("0.5")
    assert "a ratio of 64.0×" in panel.locator(".mtst-site-readout").inner_text()  # 0.5^6 from the top layer to the embeddings
    assert lines.first.get_attribute("d") != first
    steps = page.locator(".mtst-static[data-kind=grad_steps]")
    state = json.loads(steps.locator("script").text_content())
    assert steps.locator(".mtst-site-title").text_content() == f"step {state['steps'][-1]} ({state['tasks'][-1]} batch)"
    steps.locator("input[type=range]").fill(str(state["steps"][0]))
    assert steps.locator(".mtst-site-title").text_content() == f"step {state['steps'][0]} ({state['tasks'][0]} batch)"
    assert len(requests) == n_before and not errors
    page.close()


def test_the_pages_schedules_equal_the_trainers(site, browser):
    """The site's script recomputes each schedule's factor; mtst.optim.make_scheduler (the trainer's) is the reference."""
    page, _, _ = _open_panels(browser, site, "04_layerwise_lr")
    for name in SCHEDULES:
        for warmup, total in ((0, 7), (10, 100), (30, 64), (64, 64)):
            probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
            lam = make_scheduler(probe, name, total, warmup).lr_lambdas[0]
            js = page.evaluate("([n, w, t]) => Array.from({length: t}, (_, s) => window.mtstSite.factor(n, s, w, t))", [name, warmup, total])
            assert js == pytest.approx([lam(s) for s in range(total)], abs=1e-12), (name, warmup, total)
    page.close()
