"""The logic behind the freeze panel: trials that start from the same weights, score before and after, and refuse
what would teach nothing."""

import warnings

import pytest
import torch

import mtst
from mtst.panels import FreezePlayground, RatePlayground

warnings.filterwarnings("ignore", message=".*truncated")


@pytest.fixture(scope="module")
def data():
    return {t: mtst.load_task(t, "train", "ci").subset(24) for t in ("sentiment", "ner")}


@pytest.fixture(scope="module")
def val():
    return {t: mtst.load_task(t, "validation", "ci").subset(16) for t in ("sentiment", "ner")}


def test_trials_start_from_the_same_weights_and_sit_side_by_side(model_for, data, val):
    model = model_for(data)
    playground = FreezePlayground(model, data, seed=0, validation=val)
    playground.train_steps(2)  # changes the model itself; trials still start where the playground began
    toggled = {k: v.clone() for k, v in model.state_dict().items()}
    mtst.freeze(model, "encoder")
    first = playground.trial(steps=3, batch_size=8)
    assert playground.trials[0]["frozen"] == "frozen: embeddings, layers 0-5"
    mtst.unfreeze(model, "all")
    mtst.freeze(model, "embeddings", "layers:0-3", "head:ner")
    table = playground.trial(steps=3, batch_size=8)
    assert list(table.index) == [1, 2] and list(first.index) == [1]
    assert table.loc[2, "frozen"] == "frozen: embeddings, layers 0-3, head:ner"
    a, b = playground.trials
    assert a["before"] == b["before"] and set(a["after"]) == {"sentiment", "ner"}
    assert table.loc[1, "sentiment"] == f"{a['before']['sentiment']:.3f} → {a['after']['sentiment']:.3f}"
    # the same choice again gives the same scores (same seed, same start)
    mtst.unfreeze(model, "all")
    mtst.freeze(model, "encoder")
    playground.trial(steps=3, batch_size=8)
    assert playground.trials[2]["after"] == a["after"]
    assert all(torch.equal(v, toggled[k]) for k, v in model.state_dict().items())  # trials train a copy


def test_a_trial_refuses_what_would_teach_nothing_and_changes_nothing(model_for, data, val):
    model = model_for(data)
    with pytest.raises(ValueError, match="pass validation="):
        FreezePlayground(model, data).trial(steps=2)
    playground = FreezePlayground(model, data, validation=val)
    mtst.freeze(model, "all")
    with pytest.raises(ValueError, match="every part is frozen.*tick at least one part"):
        playground.trial(steps=2)
    playground.running = True
    mtst.unfreeze(model, "heads")
    with pytest.raises(RuntimeError, match="already running"):
        playground.trial(steps=2)
    assert playground.trials == []


def test_the_panel_trains_a_trial_on_click_and_shows_the_scores(model_for, data, val):
    import matplotlib

    matplotlib.use("Agg")
    model = model_for(data)
    panel = mtst.widgets.freeze_panel(FreezePlayground(model, data, validation=val), steps=1, trial_steps=2)
    assert not panel.trial_button.disabled
    panel.toggles["layer_5"].value = False
    panel.trial_button.click()
    assert "<td" in panel.trials.value and "layer 5" in panel.trials.value and "→" in panel.trials.value
    panel.trial_button.click()
    assert panel.trials.value.count("<tr>") == 3  # the header and two trials
    assert mtst.widgets.freeze_panel(FreezePlayground(model, data), steps=1).trial_button.disabled


def test_rate_trials_score_each_choice_and_measure_each_parts_update(model_for, data, val):
    model = model_for(data)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    rates = RatePlayground(model, data, validation=val, batch_size=8, seed=0)
    rates.trial(lr=1e-4, head_lr=1e-3, layer_decay=0.9, steps=3)
    table = rates.trial(lr=1e-4, head_lr=1e-3, layer_decay=0.5, steps=3)
    assert list(table.index) == [1, 2] and table.loc[2, "rates"] == "lr 1e-04, heads 1e-03, ξ 0.5, linear"
    moved = rates.updates_frame()
    assert list(moved.index) == list(mtst.model.model_parts(model)) and moved.shape[1] == 2
    steep, mild = moved.iloc[:, 1], moved.iloc[:, 0]
    # a steeper decay gives the embeddings a 0.5**6 / 0.9**6 smaller rate: they move less; the top layer's rate is the same
    assert steep["embeddings"] < 0.5 * mild["embeddings"] and steep["layer_5"] > 0
    assert rates.trials[0]["before"] == rates.trials[1]["before"]
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())  # trials train a copy
    with pytest.raises(ValueError, match="layer_decay"):
        rates.trial(layer_decay=0.0, steps=2)
    assert len(rates.trials) == 2


def test_the_rate_panel_trains_with_the_sliders_values(model_for, data, val):
    import matplotlib

    matplotlib.use("Agg")
    model = model_for(data)
    assert mtst.widgets.lr_schedule_widget(model, total_steps=20).trial_button.disabled
    panel = mtst.widgets.lr_schedule_widget(model, total_steps=20, playground=RatePlayground(model, data, validation=val, batch_size=8),
                                            trial_steps=2)
    panel.decay.value = 0.6
    panel.trial_button.click()
    assert "ξ 0.6" in panel.trials.value and "→" in panel.trials.value
    assert panel.playground.trials[0]["steps"] == 2
