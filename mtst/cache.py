"""Train heads on cached encoder outputs when the whole encoder is frozen.

A frozen encoder gives the same output for a sentence at every epoch, so running it again is wasted work:
encode every training example once (encoder in eval mode, as a feature extractor), then each step only runs
the heads. `TrainConfig(cache_encoder=True)` does this inside the normal loop, with the same task schedule
and batches, so it trains the same heads as the uncached loop with the encoder in eval mode. The validation
sets are cached the same way, once, so each validation runs only the heads too.
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pad_sequence

from .data import TaskData
from .model import IGNORE_INDEX, MultiTaskModel
from .training import Callback


def encoder_is_frozen(model: MultiTaskModel) -> bool:
    return not any(p.requires_grad for p in model.encoder.parameters())


class EncoderEvalMode(Callback):
    """A training callback that keeps the encoder in eval mode (no dropout in it) while the heads train: the
    uncached twin of the cache, which computes its features in eval mode."""

    def on_train_begin(self, trainer) -> None:
        trainer.model.encoder.eval()

    def on_step_begin(self, trainer, step: int, task: str) -> None:
        trainer.model.encoder.eval()  # evaluation switches the whole model back to train mode


class EncoderCache:
    """Each example's encoder output, computed once: the pooled vector for sentence tasks, the word-piece
    vectors (with their aligned labels, and the word each piece belongs to) for token tasks."""

    def __init__(self, model: MultiTaskModel, train_data: dict[str, TaskData], batch_size: int = 64, progress: bool = False):
        from tqdm.auto import tqdm

        from .batches import make_batch

        if not encoder_is_frozen(model):
            raise ValueError("cache_encoder=True needs the whole encoder frozen: call mtst.freeze(model, 'encoder') first, "
                             "or train without the cache")
        self.kind = {t: model.task_kind(t) for t in train_data}
        self.features: dict[str, torch.Tensor | list[torch.Tensor]] = {}
        self.labels: dict[str, torch.Tensor | list[torch.Tensor]] = {}
        self.word_ids: dict[str, list[list[int | None]]] = {}  # token tasks: which word each cached piece is
        was_training = model.encoder.training
        model.encoder.eval()
        device = model.device
        try:
            with torch.inference_mode():
                for task, data in train_data.items():
                    feats, labels, words = [], [], []
                    for start in tqdm(range(0, len(data), batch_size), desc=f"cache {task}", disable=not progress, leave=False):
                        idx = list(range(start, min(start + batch_size, len(data))))
                        batch = make_batch(model, data, idx)
                        inputs = {k: batch[k].to(device) for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
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

    def batch(self, task: str, idx: list[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The cached head inputs and labels of examples idx, padded like a tokenized batch."""
        if self.kind[task] == "token":
            feats = pad_sequence([self.features[task][i] for i in idx], batch_first=True)
            labels = pad_sequence([self.labels[task][i] for i in idx], batch_first=True, padding_value=IGNORE_INDEX)
        else:
            feats, labels = self.features[task][idx], self.labels[task][idx]
        return feats.to(device), labels.to(device)

    def __len__(self) -> int:
        return sum(len(v) for v in self.labels.values())

    def size(self, task: str) -> int:
        return len(self.labels[task])

    def nbytes(self) -> int:
        feats = [f for v in self.features.values() for f in (v if isinstance(v, list) else [v])]
        return sum(f.numel() * f.element_size() for f in feats)
