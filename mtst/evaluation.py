"""Metrics on held-out data: accuracy and macro-F1 for sentence tasks, entity-level F1 (seqeval) for NER."""

from __future__ import annotations

import pandas as pd
import torch

from . import distributed, runcache
from .batches import check_task_data, make_batch
from .checks import check_count
from .data import TaskData
from .features import EncoderCache, PrefixCache
from .model import MultiTaskModel, word_predictions
from .precision import autocast
from .precision import resolve as resolve_precision


@torch.no_grad()
def predict_labels(model: MultiTaskModel, data: TaskData, task: str | None = None, batch_size: int = 64, precision: str = "auto",
                   cache: EncoderCache | PrefixCache | None = None) -> list:
    """Predicted label ids: one per sentence, or one list per tweet (word level) for token tasks. With the frozen
    encoder's features of this data (`EncoderCache`) only the head runs; with a `PrefixCache`, only the layers above
    its frozen prefix and the head. Under `accelerate launch` each process predicts its share of the examples and all
    of them are gathered, each example once."""
    task = task or data.name
    model._head(task)  # KeyError listing the model's tasks
    check_count(batch_size, "batch_size")
    if cache is not None:
        cache.check(task, data)
    return _predict(model, data, task, batch_size, precision, cache, distributed.current())


def _predict(model: MultiTaskModel, data: TaskData, task: str, batch_size: int, precision: str, cache,
             dist: distributed.Distributed = distributed.SINGLE) -> list:
    was_training = model.training
    model.eval()
    order = sorted(range(len(data)), key=lambda i: -len(data.texts[i]))  # longest first: batches pad little
    order = order[dist.rank :: dist.num_processes]  # this process's share (all of it, alone)
    preds: list = [None] * len(data)
    try:
        with autocast(model.device, precision):
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                if cache is None:
                    batch = make_batch(model, data, idx, with_labels=False)
                    logits, word_ids = model(batch, [task])[task], batch.get("word_ids")
                else:
                    logits, word_ids = model.heads[task](cache.head_inputs(model, task, idx, model.device)[0]), None
                logits = logits.float().argmax(-1).cpu()
                for r, i in enumerate(idx):
                    if data.kind == "token":
                        preds[i] = word_predictions(logits[r].tolist(), word_ids[r] if cache is None else cache.word_ids[task][i])
                    else:
                        preds[i] = int(logits[r])
    finally:
        model.train(was_training)
    if dist.active:
        for i, p in dist.gather([(i, preds[i]) for i in order]):
            preds[i] = p
    if data.kind == "token":
        # Words beyond max_length were never seen: they count as "O" (and as misses if they were entities).
        preds = [p + [0] * (len(words) - len(p)) for p, words in zip(preds, data.tokens)]
    return preds


def evaluate(model: MultiTaskModel, data: TaskData, task: str | None = None, batch_size: int = 64, precision: str = "auto",
             cache: EncoderCache | PrefixCache | None = None, run_cache=None) -> dict:
    """accuracy and macro-F1 (sentence tasks), entity-level precision/recall/F1 by seqeval (token tasks).
    `score` is the headline: accuracy, or entity F1. `cache`: as in `predict_labels`. The same weights on the same data
    were predicted before: the predictions come from the run cache (`mtst.runcache`; run_cache=False: never)."""
    task = task or data.name
    model._head(task)  # KeyError listing the model's tasks
    check_task_data(task, data, len(model.label_names[task]))
    preds = runcache.cached_predictions(model, data, task, batch_size, resolve_precision(model.device, precision),
                                        lambda: predict_labels(model, data, task, batch_size, precision, cache),
                                        False if distributed.current().active else run_cache)
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
