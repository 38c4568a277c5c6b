"""Frozen features: run a frozen part of the encoder once, not at every step (a strategy the training loop calls).

A frozen layer maps a sentence to the same output at every epoch, so running it again is wasted work (dropout aside).
- `EncoderCache`: the whole encoder frozen. Every example's encoder output is computed once (encoder in eval mode, a
  feature extractor) and the heads train on it; `TrainConfig(cache_encoder=True)`.
- `PrefixCache`: the embeddings and the lower k layers frozen. Every example's hidden states after layer k-1 are
  computed once (that prefix in eval mode) and each step runs only layers k and up and the heads;
  `TrainConfig(cache_prefix=True)`.
Both train with the same schedule and batches as the uncached loop; the one difference is that dropout in the cached
part is off (`EncoderEvalMode` is the uncached twin). The validation sets are cached the same way, so validating runs
only what learns.
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pad_sequence

from .batches import make_batch
from .callbacks import Callback
from .data import TaskData
from .model import IGNORE_INDEX, MultiTaskModel
from .runcache import data_digest, digest, tensors_digest, tokenizer_digest


def encoder_is_frozen(model: MultiTaskModel) -> bool:
    return not any(p.requires_grad for p in model.encoder.parameters())


def frozen_prefix_depth(model: MultiTaskModel) -> int | None:
    """k when the embeddings and encoder layers 0..k-1 are frozen (0: only the embeddings); None when the embeddings learn."""
    enc = model.encoder
    if any(p.requires_grad for p in enc.embeddings.parameters()):
        return None
    k = 0
    for layer in enc.layers:
        if any(p.requires_grad for p in layer.parameters()):
            break
        k += 1
    return k


def _prefix_modules(model: MultiTaskModel, k: int | None) -> list:
    enc = model.encoder
    return [enc] if k is None else [enc.embeddings, *enc.layers[:k]]


class EncoderEvalMode(Callback):
    """A training callback that keeps the encoder (k=None), or its embeddings and lower k layers, in eval mode (no
    dropout there) while the rest trains: the uncached twin of EncoderCache (or of PrefixCache with that k)."""

    def __init__(self, k: int | None = None):
        self.k = k

    def on_train_begin(self, trainer) -> None:
        for m in _prefix_modules(trainer.model, self.k):
            m.eval()

    def on_step_begin(self, trainer, step: int, task: str) -> None:
        self.on_train_begin(trainer)  # evaluation switches the whole model back to train mode


def build(model: MultiTaskModel, train_data: dict[str, TaskData], validation: dict[str, TaskData], progress: bool = False):
    """The features of the frozen part on the training and validation data, for `cache_encoder` / `cache_prefix`:
    an EncoderCache when the whole encoder is frozen, else a PrefixCache of the frozen embeddings and lower layers."""
    if encoder_is_frozen(model):
        def make(data):
            return EncoderCache.shared(model, data)  # the same frozen encoder on the same data: built once per process
    else:
        k = frozen_prefix_depth(model)
        if k is None:
            raise ValueError("cache_prefix=True needs a frozen prefix, at least the embeddings: call "
                             "mtst.freeze(model, 'embeddings', 'layers:0-1') (for example) first, or train without the cache")

        def make(data):
            return PrefixCache(model, data, k, progress=progress)
    return make(train_data), (make(validation) if validation else None)


def frozen_modules(model: MultiTaskModel, features) -> list:
    """The modules whose outputs `features` holds: a run on them cannot unfreeze these."""
    return [] if features is None else _prefix_modules(model, getattr(features, "k", None))


def _batches(model: MultiTaskModel, data: TaskData, batch_size: int, progress: bool, desc: str):
    from tqdm.auto import tqdm

    for start in tqdm(range(0, len(data), batch_size), desc=desc, disable=not progress, leave=False):
        idx = list(range(start, min(start + batch_size, len(data))))
        batch = make_batch(model, data, idx)
        yield batch, {k: batch[k].to(model.device) for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}


class _Cache:
    """What both caches share: labels (and, for token tasks, which word each piece is) per example."""

    kind: dict[str, str]
    labels: dict[str, list | torch.Tensor]
    word_ids: dict[str, list[list[int | None]]]

    def __len__(self) -> int:
        return sum(self.size(t) for t in self.labels)

    def size(self, task: str) -> int:
        return len(self.labels[task])

    def check(self, task: str, data: TaskData) -> None:
        """Refuse a cache that was not built from this data."""
        if task not in self.labels or self.size(task) != len(data):
            have = f"{self.size(task)} examples of {task!r}" if task in self.labels else f"no {task!r} (it holds {sorted(self.labels)})"
            raise ValueError(f"the cache holds {have}, not the {len(data)} given: build {type(self).__name__}(model, {{{task!r}: data}}) from this data")


_SHARED: dict[str, "EncoderCache"] = {}  # EncoderCache.shared: the caches built in this process, oldest first


class EncoderCache(_Cache):
    """Each example's encoder output, computed once: the pooled vector for sentence tasks, the word-piece
    vectors (with their aligned labels, and the word each piece belongs to) for token tasks."""

    def __init__(self, model: MultiTaskModel, train_data: dict[str, TaskData], batch_size: int = 64, progress: bool = False):
        if not encoder_is_frozen(model):
            raise ValueError("cache_encoder=True needs the whole encoder frozen: call mtst.freeze(model, 'encoder') first, "
                             "or train without the cache")
        self.kind = {t: model.task_kind(t) for t in train_data}
        self.features: dict[str, torch.Tensor | list[torch.Tensor]] = {}
        self.labels, self.word_ids = {}, {}
        was_training = model.encoder.training
        model.encoder.eval()
        try:
            with torch.inference_mode():
                for task, data in train_data.items():
                    feats, labels, words = [], [], []
                    for batch, inputs in _batches(model, data, batch_size, progress, f"cache {task}"):
                        out = model.encoder(inputs)
                        if self.kind[task] == "token":
                            lengths = batch["attention_mask"].sum(1).tolist()
                            feats += [out["token_embeddings"][r, :n].float().cpu().clone() for r, n in enumerate(lengths)]
                            labels += [batch["labels"][r, :n].clone() for r, n in enumerate(lengths)]
                            words += [list(batch["word_ids"][r][:n]) for r, n in enumerate(lengths)]
                        else:
                            feats.append(out["sentence_embedding"].float().cpu())
                            labels.append(batch["labels"])
                    if self.kind[task] == "token":
                        self.features[task], self.labels[task], self.word_ids[task] = feats, labels, words
                    else:
                        self.features[task], self.labels[task] = torch.cat(feats), torch.cat(labels)
        finally:
            model.encoder.train(was_training)

    @classmethod
    def shared(cls, model: MultiTaskModel, data: dict[str, TaskData]) -> "EncoderCache":
        """The cache of this frozen encoder's outputs on this data, built once per process: scenarios that freeze the
        same pretrained encoder (the feature extractor at 1× and 10× its head steps, the frozen backbone's test scores)
        share it. Keyed by the encoder's weights, settings and tokenizer and by the data, so a changed encoder or
        dataset is encoded anew."""

        enc = model.encoder
        key = digest(tensors_digest(enc.state_dict()), enc.pooling, enc.max_length, tokenizer_digest(enc.tokenizer), str(model.device),
                     {t: data_digest(d) for t, d in data.items()}, {t: model.task_kind(t) for t in data})
        if key not in _SHARED:
            _SHARED[key] = cls(model, data)
            while len(_SHARED) > 8:
                _SHARED.pop(next(iter(_SHARED)))
        return _SHARED[key]

    def batch(self, task: str, idx: list[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The cached head inputs and labels of examples idx, padded like a tokenized batch."""
        if self.kind[task] == "token":
            feats = pad_sequence([self.features[task][i] for i in idx], batch_first=True)
            labels = pad_sequence([self.labels[task][i] for i in idx], batch_first=True, padding_value=IGNORE_INDEX)
        else:
            feats, labels = self.features[task][idx], self.labels[task][idx]
        return feats.to(device), labels.to(device)

    def head_inputs(self, model: MultiTaskModel, task: str, idx: list[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """What task's head reads for examples idx, and their labels: straight from the cache."""
        return self.batch(task, idx, device)

    def nbytes(self) -> int:
        feats = [f for v in self.features.values() for f in (v if isinstance(v, list) else [v])]
        return sum(f.numel() * f.element_size() for f in feats)


class PrefixCache(_Cache):
    """Each example's hidden states after the frozen embeddings and lower k layers (word pieces × dim, float32),
    computed once with that prefix in eval mode, with its labels aligned to the pieces."""

    def __init__(self, model: MultiTaskModel, data: dict[str, TaskData], k: int, batch_size: int = 64, progress: bool = False):
        depth = frozen_prefix_depth(model)
        if depth is None or depth < k:
            raise ValueError(f"a prefix cache of depth {k} needs the embeddings and layers 0-{k - 1} frozen, but "
                             + ("the embeddings learn" if depth is None else f"only {depth} lower layers are frozen")
                             + f": call mtst.freeze(model, 'embeddings', 'layers:0-{k - 1}') first")
        self.k = k
        self.kind = {t: model.task_kind(t) for t in data}
        self.hidden: dict[str, list[torch.Tensor]] = {}
        self.labels, self.word_ids = {}, {}
        modules = _prefix_modules(model, k)
        was = [m.training for m in modules]
        for m in modules:
            m.eval()
        try:
            with torch.inference_mode():
                for task, d in data.items():
                    hidden, labels, words = [], [], []
                    for batch, inputs in _batches(model, d, batch_size, progress, f"prefix cache {task}"):
                        h = model.encoder.hidden_after(inputs, k).float().cpu()
                        lengths = batch["attention_mask"].sum(1).tolist()
                        hidden += [h[r, :n].clone() for r, n in enumerate(lengths)]
                        if self.kind[task] == "token":
                            labels += [batch["labels"][r, :n].clone() for r, n in enumerate(lengths)]
                            words += [list(batch["word_ids"][r][:n]) for r, n in enumerate(lengths)]
                        else:
                            labels += batch["labels"].tolist()
                    self.hidden[task], self.labels[task] = hidden, labels
                    if words:
                        self.word_ids[task] = words
        finally:
            for m, w in zip(modules, was):
                m.train(w)

    def head_inputs(self, model: MultiTaskModel, task: str, idx: list[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Layers k and up over the cached hidden states of examples idx (with gradients where they learn), pooled for
        sentence tasks: what task's head reads, and the labels."""
        hidden = pad_sequence([self.hidden[task][i] for i in idx], batch_first=True).to(device)
        lengths = torch.tensor([len(self.hidden[task][i]) for i in idx])
        mask = (torch.arange(hidden.shape[1])[None, :] < lengths[:, None]).long().to(device)
        out = model.encoder.forward_from(hidden, mask, self.k)
        if self.kind[task] == "token":
            labels = pad_sequence([self.labels[task][i] for i in idx], batch_first=True, padding_value=IGNORE_INDEX)
            return out["token_embeddings"], labels.to(device)
        return out["sentence_embedding"], torch.tensor([self.labels[task][i] for i in idx], device=device)

    def nbytes(self) -> int:
        return sum(h.numel() * h.element_size() for v in self.hidden.values() for h in v)
