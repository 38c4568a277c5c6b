"""Configuration in one home: the sizes (how much data, how long a run), the knobs of a training run as one
dataclass whose defaults are the teaching defaults, their checks, and the recipe every notebook and `make results`
trains with (mtst.lab derives its grids from `recipe`).

    cfg = mtst.TrainConfig(epochs=2, lr=1e-4, head_lr=1e-3, layer_decay=0.9)
    cfg = mtst.recipe("demo", seed=0)   # the notebooks' recipe at the live-session size
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .checks import check_choice, check_count, check_device
from .precision import TRAIN_PRECISIONS
from .weighting import check_weighting

SCHEDULES = ("constant", "constant_with_warmup", "linear", "cosine", "slanted_triangular")
SAMPLERS = ("round_robin", "proportional", "temperature")


@dataclass(frozen=True)
class SizeSpec:
    """How much of each split a size keeps, how long a text may be, and how long a notebook's training run is."""

    train: int | None  # examples per task in train; None keeps all
    validation: int | None  # examples per task in validation
    test: int | None  # examples per task in test
    max_length: int  # word pieces per text fed to the encoder at this size
    epochs: float = 1.0  # passes over each task's training examples in a notebook's run (mtst.recipe)
    batch_size: int = 32
    steps: int | None = None  # a fixed number of steps per run instead (ci: enough to prove the code runs)
    task_epochs: dict[str, float] | None = None  # passes over named tasks instead of `epochs`


SIZES: dict[str, SizeSpec] = {
    # CI: every notebook in about a minute on 2 cores; the runs are a few steps long and prove that the code runs.
    "ci": SizeSpec(train=256, validation=64, test=128, max_length=48, epochs=0.25, batch_size=16, steps=8),
    # The JupyterLab default, for a live session: every notebook in under 5 minutes on a 2-core CPU, and long enough
    # that the freezing and learning-rate lessons of the full-size runs hold (docs/results.md, "at the default size").
    # NER gets two passes: its tweets are short, so its steps are cheap, and with one pass its head barely starts to find
    # entities in a run this short (measured: entity F1 1.0 against 27.4 with two, seed 0).
    "demo": SizeSpec(train=400, validation=100, test=300, max_length=48, epochs=1.0, batch_size=16, task_epochs={"ner": 2.0}),
    # All the data, at the model's own limit (all-MiniLM-L6-v2: max_seq_length 256).
    "full": SizeSpec(train=None, validation=None, test=None, max_length=256, epochs=4.0, batch_size=32),
}


def resolve_size(size: str | None = None) -> str:
    """The size to use: the argument, else $MTST_SIZE, else "demo"."""
    size = size if size is not None else os.environ.get("MTST_SIZE", "demo")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; valid sizes: {', '.join(SIZES)} (argument or MTST_SIZE)")
    return size



@dataclass
class TrainConfig:
    """The knobs of a training run; the defaults are the teaching defaults."""

    steps: int | None = None  # optimizer steps; None means `epochs` passes over all tasks' batches
    epochs: float = 1.0  # used when steps is None
    task_epochs: dict[str, float] | None = None  # passes over named tasks instead of `epochs` (e.g. {"ner": 12}): each task's
    # share of the steps follows its passes × batches
    batch_size: int = 32
    lr: float = 5e-5  # the top encoder layer's rate (lower layers get lr · layer_decay^depth)
    head_lr: float | None = None  # the heads' rate; None means lr
    layer_decay: float = 1.0  # ξ: each encoder layer gets ξ × the rate of the layer above
    weight_decay: float = 0.01
    schedule: str = "linear"  # constant, constant_with_warmup, linear, cosine, slanted_triangular
    warmup_ratio: float = 0.1  # share of the steps spent warming up
    sampler: str = "proportional"  # round_robin, proportional, temperature
    temperature: float = 2.0  # for sampler="temperature": p ∝ n^(1/T)
    loss_weights: dict[str, float] | None = None  # per-task multipliers of the loss; None means 1 each
    max_grad_norm: float | None = 1.0  # gradient clipping; None turns it off
    eval_every: int | None = None  # validate every N steps (None: `validations` times a run, evenly spaced) and keep the best state
    validations: int = 4  # with eval_every None: how many times a run validates, the last at its end
    keep_best: bool = True  # restore the best validation state at the end
    precision: str = "auto"  # "fp32", "bf16" (autocast), or "auto": bf16 on CUDA, fp32 on CPU
    device: str | None = None  # None: CUDA when present
    seed: int = 0
    progress: bool = True  # a tqdm bar over the steps
    cache_encoder: bool = False  # encoder frozen: encode the training and validation data once; heads train and validate on the cache
    cache_prefix: bool = False  # embeddings + lower k layers frozen: run them once over the training and validation data, then train
    # layers k and up and the heads on their cached hidden states (dropout in the cached part is off); whole encoder frozen: as cache_encoder
    bucket_by_length: bool = False  # batches of similar length (fewer padding tokens per step); every example still once per pass
    weighting: str = "equal"  # how task losses combine: "equal" (loss_weights), "uncertainty" (learned), "pcgrad"
    all_tasks_per_step: bool = False  # one batch of every task per step (always on for pcgrad); steps=None then
    # means epochs × the largest task's batches
    uncertainty_lr: float | None = None  # weighting="uncertainty": the learned log-variances' rate; None: head_lr (else lr).
    # Adam moves each log-variance by about its rate per step, so the run's summed rate bounds how far a weight can go


def check_config(cfg: TrainConfig, tasks) -> None:
    """Refuse settings that would crash deep in the loop or silently train something else (e.g. steps=0)."""
    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ValueError(msg)

    check_count(cfg.batch_size, "batch_size")
    if cfg.steps is not None:
        check_count(cfg.steps, "steps (or None: `epochs` passes over the data)")
    need(cfg.epochs > 0, f"epochs must be > 0, got {cfg.epochs!r}")
    need(cfg.lr > 0, f"lr (the top encoder layer's rate) must be > 0, got {cfg.lr!r}; freeze the encoder to stop it learning")
    need(cfg.head_lr is None or cfg.head_lr > 0, f"head_lr must be > 0, or None for lr; got {cfg.head_lr!r}")
    need(cfg.layer_decay > 0, f"layer_decay must be > 0 (1: every layer at lr; 0.9: each layer 0.9 × the one above), got {cfg.layer_decay!r}")
    need(cfg.schedule in SCHEDULES, f"unknown schedule {cfg.schedule!r}; valid schedules: {', '.join(SCHEDULES)}")
    check_weighting(cfg.weighting)
    joint = cfg.all_tasks_per_step or cfg.weighting == "pcgrad"
    if joint and (cfg.cache_encoder or cfg.cache_prefix):
        which = "cache_encoder" if cfg.cache_encoder else "cache_prefix"
        raise ValueError(f"{which} trains one task per step; turn off all_tasks_per_step (and pcgrad) to use it")
    need(not (joint and cfg.task_epochs), "task_epochs sets how many steps each task gets, but all_tasks_per_step (and pcgrad) trains "
         "every task at every step; drop one of them")
    need(0 <= cfg.warmup_ratio <= 1, f"warmup_ratio is a share of the steps, in [0, 1]; got {cfg.warmup_ratio!r}")
    need(cfg.weight_decay >= 0, f"weight_decay must be ≥ 0, got {cfg.weight_decay!r}")
    need(cfg.sampler in SAMPLERS, f"unknown sampler {cfg.sampler!r}; valid samplers: {', '.join(SAMPLERS)}")
    need(cfg.uncertainty_lr is None or cfg.uncertainty_lr > 0, f"uncertainty_lr must be > 0, got {cfg.uncertainty_lr}; or None for the heads' rate")
    check_choice(cfg.precision, TRAIN_PRECISIONS, "precision")
    check_device(cfg.device)
    if cfg.eval_every is not None:
        check_count(cfg.eval_every, "eval_every (or None: validate `validations` times a run)")
    check_count(cfg.validations, "validations (times a run validates when eval_every is None)")
    need(cfg.max_grad_norm is None or cfg.max_grad_norm > 0, f"max_grad_norm must be > 0, or None to turn clipping off; got {cfg.max_grad_norm!r}")
    weights = cfg.loss_weights or {}
    unknown = sorted(set(weights) - set(tasks))
    if unknown:
        raise KeyError(f"loss_weights names tasks that are not trained: {unknown}; tasks: {list(tasks)}")
    bad = {t: w for t, w in weights.items() if not 0 <= w < math.inf}
    need(not bad, f"loss_weights must be finite and ≥ 0 (0 turns a task's loss off), got {bad}")


def recipe(size: str | None = None, seed: int = 0) -> TrainConfig:
    """The recipe every notebook trains with at a size: encoder top layer 1e-4 with layer-wise decay 0.9 below it,
    heads 1e-3, linear schedule with 10% warmup, proportional sampler, batches bucketed by length, the best
    validation state kept; the size sets the budget (SIZES: epochs, batch size, steps) and how often to validate."""

    spec = SIZES[resolve_size(size)]
    return TrainConfig(steps=spec.steps, epochs=spec.epochs, task_epochs=dict(spec.task_epochs) if spec.task_epochs else None,
                       batch_size=spec.batch_size, lr=1e-4, head_lr=1e-3, layer_decay=0.9,
                       warmup_ratio=0.1, schedule="linear", sampler="proportional", bucket_by_length=True, seed=seed,
                       validations=1 if spec.steps else 2 if spec.train else 4)
