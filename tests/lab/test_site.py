"""The site's assembly (mtst.lab.site): what it refuses to build from, the API page, widgets made static. The built
site itself is read in a browser by tests/e2e/test_site_browser.py."""

from __future__ import annotations

import json
import shutil

import pytest

import mtst
from mtst.lab import site
from mtst.widgets import STATIC_MIME

NAMES = site.notebook_names()


@pytest.fixture
def executed(tmp_path, monkeypatch):
    """A build/executed/ci of notebooks that look run: every code cell with an execution count."""
    monkeypatch.setattr(site, "EXECUTED", tmp_path)
    (tmp_path / "ci").mkdir()
    for name in NAMES:
        nb = json.loads((site.ROOT / "notebooks" / name).read_text())
        for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
            cell["execution_count"] = i + 1
        (tmp_path / "ci" / name).write_text(json.dumps(nb))
    return tmp_path / "ci"


def _edit(path, fn):
    nb = json.loads(path.read_text())
    fn(nb)
    path.write_text(json.dumps(nb))


def test_executed_notebooks_that_match_the_sources_pass(executed):
    assert [p.name for p in site.check_executed("ci")] == NAMES


def test_a_missing_notebook_names_the_make_target(executed):
    (executed / NAMES[3]).unlink()
    with pytest.raises(site.SiteError, match=rf"{NAMES[3]} is missing: run `make notebooks` first"):
        site.check_executed("ci")
    with pytest.raises(site.SiteError, match="run `make demo` first"):
        site.check_executed("demo")


def test_a_notebook_executed_from_older_code_is_refused(executed):
    _edit(executed / NAMES[1], lambda nb: next(c for c in nb["cells"] if c["cell_type"] == "code")["source"].append("\nx = 1"))
    with pytest.raises(site.SiteError, match="executed from older code"):
        site.check_executed("ci")


def test_an_interrupted_run_is_refused(executed):
    _edit(executed / NAMES[2], lambda nb: [c for c in nb["cells"] if c["cell_type"] == "code"][-1].update(execution_count=None))
    with pytest.raises(site.SiteError, match="never ran"):
        site.check_executed("ci")


def test_an_error_output_is_refused(executed):
    def add_error(nb):
        next(c for c in nb["cells"] if c["cell_type"] == "code")["outputs"] = [
            {"output_type": "error", "ename": "ValueError", "evalue": "x", "traceback": []}]
    _edit(executed / NAMES[0], add_error)
    with pytest.raises(site.SiteError, match="holds an error output"):
        site.check_executed("ci")


def test_the_default_size_is_used_only_when_complete(executed):
    assert site.pick_size() == "ci"
    shutil.copytree(executed, executed.parent / "demo")
    assert site.pick_size() == "demo"
    (executed.parent / "demo" / NAMES[0]).unlink()
    assert site.pick_size() == "ci"


def test_the_api_page_documents_every_public_name_once():
    page = site.api_page()
    for name in mtst.__all__:
        assert page.count(f":: mtst.{name}\n") == 1, name
    modules = [line.split("`")[1] for line in page.splitlines() if line.startswith("## ")]
    assert modules == sorted(modules, key=lambda m: site.API_MODULES.index(m.removeprefix("mtst.")))


def test_the_landing_page_links_each_notebook_and_lists_every_page():
    page = site.landing_page((site.ROOT / "README.md").read_text(), "ci")
    for name in NAMES:
        assert f"[`{name}`](notebooks/{name})" in page
        assert f"notebooks/{name.removesuffix('.ipynb')}\n" in page
    assert "docs/claims\n" in page and "\napi\n" in page and "`make notebooks`" in page


def test_widgets_become_their_last_state():
    def model(name, **state):
        return {"model_name": name, "state": state}

    state = {"bar": model("HBoxModel", children=["IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_r"]),
             "l": model("HTMLModel", value="train: 100%"), "p": model("FloatProgressModel", value=18.0, max=18.0),
             "r": model("HTMLModel", value="18/18 [00:01&lt;00:00]"),
             "panel": model("VBoxModel", children=["IPY_MODEL_readout"]),
             "readout": model("LabelModel", value="trainable: 3 of 9 <parameters>")}
    view = "application/vnd.jupyter.widget-view+json"
    nb = {"metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {"state": state}}},
          "cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {view: {"model_id": m}}}]}
                    for m in ("bar", "panel", "gone")]}
    out = [c["outputs"][0]["data"]["text/html"] for c in site.without_widgets(nb)["cells"]]
    assert "widgets" not in nb["metadata"]
    assert '<progress value="18.0" max="18.0">' in out[0] and "train: 100%" in out[0] and "18/18" in out[0]
    assert "make lab" in out[1] and "trainable: 3 of 9 &lt;parameters&gt;" in out[1]
    assert "not saved" in out[2]


def test_the_site_puts_a_panels_data_in_the_page_and_nothing_can_close_its_script():
    data = {"kind": "freeze", "parts": [{"part": "</script><b>x", "params": 1, "trainable": True}], "trials": ""}
    page = site.static_panel_html(data, "<p>note</p>")
    assert page.count("</script>") == 1
    inside = page.split('<script type="application/json">')[1].split("</script>")[0]
    assert json.loads(inside) == data
    nb = {"metadata": {}, "cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {
        "text/plain": "VBox()", STATIC_MIME: data, "application/vnd.jupyter.widget-view+json": {"model_id": "m"}}}]}]}
    out = site.without_widgets(nb)["cells"][0]["outputs"][0]["data"]
    assert list(out) == ["text/html"] and 'class="mtst-static" data-kind="freeze"' in out["text/html"]
    assert "a widget whose state was not saved" in out["text/html"]  # the fallback, shown until the script runs
