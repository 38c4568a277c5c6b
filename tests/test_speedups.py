"""What makes a live session fast: a frozen prefix run once, batches bucketed by length, and a cache of finished runs.
Each must change nothing it does not say it changes."""

import copy
import json
import multiprocessing
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import short_config

import mtst
from mtst import runcache
from mtst.batches import make_batch
from mtst.features import EncoderCache, EncoderEvalMode, PrefixCache
from mtst.sampling import BatchQueue

warnings.filterwarnings("ignore", message=".*truncated")


@pytest.fixture(scope="module")
def val():
    return {t: mtst.load_task(t, "validation", "ci").subset(16) for t in mtst.TASKS}


def _cfg(**kw):
    return short_config(**kw)


def _model(enc, data, *frozen):
    m = mtst.MultiTaskModel.for_tasks(copy.deepcopy(enc), data, seed=0)
    return mtst.freeze(m, *frozen) if frozen else m


# --------------------------------------------------------------------------- the frozen prefix


@pytest.mark.parametrize("k", [0, 2, 4, 6])
def test_the_forward_pass_in_two_parts_is_the_forward_pass(small_encoder, data, k):
    model = _model(small_encoder, data).eval()
    batch = make_batch(model, data["ner"], list(range(6)))
    inputs = {key: batch[key] for key in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        whole = model.encoder(inputs)
        parts = model.encoder.forward_from(model.encoder.hidden_after(inputs, k), inputs["attention_mask"], k)
    for key in ("token_embeddings", "sentence_embedding"):
        torch.testing.assert_close(parts[key], whole[key])


def test_training_on_the_prefix_cache_is_training_through_an_eval_mode_prefix(small_encoder, data, val):
    """The cache's one difference from training through the frozen layers is their dropout, off in the cache; with the
    uncached prefix in eval mode too, both runs take the same steps to the same weights and scores."""
    runs = {}
    for cached in (False, True):
        model = _model(small_encoder, data, "embeddings", "layers:0-3")
        trainer = mtst.Trainer(model, data, _cfg(cache_prefix=cached), validation=val, callbacks=[] if cached else [EncoderEvalMode(k=4)])
        res = trainer.run()
        assert isinstance(trainer.features, PrefixCache) == cached
        runs[cached] = (res, {k: v.clone() for k, v in model.state_dict().items()}, mtst.evaluate_all(model, val).score.tolist())
    (a, wa, sa), (b, wb, sb) = runs[False], runs[True]
    np.testing.assert_allclose(a.curves().loss, b.curves().loss, rtol=1e-4)
    assert sa == sb
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], atol=1e-5, rtol=1e-4)
    assert not torch.equal(wb["encoder.model.encoder.layer.5.output.dense.weight"], small_encoder.state_dict()["model.encoder.layer.5.output.dense.weight"])


def test_the_prefix_cache_needs_a_frozen_prefix_and_keeps_it_frozen(small_encoder, data):
    with pytest.raises(ValueError, match=r"cache_prefix=True needs a frozen prefix.*mtst.freeze\(model, 'embeddings'"):
        mtst.Trainer(_model(small_encoder, data), data, _cfg(cache_prefix=True)).run()
    with pytest.raises(ValueError, match=r"needs the embeddings and layers 0-3 frozen, but only 2 lower layers are frozen"):
        PrefixCache(_model(small_encoder, data, "embeddings", "layers:0-1"), data, k=4)

    class Thaw(mtst.Callback):
        def on_step_begin(self, trainer, step, task):
            if step == 3:
                mtst.unfreeze(trainer.model, "layer:1")

    model = _model(small_encoder, data, "embeddings", "layers:0-3")
    with pytest.raises(ValueError, match="layer_1 became trainable at step 3, but the run trains on cached outputs"):
        mtst.Trainer(model, data, _cfg(cache_prefix=True), callbacks=[Thaw()]).run()


def test_a_whole_frozen_encoder_with_cache_prefix_uses_the_encoder_cache(small_encoder, data):
    trainer = mtst.Trainer(_model(small_encoder, data, "encoder"), data, _cfg(cache_prefix=True))
    trainer.run()
    assert type(trainer.features).__name__ == "EncoderCache"


# --------------------------------------------------------------------------- batches bucketed by length


def test_bucketed_batches_see_every_example_once_per_pass_and_pad_less():
    lengths = np.random.default_rng(1).integers(5, 200, size=1000).tolist()
    waste = {}
    for bucketed in (False, True):
        q = BatchQueue({"t": 1000}, 16, seed=3, lengths={"t": lengths} if bucketed else None)
        if bucketed:  # whole batches of one pass: 62 of 16 and one of 8
            batches = [q.next("t") for _ in range(63)]
            seen = [i for b in batches for i in b]
        else:  # a permutation taken 16 at a time: the last 8 carry over into the next
            batches = [q.next("t") for _ in range(62)]
            seen = [i for b in batches for i in b] + q.next("t")[:8]
        assert sorted(seen) == list(range(1000)), bucketed
        waste[bucketed] = np.mean([max(lengths[i] for i in b) - np.mean([lengths[i] for i in b]) for b in batches[:62]])
    assert waste[True] < 0.2 * waste[False]  # padding per example: a fifth of what random batches pad


def test_bucketing_is_seeded_and_without_lengths_the_batches_are_the_old_ones():
    lengths = {"t": list(range(100))}
    first = [BatchQueue({"t": 100}, 8, 5, lengths).next("t") for _ in range(2)]
    assert first[0] == first[1]
    assert len(set(map(tuple, (BatchQueue({"t": 100}, 8, s, lengths).next("t") for s in range(5))))) > 1
    perm = np.random.default_rng(5).permutation(100).tolist()  # what the Trainer drew before bucketing existed
    q = BatchQueue({"t": 100}, 8, 5)
    assert [i for _ in range(3) for i in q.next("t")] == perm[:24]


# --------------------------------------------------------------------------- the run cache


@pytest.fixture()
def cache(tmp_path):
    return runcache.RunCache(tmp_path / "cache", enabled=True)


def test_a_run_trained_again_comes_from_the_cache_with_its_weights_history_and_records(small_encoder, data, val, cache, capsys):
    runs = []
    for _ in range(2):
        model = _model(small_encoder, data, "embeddings")
        monitor = mtst.GradientMonitor()
        res = mtst.train(model, data, _cfg(), validation=val, callbacks=[monitor], run_cache=cache)
        runs.append((res, model.state_dict(), monitor.frame(), [p.requires_grad for p in model.parameters()]))
    (a, wa, ma, ga), (b, wb, mb, gb) = runs
    assert (a.from_cache, b.from_cache) == (False, True)
    assert "run cache: loaded a run trained on" in capsys.readouterr().out
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    pd.testing.assert_frame_equal(a.history, b.history, check_dtype=False)
    pd.testing.assert_frame_equal(ma, mb, check_dtype=False)
    assert ga == gb and not ga[0]  # the embeddings stay frozen
    assert (a.best_step, a.best_score, a.steps, a.wall_time_s) == (b.best_step, b.best_score, b.steps, b.wall_time_s)
    assert [hit for kind, hit in cache.log if kind == "run"] == [False, True]


@pytest.mark.parametrize("change", ["config", "seed", "data", "frozen", "weights", "callback"])
def test_anything_that_decides_a_run_makes_it_a_new_run(small_encoder, data, val, cache, change):
    mtst.train(_model(small_encoder, data), data, _cfg(), validation=val, run_cache=cache)
    model, cfg, train, cbs = _model(small_encoder, data), _cfg(), data, []
    if change == "config":
        cfg = _cfg(layer_decay=0.9)
    elif change == "seed":
        cfg = _cfg(seed=1)
    elif change == "data":
        train = {**data, "topic": data["topic"].subset(20)}
    elif change == "frozen":
        mtst.freeze(model, "layer:0")
    elif change == "weights":
        with torch.no_grad():
            model.heads["topic"].net[-1].bias.add_(1e-3)
    elif change == "callback":
        cbs = [mtst.GradientMonitor(every=2)]
    assert not mtst.train(model, train, cfg, validation=val, callbacks=cbs, run_cache=cache).from_cache


class Scaled(mtst.Callback):
    """A callback that changes training: its argument is kept under its own name, so the run cache can key it."""

    def __init__(self, factor: float):
        self.factor = factor
        self.seen: list[tuple[int, str]] = []

    def on_after_backward(self, trainer, step, task):
        self.seen.append((step, task))
        for p in trainer.model.parameters():
            if p.grad is not None:
                p.grad.mul_(self.factor)


class Hidden(mtst.Callback):
    """The same change with its argument kept under another name: the run cache cannot read its configuration."""

    def __init__(self, factor: float):
        self._f = factor

    def on_after_backward(self, trainer, step, task):
        for p in trainer.model.parameters():
            if p.grad is not None:
                p.grad.mul_(self._f)


def test_a_callback_is_keyed_by_its_arguments_and_gives_back_what_it_recorded(small_encoder, data, cache):
    first = Scaled(0.5)
    a = mtst.train(_model(small_encoder, data), data, _cfg(), callbacks=[first], run_cache=cache)
    again = Scaled(0.5)
    b = mtst.train(_model(small_encoder, data), data, _cfg(), callbacks=[again], run_cache=cache)
    assert (a.from_cache, b.from_cache) == (False, True)
    assert again.seen == first.seen and isinstance(again.seen[0], tuple)  # recorded state comes back, tuples as tuples
    other = mtst.train(_model(small_encoder, data), data, _cfg(), callbacks=[Scaled(0.25)], run_cache=cache)
    assert not other.from_cache and other.curves().loss.tolist() != a.curves().loss.tolist()


def test_a_callback_whose_configuration_cannot_be_read_is_never_cached_and_the_report_says_so(small_encoder, data, cache):
    for _ in range(2):
        assert not mtst.train(_model(small_encoder, data), data, _cfg(), callbacks=[Hidden(0.5)], run_cache=cache).from_cache
    assert not (cache.folder / "runs").exists()
    assert "not cached: 2 runs with callbacks whose configuration it cannot read (Hidden)" in cache.report()

    class Local(mtst.Callback):  # defined in a function: it may read names there that no key sees
        pass

    assert runcache.callback_config(Local()) is None and runcache.callback_config(Scaled(1.0))["config"] == {"factor": 1.0}


def test_trainer_run_always_trains_and_train_is_the_memo_layer_above_it(small_encoder, data, cache):
    mtst.train(_model(small_encoder, data), data, _cfg(), run_cache=cache)
    runcache.configure(cache.folder, enabled=True)
    try:
        assert not mtst.Trainer(_model(small_encoder, data), data, _cfg()).run().from_cache
        assert mtst.training.cached_run(mtst.Trainer(_model(small_encoder, data), data, _cfg())).from_cache
    finally:
        runcache.configure()


@pytest.mark.parametrize("damage", ["weights", "record", "format"])
def test_a_damaged_entry_is_trained_again_with_a_warning_and_replaced(small_encoder, data, cache, damage):
    first = mtst.train(_model(small_encoder, data), data, _cfg(), run_cache=cache)
    (entry,) = (cache.folder / "runs").iterdir()
    if damage == "weights":
        (entry / "weights.safetensors").write_bytes(b"not a safetensors file")
    elif damage == "record":
        (entry / "run.json").write_text("{ half a record")
    else:
        meta = json.loads((entry / "run.json").read_text())
        (entry / "run.json").write_text(json.dumps({**meta, "format": -1}))
    model = _model(small_encoder, data)
    with pytest.warns(UserWarning, match="is damaged.*training the run again"):
        again = mtst.train(model, data, _cfg(), run_cache=cache)
    assert not again.from_cache and again.curves().loss.tolist() == first.curves().loss.tolist()
    assert mtst.train(_model(small_encoder, data), data, _cfg(), run_cache=cache).from_cache  # replaced by a whole entry


def _save_same_entry(folder: str, seed: int) -> None:
    store = runcache.RunCache(folder, enabled=True)
    for _ in range(5):
        store.save_run("samekey", {"w": torch.full((1000, 100), float(seed))}, {"writer": seed})


def test_two_kernels_writing_one_entry_leave_one_whole_entry(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_save_same_entry, args=(str(tmp_path), s)) for s in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    weights, meta = runcache.RunCache(tmp_path, enabled=True).load_run("samekey")
    assert torch.all(weights["w"] == meta["writer"])  # the weights and the record of one writer, never a mix
    assert not [p for p in (tmp_path / "runs").iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_predictions_are_cached_by_the_weights_they_came_from(small_encoder, data, cache):
    model = _model(small_encoder, data)
    first = mtst.evaluate(model, data["ner"], run_cache=cache)
    assert mtst.evaluate(model, data["ner"], run_cache=cache) == first
    assert [hit for kind, hit in cache.log if kind == "predictions"] == [False, True]
    mtst.train(model, data, _cfg(), run_cache=False)  # new weights: new predictions
    mtst.evaluate(model, data["ner"], run_cache=cache)
    assert [hit for kind, hit in cache.log if kind == "predictions"][-1] is False


def test_the_cache_is_off_when_asked_and_clear_empties_it(small_encoder, data, tmp_path, monkeypatch):
    monkeypatch.setenv("MTST_RUN_CACHE", "0")
    off = runcache.RunCache(tmp_path)
    assert not off.enabled and runcache.resolve(off) is None and "off" in off.report()
    on = runcache.RunCache(tmp_path, enabled=True)
    mtst.train(_model(small_encoder, data), data, _cfg(), run_cache=on)
    assert "0 of 1 training runs" in on.report()
    on.clear()
    assert not (tmp_path / "runs").exists()


def test_a_run_is_the_same_run_whatever_the_tokenizer_was_last_called_with(small_encoder, data):
    """A fast tokenizer keeps the truncation and padding of its last call; that must not make a run look new."""
    before = runcache.model_digest(_model(small_encoder, data))
    model = _model(small_encoder, data)
    model.encoder.tokenizer(["one", "two words"], padding="max_length", truncation=True, max_length=7)
    assert runcache.model_digest(model) == before


def test_frozen_scenarios_share_one_encoding_of_the_same_data(small_encoder, data, monkeypatch):
    """The feature extractor at 1× and 10× its head steps, and the frozen backbone's test scores, freeze the same
    pretrained encoder: its outputs on the same data are computed once. Another encoder or other data: anew."""
    monkeypatch.setattr(mtst.features, "_SHARED", {})
    a = EncoderCache.shared(_model(small_encoder, data, "encoder"), data)
    assert EncoderCache.shared(_model(small_encoder, data, "encoder"), data) is a
    assert EncoderCache.shared(_model(small_encoder, data, "encoder"), {t: d.subset(10) for t, d in data.items()}) is not a
    other = _model(small_encoder, data, "encoder")
    with torch.no_grad():
        other.encoder.layers[5].output.dense.bias.add_(0.1)
    assert EncoderCache.shared(other, data) is not a
