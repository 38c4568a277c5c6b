"""Do the lessons hold at depth? The freezing k-sweep and the 2×2 of layer-wise decay × the heads' rate, run with
all-MiniLM-L6-v2 (6 layers) and all-mpnet-base-v2 (12) at the same size, recipe and seeds, read seed by seed from
results/<experiment>.cpu-<encoder>-demo.csv (`python -m mtst.lab.results --encoder NAME ...`, see docs/results.md).

    print(depth.freezing_table()); print(depth.rates_table()); print(depth.reading())
"""

from __future__ import annotations

import pandas as pd

from .. import claims
from ..data import TASKS
from ..pretrained import ENCODERS
from ..scenarios import freeze_scenario, freeze_scenarios
from .store import load
from .tables import provenance_line

TAGS = {"all-MiniLM-L6-v2": "cpu-minilm-demo", "all-mpnet-base-v2": "cpu-mpnet-demo"}
FULL = "e_full_finetune"
# (label, a, b): the effect is a − b, per seed. The first two differ in the decay alone, the third in the heads' rate alone.
RATE_EFFECTS = (("decay ξ=0.9 (heads at 1e-3 on both sides)", "decay_0.9", claims.CONTROL),
                ("decay ξ=0.9 (heads at 1e-4 on both sides)", "decay_0.9_heads_1e-4", "uniform_1e-4"),
                ("heads at 1e-3 instead of 1e-4 (no decay on either side)", claims.CONTROL, "uniform_1e-4"))


def _runs(experiment: str, name: str) -> tuple[pd.DataFrame, dict] | None:
    try:
        return load(experiment, TAGS[name])
    except FileNotFoundError:
        return None


def _gap(d: pd.Series) -> str:
    return claims.paired_gap(d) + (" — too close to call" if claims.too_close(d) else "")


def _low_forgetting(df: pd.DataFrame) -> pd.Series:
    """Each run's forgetting of the embeddings and layer 0 (1 − linear CKA, %), by (setting, seed)."""
    f = df[df.metric.isin(["forgetting:embeddings", "forgetting:layer_0"])]
    return f.groupby(["setting", "seed"]).value.mean().mul(100)


def freezing_effects(name: str) -> dict[str, pd.Series]:
    """Per frozen-k scenario of one encoder, each seed's mean test score minus full fine-tuning's (pts)."""
    got = _runs("freezing", name)
    if got is None:
        return {}
    sc = claims.score_runs(got[0])["mean"]
    depth = ENCODERS[name].layers
    names = sorted((s for s in sc.index.get_level_values(0).unique() if s != FULL and freeze_scenario(s, depth).k is not None),
                   key=lambda s: freeze_scenario(s, depth).k)
    return {s: (sc[s] - sc[FULL]).dropna() for s in names if FULL in sc.index.get_level_values(0)}


def freezing_table() -> str:
    lines = ["| encoder | scenario | k frozen | mean test score (%) | minus full fine-tuning, per seed |", "|---|---|---|---|---|"]
    provs = []
    for name in ENCODERS:
        got = _runs("freezing", name)
        if got is None:
            lines.append(f"| {name} | not run yet | | | |")
            continue
        df, prov = got
        provs.append(f"{name}: {provenance_line(prov)}")
        sc = claims.score_runs(df)["mean"]
        depth = ENCODERS[name].layers
        effects = freezing_effects(name)
        for s in sorted(sc.index.get_level_values(0).unique(), key=lambda s: freeze_scenario(s, depth).k or 0):
            k = freeze_scenario(s, depth).k
            means = sc[s]
            lines.append(f"| {name} | `{s}` | {k} of {depth} | {means.mean():.1f} ± {means.std(ddof=1):.1f} ({len(means)} seeds) | "
                         + (_gap(effects[s]) if s in effects else "—") + " |")
    return "\n".join(lines) + ("\n\nMean test score over the three tasks (accuracy; entity F1 for NER on our test split carved from "
                               "the WNUT-16-style tweets, not comparable with the official WNUT-16 test). Provenance: "
                               + "; ".join(provs) + ".")


def rate_effects(name: str) -> dict[str, tuple[pd.Series, pd.Series]]:
    """Per rate comparison of one encoder, each seed's (mean test score, low forgetting) difference a − b."""
    got = _runs("layerwise_lr", name)
    if got is None:
        return {}
    df = got[0]
    sc, low = claims.score_runs(df)["mean"], _low_forgetting(df)
    ran = set(sc.index.get_level_values(0))
    def pick(x: pd.Series, k: str) -> pd.Series:
        return x[k] if k in x.index.get_level_values(0) else pd.Series(dtype=float)

    return {label: ((sc[a] - sc[b]).dropna(), (pick(low, a) - pick(low, b)).dropna()) for label, a, b in RATE_EFFECTS if {a, b} <= ran}


def gradient_ratio(name: str) -> pd.Series | None:
    """Under uniform_1e-4, each seed's mean gradient norm of the embeddings and layer 0 over the top layer's (L4)."""
    got = _runs("layerwise_lr", name)
    if got is None:
        return None
    df = got[0]
    g = df[(df.setting == "uniform_1e-4") & df.metric.str.startswith("grad_norm:")]
    if g.empty:
        return None
    g = g.assign(part=g.metric.str[10:]).pivot_table(index="seed", columns="part", values="value")
    top = f"layer_{ENCODERS[name].layers - 1}"
    return g[["embeddings", "layer_0"]].mean(axis=1) / g[top]


def rates_table() -> str:
    lines = ["| encoder | effect of | mean test score, per seed | forgetting of the embeddings + layer 0 (1 − linear CKA, %), per seed |",
             "|---|---|---|---|"]
    provs = []
    for name in ENCODERS:
        got = _runs("layerwise_lr", name)
        if got is None:
            lines.append(f"| {name} | not run yet | | |")
            continue
        provs.append(f"{name}: {provenance_line(got[1])}")
        for label, (d, f) in rate_effects(name).items():
            lines.append(f"| {name} | {label} | {_gap(d)} | " + (f"{f.mean():+.2f} pts (lower on {int((f < 0).sum())} of {len(f)} seeds)" if len(f) else "—") + " |")
        r = gradient_ratio(name)
        if r is not None:
            lines.append(f"| {name} | depth, under uniform 1e-4 (L4) | gradient norm of the embeddings + layer 0 over layer "
                         f"{ENCODERS[name].layers - 1}'s: {', '.join(f'{x:.2f}' for x in r)} (per seed; below 0.5 would be a vanishing "
                         "gradient: the bottom would learn at under half the top's gradient scale) | |")
    return "\n".join(lines) + ("\n\nEach effect is one scheme minus the scheme that differs from it in that one thing, seed by seed "
                               "(the same seed fixes the heads' initialisation and the data order). Provenance: " + "; ".join(provs) + ".")


def _missing(name: str) -> list[str]:
    """The k-sweep's scenarios and the 2×2's schemes that have no runs for this encoder in its depth files."""
    ran = {e: set() if _runs(e, name) is None else set(_runs(e, name)[0].setting) for e in ("freezing", "layerwise_lr")}
    sweep = [s for s, sc in freeze_scenarios(ENCODERS[name].layers).items() if sc.k is not None and s not in ran["freezing"]]
    schemes = dict.fromkeys(x for _, a, b in RATE_EFFECTS for x in (a, b))
    return sweep + [x for x in schemes if x not in ran["layerwise_lr"]]


def _said(d: pd.Series, more: str, less: str) -> str:
    if claims.too_close(d) or not ((d > 0).all() or (d < 0).all()):
        return f"too close to call, {claims.paired_gap(d)}"
    return f"{more if d.mean() > 0 else less} on every seed, {claims.paired_gap(d)}"


def reading() -> str:
    """What transfers from 6 layers to 12, in sentences generated from the per-seed effects."""
    out = []
    for name in ENCODERS:
        depth = ENCODERS[name].layers
        fr = freezing_effects(name)
        parts = [f"freezing the lower {freeze_scenario(s, depth).k} of {depth} layers ({freeze_scenario(s, depth).k / depth:.0%}) against full fine-tuning: "
                 + _said(d, "above", "below") for s, d in fr.items()]
        parts += [f"{label}: " + _said(d, "higher", "lower") for label, (d, _) in rate_effects(name).items()]
        r = gradient_ratio(name)
        if r is not None:
            parts.append(f"the lowest parts' gradient norm is {r.min():.2f}-{r.max():.2f}× the top layer's under a uniform rate, "
                         + ("so there is no vanishing gradient for layer-wise rates to mitigate" if (r >= 0.5).all() else
                            f"below 0.5 on {int((r < 0.5).sum())} of {len(r)} seeds: there, depth gives layer-wise rates a "
                            "vanishing gradient to mitigate"))
        missing = _missing(name)
        if parts:
            out.append(f"- **{name}** ({depth} layers): " + "; ".join(parts) + "."
                       + (f" Not run at this size yet: {', '.join(f'`{m}`' for m in missing)}." if missing else ""))
    if not out:
        return "No depth runs in results/ yet: `python -m mtst.lab.results --size demo --encoder all-mpnet-base-v2 ...` makes them."
    return "\n".join(out) + "\n\n" + _recipe_note() + _ner_note() + ("The full-size depth-12 grids (all the data, three seeds: the k-sweep "
                                                     "k = 0, 3, 6, 9, 12 and every rate scheme) need a GPU and have not run.")


def _recipe_note() -> str:
    """The depth runs' recipe, read from their files: it is the results runs' recipe, not the notebooks'."""
    for name in ENCODERS:
        got = _runs("freezing", name) or _runs("layerwise_lr", name)
        if got is not None:
            df, prov = got
            c = prov.get("config")
            if not c:
                return ""
            steps = df.steps.max()
            return (f"Both encoders ran the same recipe, the results runs' (not the notebooks' at this size): batches of "
                    f"{c.get('batch_size')} in {'length-bucketed' if c.get('bucket_by_length') else 'random'} order, {c.get('epochs'):g} pass "
                    f"over each task's training examples ({steps:.0f} steps), {c.get('precision')}; a notebook at `demo` trains "
                    "at batch 16 with two NER passes, so it will not give these numbers. ")
    return ""


def _ner_note() -> str:
    """How many of the depth runs scored no entity at all, and the NER passes their recipe gave: read from the files."""
    zero = total = 0
    passes = set()
    for name in ENCODERS:
        for experiment in ("freezing", "layerwise_lr"):
            got = _runs(experiment, name)
            if got is None:
                continue
            df, prov = got
            ner = df[(df.metric == "score") & (df.task == "ner")].value
            zero, total = zero + int((ner == 0).sum()), total + len(ner)
            cfg = prov.get("config", {})
            n = (cfg.get("task_epochs") or {}).get("ner", cfg.get("epochs"))
            if n is not None:
                passes.add(n)
    if not total:
        return ""
    given = (f" (each gives NER {' or '.join(f'{x:g}' for x in sorted(passes))} pass{'es' * (passes != {1.0})} over its training "
             "tweets)") if passes else ""
    return (f"Scores are means over {', '.join(TASKS)}; a gap is too close to call when its mean over seeds is no larger than its "
            f"spread (|mean| ≤ std). NER's entity F1 is 0 in {zero} of {total} of these runs{given}"
            + (", so at this size the means mostly compare sentiment and topic. " if zero > total / 2 else ". "))
