"""The claims' verdicts at the notebooks' default size, set against the verdicts of the full-size runs.

Notebooks 03 and 04 end with a claims table computed from their own run (`mtst.claims`). `compare` sets each
verdict beside the full-size one, read from the results files over three seeds, and gives the measured reason
where the two differ (WHY). `tools/time_notebooks.py --verdicts` records the default size's verdicts, as the
notebooks computed them in a timed run, in results/verdicts.json; a test checks that file against WHY and the
results files.
"""

from __future__ import annotations

import json
import re

import pandas as pd

from .. import claims
from . import store
from .store import RESULTS_DIR, load

PATH = RESULTS_DIR / "verdicts.json"
KINDS = {"freezing": ("F1", "F2", "F3", "F4", "F5"), "layerwise": ("L1", "L2", "L3", "L4", "L5", "L6")}
NOT_MEASURED = "not measured at full size"

# Where the default size's verdict differs from the full-size one, why: each reason rests on numbers the notebook
# shows above its claims table and on the full-size tables below it. Filled from the default size's recorded run
# (results/verdicts.json); a test keeps the two in step.
WHY: dict[str, str] = {
    "F1": "A live session's budget is 100 steps a run, too few for full fine-tuning to adapt the encoder, while the frozen "
          "encoder's heads train 10× as long on cached features; with 100 examples per task the frozen side wins here. At "
          "full size (696 steps a run) full fine-tuning leads at every training-set size, on every seed: too few steps, "
          "not too little data, decide F1 in this run.",
    "F2": "The same budget: with all of this size's examples the frozen encoder's heads, given 10× the steps, beat full "
          "fine-tuning's 100 steps, most of it on topic. At full size full fine-tuning leads with 1,000 examples per task "
          "and with all of them, on every seed.",
    "F3": "After 100 steps of fine-tuning the shared encoder is still moving fast, so a quarter of a run more on topic and "
          "NER moves the frozen sentiment head's task by several points. At full size, after a whole epoch, the same drift "
          "ends within a point of its start on every seed.",
}

# The lessons the default size must teach as the full-size runs do: the freezing scenarios' order by mean test score,
# and the learning-rate schemes' (the brief's two rates far below a uniform 1e-4, decay at or above it).
FREEZING_ORDER = ("e_full_finetune", "d_lower2_frozen", "d_lower4_frozen", "b_backbone_frozen")


def lessons(freezing_means: dict[str, float], scheme_means: dict[str, float]) -> dict:
    """Whether this run's mean scores teach the full-size lessons: the freezing order, and the rate schemes'."""
    order = sorted(FREEZING_ORDER, key=lambda k: -freezing_means[k])
    decays = {k: v for k, v in scheme_means.items() if k.startswith("decay_") and "+" not in k and float(k.split("_")[1]) >= 0.9}
    uniform, two = scheme_means["uniform_1e-4"], scheme_means["two_rate"]
    return {"freezing_means": {k: freezing_means[k] for k in FREEZING_ORDER}, "freezing_order_holds": tuple(order) == FREEZING_ORDER,
            "two_rate_minus_uniform_1e-4": two - uniform, "two_rate_far_below": uniform - two >= 5.0,
            "decay_minus_uniform_1e-4": {k: v - uniform for k, v in decays.items()},
            "decay_at_or_above": bool(decays) and all(v >= uniform for v in decays.values())}


def short(verdict: str) -> str:
    """A verdict phrase as one of: supported, not supported, partly, not measured. Over seeds, the most seeds' verdict;
    for L6 over seeds, the score half (what the notebook's rule decides)."""
    v = verdict.lower()
    if v.startswith(NOT_MEASURED):
        return "not measured"
    if v.startswith("score:"):
        v = v[len("score:"):].split(", for")[0].split("; speed")[0].strip()
    counts = [(int(k), w.strip()) for w, k in re.findall(r"((?:not )?supported)(?: here)? on (\d+) of \d+ seeds", v)]
    if counts:
        return max(counts)[1]
    if "partly" in v:
        return "partly"
    return "not supported" if v.startswith("not supported") else "supported" if v.startswith("supported") else v


def full_size(kind: str) -> pd.Series:
    """claim → its verdict over the full-size results files' seeds (the same files the docs' claims tables read)."""
    if kind == "freezing":
        files = [load("freezing")[0], load("freezing_size_sweep", "cpu-full")[0], load("head_drift", "cpu-full")[0]]
        got = claims.freezing_claims_over_seeds(*files).verdict
    elif kind == "layerwise":
        got = claims.layerwise_claims(load("layerwise_lr", "cpu-bf16-full")[0]).verdict
    else:
        raise ValueError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return pd.Series({c: got.get(c, NOT_MEASURED + " (the full-size runs record no gradients)") for c in KINDS[kind]}, name="at full size")


def compare(table: pd.DataFrame, kind: str) -> pd.DataFrame:
    """This run's verdicts beside the full-size ones: whether they agree and, where they do not, why."""
    full = full_size(kind)
    rows = []
    for claim in KINDS[kind]:
        here = table.verdict.get(claim, "not in this run")
        agree = short(here) == short(full[claim])
        note = "" if agree or short(full[claim]) == "not measured" else WHY.get(claim, "not explained yet: see results/verdicts.json")
        rows.append({"claim": claim, "this run": short(here), "at full size (3 seeds)": full[claim],
                     "same": "—" if short(full[claim]) == "not measured" else ("yes" if agree else "no"), "why they differ": note})
    return pd.DataFrame(rows).set_index("claim")


def record(tables: dict[str, pd.DataFrame], size: str, seed: int, notebooks: dict[str, str], taught: dict | None = None) -> dict:
    """results/verdicts.json from the claims tables of a notebook run: each claim's verdict at `size` and at full size,
    and (`taught`, from `lessons`) whether the run's scores teach the full-size lessons."""
    from .provenance import provenance

    entries = []
    for kind, table in tables.items():
        full = full_size(kind)
        for claim in KINDS[kind]:
            here = table.verdict.get(claim, "not in this run")
            entries.append({"claim": claim, "kind": kind, "default": here, "default_short": short(here), "full": full[claim],
                            "full_short": short(full[claim]), "agree": short(here) == short(full[claim])})
    out = {**provenance(size=size, seed=seed, notebooks=notebooks), "claims": entries, "lessons": taught or {}}
    PATH.write_text(json.dumps(out, indent=2))
    return out


def table() -> str:
    """The docs' table: the default size's verdicts (results/verdicts.json) against the full-size ones."""
    rec = store.read_json(PATH)
    lines = ["| claim | at the default size (notebook run) | at full size (3 seeds) | same | why they differ |", "|---|---|---|---|---|"]
    for e in rec["claims"]:
        same = "—" if e["full_short"] == "not measured" else ("yes" if e["agree"] else "no")
        lines.append(f"| {e['claim']} | {e['default_short']} | {e['full']} | {same} | {WHY.get(e['claim'], '') if same == 'no' else ''} |")
    hw = rec["hardware"]
    taught = rec.get("lessons") or {}
    if taught:
        means = ", ".join(f"{k} {v:.1f}" for k, v in taught["freezing_means"].items())
        decays = ", ".join(f"{k} {d:+.1f}" for k, d in taught["decay_minus_uniform_1e-4"].items())
        lines += ["", "| lesson | at the default size (notebook run) | holds |", "|---|---|---|",
                  f"| full fine-tuning > lower 2 frozen > lower 4 frozen > backbone frozen (mean test score) | {means} | "
                  f"{'yes' if taught['freezing_order_holds'] else 'no'} |",
                  f"| the brief's two rates far below a uniform 1e-4 | two rates − uniform 1e-4: {taught['two_rate_minus_uniform_1e-4']:+.1f} pts | "
                  f"{'yes' if taught['two_rate_far_below'] else 'no'} |",
                  f"| decay ξ ≥ 0.9 at or above a uniform 1e-4 | {decays} pts | {'yes' if taught['decay_at_or_above'] else 'no'} |"]
    return "\n".join(lines) + (f"\n\nDefault size `{rec['size']}`, seed {rec['seed']}, from the claims tables of notebooks "
                               f"{' and '.join(rec['notebooks'].values())} run by `tools/time_notebooks.py --verdicts` on {hw['cpu']} "
                               f"({hw['cpu_threads']} threads), commit `{rec['commit']}`, {rec['date'][:10]}. The full-size verdicts "
                               "come from the results files in the claims tables of results.md.")
