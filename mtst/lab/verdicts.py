"""The claims' verdicts at the notebooks' default size beside the full-size ones, and the lessons a teacher may say
aloud, each with its evidence.

Notebooks 03 and 04 end with a claims table computed from their own run (`mtst.claims`). `compare` sets each verdict
beside the full-size one (the results files, three seeds, every verdict a per-seed tally) and, where the two differ,
says how the two runs differ, computed from both runs' own numbers: their budgets, their data, and for F3 their drift.
No reason is typed. `lessons` reads each lesson's gap in the notebook's run against the seed spread: a gap inside it is
"too close to call at this size". `tools/time_notebooks.py --verdicts` records both, as the notebooks computed them
in a timed run, in results/verdicts.json; a test checks that file against the results files.
"""

from __future__ import annotations

import json
import re

import pandas as pd

from .. import claims
from . import store
from .provenance import provenance
from .store import RESULTS_DIR, load, load_with_control

PATH = RESULTS_DIR / "verdicts.json"
KINDS = {"freezing": ("F1", "F2", "F3", "F4", "F5"), "layerwise": ("L1", "L2", "L3", "L4", "L5", "L6")}
NOT_MEASURED = "not measured at full size"
# What the full-size runs lack for a claim, said where its verdict would stand.
MISSING = {"L4": "the full-size runs record no gradients; they wait for a grid that logs per-part gradient summaries (a GPU)",
           "L5": "the full-size runs record no task-gradient cosines; they wait for a grid that logs them (a GPU)"}


# --------------------------------------------------------------------------- verdicts, short


_LABEL = re.compile(r";\s+(?=(?!not supported|supported|partly)[a-z][a-z ,]*: )")


def short(verdict: str) -> str:
    """A verdict in a few words, part by part ("score: …; speed: …"), without rolling seeds up: unanimous tallies
    become "supported" or "not supported", a split says how many seeds held, a gap inside its spread says so."""
    parts = _LABEL.split(verdict)
    if len(parts) > 1:
        out = []
        for part in parts:
            label, _, rest = part.partition(": ")
            out.append(f"{label}: {_short_one(rest)}")
        return "; ".join(out)
    return _short_one(verdict)


def _short_one(verdict: str) -> str:
    v = verdict.lower()
    close = " (too close to call)" if "too close to call" in v else ""
    if v.startswith(("not measured", NOT_MEASURED)):
        return "not measured"
    if "on every seed" in v:
        return ("not supported" if v.startswith("not supported") else "supported") + close
    if "on any seed" in v:
        return "not supported" + close
    held = re.search(r"supported(?: here)? on (\d+) of (\d+) seeds", v)
    if held and not v.startswith("not supported"):
        return f"split: supported on {held.group(1)} of {held.group(2)} seeds" + close
    if held:  # "not supported here on 2 of 3 seeds; supported here on 1 of 3 seeds"
        yes = re.search(r"; supported(?: here)? on (\d+) of (\d+) seeds", v)
        return f"split: supported on {yes.group(1) if yes else 0} of {held.group(2)} seeds" + close
    if "partly" in v:
        return "partly" + close
    return ("not supported" if v.startswith("not supported") else "supported" if v.startswith("supported") else v) + close


def _unanimous(s: str) -> bool:
    return "split" not in s and "too close" not in s and "not measured" not in s


# --------------------------------------------------------------------------- the full-size side


def full_size(kind: str) -> pd.Series:
    """claim → its verdict over the full-size results files' seeds (the same files the docs' claims tables read)."""
    if kind == "freezing":
        files = [load("freezing")[0], load("freezing_size_sweep", "cpu-full")[0], load("head_drift", "cpu-full")[0]]
        got = claims.freezing_claims_over_seeds(*files).verdict
    elif kind == "layerwise":
        got = claims.layerwise_claims(load_with_control("layerwise_lr", "cpu-bf16-full")[0]).verdict
    else:
        raise ValueError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return pd.Series({c: got[c] if c in got and got[c] != "not measured" else f"{NOT_MEASURED} ({MISSING.get(c, 'no control run yet')})"
                      for c in KINDS[kind]}, name="at full size")


def full_budget(kind: str) -> dict:
    """The full-size runs' budget: steps a run, seeds, and (F3) the frozen head's final drift per seed, in points."""
    if kind == "freezing":
        df = load("freezing")[0]
        drift = load("head_drift", "cpu-full")[0]
        d = drift[(drift.setting == "encoder_trains") & drift.metric.str.startswith("score@")]
        d = d.assign(step=d.metric.str[6:].astype(int))
        first, last = d[d.step == d.step.min()].set_index("seed").value, d[d.step == d.step.max()].set_index("seed").value
        return {"steps": int(df[df.setting == "e_full_finetune"].steps.iloc[0]), "seeds": sorted(set(df.seed)),
                "drift_pts": ((last - first) * 100).round(1).tolist(), "drift_steps": int(d.step.max())}
    df = load_with_control("layerwise_lr", "cpu-bf16-full")[0]
    return {"steps": int(df[df.setting == "decay_0.9"].steps.iloc[0]), "seeds": sorted(set(df.seed))}


def how_they_differ(claim: str, kind: str, run: dict | None) -> str:
    """What differs between the notebook's run and the full-size runs, from both runs' own numbers (never a typed reason)."""
    if not run:
        return "the notebook's run did not record its budget"
    full = full_budget(kind)
    text = (f"this run: size `{run['size']}`, seed {run['seed']}, {run['steps']} steps a run, {run['examples']} training examples "
            f"per task; full size: {full['steps']} steps a run, all the training data, seeds {full['seeds']}")
    if claim == "F3" and "drift_pts" in run:
        text += (f"; the frozen head's task moved {run['drift_pts']:+.1f} pts over {run['drift_steps']} steps here, "
                 f"{', '.join(f'{x:+.1f}' for x in full['drift_pts'])} pts over {full['drift_steps']} steps at full size")
    return text


def compare(table: pd.DataFrame, kind: str, run: dict | None = None) -> pd.DataFrame:
    """This run's verdicts beside the full-size ones: whether they agree and, where they do not, how the runs differ.
    `run`: the notebook's budget ({"size", "seed", "steps", "examples"}, and for F3 "drift_pts", "drift_steps")."""
    full = full_size(kind)
    rows = []
    for claim in KINDS[kind]:
        here, there = short(table.verdict.get(claim, "not in this run")), short(full[claim])
        if "not measured" in there:
            same = "—"
        elif not _unanimous(there):
            same = "split at full size"
        else:
            same = "yes" if here == there else "no"
        rows.append({"claim": claim, "this run (1 seed)": here, "at full size": full[claim], "same": same,
                     "how the two runs differ": how_they_differ(claim, kind, run) if same == "no" else ""})
    return pd.DataFrame(rows).set_index("claim")


# --------------------------------------------------------------------------- lessons


# (kind, a, b, what it says): the lesson is that a scores above b, in mean test score over the three tasks.
LESSONS = (
    ("freezing", "e_full_finetune", "d_lower2_frozen", "full fine-tuning above the lower 2 layers frozen"),
    ("freezing", "d_lower2_frozen", "d_lower4_frozen", "the lower 2 layers frozen above the lower 4"),
    ("freezing", "d_lower4_frozen", "b_backbone_frozen", "the lower 4 layers frozen above the whole backbone"),
    ("layerwise", "uniform_1e-4", "two_rate", "a uniform 1e-4 above the brief's two rates (1e-5 encoder, 1e-4 heads)"),
    ("layerwise", claims.CONTROL, "uniform_1e-4", "heads at 1e-3 above heads at 1e-4, the encoder at a uniform 1e-4"),
    ("layerwise", "decay_0.9", claims.CONTROL, "layer-wise decay ξ=0.9 above its control (decay alone, heads 1e-3 in both)"),
)


def _full_runs(kind: str) -> pd.Series:
    """Each full-size run's mean test score over the tasks (%), by (setting, seed)."""
    df = load("freezing")[0] if kind == "freezing" else load_with_control("layerwise_lr", "cpu-bf16-full")[0]
    return claims.score_runs(df)["mean"]


def live_noise() -> tuple[float, str]:
    """The largest run-to-run change measured at the default size: one pass of full fine-tuning with random against
    length-bucketed batches (results/bench_bucket_cpu.json), in mean test score points, and where it comes from."""
    r = store.read_json(RESULTS_DIR / "bench_bucket_cpu.json")
    means = {k: 100 * sum(v["test_scores"].values()) / len(v["test_scores"]) for k, v in r["runs"].items()}
    return abs(means["random"] - means["bucketed"]), (f"one pass of full fine-tuning with random against length-bucketed batches "
                                                      f"(a change of batch order and composition, not of seed) moved the mean test "
                                                      f"score by {abs(means['random'] - means['bucketed']):.1f} pts at size `{r['size']}` "
                                                      f"(results/bench_bucket_cpu.json, commit {r['commit']})")


def lessons(freezing_means: dict[str, float] | None = None, scheme_means: dict[str, float] | None = None) -> list[dict]:
    """Each lesson's gap in the notebook's run (one seed) and at full size (per seed), and what may be said of it:
    a gap holds only where it is larger than the seed spread; otherwise it is too close to call. The run's spread is
    the larger of the full-size seed spread of the same comparison and the batch-order change measured at this size."""
    noise, _ = live_noise()
    means = {k: v for k, v in (("freezing", freezing_means), ("layerwise", scheme_means)) if v is not None}
    runs = {kind: _full_runs(kind) for kind in means}
    out = []
    for kind, a, b, what in (x for x in LESSONS if x[0] in means):
        r = runs[kind]
        have = set(r.index.get_level_values("setting"))
        d = (r[a] - r[b]).dropna() if {a, b} <= have else pd.Series(dtype=float)
        spread_full = float(d.std(ddof=1)) if len(d) > 1 else float("nan")
        if len(d) == 0:
            full = "not measured at full size"
        elif len(d) == 1:
            full = f"one seed at full size so far, spread not known: {claims.paired_gap(d)}"
        elif claims.too_close(d):
            full = f"too close to call at full size: {claims.paired_gap(d)}"
        else:
            full = f"{'holds' if d.mean() > 0 else 'reversed'} at full size: {claims.paired_gap(d)}"
        live_gap = means[kind][a] - means[kind][b] if a in means[kind] and b in means[kind] else None
        spread = max(noise, spread_full if spread_full == spread_full else 0.0)
        if live_gap is None:
            live = "not in this run"
        elif abs(live_gap) <= spread:
            live = "too close to call at this size"
        else:
            live = "holds" if live_gap > 0 else "reversed"
        out.append({"lesson": what, "kind": kind, "a": a, "b": b, "gap_here": None if live_gap is None else round(live_gap, 2),
                    "spread_here": round(spread, 2), "here": live, "gaps_full": [round(x, 2) for x in d.tolist()], "full": full})
    return out


# --------------------------------------------------------------------------- the record, and the docs' table


def record(tables: dict[str, pd.DataFrame], size: str, seed: int, notebooks: dict[str, str], taught: list[dict] | None = None,
           runs: dict[str, dict] | None = None, means: dict[str, dict] | None = None) -> dict:
    """results/verdicts.json from the claims tables of a notebook run: each claim's verdict at `size` and at full size,
    how the runs differ where they disagree, and (`taught`, from `lessons` on `means`) each lesson's evidence."""

    out = {**provenance(size=size, seed=seed, notebooks=notebooks), "runs": runs or {}, "means": means or {},
           "default_verdicts": {kind: table.verdict.to_dict() for kind, table in tables.items()}}
    return _write(out, taught)


def _write(out: dict, taught: list[dict] | None) -> dict:
    entries = []
    for kind, verdicts_ in out["default_verdicts"].items():
        table = pd.DataFrame({"verdict": verdicts_})
        cmp = compare(table, kind, out["runs"].get(kind))
        for claim in KINDS[kind]:
            here = table.verdict.get(claim, "not in this run")
            entries.append({"claim": claim, "kind": kind, "default": here, "default_short": short(here), "full": cmp.loc[claim, "at full size"],
                            "full_short": short(cmp.loc[claim, "at full size"]), "same": cmp.loc[claim, "same"],
                            "differ": cmp.loc[claim, "how the two runs differ"]})
    out = {**out, "claims": entries, "lessons": taught or []}
    PATH.write_text(json.dumps(out, indent=2))
    return out


def refresh() -> dict:
    """results/verdicts.json again after the full-size results files changed (a control's later seeds, say): the notebook
    run's own verdicts, means and budgets stay as measured; the full-size side, the comparison and the lessons are
    derived anew from the results files. The provenance stays that of the notebook run."""
    rec = store.read_json(PATH)
    means = rec.get("means") or {}
    taught = lessons(means.get("freezing"), means.get("layerwise")) if means else rec.get("lessons")
    keep = {k: v for k, v in rec.items() if k not in ("claims", "lessons")}
    return _write(keep, taught)


def table() -> str:
    """The docs' table: the default size's verdicts (results/verdicts.json) against the full-size ones, then the lessons."""
    rec = store.read_json(PATH)
    lines = ["| claim | at the default size (notebook run, 1 seed) | at full size | same | how the two runs differ |", "|---|---|---|---|---|"]
    lines += [f"| {e['claim']} | {e['default_short']} | {e['full']} | {e['same']} | {e['differ']} |" for e in rec["claims"]]
    if rec.get("lessons"):
        _, where = live_noise()
        lines += ["", "| lesson | this run (1 seed): gap, spread | here | at full size, paired by seed |", "|---|---|---|---|"]
        for e in rec["lessons"]:
            gap = "—" if e["gap_here"] is None else f"{e['gap_here']:+.1f} pts, spread {e['spread_here']:.1f}"
            lines.append(f"| {e['lesson']} | {gap} | {e['here']} | {e['full']} |")
        lines += ["", f"A lesson holds in the notebook's run only where its gap is larger than the spread: the larger of the same "
                      f"comparison's seed spread at full size and the largest run-to-run change measured at this size ({where})."]
    hw = rec["hardware"]
    return "\n".join(lines) + (f"\n\nDefault size `{rec['size']}`, seed {rec['seed']}, from the claims tables of notebooks "
                               f"{' and '.join(rec['notebooks'].values())} run by `tools/time_notebooks.py --verdicts` on {hw['cpu']} "
                               f"({hw['cpu_threads']} threads), commit `{rec['commit']}`, {rec['date'][:10]}. The full-size verdicts "
                               "come from the results files in the claims tables of results.md.")


if __name__ == "__main__":  # python -m mtst.lab.verdicts --refresh
    import sys

    if sys.argv[1:] != ["--refresh"]:
        raise SystemExit("usage: python -m mtst.lab.verdicts --refresh   (re-derive results/verdicts.json's full-size side from results/)")
    rec = refresh()
    print(f"refreshed {PATH.name}: " + ", ".join(f"{e['claim']} {e['same']}" for e in rec["claims"]))
