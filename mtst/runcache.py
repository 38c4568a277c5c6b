"""A cache of finished runs, so that a run trained once (in notebook 02, say) is not trained again (in 03, or when a
notebook runs twice). An entry is keyed by everything that decides the run: the code of mtst, the library versions,
the starting weights and which of them are frozen, the tokenizer, the training and validation data, the config, the
parameter groups and the callbacks. A hit loads the trained weights, the history and what the callbacks recorded,
and says so; predictions on held-out data are cached the same way, keyed by the trained weights.

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
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .files import atomic_folder, atomic_write

FORMAT = 2  # bump when an entry's layout changes: older entries are then never read (2: checksums of tensors and record)


def default_folder() -> Path:
    """$MTST_CACHE_DIR, else $XDG_CACHE_HOME/mtst, else ~/.cache/mtst."""
    if os.environ.get("MTST_CACHE_DIR"):
        return Path(os.environ["MTST_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mtst"


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
        import transformers

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
        self.folder = Path(folder) if folder is not None else default_folder()
        self.enabled = os.environ.get("MTST_RUN_CACHE", "1") != "0" if enabled is None else bool(enabled)
        self.log: list[tuple[str, bool]] = []  # (kind, hit)
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
        return (f"run cache ({self.folder}): {rh} of {rn} training runs and {ph} of {pn} prediction sets came from the cache; "
                f"the other {rn - rh} runs and {pn - ph} prediction sets were computed in this run")


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
