"""Gradient monitor, task conflict and the forgetting meter, checked against direct computations."""

import dataclasses
import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import mtst
from mtst import diagnostics
from mtst.model import model_parts

warnings.filterwarnings("ignore", message=".*truncated")


@pytest.fixture(scope="module")
def data():
    return {t: mtst.load_task(t, "train", "ci").subset(16) for t in ("sentiment", "topic")}


@pytest.fixture()
def model(model_for, data):
    return model_for(data)


def _cfg(**kw):
    return mtst.TrainConfig(**{"steps": 3, "batch_size": 8, "progress": False, "device": "cpu", "max_grad_norm": None, **kw})


def test_norms_match_a_direct_computation_and_frozen_parts_record_zero(model, data):
    mtst.freeze(model, "layers:0-2", "embeddings")
    direct = {}

    class Direct(mtst.Callback):
        def on_after_backward(self, trainer, step, task):
            direct[step] = {name: math.sqrt(sum(float(p.grad.pow(2).sum()) for _, p in ps if p.grad is not None))
                            for name, ps in model_parts(trainer.model).items()}

    mon = diagnostics.GradientMonitor()
    mtst.train(model, data, _cfg(), callbacks=[mon, Direct()])
    f = mon.frame()
    assert set(f.step) == {1, 2, 3}
    for r in f.itertuples():
        assert r.grad_norm == pytest.approx(direct[r.step][r.part], rel=1e-4, abs=1e-8)
    frozen = f[f.part.isin(["embeddings", "layer_0", "layer_1", "layer_2"])]
    assert (frozen.grad_norm == 0).all() and (frozen.update_norm == 0).all()
    trained = f[f.part.isin(["layer_3", "layer_4", "layer_5"])]
    assert (trained.grad_norm > 0).all() and (trained.update_ratio > 0).all()
    # each step trains one task: the other task's head gets no gradient at that step
    for r in f[f.part.str.startswith("head:")].itertuples():
        assert (r.grad_norm > 0) == (r.part == f"head:{r.task}")
    assert f.finite.all() and mon.nonfinite().empty


def test_update_norm_is_the_actual_weight_change(model, data):
    mon = diagnostics.GradientMonitor()
    before = {n: [p.detach().clone() for _, p in ps] for n, ps in model_parts(model).items()}
    mtst.train(model, data, _cfg(steps=1), callbacks=[mon])
    f = mon.frame().set_index("part")
    for name, ps in model_parts(model).items():
        change = math.sqrt(sum(float((p.detach() - b).pow(2).sum()) for (_, p), b in zip(ps, before[name])))
        assert f.loc[name, "update_norm"] == pytest.approx(change, rel=1e-3, abs=1e-9)  # float32 sums


def test_update_norms_stay_exact_over_steps_while_the_trainable_set_changes(model, data):
    """The monitor reuses its weight copies from step to step; a part unfrozen mid-run must not break that."""
    mtst.freeze(model, "encoder")
    before, actual = {}, {}

    class Direct(mtst.Callback):  # runs before the monitor, and unfreezes layer 5 between its two hooks at step 2
        def on_after_backward(self, trainer, step, task):
            before[step] = {n: [p.detach().clone() for _, p in ps] for n, ps in model_parts(trainer.model).items()}

        def on_step_end(self, trainer, step, task, loss):
            actual[step] = {n: math.sqrt(sum(float((p.detach() - b).pow(2).sum()) for (_, p), b in zip(ps, before[step][n])))
                            for n, ps in model_parts(trainer.model).items()}
            if step == 2:
                mtst.unfreeze(trainer.model, "layer:5")

    mon = diagnostics.GradientMonitor()
    mtst.train(model, data, _cfg(steps=4), callbacks=[Direct(), mon])
    f = mon.frame()
    assert set(f.step) == {1, 2, 3, 4}
    for r in f.itertuples():
        assert r.update_norm == pytest.approx(actual[r.step][r.part], rel=1e-3, abs=1e-9)
    layer5 = f[f.part == "layer_5"].set_index("step").grad_norm  # tracked from step 3 on (so its copies exist)
    assert (layer5.loc[[1, 2]] == 0).all() and (layer5.loc[[3, 4]] > 0).all()


def test_non_finite_norms_are_flagged_with_step_and_part(model, data):
    class Poison(mtst.Callback):
        def on_after_backward(self, trainer, step, task):
            if step == 3:  # the last step: a NaN weight would stop the run at the next loss
                trainer.model.encoder.layers[4].output.dense.weight.grad[0, 0] = float("nan")

    mon = diagnostics.GradientMonitor(updates=False)
    mtst.train(model, data, _cfg(), callbacks=[Poison(), mon])
    bad = mon.nonfinite()
    assert bad[["step", "part"]].values.tolist() == [[3, "layer_4"]]
    assert np.isnan(bad.grad_norm.iloc[0])


def test_monitor_refuses_a_model_with_nothing_trainable(model, data):
    mtst.freeze(model, "all")
    with pytest.raises(ValueError, match="no trainable parameters"):
        diagnostics.GradientMonitor().on_train_begin(SimpleNamespace(model=model))
    with pytest.raises(ValueError, match="nothing to train"):  # the trainer itself refuses first
        mtst.train(model, data, _cfg(), callbacks=[diagnostics.GradientMonitor()])
    for every in (0, 1.5, "2"):  # 1.5 was taken and recorded every third step; "2" raised a bare TypeError
        with pytest.raises(ValueError, match=f"every must be an int from 1 up, got {every!r}"):
            diagnostics.GradientMonitor(every=every)


def test_task_gradient_cosines(model, data):
    batches = {t: mtst.batches.make_batch(model, d, list(range(8))) for t, d in data.items()}
    grads = diagnostics.task_gradients(model, batches)
    assert set(grads) == set(data) and "layer_5" in grads["topic"]
    assert all(p.grad is None for p in model.parameters())  # the model's gradients are left as they were
    cos = diagnostics.gradient_cosines(grads)
    assert set(cos.pair) == {"sentiment·topic"} and cos.cosine.between(-1, 1).all()
    whole = cos[cos.part == "encoder"].cosine.item()
    ga, gb = torch.cat(list(grads["sentiment"].values())), torch.cat(list(grads["topic"].values()))
    ga, gb = ga.double(), gb.double()
    assert whole == pytest.approx(float(ga @ gb / (ga.norm() * gb.norm())), abs=1e-9)
    for part in ("embeddings", "layer_0", "layer_5"):  # each part against torch's own cosine
        direct = torch.nn.functional.cosine_similarity(grads["sentiment"][part].double(), grads["topic"][part].double(), dim=0)
        assert cos[cos.part == part].cosine.item() == pytest.approx(float(direct), abs=1e-9)
    same = diagnostics.gradient_cosines({"a": grads["topic"], "b": grads["topic"]})
    assert np.allclose(same.cosine, 1.0, atol=1e-5)
    zero = {part: torch.zeros_like(g) for part, g in grads["topic"].items()}
    assert (diagnostics.gradient_cosines({"a": grads["topic"], "b": zero}).cosine == 0).all()  # a zero gradient is 0, not NaN


def test_conflict_monitor_refuses_a_bad_probe_before_training(model, data):
    before = [p.detach().clone() for p in model.parameters()]
    for kw, message in [({"every": 0}, r"every must be an int from 1 up, got 0"),  # was a ZeroDivisionError mid-run
                        ({"batch_size": 0}, r"batch_size must be an int from 1 up, got 0")]:
        with pytest.raises(ValueError, match=message):
            diagnostics.ConflictMonitor(data, **kw)
    with pytest.raises(ValueError, match=r"two tasks or more.*got \['topic'\]"):  # one task: no pair to compare
        diagnostics.ConflictMonitor({"topic": data["topic"]})
    with pytest.raises(ValueError, match=r"none for \['topic'\]"):
        diagnostics.ConflictMonitor({**data, "topic": dataclasses.replace(data["topic"], texts=[], labels=[])})
    probe = {"sentiment": data["sentiment"], "ner": mtst.load_task("ner", "train", "ci").subset(8)}
    with pytest.raises(ValueError, match=r"no head for: \['ner'\]; the model's tasks: \['sentiment', 'topic'\]"):
        mtst.train(model, data, _cfg(), callbacks=[diagnostics.ConflictMonitor(probe, every=1)])
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # refused before the first step


def test_linear_cka():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 16, generator=g)
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g))
    assert diagnostics.linear_cka(x, x) == pytest.approx(1.0)
    assert diagnostics.linear_cka(x, 3 * x @ q + 1) == pytest.approx(1.0)  # invariant to rotation, scale, shift
    assert diagnostics.linear_cka(x, torch.randn(200, 16, generator=g)) < 0.3


def test_forgetting_is_zero_for_the_pretrained_encoder_and_grows_with_training(model, data):
    sentences = data["sentiment"].texts[:16]
    reference = diagnostics.layer_representations(model.encoder, sentences)
    assert len(reference) == len(model.encoder.layers) + 1
    f0 = diagnostics.forgetting(reference, model.encoder, sentences)
    assert np.allclose(f0.forgetting, 0, atol=1e-6)
    mtst.train(model, data, _cfg(lr=1e-3, steps=4))
    f1 = diagnostics.forgetting(reference, model.encoder, sentences)
    assert (f1.forgetting.iloc[1:] > 1e-4).all()
