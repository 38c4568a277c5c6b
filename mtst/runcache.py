"""A cache of finished runs, so that a run trained once (in notebook 02, say) is not trained again (in 03, or when a
notebook runs twice). It is a memo layer above training, in the spirit of joblib's Memory: `cached_run(trainer)` keys
the run by everything that decides it (the code of mtst, the library versions, the starting weights and which of
them are frozen, the tokenizer, the training and validation data, the config, the parameter groups, and each
callback's class and configuration), and either loads the recorded result or calls `trainer.run()`, which always
trains (`Memo`, used by `mtst.training.cached_run`). A hit loads the trained weights, the history and what the callbacks recorded, and says so; `cached_predictions`
does the same for predictions on held-out data, keyed by the trained weights. The Trainer and the callbacks know
nothing of it.

A callback's configuration is read by one rule (scikit-learn's `get_params` convention): the arguments of its
`__init__`, read back from attributes of the same names. What it recorded is its other public attributes that JSON
can hold (a monitor's `rows`, an unfreezing schedule's `log`), saved after the run and set again on a hit. A callback
whose configuration cannot be read that way, or whose class is defined inside a function (it may read names there
that no key can see), runs uncached, and the report says which.

    mtst.runcache.report()            # what this kernel took from the cache
    MTST_RUN_CACHE=0                  # turns it off (or mtst.runcache.configure(enabled=False))
    MTST_CACHE_DIR=/some/folder       # where it lives (default: ~/.cache/mtst); `make clean` clears it

Every entry carries checksums of its tensors and its record, checked on load: a damaged entry (truncated, bytes
flipped in place, unreadable) is trained again with a warning, never trusted. A cache folder that cannot be used (a
file in its place, no permission, a full disk) warns once and the process runs uncached. Two kernels writing one
entry leave one whole entry.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import sys
import time
import warnings
from io import StringIO
from pathlib import Path

import pandas as pd
import torch
import transformers
from safetensors.torch import load_file, save_file

from .data import TaskData
from .files import atomic_folder, atomic_write, cache_folder

FORMAT = 2  # bump when an entry's layout changes: older entries are then never read (2: checksums of tensors and record)


def digest(*parts) -> str:
    """A short stable hash of JSON-able parts."""
    return hashlib.blake2b(json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """A hash of tensors' names, types, shapes and bytes (sha1: a cache key, not a signature; ~0.06 s for MiniLM)."""
    h = hashlib.sha1()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        if t.numel():
            h.update(memoryview(t.view(torch.uint8).numpy()))
    return h.hexdigest()


_CODE: str | None = None


def code_digest() -> str:
    """The code of the teaching library (mtst/*.py, not mtst/lab) and the versions of the libraries it runs on."""
    global _CODE
    if _CODE is None:
        h = hashlib.blake2b(digest_size=16)
        for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
            h.update(path.name.encode() + path.read_bytes())
        _CODE = digest(FORMAT, h.hexdigest(), torch.__version__, transformers.__version__, sys.version_info[:2])
    return _CODE


def model_digest(model) -> str:
    """The model as a run starts from it: weights, which parameters learn, heads, labels, encoder settings, tokenizer."""
    enc = model.encoder
    return digest(tensors_digest(model.state_dict()), [(n, p.requires_grad) for n, p in model.named_parameters()],
                  {t: h.config for t, h in model.heads.items()}, model.label_names, enc.pooling, enc.normalize, enc.max_length,
                  tokenizer_digest(enc.tokenizer))


def tokenizer_digest(tokenizer) -> str:
    """The vocabulary and rules of a tokenizer, without the truncation and padding it was last called with (a fast
    tokenizer keeps those from its last call; mtst passes them at every call)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return type(tokenizer).__name__
    spec = json.loads(backend.to_str())
    spec.pop("truncation", None)
    spec.pop("padding", None)
    return digest(spec)


def data_digest(data) -> str:
    return digest(data.name, data.kind, data.texts, data.labels, data.label_names, data.tokens)


class RunCache:
    """A folder of finished runs (`runs/<key>/`: the weights that training changed as safetensors, the rest as JSON) and
    of predictions (`predictions/<key>.json`). `log` lists what this process asked of it, hit or miss."""

    def __init__(self, folder: str | Path | None = None, enabled: bool | None = None):
        self.folder = Path(folder) if folder is not None else cache_folder()
        self.enabled = os.environ.get("MTST_RUN_CACHE", "1") != "0" if enabled is None else bool(enabled)
        self.log: list[tuple[str, bool | str]] = []  # (kind, hit), or ("uncached", the callbacks that kept a run out)
        self.unusable: str | None = None  # why the folder could not be written, once it could not

    # ------------------------------------------------------------------ training runs
    def load_run(self, key: str) -> tuple[dict[str, torch.Tensor], dict] | None:
        """The changed weights and the record of a finished run, or None (a damaged entry: None and a warning)."""
        entry = self.folder / "runs" / key
        if self.unusable or not entry.is_dir():
            self.log.append(("run", False))
            return None
        try:
            meta = json.loads((entry / "run.json").read_text())
            if meta.get("format") != FORMAT or meta.get("key") != key:
                raise ValueError(f"format {meta.get('format')} / key {meta.get('key')}, expected {FORMAT} / {key}")
            checksum = meta.pop("checksum", None)
            if checksum != digest(meta):
                raise ValueError("the record does not match its checksum")
            state = load_file(str(entry / "weights.safetensors"))
            if sorted(state) != sorted(meta["weights"]):
                raise ValueError("the weights file does not hold the tensors the record lists")
            if tensors_digest(state) != meta["weights_digest"]:  # safetensors holds no checksum: bytes flipped in place load silently
                raise ValueError("the weights do not match their checksum")
        except Exception as e:  # noqa: BLE001 - any damage means: do not trust it, train again
            warnings.warn(f"run cache entry {entry} is damaged ({type(e).__name__}: {e}); training the run again and replacing it", stacklevel=3)
            self.log.append(("run", False))
            return None
        self.log.append(("run", True))
        return state, meta

    def save_run(self, key: str, weights: dict[str, torch.Tensor], meta: dict) -> None:
        state = {k: v.detach().cpu().contiguous().clone() for k, v in weights.items()}
        record = json.loads(json.dumps({"format": FORMAT, "key": key, "weights": sorted(weights), "weights_digest": tensors_digest(state),
                                        **meta}, default=str))  # as a reader will see it
        record["checksum"] = digest(record)

        def write():
            with atomic_folder(self.folder / "runs" / key) as tmp:
                save_file(state, str(tmp / "weights.safetensors"))
                (tmp / "run.json").write_text(json.dumps(record))

        self._write(write)

    # ------------------------------------------------------------------ predictions
    def load_json(self, kind: str, key: str):
        path = self.folder / kind / f"{key}.json"
        if self.unusable or not path.is_file():
            self.log.append((kind, False))
            return None
        try:
            rec = json.loads(path.read_text())
            if rec.get("format") != FORMAT or rec.get("key") != key:
                raise ValueError("another format or key")
            if rec.get("checksum") != digest(rec.get("value")):
                raise ValueError("the value does not match its checksum")
        except (ValueError, OSError) as e:
            warnings.warn(f"run cache entry {path} is damaged ({e}); computing it again", stacklevel=3)
            self.log.append((kind, False))
            return None
        self.log.append((kind, True))
        return rec["value"]

    def save_json(self, kind: str, key: str, value) -> None:
        value = json.loads(json.dumps(value))  # as a reader will see it (tuples become lists)
        text = json.dumps({"format": FORMAT, "key": key, "value": value, "checksum": digest(value)})
        self._write(lambda: atomic_write(self.folder / kind / f"{key}.json", text))

    def _write(self, write) -> None:
        """A write that fails on the folder itself (a file in its place, no permission, a full disk) warns once; from then
        on this process runs uncached, and what it computed is still returned."""
        if self.unusable:
            return
        try:
            write()
        except OSError as e:
            self.unusable = f"{type(e).__name__}: {e}"
            warnings.warn(f"the run cache folder {self.folder} cannot be used ({self.unusable}); running without the run cache "
                          f"from now on. Point MTST_CACHE_DIR at a writable folder, or set MTST_RUN_CACHE=0", stacklevel=4)

    # ------------------------------------------------------------------ housekeeping
    def clear(self) -> None:
        """Remove every entry (what `make clean` does)."""
        for sub in ("runs", "predictions"):
            shutil.rmtree(self.folder / sub, ignore_errors=True)

    def report(self) -> str:
        """What this process took from the cache, in one line."""
        def count(kind):
            got = [hit for k, hit in self.log if k == kind]
            return sum(got), len(got)

        if not self.enabled:
            return "run cache: off (MTST_RUN_CACHE=0); everything above was computed in this run"
        if self.unusable:
            return f"run cache ({self.folder}): not usable ({self.unusable}); everything above was computed in this run"
        (rh, rn), (ph, pn) = count("run"), count("predictions")
        line = (f"run cache ({self.folder}): {rh} of {rn} training runs and {ph} of {pn} prediction sets came from the cache; "
                f"the other {rn - rh} runs and {pn - ph} prediction sets were computed in this run")
        skipped = sorted({what for kind, what in self.log if kind == "uncached"})
        if skipped:
            line += (f"; not cached: {len([k for k, _ in self.log if k == 'uncached'])} runs with callbacks whose configuration it cannot "
                     f"read ({'; '.join(skipped)}): keep each __init__ argument under its own name, at module level")
        return line


_DEFAULT: RunCache | None = None


def default() -> RunCache:
    """The cache mtst.train and mtst.evaluate use unless told otherwise."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = RunCache()
    return _DEFAULT


def configure(folder: str | Path | None = None, enabled: bool | None = None) -> RunCache:
    """Point mtst at another cache folder, or turn the cache on or off, for the rest of this process."""
    global _DEFAULT
    _DEFAULT = RunCache(folder, enabled)
    return _DEFAULT


def report() -> str:
    return default().report()


def resolve(run_cache: bool | RunCache | None) -> RunCache | None:
    """The cache a call uses: None means the default one, False none, True the default even if it is off."""
    if run_cache is False:
        return None
    if isinstance(run_cache, RunCache):
        return run_cache if run_cache.enabled else None
    cache = default()
    return cache if (cache.enabled or run_cache is True) else None


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime())


# --------------------------------------------------------------------------- the memo layer above training


def _fingerprint(value):
    """A JSON-able stand-in for a callback's argument: data and tensors by their digest; None when it has none."""
    if isinstance(value, TaskData):
        return {"data": data_digest(value)}
    if torch.is_tensor(value):
        return {"tensor": tensors_digest({"": value})}
    if isinstance(value, dict):
        out = {str(k): _fingerprint(v) for k, v in value.items()}
        return None if any(v is None and value[k] is not None for k, v in zip(value, out.values())) else out
    if isinstance(value, (list, tuple)):
        out = [_fingerprint(v) for v in value]
        return None if any(o is None and v is not None for o, v in zip(out, value)) else out
    return value if value is None or isinstance(value, (bool, int, float, str)) else None


def callback_config(callback) -> dict | None:
    """The generic rule: a callback's class and its __init__ arguments read back from attributes of the same names;
    None when the class is defined in a function, an argument is not kept under its name, or it has no fingerprint."""
    cls = type(callback)
    if "<locals>" in cls.__qualname__:
        return None
    names = [p.name for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not all(hasattr(callback, n) for n in names):
        return None
    config = {n: _fingerprint(getattr(callback, n)) for n in names}
    if any(config[n] is None and getattr(callback, n) is not None for n in names):
        return None
    source = None
    if not cls.__module__.startswith("mtst."):  # mtst's own code is in the key already (code_digest)
        try:
            source = digest(inspect.getsource(cls))
        except (OSError, TypeError):  # defined where its source cannot be read (a notebook's __main__ on Python 3.11)
            return None
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "source": source, "config": config}


def _tagged(value):
    """JSON that keeps tuples (a log of (step, part) pairs) apart from lists."""
    if isinstance(value, tuple):
        return {"__tuple__": [_tagged(v) for v in value]}
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    if isinstance(value, dict):
        return {k: _tagged(v) for k, v in value.items()}
    return value


def _untagged(value):
    if isinstance(value, dict):
        return tuple(_untagged(v) for v in value["__tuple__"]) if set(value) == {"__tuple__"} else {k: _untagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untagged(v) for v in value]
    return value


def recorded_state(callback) -> dict:
    """What a callback recorded: its public attributes other than its __init__ arguments, where JSON can hold them."""
    args = set(callback_config(callback)["config"])
    out = {}
    for name, value in vars(callback).items():
        if name.startswith("_") or name in args:
            continue
        try:
            out[name] = json.loads(json.dumps(_tagged(value)))
        except (TypeError, ValueError):
            continue  # not JSON: a working buffer, not a record
    return out


def run_key(trainer) -> str | None:
    """What decides a run, hashed; None when a callback's configuration cannot be read (the run is then not cached)."""
    callbacks = [callback_config(cb) for cb in trainer.callbacks]
    if any(c is None for c in callbacks):
        return None
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [names.get(id(p), "?") for p in g["params"]]}
              for g in trainer.groups] if trainer.custom_groups else None
    cfg = {k: v for k, v in vars(trainer.config).items() if k != "progress"}
    return digest("train", code_digest(), model_digest(trainer.model), cfg, groups, callbacks, trainer.device.type,
                  {t: data_digest(d) for t, d in trainer.train_data.items()}, {t: data_digest(d) for t, d in trainer.validation.items()})


class Memo:
    """The run cache around one Trainer: `recall()` loads the recorded run into it (or None), `record(result)` keeps a
    run it trained. `mtst.training.cached_run` is the layer that uses it. Under several processes: never cached."""

    def __init__(self, trainer, run_cache: "bool | RunCache | None" = None):
        self.trainer = trainer
        self.store = None if trainer.dist.active else resolve(run_cache)  # one process's files, not N racing
        self.key = run_key(trainer) if self.store is not None else None
        if self.store is not None and self.key is None:
            skipped = [type(cb).__qualname__ for cb in trainer.callbacks if callback_config(cb) is None]
            self.store.log.append(("uncached", ", ".join(skipped)))

    def recall(self) -> tuple[pd.DataFrame, dict] | None:
        """The recorded run, loaded into the trainer (weights, which parameters learn, counters, what the callbacks
        recorded): its history and record; None when there is none."""
        found = self.store.load_run(self.key) if self.key is not None else None
        if found is None:
            return None
        t = time.perf_counter()
        weights, meta = found
        trainer, model = self.trainer, self.trainer.model
        missing = set(weights) - {n for n, _ in model.named_parameters()}
        if missing:
            raise RuntimeError(f"run cache entry {self.key} names parameters this model lacks: {sorted(missing)[:3]}")
        with torch.no_grad():
            params = dict(model.named_parameters())
            for n, w in weights.items():
                params[n].copy_(w)
            for n, p in params.items():
                p.requires_grad_(meta["requires_grad"][n])
        for cb, state in zip(trainer.callbacks, meta["callbacks"]):
            for name, value in state.items():
                setattr(cb, name, _untagged(value))
        model.train()
        history = pd.read_json(StringIO(meta["history"]), orient="split")
        trainer.rows, trainer.step = history.to_dict("records"), meta["steps"]
        trainer.best_step, trainer.best_score = meta["best_step"], meta["best_score"]
        trainer.features_build_s, trainer.optimizer_state_mib = meta["features_build_s"], meta["optimizer_state_mib"]
        trainer.adopted = [tuple(a) for a in meta["adopted"]]
        print(f"run cache: loaded a run trained on {meta['created']} ({meta['steps']} steps, {meta['wall_time_s']:.0f} s) "
              f"instead of training it again, in {time.perf_counter() - t:.1f} s")
        return history, meta

    def record(self, result) -> None:
        """Keep a finished run: the weights training could change, and the rest as JSON."""
        if self.key is None:
            return
        trainer, model = self.trainer, self.trainer.model
        names = {id(p): n for n, p in model.named_parameters()}
        weights = {names[i]: p for i, p in ((id(p), p) for p in model.parameters()) if i in trainer.optimized}
        self.store.save_run(self.key, weights, {
            "created": now(), "steps": result.steps, "wall_time_s": result.wall_time_s, "best_step": result.best_step,
            "best_score": result.best_score, "history": result.history.to_json(orient="split"),
            "features_build_s": trainer.features_build_s, "adopted": trainer.adopted, "optimizer_state_mib": trainer.optimizer_state_mib,
            "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
            "callbacks": [recorded_state(cb) for cb in trainer.callbacks]})


def cached_predictions(model, data, task: str, batch_size: int, precision: str, compute, run_cache: "bool | RunCache | None" = None) -> list:
    """`compute()`, or the predictions the same weights made on the same data before (keyed by the trained weights)."""
    store = resolve(run_cache)
    if store is None:
        return compute()
    key = digest("predictions", code_digest(), model_digest(model), data_digest(data), task, batch_size, precision, model.device.type)
    found = store.load_json("predictions", key)
    if found is None:
        found = compute()
        store.save_json("predictions", key, found)
    return found
