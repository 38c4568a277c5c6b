"""The brief's claims (`docs/claims.md`) next to measured numbers, each with a verdict computed from them:
from one notebook run (`freezing_claims`, notebook 03; `lr_claims`, notebook 04), or from a full-size results file
over its seeds (`layerwise_claims`, the README and notebook 04), where every comparison is paired by seed.

    claims.layerwise_claims(results.load("layerwise_lr", "cpu-bf16-full")[0])
"""

from __future__ import annotations

import pandas as pd

from .data import TASKS
from .scenarios import SWEEP_SCENARIOS, freeze_scenario, score_table

CONTROL = "uniform_1e-4_heads_1e-3"  # decay's control: the same top rate at every depth, the same heads' rate
LR_CLAIMS = {  # the brief's learning-rate claims, paraphrased as in CLAIMS.md
    "L1": "Pretrained layers want ~1e-5, heads ~1e-4.",
    "L2": "The backbone adapts slowly while heads adapt fast.",
    "L3": "Per-part rates give fine-grained control, e.g. to prioritise a task.",
    "L4": "Layer-wise rates mitigate vanishing gradients.",
    "L5": "Layer-wise rates give controlled transfer between tasks.",
    "L6": "The result is better performance and more efficient training.",
}


def _verdict(ok: bool | None) -> str:
    return {True: "supported here", False: "not supported here", None: "partly"}[ok]


def freezing_claims(grid: pd.DataFrame, sweep: pd.DataFrame, drift: pd.DataFrame, drift_control: pd.DataFrame, task: str) -> pd.DataFrame:
    """The brief's freezing claims (F1-F5) next to this run's numbers, with a verdict computed from them.
    grid: score_table(..., "scenario"); sweep: sweep_table(...); drift/_control: run_head_drift frames.

    F5 holds where the best-scoring scenario short of full fine-tuning keeps ≥ 97% of its mean score at ≤ 80% of its
    wall time or of its peak GPU memory (CLAIMS.md asks for both; peak memory is measured on a GPU only). The
    optimizer state is shown beside them but does not decide: every frozen part saves all of its own."""
    e = "e_full_finetune"
    # The frozen side at its best: the backbone frozen as in the grid, or its heads trained 10× as long on the cache.
    frozen = sweep[[c for c in SWEEP_SCENARIOS if c != e and c in sweep]]
    best_frozen, which = frozen.max(axis=1), frozen.idxmax(axis=1)
    small, large = sweep.index[0], sweep.index[-1]  # rows run from the smallest training set to the largest
    gap_small = best_frozen[small] - sweep.loc[small, e]
    gap_large = best_frozen[large] - sweep.loc[large, e]
    mid = sweep.index[len(sweep.index) // 2] if len(sweep.index) > 2 else large
    gap_mid = best_frozen[mid] - sweep.loc[mid, e]
    d_end, d_low, c_end = drift.drift.iloc[-1] * 100, drift.drift.min() * 100, drift_control.drift.iloc[-1] * 100
    ks = grid.dropna(subset=["k"]) if "k" in grid else grid
    k_scores = {int(r.k): r["mean"] for _, r in ks.iterrows()} if "k" in ks else {}
    best_k = max(k_scores, key=k_scores.get) if k_scores else None
    g = grid.loc["f_gradual_unfreezing", "mean"] if "f_gradual_unfreezing" in grid.index else float("nan")
    # F5: the best-scoring cheaper scenario, its costs as shares of full fine-tuning's (memory where measured).
    cheap = grid.drop(index=e)
    shares = {c: cheap[c] / grid.loc[e, c] for c in ("wall_time_s", "peak_gpu_mib", "optimizer_state_mib")
              if c in grid and grid[c].notna().all() and grid.loc[e, c] > 0}
    best_eff = (cheap["mean"] / grid.loc[e, "mean"]).sort_values(ascending=False)
    eff_name, eff_score = best_eff.index[0], best_eff.iloc[0]
    eff = {c: 100 * v[eff_name] for c, v in shares.items()}
    parts = [f"{eff[c]:.0f}% of its {what}" for c, what in (("wall_time_s", "wall time"), ("peak_gpu_mib", "peak GPU memory"),
                                                            ("optimizer_state_mib", "optimizer state")) if c in eff]
    eff_text = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)
    rows = [
        ("F1", "Freeze everything when task data is very limited.",
         f"{small} examples per task: frozen encoder {best_frozen[small]:.1f} (best frozen: {which[small]}) vs full fine-tuning "
         f"{sweep.loc[small, e]:.1f} (mean test score, %)",
         _verdict(bool(gap_small >= 0))),
        ("F2", "Freezing only the backbone suits moderate data.",
         f"{mid} examples: best frozen − full = {gap_mid:+.1f} pts" + (f"; with {large}: {gap_large:+.1f} pts" if mid != large else ""),
         _verdict(bool(gap_mid >= -1.0)) if gap_mid >= -1.0 or gap_large < gap_mid else _verdict(False)),
        ("F3", "Freezing one head keeps that task's performance while the others train (with monitoring).",
         f"{task} head frozen" + (f", bit-identical: {drift.attrs['head_unchanged']}" if "head_unchanged" in drift.attrs else "")
         + f"; its validation score moved {d_end:+.1f} pts (lowest {d_low:+.1f}) as the encoder trained on the other tasks"
         + (f" and moved {100 * drift.encoder_moved.iloc[-1]:.2f}% of its weight norm" if "encoder_moved" in drift else "")
         + f" (control, encoder frozen too: {c_end:+.1f} pts)",
         _verdict(abs(d_end) <= 1.0)),
        ("F4", "Freeze lower layers, fine-tune upper ones, train heads from scratch.",
         "k frozen lower layers → mean score: " + ", ".join(f"k={k}: {v:.1f}" for k, v in sorted(k_scores.items())) + f"; gradual unfreezing {g:.1f}",
         _verdict(0 < best_k < max(k_scores)) if best_k is not None else "partly"),  # max k: the frozen backbone, at any depth
        ("F5", "This balances efficiency and performance.",
         f"best non-full scenario {eff_name}: {100 * eff_score:.0f}% of full fine-tuning's score at {eff_text}",
         _verdict(bool(eff_score >= 0.97 and min(eff.get("wall_time_s", 100), eff.get("peak_gpu_mib", 100)) <= 80))),
    ]
    return pd.DataFrame(rows, columns=["claim", "the brief says", "this run measured", "verdict"]).set_index("claim")


def _grid_from_results(df: pd.DataFrame, depth: int = 6) -> pd.DataFrame:
    """A freezing results frame as `score_table` shows a notebook's grid (k, scores, costs per scenario); `depth`: the
    encoder's layers (6: all-MiniLM-L6-v2), which the frozen backbone's k is."""
    costs = df[df.metric.isin(["trainable_params", "optimizer_state_mib", "peak_gpu_mib"])].pivot_table(index=["setting", "seed"], columns="metric", values="value")
    runs = df[df.metric == "score"].join(costs, on=["setting", "seed"]).rename(columns={"setting": "scenario", "value": "score"})
    return score_table(runs.assign(k=[freeze_scenario(x, depth).k for x in runs.scenario]), "scenario")


def _sweep_from_results(df: pd.DataFrame) -> pd.DataFrame:
    """A freezing_size_sweep results frame as `sweep_table` shows it: mean test score over tasks (%) per size and scenario."""
    d = df[df.metric == "score"]
    parts = d.setting.str.split("@", n=1, expand=True)
    wide = d.assign(scenario=parts[0], n=parts[1]).pivot_table(index="n", columns="scenario", values="value", aggfunc="mean").mul(100)
    return wide.reindex(sorted(wide.index, key=lambda x: float("inf") if x == "all" else int(x)))


def _drift_from_results(df: pd.DataFrame, setting: str) -> pd.DataFrame:
    """One head-drift setting's validation score over the steps, mean over the frame's seeds, as `run_head_drift` returns it."""
    d = df[(df.setting == setting) & df.metric.str.startswith("score@")]
    out = d.assign(step=d.metric.str[6:].astype(int)).groupby("step").value.mean().rename("score").reset_index()
    return out.assign(drift=out.score - out.score.iloc[0])


def freezing_claims_over_seeds(grid: pd.DataFrame, sweep: pd.DataFrame, drift: pd.DataFrame, task: str = "sentiment") -> pd.DataFrame:
    """F1-F5 against results files (`results.load(...)[0]` of freezing, freezing_size_sweep and head_drift):
    `freezing_claims` on the means over seeds gives the measured column, and once on each seed's runs alone, so
    the verdict says on how many seeds each claim held."""
    def claims_for(seeds) -> pd.DataFrame:
        def pick(df: pd.DataFrame) -> pd.DataFrame:
            return df[df.seed.isin(seeds)]
        d = pick(drift)
        return freezing_claims(_grid_from_results(pick(grid)), _sweep_from_results(pick(sweep)), _drift_from_results(d, "encoder_trains"),
                               _drift_from_results(d, "control_encoder_frozen"), task)

    seeds = sorted(set(grid.seed) & set(sweep.seed) & set(drift.seed))
    out = claims_for(seeds).rename(columns={"this run measured": "measured, mean over seeds"})
    per_seed = pd.DataFrame({s: claims_for([s]).verdict.str.split(":").str[0] for s in seeds})
    out["verdict"] = [_tally(row) for _, row in per_seed.iterrows()]
    return out


def markdown(table: pd.DataFrame) -> str:
    """A claims table (any of the above) as a markdown table for the README."""
    head = ["claim", *table.columns]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *(f"| {k} | " + " | ".join(str(v) for v in r) + " |" for k, r in table.iterrows())])


def _tally(verdicts: pd.Series) -> str:
    """Per-seed verdicts in one phrase: "supported here on every seed (3)", or how many seeds gave each."""
    counts, n = verdicts.value_counts(), len(verdicts)
    if len(counts) == 1:
        return f"{counts.index[0]} on every seed ({n})" if n > 1 else f"{counts.index[0]} (1 seed)"
    return "; ".join(f"{v} on {c} of {n} seeds" for v, c in counts.items())


def _ratio(frame: pd.DataFrame, col: str) -> float:
    """The bottom of the encoder (embeddings and layer 0) over its top layer, whatever the depth the frame records."""
    f = frame[frame[col] > 0] if col == "update_ratio" else frame
    top = max((p for p in f.part.unique() if str(p).startswith("layer_")), key=lambda p: int(p.split("_")[1]))
    lo, hi = f[f.part.isin(("embeddings", "layer_0"))][col].mean(), f[f.part == top][col].mean()
    return float(lo / hi) if hi else float("nan")


def lr_claims(table: pd.DataFrame, grads: dict[str, pd.DataFrame], forget: dict[str, pd.DataFrame], conflict: dict[str, pd.DataFrame],
              boost: tuple[str, str, str], steps: dict[str, int | None], uniform: str = "uniform_1e-4", layerwise: str = "decay_0.9") -> pd.DataFrame:
    """The brief's learning-rate claims (L1-L6) next to this run's numbers, with verdicts computed from them.
    table: score_table(rows, "scheme"); grads: GradientMonitor frames; forget: forgetting frames; conflict:
    ConflictMonitor.conflict_share frames; boost: (base scheme, boosted scheme, boosted task); steps: steps_to_target."""
    m = table["mean"]
    two, lo, hi = m.get("two_rate"), m.get("uniform_1e-5"), m.get("uniform_1e-4")
    fg = {k: f.forgetting.mean() * 100 for k, f in forget.items()}
    up_u, up_l = _ratio(grads[uniform], "update_ratio"), _ratio(grads[layerwise], "update_ratio")
    g_u = _ratio(grads[uniform], "grad_norm")
    base, boosted, task = boost
    d_task = table.loc[boosted, task] - table.loc[base, task]
    others = [t for t in table.columns if t in ("sentiment", "topic", "ner") and t != task]
    d_others = {t: table.loc[boosted, t] - table.loc[base, t] for t in others}
    c_u, c_l = conflict.get(uniform), conflict.get(layerwise)
    best = m.idxmax()
    rows = [
        ("L1", LR_CLAIMS["L1"],
         f"mean test score: two-rate {two:.1f}, uniform 1e-5 {lo:.1f}, uniform 1e-4 {hi:.1f}; forgetting (1−CKA, mean over layers, %): "
         + ", ".join(f"{k} {v:.1f}" for k, v in fg.items()),
         _verdict(bool(two >= max(lo, hi)))),
        _l2_live(table, forget, layerwise, up_l, up_u, uniform),
        ("L3", LR_CLAIMS["L3"],
         f"{task} head rate raised ({boosted}): {task} {d_task:+.1f} pts; " + ", ".join(f"{t} {v:+.1f}" for t, v in d_others.items()),
         _verdict(bool(d_task > 0 and all(abs(v) <= abs(d_task) for v in d_others.values())))),
        ("L4", LR_CLAIMS["L4"],
         f"under {uniform}, the gradient norm of embeddings+layer 0 is {g_u:.2f}× layer 5's",
         "not supported here: there is no vanishing gradient to mitigate" if g_u >= 0.5 else _verdict(True)),
        ("L5", LR_CLAIMS["L5"],
         (f"share of recorded steps with conflicting task gradients (cosine < 0): {c_u.conflict_share.mean():.0%} with {uniform}, "
          f"{c_l.conflict_share.mean():.0%} with {layerwise}; mean cosine {c_u.mean_cosine.mean():+.2f} vs {c_l.mean_cosine.mean():+.2f}")
         if c_u is not None and c_l is not None else "not measured",
         _verdict(bool(c_l.conflict_share.mean() < c_u.conflict_share.mean())) if c_u is not None and c_l is not None else "partly"),
        _l6_live(m, steps, layerwise, uniform, best),
    ]
    return pd.DataFrame(rows, columns=["claim", "the brief says", "this run measured", "verdict"]).set_index("claim")


CONTROL = "uniform_1e-4_heads_1e-3"  # decay's control: the same top rate at every depth, the same heads' rate


def _l2_live(table: pd.DataFrame, forget: dict, decay: str, up_l: float, up_u: float, uniform: str) -> tuple:
    """L2 by outcome, against the control that differs from decay in the decay alone: does the backbone move less low
    down (forgetting of the embeddings and layer 0), and does every task score at or above the control? The update
    ratio is shown as the mechanism (decay lowers the lower layers' rate, so it falls by construction), not as the verdict."""
    mechanism = f"mechanism: update/weight ratio of embeddings+layer 0 relative to the top layer, {up_l:.2f} with {decay}, {up_u:.2f} with {uniform}"
    if CONTROL not in table.index or CONTROL not in forget:
        return ("L2", LR_CLAIMS["L2"], f"no {CONTROL} run here, so no control for decay; {mechanism}", "not measured")
    low = {k: forget[k][forget[k].layer.isin(["embeddings", "layer_0"])].forgetting.mean() * 100 for k in (decay, CONTROL)}
    tasks = [t for t in TASKS if t in table]
    d = {t: table.loc[decay, t] - table.loc[CONTROL, t] for t in tasks}
    slow, every = low[decay] < low[CONTROL], all(v >= 0 for v in d.values())
    return ("L2", LR_CLAIMS["L2"],
            f"{decay} − {CONTROL}: forgetting of the embeddings and layer 0 {low[decay] - low[CONTROL]:+.1f} pts; test score per task: "
            + ", ".join(f"{t} {v:+.1f}" for t, v in d.items()) + f"; {mechanism}",
            f"slow backbone: {_verdict(bool(slow))} (1 seed); every task at or above the control: {_verdict(bool(every))} (1 seed)")


def _l6_live(m: pd.Series, steps: dict, decay: str, uniform: str, best: str) -> tuple:
    """L6 against the control (decay alone), both halves: the score, and the steps to 95% of the best final validation score."""
    to = ", ".join(f"{k} {v if v is not None else 'never'}" for k, v in steps.items())
    if CONTROL not in m:
        return ("L6", LR_CLAIMS["L6"], f"best scheme {best} ({m[best]:.1f}); no {CONTROL} run here, so a gain of decay over {uniform} "
                f"cannot be told from the heads' higher rate; steps to 95% of the best final validation score: {to}", "not measured")
    never = 10**9
    faster = (steps.get(decay) or never) < (steps.get(CONTROL) or never)
    return ("L6", LR_CLAIMS["L6"],
            f"mean test score, {decay} − {CONTROL} (decay alone): {m[decay] - m[CONTROL]:+.1f} pts; the heads' rate alone, {CONTROL} − "
            f"{uniform}: {m[CONTROL] - m[uniform]:+.1f} pts; steps to 95% of the best final validation score: {to}",
            f"score: {_verdict(bool(m[decay] > m[CONTROL]))} (1 seed); speed: {_verdict(bool(faster))} (1 seed)")


def _on_seeds(ok: pd.Series) -> str:
    """A verdict over seeds, as a tally of the seeds' own verdicts: each entry says whether the claim held on that
    seed's paired runs. Never a majority: a split says how many seeds went each way."""
    n, k = len(ok), int(ok.sum())
    if n == 1:
        return _verdict(bool(k)) + " (1 seed)"
    return {n: f"supported on every seed ({n})", 0: f"not supported on any seed ({n})"}.get(k, f"supported on {k} of {n} seeds, not on {n - k}")


def too_close(d: pd.Series) -> bool:
    """A paired gap inside its own seed spread (|mean| ≤ std over seeds): no seed count can call it."""
    return len(d) > 1 and abs(d.mean()) <= d.std(ddof=1)


def _called(ok: pd.Series, d: pd.Series) -> str:
    """The tally, and "too close to call" beside it when the gap is inside the seed spread."""
    return _on_seeds(ok) + (" — too close to call: the gap is inside the seed spread" if too_close(d) else "")


def paired_gap(d: pd.Series) -> str:
    """Per-seed differences in points (one setting's score minus another's on the same seed) as
    "+1.2 ± 0.8 pts (higher on 2 of 3 seeds)"."""
    spread = f" ± {d.std(ddof=1):.1f}" if len(d) > 1 else ""
    return f"{d.mean():+.1f}{spread} pts (higher on {int((d > 0).sum())} of {len(d)} seed{'s' * (len(d) > 1)})"


def score_runs(df: pd.DataFrame) -> pd.DataFrame:
    """A results frame's test scores (%) per (setting, seed) and task, with each run's mean over the tasks."""
    sc = df[df.metric == "score"].pivot_table(index=["setting", "seed"], columns="task", values="value").mul(100)
    sc["mean"] = sc[[t for t in TASKS if t in sc]].mean(axis=1)
    return sc


def layerwise_claims(df: pd.DataFrame, boost: tuple[str, str, str] = ("decay_0.9", "decay_0.9+ner_head×10", "ner"),
                     uniform: str = "uniform_1e-4", decay: str = "decay_0.9", control: str = CONTROL) -> pd.DataFrame:
    """L1, L2, L3 and L6 against a layerwise_lr results frame (`results.load("layerwise_lr", tag)[0]`, with the control's
    runs joined where they are in another file). Two schemes are compared seed by seed, on the seeds both ran (a seed
    fixes the heads' initialisation and the data order), so each verdict is a per-seed tally.

    Decay is read against `control`, which differs from it in the decay alone (uniform_1e-4 also differs in the heads'
    rate, 1e-4 against 1e-3): L2 by outcome (forgetting low in the encoder, and every task's score), L6 by score and by
    steps to 95% of a run's own best validation score, both halves shown."""
    sc = score_runs(df)
    low_runs = df[df.metric.isin(["forgetting:embeddings", "forgetting:layer_0"])].groupby(["setting", "seed"]).value.mean().mul(100)
    low = low_runs.groupby(level="setting").mean()
    steps = df[df.metric == "steps_to_95pct_own_best"].set_index(["setting", "seed"]).value
    s95 = steps.groupby(level="setting", sort=False).mean()
    ran = set(sc.index.get_level_values("setting"))

    def diff(a: str, b: str, col: str = "mean") -> pd.Series:  # b − a, per seed both ran
        return (sc.loc[b, col] - sc.loc[a, col]).dropna()

    d_hi, d_lo = diff(uniform, "two_rate"), diff("uniform_1e-5", "two_rate")
    base, boosted, task = boost
    d_task = diff(base, boosted, task)
    d_others = {t: diff(base, boosted, t) for t in TASKS if t in sc and t != task}
    decays = sorted((k for k in s95.index if k.startswith("decay_") and "+" not in k and "heads" not in k), key=lambda k: -float(k.split("_")[1]))
    rows = [
        ("L1", LR_CLAIMS["L1"],
         f"mean test score, two-rate − {uniform}: {paired_gap(d_hi)}; two-rate − uniform_1e-5: {paired_gap(d_lo)}; forgetting of the embeddings "
         "and layer 0 (1 − CKA, %, mean over seeds): " + ", ".join(f"{k} {low[k]:.1f}" for k in ("uniform_1e-5", uniform, "too_high_1e-3") if k in low),
         _on_seeds((d_hi >= 0) & (d_lo.reindex(d_hi.index) >= 0))),
    ]
    if control in ran and decay in ran:
        per_task = {t: diff(control, decay, t) for t in TASKS if t in sc}
        d_low = (low_runs[decay] - low_runs[control]).dropna()
        every = pd.concat(per_task, axis=1).dropna()
        rows.append(("L2", LR_CLAIMS["L2"],
                     f"{decay} − {control} (the same rates but for the decay): forgetting of the embeddings and layer 0 "
                     f"{d_low.mean():+.1f} pts (lower on {int((d_low < 0).sum())} of {len(d_low)} seed{'s' * (len(d_low) > 1)}); test score per task: "
                     + "; ".join(f"{t} {paired_gap(d)}" for t, d in per_task.items()),
                     f"slow backbone: {_on_seeds(d_low < 0)}; every task at or above the control: {_on_seeds((every >= 0).all(axis=1))}"))
    else:
        rows.append(("L2", LR_CLAIMS["L2"], f"no {control} runs in these results: decay has no control to be read against", "not measured"))
    rows.append(("L3", LR_CLAIMS["L3"],
                 f"{task} head rate ×10 ({boosted} − {base}): {task} {paired_gap(d_task)}; " + "; ".join(f"{t} {paired_gap(d)}" for t, d in d_others.items()),
                 _on_seeds(pd.Series({s: d_task[s] > 0 and all(abs(d[s]) <= abs(d_task[s]) for d in d_others.values()) for s in d_task.index}))))
    per_part = df[df.metric.str.startswith("grad_norm:")]
    if len(per_part) and uniform in set(per_part.setting):
        g = per_part[per_part.setting == uniform].assign(part=lambda x: x.metric.str[10:]).pivot_table(index="seed", columns="part", values="value")
        top = max((c for c in g if c.startswith("layer_")), key=lambda c: int(c.split("_")[1]))
        ratio = g[["embeddings", "layer_0"]].mean(axis=1) / g[top]
        rows.append(("L4", LR_CLAIMS["L4"],
                     f"under {uniform}, the mean gradient norm of the embeddings and layer 0 over the run is {ratio.mean():.2f}× {top}'s "
                     f"(per seed: {', '.join(f'{x:.2f}' for x in ratio)}); below 0.5 would be a vanishing gradient to mitigate",
                     _on_seeds(ratio < 0.5)))
    conflict = df[df.metric == "conflict_share"].set_index(["setting", "seed"]).value
    if len(conflict) and {decay, control} <= set(conflict.index.get_level_values(0)):
        d_c = (conflict[decay] - conflict[control]).dropna()
        rows.append(("L5", LR_CLAIMS["L5"],
                     f"share of recorded steps whose task gradients conflict on the encoder (cosine < 0), {decay} − {control}: "
                     f"{100 * d_c.mean():+.0f} pts of steps (lower on {int((d_c < 0).sum())} of {len(d_c)} seeds)", _on_seeds(d_c < 0)))
    if control in ran and decay in ran:
        d_dec, d_heads = diff(control, decay), diff(uniform, control)
        faster = (steps[decay] - steps[control]).dropna()
        rows.append(("L6", LR_CLAIMS["L6"],
                     f"mean test score, {decay} − {control} (decay alone): {paired_gap(d_dec)}; " + "; ".join(
                         f"{k} − {control}: {paired_gap(diff(control, k))}" for k in decays if k != decay)
                     + f"; the heads' rate alone, {control} − {uniform}: {paired_gap(d_heads)}; steps to 95% of a run's own best "
                     "validation score (mean over seeds): " + ", ".join(f"{k} {s95[k]:.0f}" for k in (uniform, control, *decays) if k in s95),
                     f"score: {_called(d_dec > 0, d_dec)}; speed: {_on_seeds(faster < 0)}"))
    else:
        rows.append(("L6", LR_CLAIMS["L6"], f"no {control} runs in these results: a gain of decay over {uniform} cannot be told from "
                     "the heads' higher rate (1e-3 against 1e-4)", "not measured"))
    order = {c: i for i, c in enumerate(LR_CLAIMS)}
    rows.sort(key=lambda r: order[r[0]])
    return pd.DataFrame(rows, columns=["claim", "the brief says", "measured, paired by seed", "verdict"]).set_index("claim")
