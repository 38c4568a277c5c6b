"""The claims over a results file compare schemes seed by seed, and their verdicts say on how many seeds a claim held."""

import pandas as pd
import pytest

from mtst import claims
from mtst.lab import store, tables

TASK_SCORES = {  # setting: {seed: (sentiment, topic, ner)} in %
    "uniform_1e-5": {0: (78, 60, 0), 1: (78, 61, 1), 2: (79, 60, 0)},
    "uniform_1e-4": {0: (84, 80, 26), 1: (83, 79, 20), 2: (84, 80, 23)},
    "two_rate": {0: (78, 65, 0), 1: (78, 64, 0), 2: (79, 65, 0)},
    "decay_0.95": {0: (84, 80, 32), 1: (82, 79, 20), 2: (85, 80, 29)},  # below uniform 1e-4 on seed 1
    "decay_0.9": {0: (84, 80, 32), 1: (83, 80, 26)},  # seed 2 not run yet
    "too_high_1e-3": {0: (77, 76, 16), 1: (76, 75, 16), 2: (77, 76, 15)},
    "decay_0.9+ner_head×10": {0: (84, 80, 45), 1: (83, 80, 41)},
    "uniform_1e-4_heads_1e-3": {0: (84, 80, 30), 1: (83, 80, 27), 2: (84, 80, 28)},  # the control: decay_0.9 less the decay
}


def _frame(scores=TASK_SCORES, steps=None) -> pd.DataFrame:
    steps = steps or {}
    rows = []
    for setting, by_seed in scores.items():
        for seed, values in by_seed.items():
            rows += [{"setting": setting, "seed": seed, "task": t, "metric": "score", "value": v / 100}
                     for t, v in zip(("sentiment", "topic", "ner"), values)]
            rows += [{"setting": setting, "seed": seed, "task": "*", "metric": m, "value": v}
                     for m, v in (("forgetting:embeddings", 0.0), ("forgetting:layer_0", {"too_high_1e-3": 0.2, "decay_0.9": 0.004}.get(setting, 0.01)),
                                  ("steps_to_95pct_own_best", steps.get(setting, 522)))]
    return pd.DataFrame(rows).assign(experiment="layerwise_lr")


def test_each_claim_pairs_schemes_by_seed_over_the_seeds_both_ran():
    table = claims.layerwise_claims(_frame(steps={"decay_0.9": 348}))
    l1, l3, l6 = (table.loc[k, "measured, paired by seed"] for k in ("L1", "L3", "L6"))
    # two-rate − uniform 1e-4 in mean score: (47.67 − 63.33), (47.33 − 60.67), (48 − 62.33) → −15.67, −13.33, −14.33
    assert "two-rate − uniform_1e-4: -14.4 ± 1.2 pts (higher on 0 of 3 seeds)" in l1
    assert "uniform_1e-5 0.5, uniform_1e-4 0.5, too_high_1e-3 10.0" in l1  # forgetting, embeddings and layer 0 averaged
    assert table.loc["L1", "verdict"] == "not supported on any seed (3)"
    # the boosted scheme ran seeds 0 and 1 only: NER +13 and +15 there
    assert "ner +14.0 ± 1.4 pts (higher on 2 of 2 seeds); sentiment +0.0 ± 0.0 pts (higher on 0 of 2 seeds)" in l3
    assert table.loc["L3", "verdict"] == "supported on every seed (2)"
    # decay alone: decay_0.9 − the control, seeds 0 and 1: (65.33 − 64.67), (63 − 63.33) → +0.67, −0.33
    assert "decay_0.9 − uniform_1e-4_heads_1e-3 (decay alone): +0.2 ± 0.7 pts (higher on 1 of 2 seeds)" in l6
    assert "the heads' rate alone, uniform_1e-4_heads_1e-3 − uniform_1e-4: +1.9 ± 0.7 pts (higher on 3 of 3 seeds)" in l6
    assert "uniform_1e-4 522, uniform_1e-4_heads_1e-3 522, decay_0.95 522, decay_0.9 348" in l6
    assert table.loc["L6", "verdict"] == ("score: supported on 1 of 2 seeds, not on 1 — too close to call: the gap is inside the seed "
                                         "spread; speed: supported on every seed (2)")
    l2 = table.loc["L2", "measured, paired by seed"]
    assert "forgetting of the embeddings and layer 0 -0.3 pts (lower on 2 of 2 seeds)" in l2 and "ner +0.5 ± 2.1 pts (higher on 1 of 2 seeds)" in l2
    assert table.loc["L2", "verdict"] == ("slow backbone: supported on every seed (2); every task at or above the control: "
                                         "supported on 1 of 2 seeds, not on 1")  # NER −1 on seed 1


def test_without_the_control_decay_is_not_credited():
    scores = {k: v for k, v in TASK_SCORES.items() if k != "uniform_1e-4_heads_1e-3"}
    table = claims.layerwise_claims(_frame(scores))
    assert table.loc["L6", "verdict"] == table.loc["L2", "verdict"] == "not measured"
    assert "cannot be told from the heads' higher rate" in table.loc["L6", "measured, paired by seed"]


def test_a_claim_that_holds_on_some_seeds_says_how_many():
    scores = {**TASK_SCORES, "decay_0.9+ner_head×10": {0: (84, 80, 45), 1: (80, 80, 27)}}  # seed 1: sentiment −3 > NER +1
    table = claims.layerwise_claims(_frame(scores))
    assert table.loc["L3", "verdict"] == "supported on 1 of 2 seeds, not on 1"
    assert table.loc["L6", "verdict"].endswith("speed: not supported on any seed (2)")  # 522 steps everywhere
    one = claims.layerwise_claims(_frame({k: {0: v[0]} for k, v in TASK_SCORES.items()}))
    assert "two-rate − uniform_1e-4: -15.7 pts (higher on 0 of 1 seed)" in one.loc["L1", "measured, paired by seed"]
    assert one.loc["L3", "verdict"] == "supported here (1 seed)"


@pytest.mark.parametrize("tag", [None, "cpu-bf16-full"])
def test_the_readme_claims_table_reads_the_same_runs_as_the_scores_table_above_it(tag):
    df, prov = store.load("layerwise_lr", tag)
    md = tables.table_layerwise_claims(tag)
    assert md.splitlines()[0] == "| claim | the brief says | measured, paired by seed | verdict |"
    assert [line.split(" | ")[0] for line in md.splitlines()[2:6]] == ["| L1", "| L2", "| L3", "| L6"]
    assert f"(seeds {prov['seeds']};" in md
    seeds = df[df.metric == "score"].groupby("setting").seed.apply(set)
    both = len(seeds["two_rate"] & seeds["uniform_1e-4"])
    l1 = md.splitlines()[2]
    assert "two-rate − uniform_1e-4: " in l1 and f" of {both} seed" in l1.split("two-rate − uniform_1e-5")[0]


def _rows(experiment: str, setting: str, seed: int, scores: dict, wall: float = 100.0) -> list[dict]:
    return [{"experiment": experiment, "setting": setting, "seed": seed, "task": t, "metric": m, "value": v, "steps": 10, "wall_time_s": wall}
            for t, m, v in [*((t, "score", v / 100) for t, v in scores.items()), ("*", "trainable_params", 1000.0), ("*", "optimizer_state_mib", 1.0)]]


def _freezing_frames():
    """Two seeds: full fine-tuning is best on seed 0, lower-2-frozen on seed 1; frozen heads lose at every size."""
    grid, sweep, drift = [], [], []
    for seed in (0, 1):
        d2 = 70 if seed == 1 else 60
        for setting, mean in (("a_feature_extractor", 40), ("b_backbone_frozen", 50), ("d_lower4_frozen", 58), ("d_lower2_frozen", d2),
                              ("e_full_finetune", 65), ("f_gradual_unfreezing", 55)):
            grid += _rows("freezing", setting, seed, dict.fromkeys(("sentiment", "topic", "ner"), mean), wall=100.0 if setting == "e_full_finetune" else 50.0)
        for n, (b, a10, e) in {"50": (30, 35, 40), "1000": (40, 45, 60), "all": (50, 55, 70)}.items():  # "1000" < "50" as text
            for setting, v in (("b_backbone_frozen", b), ("a_feature_extractor_10x", a10), ("e_full_finetune", e)):
                sweep += _rows("freezing_size_sweep", f"{setting}@{n}", seed, dict.fromkeys(("sentiment", "topic", "ner"), v))
        for setting, path in (("encoder_trains", ((85, 83, 84.5), (85, 82, 81.5))[seed]), ("control_encoder_frozen", (85, 85, 85))):
            drift += [{"experiment": "head_drift", "setting": setting, "seed": seed, "task": "sentiment", "metric": f"score@{10 * i}",
                       "value": v / 100, "steps": 10 * i, "wall_time_s": 1.0} for i, v in enumerate(path)]
    return pd.DataFrame(grid), pd.DataFrame(sweep), pd.DataFrame(drift)


def test_the_freezing_claims_over_seeds_measure_the_means_and_count_the_seeds_each_claim_held_on():
    table = claims.freezing_claims_over_seeds(*_freezing_frames())
    measured = table["measured, mean over seeds"]
    assert measured["F1"].startswith("50 examples per task: frozen encoder 35.0 (best frozen: a_feature_extractor_10x) vs full fine-tuning 40.0")
    assert measured["F2"] == "1000 examples: best frozen − full = -15.0 pts; with all: -15.0 pts"
    # the mean path over seeds is (85, 82.5, 83): −2.0 at the end, −2.5 at its lowest
    assert "moved -2.0 pts (lowest -2.5)" in measured["F3"] and "bit-identical" not in measured["F3"]  # results files do not record it
    assert "k=0: 65.0, k=2: 65.0, k=4: 58.0, k=6: 50.0; gradual unfreezing 55.0" in measured["F4"]
    assert measured["F5"] == "best non-full scenario d_lower2_frozen: 100% of full fine-tuning's score at 50% of its wall time and 100% of its optimizer state"
    assert table.loc["F5", "verdict"] == "not supported here on 1 of 2 seeds; supported here on 1 of 2 seeds"  # 60 / 65 on seed 0
    assert table.loc["F1", "verdict"] == table.loc["F2", "verdict"] == "not supported here on every seed (2)"
    assert table.loc["F3", "verdict"] == "supported here on 1 of 2 seeds; not supported here on 1 of 2 seeds"  # ends −0.5 and −3.5
    assert table.loc["F4", "verdict"] == "not supported here on 1 of 2 seeds; supported here on 1 of 2 seeds"
    md = claims.markdown(table)
    assert md.splitlines()[0] == "| claim | the brief says | measured, mean over seeds | verdict |" and md.count("\n| F") == 5


def test_gradient_records_give_l4_and_l5_seed_by_seed():
    extra = []
    for seed in (0, 1):
        for part, g in (("embeddings", 0.4), ("layer_0", 0.6), ("layer_5", 1.0)):
            extra.append({"setting": "uniform_1e-4", "seed": seed, "task": "*", "metric": f"grad_norm:{part}", "value": g})
        for setting, share in (("decay_0.9", 0.25 if seed == 0 else 0.5), ("uniform_1e-4_heads_1e-3", 0.5)):
            extra.append({"setting": setting, "seed": seed, "task": "*", "metric": "conflict_share", "value": share})
    table = claims.layerwise_claims(pd.concat([_frame(), pd.DataFrame(extra).assign(experiment="layerwise_lr")]))
    assert list(table.index) == ["L1", "L2", "L3", "L4", "L5", "L6"]
    assert "0.50× layer_5's (per seed: 0.50, 0.50)" in table.loc["L4", "measured, paired by seed"]
    assert table.loc["L4", "verdict"] == "not supported on any seed (2)"  # no vanishing gradient: nothing to mitigate
    assert "-12 pts of steps (lower on 1 of 2 seeds)" in table.loc["L5", "measured, paired by seed"]
    assert table.loc["L5", "verdict"] == "supported on 1 of 2 seeds, not on 1"
