"""Each notebook's navigation cell: second, made from the suite's order, its own headings and the timing file."""

import json

from mtst.lab import docs, nav, store
from mtst.lab.speed_tables import NOTEBOOKS


def test_every_notebook_opens_with_its_navigation_and_it_is_current():
    names = list(NOTEBOOKS)
    for i, path in enumerate(nav.paths()):
        nb = json.loads(path.read_text())
        cell = nb["cells"][1]
        assert cell["metadata"]["tags"] == [nav.TAG], path.name
        text = "".join(cell["source"])
        assert text == nav.nav_text(path.name), f"{path.name}: run python -m mtst.lab.docs"
        if i:
            assert f"]({names[i - 1]})" in text
        if i + 1 < len(names):
            assert f"]({names[i + 1]})" in text
        headings = [line[3:] for c in nb["cells"] if c["cell_type"] == "markdown" for line in "".join(c["source"]).splitlines()
                    if line.startswith("## ")]
        assert all(f"[{h.strip()}](<#" in text for h in headings), path.name
    assert not [p for p in docs.stale() if p.suffix == ".ipynb"]


def test_the_run_time_line_reads_the_timing_file(tmp_path, monkeypatch):
    timing = store.read_json(store.RESULTS_DIR / "notebooks_cpu_demo.json")
    entry = next(n for n in timing["notebooks"] if n["notebook"] == "03_freezing_scenarios.ipynb")
    assert f"{entry['wall_time_s']:,.0f} s cold in suite order" in nav.nav_text("03_freezing_scenarios.ipynb")
    entry["alone_s"] = 287.4
    (tmp_path / "notebooks_cpu_demo.json").write_text(json.dumps(timing))
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path)
    assert "opened alone from an empty run cache, 287 s" in nav.nav_text("03_freezing_scenarios.ipynb")
    (tmp_path / "notebooks_cpu_demo.json").unlink()
    assert "**Run time** at the default size: not measured yet." in nav.nav_text("03_freezing_scenarios.ipynb")
