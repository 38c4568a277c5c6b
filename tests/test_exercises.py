"""The exercises' checks: right, close or wrong from what the learner ran, with a reason computed from it; a bad
answer or a missing input is refused with the fix; every exercise is in its notebook and has a solution."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import mtst
from mtst.exercises import EXERCISES, check, entity_counts

ROOT = Path(__file__).resolve().parent.parent


def test_counts_and_choices_are_read_from_the_data_not_typed():
    n = len(mtst.load_task("topic", "train", "full"))
    assert check("00.1", n).right and check("00.1", n - 50).verdict == "close" and check("00.1", n // 2).verdict == "wrong"
    assert f"{n:,}" in check("00.1", 3).why
    counts = entity_counts(mtst.load_task("ner", "train", "ci"))
    rarest, common = counts.index[0], counts.index[-1]
    assert check("00.2", rarest, size="ci").right and check("00.2", f"B-{rarest.upper()}", size="ci").right
    wrong = check("00.2", common, size="ci")
    assert wrong.verdict == "wrong" and f"{common} has {counts[common]}" in wrong.why
    with pytest.raises(ValueError, match="not an entity type here: pass one of"):
        check("00.2", "planet", size="ci")


def test_the_decay_ratio_is_read_from_the_models_depth(model_for):
    model = model_for({"sentiment": mtst.load_task("sentiment", "train", "ci").subset(8)})
    ratio = (1 / 0.65) ** 6
    assert check("04.1", ratio, model=model).right and "(1/0.65)^6" in check("04.1", ratio, model=model).why
    assert check("04.1", ratio * 1.05, model=model).verdict == "close"
    assert check("04.1", 1 / ratio, model=model).verdict == "close"  # the share, not "how many times lower"
    assert check("04.1", 0.65 * 6, model=model).verdict == "wrong"
    with pytest.raises(ValueError, match="pass model=model"):
        check("04.1", ratio)
    with pytest.raises(TypeError, match="pass it as a number"):
        check("04.1", "thirteen", model=model)


def test_which_parts_changed_is_judged_against_the_run_with_each_parts_reason():
    report = pd.DataFrame({"part": ["embeddings", "layer_5", "head:topic", "head:ner"], "trainable": [True, False, True, True],
                           "grad_norm": [1.0, 0.0, 0.0, 2.0], "changed_fraction": [0.9, 0.0, 0.0, 1.0]})
    assert check("03.1", ["embeddings", "head:ner"], report=report).right
    wrong = check("03.1", ["embeddings", "layer_5", "head:topic", "head:ner"], report=report)
    assert wrong.verdict == "wrong" and "layer_5 did not change: it is frozen" in wrong.why
    assert "head:topic did not change: trainable, but no gradient reached it" in wrong.why
    assert "head:ner changed (100% of its weights)" in check("03.1", ["embeddings"], report=report).why
    with pytest.raises(ValueError, match="not parts of this model"):
        check("03.1", ["layer_9"], report=report)


def test_the_most_conflicting_pair_comes_from_the_runs_table():
    table = pd.DataFrame({"pair": ["sentiment·topic", "sentiment·ner", "topic·ner"], "conflict_share": [0.5, 0.5, 0.0],
                          "mean_cosine": [0.01, -0.02, 0.2], "steps": [2, 2, 2]})
    assert check("05.3", "ner·sentiment", conflict=table).right and check("05.3", ("sentiment", "ner"), conflict=table).right
    assert check("05.3", "sentiment-topic", conflict=table).verdict == "close"  # the same share, a higher cosine
    assert check("05.3", "topic / ner", conflict=table).verdict == "wrong"
    with pytest.raises(ValueError, match="not a task pair here"):
        check("05.3", "topic·topic", conflict=table)


def test_a_saved_model_should_give_the_same_logits():
    assert check("02.3", 0.0).right and check("02.3", 3e-4).verdict == "close" and check("02.3", 0.5).verdict == "wrong"


def test_open_exercises_and_unknown_ids_point_to_the_fix():
    with pytest.raises(ValueError, match="no single answer.*notebooks/solutions/02_solutions.ipynb"):
        check("02.1", "topic went down")
    with pytest.raises(ValueError, match="no exercise '9.9': the exercises are 00.1"):
        check("9.9", 1)
    table = mtst.exercises.exercises_table("04")
    assert list(table.index) == ["04.1", "04.2", "04.3"] and table.loc["04.1", "check"] == "check(…, model=…)"


def test_every_exercise_is_asked_in_its_notebook_and_solved_in_its_solutions_notebook():
    for ex_id, ex in EXERCISES.items():
        nb = json.loads((ROOT / "notebooks" / f"{next(p.stem for p in (ROOT / 'notebooks').glob(ex.notebook + '_*.ipynb'))}.ipynb").read_text())
        text = next("".join(c["source"]) for c in nb["cells"] if "## Exercises" in "".join(c["source"]))
        exercises = text[text.index("## Exercises"):]
        number = ex_id.split(".")[1]
        assert re.search(rf"^{number}\. ", exercises, re.M), f"{ex_id} is not asked in notebook {ex.notebook}"
        if ex.checker is not None:
            assert f'check("{ex_id}"' in exercises, f"notebook {ex.notebook} does not say how to check {ex_id}"
        solutions = json.loads((ROOT / ex.solution).read_text())
        assert any("".join(c["source"]).startswith(f"## {ex_id} ") for c in solutions["cells"]), f"no solution to {ex_id}"
        assert f"`solutions/{ex.notebook}_solutions.ipynb`" in exercises, f"notebook {ex.notebook} does not link its solutions"
