"""Fault injection: whatever happens to the run cache on disk, a run gives the weights an uncached run gives.
Each damage is done to a real entry of a real (short) run; the run is then made again and compared."""

import copy
import errno
import json
import multiprocessing
import os
import warnings
from pathlib import Path

import pytest
import torch
from helpers import short_config
from safetensors.torch import load_file, save_file

import mtst
from mtst import runcache

warnings.filterwarnings("ignore", message=".*truncated")


def _run(encoder, data, cache):
    """One short run of all three tasks; its weights and its result."""
    model = mtst.MultiTaskModel.for_tasks(copy.deepcopy(encoder), data, seed=0)
    res = mtst.train(model, data, short_config(), run_cache=cache)
    return {k: v.clone() for k, v in model.state_dict().items()}, res


@pytest.fixture(scope="module")
def uncached(small_encoder, data):
    return _run(small_encoder, data, False)[0]


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _flip_tensor_bytes(path, n=1000):
    """Flip n bytes inside the tensor data of a safetensors file, keeping its length (its header stays whole)."""
    raw = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(raw[:8], "little")  # after the length prefix and the JSON header
    for i in range(start + 64, start + 64 + n):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))


def _damage(entry, how):
    weights, record = entry / "weights.safetensors", entry / "run.json"
    if how == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif how == "not_json":
        record.write_text("{not json")
    elif how == "bytes_flipped":
        _flip_tensor_bytes(weights)
    elif how == "record_edited":  # valid JSON, the history changed: a record no longer its own
        meta = json.loads(record.read_text())
        meta["best_score"] = 0.99
        record.write_text(json.dumps(meta))
    elif how == "weights_missing":
        weights.unlink()


@pytest.mark.parametrize("how", ["truncated", "not_json", "bytes_flipped", "record_edited", "weights_missing"])
def test_a_damaged_entry_warns_and_trains_again_to_the_uncached_weights(small_encoder, data, uncached, tmp_path, how):
    cache = runcache.RunCache(tmp_path / "cache", enabled=True)
    first, res = _run(small_encoder, data, cache)
    assert not res.from_cache and _same(first, uncached)
    (entry,) = (cache.folder / "runs").iterdir()
    _damage(entry, how)
    with pytest.warns(UserWarning, match="is damaged.*training the run again"):
        again, res = _run(small_encoder, data, cache)
    assert not res.from_cache and _same(again, uncached)
    third, res = _run(small_encoder, data, cache)  # the entry was replaced by a whole one
    assert res.from_cache and _same(third, uncached)


def test_a_flipped_byte_in_the_tensor_data_alone_is_caught(tmp_path):
    cache = runcache.RunCache(tmp_path, enabled=True)
    cache.save_run("k", {"w": torch.arange(4096, dtype=torch.float32)}, {})
    path = tmp_path / "runs" / "k" / "weights.safetensors"
    size = path.stat().st_size
    _flip_tensor_bytes(path, n=1)
    assert path.stat().st_size == size
    with pytest.warns(UserWarning, match="do not match their checksum"):
        assert cache.load_run("k") is None


@pytest.mark.parametrize("how", ["value_edited", "not_json"])
def test_a_damaged_prediction_record_is_computed_again(small_encoder, data, tmp_path, how):
    cache = runcache.RunCache(tmp_path, enabled=True)
    model = mtst.MultiTaskModel.for_tasks(copy.deepcopy(small_encoder), data, seed=0)
    first = mtst.evaluate(model, data["topic"], run_cache=cache)
    (path,) = (tmp_path / "predictions").iterdir()
    if how == "value_edited":
        rec = json.loads(path.read_text())
        rec["value"][0] = (rec["value"][0] + 1) % 20
        path.write_text(json.dumps(rec))
    else:
        path.write_text("{not json")
    with pytest.warns(UserWarning, match="is damaged"):
        again = mtst.evaluate(model, data["topic"], run_cache=cache)
    assert again == first


def test_a_cache_path_that_is_a_file_warns_once_and_runs_uncached(small_encoder, data, uncached, tmp_path):
    path = tmp_path / "cache"
    path.write_text("a file, not a folder")
    cache = runcache.RunCache(path, enabled=True)
    with pytest.warns(UserWarning, match="cannot be used.*MTST_CACHE_DIR") as caught:
        weights, res = _run(small_encoder, data, cache)
        model = mtst.MultiTaskModel.for_tasks(copy.deepcopy(small_encoder), data, seed=0)
        mtst.evaluate(model, data["topic"], run_cache=cache)  # no second warning
    assert sum("cannot be used" in str(w.message) for w in caught) == 1
    assert not res.from_cache and _same(weights, uncached)
    assert path.read_text() == "a file, not a folder"  # nothing changed
    assert "not usable" in cache.report()


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_a_folder_that_refuses_writes_warns_once_and_runs_uncached(small_encoder, data, uncached, tmp_path, monkeypatch, error):
    """A full disk, no permission, a read-only mount: every write fails with that OSError (root ignores chmod, so the
    write itself is made to fail)."""
    def refuse(*_, **__):
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(runcache, "atomic_folder", refuse)
    monkeypatch.setattr(runcache, "atomic_write", refuse)
    cache = runcache.RunCache(tmp_path / "cache", enabled=True)
    with pytest.warns(UserWarning, match=f"cannot be used.*{os.strerror(error)}"):
        weights, res = _run(small_encoder, data, cache)
    assert not res.from_cache and _same(weights, uncached)
    weights, res = _run(small_encoder, data, cache)  # the same process again: still uncached, silently
    assert not res.from_cache and _same(weights, uncached)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder; the test above covers the refused write")
def test_a_read_only_folder_runs_uncached(small_encoder, data, uncached, tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.warns(UserWarning, match="cannot be used"):
            weights, res = _run(small_encoder, data, runcache.RunCache(folder, enabled=True))
        assert not res.from_cache and _same(weights, uncached)
    finally:
        folder.chmod(0o700)


def _train_into(folder: str, out: str) -> None:
    """In a fresh process: the short run with the cache in folder; its weights to out, and whether they came from the cache."""
    enc = mtst.SentenceEncoder.from_pretrained()
    enc.max_length = 32
    data = {t: mtst.load_task(t, "train", "ci").subset(24) for t in mtst.TASKS}
    weights, res = _run(enc, data, runcache.RunCache(folder, enabled=True))
    save_file({k: v.contiguous() for k, v in weights.items()}, out)
    Path(out + ".json").write_text(json.dumps({"from_cache": res.from_cache}))


def test_two_processes_training_one_run_into_one_empty_folder(uncached, tmp_path):
    ctx = multiprocessing.get_context("spawn")
    folder = tmp_path / "cache"
    outs = [str(tmp_path / f"w{i}.safetensors") for i in range(3)]

    def start(out):
        p = ctx.Process(target=_train_into, args=(str(folder), out))
        p.start()
        return p

    procs = [start(outs[0]), start(outs[1])]  # at once, into one empty folder
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]
    entries = list((folder / "runs").iterdir())
    assert len(entries) == 1 and not entries[0].name.startswith(".")  # one whole entry, no temporary folder left
    third = start(outs[2])  # afterwards: a hit
    third.join(300)
    assert third.exitcode == 0
    hits = [json.loads(Path(o + ".json").read_text())["from_cache"] for o in outs]
    assert not all(hits[:2]) and hits[2]  # someone trained (a slow starter may already find the other's entry); then a hit
    for out in outs:
        assert _same(load_file(out), uncached)
