"""Layer-wise parameter groups and schedules: direction, coverage, ratios, decay exclusions, errors."""

import copy

import pytest
import torch

import mtst


@pytest.fixture()
def model(encoder):
    data = {t: mtst.load_task(t, "train", "ci") for t in mtst.TASKS}
    return mtst.MultiTaskModel.for_tasks(copy.deepcopy(encoder), data)


def _lr(groups, name):
    return next(g["lr"] for g in groups if g["name"] == name)


def test_rates_increase_with_depth_and_heads_get_head_lr(model):
    groups = mtst.layerwise_param_groups(model, lr=1e-4, head_lr=1e-3, layer_decay=0.8)
    order = ["embeddings"] + [f"layer_{i}" for i in range(6)]
    rates = [_lr(groups, n) for n in order]
    assert all(a < b for a, b in zip(rates, rates[1:]))  # strictly increasing bottom to top
    assert rates[-1] == pytest.approx(1e-4) and rates[0] == pytest.approx(1e-4 * 0.8**6)
    assert _lr(groups, "head:ner") == 1e-3 and _lr(groups, "head:topic.no_decay") == 1e-3
    per_task = mtst.layerwise_param_groups(model, lr=1e-4, head_lr=1e-3, head_lrs={"ner": 5e-3})
    assert _lr(per_task, "head:ner") == 5e-3 and _lr(per_task, "head:sentiment") == 1e-3


def test_groups_cover_the_trainable_set_once(model):
    groups = mtst.layerwise_param_groups(model, lr=1e-4, layer_decay=0.9)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == sum(1 for p in model.parameters() if p.requires_grad)
    mtst.check_param_groups(model, groups)
    for p in model.encoder.embeddings.parameters():
        p.requires_grad_(False)
    frozen_groups = mtst.layerwise_param_groups(model, lr=1e-4)
    assert not any(g["name"].startswith("embeddings") for g in frozen_groups)
    with pytest.raises(ValueError, match="frozen parameters are in the optimizer groups"):
        mtst.check_param_groups(model, groups)
    with pytest.raises(ValueError, match="trainable parameters are in no optimizer group"):
        mtst.check_param_groups(model, [g for g in frozen_groups if g["name"] != "layer_3"])


def test_no_decay_for_biases_and_layernorm(model):
    for g in mtst.layerwise_param_groups(model, lr=1e-4, weight_decay=0.05):
        names = [n for n, p in model.named_parameters() if any(p is q for q in g["params"])]
        if g["name"].endswith(".no_decay"):
            assert g["weight_decay"] == 0.0 and all(n.endswith("bias") or "LayerNorm" in n for n in names)
        else:
            assert g["weight_decay"] == 0.05 and not any(n.endswith("bias") or "LayerNorm" in n for n in names)


def test_two_rate_scheme_is_layer_decay_one(model):
    two = mtst.layerwise_param_groups(model, lr=1e-5, head_lr=1e-4)
    assert {g["lr"] for g in two if not g["name"].startswith("head:")} == {1e-5}
    assert {g["lr"] for g in two if g["name"].startswith("head:")} == {1e-4}


@pytest.mark.parametrize("schedule", mtst.SCHEDULES)
def test_schedules_keep_the_ratios_between_groups(model, schedule):
    groups = mtst.layerwise_param_groups(model, lr=1e-4, head_lr=1e-3, layer_decay=0.9)
    opt = mtst.make_optimizer(groups, model)
    sched = mtst.make_scheduler(opt, schedule, total_steps=50, warmup_steps=5)
    table = mtst.lr_table(opt, sched, 50)
    names = [g["name"] for g in opt.param_groups]
    assert opt.param_groups[0]["lr"] == pytest.approx(sched.base_lrs[0] * sched.lr_lambdas[0](0))  # not stepped by lr_table
    base = sched.base_lrs  # the rates each group asked for
    for step in range(1, 31):
        opt.step()
        sched.step()
        factors = [g["lr"] / b for g, b in zip(opt.param_groups, base)]
        assert factors == pytest.approx([factors[0]] * len(factors))  # one factor for every group: ratios kept
        assert table.loc[step, "layer_5"] == pytest.approx(opt.param_groups[names.index("layer_5")]["lr"])
    assert len({round(f, 12) for f in table.iloc[10] / table.iloc[10].max()}) > 1  # groups really differ


def test_errors(model):
    with pytest.raises(ValueError, match="lr must be > 0"):
        mtst.layerwise_param_groups(model, lr=0)
    with pytest.raises(ValueError, match=r"layer_decay must be in \(0, 1\]"):
        mtst.layerwise_param_groups(model, lr=1e-4, layer_decay=1.5)
    with pytest.raises(ValueError, match=r"head_lrs must be > 0, got \{'ner': 0.0\}"):
        mtst.layerwise_param_groups(model, lr=1e-4, head_lrs={"ner": 0.0})
    with pytest.raises(KeyError, match=r"head_lrs names tasks without a head: \['pos'\]"):
        mtst.layerwise_param_groups(model, lr=1e-4, head_lrs={"pos": 1e-3})
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="valid schedules: constant, constant_with_warmup, linear, cosine, slanted_triangular"):
        mtst.make_scheduler(opt, "step")
    with pytest.raises(ValueError, match=r"warmup_steps \(20\) must be between 0 and total_steps \(10\)"):
        mtst.make_scheduler(opt, "linear", total_steps=10, warmup_steps=20)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="nothing to train: every parameter is frozen"):
        mtst.make_optimizer(mtst.layerwise_param_groups(model, lr=1e-4), model)


def test_schedule_widget_follows_its_sliders(model):
    import matplotlib

    matplotlib.use("Agg")
    w = mtst.widgets.lr_schedule_widget(model, total_steps=100)
    assert "a ratio of 1.9×" in w.status.value  # 0.9^6 from the top layer down to the embeddings
    w.decay.value = 0.5
    assert "a ratio of 64.0×" in w.status.value
    groups, lrs = mtst.optim.schedule_frame(model, w.lr.value, w.head_lr.value, 0.5, "linear", 10, 100)
    assert lrs.shape == (100, len(groups)) and lrs["layer_5"].max() == pytest.approx(w.lr.value)
    w.schedule.value = "constant"
    assert "a ratio" in w.status.value
    w.warmup.value = 100
    w.steps.value = 50  # warmup is capped to the steps, so the schedule stays valid
    assert w.warmup.value == 50 and "a ratio" in w.status.value


def test_lr_plot_draws_heads_with_one_schedule_as_one_named_line(model):
    import matplotlib

    matplotlib.use("Agg")
    _, lrs = mtst.optim.schedule_frame(model, 1e-4, 1e-3, 0.9, "linear", 10, 100)
    heads = [c for c in lrs.columns if c.startswith("head:")]
    assert len(heads) == 3  # sentiment, topic, ner: all at head_lr, so their lines would lie on top of each other
    labels = [line.get_label() for line in mtst.optim.plot_lr_schedule(lrs).get_lines()]
    assert labels[-1] == "heads: " + ", ".join(h.removeprefix("head:") for h in heads)
    assert len(labels) == len(lrs.columns) - 2
    boosted = lrs.assign(**{heads[-1]: 10 * lrs[heads[-1]]})  # one head on its own rate keeps its own line
    labels = [line.get_label() for line in mtst.optim.plot_lr_schedule(boosted).get_lines()]
    assert labels[-2:] == ["heads: " + ", ".join(h.removeprefix("head:") for h in heads[:-1]), heads[-1]]
