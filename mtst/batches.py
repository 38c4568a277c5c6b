"""From task data to what the model and the loss take: checked examples, tokenized batches with word labels
aligned to first word pieces, the masked loss, and the autocast a precision asks for. Training, evaluation, the
encoder cache and the diagnostics all build their batches here, so they see the same inputs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .data import TaskData
from .model import IGNORE_INDEX, MultiTaskModel, align_labels


def check_task_data(task: str, data: TaskData, num_labels: int) -> None:
    """Refuse empty data, labels out of range, and NER examples whose words and tags differ in length."""
    if len(data) == 0:
        raise ValueError(f"the {task!r} dataset is empty: nothing to train or evaluate on")
    if data.kind == "token":
        for i, (words, tags) in enumerate(zip(data.tokens, data.labels)):
            if len(words) != len(tags):
                raise ValueError(f"{task!r} example {i}: {len(words)} tokens but {len(tags)} tags ({' '.join(words)[:60]!r})")
        flat = [y for seq in data.labels for y in seq]
    else:
        flat = list(data.labels)
    bad = next((y for y in flat if not (isinstance(y, (int, np.integer)) and 0 <= y < num_labels)), None)
    if bad is not None:
        raise ValueError(f"{task!r}: label {bad!r} is out of range; the head has {num_labels} labels (0..{num_labels - 1})")


def make_batch(model: MultiTaskModel, data: TaskData, idx, with_labels: bool = True) -> dict:
    """Tokenize examples idx of a task; token tasks get their word labels aligned to first word pieces."""
    texts = [data.texts[i] for i in idx]
    words = [data.tokens[i] for i in idx] if data.tokens is not None else None
    batch = model.tokenize(texts, words)
    if with_labels:
        if data.kind == "token":
            width = batch["input_ids"].shape[1]
            rows = [align_labels(batch["word_ids"][r], data.labels[i]) for r, i in enumerate(idx)]
            batch["labels"] = torch.tensor([row + [IGNORE_INDEX] * (width - len(row)) for row in rows])
        else:
            batch["labels"] = torch.tensor([data.labels[i] for i in idx])
    return batch


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=IGNORE_INDEX)
