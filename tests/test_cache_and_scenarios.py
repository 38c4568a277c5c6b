"""The frozen-encoder cache trains the same heads; the freezing and learning-rate scenarios run and report."""

import copy
import warnings

import pandas as pd
import pytest
import torch
from helpers import short_config

import mtst
from mtst import claims, scenarios
from mtst.features import EncoderCache, EncoderEvalMode

warnings.filterwarnings("ignore", message=".*truncated")


def _cfg(**kw):
    return short_config(**kw)


def test_cache_and_no_cache_train_the_same_heads(small_encoder, data):
    heads, scores = {}, {}
    for cached in (False, True):
        model = mtst.freeze(mtst.MultiTaskModel.for_tasks(copy.deepcopy(small_encoder), data, seed=0), "encoder")
        trainer = mtst.Trainer(model, data, _cfg(cache_encoder=cached), callbacks=[EncoderEvalMode()])
        trainer.run()
        assert (trainer.features is not None) == cached
        heads[cached] = {k: v.clone() for k, v in model.heads.state_dict().items()}
        scores[cached] = mtst.evaluate_all(model, data).set_index("task").score
    pd.testing.assert_series_equal(scores[False], scores[True])
    for k in heads[True]:
        torch.testing.assert_close(heads[True][k], heads[False][k], atol=1e-5, rtol=1e-4)
    moved = any(not torch.equal(heads[True][k], v) for k, v in mtst.MultiTaskModel.for_tasks(small_encoder, data, seed=0).heads.state_dict().items())
    assert moved, "the heads did not train"


def test_validation_on_the_cache_scores_what_the_encoder_scores_and_runs_the_encoder_once(small_encoder, data, monkeypatch):
    monkeypatch.setattr(mtst.features, "_SHARED", {})  # no cache of an earlier test's: count this run's encoder passes
    val = {t: mtst.load_task(t, "validation", "ci").subset(20) for t in mtst.TASKS}
    history, calls = {}, {}
    for cached in (False, True):
        model = mtst.freeze(mtst.MultiTaskModel.for_tasks(copy.deepcopy(small_encoder), data, seed=0), "encoder")
        calls[cached] = 0

        def count(*_, key=cached):
            calls[key] += 1

        model.encoder.register_forward_hook(count)
        trainer = mtst.Trainer(model, data, _cfg(cache_encoder=cached, keep_best=False), validation=val, callbacks=[EncoderEvalMode()])
        res = trainer.run()
        history[cached] = res.history[res.history.phase == "validation"].set_index(["step", "task"]).score
    assert len(history[True]) == 4 * len(mtst.TASKS)  # four validations
    pd.testing.assert_series_equal(history[False], history[True])
    # cached: one encoder pass per task for the training cache and one for the validation cache, none after;
    # uncached: one per training step and per task at each of the four validations
    assert calls[True] == 2 * len(mtst.TASKS) and calls[False] == 6 + 4 * len(mtst.TASKS)
    with pytest.raises(ValueError, match="holds 20 examples of 'topic', not the 24 given"):
        mtst.evaluate(model, data["topic"], "topic", cache=trainer.val_features)


def test_unfreezing_the_encoder_during_a_cached_run_is_refused(small_encoder, data):
    """On the cache no gradient reaches the encoder: a layer unfrozen mid-run would silently never learn."""
    from mtst.freezing import GradualUnfreezing

    model = mtst.freeze(mtst.MultiTaskModel.for_tasks(copy.deepcopy(small_encoder), data, seed=0), "encoder")
    trainer = mtst.Trainer(model, data, _cfg(cache_encoder=True), callbacks=[EncoderEvalMode(), GradualUnfreezing(every=2)])
    with pytest.raises(ValueError, match="layer_5 became trainable at step 3, but the run trains on cached outputs"):
        trainer.run()
    assert all(torch.equal(a, b) for a, b in zip(model.encoder.parameters(), small_encoder.parameters()))


def test_cache_needs_a_frozen_encoder(small_encoder, data):
    model = mtst.MultiTaskModel.for_tasks(copy.deepcopy(small_encoder), data, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="freeze\\(model, 'encoder'\\)"):
        mtst.Trainer(model, data, _cfg(cache_encoder=True))
    with pytest.raises(ValueError, match="whole encoder frozen"):
        EncoderCache(model, data)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_cache_holds_one_vector_per_sentence_and_word_pieces_per_tweet(small_encoder, data):
    model = mtst.freeze(mtst.MultiTaskModel.for_tasks(copy.deepcopy(small_encoder), data, seed=0), "encoder")
    cache = EncoderCache(model, data)
    assert cache.features["topic"].shape == (len(data["topic"]), small_encoder.embedding_dim)
    feats, labels = cache.batch("ner", [0, 1, 2], torch.device("cpu"))
    assert feats.shape[:2] == labels.shape and feats.shape[2] == small_encoder.embedding_dim
    ref = mtst.batches.make_batch(model, data["ner"], [0, 1, 2])
    assert torch.equal(labels, ref["labels"])  # same alignment and padding as a tokenized batch
    assert cache.nbytes() > 0


def test_scenario_grid_runs_and_freezes_what_it_says(small_encoder, data):
    rows, models = [], {}
    for name in ("a_feature_extractor", "b_backbone_frozen", "d_lower4_frozen", "e_full_finetune", "f_gradual_unfreezing"):
        r, models[name] = scenarios.run_freeze_scenario(name, data, None, data, _cfg(), 32, 0, small_encoder)
        rows += r
    table = scenarios.score_table(rows, "scenario")
    heads = sum(p.numel() for p in models["b_backbone_frozen"].heads.parameters())
    assert table.loc["a_feature_extractor", "trainable_params"] == table.loc["b_backbone_frozen", "trainable_params"] == heads
    assert table.loc["e_full_finetune", "trainable_params"] == sum(p.numel() for p in models["e_full_finetune"].parameters())
    assert table.loc["b_backbone_frozen", "optimizer_state_mib"] < table.loc["d_lower4_frozen", "optimizer_state_mib"] < table.loc["e_full_finetune", "optimizer_state_mib"]
    # the pretrained encoder passed in is never trained or frozen by a scenario
    assert all(p.requires_grad for p in small_encoder.parameters())
    assert torch.equal(models["b_backbone_frozen"].encoder.layers[0].output.dense.weight, small_encoder.layers[0].output.dense.weight)
    assert not torch.equal(models["e_full_finetune"].encoder.layers[5].output.dense.weight, small_encoder.layers[5].output.dense.weight)
    with pytest.raises(ValueError, match="valid: a_feature_extractor"):
        scenarios.run_freeze_scenario("z_nothing", data, None, data, _cfg(), 32, 0, small_encoder)


def test_the_10x_feature_extractor_trains_its_heads_ten_times_as_long_on_the_cache(small_encoder, data):
    runs = {name: scenarios.run_freeze_scenario(name, data, None, data, _cfg(), 32, 0, small_encoder)
            for name in ("a_feature_extractor", "a_feature_extractor_10x")}
    (short, m_short), (long, m_long) = runs["a_feature_extractor"], runs["a_feature_extractor_10x"]
    assert short[0]["steps"] == 6 and long[0]["steps"] == 60
    assert short[0]["trainable_params"] == long[0]["trainable_params"]
    assert all(torch.equal(a, b) for a, b in zip(m_long.encoder.parameters(), small_encoder.parameters()))  # frozen all along
    assert any(not torch.equal(a, b) for a, b in zip(m_long.heads.parameters(), m_short.heads.parameters()))


def _claims_inputs(b_small: float, a10_small: float):
    """Hand-made grid, sweep and drift frames in the shapes freezing_claims reads (scores in %)."""
    grid = pd.DataFrame({"k": [6, None, 0], "mean": [50.0, 60.0, 64.0], "wall_time_s": [10.0, 5.0, 20.0]},
                        index=["b_backbone_frozen", "a_feature_extractor_10x", "e_full_finetune"])
    sweep = pd.DataFrame({"b_backbone_frozen": [b_small, 45.0, 50.0], "a_feature_extractor_10x": [a10_small, 58.0, 60.0],
                          "e_full_finetune": [47.0, 60.0, 64.0]}, index=pd.Index([100, 1000, 20000], name="train_size"))
    drift = pd.DataFrame({"step": [0, 5], "score": [0.8, 0.78], "drift": [0.0, -0.02]})
    drift.attrs["head_unchanged"] = True
    control = pd.DataFrame({"step": [0, 5], "score": [0.8, 0.8], "drift": [0.0, 0.0]})
    return grid, sweep, drift, control


def test_the_data_size_claims_set_full_fine_tuning_against_the_best_frozen_contender():
    table = claims.freezing_claims(*_claims_inputs(b_small=30.0, a10_small=52.0), "sentiment")
    assert "frozen encoder 52.0 (best frozen: a_feature_extractor_10x) vs full fine-tuning 47.0" in table.loc["F1", "this run measured"]
    assert table.loc["F1", "verdict"] == "supported here"
    assert "best frozen − full = -2.0 pts; with 20000: -4.0 pts" in table.loc["F2", "this run measured"]
    table = claims.freezing_claims(*_claims_inputs(b_small=30.0, a10_small=40.0), "sentiment")
    assert "(best frozen: a_feature_extractor_10x) vs full fine-tuning 47.0" in table.loc["F1", "this run measured"]
    assert table.loc["F1", "verdict"] == "not supported here"
    grid, sweep, drift, control = _claims_inputs(b_small=48.0, a10_small=40.0)
    table = claims.freezing_claims(grid, sweep.drop(columns="a_feature_extractor_10x"), drift, control, "sentiment")
    assert "frozen encoder 48.0 (best frozen: b_backbone_frozen)" in table.loc["F1", "this run measured"]


def test_f5_weighs_the_best_cheaper_scenario_by_wall_time_and_by_peak_gpu_memory_where_measured():
    grid, sweep, drift, control = _claims_inputs(b_small=30.0, a10_small=52.0)
    grid = pd.DataFrame({"mean": [50.0, 62.4, 64.0], "wall_time_s": [60.0, 86.0, 92.0], "optimizer_state_mib": [0.1, 54.3, 172.3]},
                        index=["b_backbone_frozen", "d_lower2_frozen", "e_full_finetune"])
    table = claims.freezing_claims(grid, sweep, drift, control, "sentiment")  # a CPU run: no peak GPU memory
    assert table.loc["F5", "this run measured"] == ("best non-full scenario d_lower2_frozen: 98% of full fine-tuning's score "
                                                   "at 93% of its wall time and 32% of its optimizer state")
    assert table.loc["F5", "verdict"] == "not supported here"  # the optimizer state alone does not decide
    gpu = grid.assign(peak_gpu_mib=[336.0, 827.0, 1235.0])
    table = claims.freezing_claims(gpu, sweep, drift, control, "sentiment")
    assert "at 93% of its wall time, 67% of its peak GPU memory and 32% of its optimizer state" in table.loc["F5", "this run measured"]
    assert table.loc["F5", "verdict"] == "supported here"
    table = claims.freezing_claims(gpu.assign(mean=[50.0, 60.0, 64.0]), sweep, drift, control, "sentiment")  # 94% of the score
    assert table.loc["F5", "verdict"] == "not supported here"


def test_head_drift_keeps_the_head_but_not_its_task(small_encoder, data):
    model = mtst.MultiTaskModel.for_tasks(copy.deepcopy(small_encoder), data, seed=0)
    drift = scenarios.run_head_drift(model, data, data, "sentiment", _cfg(lr=1e-3), eval_every=3)
    assert drift.attrs["head_unchanged"]
    assert drift.step.tolist() == [0, 3, 6]
    assert drift.drift.iloc[0] == 0
    # how far the encoder moved, measured from the weights: none at the start, then growing as it trains
    moved = drift.encoder_moved.tolist()
    assert moved[0] == 0 and 0 < moved[1] < moved[2] < 0.5
    control = scenarios.run_head_drift(model, data, data, "sentiment", _cfg(lr=1e-3), eval_every=3, freeze_encoder=True)
    assert (control.drift == 0).all() and (control.encoder_moved == 0).all()  # nothing the frozen head sees changed
    with pytest.raises(ValueError, match="other than"):
        scenarios.run_head_drift(model, {"sentiment": data["sentiment"]}, data, "sentiment", _cfg(), 3)


def test_every_score_a_run_reports_is_measured_at_the_precision_it_trained_at(small_encoder, data, monkeypatch):
    """A bf16 run on a CPU validates in bf16 ("auto" would be fp32 there): its test scores, and the head-drift
    baseline that its later validations are subtracted from, must not fall back to "auto"."""
    from mtst import evaluation
    from mtst.lab import experiments

    seen, original = [], evaluation.predict_labels

    def recording(model, data, task, batch_size, precision, cache):  # as mtst.evaluate calls it
        seen.append(precision)
        return original(model, data, task, batch_size, precision, cache)

    monkeypatch.setattr(evaluation, "predict_labels", recording)
    cfg = _cfg(precision="bf16", steps=3)
    scenarios.run_freeze_scenario("b_backbone_frozen", data, data, data, cfg, 32, 0, small_encoder)
    assert len(seen) >= 2 * len(data) and set(seen) == {"bf16"}  # validation, then test
    seen.clear()
    model = mtst.MultiTaskModel.for_tasks(copy.deepcopy(small_encoder), data, seed=0)
    scenarios.run_head_drift(model, data, data, "sentiment", cfg, eval_every=3)
    assert seen == ["bf16", "bf16"]  # step 0, then step 3
    seen.clear()
    train = {"sentiment": data["sentiment"]}
    experiments.fit_and_test(train, train, train, cfg, max_length=32)
    assert len(seen) >= 2 and set(seen) == {"bf16"}


def test_lr_scheme_with_a_boosted_head(small_encoder, data):
    rows, model, res = scenarios.run_lr_scheme("decay_0.9", data, data, data, _cfg(), 32, 0, small_encoder, head_lrs={"ner": 1e-2})
    assert rows[0]["scheme"] == "decay_0.9+ner_head×10"
    assert scenarios.steps_to_target(res.history, -1.0) is not None
    assert scenarios.steps_to_target(res.history, 2.0) is None
    with pytest.raises(ValueError, match="valid: uniform_1e-5"):
        scenarios.run_lr_scheme("decay_2", data, data, data, _cfg(), 32, 0, small_encoder)


def test_freezing_grid_follows_the_encoders_depth():
    assert scenarios.k_sweep(6) == (0, 2, 4, 6) and scenarios.k_sweep(12) == (0, 3, 6, 9, 12)
    assert list(scenarios.FREEZE_SCENARIOS) == ["a_feature_extractor", "a_feature_extractor_10x", "b_backbone_frozen", "d_lower4_frozen",
                                                "d_lower2_frozen", "e_full_finetune", "f_gradual_unfreezing"]
    deep = scenarios.freeze_scenarios(12)
    assert [(n, s.k) for n, s in deep.items() if s.k is not None] == [("b_backbone_frozen", 12), ("d_lower9_frozen", 9), ("d_lower6_frozen", 6),
                                                                      ("d_lower3_frozen", 3), ("e_full_finetune", 0)]
    assert deep["d_lower9_frozen"].freeze == ("embeddings", "layers:0-8") and "layers 9-11" in deep["d_lower9_frozen"].what
    assert scenarios.freeze_scenario("d_lower5_frozen", 12).freeze == ("embeddings", "layers:0-4")  # any k below the depth
    with pytest.raises(ValueError, match="d_lower<k>_frozen with 0 < k < 6"):
        scenarios.freeze_scenario("d_lower6_frozen", 6)  # at depth 6 that is the whole backbone: b_backbone_frozen


def test_scenarios_read_the_depth_from_the_model(small_encoder, data):
    shallow = copy.deepcopy(small_encoder)  # a 3-layer encoder: the grid's names and k follow it
    shallow.model.encoder.layer = shallow.model.encoder.layer[:3]
    shallow.model.config.num_hidden_layers = 3
    rows, model = scenarios.run_freeze_scenario("b_backbone_frozen", data, None, data, _cfg(), 32, 0, shallow)
    assert {r["k"] for r in rows} == {3} and not any(p.requires_grad for p in model.encoder.parameters())
    rows, model = scenarios.run_freeze_scenario("d_lower2_frozen", data, None, data, _cfg(), 32, 0, shallow)
    trainable = {n for n, ps in mtst.model_parts(model).items() if any(p.requires_grad for _, p in ps)}
    assert {r["k"] for r in rows} == {2} and trainable == {"layer_2", *(f"head:{t}" for t in data)}
