"""Freezing by name: frozen means frozen, the optimizer sees only trainable parameters, and bad specs."""

import warnings

import pytest
import torch

import mtst

warnings.filterwarnings("ignore", message=".*truncated")


@pytest.fixture(scope="module")
def data():
    return {t: mtst.load_task(t, "train", "ci").subset(32) for t in ("sentiment", "ner")}


@pytest.fixture()
def model(model_for, data):
    return model_for(data)


def _cfg(**kw):
    return mtst.TrainConfig(steps=3, batch_size=8, progress=False, device="cpu", **kw)


def test_specs_select_the_parts(model):
    mtst.freeze(model, "layers:0-3", "head:sentiment")
    s = mtst.trainable_summary(model).set_index("part")
    assert not s.loc[["layer_0", "layer_1", "layer_2", "layer_3", "head:sentiment"], "trainable"].any()
    assert s.loc[["embeddings", "layer_4", "layer_5", "head:ner"], "trainable"].all()
    total = s.loc["total"]
    assert total.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert total.trainable_fraction == pytest.approx(total.trainable_params / total.params)
    mtst.unfreeze(model, "layer:2")
    assert mtst.trainable_summary(model).set_index("part").loc["layer_2", "trainable"]
    mtst.freeze(model, "all")
    assert mtst.trainable_summary(model).iloc[-1].trainable_params == 0
    mtst.unfreeze(model, "heads")
    assert set(mtst.trainable_summary(model).query("trainable").part) == {"head:sentiment", "head:ner"}


def test_frozen_parameters_are_bit_identical_after_training(model, data):
    mtst.freeze(model, "embeddings", "layers:0-4", "head:ner")
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    trainer = mtst.Trainer(model, data, _cfg())
    assert sum(len(g["params"]) for g in trainer.optimizer.param_groups) == len(trainable)  # optimizer = trainable set
    trainer.run()
    params = dict(model.named_parameters())
    assert all(torch.equal(params[n], v) for n, v in frozen.items())
    changed = [n for n, v in trainable.items() if not torch.equal(params[n], v)]
    assert "encoder.model.encoder.layer.5.output.dense.weight" in changed
    assert any(n.startswith("heads.sentiment") for n in changed)


def test_frozen_layers_still_run_dropout_in_training_mode(model):
    mtst.freeze(model, "encoder")
    model.train()
    batch = model.tokenize(["a fine film with a dull ending"])
    a = model.encoder(batch)["sentence_embedding"]
    b = model.encoder(batch)["sentence_embedding"]
    assert not torch.equal(a, b)  # dropout is active: freezing is not eval mode
    model.encoder.eval()
    assert torch.equal(model.encoder(batch)["sentence_embedding"], model.encoder(batch)["sentence_embedding"])


def test_nothing_trainable_gives_a_clear_error(model, data):
    mtst.freeze(model, "all")
    with pytest.raises(ValueError, match="nothing to train: every parameter is frozen"):
        mtst.train(model, data, _cfg())


def test_gradual_unfreezing_unfreezes_from_the_top(model, data):
    cb = mtst.GradualUnfreezing(every=2)
    mtst.train(model, data, mtst.TrainConfig(steps=7, batch_size=8, progress=False, device="cpu"), callbacks=[cb])
    assert cb.log == [(3, "layer_5"), (5, "layer_4"), (7, "layer_3")]
    s = mtst.trainable_summary(model).set_index("part")
    assert not s.loc[["embeddings", "layer_0", "layer_1", "layer_2"], "trainable"].any()
    for every in (0, 2.5):  # 2.5 was taken, then the first step raised a bare TypeError (a float slice index)
        with pytest.raises(ValueError, match=f"every must be an int from 1 up, got {every}"):
            mtst.GradualUnfreezing(every=every)


def test_a_part_unfrozen_mid_run_joins_the_optimizer_at_its_layerwise_rate(model, data):
    """Before this fix a part unfrozen after the optimizer was built got gradients and never moved."""
    mtst.freeze(model, "encoder")
    top = model.encoder.layers[5].output.dense.weight
    start = top.detach().clone()

    class UnfreezeTop(mtst.Callback):
        def on_step_begin(self, trainer, step, task):
            if step == 3:
                mtst.unfreeze(trainer.model, "layer:5")

    cfg = mtst.TrainConfig(steps=6, batch_size=8, lr=1e-4, head_lr=1e-3, layer_decay=0.9, warmup_ratio=0.0, schedule="linear",
                           progress=False, device="cpu")
    trainer = mtst.Trainer(model, data, cfg, callbacks=[UnfreezeTop()])
    assert id(top) not in {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    res = trainer.run()
    assert not torch.equal(top.detach(), start)  # it learned
    assert trainer.adopted == [(3, "layer_5"), (3, "layer_5.no_decay")]
    group = next(g for g in trainer.optimizer.param_groups if g["name"] == "layer_5")
    assert group["initial_lr"] == 1e-4  # the top layer's rate, the same as a run that starts unfrozen would give it
    assert group["lr"] == pytest.approx(1e-4 * (1 - 6 / 6))  # and it follows the schedule: linear decay to 0 at step 6
    head = next(g for g in trainer.optimizer.param_groups if g["name"] == "head:ner")
    assert group["lr"] / group["initial_lr"] == pytest.approx(head["lr"] / head["initial_lr"])
    mtst.optim.check_param_groups(model, trainer.optimizer.param_groups)  # every trainable parameter, exactly once
    assert (res.history.query("phase == 'train'").lr.tolist()[:2]) == pytest.approx([1e-3 * 5 / 6, 1e-3 * 4 / 6])


def test_a_part_unfrozen_mid_run_outside_custom_groups_is_a_clear_error(model, data):
    mtst.freeze(model, "encoder")
    groups = mtst.layerwise_param_groups(model, 1e-4, head_lr=1e-3)

    class UnfreezeTop(mtst.Callback):
        def on_step_begin(self, trainer, step, task):
            if step == 2:
                mtst.unfreeze(trainer.model, "layer:5")

    with pytest.raises(ValueError, match=r"layer_5 became trainable at step 2.*build the groups before freezing"):
        mtst.Trainer(model, data, _cfg(), callbacks=[UnfreezeTop()], groups=groups).run()


def test_bad_specs_name_the_valid_parts_and_change_nothing(model):
    before = [p.requires_grad for p in model.parameters()]
    with pytest.raises(ValueError, match=r'unknown part \'backbone\'; valid parts: "all", "encoder"'):
        mtst.freeze(model, "heads", "backbone")
    with pytest.raises(ValueError, match="the encoder has layers 0-5"):
        mtst.freeze(model, "layers:4-9")
    with pytest.raises(KeyError, match="the model's heads are: sentiment, ner"):
        mtst.freeze(model, "head:topic")
    assert [p.requires_grad for p in model.parameters()] == before


def test_freeze_panel_is_driven_by_value(model, data):
    import matplotlib

    matplotlib.use("Agg")
    from mtst.panels import FreezePlayground

    panel = mtst.widgets.freeze_panel(FreezePlayground(model, data), steps=2)
    total = sum(p.numel() for p in model.parameters())
    layer5 = sum(p.numel() for p in model.encoder.layers[5].parameters())
    assert panel.readout.value.startswith(f"trainable: {total:,} of {total:,}")
    panel.toggles["layer_5"].value = False
    assert panel.readout.value.startswith(f"trainable: {total - layer5:,} of {total:,}")
    assert not any(p.requires_grad for p in model.encoder.layers[5].parameters())
    for part in ("embeddings", "layer_0", "layer_1", "layer_2", "layer_3", "layer_4"):
        panel.toggles[part].value = False
    report = panel.model.train_steps(2).set_index("part")
    assert (report.loc[[f"layer_{i}" for i in range(6)] + ["embeddings"], "grad_norm"] == 0).all()
    assert (report.loc[[f"layer_{i}" for i in range(6)], "changed_fraction"] == 0).all()
    assert report.loc["head:sentiment", "grad_norm"] > 0 and report.loc["head:sentiment", "changed_fraction"] > 0.5
