"""`make results`: the measured experiments, written to results/<experiment>.csv with a .json of provenance.

    python -m mtst.results --size full --seeds 0 1 2 [--experiments single_vs_multi] [--jobs 3]
    python -m mtst.results --readme      # re-render the README tables from the results files

Each CSV row is one measurement: experiment, setting, seed, task, metric, value (plus steps and wall time).
The JSON beside it says what ran where: commit, hardware, date, size, seeds, wall time, config, budget cuts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "results"
COLUMNS = ["experiment", "setting", "seed", "task", "metric", "value", "steps", "wall_time_s"]
PROVENANCE_KEYS = ("experiment", "commit", "date", "hardware", "size", "seeds", "wall_time_s", "config", "notes")


def full_config(size: str, seed: int):
    """The tuned recipe for the task-level experiments (see README: what was tried)."""
    from .training import TrainConfig

    return TrainConfig(
        epochs={"ci": 0.25, "demo": 1.0, "full": 4.0}[size],
        batch_size=32,
        lr=1e-4,
        head_lr=1e-3,
        layer_decay=0.9,
        warmup_ratio=0.1,
        schedule="linear",
        sampler="proportional",
        seed=seed,
        progress=False,
    )


def _load(size: str, split: str, tasks=None) -> dict:
    from .data import TASKS, load_task

    return {t: load_task(t, split, size) for t in (tasks or TASKS)}


def fit_and_test(train_data: dict, val: dict, test: dict, cfg, max_length: int, seed: int = 0, callbacks=()) -> tuple[list[dict], object, object]:
    """A fresh pretrained encoder with one head per task in train_data, trained by `cfg`, scored on test."""
    from .encoder import SentenceEncoder
    from .model import MultiTaskModel
    from .training import evaluate_all, train

    enc = SentenceEncoder.from_pretrained(max_length=max_length)
    model = MultiTaskModel.for_tasks(enc, train_data, seed=seed)
    res = train(model, train_data, cfg, validation={t: val[t] for t in train_data}, callbacks=callbacks)
    return evaluate_all(model, {t: test[t] for t in train_data}).to_dict("records"), res, model


def _fit_and_test(size: str, seed: int, tasks: list[str], cfg):
    from .data import SIZES

    scores, res, _ = fit_and_test(_load(size, "train", tasks), _load(size, "validation", tasks), _load(size, "test", tasks), cfg, SIZES[size].max_length, seed)
    return scores, res


def _rows(experiment: str, setting: str, seed: int, scores: list[dict], res) -> list[dict]:
    return [{"experiment": experiment, "setting": setting, "seed": seed, "task": rec["task"], "metric": metric,
             "value": float(value), "steps": res.steps, "wall_time_s": res.wall_time_s}
            for rec in scores for metric, value in rec.items() if metric != "task" and value == value]  # no NaN


def run_single_vs_multi(size: str, seed: int, unit: str | None = None) -> list[dict]:
    """Each task alone (its own encoder copy and head) against all three tasks on one shared encoder."""
    from .data import TASKS

    rows = []
    settings = [(f"single:{t}", [t]) for t in TASKS] + [("multi", list(TASKS))]
    for setting, tasks in settings:
        if unit is not None and setting != unit:
            continue
        scores, res = _fit_and_test(size, seed, tasks, full_config(size, seed))
        rows += _rows("single_vs_multi", "multi" if setting == "multi" else "single", seed, scores, res)
        print(f"[single_vs_multi seed={seed}] {setting}: " + ", ".join(f"{r['task']} {r['score']:.4f}" for r in scores) + f" ({res.wall_time_s:.0f} s, {res.steps} steps)", flush=True)
    return rows


# What was tried to reach the goals: single-task variants of the recipe in full_config (one change each).
SWEEP = {
    "ner:base": ("ner", {}),
    "ner:epochs8": ("ner", {"epochs": 8.0}),
    "ner:epochs12": ("ner", {"epochs": 12.0}),
    "ner:epochs8_lr2e-4": ("ner", {"epochs": 8.0, "lr": 2e-4}),
    "ner:epochs8_head3e-3": ("ner", {"epochs": 8.0, "head_lr": 3e-3}),
    "ner:epochs8_decay1.0": ("ner", {"epochs": 8.0, "layer_decay": 1.0}),
    "sentiment:base": ("sentiment", {}),
    "sentiment:epochs2": ("sentiment", {"epochs": 2.0}),
    "sentiment:lr5e-5_decay1.0": ("sentiment", {"lr": 5e-5, "layer_decay": 1.0}),
    "sentiment:epochs2_lr5e-5": ("sentiment", {"epochs": 2.0, "lr": 5e-5}),
}


def run_recipe_sweep(size: str, seed: int, unit: str | None = None) -> list[dict]:
    """Single-task runs with one change each to the recipe: the record of what was tried."""
    rows = []
    for name, (task, change) in SWEEP.items():
        if unit is not None and name != unit:
            continue
        cfg = full_config(size, seed)
        for k, v in change.items():
            setattr(cfg, k, v)
        scores, res = _fit_and_test(size, seed, [task], cfg)
        rows += _rows("recipe_sweep", name, seed, scores, res)
        print(f"[recipe_sweep seed={seed}] {name}: {scores[0]['score']:.4f} ({res.wall_time_s:.0f} s, {res.steps} steps)", flush=True)
    return rows


def run_precision(size: str, seed: int, unit: str | None = None) -> list[dict]:
    """Does bf16 autocast keep the metrics? The same single-task runs in fp32 and in bf16."""
    rows = []
    for task in ("sentiment", "ner"):
        for precision in ("fp32", "bf16"):
            name = f"{task}:{precision}"
            if unit is not None and name != unit:
                continue
            cfg = full_config(size, seed)
            cfg.precision = precision
            scores, res = _fit_and_test(size, seed, [task], cfg)
            rows += _rows("precision", name, seed, scores, res)
            print(f"[precision seed={seed}] {name}: {scores[0]['score']:.4f} ({res.wall_time_s:.0f} s, {res.steps} steps)", flush=True)
    return rows


UNITS = {"single_vs_multi": ["single:sentiment", "single:topic", "single:ner", "multi"], "recipe_sweep": list(SWEEP),
         "precision": [f"{t}:{p}" for t in ("sentiment", "ner") for p in ("fp32", "bf16")]}


EXPERIMENTS = {"single_vs_multi": run_single_vs_multi, "recipe_sweep": run_recipe_sweep, "precision": run_precision}


def summarize(df: pd.DataFrame, metric: str = "score") -> pd.DataFrame:
    """mean ± std over seeds per setting and task, for one metric."""
    d = df[df.metric == metric]
    g = d.groupby(["setting", "task"]).value
    return pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "seeds": g.count()}).reset_index()


def write(experiment: str, rows: list[dict], size: str, seeds: list[int], wall: float, notes: str = "") -> Path:
    from .bench import provenance
    from .training import TrainConfig

    RESULTS_DIR.mkdir(exist_ok=True)
    df = pd.DataFrame(rows, columns=COLUMNS)
    csv = RESULTS_DIR / f"{experiment}.csv"
    df.to_csv(csv, index=False)
    cfg = asdict(full_config(size, seeds[0])) if experiment in EXPERIMENTS else asdict(TrainConfig())
    cfg.pop("seed", None)
    prov = provenance(experiment=experiment, size=size, seeds=seeds, wall_time_s=round(wall, 1), config=cfg, notes=notes)
    csv.with_suffix(".json").write_text(json.dumps({k: prov[k] for k in PROVENANCE_KEYS}, indent=2))
    return csv


def run(experiments: list[str], size: str, seeds: list[int], jobs: int = 1, notes: str = "", out: Path | None = None,
        units: list[str] | None = None) -> None:
    for name in experiments:
        t0 = time.perf_counter()
        if jobs > 1:
            # One process per (seed, unit), `jobs` at a time: a small model leaves a GPU mostly idle.
            RESULTS_DIR.mkdir(exist_ok=True)
            todo = [(s, u) for s in seeds for u in UNITS[name] if not units or u in units]
            running, parts = [], []
            while todo or running:
                while todo and len(running) < jobs:
                    s, u = todo.pop(0)
                    part = RESULTS_DIR / f".{name}.{s}.{u.replace(':', '_')}.json"
                    parts.append(part)
                    running.append(subprocess.Popen([sys.executable, "-m", "mtst.results", "--size", size, "--experiments", name,
                                                     "--seeds", str(s), "--unit", u, "--part", str(part)]))
                time.sleep(1)
                for p in [p for p in running if p.poll() is not None]:
                    running.remove(p)
                    if p.returncode:
                        raise SystemExit(f"{name}: a child process failed with exit code {p.returncode}")
            rows = [r for p in parts for r in json.loads(p.read_text())]
            for p in parts:
                p.unlink()
        else:
            rows = [r for s in seeds for u in (units or [None]) for r in EXPERIMENTS[name](size, s, u)]
        path = write(name, rows, size, seeds, time.perf_counter() - t0, notes)
        print(f"wrote {path.relative_to(ROOT)}")
        print(summarize(pd.read_csv(path)).to_string(index=False))
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            for f in (path, path.with_suffix(".json")):
                (out / f.name).write_bytes(f.read_bytes())


# --------------------------------------------------------------------------- README tables


def load(experiment: str) -> tuple[pd.DataFrame, dict]:
    csv = RESULTS_DIR / f"{experiment}.csv"
    return pd.read_csv(csv), json.loads(csv.with_suffix(".json").read_text())


def provenance_line(prov: dict) -> str:
    hw = prov["hardware"]
    where = hw.get("gpu") or f"{hw['cpu']} ({hw['cpu_threads']} threads)"
    return (f"size `{prov['size']}`, seeds {prov['seeds']}, {where}, torch {hw['torch']}, commit `{prov['commit']}`, "
            f"{prov['date'][:10]}, wall time {prov['wall_time_s'] / 60:.1f} min" + (f". {prov['notes'][0].upper()}{prov['notes'][1:]}" if prov.get("notes") else ""))


def table_single_vs_multi() -> str:
    df, prov = load("single_vs_multi")
    s = summarize(df)
    cell = {(r.setting, r.task): f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}" for _, r in s.iterrows()}
    metric = {"sentiment": "accuracy", "topic": "accuracy", "ner": "entity F1"}
    lines = ["| task | metric (test) | single-task | multi-task | multi − single |", "|---|---|---|---|---|"]
    for t in ("sentiment", "topic", "ner"):
        m = s.set_index(["setting", "task"])["mean"]
        lines.append(f"| {t} | {metric[t]} | {cell.get(('single', t), '—')} | {cell.get(('multi', t), '—')} | {100 * (m[('multi', t)] - m[('single', t)]):+.1f} |")
    return "\n".join(lines) + f"\n\nMean ± std over seeds, in %. Provenance: {provenance_line(prov)}."


def table_benchmarks() -> str:
    lines = ["| benchmark | machine | result |", "|---|---|---|"]
    for path in sorted(RESULTS_DIR.glob("bench_*.json")):
        r = json.loads(path.read_text())
        hw = r["hardware"]
        where = hw.get("gpu") if r.get("device", "cpu").startswith("cuda") else f"{hw['cpu']}, {hw['cpu_threads']} threads"
        if r["benchmark"] == "encode":
            rate = r["sentences_per_s"]
            res = (f"{r['sentences']} sentences, batch {r['batch_size']}: ST fp32 {rate['st_fp32']:.0f}/s, mtst fp32 {rate['mtst_fp32']:.0f}/s "
                   f"(**{r['ratio_mtst_fp32_over_st_fp32']:.2f}×**, max abs diff {r['max_abs_diff_fp32_vs_st']:.0e}), mtst bf16 {rate['mtst_bf16']:.0f}/s "
                   f"(**{r['ratio_mtst_bf16_over_st_fp32']:.2f}×** ST fp32, min cosine {r['min_cosine_bf16_vs_fp32']:.4f})")
        elif r["benchmark"] == "heads":
            res = (f"forward, 3 heads on one encoder pass / 1 head: **{r['ratio_three_heads_over_one']:.2f}×**; "
                   f"naive pass per task / 1 head: **{r['ratio_naive_over_one']:.2f}×**")
        elif r["benchmark"] == "optim":
            res = (f"training step, layer-wise groups ({r['groups']['layerwise']}) / one group: "
                   f"**{r['ratio_layerwise_over_one_group']:.3f}×**")
        else:
            continue
        lines.append(f"| `{r['benchmark']}` ({path.name}) | {where} | {res}; commit `{r['commit']}`, {r['date'][:10]} |")
    return "\n".join(lines)


def table_recipe_sweep() -> str:
    df, prov = load("recipe_sweep")
    s = summarize(df)
    base = {t: s[(s.task == t) & (s.setting == f"{t}:base")]["mean"].iloc[0] for t in s.task.unique()}
    lines = ["| task | change to the recipe | test score | vs base |", "|---|---|---|---|"]
    for _, r in s.sort_values(["task", "setting"]).iterrows():
        change = r.setting.split(":", 1)[1]
        lines.append(f"| {r.task} | {change} | {100 * r['mean']:.1f} | {100 * (r['mean'] - base[r.task]):+.1f} |")
    return "\n".join(lines) + f"\n\nOne seed each, single-task. Provenance: {provenance_line(prov)}."


def table_precision() -> str:
    df, prov = load("precision")
    s = summarize(df)
    lines = ["| task | fp32 | bf16 autocast | bf16 − fp32 | wall time fp32 → bf16 |", "|---|---|---|---|---|"]
    wall = df.groupby("setting").wall_time_s.first()
    for task in ("sentiment", "ner"):
        m = s.set_index("setting")["mean"]
        a, b = m.get(f"{task}:fp32"), m.get(f"{task}:bf16")
        if a is None or b is None:
            continue
        lines.append(f"| {task} | {100 * a:.1f} | {100 * b:.1f} | {100 * (b - a):+.1f} | {wall[f'{task}:fp32']:.0f} s → {wall[f'{task}:bf16']:.0f} s |")
    return "\n".join(lines) + f"\n\nTest scores (accuracy, entity F1), single-task. Provenance: {provenance_line(prov)}."


SECTIONS = {"benchmarks": table_benchmarks, "single-vs-multi": table_single_vs_multi, "recipe-sweep": table_recipe_sweep, "precision": table_precision}


def render_readme(text: str) -> str:
    """Replace each <!-- NAME:begin --> … <!-- NAME:end --> block with the table made from the results files."""
    for name, fn in SECTIONS.items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            _, tail = rest.split(end, 1)
            try:
                body = fn()
            except FileNotFoundError:
                body = "_not measured yet_"
            text = f"{head}{begin}\n{body}\n{end}{tail}"
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mtst.results", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="full")
    p.add_argument("--experiments", nargs="+", default=["single_vs_multi"], choices=list(EXPERIMENTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=1, help="run seeds in parallel processes (useful on a GPU)")
    p.add_argument("--part", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--unit", default=None, help=argparse.SUPPRESS)
    p.add_argument("--units", nargs="+", default=None, help="run only these units of the experiment (e.g. ner:fp32 ner:bf16)")
    p.add_argument("--notes", default="", help="what the provenance should say about this run (budget cuts, machine)")
    p.add_argument("--out", type=Path, default=None, help="also copy each results file here as soon as it is written")
    p.add_argument("--readme", action="store_true", help="re-render the README tables from results/ and exit")
    args = p.parse_args(argv)
    if args.readme:
        readme = ROOT / "README.md"
        readme.write_text(render_readme(readme.read_text()))
        print(f"rendered {readme}")
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", message=".*truncated")
    if args.part:  # a child process of --jobs: one experiment, one seed, rows to a JSON file
        rows = EXPERIMENTS[args.experiments[0]](args.size, args.seeds[0], args.unit)
        args.part.write_text(json.dumps(rows))
        return 0
    run(args.experiments, args.size, args.seeds, args.jobs, args.notes, args.out, args.units)
    return 0


if __name__ == "__main__":
    sys.exit(main())
