"""The results tables, made from the results files (`python -m mtst.lab.docs` renders them into docs/): each
`table_<experiment>()` returns markdown with the provenance of the file it read, so no number is typed by hand."""

from __future__ import annotations

import pandas as pd

from .. import claims
from ..config import SIZES
from ..scenarios import FREEZE_SCENARIOS, LR_SCHEMES
from .experiments import PRECISION_TASKS, UNITS
from .store import load, load_with_control, summarize


def provenance_line(prov: dict) -> str:
    hw = prov["hardware"]
    where = hw.get("gpu") or f"{hw['cpu']} ({hw['cpu_threads']} threads)"
    return (f"size `{prov['size']}`, seeds {prov['seeds']}, {where}, torch {hw['torch']}, commit `{prov['commit']}`, "
            f"{prov['date'][:10]}, wall time {prov['wall_time_s'] / 60:.1f} min" + (f". {prov['notes'][0].upper()}{prov['notes'][1:]}" if prov.get("notes") else ""))


GOALS = {"sentiment": 85.5, "topic": 85.0, "ner": 52.0}  # the multi-task issue's goals, means over 3 seeds (%)


def _pct(mean: float, std: float, seeds: int) -> str:
    """A score in % as a table cell: "84.9", or "84.9 ± 0.5" when it is a mean over several seeds."""
    return f"{100 * mean:.1f}" + (f" ± {100 * std:.1f}" if seeds > 1 else "")


def _precision(prov: dict) -> str:
    """The precision a results file ran at, in words: "auto" says what it meant on that machine."""
    precision = prov["config"].get("precision", "auto")
    return precision if precision != "auto" else "auto, " + ("bf16 on CUDA" if prov["hardware"].get("gpu") else "fp32 on a CPU")


def table_single_vs_multi(experiment: str = "single_vs_multi", tag: str | None = None) -> str:
    """Single- against multi-task per task. A tagged round that ran one setting only (e.g. the multi-task run on
    another day, in bf16) takes the other setting from the main file's runs of the same seeds on the same machine,
    and says so."""
    df, prov = load(experiment, tag)
    ref_note = ""
    if tag is not None and df.setting.nunique() == 1:
        main, mprov = load(experiment)
        seeds = sorted(df.seed.unique())
        other = main[(main.setting != df.setting.iloc[0]) & main.seed.isin(seeds)]
        if mprov["hardware"] == prov["hardware"] and len(other):
            df = pd.concat([df, other], ignore_index=True)
            ref_note = (f" The {other.setting.iloc[0]}-task column is results/{experiment}.csv, seeds "
                        f"{', '.join(map(str, sorted(other.seed.unique())))} (commit `{mprov['commit']}`, "
                        f"precision {_precision(mprov)}, the same machine type).")
    s = summarize(df)
    cell = {(r.setting, r.task): _pct(r["mean"], r["std"], r["seeds"])
            + ("" if r["seeds"] >= 3 else " (1 seed)" if r["seeds"] == 1 else f" ({r['seeds']} seeds)") for _, r in s.iterrows()}
    m = s.set_index(["setting", "task"])["mean"]
    metric = {"sentiment": "accuracy", "topic": "accuracy", "ner": "entity F1"}
    lines = ["| task | metric (test) | goal | single-task | multi-task | multi − single |", "|---|---|---|---|---|---|"]
    for t in ("sentiment", "topic", "ner"):
        gap = f"{100 * (m[('multi', t)] - m[('single', t)]):+.1f}" if ("multi", t) in m and ("single", t) in m else "—"
        lines.append(f"| {t} | {metric[t]} | {GOALS[t]:.1f} | {cell.get(('single', t), 'not run')} | {cell.get(('multi', t), 'not run')} | {gap} |")
    epochs = prov["config"].get("task_epochs")
    passes = f" Passes per task: {', '.join(f'{t} {e:g}' for t, e in epochs.items())}, others {prov['config']['epochs']:g}." if epochs else ""
    precision = "" if prov["config"].get("precision", "auto") == "auto" else f" Precision {_precision(prov)}."
    return "\n".join(lines) + f"\n\nMean ± std over seeds, in %.{passes}{precision} Provenance: {provenance_line(prov)}.{ref_note}"


def table_tuned_recipe(tag: str | None = None) -> str:
    return table_single_vs_multi("tuned_recipe", tag)


def table_recipe_sweep(tag: str | None = None) -> str:
    """What was tried to reach the goals, one row per change to the recipe. The main file's rows are set against
    each task's base recipe; a tagged round (another commit or machine) against the tuned recipe's single-task runs
    of the same seeds on the same machine, where tuned_recipe holds them. A row run at several seeds gives mean ± std."""
    df, prov = load("recipe_sweep", tag)
    s = summarize(df)
    val = summarize(df, "validation").set_index(["setting", "task"])
    seeds = df[df.metric == "score"].groupby(["setting", "task"]).seed.apply(lambda x: tuple(sorted(x)))
    ref, ref_note = {}, ""  # (setting, task) -> the reference's test score
    if tag is None:
        base = {t: s[(s.task == t) & (s.setting == f"{t}:base")]["mean"].iloc[0] for t in s.task.unique()}
        ref = {(r.setting, r.task): base[r.task] for r in s.itertuples()}
        head = "test vs base"
    else:
        head = "test vs tuned recipe, same seeds"
        tuned, tprov = load("tuned_recipe")
        if tprov["hardware"] == prov["hardware"]:
            one = tuned[(tuned.setting == "single") & (tuned.metric == "score")].set_index(["task", "seed"]).value.sort_index()
            for r in s.itertuples():
                keys = [(r.task, sd) for sd in seeds[(r.setting, r.task)]]
                if all(k in one.index for k in keys):
                    ref[(r.setting, r.task)] = one[keys].mean()
            passes = tprov["config"].get("task_epochs") or {}
            per_task = []
            for t in sorted(set(s.task) & set(one.index.get_level_values(0))):
                runs = one[t]
                per_task.append(f"{t}, {passes.get(t, tprov['config']['epochs']):g} passes: test "
                                f"{', '.join(f'{100 * v:.1f}' for v in runs)} (seeds {', '.join(map(str, runs.index))})")
            ref_note = (" The reference is the tuned recipe's single-task runs of the same seeds on the same machine "
                        f"(results/tuned_recipe.csv, commit `{tprov['commit']}`): " + "; ".join(per_task) + ".")

    lines = ["| task | change to the recipe | seeds | validation score | test score | " + head + " |", "|---|---|---|---|---|---|"]
    for r in s.sort_values(["task", "setting"]).itertuples():
        key = (r.setting, r.task)
        v = _pct(*val.loc[key, ["mean", "std", "seeds"]]) if key in val.index else "not recorded"
        vs = f"{100 * (r.mean - ref[key]):+.1f}" if key in ref else "—"
        lines.append(f"| {r.task} | {r.setting.split(':', 1)[1]} | {', '.join(map(str, seeds[key]))} | {v} | {_pct(r.mean, r.std, r.seeds)} | {vs} |")
    many = "One seed each" if s.seeds.max() == 1 else "Mean ± std over the seeds a row names"
    return "\n".join(lines) + f"\n\n{many}, single-task. Provenance: {provenance_line(prov)}.{ref_note}"


def table_precision(tag: str | None = None) -> str:
    df, prov = load("precision", tag)
    s = summarize(df)
    lines = ["| task | fp32 | bf16 autocast | bf16 − fp32 | wall time fp32 → bf16 |", "|---|---|---|---|---|"]
    wall = df.groupby("setting").wall_time_s.first()
    for task in PRECISION_TASKS:
        m = s.set_index("setting")["mean"]
        a, b = m.get(f"{task}:fp32"), m.get(f"{task}:bf16")
        if a is None or b is None:
            continue
        lines.append(f"| {task} | {100 * a:.1f} | {100 * b:.1f} | {100 * (b - a):+.1f} | {wall[f'{task}:fp32']:.0f} s → {wall[f'{task}:bf16']:.0f} s |")
    return "\n".join(lines) + f"\n\nTest scores (accuracy, entity F1), single-task. Provenance: {provenance_line(prov)}."


def _scores_by_setting(df: pd.DataFrame) -> pd.DataFrame:
    """setting × task mean (and std over seeds) of the test score, in %, as 'mean ± std' cells."""
    s = summarize(df)
    most = s["seeds"].max()  # a setting with fewer seeds than the others says so in its cells
    cell = s.assign(cell=[_pct(m, sd, n) + (f" ({n} seed{'s' * (n > 1)})" if n < most else "")
                          for m, sd, n in zip(s["mean"], s["std"], s["seeds"])])
    known = UNITS.get(str(df.experiment.iloc[0]), [])  # the experiment's own order, not the order runs finished in
    order = [u for u in known if u in set(df.setting)] + [x for x in dict.fromkeys(df.setting) if x not in known]
    wide = cell.pivot(index="setting", columns="task", values="cell").reindex(order)
    means = s.groupby("setting", sort=False)["mean"].mean().mul(100)
    return wide.assign(mean=[f"{means[k]:.1f}" for k in wide.index])


def _cost(df: pd.DataFrame, metric: str) -> pd.Series:
    return df[df.metric == metric].groupby("setting").value.mean()


def table_freezing() -> str:
    df, prov = load("freezing")
    wide = _scores_by_setting(df)
    params, state, peak = _cost(df, "trainable_params"), _cost(df, "optimizer_state_mib"), _cost(df, "peak_gpu_mib")  # peak: on a GPU only
    wall = df[df.metric == "score"].groupby("setting").wall_time_s.mean()
    gpu = not peak.empty
    lines = ["| scenario | what learns | sentiment | topic | NER | mean | trainable params | optimizer state |" + " peak GPU memory |" * gpu + " wall time |",
             "|---|---|---|---|---|---|---|---|" + "---|" * gpu + "---|"]
    for k, r in wide.iterrows():
        lines.append(f"| `{k}` | {FREEZE_SCENARIOS[k].what} | {r.get('sentiment', '—')} | {r.get('topic', '—')} | {r.get('ner', '—')} | {r['mean']} | "
                     f"{params[k]:,.0f} | {state[k]:.1f} MiB |" + f" {peak.get(k, float('nan')):,.0f} MiB |" * gpu + f" {wall[k]:.0f} s |")
    return "\n".join(lines) + ("\n\nTest scores in % (accuracy; entity F1 for NER). Wall time is training plus validation"
                               + ("; peak GPU memory is torch's peak allocation during the run" if gpu else "") + f". Provenance: {provenance_line(prov)}.")


SWEEP_COLUMNS = {"b_backbone_frozen": ("backbone frozen (b)", "b"), "a_feature_extractor_10x": ("frozen, heads 10× as long (a 10×)", "a 10×"),
                 "e_full_finetune": ("full fine-tuning (e)", "e")}  # scenario: (column, short name)


def table_freezing_size_sweep(tag: str | None = None) -> str:
    """Mean test score per training-set size and scenario (± std over seeds where a cell has more than one), and
    frozen − full for each frozen scenario the file holds beside full fine-tuning; a round that ran only some
    scenarios shows only their columns. A cell with fewer seeds than the file says how many it has, and a gap pairs
    each seed with the same seed of e, so its spread is the spread of the per-seed gaps."""
    df, prov = load("freezing_size_sweep", tag)
    d = df[df.metric == "score"]
    runs = d.groupby(["setting", "seed"]).value.mean().mul(100).reset_index()  # one run's mean over its tasks
    runs[["scenario", "n"]] = runs.setting.str.split("@", expand=True)
    runs = runs.pivot_table(index=["n", "seed"], columns="scenario", values="value")
    order = sorted(runs.index.unique("n"), key=lambda n: float("inf") if n == "all" else int(n))
    cols = [c for c in SWEEP_COLUMNS if c in runs]
    gaps = [c for c in cols if c != "e_full_finetune" and "e_full_finetune" in cols]
    seeds = len(prov["seeds"])

    def cell(values: pd.Series, fmt: str) -> str:
        v = values.dropna()
        if v.empty:
            return "—"
        spread = f" ± {v.std(ddof=1):.1f}" if len(v) > 1 else ""
        return format(v.mean(), fmt) + spread + ("" if len(v) == seeds else f" ({len(v)} seed{'s' if len(v) > 1 else ''})")

    head = ["training examples per task", *(SWEEP_COLUMNS[c][0] for c in cols), *(f"{SWEEP_COLUMNS[c][1]} − e" for c in gaps)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in order:
        at = runs.loc[n]
        cells = [cell(at[c], ".1f") for c in cols] + [cell(at[c] - at["e_full_finetune"], "+.1f") for c in gaps]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    several = f", mean ± std over {seeds} seeds" if seeds > 1 else ""
    return "\n".join(lines) + (f"\n\nEach run's test score averaged over the three tasks, in %{several}. Small sets train at least as many steps as the full one "
                               f"(a 10×: ten times that, on the cache). Provenance: {provenance_line(prov)}.")


def table_head_drift(tag: str | None = None) -> str:
    """Claim F3: the frozen sentiment head's validation accuracy while the encoder trains on topic + NER, and the
    control with the encoder frozen too; `tag` reads results/head_drift.<tag>.csv (another round or machine)."""
    df, prov = load("head_drift", tag)
    start = df[df.steps == 0].set_index(["setting", "seed"]).value
    df = df.assign(drift=df.value - start.loc[list(zip(df.setting, df.seed))].to_numpy())  # each seed against its own start
    g = df.groupby(["setting", "steps"])
    acc, drift, spread = (x.mul(100).unstack("setting") for x in (g.value.mean(), g.drift.mean(), g.drift.std()))
    several = df.seed.nunique() > 1

    def change(step, setting: str) -> str:
        if setting not in drift or pd.isna(drift.at[step, setting]):
            return "–"
        return f"{drift.at[step, setting]:+.1f}" + (f" ± {spread.at[step, setting]:.1f}" if several else "")

    lines = ["| steps on topic + NER | encoder trains: accuracy | encoder trains: change | control, encoder frozen too: change |",
             "|---|---|---|---|"]
    lines += [f"| {step} | {acc.at[step, 'encoder_trains']:.1f} | {change(step, 'encoder_trains')} | {change(step, 'control_encoder_frozen')} |"
              for step in acc.index]
    per_seed = " (means over seeds; the change is each seed's against its own step 0, ± its std)" if several else ""
    return "\n".join(lines) + (f"\n\nSentiment validation accuracy (%) of a fully fine-tuned model whose sentiment head is then frozen"
                               f"{per_seed}. Provenance: {provenance_line(prov)}.")


def table_layerwise_lr(tag: str | None = None) -> str:
    """The learning-rate schemes' test scores, forgetting and speed; `tag` reads results/layerwise_lr.<tag>.csv."""

    df, prov, cprov = load_with_control("layerwise_lr", tag)
    wide = _scores_by_setting(df)
    f = df[df.metric.str.startswith("forgetting:")]
    low = f[f.metric.isin(["forgetting:embeddings", "forgetting:layer_0"])].groupby("setting").value.mean().mul(100)
    top = f[f.metric == "forgetting:layer_5"].groupby("setting").value.mean().mul(100)
    steps = _cost(df, "steps_to_95pct_own_best")
    run_steps = df.groupby("setting").steps.first()
    show_steps = bool((steps < run_steps.reindex(steps.index)).any())  # validated once per run: nothing to show
    lines = ["| scheme | rates | sentiment | topic | NER | mean | forgetting, embeddings + layer 0 | forgetting, layer 5 |"
             + (" steps to 95% of own best |" if show_steps else ""), "|---|---|---|---|---|---|---|---|" + ("---|" if show_steps else "")]
    for k, r in wide.iterrows():
        base = k.split("+")[0]
        what = LR_SCHEMES[base].what + (" (NER head rate ×10)" if "+" in k else "")
        lines.append(f"| `{k}` | {what} | {r.get('sentiment', '—')} | {r.get('topic', '—')} | {r.get('ner', '—')} | {r['mean']} | "
                     f"{low[k]:.1f} | {top[k]:.1f} |" + (f" {steps[k]:.0f} |" if show_steps else ""))
    control = f" The control `{claims.CONTROL}` ran later, from its own file: {provenance_line(cprov)}." if cprov else ""
    return "\n".join(lines) + ("\n\nTest scores in %. Forgetting is 1 − linear CKA (in %) between a layer's representations of 600 test sentences "
                               f"before and after training. Provenance: {provenance_line(prov)}.{control}")


def table_layerwise_claims(tag: str | None = None) -> str:
    """The brief's claims L1, L2, L3 and L6 against the learning-rate table of the same runs, paired by seed."""
    df, prov, cprov = load_with_control("layerwise_lr", tag)
    seeds = f"seeds {prov['seeds']}" + (f"; the control's seeds {cprov['seeds']}" if cprov else "; no control run in this file")
    return claims.markdown(claims.layerwise_claims(df)) + (
        "\n\nDifferences of test scores in points (%), each scheme against another on the same seed, then mean ± std "
        f"over the seeds both ran; computed from the runs in the table above ({seeds}). Each verdict is a tally of the "
        "seeds' own verdicts; a gap inside its seed spread is too close to call.")


def table_freezing_claims() -> str:
    """F1-F5 against the freezing grid (F4, F5), the CPU size sweep (F1, F2) and the CPU head drift (F3)."""
    files = {"freezing": None, "freezing_size_sweep": "cpu-full", "head_drift": "cpu-full"}
    loaded = {e: load(e, tag) for e, tag in files.items()}
    where = "; ".join(f"{e}{'.' + tag if tag else ''}.csv: {provenance_line(loaded[e][1]).split(', torch')[0]}" for e, tag in files.items())
    return claims.markdown(claims.freezing_claims_over_seeds(*(df for df, _ in loaded.values()))) + (
        f"\n\nThe measured column comes from the means over seeds, the verdict from each seed's runs on their own. From {where}.")


def table_loss_weighting(tag: str | None = None) -> str:
    """The weighting strategies' test scores at one budget of task batches; `tag` reads results/loss_weighting.<tag>.csv,
    or the runs kept so far in results/kept/<tag>/."""
    df, prov = load("loss_weighting", tag)
    wide = _scores_by_setting(df)
    steps = df.groupby("setting").steps.first()
    chosen = df[df.metric == "chosen_ner_weight"].groupby("setting").value.apply(lambda v: ", ".join(f"{x:g}" for x in v))
    run_means = df[df.metric == "score"].groupby(["setting", "seed"]).value.mean().mul(100)  # each run's mean over its tasks
    ref = "equal_joint"

    def vs_ref(k: str) -> str:  # the same seed of the reference, where both ran
        d = (run_means[k] - run_means[ref]).dropna() if k != ref and ref in run_means else pd.Series(dtype=float)
        return claims.paired_gap(d) if len(d) else "—"

    lines = [f"| weighting | steps | sentiment | topic | NER | mean | mean − `{ref}`, paired by seed |", "|---|---|---|---|---|---|---|"]
    for k, r in wide.iterrows():
        note = f" (NER weight picked: {chosen[k]})" if k in chosen.index else ""
        lines.append(f"| `{k}`{note} | {steps[k]} | {r.get('sentiment', '—')} | {r.get('topic', '—')} | {r.get('ner', '—')} | {r['mean']} | {vs_ref(k)} |")
    tuned = ""
    if len(chosen):  # the grid the runs used, read from their rows: TUNED_NER_WEIGHTS may have changed since they ran
        val = df[df.metric.str.startswith("validation@ner_weight=")]
        by_weight = val.groupby(val.metric.str.split("=").str[1].astype(float)).value.mean()
        grid = ", ".join(f"{w:g}" for w in by_weight.index)
        tuned = (f" `static_joint_tuned` trains one run per NER loss weight in {grid} (the others at 1) and tests the one with "
                 f"the best mean validation score: {len(by_weight)} times the compute of one row. Its mean validation score per "
                 "NER weight, mean over seeds: " + ", ".join(f"{w:g}: {v * 100:.1f}%" for w, v in by_weight.items()) + ".")
    learned = df[df.metric.isin(["learned_weight", "balancing_weight"])].pivot_table(index=["setting", "task"], columns="metric", values="value")
    weights = "".join(f" `{k}`: " + ", ".join(f"{t} {r.learned_weight:.2f} ({r.balancing_weight:.2f})" for (_, t), r in g.iterrows()) + "."
                      for k, g in learned.groupby(level=0))
    if weights:
        weights = (" Learned weights at the end of the run, mean over seeds, with the weight that balances each task's loss in "
                   f"brackets, 1/(2 × its mean loss over the last tenth of the run):{weights}")
    return "\n".join(lines) + ("\n\nTest scores in %, at an equal budget of task batches (a joint step takes one batch of each task)."
                               f"{tuned}{weights} Provenance: {provenance_line(prov)}.")


def _run_means(df: pd.DataFrame) -> pd.Series:
    """Each setting's test score averaged over the three tasks and then over seeds, in %."""
    runs = df[df.metric == "score"].groupby(["setting", "seed"]).value.mean().mul(100)
    return runs.groupby(level="setting").mean()


def _where(prov: dict) -> str:
    hw = prov["hardware"]
    return f"{len(prov['seeds'])} seed{'s' * (len(prov['seeds']) > 1)}, {hw.get('gpu') or 'a ' + str(hw['cpu_threads']) + '-thread CPU'}"


def table_headline() -> str:
    """The README's four findings in one table, each read from the full-size results file that measured it."""
    svm, svm_p = load("single_vs_multi")
    svm = summarize(svm).set_index(["setting", "task"])["mean"].mul(100)
    gaps = ", ".join(f"{t} {svm[('multi', t)] - svm[('single', t)]:+.1f}" for t in ("sentiment", "topic", "ner"))
    fr, fr_p = load("freezing")
    f = _run_means(fr)
    lr, lr_p, lr_c = load_with_control("layerwise_lr", "cpu-bf16-full")
    m = _run_means(lr)
    if claims.CONTROL in m:
        runs = lr[lr.metric == "score"].groupby(["setting", "seed"]).value.mean().mul(100)
        alone = (runs["decay_0.9"] - runs[claims.CONTROL]).dropna()
        decay_text = (f"heads 1e-3 on a uniform 1e-4 encoder (the control) {m[claims.CONTROL]:.1f}; layer-wise decay ξ=0.9 "
                      f"{m['decay_0.9']:.1f}, so decay alone {claims.paired_gap(alone)}"
                      + (", too close to call" if claims.too_close(alone) else ""))
    else:
        decay_text = f"layer-wise decay ξ=0.9 with heads 1e-3 {m['decay_0.9']:.1f} (no control yet: decay and the heads' rate are confounded)"
    lw, lw_p = load("loss_weighting")
    w = _run_means(lw)
    rows = [
        ("Does one shared encoder cost accuracy? (02)", f"multi-task − single-task, per task: {gaps} points",
         f"`single_vs_multi.csv` ({_where(svm_p)}, 4 passes)"),
        ("What does freezing cost? (03)", f"full fine-tuning {f['e_full_finetune']:.1f}; lower 2 layers frozen {f['d_lower2_frozen']:.1f}; "
         f"lower 4 {f['d_lower4_frozen']:.1f}; whole backbone {f['b_backbone_frozen']:.1f}", f"`freezing.csv` ({_where(fr_p)}, 1 epoch)"),
        ("The brief's rates, 1e-5 encoder / 1e-4 heads? (04)", f"two rates {m['two_rate']:.1f}; uniform 1e-4 {m['uniform_1e-4']:.1f}; "
         + decay_text, f"`layerwise_lr.cpu-bf16-full.csv` ({_where(lr_p)}, 1 epoch)" + (" and `.cpu-bf16-control.csv` (the control)" if lr_c else "")),
        ("Which way of weighting the task losses? (05)", f"equal {w['equal_joint']:.1f}; uncertainty {w['uncertainty_joint']:.1f}; "
         f"PCGrad {w['pcgrad']:.1f}; a tuned static NER weight {w['static_joint_tuned']:.1f}", f"`loss_weighting.csv` ({_where(lw_p)}, 1 epoch)"),
    ]
    lines = ["| question (notebook) | measured at full size (test split, %; below the first row, the mean over the three tasks) | file |",
             "|---|---|---|"]
    lines += [f"| {q} | {a} | {src} |" for q, a, src in rows]
    return "\n".join(lines) + "\n\nAll the training data; test splits; mean over seeds. NER scores come from a test split carved from the same tweets, not comparable with the official WNUT-16 test set."


def table_sizes() -> str:
    """The README's sizes table, read from mtst.SIZES (what a size keeps, and the training budget of a notebook's run)."""

    uses = {"ci": "`make test`", "demo": "JupyterLab, by default", "full": "`make results`"}
    lines = ["| size | data per task (train / validation / test), word pieces | a notebook's training run | used by |", "|---|---|---|---|"]
    for name, s in SIZES.items():
        data = " / ".join("all" if n is None else f"{n:,}" for n in (s.train, s.validation, s.test)) + f", {s.max_length}"
        extra = "".join(f", {t} {e:g}" for t, e in (s.task_epochs or {}).items())
        run = f"{s.steps} steps of {s.batch_size}" if s.steps else f"{s.epochs:g} pass{'es' * (s.epochs != 1)}{extra}, batches of {s.batch_size}"
        lines.append(f"| `{name}` | {data} | {run} | {uses.get(name, '')} |")
    return "\n".join(lines)
