"""Metrics on held-out data: accuracy and macro-F1 for sentence tasks, entity-level F1 (seqeval) for NER."""

from __future__ import annotations

import pandas as pd
import torch

from .data import TaskData
from .model import MultiTaskModel, word_predictions
from .training import _autocast, check_task_data, make_batch


@torch.no_grad()
def predict_labels(model: MultiTaskModel, data: TaskData, task: str | None = None, batch_size: int = 64, precision: str = "auto") -> list:
    """Predicted label ids: one per sentence, or one list per tweet (word level) for token tasks."""
    task = task or data.name
    was_training = model.training
    model.eval()
    order = sorted(range(len(data)), key=lambda i: -len(data.texts[i]))
    preds: list = [None] * len(data)
    try:
        with _autocast(model.device, precision):
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = make_batch(model, data, idx, with_labels=False)
                logits = model(batch, [task])[task].float().argmax(-1).cpu()
                for r, i in enumerate(idx):
                    preds[i] = word_predictions(logits[r].tolist(), batch["word_ids"][r]) if data.kind == "token" else int(logits[r])
    finally:
        model.train(was_training)
    if data.kind == "token":
        # Words beyond max_length were never seen: they count as "O" (and as misses if they were entities).
        preds = [p + [0] * (len(words) - len(p)) for p, words in zip(preds, data.tokens)]
    return preds


def evaluate(model: MultiTaskModel, data: TaskData, task: str | None = None, batch_size: int = 64, precision: str = "auto") -> dict:
    """accuracy and macro-F1 (sentence tasks), entity-level precision/recall/F1 by seqeval (token tasks).
    `score` is the headline: accuracy, or entity F1."""
    task = task or data.name
    check_task_data(task, data, len(model.label_names[task]))
    preds = predict_labels(model, data, task, batch_size, precision)
    if data.kind == "token":
        from seqeval.metrics import f1_score, precision_score, recall_score

        names = data.label_names
        y_true = [[names[y] for y in seq] for seq in data.labels]
        y_pred = [[names[y] for y in seq] for seq in preds]
        f1 = float(f1_score(y_true, y_pred, zero_division=0))
        return {"entity_f1": f1, "precision": float(precision_score(y_true, y_pred, zero_division=0)), "recall": float(recall_score(y_true, y_pred, zero_division=0)), "score": f1}
    from sklearn.metrics import accuracy_score, f1_score

    acc = float(accuracy_score(data.labels, preds))
    return {"accuracy": acc, "macro_f1": float(f1_score(data.labels, preds, average="macro", labels=list(range(data.num_labels)), zero_division=0)), "score": acc}


def evaluate_all(model: MultiTaskModel, datasets: dict[str, TaskData], **kw) -> pd.DataFrame:
    """One row per task with its metrics."""
    return pd.DataFrame([{"task": t, **evaluate(model, d, t, **kw)} for t, d in datasets.items()])
