"""At the default size the notebooks' claims verdicts are set against the full-size ones: the file that records them
(results/verdicts.json), the reasons the notebooks show where they differ, and the results files agree."""

import json
from pathlib import Path

import pandas as pd
import pytest

from mtst.lab import verdicts

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {"freezing": "03_freezing_scenarios.ipynb", "layerwise": "04_layerwise_lr.ipynb"}


@pytest.fixture(scope="module")
def record():
    return json.loads(verdicts.PATH.read_text())


def test_the_file_holds_every_claim_at_the_default_size_beside_its_full_size_verdict(record):
    assert record["size"] == "demo" and record["commit"] and record["hardware"]["cpu"]
    assert [e["claim"] for e in record["claims"]] == [c for claims in verdicts.KINDS.values() for c in claims]
    for kind in verdicts.KINDS:
        full = verdicts.full_size(kind)  # the results files as they are now: the file must not be older than they are
        for e in (e for e in record["claims"] if e["kind"] == kind):
            assert e["full"] == full[e["claim"]], e["claim"]
            assert e["default_short"] == verdicts.short(e["default"]) and e["full_short"] == verdicts.short(e["full"])
            assert e["agree"] == (e["default_short"] == e["full_short"])


def test_every_difference_has_its_reason_and_only_the_differences_do(record):
    differ = {e["claim"] for e in record["claims"] if not e["agree"] and e["full_short"] != "not measured"}
    assert differ == set(verdicts.WHY), "a reason is missing, or one is left over for a claim that now agrees"


@pytest.mark.parametrize("kind", sorted(NOTEBOOKS))
def test_the_notebooks_set_their_claims_table_beside_the_full_size_verdicts(kind):
    nb = json.loads((ROOT / "notebooks" / NOTEBOOKS[kind]).read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    at = next(i for i, c in enumerate(cells) if "table = claims." in c)
    assert f'verdicts.compare(table, "{kind}")' in cells[at]


def test_compare_marks_what_differs_and_says_why(monkeypatch):
    monkeypatch.setattr(verdicts, "full_size", lambda kind: pd.Series({"L1": "not supported on any seed (3)", "L2": verdicts.NOT_MEASURED,
                                                                       "L3": "supported on every seed (3)"}))
    monkeypatch.setattr(verdicts, "KINDS", {"layerwise": ("L1", "L2", "L3")})
    monkeypatch.setattr(verdicts, "WHY", {"L3": "the boost needs more steps than this run has"})
    table = pd.DataFrame({"verdict": {"L1": "not supported here", "L2": "supported here", "L3": "not supported here"}})
    out = verdicts.compare(table, "layerwise")
    assert out.same.tolist() == ["yes", "—", "no"]
    assert out.loc["L3", "why they differ"] == "the boost needs more steps than this run has" and out.loc["L1", "why they differ"] == ""


@pytest.mark.parametrize("verdict, short", [
    ("supported here on every seed (3)", "supported"),
    ("supported here on 2 of 3 seeds; not supported here on 1 of 3 seeds", "supported"),
    ("not supported on any seed (3)", "not supported"),
    ("partly: on 1 of 3 seeds", "partly"),
    ("score: supported on every seed (3), for the best decay (decay_0.95); speed: not supported on any seed (3)", "supported"),
    ("not supported here: there is no vanishing gradient to mitigate", "not supported"),
    ("partly", "partly"),
])
def test_short_reads_one_run_and_a_tally_over_seeds(verdict, short):
    assert verdicts.short(verdict) == short


def test_the_default_size_teaches_the_full_size_lessons(record):
    """The notebooks' own run at the default size, as recorded: the freezing scenarios in the full-size order, the
    brief's two rates far below a uniform 1e-4, and decay ξ ≥ 0.9 at or above it."""
    taught = record["lessons"]
    assert taught["freezing_order_holds"], taught["freezing_means"]
    assert taught["two_rate_far_below"], taught["two_rate_minus_uniform_1e-4"]
    assert taught["decay_at_or_above"], taught["decay_minus_uniform_1e-4"]


def test_lessons_reads_the_order_and_the_gaps():
    means = {"e_full_finetune": 40.0, "d_lower2_frozen": 41.0, "d_lower4_frozen": 35.0, "b_backbone_frozen": 20.0}
    schemes = {"uniform_1e-4": 30.0, "two_rate": 21.0, "decay_0.9": 37.0, "decay_0.8": 25.0, "decay_0.9+ner_head×10": 44.0}
    taught = verdicts.lessons(means, schemes)
    assert not taught["freezing_order_holds"]  # d2 above e
    assert taught["two_rate_far_below"] and taught["two_rate_minus_uniform_1e-4"] == -9.0
    assert taught["decay_minus_uniform_1e-4"] == {"decay_0.9": 7.0}  # ξ ≥ 0.9 only, and not the boosted head
    assert taught["decay_at_or_above"]
