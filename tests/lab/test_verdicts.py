"""At the default size the notebooks' claims verdicts are set against the full-size ones: the file that records them
(results/verdicts.json), how the runs differ where they disagree (computed, never typed), the lessons read against
the seed spread, and the results files agree."""

import json
from pathlib import Path

import pandas as pd
import pytest

from mtst import claims
from mtst.lab import verdicts

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = {"freezing": "03_freezing_scenarios.ipynb", "layerwise": "04_layerwise_lr.ipynb"}


@pytest.fixture(scope="module")
def record():
    return json.loads(verdicts.PATH.read_text())


def test_the_file_holds_every_claim_at_the_default_size_beside_its_full_size_verdict(record):
    assert record["size"] == "demo" and record["commit"] and record["hardware"]["cpu"]
    assert [e["claim"] for e in record["claims"]] == [c for claims_ in verdicts.KINDS.values() for c in claims_]
    for kind in verdicts.KINDS:
        full = verdicts.full_size(kind)  # the results files as they are now: the file must not be older than they are
        for e in (e for e in record["claims"] if e["kind"] == kind):
            assert e["full"] == full[e["claim"]], e["claim"]
            assert e["default_short"] == verdicts.short(e["default"]) and e["full_short"] == verdicts.short(e["full"])


def test_where_the_runs_disagree_the_file_says_how_they_differ_from_their_own_numbers(record):
    for e in record["claims"]:
        run = record["runs"][e["kind"]]
        if e["same"] == "no":
            assert e["differ"] == verdicts.how_they_differ(e["claim"], e["kind"], run)
            assert f"{run['steps']} steps a run" in e["differ"] and f"{verdicts.full_budget(e['kind'])['steps']} steps a run" in e["differ"]
        else:
            assert e["differ"] == ""
    assert not hasattr(verdicts, "WHY")  # no typed reasons


def test_no_verdict_rolls_a_split_up(record):
    for e in record["claims"]:
        if "of 3 seeds" in e["full"] or ", not on" in e["full"]:
            assert "split" in e["full_short"] and e["same"] == "split at full size", e


def test_the_lessons_say_too_close_to_call_where_the_gap_is_inside_the_spread(record):
    assert record["lessons"], "the lessons of the default size's run"
    for e in record["lessons"]:
        if e["gap_here"] is None:
            assert e["here"] == "not in this run"
        elif abs(e["gap_here"]) <= e["spread_here"]:
            assert e["here"] == "too close to call at this size"
        else:
            assert e["here"] == ("holds" if e["gap_here"] > 0 else "reversed")
        noise, _ = verdicts.live_noise()
        assert e["spread_here"] >= round(noise, 2) - 1e-9


@pytest.mark.parametrize("kind", sorted(NOTEBOOKS))
def test_the_notebooks_set_their_claims_table_beside_the_full_size_verdicts(kind):
    nb = json.loads((ROOT / "notebooks" / NOTEBOOKS[kind]).read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    at = next(i for i, c in enumerate(cells) if "table = claims." in c)
    assert f'verdicts.compare(table, "{kind}", run_info)' in cells[at] and "verdicts.lessons(" in cells[at]
    assert any(f"answers.{kind}()" in c for c in cells[at:])  # the answers close the notebook


def test_compare_marks_what_differs_and_computes_how_the_runs_differ(monkeypatch):
    monkeypatch.setattr(verdicts, "full_size", lambda kind: pd.Series({
        "L1": "not supported on any seed (3)", "L2": verdicts.NOT_MEASURED, "L3": "supported on every seed (3)",
        "L6": "score: supported on 2 of 3 seeds, not on 1; speed: not supported on any seed (3)"}))
    monkeypatch.setattr(verdicts, "full_budget", lambda kind: {"steps": 464, "seeds": [0, 1, 2]})
    monkeypatch.setattr(verdicts, "KINDS", {"layerwise": ("L1", "L2", "L3", "L6")})
    table = pd.DataFrame({"verdict": {"L1": "not supported here (1 seed)", "L2": "supported here (1 seed)", "L3": "not supported here (1 seed)",
                                      "L6": "score: supported here (1 seed); speed: supported here (1 seed)"}})
    run = {"size": "demo", "seed": 0, "steps": 25, "examples": 400}
    out = verdicts.compare(table, "layerwise", run)
    assert out.same.tolist() == ["yes", "—", "no", "split at full size"]
    assert out.loc["L3", "how the two runs differ"] == ("this run: size `demo`, seed 0, 25 steps a run, 400 training examples per task; "
                                                       "full size: 464 steps a run, all the training data, seeds [0, 1, 2]")
    assert out.loc["L1", "how the two runs differ"] == ""


@pytest.mark.parametrize("verdict, short", [
    ("supported here on every seed (3)", "supported"),
    ("supported here on 2 of 3 seeds; not supported here on 1 of 3 seeds", "split: supported on 2 of 3 seeds"),
    ("not supported here on 2 of 3 seeds; supported here on 1 of 3 seeds", "split: supported on 1 of 3 seeds"),
    ("not supported on any seed (3)", "not supported"),
    ("supported on 1 of 3 seeds, not on 2", "split: supported on 1 of 3 seeds"),
    ("score: supported on every seed (3) — too close to call: the gap is inside the seed spread; speed: not supported on any seed (3)",
     "score: supported (too close to call); speed: not supported"),
    ("slow backbone: supported here (1 seed); every task at or above the control: not supported here (1 seed)",
     "slow backbone: supported; every task at or above the control: not supported"),
    ("not supported here: there is no vanishing gradient to mitigate", "not supported"),
    ("not measured at full size (the full-size runs record no gradients)", "not measured"),
])
def test_short_keeps_every_seed_and_every_part(verdict, short):
    assert verdicts.short(verdict) == short


def test_lessons_read_each_gap_against_the_spread(monkeypatch):
    runs = pd.Series({("uniform_1e-4", 0): 62.0, ("uniform_1e-4", 1): 63.0, ("uniform_1e-4", 2): 61.0,
                      ("two_rate", 0): 47.0, ("two_rate", 1): 48.0, ("two_rate", 2): 47.5,
                      (claims.CONTROL, 0): 63.0, (claims.CONTROL, 1): 62.0, (claims.CONTROL, 2): 63.0,
                      ("decay_0.9", 0): 64.0, ("decay_0.9", 1): 61.0, ("decay_0.9", 2): 63.5})
    runs.index.names = ["setting", "seed"]
    monkeypatch.setattr(verdicts, "_full_runs", lambda kind: runs)
    monkeypatch.setattr(verdicts, "live_noise", lambda: (5.0, "a test's noise"))
    out = {e["a"]: e for e in verdicts.lessons(scheme_means={"uniform_1e-4": 60.0, "two_rate": 50.0, claims.CONTROL: 63.0, "decay_0.9": 66.0})}
    assert out["uniform_1e-4"]["here"] == "holds" and out["uniform_1e-4"]["spread_here"] == 5.0  # +10 beyond the noise
    assert out[claims.CONTROL]["here"] == "too close to call at this size"  # +3 inside it
    assert out["decay_0.9"]["here"] == "too close to call at this size" and out["decay_0.9"]["full"].startswith("too close to call at full size")
    assert out["uniform_1e-4"]["full"].startswith("holds at full size: +14.5")
    assert [e["kind"] for e in verdicts.lessons(scheme_means={"uniform_1e-4": 60.0})] == ["layerwise"] * 3


def test_the_file_is_current_with_the_results_files(record, tmp_path, monkeypatch):
    """Re-deriving the full-size side (python -m mtst.lab.verdicts --refresh) changes nothing: the record is not older
    than the results files it was compared with."""
    copy = tmp_path / "verdicts.json"
    copy.write_text(json.dumps(record))
    monkeypatch.setattr(verdicts, "PATH", copy)
    again = verdicts.refresh()
    assert again["claims"] == record["claims"] and again["lessons"] == record["lessons"]
    assert {k: again[k] for k in ("commit", "date", "size", "runs", "means")} == {k: record[k] for k in ("commit", "date", "size", "runs", "means")}
