"""Every results file has its schema and provenance, and the README tables are the ones they render."""

import json
from pathlib import Path

import pandas as pd
import pytest

from mtst import results

FILES = sorted(results.RESULTS_DIR.glob("*.csv"))


def test_there_are_results():
    assert {p.stem for p in FILES} >= {"single_vs_multi", "recipe_sweep"}


@pytest.mark.parametrize("csv", FILES, ids=lambda p: p.name)
def test_schema_and_provenance(csv: Path):
    df = pd.read_csv(csv)
    assert list(df.columns) == results.COLUMNS
    assert len(df) and df.value.notna().all() and (df.wall_time_s > 0).all()
    prov = json.loads(csv.with_suffix(".json").read_text())
    assert set(results.PROVENANCE_KEYS) <= set(prov)
    assert prov["experiment"] == csv.stem == df.experiment.unique().item()
    assert prov["size"] in ("ci", "demo", "full") and prov["wall_time_s"] > 0
    assert sorted(df.seed.unique().tolist()) == sorted(prov["seeds"])
    assert prov["commit"] and prov["date"][:4].isdigit() and prov["hardware"]["torch"]


@pytest.mark.parametrize("path", sorted(results.RESULTS_DIR.glob("bench_*.json")), ids=lambda p: p.name)
def test_benchmark_files_carry_their_machine(path: Path):
    r = json.loads(path.read_text())
    assert r["benchmark"] in path.name and r["hardware"]["cpu"] and r["commit"] and r["date"]
    if r["device"].startswith("cuda"):
        assert r["hardware"]["gpu"].split()[1].lower() in path.name


def test_readme_tables_come_from_the_results_files():
    readme = (results.ROOT / "README.md").read_text()
    assert readme == results.render_readme(readme), "README tables differ from results/: run python -m mtst.results --readme"
    for name in results.SECTIONS:
        assert f"<!-- {name}:begin -->" in readme


def test_single_vs_multi_table_reports_the_csv_means():
    df, _ = results.load("single_vs_multi")
    mean = df[(df.metric == "score") & (df.setting == "multi") & (df.task == "topic")].value.mean()
    assert f"{100 * mean:.1f} ±" in results.table_single_vs_multi()
