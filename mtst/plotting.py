"""Pictures of the data and of embedding space. Each helper takes ax=None and returns the Axes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from .data import TaskData
from .probes import _as_numpy, knn_accuracy


def _ax(ax, figsize=(6, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_label_distribution(data: TaskData, ax=None, top: int | None = None):
    """Bar chart of how often each label occurs (per word for token tasks, without "O")."""
    ax = _ax(ax)
    counts = data.label_counts()
    if data.kind == "token":
        counts.pop("O", None)
        # One bar per entity type: B- and I- together.
        merged: dict[str, int] = {}
        for name, c in counts.items():
            merged[name[2:]] = merged.get(name[2:], 0) + c
        counts = merged
    items = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
    names, values = zip(*items)
    ax.barh(range(len(values)), values, color="tab:blue")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    unit = "entity tokens" if data.kind == "token" else "examples"
    ax.set_xlabel(unit)
    ax.set_title(f"{data.name} · {data.split} · {len(data):,} examples")
    return ax


def project_2d(embeddings, method: str = "umap", seed: int = 0) -> np.ndarray:
    """2-D coordinates of embeddings by UMAP (cosine) or PCA, seeded."""
    X = _as_numpy(embeddings)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(X)
    if method == "umap":
        import umap

        reducer = umap.UMAP(n_components=2, metric="cosine", random_state=seed, n_neighbors=min(15, len(X) - 1), n_jobs=1)
        return reducer.fit_transform(X)
    raise ValueError(f"unknown projection {method!r}; valid options: umap, pca")


def plot_embedding_space(
    embeddings,
    labels,
    label_names: list[str] | None = None,
    method: str = "umap",
    title: str = "",
    ax=None,
    seed: int = 0,
    coords: np.ndarray | None = None,
):
    """Scatter of embedding space coloured by label, titled with the kNN accuracy measured in that space."""
    ax = _ax(ax, (5, 5))
    labels = np.asarray(labels)
    xy = project_2d(embeddings, method, seed) if coords is None else coords
    acc = knn_accuracy(embeddings, labels, seed=seed)
    n = int(labels.max()) + 1
    cmap = plt.get_cmap("tab20" if n > 10 else "tab10")
    for c in range(n):
        m = labels == c
        name = label_names[c] if label_names else str(c)
        ax.scatter(xy[m, 0], xy[m, 1], s=6, color=cmap(c % cmap.N), label=name, alpha=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{title}\n{method.upper()} · 5-NN accuracy {acc:.1%}", fontsize=10)
    if n <= 10:
        ax.legend(fontsize=7, markerscale=2, loc="best")
    ax.knn_accuracy = acc  # the number the title shows, for the notebook's tables
    return ax


def plot_similarity_heatmap(embeddings: torch.Tensor, sentences: list[str], ax=None, wrap: int = 40):
    """Cosine similarity of every pair of sentences, annotated."""
    ax = _ax(ax, (7, 6))
    e = torch.nn.functional.normalize(torch.as_tensor(embeddings).float(), dim=-1)
    sim = (e @ e.T).numpy()
    im = ax.imshow(sim, vmin=-0.2, vmax=1.0, cmap="viridis")
    short = [s if len(s) <= wrap else s[: wrap - 1] + "…" for s in sentences]
    ax.set_xticks(range(len(short)), range(len(short)), fontsize=8)
    ax.set_yticks(range(len(short)), [f"{i}: {s}" for i, s in enumerate(short)], fontsize=8)
    for i in range(len(sim)):
        for j in range(len(sim)):
            ax.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w" if sim[i, j] < 0.6 else "k")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, label="cosine similarity")
    return ax
