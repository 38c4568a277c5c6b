"""Pictures of the data and of embedding space. Each helper takes ax=None and returns the Axes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from .checks import check_choice
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

PROJECTIONS = ("umap", "pca")


def project_2d(embeddings, method: str = "umap", seed: int = 0) -> np.ndarray:
    """2-D coordinates of embeddings by UMAP (cosine) or PCA, seeded."""
    X = _as_numpy(embeddings)
    check_choice(method, PROJECTIONS, "projection")
    if len(X) < 4:  # UMAP's spectral start fails below 4 points, with a scipy error
        raise ValueError(f"a 2-D projection needs at least 4 embeddings, got {len(X)}")
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(X)
    import umap

    reducer = umap.UMAP(n_components=2, metric="cosine", random_state=seed, n_neighbors=min(15, len(X) - 1), n_jobs=1)
    return reducer.fit_transform(X)


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
    if len(embeddings) != len(sentences):
        raise ValueError(f"{len(embeddings)} embeddings but {len(sentences)} sentences: pass the sentences they encode, in order")
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


def plot_learning_curves(history, ax=None, smooth: int = 10):
    """Training loss per task over steps (rolling mean), with validation scores on a twin axis."""
    ax = _ax(ax, (8, 4))
    train = history[history.phase == "train"]
    for task, d in train.groupby("task", sort=False):
        ax.plot(d.step, d.loss.rolling(smooth, min_periods=1).mean(), label=f"{task} loss")
    ax.set_xlabel("step")
    ax.set_ylabel(f"training loss (rolling mean of {smooth})")
    val = history[history.phase == "validation"]
    if len(val):
        ax2 = ax.twinx()
        for task, d in val.groupby("task", sort=False):
            ax2.plot(d.step, d.score, "o--", label=f"{task} validation score")
        ax2.set_ylabel("validation score (accuracy / entity F1)")
        ax2.set_ylim(0, 1)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="center right")
    else:
        ax.legend(fontsize=7)
    return ax


def plot_confusion(y_true, y_pred, label_names: list[str], ax=None, normalize: bool = True):
    """Confusion matrix (rows: true label), normalised per row by default."""
    from sklearn.metrics import confusion_matrix

    outside = sorted({int(y) for y in [*y_true, *y_pred] if not 0 <= y < len(label_names)})
    if outside:  # confusion_matrix would drop them without a word
        raise ValueError(f"labels {outside} have no name: label_names has {len(label_names)} (labels 0 to {len(label_names) - 1})")
    ax = _ax(ax, (7, 6))
    cm = confusion_matrix(y_true, y_pred, labels=list(range(len(label_names))))
    if normalize:
        cm = cm / cm.sum(1, keepdims=True).clip(min=1)
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(len(label_names)), label_names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(label_names)), label_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.figure.colorbar(im, ax=ax, fraction=0.046)
    return ax


def plot_architecture(model, ax=None):
    """The multi-task model as boxes: tokens → embeddings → layers → pooling → heads, with parameter counts."""
    from matplotlib.patches import FancyBboxPatch

    ax = _ax(ax, (9, 5))
    enc = model.encoder
    n_layers = len(enc.layers)

    def box(x, y, w, h, text, color):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=color, ec="k", lw=0.8))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8)

    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    box(0.0, 0.0, 0.22, 0.08, "word pieces + mask", "#eeeeee")
    box(0.0, 0.12, 0.22, 0.08, f"embeddings\n{count(enc.embeddings) / 1e6:.1f} M", "#cfe2f3")
    for i in range(n_layers):
        box(0.0, 0.24 + i * 0.1, 0.22, 0.08, f"layer {i}  ({count(enc.layers[i]) / 1e6:.2f} M)", "#9fc5e8")
    top = 0.24 + n_layers * 0.1
    box(0.3, top - 0.1, 0.2, 0.08, f"{enc.pooling} pooling\n(no parameters)", "#d9ead3")
    heads = list(model.heads.items())
    for j, (task, head) in enumerate(heads):
        y = 0.1 + j * (top - 0.1) / max(1, len(heads))
        src = "token embeddings" if head.kind == "token" else "sentence embedding"
        box(0.62, y, 0.3, 0.1, f"head:{task} ({head.kind})\n{len(model.label_names[task])} labels · {count(head):,} params\nreads the {src}", "#fce5cd")
        start = (0.5, top - 0.06) if head.kind == "sentence" else (0.22, top - 0.06)
        ax.annotate("", xy=(0.62, y + 0.05), xytext=start, arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax.annotate("", xy=(0.3, top - 0.06), xytext=(0.22, top - 0.06), arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax.set_xlim(-0.02, 0.95)
    ax.set_ylim(-0.02, top + 0.02)
    ax.axis("off")
    ax.set_title(f"one shared encoder ({count(enc) / 1e6:.1f} M parameters), run once per batch, feeding {len(heads)} heads", fontsize=9)
    return ax
