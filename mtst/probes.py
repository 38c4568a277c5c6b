"""Measure how well an embedding space separates labels: kNN and linear probes (scikit-learn)."""

from __future__ import annotations

import numpy as np
import torch

from .checks import check_count


def _as_numpy(x) -> np.ndarray:
    return x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)


def knn_accuracy(embeddings, labels, k: int = 5, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a cosine kNN classifier: how well neighbours share a label."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    check_count(k, "k (neighbours)")
    X, y = _as_numpy(embeddings), np.asarray(labels)
    if len(X) != len(y):
        raise ValueError(f"{len(X)} embeddings but {len(y)} labels: pass one label per embedding")
    folds = max(2, min(folds, int(np.bincount(y).max()) if len(y) else 0))
    fewest = len(y) - -(-len(y) // folds)  # training examples in the smallest training fold
    if k > fewest:  # scikit-learn would score such a fold NaN, and the mean with it
        raise ValueError(f"k={k} neighbours need {k} training examples in each of {folds} folds, but {len(y)} examples "
                         f"leave {fewest}: pass k ≤ {fewest} or at least {k + -(-k // (folds - 1))} examples")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    clf = KNeighborsClassifier(n_neighbors=k, metric="cosine")
    return float(cross_val_score(clf, X, y, cv=cv).mean())


def linear_probe_accuracy(train_x, train_y, test_x, test_y, seed: int = 0) -> float:
    """Accuracy of a logistic regression fitted on frozen embeddings: what a linear head can read off."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(_as_numpy(train_x))
    clf = LogisticRegression(max_iter=2000, random_state=seed)
    clf.fit(scaler.transform(_as_numpy(train_x)), np.asarray(train_y))
    return float(clf.score(scaler.transform(_as_numpy(test_x)), np.asarray(test_y)))


def nearest_neighbours(query: torch.Tensor, corpus: torch.Tensor, k: int = 5) -> tuple[list[int], list[float]]:
    """Indices and cosine similarities of the k corpus rows closest to one query vector."""
    q = torch.nn.functional.normalize(query.reshape(1, -1).float(), dim=-1)
    c = torch.nn.functional.normalize(corpus.float(), dim=-1)
    sims = (c @ q.T).squeeze(1)
    top = torch.topk(sims, k=min(k, len(sims)))
    return top.indices.tolist(), top.values.tolist()


def pooling_table(encoder, tasks: dict, modes: tuple[str, ...] = ("mean", "cls", "max"), seed: int = 0):
    """For each pooling mode and task: kNN accuracy on test embeddings and a linear probe fitted on train.

    `tasks` maps a task name to a (train, test) pair of TaskData (sentence tasks).
    """
    import pandas as pd

    rows = []
    embedded = {}  # one encoder pass per text set serves every mode
    for name, (train, test) in tasks.items():
        embedded[name] = [encoder.encode_poolings(d.texts, modes, show_progress=False) for d in (train, test)]
    for mode in modes:
        for name, (train, test) in tasks.items():
            tr, te = (e[mode] for e in embedded[name])
            rows.append(
                {
                    "pooling": mode,
                    "task": name,
                    "knn_accuracy": knn_accuracy(te, test.labels, seed=seed),
                    "linear_probe_accuracy": linear_probe_accuracy(tr, train.labels, te, test.labels, seed=seed),
                }
            )
    return pd.DataFrame(rows)
