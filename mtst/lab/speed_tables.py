"""The README's speed tables, made from the files the benchmarks and tools/time_notebooks.py write:
`python -m mtst.lab.bench` (results/bench_*.json) and each notebook's wall time per machine (results/notebooks_*.json)."""

from __future__ import annotations

from . import store
from .provenance import date_span
from .verdicts import table


def table_benchmarks() -> str:
    lines = ["| benchmark | machine | result |", "|---|---|---|"]
    for path in sorted(store.RESULTS_DIR.glob("bench_*.json")):
        r = store.read_json(path)
        hw = r["hardware"]
        if r.get("device", "cpu").startswith("cuda"):
            where = hw.get("gpu")
        else:
            where = f"{hw['cpu']}, {hw['cpu_threads']} threads"
            if "cpu_bf16_flags" in r:
                where += f", {' '.join(r['cpu_bf16_flags']) or 'no bf16 flag'}"
        if r["benchmark"] == "encode":
            rate = r["sentences_per_s"]
            res = (f"{r.get('encoder', 'all-MiniLM-L6-v2')}, {r['sentences']} sentences, batch {r['batch_size']}: ST fp32 {rate['st_fp32']:.0f}/s, mtst fp32 {rate['mtst_fp32']:.0f}/s "
                   f"(**{r['ratio_mtst_fp32_over_st_fp32']:.2f}×**, max abs diff {r['max_abs_diff_fp32_vs_st']:.0e}), mtst bf16 {rate['mtst_bf16']:.0f}/s "
                   f"(**{r['ratio_mtst_bf16_over_st_fp32']:.2f}×** ST fp32, min cosine {r['min_cosine_bf16_vs_fp32']:.4f})")
            if "tokenize_s" in r:
                res += (f"; tokenizing alone, one transformers call / mtst on {r['tokenize_threads']} threads: "
                        f"**{r['ratio_tokenize_transformers_over_mtst']:.2f}×** (TOKENIZERS_PARALLELISM {r['tokenizers_parallelism']})")
        elif r["benchmark"] == "heads":
            res = (f"forward, 3 heads on one encoder pass / 1 head: **{r['ratio_three_heads_over_one']:.2f}×**; "
                   f"naive pass per task / 1 head: **{r['ratio_naive_over_one']:.2f}×**")
        elif r["benchmark"] == "cache":
            res = (f"one epoch of head training on a frozen encoder ({r['steps']} steps, size {r['size']}): through the encoder "
                   f"{r['epoch_s']['through_encoder']:.1f} s, on the cache {r['epoch_s']['cached']:.2f} s (**{r['ratio_epoch_through_encoder_over_cached']:.0f}×**); "
                   f"building the cache {r['cache_build_s']:.0f} s, paid back after {r['epochs_to_break_even']:.1f} epochs; identical test scores: {r['same_test_scores']}")
            if "validation" in r:
                v = r["validation"]
                res += (f"; validating {v['examples']} examples: through the encoder {v['through_encoder_s']:.1f} s, on their cache "
                        f"{v['cached_s']:.2f} s after building it in {v['cache_build_s']:.1f} s, so a run's four validations "
                        f"**{v['ratio_four_validations']:.1f}×** faster; identical validation scores: {v['same_scores']}")
        elif r["benchmark"] == "monitor":
            res = f"training step with the GradientMonitor recording every step / without: **{r['ratio_monitored_over_plain']:.3f}×**"
            if "ratio_grads_only_over_plain" in r:
                res += (f"; gradient norms only: **{r['ratio_grads_only_over_plain']:.3f}×**; "
                        f"every 10 steps: **{r['ratio_every_10_over_plain']:.3f}×**")
        elif r["benchmark"] == "poolings":
            res = (f"{r['sentences']} sentences pooled {len(r['modes'])} ways (notebook 01's comparison): one `encode` per mode "
                   f"{r['median_s']['encode_per_mode']:.1f} s, one `encode_poolings` pass {r['median_s']['encode_poolings']:.1f} s "
                   f"(**{r['ratio_per_mode_over_one_pass']:.2f}×**, max abs diff {r['max_abs_diff']:.0e})")
        elif r["benchmark"] == "optim":
            res = (f"training step, layer-wise groups ({r['groups']['layerwise']}) / one group: "
                   f"**{r['ratio_layerwise_over_one_group']:.3f}×**")
        elif r["benchmark"] == "prefix":
            runs = r["runs"]
            dropout = ", ".join(f"{t} {100 * d:+.1f}" for t, d in r["score_change_dropout_off"].items())
            res = (f"{r['frozen']} frozen, {r['epochs']:g} passes over `{r['size']}` data ({r['steps']} steps): through the frozen prefix "
                   f"{runs['through_prefix']['total_s']:.0f} s, on its cache {runs['prefix_cache']['total_s']:.0f} s (**{r['ratio_through_prefix_over_cache']:.2f}×**, "
                   f"building it included); max weight diff against the eval-mode twin {r['max_abs_weight_diff_eval_mode_vs_cache']:.0e}; "
                   f"dropout off in the prefix changed the test scores by {dropout} points")
        elif r["benchmark"] == "bucket":
            runs = r["runs"]
            res = (f"one pass of full fine-tuning over `{r['size']}` data ({r['steps']} steps of {r['batch_size']}): random batches "
                   f"{runs['random']['total_s']:.0f} s ({r['padding_share']['random']:.0%} padding), bucketed by length "
                   f"{runs['bucketed']['total_s']:.0f} s ({r['padding_share']['bucketed']:.0%} padding): **{r['ratio_random_over_bucketed']:.2f}×**; test "
                   + "; ".join(f"{k} " + ", ".join(f"{t} {100 * v:.1f}" for t, v in runs[k]["test_scores"].items()) for k in ("random", "bucketed")))
        elif r["benchmark"] == "processes":
            res = (f"full fine-tuning, global batch {r['global_batch']}, `{r['size']}` data, {r['timed_steps']} timed steps: "
                   + ", ".join(f"{k} ({r['threads'][k]} threads each) {v:.2f} steps/s" for k, v in r["steps_per_s"].items())
                   + f": **{r['ratio_many_over_one']:.2f}×**")
        elif r["benchmark"] == "widgets":
            res = "; ".join(f"{k.replace('_', ' ')}: {1000 * v:.0f} ms (**{r['share_of_budget'][k]:.2f}×** the 1 s budget)" for k, v in r["median_s"].items())
        else:
            continue
        lines.append(f"| `{r['benchmark']}` ({path.name}) | {where} | {res}; commit `{r['commit']}`, {r['date'][:10]} |")
    return "\n".join(lines)


def table_processes() -> str:
    """1 process against N under `accelerate launch` at the same global batch (results/bench_processes_*.json)."""
    paths = sorted(store.RESULTS_DIR.glob("bench_processes_*.json"))
    if not paths:
        raise FileNotFoundError("no results/bench_processes_*.json")
    lines = ["| machine | contender | threads each | steps/s | ratio to 1 process |", "|---|---|---|---|---|"]
    for path in paths:
        r = store.read_json(path)
        where = r["hardware"].get("gpu") if r["device"].startswith("cuda") else r["hardware"]["cpu"]
        one = r["steps_per_s"]["1 process"]
        for k, v in r["steps_per_s"].items():
            lines.append(f"| {where} | {k} | {r['threads'][k]} | {v:.2f} | {v / one:.2f}× |")
    r = store.read_json(paths[-1])
    lines += ["", f"Full fine-tuning, global batch {r['global_batch']}, `{r['size']}` data, {r['timed_steps']} timed steps after "
              f"{r.get('warmup_steps', 3)}, medians of {r['repeats']} rounds in turn (`python -m mtst.lab.bench processes`); "
              f"commit `{r['commit']}`, {r['date'][:10]}."]
    many, rate = list(r["steps_per_s"].items())[-1]
    lines[-1] += (f" In the {many} run, one all-reduce of the trained parameters' gradients ({r['allreduce_mib']:.0f} MiB) "
                  f"took {1000 * r['allreduce_s']:.0f} ms of each {1000 / rate:.0f} ms step.")
    return "\n".join(lines)


def table_notebook_times() -> str:
    """Each notebook's run time per machine, from tools/time_notebooks.py's results/notebooks_<machine>.json."""
    runs = []
    for path in sorted(store.RESULTS_DIR.glob("notebooks_*.json")):
        r = store.read_json(path)
        hw = r["hardware"]
        gpu = any(n.get("cuda") for n in r["notebooks"])
        runs.append((hw["gpu"] if gpu else f"{hw['cpu']}, {hw['cpu_threads']} threads", r, gpu))
    if not runs:
        raise FileNotFoundError("no results/notebooks_*.json")
    order = {"ci": 0, "demo": 1, "full": 2}
    runs.sort(key=lambda x: (x[2], order.get(x[1]["size"], 3)))  # CPU first, then by size
    names = list(dict.fromkeys(n["notebook"] for _, r, _ in runs for n in r["notebooks"]))
    head = "| notebook | " + " | ".join(f"{w} (`{r['size']}`)" for w, r, _ in runs) + " |"
    lines = [head, "|---|" + "---|" * len(runs)]
    for name in names:
        cells = []
        for _, r, gpu in runs:
            n = next((n for n in r["notebooks"] if n["notebook"] == name), None)
            if n is None:
                cells.append("—")
                continue
            cell = f"{n['wall_time_s']:,.0f} s" + ("" if n["passed"] else " (failed)")
            if gpu and n.get("peak_gpu_mib"):
                cell += f", peak GPU memory {n['peak_gpu_mib']:,.0f} MiB"
            cells.append(cell)
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    lines.append("| all | " + " | ".join(f"{r['total_s']:,.0f} s" + ("" if len(r["notebooks"]) == len(names) else f" ({len(r['notebooks'])} of {len(names)} notebooks)")
                                      for _, r, _ in runs) + " |")
    prov = "; ".join(f"{w} (`{r['size']}`): torch {r['hardware']['torch']}, {_timed_when(r)}" for w, r, _ in runs)
    return "\n".join(lines) + f"\n\nWall time of each notebook run top to bottom by `tools/time_notebooks.py` (nbclient, as nbmake runs them), one after another. {prov}."


def notebook_entries(run: dict) -> list[dict]:
    """A notebook-times record's notebooks, each with the commit and date of the run that timed it (a file folded
    from several runs by tools/time_notebooks.py --update/--merge stores them per notebook; a single run, once)."""
    return [{**n, "commit": n.get("commit", run["commit"]), "date": n.get("date", run["date"])} for n in run["notebooks"]]


def _timed_when(run: dict) -> str:
    """'commit `abc`, 2026-11-27', or, for a file folded from several runs (time_notebooks --update/--merge), each
    commit with the notebooks it timed and the range of dates."""
    notes = notebook_entries(run)
    commits = list(dict.fromkeys(n["commit"] for n in notes))
    when = date_span(n["date"] for n in notes)
    if len(commits) == 1:
        return f"commit `{commits[0]}`, {when}"
    which = {c: ", ".join(n["notebook"][:2] for n in notes if n["commit"] == c) for c in commits}
    return "commits " + ", ".join(f"`{c}` ({which[c]})" for c in commits) + f", {when}"


def table_verdicts() -> str:
    """The claims' verdicts at the notebooks' default size against the full-size verdicts (results/verdicts.json)."""

    return table()


NOTEBOOKS = {  # what each notebook teaches, for the README's notebook table
    "00_data_tour.ipynb": "the three tasks' examples, label distributions, split sizes, text lengths",
    "01_sentence_encoder.ipynb": "tokenization, pooling modes compared, similarity, embedding space of pretrained vs random-init (UMAP), search by meaning",
    "02_multitask_heads.ipynb": "one encoder and three heads, NER label alignment, multi-task training, single- vs multi-task, samplers, embedding space before/after",
    "03_freezing_scenarios.ipynb": "freezing by name, frozen ≠ eval mode, the freeze panel, caching frozen parts, the scenario grid, head drift, a data-size sweep, claims F1-F5",
    "04_layerwise_lr.ipynb": "layer-wise parameter groups, schedules, the rate schemes compared with gradient norms, update sizes, forgetting and task conflict, claims L1-L6",
    "05_gradient_diagnostics.ipynb": "per-part gradient norms, freezing and decay seen in them, task-gradient conflict, equal vs uncertainty vs PCGrad loss weighting",
}


def table_notebooks() -> str:
    """The README's notebook table: what each teaches and how long it runs on a 2-core CPU at the default size, in suite
    order (cold and warm), opened alone from an empty run cache (results/notebooks_cpu_demo.json), and at ci
    (results/notebooks_cpu.json)."""
    demo = store.read_json(store.RESULTS_DIR / "notebooks_cpu_demo.json")
    ci_path = store.RESULTS_DIR / "notebooks_cpu.json"
    ci = {n["notebook"]: n for n in store.read_json(ci_path)["notebooks"]} if ci_path.exists() else {}
    timed = {n["notebook"]: n for n in demo["notebooks"]}
    lines = ["| notebook | what you learn | default size, in order: cold | warm | alone, cold | `ci` |", "|---|---|---|---|---|---|"]
    for name, what in NOTEBOOKS.items():
        n = timed.get(name, {})
        cell = lambda v: f"{v:,.0f} s" if v is not None else "—"  # noqa: E731
        lines.append(f"| `{name}` | {what} | {cell(n.get('wall_time_s'))} | {cell(n.get('warm_s'))} | {cell(n.get('alone_s'))} | "
                     f"{cell(ci.get(name, {}).get('wall_time_s'))} |")
    hw = demo["hardware"]
    warm = f", {demo['total_warm_s']:,.0f} s warm" if "total_warm_s" in demo else ""
    commits = sorted({n["alone_commit"] for n in demo["notebooks"] if n.get("alone_commit")})
    alone = (f" Alone: each notebook on its own empty run cache, training what it would otherwise read from 02's runs (commit "
             f"{', '.join(f'`{c}`' for c in commits)})." if commits else " Alone: not measured yet (`tools/time_notebooks.py --alone`).")
    return "\n".join(lines) + (f"\n\nMeasured by `tools/time_notebooks.py` on {hw['cpu']} ({hw['cpu_threads']} threads), the machine to itself: "
                               f"the suite in order from an empty run cache (cold: {demo['total_s']:,.0f} s in all{warm}), then again "
                               f"(warm); commit `{demo['commit']}`, {demo['date'][:10]}." + alone)
