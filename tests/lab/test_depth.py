import pandas as pd

from mtst.lab import depth


def _rows(experiment, scores):  # {(setting, seed): mean score in %} → results rows, the same score on every task
    return pd.DataFrame([{"experiment": experiment, "setting": s, "seed": seed, "task": t, "metric": "score", "value": v / 100, "steps": 10,
                          "wall_time_s": 1.0} for (s, seed), v in scores.items() for t in ("sentiment", "topic", "ner")])


PROV = {"size": "demo", "seeds": [0, 1, 2], "hardware": {"cpu": "test", "cpu_threads": 2, "torch": "x"}, "commit": "abc", "date": "2026-12-07",
        "wall_time_s": 60.0, "notes": ""}


def test_depth_effects_are_read_seed_by_seed(monkeypatch):
    deep = _rows("freezing", {**{("e_full_finetune", s): 60 + s for s in range(3)}, **{("d_lower6_frozen", s): 58 + s for s in range(3)},
                              **{("b_backbone_frozen", s): v for s, v in enumerate((61, 59, 62))}})
    rates = _rows("layerwise_lr", {**{("decay_0.9", s): 50 + s for s in range(3)}, **{("uniform_1e-4_heads_1e-3", s): v for s, v in enumerate((49, 52, 51))}})
    files = {("freezing", "all-mpnet-base-v2"): (deep, PROV), ("layerwise_lr", "all-mpnet-base-v2"): (rates, PROV)}
    monkeypatch.setattr(depth, "_runs", lambda experiment, name: files.get((experiment, name)))
    eff = depth.freezing_effects("all-mpnet-base-v2")
    assert list(eff) == ["d_lower6_frozen", "b_backbone_frozen"]  # ordered by k at depth 12
    assert eff["d_lower6_frozen"].round(6).tolist() == [-2.0, -2.0, -2.0]
    text = depth.reading()
    assert "freezing the lower 6 of 12 layers (50%) against full fine-tuning: below on every seed, -2.0" in text
    assert "freezing the lower 12 of 12 layers (100%) against full fine-tuning: too close to call" in text  # +1, −1, +0: inside the spread
    assert "decay ξ=0.9 (heads at 1e-3 on both sides): too close to call" in text  # +1, −1, +1
    assert "all-MiniLM-L6-v2" not in text  # no runs, no sentence
    table = depth.freezing_table()
    assert "| all-MiniLM-L6-v2 | not run yet |" in table and "| all-mpnet-base-v2 | `d_lower6_frozen` | 6 of 12 | 59.0 ± 1.0 (3 seeds) |" in table
