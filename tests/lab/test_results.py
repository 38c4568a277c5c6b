"""Every results file has its schema and provenance, and the README tables are the ones they render."""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

import mtst
from mtst.lab import docs, experiments, results, speed_tables, store, tables
from mtst.lab.kept import Resume, differences

FILES = sorted(store.RESULTS_DIR.glob("*.csv"))


@pytest.mark.parametrize("path", sorted(p for p in store.RESULTS_DIR.rglob("*") if p.is_file()), ids=lambda p: p.name)
def test_results_files_hold_no_path_of_the_machine_they_ran_on(path: Path):
    found = re.findall(r"(?<![\w.])/(?:work|home|root|tmp|mnt|Users)/[^\s\"',)]*", path.read_text(errors="replace"))
    assert not found, f"{path.name} names paths of the machine it ran on: {found[:3]}"


def test_there_are_results():
    assert {p.stem for p in FILES} >= {"single_vs_multi", "recipe_sweep"}


@pytest.mark.parametrize("csv", FILES, ids=lambda p: p.name)
def test_schema_and_provenance(csv: Path):
    df = pd.read_csv(csv)
    assert list(df.columns) == experiments.COLUMNS
    assert len(df) and df.value.notna().all() and (df.wall_time_s > 0).all()
    prov = json.loads(csv.with_suffix(".json").read_text())
    assert set(store.PROVENANCE_KEYS) <= set(prov)
    assert prov["experiment"] == csv.name.split(".")[0] == df.experiment.unique().item()  # <experiment>[.<tag>].csv
    assert prov["size"] in ("ci", "demo", "full") and prov["wall_time_s"] > 0
    assert sorted(df.seed.unique().tolist()) == sorted(prov["seeds"])
    assert prov["commit"] and prov["date"][:4].isdigit() and prov["hardware"]["torch"]


@pytest.mark.parametrize("path", sorted(store.RESULTS_DIR.glob("bench_*.json")), ids=lambda p: p.name)
def test_benchmark_files_carry_their_machine(path: Path):
    r = json.loads(path.read_text())
    assert r["benchmark"] in path.name and r["hardware"]["cpu"] and r["commit"] and r["date"]
    if r["device"].startswith("cuda"):
        assert r["hardware"]["gpu"].split()[1].lower() in path.name


def test_the_tables_in_readme_and_docs_come_from_the_results_files():
    assert docs.stale() == [], "tables differ from results/: run python -m mtst.lab.docs"
    pages = "".join((store.ROOT / p).read_text() for p in docs.PAGES)
    for name in docs.SECTIONS:  # every table has a place
        assert f"<!-- {name}:begin -->" in pages, name


def test_single_vs_multi_table_reports_the_csv_means():
    df, _ = store.load("single_vs_multi")
    mean = df[(df.metric == "score") & (df.setting == "multi") & (df.task == "topic")].value.mean()
    assert f"{100 * mean:.1f} ±" in tables.table_single_vs_multi()


def test_a_score_recorded_along_the_run_is_summarized_by_its_last_value():
    rows = [("drift", 0, "score@0", 0.8), ("drift", 0, "score@10", 0.7), ("drift", 0, "score@5", 0.9),
            ("drift", 1, "score@0", 0.8), ("drift", 1, "score@10", 0.5)]
    df = pd.DataFrame([{"setting": a, "seed": b, "task": "sentiment", "metric": m, "value": v} for a, b, m, v in rows])
    s = store.summarize(df)
    assert (s.setting.tolist(), s.seeds.tolist()) == (["drift"], [2])
    assert s["mean"].iloc[0] == pytest.approx(0.6)


def _split_by_seed(tmp_path: Path, experiment: str) -> tuple[list[Path], pd.DataFrame, dict]:
    """The experiment's results file cut into one folder per seed, as separate device calls would write it."""
    df, prov = store.load(experiment)
    dirs = []
    for seed in sorted(df.seed.unique()):
        d = tmp_path / f"seed{seed}"
        d.mkdir(parents=True)
        df[df.seed == seed].to_csv(d / f"{experiment}.csv", index=False)
        (d / f"{experiment}.json").write_text(json.dumps({**prov, "seeds": [int(seed)], "wall_time_s": 10.0, "notes": f"call {seed}"}))
        dirs.append(d)
    return dirs, df, prov


def test_merge_joins_runs_of_one_recipe(tmp_path, monkeypatch):
    dirs, df, prov = _split_by_seed(tmp_path / "in", "freezing")
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path / "out")
    merged, mprov = pd.read_csv(store.merge("freezing", dirs)), json.loads((tmp_path / "out" / "freezing.json").read_text())
    key = ["setting", "seed", "task", "metric"]
    pd.testing.assert_frame_equal(merged.sort_values(key).reset_index(drop=True), df.sort_values(key).reset_index(drop=True))
    assert mprov["seeds"] == sorted(prov["seeds"]) and mprov["wall_time_s"] == 10.0 * len(dirs)
    assert mprov["notes"].startswith(f"merged from {len(dirs)} runs") and "call 0" in mprov["notes"]
    # runs that carry the same note (later units of one round) are listed once, with all their seeds
    for d in dirs[1:]:
        j = d / "freezing.json"
        j.write_text(json.dumps({**json.loads(j.read_text()), "notes": "a later round"}))
    store.merge("freezing", dirs)
    notes = json.loads((tmp_path / "out" / "freezing.json").read_text())["notes"]
    assert notes == f"merged from {len(dirs)} runs: seeds [0]: call 0 | seeds {sorted(prov['seeds'])[1:]}: a later round"
    # merging a merged file again lists its runs' notes, not a "merged from" note inside another
    again = tmp_path / "again"
    again.mkdir()
    for f in ("freezing.csv", "freezing.json"):
        (again / f).write_text((tmp_path / "out" / f).read_text())
    extra = _split_by_seed(tmp_path / "extra", "freezing")[0][0]
    (extra / "freezing.csv").write_text(pd.read_csv(extra / "freezing.csv").assign(seed=9).to_csv(index=False))
    (extra / "freezing.json").write_text(json.dumps({**json.loads((extra / "freezing.json").read_text()), "seeds": [9], "notes": "seed 9"}))
    store.merge("freezing", [again, extra])
    notes = json.loads((tmp_path / "out" / "freezing.json").read_text())["notes"]
    assert notes == f"merged from {len(dirs) + 1} runs: seeds [0]: call 0 | seeds {sorted(prov['seeds'])[1:]}: a later round | seeds [9]: seed 9"


def test_merge_refuses_overlaps_and_mixed_recipes(tmp_path, monkeypatch):
    dirs, _, prov = _split_by_seed(tmp_path / "in", "freezing")
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path / "out")
    with pytest.raises(ValueError, match="more than one source"):
        store.merge("freezing", [dirs[0], dirs[0]])
    (dirs[1] / "freezing.json").write_text(json.dumps({**prov, "config": {**prov["config"], "epochs": 4.0 + prov["config"]["epochs"]}}))
    with pytest.raises(ValueError, match="differ in config"):
        store.merge("freezing", dirs)
    with pytest.raises(FileNotFoundError, match="must be a folder holding"):
        store.merge("freezing", [tmp_path])
    (dirs[1] / "freezing.json").write_text(json.dumps({**prov, "hardware": {**prov["hardware"], "gpu": "NVIDIA H200"}}))
    with pytest.raises(ValueError, match="differ in hardware"):
        store.merge("freezing", dirs)
    with pytest.raises(ValueError, match="must be lower-case letters"):
        store.merge("freezing", dirs[:1], tag="../x")
    assert not (tmp_path / "out").exists()  # refused: nothing written


def test_a_tagged_merge_writes_beside_the_main_file(tmp_path, monkeypatch):
    dirs, df, _ = _split_by_seed(tmp_path / "in", "freezing")
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path / "out")
    main = store.merge("freezing", dirs[:1])
    before = main.read_bytes()
    tagged = store.merge("freezing", dirs[1:], tag="cpu")
    assert tagged.name == "freezing.cpu.csv" and tagged.with_suffix(".json").exists()
    assert main.read_bytes() == before  # the main file is left as it was
    assert sorted(store.load("freezing", "cpu")[0].seed.unique()) == sorted(df.seed.unique())[1:]
    assert json.loads(main.with_suffix(".json").read_text())["notes"] == "call 0"  # one run: its own note, not "merged from 1 run"
    with pytest.raises(SystemExit):
        results.main(["--tag", "cpu"])  # a tag without --merge is an argparse error


def test_a_deadline_already_past_starts_nothing_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path)
    results.run(["precision"], "ci", [0], jobs=2, out=tmp_path / "out", deadline_s=0)
    assert "no run finished, nothing written" in capsys.readouterr().out
    assert not list(tmp_path.rglob("*.csv"))


@pytest.mark.parametrize("path", sorted(store.RESULTS_DIR.glob("notebooks_*.json")), ids=lambda p: p.name)
def test_notebook_times_cover_every_notebook(path: Path):
    """A `ci` timing covers the whole suite; a longer size, timed a few notebooks at a time, may still miss some."""
    r = json.loads(path.read_text())
    names = sorted(p.name for p in (store.ROOT / "notebooks").glob("*.ipynb"))
    timed = sorted(n["notebook"] for n in r["notebooks"])
    assert (timed == names if r["size"] == "ci" else set(timed) <= set(names)) and all(n["passed"] for n in r["notebooks"])
    assert r["total_s"] == pytest.approx(sum(n["wall_time_s"] for n in r["notebooks"]), abs=0.2)
    assert ("gpu" in r["hardware"]) == any(n["cuda"] for n in r["notebooks"])
    table = speed_tables.table_notebook_times()
    assert all(f"`{n}`" in table for n in names)


def _timing(names_secs: dict, commit: str, date: str, size: str = "demo", cpu: str = "AMD EPYC") -> dict:
    rows = [{"notebook": n, "wall_time_s": t, "passed": True, "error": None, "cuda": False, "peak_gpu_mib": None} for n, t in names_secs.items()]
    return {"benchmark": "notebooks", "size": size, "notebooks": rows, "total_s": sum(names_secs.values()), "commit": commit,
            "date": date, "hardware": {"cpu": cpu, "cpu_threads": 2, "torch": "2.13.0+cpu"}}


def test_notebook_timings_fold_together_each_keeping_its_commit(tmp_path, monkeypatch):
    import importlib

    monkeypatch.syspath_prepend(str(store.ROOT / "tools"))
    tn = importlib.import_module("time_notebooks")
    a = tmp_path / "a.json"
    a.write_text(json.dumps(_timing({"00_x.ipynb": 14.0, "04_y.ipynb": 3600.0}, "aaa1111", "2026-11-27T10:00:00")))
    b = tmp_path / "b.json"
    b.write_text(json.dumps(_timing({"04_y.ipynb": 3500.0, "03_z.ipynb": 1200.0}, "bbb2222", "2026-11-28T10:00:00")))
    out = tmp_path / "notebooks_cpu_demo.json"
    assert tn.main(["--json", str(out), "--merge", str(a), str(b)]) == 0
    r = json.loads(out.read_text())
    assert [(n["notebook"], n["wall_time_s"], n["commit"]) for n in r["notebooks"]] == [
        ("00_x.ipynb", 14.0, "aaa1111"), ("03_z.ipynb", 1200.0, "bbb2222"), ("04_y.ipynb", 3500.0, "bbb2222")]  # the later run wins
    assert r["total_s"] == 4714.0 and r["commit"] == "bbb2222" and r["date"].startswith("2026-11-28")
    assert speed_tables._timed_when(r) == "commits `aaa1111` (00), `bbb2222` (03, 04), 2026-11-27 to 2026-11-28"

    before = out.read_text()
    other = tmp_path / "ci.json"
    other.write_text(json.dumps(_timing({"01_w.ipynb": 50.0}, "ccc3333", "2026-11-29T10:00:00", size="ci")))
    with pytest.raises(ValueError, match="different size: demo and ci"):
        tn.main(["--json", str(out), "--merge", str(other)])
    other.write_text(json.dumps(_timing({"01_w.ipynb": 50.0}, "ccc3333", "2026-11-29T10:00:00", cpu="Intel Xeon")))
    with pytest.raises(ValueError, match="different hardware"):
        tn.main(["--json", str(out), "--merge", str(other)])
    assert out.read_text() == before  # refused, and the file is unchanged
    with pytest.raises(SystemExit):
        tn.main(["--merge", str(a)])  # no --json to write to: argparse names the fix


@pytest.mark.slow
def test_the_tuned_static_baseline_tests_the_weight_validation_picked(monkeypatch):
    monkeypatch.setenv("MTST_RESULTS_EPOCHS", "0.25")
    rows = pd.DataFrame(experiments.run_loss_weighting("ci", 0, "static_joint_tuned"))
    val = rows[rows.metric.str.startswith("validation@ner_weight=")]
    assert sorted(float(m.split("=")[1]) for m in val.metric) == sorted(experiments.TUNED_NER_WEIGHTS)
    chosen = rows[rows.metric == "chosen_ner_weight"].value.item()
    assert val.set_index("metric").value.idxmax() == f"validation@ner_weight={chosen}"
    assert set(rows[rows.metric == "score"].task) == {"sentiment", "topic", "ner"}


@pytest.mark.slow
def test_uncertainty_runs_record_their_learned_weights_and_the_table_shows_them(monkeypatch, tmp_path):
    monkeypatch.setenv("MTST_RESULTS_EPOCHS", "0.25")
    rows = experiments.run_loss_weighting("ci", 0, "uncertainty_joint_lr1e-2")
    df = pd.DataFrame(rows)
    learned = df[df.metric == "learned_weight"].set_index("task").value
    assert set(learned.index) == {"sentiment", "topic", "ner"} and (learned != 1.0).all()
    assert set(df[df.metric == "balancing_weight"].task) == set(learned.index)
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path)
    store.write("loss_weighting", rows, "ci", [0], 1.0)
    table = tables.table_loss_weighting()
    assert "| `uncertainty_joint_lr1e-2` |" in table
    assert f"ner {learned['ner']:.2f} (" in table


def test_the_loss_weighting_table_sets_each_run_against_equal_joint_weights_on_the_same_seed(monkeypatch, tmp_path):
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path)
    means = {("equal_joint", 0): 60.0, ("equal_joint", 1): 70.0, ("pcgrad", 0): 61.0, ("pcgrad", 1): 69.0, ("pcgrad", 2): 99.0}
    rows = [{"experiment": "loss_weighting", "setting": k, "seed": seed, "task": t, "metric": "score", "value": (m + d) / 100,
             "steps": 232, "wall_time_s": 1.0} for (k, seed), m in means.items() for t, d in (("sentiment", 3.0), ("ner", -3.0))]
    store.write("loss_weighting", rows, "full", [0, 1, 2], 1.0)
    table = tables.table_loss_weighting()
    assert "| weighting | steps | sentiment | topic | NER | mean | mean − `equal_joint`, paired by seed |" in table
    assert "| `equal_joint` | 232 | 68.0 ± 7.1 (2 seeds) | — | 62.0 ± 7.1 (2 seeds) | 65.0 | — |" in table
    # seed 2 has no equal_joint run to pair with: +1 and −1 on seeds 0 and 1
    assert table.splitlines()[3].endswith("| +0.0 ± 1.4 pts (higher on 1 of 2 seeds) |") and "`pcgrad`" in table.splitlines()[3]


def test_the_tuned_baselines_note_reads_its_weight_grid_and_validation_scores_from_the_runs(monkeypatch, tmp_path):
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path)
    grid = {1.0: (0.60, 0.62), 8.0: (0.64, 0.70)}  # not TUNED_NER_WEIGHTS: the runs say which grid they used
    assert sorted(grid) != sorted(experiments.TUNED_NER_WEIGHTS)
    rows = [{"experiment": "loss_weighting", "setting": "static_joint_tuned", "seed": seed, "task": task, "metric": metric, "value": value,
             "steps": 232, "wall_time_s": 1.0}
            for seed in (0, 1)
            for task, metric, value in [("*", "chosen_ner_weight", 8.0), ("sentiment", "score", 0.8), ("ner", "score", 0.4),
                                        *(("*", f"validation@ner_weight={w}", v[seed]) for w, v in grid.items())]]
    store.write("loss_weighting", rows, "full", [0, 1], 1.0)
    table = tables.table_loss_weighting()
    assert "| `static_joint_tuned` (NER weight picked: 8, 8) |" in table
    assert "one run per NER loss weight in 1, 8 (the others at 1)" in table and "2 times the compute of one row" in table
    assert "mean validation score per NER weight, mean over seeds: 1: 61.0%, 8: 67.0%." in table


def test_the_size_sweep_table_shows_the_scenarios_its_file_holds(monkeypatch, tmp_path):
    _, prov = store.load("freezing_size_sweep")
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path)

    def rows(scenarios_scores: dict[str, float], seeds=(0, 1)) -> pd.DataFrame:
        return pd.DataFrame([{"experiment": "freezing_size_sweep", "setting": f"{sc}@{n}", "seed": seed, "task": task, "metric": "score",
                              "value": v + (0.1 if n == "all" else 0.0), "steps": 10, "wall_time_s": 1.0}
                             for sc, v in scenarios_scores.items() for n in ("100", "all") for seed in seeds for task in ("sentiment", "ner")],
                            columns=experiments.COLUMNS)

    rows({"b_backbone_frozen": 0.3, "a_feature_extractor_10x": 0.5, "e_full_finetune": 0.6}).to_csv(tmp_path / "freezing_size_sweep.csv", index=False)
    (tmp_path / "freezing_size_sweep.json").write_text(json.dumps({**prov, "seeds": [0, 1]}))
    table = tables.table_freezing_size_sweep()
    assert table.splitlines()[0] == ("| training examples per task | backbone frozen (b) | frozen, heads 10× as long (a 10×) | "
                                     "full fine-tuning (e) | b − e | a 10× − e |")
    assert "| 100 | 30.0 ± 0.0 | 50.0 ± 0.0 | 60.0 ± 0.0 | -30.0 ± 0.0 | -10.0 ± 0.0 |" in table
    assert "| all | 40.0 ± 0.0 | 60.0 ± 0.0 | 70.0 ± 0.0 | -30.0 ± 0.0 | -10.0 ± 0.0 |" in table
    assert "in %, mean ± std over 2 seeds." in table
    rows({"a_feature_extractor_10x": 0.5}, seeds=(0,)).to_csv(tmp_path / "freezing_size_sweep.cpu-full.csv", index=False)
    (tmp_path / "freezing_size_sweep.cpu-full.json").write_text(json.dumps({**prov, "seeds": [0]}))
    table = tables.table_freezing_size_sweep("cpu-full")  # a round of one scenario: its column alone, no gap to claim
    assert table.splitlines()[0] == "| training examples per task | frozen, heads 10× as long (a 10×) |"
    assert "| 100 | 50.0 |" in table and "seeds" not in table.split("Provenance")[0]
    # A later unit of e on one seed of a two-seed file: its cells say so, and its gap pairs seed 0 with seed 0.
    two = rows({"a_feature_extractor_10x": 0.5}, seeds=(0, 1))
    two.loc[two.seed == 1, "value"] += 0.2
    e = rows({"e_full_finetune": 0.6}, seeds=(0,))
    pd.concat([two, e[e.setting == "e_full_finetune@100"]]).to_csv(tmp_path / "freezing_size_sweep.cpu-full.csv", index=False)
    (tmp_path / "freezing_size_sweep.cpu-full.json").write_text(json.dumps({**prov, "seeds": [0, 1]}))
    table = tables.table_freezing_size_sweep("cpu-full")
    assert table.splitlines()[0] == ("| training examples per task | frozen, heads 10× as long (a 10×) | full fine-tuning (e) | a 10× − e |")
    assert "| 100 | 60.0 ± 14.1 | 60.0 (1 seed) | -10.0 (1 seed) |" in table  # a 10× is 50 on seed 0, 70 on seed 1
    assert "| all | 70.0 ± 14.1 | — | — |" in table and "in %, mean ± std over 2 seeds." in table


def test_a_precision_override_reaches_the_recipe_and_its_provenance(monkeypatch, tmp_path):
    """--precision bf16 (a CPU with bf16 instructions) changes the recipe's autocast, and the results file says so."""
    monkeypatch.delenv("MTST_RESULTS_PRECISION", raising=False)
    assert experiments.full_config("ci", 0).precision == "auto"
    monkeypatch.setenv("MTST_RESULTS_PRECISION", "bf16")
    assert experiments.tuned_config("full", 1).precision == "bf16"
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path)
    store.write("tuned_recipe", [], "ci", [0], 1.0)
    assert json.loads((tmp_path / "tuned_recipe.json").read_text())["config"]["precision"] == "bf16"
    with pytest.raises(SystemExit):
        results.main(["--precision", "fp16"])  # argparse lists the choices


def test_a_tagged_multi_task_round_is_set_against_the_single_task_runs_of_its_seeds(monkeypatch, tmp_path):
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path)
    monkeypatch.delenv("MTST_RESULTS_PRECISION", raising=False)
    single = [experiments._row("tuned_recipe", "single", seed, "sentiment", "score", v, 10, 1.0) for seed, v in ((0, 0.85), (1, 0.80))]
    monkeypatch.setenv("MTST_RESULTS_PRECISION", "bf16")
    store.write("tuned_recipe", [experiments._row("tuned_recipe", "multi", 0, "sentiment", "score", 0.842, 20, 3.0)], "full", [0], 3.0)
    for ext in ("csv", "json"):  # the bf16 round, as `--merge DIR --tag cpu-bf16` would write it
        (tmp_path / f"tuned_recipe.{ext}").rename(tmp_path / f"tuned_recipe.cpu-bf16.{ext}")
    monkeypatch.delenv("MTST_RESULTS_PRECISION")
    store.write("tuned_recipe", single, "full", [0, 1], 2.0)
    table = tables.table_tuned_recipe("cpu-bf16")
    # seed 0 only: the single-task cell is 85.0 (not the mean with seed 1's 80.0), and the gap is 84.2 - 85.0
    assert "| sentiment | accuracy | 85.5 | 85.0 (1 seed) | 84.2 (1 seed) | -0.8 |" in table
    assert "Precision bf16." in table and "results/tuned_recipe.csv, seeds 0 (" in table and "precision auto" in table
    assert "| topic | accuracy | 85.0 | not run | not run | — |" in table


def test_each_run_records_the_validation_score_of_the_state_it_kept():
    """A choice between settings is made on validation, so every run's rows carry it beside the test scores."""
    from dataclasses import replace

    cfg = replace(experiments.full_config("ci", 0), epochs=1.0, eval_every=3)
    scores, res = experiments._fit_and_test("ci", 0, ["sentiment"], cfg)
    rows = pd.DataFrame(experiments._rows("recipe_sweep", "x", 0, scores, res))
    val = res.history[res.history.phase == "validation"]
    assert val.step.nunique() >= 2  # several states to choose from
    kept = rows.set_index("metric").value
    assert kept["kept_step"] == res.best_step
    assert kept["validation"] == pytest.approx(val.score.max()) == pytest.approx(res.best_score)
    assert kept["score"] == scores[0]["score"]  # the test score is a separate row
    no_keep = replace(res, config={**res.config, "keep_best": False})
    assert not {"validation", "kept_step"} & set(pd.DataFrame(experiments._rows("recipe_sweep", "x", 0, scores, no_keep)).metric)


@pytest.mark.parametrize("path", sorted((store.ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_committed_valid_and_without_outputs(path: Path):
    """Each notebook is valid nbformat (every cell has its id) and carries no outputs: what a reader opens is what
    the notebook computes when run, never numbers from an earlier run."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert all("id" in c for c in json.loads(path.read_text())["cells"])  # as written, not as nbformat fills in on read
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_a_tagged_sweep_round_is_set_against_the_tuned_recipe_of_the_same_seeds_on_its_machine(tmp_path, monkeypatch):
    tuned, tprov = store.load("tuned_recipe")
    ref = tuned[(tuned.setting == "single") & (tuned.task == "sentiment") & (tuned.metric == "score")].set_index("seed").value
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path)
    tuned.to_csv(tmp_path / "tuned_recipe.csv", index=False)
    (tmp_path / "tuned_recipe.json").write_text(json.dumps(tprov))

    def rows(setting, seed, score, validation):
        return [{"experiment": "recipe_sweep", "setting": setting, "seed": seed, "task": "sentiment", "metric": m, "value": v,
                 "steps": 317, "wall_time_s": 300.0} for m, v in (("score", score), ("validation", validation))]

    three = [ref[0] + 0.02, ref[1] + 0.01, ref[2]]  # 3 seeds, each against its own seed: +1.0 on average
    data = rows("sentiment:epochs1", 0, ref[0] + 0.012, 0.861) + [r for sd, sc in enumerate(three) for r in rows("sentiment:lr2e-4", sd, sc, 0.85 + sd / 100)]
    data += rows("sentiment:odd_seed", 7, 0.9, 0.9)  # the tuned recipe never ran seed 7: no difference claimed
    pd.DataFrame(data, columns=experiments.COLUMNS).to_csv(tmp_path / "recipe_sweep.cpu.csv", index=False)
    prov = {**tprov, "experiment": "recipe_sweep", "seeds": [0, 1, 2, 7], "notes": ""}
    (tmp_path / "recipe_sweep.cpu.json").write_text(json.dumps(prov))
    table = tables.table_recipe_sweep("cpu")
    assert f"| sentiment | epochs1 | 0 | 86.1 | {100 * (ref[0] + 0.012):.1f} | +1.2 |" in table
    m, sd = pd.Series(three).mean(), pd.Series(three).std()
    assert f"| sentiment | lr2e-4 | 0, 1, 2 | 86.0 ± 1.0 | {100 * m:.1f} ± {100 * sd:.1f} | +1.0 |" in table
    assert "| sentiment | odd_seed | 7 | 90.0 | 90.0 | — |" in table
    assert "Mean ± std over the seeds a row names" in table and tprov["commit"] in table
    assert f"test {100 * ref[0]:.1f}, {100 * ref[1]:.1f}, {100 * ref[2]:.1f} (seeds 0, 1, 2)" in table
    (tmp_path / "recipe_sweep.cpu.json").write_text(json.dumps({**prov, "hardware": {**prov["hardware"], "gpu": "NVIDIA H100 80GB HBM3"}}))
    table = tables.table_recipe_sweep("cpu")  # another machine: no reference, no difference claimed
    assert "| sentiment | epochs1 | 0 | 86.1 |" in table and "+1.2" not in table and "The reference" not in table


def test_every_sweep_change_names_a_real_knob():
    """A typo in SWEEP would set an unused attribute on the config and run the reference recipe under a new name."""
    from dataclasses import fields

    from mtst.training import TrainConfig

    knobs = {f.name for f in fields(TrainConfig)} | {"head_hidden"}
    for name, (task, change) in experiments.SWEEP.items():
        assert task in mtst.TASKS and name.startswith(f"{task}:")
        assert set(change) <= knobs, f"{name}: {set(change) - knobs}"


def test_fit_and_test_builds_sentence_heads_with_the_hidden_layer_asked_for():
    from dataclasses import replace

    train = {"sentiment": mtst.load_task("sentiment", "train", "ci").subset(16, 0)}
    cfg = replace(experiments.full_config("ci", 0), steps=1, progress=False)
    _, _, model = experiments.fit_and_test(train, train, train, cfg, max_length=32, hidden=16)
    linears = [m for m in model.heads["sentiment"].modules() if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(16, 384), (2, 16)]


def test_the_head_drift_table_reads_a_tagged_round_and_shows_each_setting_it_holds(monkeypatch, tmp_path):
    _, prov = store.load("head_drift")
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path)

    def rows(setting: str, scores: list[float], seeds=(0,)) -> list[dict]:
        return [{"experiment": "head_drift", "setting": setting, "seed": s, "task": "sentiment", "metric": f"score@{10 * i}",
                 "value": v + 0.01 * s, "steps": 10 * i, "wall_time_s": 1.0} for s in seeds for i, v in enumerate(scores)]

    one = pd.DataFrame(rows("encoder_trains", [0.80, 0.78, 0.79]), columns=experiments.COLUMNS)
    one.to_csv(tmp_path / "head_drift.cpu-full.csv", index=False)
    (tmp_path / "head_drift.cpu-full.json").write_text(json.dumps({**prov, "size": "full", "seeds": [0]}))
    with pytest.raises(FileNotFoundError):
        tables.table_head_drift()  # the main file is not there: the tag picks the file
    table = tables.table_head_drift("cpu-full")
    assert "| 10 | 78.0 | -2.0 | – |" in table  # one seed: no spread; the control was not run: a dash
    assert "size `full`, seeds [0]" in table and "means over seeds" not in table
    both = pd.DataFrame(rows("encoder_trains", [0.80, 0.78, 0.79], seeds=(0, 1)) + rows("control_encoder_frozen", [0.80, 0.80, 0.80], seeds=(0, 1)),
                        columns=experiments.COLUMNS)
    both.to_csv(tmp_path / "head_drift.csv", index=False)
    (tmp_path / "head_drift.json").write_text(json.dumps({**prov, "seeds": [0, 1]}))
    table = tables.table_head_drift()
    assert "| 20 | 79.5 | -1.0 ± 0.0 | +0.0 ± 0.0 |" in table  # each seed against its own start (seed 1 starts at 81)


def test_the_progress_bar_is_shown_on_request_and_left_out_of_the_recipe(monkeypatch, tmp_path):
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path)
    monkeypatch.setenv("MTST_RESULTS_PROGRESS", "1")
    assert experiments.full_config("ci", 0).progress
    monkeypatch.setenv("MTST_RESULTS_PROGRESS", "0")
    assert not experiments.full_config("ci", 0).progress
    store.write("head_drift", [], "ci", [0], 1.0)
    config = json.loads((tmp_path / "head_drift.json").read_text())["config"]
    assert "progress" not in config and config["batch_size"] == 32  # a run shown with a bar merges with one without


class _Stop(Exception):
    """A call that stops part-way (a closed laptop, the end of a session)."""


def _grid(monkeypatch, tmp_path, stop_at=None):
    """A two-seed, two-unit experiment `grid` that records its calls; it raises _Stop at `stop_at` (seed, unit)."""
    for key in ("MTST_RESULTS_EPOCHS", "MTST_RESULTS_PRECISION", "MTST_RESULTS_EVAL_EVERY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MTST_COMMIT", "abc1234")  # main() sets these two; setenv puts them back after the test
    monkeypatch.setenv("MTST_RESULTS_PROGRESS", "0")
    monkeypatch.setattr(store, "ROOT", tmp_path)
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path / "results")
    calls = []

    def grid(size, seed, unit):
        calls.append((seed, unit))
        time.sleep(0.05)
        if (seed, unit) == stop_at:
            raise _Stop
        return [experiments._row("grid", u, seed, "topic", "score", 0.5 + seed / 10, 10, 1.0) for u in ([unit] if unit else ["a", "b"])]

    monkeypatch.setitem(results.EXPERIMENTS, "grid", grid)
    monkeypatch.setitem(results.UNITS, "grid", ["a", "b"])
    return calls


def test_a_resumed_grid_runs_only_what_a_stopped_call_left_and_refuses_another_recipe(monkeypatch, tmp_path):
    calls = _grid(monkeypatch, tmp_path, stop_at=(1, "b"))
    kept = tmp_path / "kept"
    with pytest.raises(_Stop):
        results.run(["grid"], "ci", [0, 1], resume=kept, notes="first session")
    assert calls == [(0, "a"), (0, "b"), (1, "a"), (1, "b")]
    runs = [json.loads(p.read_text()) for p in kept.glob("grid.seed*.json")]
    assert len(runs) == 3 and all(r["wall_time_s"] >= 0.05 for r in runs) and not list(kept.glob("*.tmp"))
    assert not (tmp_path / "results" / "grid.csv").exists()  # incomplete: no results file yet

    calls = _grid(monkeypatch, tmp_path)
    results.main(["--size", "ci", "--experiments", "grid", "--seeds", "0", "1", "--resume", str(kept), "--notes", "second session"])
    assert calls == [(1, "b")]  # the three kept runs are not run again
    df, prov = store.load("grid")
    assert sorted(zip(df.seed, df.setting)) == [(0, "a"), (0, "b"), (1, "a"), (1, "b")]
    assert prov["seeds"] == [0, 1]  # each call's notes, and how many runs it made
    today = prov["date"][:10]  # where the grid's runs were kept, and when: the file's own date is the last call's
    assert prov["notes"] == f"3 runs: first session | 1 run: second session; resumed: 3 of 4 runs were made by an earlier call (kept, kept {today})"  # ROOT is tmp_path here
    assert prov["wall_time_s"] >= 0.2  # the earlier call's three runs and this call's one

    before = (tmp_path / "results" / "grid.csv").read_text()
    monkeypatch.setenv("MTST_RESULTS_EPOCHS", "2")  # another recipe: refused before anything runs
    with pytest.raises(SystemExit, match=r"config.epochs 0.25 there, 2.0 now\): .* another --resume folder, or delete"):
        results.run(["grid"], "ci", [0, 1], resume=kept)
    assert calls == [(1, "b")] and (tmp_path / "results" / "grid.csv").read_text() == before
    with pytest.raises(SystemExit):
        results.main(["--experiments", "grid", "--resume", str(kept), "--merge", str(kept)])  # two jobs at once: an argparse error


def test_resume_keeps_each_run_of_parallel_jobs_as_it_finishes(monkeypatch, tmp_path):
    """--jobs with --resume: each child's run is kept when the child ends; a later call with more seeds runs only those."""
    calls = _grid(monkeypatch, tmp_path)
    grid = results.EXPERIMENTS["grid"]

    class Child:  # stands in for `python  -m mtst.lab.results ... --part FILE`: runs the unit and writes its rows there
        def __init__(self, cmd):
            arg = dict(zip(cmd[3::2], cmd[4::2]))
            Path(arg["--part"]).write_text(json.dumps(grid(arg["--size"], int(arg["--seeds"]), arg.get("--unit"))))
            self.returncode = 0

        def poll(self):
            return 0

    monkeypatch.setattr(results.subprocess, "Popen", Child)
    monkeypatch.setattr(results.time, "sleep", lambda s: None)
    results.run(["grid"], "ci", [0], jobs=2, resume=tmp_path / "kept")
    results.run(["grid"], "ci", [0, 1], jobs=2, resume=tmp_path / "kept")
    assert calls == [(0, "a"), (0, "b"), (1, "a"), (1, "b")]
    assert sorted(store.load("grid")[0].seed.unique()) == [0, 1]
    assert not list((tmp_path / "results").glob(".grid.*"))  # the children's part files are cleaned up


def test_units_that_share_their_first_step_run_in_one_call_per_seed(monkeypatch, tmp_path):
    """head_drift's two settings start from one full fine-tune: a split grid runs them together, not that step twice."""
    assert "head_drift" in results.SHARED_SETUP
    calls = _grid(monkeypatch, tmp_path)
    monkeypatch.setattr(results, "SHARED_SETUP", {"grid"})
    results.run(["grid"], "ci", [0, 1], resume=tmp_path / "kept")
    assert calls == [(0, None), (1, None)]
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["grid.seed0.all.json", "grid.seed1.all.json"]
    results.run(["grid"], "ci", [0], units=["b"], resume=tmp_path / "kept")  # asked for by unit: run by unit
    assert calls[2:] == [(0, "b")]


def test_a_grid_still_going_is_read_from_its_kept_runs_until_it_is_merged(monkeypatch, tmp_path):
    """The README shows a CPU grid that takes several sessions as it goes: store.load of a tag with no file yet reads
    results/kept/<tag>/, says how many runs of each seed are in, and the table marks settings with fewer seeds."""
    _grid(monkeypatch, tmp_path)
    folder = tmp_path / "results" / "kept" / "t"
    with pytest.raises(FileNotFoundError):
        store.load("grid", "t")
    results.run(["grid"], "ci", [0, 1], units=["a"], resume=folder, notes="first session")
    results.run(["grid"], "ci", [0], units=["b"], resume=folder, notes="first session")
    df, prov = store.load("grid", "t")
    assert sorted(zip(df.seed, df.setting)) == [(0, "a"), (0, "b"), (1, "a")]
    assert prov["seeds"] == [0, 1] and prov["commit"] == "abc1234" and prov["wall_time_s"] >= 0.15
    assert prov["date"] == time.strftime("%Y-%m-%d", time.gmtime())
    assert prov["notes"].startswith("first session; so far: the 3 runs kept in results/kept/t (seed 0: 2 of 2, seed 1: 1 of 2 units)")
    cells = tables._scores_by_setting(df)
    assert cells.loc["a", "topic"] == "55.0 ± 7.1" and cells.loc["b", "topic"] == "50.0 (1 seed)"

    other = json.loads((folder / "grid.seed1.a.json").read_text())
    other["stamp"]["config"]["epochs"] = 9
    (folder / "grid.seed1.b.json").write_text(json.dumps(dict(other, unit="b")))
    with pytest.raises(ValueError, match=r"grid.seed1.b.json is of another commit, recipe or machine .*config.epochs"):
        store.load("grid", "t")
    (folder / "grid.seed1.b.json").unlink()

    store.merge("grid", [tmp_path / "results"], tag="t")  # a merged file under the tag is read from then on
    df, prov = store.load("grid", "t")
    assert df.equals(store.load("grid")[0]) and len(df) == 1 and "so far" not in (prov["notes"] or "")


def test_committed_kept_runs_are_one_grid_that_resume_would_pick_up():
    """results/kept/<tag>/, when tools/cpu_grid.sh carries a CPU grid across sessions (none is committed now): every
    run of an experiment in it must be of one commit, recipe and machine, under the file name Resume looks for, with a
    test score for each task, or the next session's resume refuses it. (Two experiments' grids may share the folder at
    different commits: their files are named apart.)"""
    for folder in sorted(p for p in (store.RESULTS_DIR / "kept").glob("*") if p.is_dir()):
        _check_kept(folder)


def _check_kept(folder: Path) -> None:
    paths = sorted(folder.glob("*.seed*.json"))
    assert paths, folder
    grids: dict[str, list] = {}
    for path in paths:
        run = json.loads(path.read_text())
        assert path.name.startswith(f"{run['experiment']}.seed"), path.name
        grids.setdefault(run["experiment"], []).append((path, run))
    for experiment, runs in grids.items():
        first = runs[0][1]
        keeper = Resume(folder, experiment, first["stamp"]["size"], first["stamp"]["config"])
        for path, run in runs:
            assert run["unit"] in experiments.UNITS[experiment], path.name
            assert keeper.path(run["seed"], run["unit"]) == path and run["wall_time_s"] > 0 and run["date"] >= "2026", path.name
            assert not differences(run["stamp"], first["stamp"]), path.name
            scored = {r["task"] for r in run["rows"] if r["metric"] == "score" and r["seed"] == run["seed"]}
            assert scored == {"sentiment", "topic", "ner"}, path.name


def _grid_dry_run(tmp_path, **env) -> subprocess.CompletedProcess:
    env = {**os.environ, "LC_ALL": "C.UTF-8", "GRID_DRY_RUN": "1", "GRID_WORKTREE": str(tmp_path / "tree"), **env}
    return subprocess.run(["bash", str(store.ROOT / "tools" / "cpu_grid.sh")], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("experiment", ["layerwise_lr", "loss_weighting"])
def test_the_cpu_grid_script_goes_on_with_exactly_the_runs_its_folder_lacks(tmp_path, experiment):
    """tools/cpu_grid.sh carries the CPU grids across sessions: asked for a dry run, it lists one call per (seed, unit)
    that results/kept/cpu-bf16-full lacks, in order, then the call that writes the results file, and changes nothing."""
    folder = store.RESULTS_DIR / "kept" / "cpu-bf16-full"
    before = sorted(folder.iterdir()) if folder.exists() else None  # no grid going on: the folder is made by the first run
    run = _grid_dry_run(tmp_path, GRID_EXPERIMENT=experiment)
    assert run.returncode == 0, run.stderr
    calls = [line for line in run.stdout.splitlines() if " -m mtst.lab.results " in line]
    missing = [(s, u) for s in (0, 1, 2) for u in experiments.UNITS[experiment]
               if not (folder / f"{experiment}.seed{s}.{re.sub(r'[^A-Za-z0-9_.@+-]', '_', u)}.json").exists()]
    assert len(calls) == len(missing) + 1
    for line, (seed, unit) in zip(calls, missing):
        assert f"--experiments {experiment} " in line and line.rstrip().endswith(f"--seeds {seed} --units {unit}"), line
        assert "--epochs 1 --precision bf16" in line and f"--resume {folder}" in line
    assert calls[-1].rstrip().endswith(f"--seeds 0 1 2 --out {folder}/out")
    assert (sorted(folder.iterdir()) if folder.exists() else None) == before and not (tmp_path / "tree").exists()


def test_the_cpu_grid_script_refuses_an_unknown_experiment_and_names_the_known_ones(tmp_path):
    run = _grid_dry_run(tmp_path, GRID_EXPERIMENT="layerwise")
    assert run.returncode != 0 and "unknown GRID_EXPERIMENT 'layerwise'" in run.stderr and "layerwise_lr, loss_weighting" in run.stderr
    assert "mtst.lab.results" not in run.stdout


def test_a_resumed_grid_says_where_and_when_its_runs_were_kept():
    """A grid merged from runs kept over two days: its file's date is the last call's, so the notes give the span,
    and the folder relative to the repository, not the path of the machine that ran it."""
    runs = [{"notes": "cpu", "date": "2026-12-03T22:06:57+00:00"}, {"notes": "cpu", "date": "2026-12-04T11:21:49+00:00"}, {"notes": "cpu"}]
    note = results._resumed_note("cpu", runs, 2, store.ROOT / "results" / "kept" / "cpu-bf16-full")
    assert note == "cpu; resumed: 2 of 3 runs were made by an earlier call (results/kept/cpu-bf16-full, kept 2026-12-03 to 2026-12-04)"
    elsewhere = results._resumed_note("cpu", runs, 2, Path("/scratch/someone/grid-folder"))
    assert "(grid-folder, kept" in elsewhere and "/scratch" not in elsewhere  # outside the checkout: its name only


def test_unknown_units_are_refused_before_anything_runs(capsys):
    from mtst.lab import results

    with pytest.raises(SystemExit):
        results.main(["--size", "ci", "--experiments", "freezing", "--units", "full"])
    err = capsys.readouterr().err
    assert "unknown units ['full'] for ['freezing']" in err and "e_full_finetune" in err


def test_the_freezing_units_follow_the_encoders_depth(monkeypatch, capsys):
    from mtst.lab import experiments, store

    monkeypatch.delenv("MTST_ENCODER", raising=False)
    assert "d_lower4_frozen" in experiments.units_of("freezing") and "d_lower9_frozen" not in experiments.units_of("freezing")
    assert store.config_of("freezing", "ci")["encoder"] == "all-MiniLM-L6-v2"
    with pytest.raises(SystemExit):  # k = 4 is not in the k-sweep at depth 12: nothing runs
        results.main(["--size", "ci", "--encoder", "all-mpnet-base-v2", "--experiments", "freezing", "--units", "d_lower4_frozen"])
    err = capsys.readouterr().err
    assert "unknown units ['d_lower4_frozen']" in err and "d_lower9_frozen" in err
    monkeypatch.setenv("MTST_ENCODER", "all-mpnet-base-v2")
    assert experiments.units_of("freezing")[2:6] == ["b_backbone_frozen", "d_lower9_frozen", "d_lower6_frozen", "d_lower3_frozen"]
    assert store.config_of("freezing", "ci")["encoder"] == "all-mpnet-base-v2"
    # a file from before the encoder was recorded fine-tuned the default one: it differs from mpnet's, not from MiniLM's
    old = {k: v for k, v in store.config_of("freezing", "ci").items() if k != "encoder"}
    assert store._config_differs(old, store.config_of("freezing", "ci")) == ["encoder"]
    assert store._config_differs(old, {**old, "encoder": "all-MiniLM-L6-v2"}) == []


def test_under_several_processes_jobs_and_resume_are_refused(monkeypatch, capsys, tmp_path):
    from types import SimpleNamespace

    from mtst import distributed
    from mtst.lab import results

    monkeypatch.setattr(distributed, "current", lambda: distributed.Distributed(SimpleNamespace(num_processes=2, process_index=0)))
    for extra in (["--jobs", "2"], ["--resume", str(tmp_path)]):
        with pytest.raises(SystemExit):
            results.main(["--size", "ci", "--experiments", "freezing", "--units", "e_full_finetune", *extra])
        assert "under `accelerate launch` every run trains on all the processes together" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("damage", ["csv_garbage", "csv_no_columns", "csv_text_values", "json_half", "json_not_json"])
def test_a_damaged_results_file_is_refused_naming_it_and_the_command_that_remakes_it(tmp_path, monkeypatch, damage):
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path)
    for ext in ("csv", "json"):
        (tmp_path / f"freezing.{ext}").write_bytes((store.ROOT / "results" / f"freezing.{ext}").read_bytes())
    csv, js = tmp_path / "freezing.csv", tmp_path / "freezing.json"
    if damage == "csv_garbage":
        csv.write_bytes(b"\x00\xff\x13garbage\n\"unclosed")
    elif damage == "csv_no_columns":
        csv.write_text("a,b\n1,2\n")
    elif damage == "csv_text_values":
        df = pd.read_csv(csv).astype({"value": object})
        df.loc[0, "value"] = "oops"
        df.to_csv(csv, index=False)
    elif damage == "json_half":
        js.write_text(js.read_text()[:40])
    else:
        js.write_text("{not json")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(store.DamagedResults) as e:
        store.load("freezing")
    bad = js if damage.startswith("json") else csv
    assert str(bad) in str(e.value) and "python -m mtst.lab.results --experiments freezing" in str(e.value)
    assert f"git checkout -- {bad}" in str(e.value) or "git checkout --" in str(e.value)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing changed
