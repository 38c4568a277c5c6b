"""Loss weighting: PCGrad's projection, learned uncertainty weights, and the joint (all tasks per step) loop."""

import copy
import warnings

import pytest
import torch

import mtst
from mtst.weighting import WEIGHTINGS, UncertaintyWeighting, pcgrad, uncertainty_summary

warnings.filterwarnings("ignore", message=".*truncated")


def test_pcgrad_leaves_agreeing_gradients_alone():
    a, b = torch.tensor([1.0, 2.0, 0.0]), torch.tensor([0.5, 0.0, 1.0])  # dot = 0.5 > 0
    pa, pb = pcgrad([a, b], seed=0)
    assert torch.equal(pa, a) and torch.equal(pb, b)


def test_pcgrad_removes_the_conflicting_component():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        grads = [torch.randn(50, generator=g) for _ in range(3)]
        projected = pcgrad(grads, seed=1)
        for i, p in enumerate(projected):
            conflicts = [j for j in range(3) if j != i and torch.dot(grads[i], grads[j]) < 0]
            if len(conflicts) == 1:  # one conflict: after projection the pair no longer conflicts
                assert torch.dot(p, grads[conflicts[0]]) >= -1e-5
            if not conflicts:
                assert torch.equal(p, grads[i])
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    pa, _ = pcgrad([a, b], seed=0)
    assert torch.dot(pa, b).abs() < 1e-6 and torch.allclose(pa, torch.tensor([0.5, 0.5]))


def test_uncertainty_weighting_formula():
    w = UncertaintyWeighting(["a", "b"])
    with torch.no_grad():
        w.log_vars["a"].fill_(1.0)
    loss = torch.tensor(2.0)
    assert float(w("a", loss).detach()) == pytest.approx(2.0 * torch.exp(torch.tensor(-1.0)).item() + 0.5)
    assert w.weights() == pytest.approx({"a": float(torch.exp(torch.tensor(-1.0))), "b": 1.0})


@pytest.fixture(scope="module")
def data():
    return {t: mtst.load_task(t, "train", "ci").subset(16) for t in ("sentiment", "topic")}


@pytest.fixture()
def model(model_for, data):
    return model_for(data)


def _cfg(**kw):
    return mtst.TrainConfig(**{"steps": 3, "batch_size": 8, "progress": False, "device": "cpu", "lr": 1e-4, "head_lr": 1e-2, **kw})


def test_uncertainty_weights_are_learned(model, data):
    res = mtst.train(model, data, _cfg(weighting="uncertainty", steps=4))
    h = res.curves()
    assert {"weight:sentiment", "weight:topic"} <= set(h.columns)
    assert h["weight:sentiment"].iloc[0] == 1.0 and h["weight:sentiment"].iloc[-1] != 1.0


def test_each_row_logs_the_weights_its_step_used(model, data):
    """The history's weights are those before the step's update (read after it, in one transfer with the losses)."""
    seen = []

    class Before(mtst.Callback):
        def on_step_begin(self, trainer, step, task):
            seen.append(trainer.weighter.weights())

    h = mtst.train(model, data, _cfg(weighting="uncertainty", all_tasks_per_step=True, steps=4), callbacks=[Before()]).curves()
    assert [{t: row[f"weight:{t}"] for t in data} for _, row in h.iterrows()] == seen
    assert len({tuple(s.values()) for s in seen}) == 4  # and every step moved them


def test_joint_steps_train_every_task_each_step(model, data):
    mon = mtst.GradientMonitor(updates=False)
    res = mtst.train(model, data, _cfg(all_tasks_per_step=True), callbacks=[mon])
    assert res.curves().task.tolist() == ["all"] * 3
    heads = mon.frame()[mon.frame().part.str.startswith("head:")]
    assert (heads.grad_norm > 0).all()  # both heads get a gradient at every step


def test_joint_steps_record_each_task_loss_and_their_sum(model, data):
    h = mtst.train(model, data, _cfg(all_tasks_per_step=True)).curves()
    assert (h[["loss:sentiment", "loss:topic"]] > 0).all().all()
    assert h["loss"].to_numpy() == pytest.approx((h["loss:sentiment"] + h["loss:topic"]).to_numpy(), rel=1e-5)


def test_the_log_variances_rate_bounds_how_far_the_learned_weights_travel(model_for, data):
    """Adam moves each log-variance by about its rate per step, so the summed rate bounds |log weight|: at the
    heads' rate a short run leaves the weights near 1; ten times the rate lets them travel about ten times as far."""
    travel = {}
    for rate in (None, 0.1):  # None: the heads' 1e-2
        res = mtst.train(model_for(data), data, _cfg(weighting="uncertainty", all_tasks_per_step=True, steps=6, uncertainty_lr=rate))
        h, summary = res.curves(), uncertainty_summary(res)
        assert h["lr:loss_weights"].max() == pytest.approx(rate or 1e-2)
        assert summary.summed_rate.tolist() == pytest.approx([h["lr:loss_weights"].iloc[:-1].sum()] * len(summary))
        for task, row in summary.iterrows():
            assert row.learned_weight == h[f"weight:{task}"].iloc[-1]
            assert row.balancing_weight == pytest.approx(1 / (2 * h[f"loss:{task}"].iloc[-1]))  # last tenth of 6 steps: 1
        assert (summary.abs_log_weight <= 1.5 * summary.summed_rate).all()
        travel[rate] = summary.abs_log_weight
    assert (travel[0.1] > 5 * travel[None]).all()


def test_uncertainty_inputs_are_checked(model, data):
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="uncertainty_lr must be > 0, got 0"):
        mtst.Trainer(model, data, _cfg(weighting="uncertainty", uncertainty_lr=0.0))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="weighting='uncertainty'"):
        uncertainty_summary(mtst.train(model, data, _cfg()))


def test_pcgrad_on_one_task_is_plain_gradient_descent(encoder, data):
    one = {"topic": data["topic"]}
    states = {}
    for weighting in ("equal", "pcgrad"):
        enc = copy.deepcopy(encoder)
        enc.max_length = 32
        m = mtst.MultiTaskModel.for_tasks(enc, one, seed=0)
        mtst.train(m, one, _cfg(weighting=weighting, all_tasks_per_step=True))
        states[weighting] = m.state_dict()
    for k, v in states["equal"].items():
        torch.testing.assert_close(states["pcgrad"][k], v, atol=1e-6, rtol=1e-5)


def test_pcgrad_runs_on_two_tasks(model, data):
    before = copy.deepcopy(model.state_dict())
    res = mtst.train(model, data, _cfg(weighting="pcgrad"))
    assert res.steps == 3 and res.curves().task.eq("all").all()
    assert any(not torch.equal(v, model.state_dict()[k]) for k, v in before.items() if "layer.5" in k or "layers.5" in k)


def test_unknown_weighting_lists_the_options(model, data):
    with pytest.raises(ValueError, match=", ".join(WEIGHTINGS)):
        mtst.Trainer(model, data, _cfg(weighting="gradnorm"))
    mtst.freeze(model, "encoder")
    with pytest.raises(ValueError, match="cache_encoder trains one task per step"):
        mtst.Trainer(model, data, _cfg(weighting="pcgrad", cache_encoder=True))
