"""Multi-task training: one task per batch drawn by a sampler, AdamW over trainable params, validation as it goes.

    result = mtst.train(model, train_data, TrainConfig(steps=300), validation=val_data)
    result.history  # a tidy DataFrame: step, task, phase, loss, lr, metrics
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch

from .batches import TRAIN_PRECISIONS, _autocast, check_task_data, make_batch, task_loss
from .checks import check_choice, check_count, check_device
from .data import TaskData
from .model import MultiTaskModel, model_parts
from .optim import layerwise_param_groups, make_optimizer, make_scheduler
from .sampling import SAMPLERS, planned_steps, task_passes, task_schedule


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
    eval_every: int | None = None  # validate every N steps (None: 4 times per run) and keep the best state
    keep_best: bool = True  # restore the best validation state at the end
    precision: str = "auto"  # "fp32", "bf16" (autocast), or "auto": bf16 on CUDA, fp32 on CPU
    device: str | None = None  # None: CUDA when present
    seed: int = 0
    progress: bool = True  # a tqdm bar over the steps
    cache_encoder: bool = False  # encoder frozen: encode the training and validation data once; heads train and validate on the cache
    weighting: str = "equal"  # how task losses combine: "equal" (loss_weights), "uncertainty" (learned), "pcgrad"
    all_tasks_per_step: bool = False  # one batch of every task per step (always on for pcgrad); steps=None then
    # means epochs × the largest task's batches
    uncertainty_lr: float | None = None  # weighting="uncertainty": the learned log-variances' rate; None: head_lr (else lr).
    # Adam moves each log-variance by about its rate per step, so the run's summed rate bounds how far a weight can go


@dataclass
class TrainResult:
    history: pd.DataFrame
    best_step: int | None
    best_score: float | None
    steps: int
    wall_time_s: float
    config: dict = field(default_factory=dict)

    def curves(self, phase: str = "train") -> pd.DataFrame:
        return self.history[self.history.phase == phase]


class NonFiniteLossError(FloatingPointError):
    """Training stopped on a NaN or inf loss; the model holds the best state seen before it."""

    def __init__(self, message: str, result: TrainResult):
        super().__init__(message)
        self.result = result


class Callback:
    """Hooks into the training loop; override what you need. `trainer` exposes model, optimizer, step."""

    def on_train_begin(self, trainer: "Trainer") -> None: ...
    def on_step_begin(self, trainer: "Trainer", step: int, task: str) -> None: ...
    def on_after_backward(self, trainer: "Trainer", step: int, task: str) -> None: ...
    def on_step_end(self, trainer: "Trainer", step: int, task: str, loss: float) -> None: ...
    def on_evaluate(self, trainer: "Trainer", step: int, metrics: dict[str, dict]) -> None: ...
    def on_train_end(self, trainer: "Trainer") -> None: ...


def check_config(cfg: TrainConfig, tasks) -> None:
    """Refuse settings that would crash deep in the loop or silently train something else (e.g. steps=0)."""
    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ValueError(msg)

    check_count(cfg.batch_size, "batch_size")
    if cfg.steps is not None:
        check_count(cfg.steps, "steps (or None: `epochs` passes over the data)")
    need(cfg.epochs > 0, f"epochs must be > 0, got {cfg.epochs!r}")
    need(0 <= cfg.warmup_ratio <= 1, f"warmup_ratio is a share of the steps, in [0, 1]; got {cfg.warmup_ratio!r}")
    need(cfg.weight_decay >= 0, f"weight_decay must be ≥ 0, got {cfg.weight_decay!r}")
    need(cfg.sampler in SAMPLERS, f"unknown sampler {cfg.sampler!r}; valid samplers: {', '.join(SAMPLERS)}")
    need(cfg.uncertainty_lr is None or cfg.uncertainty_lr > 0, f"uncertainty_lr must be > 0, got {cfg.uncertainty_lr}; or None for the heads' rate")
    check_choice(cfg.precision, TRAIN_PRECISIONS, "precision")
    check_device(cfg.device)
    if cfg.eval_every is not None:
        check_count(cfg.eval_every, "eval_every (or None: validate 4 times a run)")
    need(cfg.max_grad_norm is None or cfg.max_grad_norm > 0, f"max_grad_norm must be > 0, or None to turn clipping off; got {cfg.max_grad_norm!r}")
    weights = cfg.loss_weights or {}
    unknown = sorted(set(weights) - set(tasks))
    if unknown:
        raise KeyError(f"loss_weights names tasks that are not trained: {unknown}; tasks: {list(tasks)}")
    bad = {t: w for t, w in weights.items() if not 0 <= w < math.inf}
    need(not bad, f"loss_weights must be finite and ≥ 0 (0 turns a task's loss off), got {bad}")


# --------------------------------------------------------------------------- the loop


class Trainer:
    """Runs the loop; callbacks see it (model, optimizer, scheduler, step, config) at every hook."""

    def __init__(self, model: MultiTaskModel, train_data: dict[str, TaskData], config: TrainConfig | None = None,
                 validation: dict[str, TaskData] | None = None, callbacks: list[Callback] | tuple = (), groups: list[dict] | None = None):
        self.config = config or TrainConfig()
        cfg = self.config
        if not train_data:
            raise ValueError("train_data is empty: pass {task: TaskData} for at least one task")
        check_config(cfg, train_data)
        for task, data in train_data.items():
            model._head(task)  # KeyError listing the model's tasks
            check_task_data(task, data, len(model.label_names[task]))
        for task, data in (validation or {}).items():
            model._head(task)
            check_task_data(task, data, len(model.label_names[task]))
        if cfg.cache_encoder:
            from .cache import encoder_is_frozen

            if not encoder_is_frozen(model):
                raise ValueError("cache_encoder=True needs the whole encoder frozen: call mtst.freeze(model, 'encoder') first, "
                                 "or train without the cache")
        from .weighting import UncertaintyWeighting, check_weighting

        check_weighting(cfg.weighting)
        self.joint = cfg.all_tasks_per_step or cfg.weighting == "pcgrad"
        if self.joint and cfg.cache_encoder:
            raise ValueError("cache_encoder trains one task per step; turn off all_tasks_per_step (and pcgrad) to use it")
        if self.joint and cfg.task_epochs:
            raise ValueError("task_epochs sets how many steps each task gets, but all_tasks_per_step (and pcgrad) trains every "
                             "task at every step; drop one of them")
        self.batches = task_passes(train_data, cfg)  # the sampler's weights: with task_epochs, a task's share follows its passes
        self.model, self.train_data, self.validation, self.callbacks = model, train_data, validation or {}, list(callbacks)
        self.device = check_device(cfg.device)
        torch.manual_seed(cfg.seed)
        model.to(self.device)
        self._custom_groups = groups is not None
        self.groups = groups if groups is not None else layerwise_param_groups(model, cfg.lr, cfg.head_lr, cfg.layer_decay, cfg.weight_decay)
        self.optimizer = make_optimizer(self.groups, model)
        self._optimized = {id(p) for g in self.groups for p in g["params"]}
        self._logged_group = self.optimizer.param_groups[-1]  # the history's "lr" column: the last group (the heads)
        self.adopted: list[tuple[int, str]] = []  # (step, group) for groups added to the optimizer mid-run
        self.weighter = None
        if cfg.weighting == "uncertainty":  # learned log-variances: their own group (the heads' rate by default), no decay
            self.weighter = UncertaintyWeighting(list(train_data)).to(self.device)
            self.optimizer.add_param_group({"name": "loss_weights", "params": list(self.weighter.parameters()),
                                            "lr": cfg.uncertainty_lr or cfg.head_lr or cfg.lr, "weight_decay": 0.0})
            self._weight_group = self.optimizer.param_groups[-1]
        self.total_steps = (cfg.steps or max(1, round(max(self.batches.values())))) if self.joint else planned_steps(train_data, cfg)
        self.scheduler = make_scheduler(self.optimizer, cfg.schedule, self.total_steps, round(cfg.warmup_ratio * self.total_steps))
        self.schedule = ["all"] * self.total_steps if self.joint else task_schedule(self.batches, self.total_steps, cfg.sampler, cfg.temperature, cfg.seed)
        self.step = 0
        self._task_losses: dict[str, torch.Tensor] = {}  # this step's loss per task before uncertainty weighting
        self.cache = None  # an EncoderCache, built at the start of run() when cfg.cache_encoder
        self.val_cache = None  # and one of the validation sets, so that validating runs only the heads
        self.cache_build_s = 0.0
        self._rng = np.random.default_rng(cfg.seed)
        self._queues: dict[str, list[int]] = {t: [] for t in train_data}
        self.rows: list[dict] = []
        self.best_state: dict | None = None
        self.best_step: int | None = None
        self.best_score: float | None = None

    def _next_indices(self, task: str) -> list[int]:
        """The next batch of a task: a seeded permutation, refilled when it runs out."""
        q = self._queues[task]
        if len(q) < self.config.batch_size:
            q.extend(self._rng.permutation(len(self.train_data[task])).tolist())
        idx, self._queues[task] = q[: self.config.batch_size], q[self.config.batch_size :]
        return idx

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def evaluate(self) -> dict[str, dict]:
        from .evaluation import evaluate

        metrics = {t: evaluate(self.model, d, t, precision=self.config.precision, cache=self.val_cache) for t, d in self.validation.items()}
        for t, m in metrics.items():
            self.rows.append({"step": self.step, "task": t, "phase": "validation", **m})
        if metrics:
            score = float(np.mean([m["score"] for m in metrics.values()]))
            if self.best_score is None or score > self.best_score:
                self.best_score, self.best_step = score, self.step
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        self._call("on_evaluate", self.step, metrics)
        return metrics

    def _result(self, t0: float) -> TrainResult:
        return TrainResult(pd.DataFrame(self.rows), self.best_step, self.best_score, self.step, time.perf_counter() - t0, asdict(self.config))

    def _restore_best(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)

    def _adopt_unfrozen(self) -> None:
        """Parameters unfrozen mid-run (by a callback, or by hand between hooks) would get gradients and never
        change, because the optimizer was built from the trainable ones. Give them their part's layer-wise rate
        now, scaled by the schedule's current factor. With `groups` passed in, their rate is the caller's to say."""
        new = [p for p in self.model.parameters() if p.requires_grad and id(p) not in self._optimized]
        if not new:
            return
        part_of = {id(p): part for part, params in model_parts(self.model).items() for _, p in params}
        parts = sorted({part_of.get(id(p), "?") for p in new})
        if self.cache is not None and {id(p) for p in new} & {id(p) for p in self.model.encoder.parameters()}:
            raise ValueError(f"{', '.join(parts)} became trainable at step {self.step}, but cache_encoder=True trains the heads on "
                             f"cached encoder outputs, so the encoder would never learn; train with cache_encoder=False to "
                             f"unfreeze it during a run")
        if self._custom_groups:
            raise ValueError(f"{', '.join(parts)} became trainable at step {self.step}, but the param groups passed to the Trainer "
                             f"do not hold it, so it would get gradients and never change; build the groups before freezing "
                             f"(mtst.layerwise_param_groups on the unfrozen model) and freeze afterwards")
        cfg, ids = self.config, {id(p) for p in new}
        factor = self.scheduler.lr_lambdas[0](self.scheduler.last_epoch)
        for g in layerwise_param_groups(self.model, cfg.lr, cfg.head_lr, cfg.layer_decay, cfg.weight_decay):
            params = [p for p in g["params"] if id(p) in ids]
            if not params:
                continue
            self.optimizer.add_param_group({**g, "params": params, "lr": g["lr"] * factor, "initial_lr": g["lr"]})
            self.scheduler.base_lrs.append(g["lr"])
            self.scheduler.lr_lambdas.append(self.scheduler.lr_lambdas[0])
            self.groups.append(self.optimizer.param_groups[-1])
            self.adopted.append((self.step, g["name"]))
        self._optimized |= ids

    def _loss(self, task: str, idx: list[int]) -> torch.Tensor:
        """The weighted loss of one task's batch (from the cache when there is one); stops on NaN or inf."""
        cfg, model = self.config, self.model
        if self.cache is not None:
            features, labels = self.cache.batch(task, idx, self.device)
            with _autocast(self.device, cfg.precision):
                logits = model.heads[task](features)
        else:
            batch = make_batch(model, self.train_data[task], idx)
            labels = batch["labels"].to(self.device)
            with _autocast(self.device, cfg.precision):
                logits = model(batch, [task])[task]
        loss = task_loss(logits, labels) * (cfg.loss_weights or {}).get(task, 1.0)
        if not torch.isfinite(loss):
            self._restore_best()
            kept = f"the best state (step {self.best_step}) was restored" if self.best_state is not None else "no validation had run yet"
            raise NonFiniteLossError(f"loss is {loss.item()} at step {self.step} on task {task!r}; training stopped and {kept}", self._result(self._t0))
        self._task_losses[task] = loss.detach()
        return self.weighter(task, loss) if self.weighter is not None else loss

    def _joint_backward(self) -> torch.Tensor:
        """One batch of every task. equal/uncertainty: the weighted sum's gradient. pcgrad: each task's gradient
        on the shared encoder, projected off the others' where they conflict, then summed; heads get their own."""
        from .weighting import pcgrad

        total = torch.zeros((), device=self.device)
        if self.config.weighting != "pcgrad":
            for task in self.train_data:
                loss = self._loss(task, self._next_indices(task))
                loss.backward()  # one task at a time: only one graph in memory
                total = total + loss.detach()
            return total
        shared = [p for p in self.model.encoder.parameters() if p.requires_grad]
        flat = []
        for task in self.train_data:
            loss = self._loss(task, self._next_indices(task))
            head = [p for p in self.model.heads[task].parameters() if p.requires_grad]
            grads = torch.autograd.grad(loss, shared + head, allow_unused=True)
            for p, g in zip(head, grads[len(shared):]):
                if g is not None:
                    p.grad = g if p.grad is None else p.grad + g
            flat.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for p, g in zip(shared, grads[: len(shared)])]))
            total = total + loss.detach()
        if shared:
            summed = torch.stack(pcgrad(flat, seed=self.config.seed * 100_003 + self.step)).sum(0)
            offset = 0
            for p in shared:
                p.grad = summed[offset : offset + p.numel()].view_as(p).clone()
                offset += p.numel()
        return total

    def run(self) -> TrainResult:
        from tqdm.auto import tqdm

        cfg, model = self.config, self.model
        # The steps that validate: every eval_every and the last; by default 4, evenly spaced, the last at the end
        # (every total // 4 steps would validate a 93-step run at 92 and again at 93).
        n = self.total_steps
        eval_steps = set(range(cfg.eval_every, n, cfg.eval_every)) | {n} if cfg.eval_every else {round(n * i / 4) for i in range(1, 5)}
        t0 = self._t0 = time.perf_counter()
        model.train()
        self._call("on_train_begin")
        if cfg.cache_encoder:
            from .cache import EncoderCache

            t_cache = time.perf_counter()
            self.cache = EncoderCache(model, self.train_data, progress=cfg.progress)
            if self.validation:
                self.val_cache = EncoderCache(model, self.validation, progress=cfg.progress)
            self.cache_build_s = time.perf_counter() - t_cache
        bar = tqdm(self.schedule, desc="train", disable=not cfg.progress, leave=False)
        for task in bar:
            self.step += 1
            self._call("on_step_begin", self.step, task)
            self._adopt_unfrozen()
            if self.joint:
                loss = self._joint_backward()
            else:
                loss = self._loss(task, self._next_indices(task))
                loss.backward()
            self._call("on_after_backward", self.step, task)
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_([p for g in self.groups for p in g["params"]], cfg.max_grad_norm, foreach=True)
            # Each task's loss and, for learned weighting, the weights this step used (taken before the step changes
            # them): kept on the device and read in one transfer after the step is queued.
            logged = {f"loss:{t}": v for t, v in self._task_losses.items()} if self.joint or self.weighter is not None else {}
            extra = {}
            if self.weighter is not None:
                logged |= dict(zip((f"weight:{t}" for t in self.weighter.log_vars), self.weighter.weight_tensor().unbind()))
                extra["lr:loss_weights"] = self._weight_group["lr"]
            self._task_losses = {}
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            value = loss.item()
            if logged:
                extra |= dict(zip(logged, torch.stack([v.float() for v in logged.values()]).tolist()))
            lr = self._logged_group["lr"]
            self.rows.append({"step": self.step, "task": task, "phase": "train", "loss": value, "lr": lr, **extra})
            self._call("on_step_end", self.step, task, value)
            if self.validation and self.step in eval_steps:
                self.evaluate()
            if self.step % 10 == 0:
                bar.set_postfix(task=task, loss=f"{value:.3f}")
        bar.close()
        if cfg.keep_best:
            self._restore_best()
        self._call("on_train_end")
        return self._result(t0)


def train(model: MultiTaskModel, train_data: dict[str, TaskData], config: TrainConfig | None = None,
          validation: dict[str, TaskData] | None = None, callbacks: list[Callback] | tuple = (), groups: list[dict] | None = None) -> TrainResult:
    """Train `model` on the tasks in `train_data` (one task per batch), validating and keeping the best state."""
    return Trainer(model, train_data, config, validation, callbacks, groups).run()
