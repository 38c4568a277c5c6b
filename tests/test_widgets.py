"""What the panels leave for a page without a kernel (mtst.widgets.STATIC_MIME): enough to redraw them, and the same
numbers the widgets show. The page's script that draws from it is driven in Chromium (tests/e2e/test_site_browser.py)."""

import copy
import math

import pandas as pd
import pytest

import mtst
from mtst.panels import FreezePlayground
from mtst.widgets import STATIC_MIME, freeze_state, grad_step_widget, grad_steps_state, schedule_state


@pytest.fixture(scope="module")
def data():
    return {t: mtst.load_task(t, "train", "ci").subset(16) for t in mtst.TASKS}


@pytest.fixture()
def model(encoder, data):
    return mtst.MultiTaskModel.for_tasks(copy.deepcopy(encoder), data)


@pytest.mark.parametrize("decay", [0.5, 0.9, 1.0])
def test_schedule_state_rebuilds_every_groups_rate(model, decay):
    mtst.freeze(model, "embeddings")  # a frozen part has no group, here or in the optimizer
    state = schedule_state(model, 1e-4, 1e-3, decay, "cosine", 10, 100)
    groups, _ = mtst.optim.schedule_frame(model, 1e-4, 1e-3, decay, "cosine", 10, 100)
    rebuilt = {g["name"]: 1e-3 if g["head"] else 1e-4 * decay ** g["power"] for g in state["groups"]}
    assert list(rebuilt) == list(groups.group) and "embeddings" not in rebuilt
    assert list(rebuilt.values()) == pytest.approx(list(groups.lr), rel=1e-12)
    assert state["groups"][0] == {"name": "layer_0", "head": False, "power": 5}
    assert state["start"] == {"lr": 1e-4, "head_lr": 1e-3, "decay": decay, "schedule": "cosine", "warmup": 10, "steps": 100}


def test_freeze_state_follows_the_toggles(model, data):
    panel = mtst.widgets.freeze_panel(FreezePlayground(model, data), steps=1)
    panel.toggles["layer_0"].value = False
    state = panel._repr_mimebundle_()[STATIC_MIME]
    parts = {p["part"]: p for p in state["parts"]}
    assert state["kind"] == "freeze" and not parts["layer_0"]["trainable"] and parts["layer_1"]["trainable"]
    total = sum(p["params"] for p in state["parts"])
    trainable = sum(p["params"] for p in state["parts"] if p["trainable"])
    assert panel.readout.value == f"trainable: {trainable:,} of {total:,} parameters ({trainable / total:.1%})"
    assert freeze_state(model)["parts"] == state["parts"]


def test_grad_steps_state_holds_each_recorded_step_and_survives_json():
    frame = pd.DataFrame([{"step": s, "task": t, "part": p, "grad_norm": g} for s, t in ((1, "topic"), (3, "ner"))
                          for p, g in (("embeddings", 0.0), ("layer_0", 2.0 * s), ("head:ner", math.nan if s == 3 else 1.0))])
    state = grad_steps_state(frame)
    assert state["steps"] == [1, 3] and state["tasks"] == ["topic", "ner"] and state["parts"] == ["embeddings", "layer_0", "head:ner"]
    assert state["norms"] == [[0.0, 2.0, 1.0], [0.0, 6.0, None]]  # a non-finite or unrecorded norm is missing, not NaN (JSON has none)
    widget = grad_step_widget(frame)
    assert widget.slider.value == 3 and widget._repr_mimebundle_()[STATIC_MIME]["start"] == 3
    widget.slider.value = 2
    assert widget._repr_mimebundle_()[STATIC_MIME]["start"] == 2
