"""Multi-task training: one task per batch drawn by a sampler, AdamW over trainable params, validation as it goes.

    result = mtst.train(model, train_data, TrainConfig(steps=300), validation=val_data)
    result.history  # a tidy DataFrame: step, task, phase, loss, lr, metrics

`Trainer.run` is the loop, in one screen. What is not the loop plugs into it: frozen features (`mtst.features`),
PCGrad and all-tasks-per-step (`mtst.weighting`), parts unfrozen mid-run (`mtst.freezing.adopt_unfrozen`), several
processes (`mtst.distributed`). `train()` puts the run cache above it (`cached_run`, with `mtst.runcache`): a run finished
before with the same everything is loaded instead of trained again.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import distributed, features, runcache
from .batches import check_task_data, make_batch, task_loss
from .callbacks import Callback
from .checks import check_device
from .config import TrainConfig, check_config
from .data import TaskData
from .evaluation import evaluate
from .freezing import adopt_unfrozen
from .model import IGNORE_INDEX, MultiTaskModel
from .optim import layerwise_param_groups, make_optimizer, make_scheduler
from .precision import autocast
from .sampling import BatchQueue, planned_steps, task_passes, task_schedule
from .weighting import UncertaintyWeighting, joint_backward


@dataclass
class TrainResult:
    history: pd.DataFrame
    best_step: int | None
    best_score: float | None
    steps: int
    wall_time_s: float  # of the training itself: a run loaded from the run cache keeps the time it took when it trained
    config: dict = field(default_factory=dict)
    from_cache: bool = False  # loaded from the run cache, not trained in this process

    def curves(self, phase: str = "train") -> pd.DataFrame:
        return self.history[self.history.phase == phase]


class NonFiniteLossError(FloatingPointError):
    """Training stopped on a NaN or inf loss; the model holds the best state seen before it."""

    def __init__(self, message: str, result: TrainResult):
        super().__init__(message)
        self.result = result


# --------------------------------------------------------------------------- the loop


class Trainer:
    """Sets a run up (optimizer, schedule, the order of tasks), then `run()` trains it. Callbacks see the Trainer
    (model, optimizer, scheduler, step, config) at every hook."""

    def __init__(self, model: MultiTaskModel, train_data: dict[str, TaskData], config: TrainConfig | None = None,
                 validation: dict[str, TaskData] | None = None, callbacks: list[Callback] | tuple = (), groups: list[dict] | None = None):
        self.config = cfg = config or TrainConfig()
        if not train_data:
            raise ValueError("train_data is empty: pass {task: TaskData} for at least one task")
        check_config(cfg, train_data)
        self.dist = distributed.current()  # several processes under `accelerate launch`: see mtst.distributed
        self.dist.check_batch(cfg.batch_size)
        for task, data in {**train_data, **(validation or {})}.items():
            model._head(task)  # KeyError listing the model's tasks
            check_task_data(task, data, len(model.label_names[task]))
        if cfg.cache_encoder and not features.encoder_is_frozen(model):
            raise ValueError("cache_encoder=True needs the whole encoder frozen: call mtst.freeze(model, 'encoder') first, "
                             "or train without the cache")
        self.model, self.train_data, self.validation, self.callbacks = model, train_data, validation or {}, list(callbacks)
        self.device = check_device(self.dist.device(cfg.device))
        torch.manual_seed(cfg.seed)
        model.to(self.device)
        self.dist.broadcast_parameters(model)
        self.custom_groups = groups is not None
        self.groups = groups if groups is not None else layerwise_param_groups(model, cfg.lr, cfg.head_lr, cfg.layer_decay, cfg.weight_decay)
        self.optimizer = make_optimizer(self.groups, model)
        self.optimized = {id(p) for g in self.groups for p in g["params"]}
        self.logged_group = self.optimizer.param_groups[-1]  # the history's "lr" column: the last group (the heads)
        self.adopted: list[tuple[int, str]] = []  # (step, group) for groups added to the optimizer mid-run
        self.weighter = None
        if cfg.weighting == "uncertainty":  # learned log-variances: their own group (the heads' rate by default), no decay
            self.weighter = UncertaintyWeighting(list(train_data)).to(self.device)
            self.optimizer.add_param_group({"name": "loss_weights", "params": list(self.weighter.parameters()),
                                            "lr": cfg.uncertainty_lr or cfg.head_lr or cfg.lr, "weight_decay": 0.0})
            self.weight_group = self.optimizer.param_groups[-1]
        self.joint = cfg.all_tasks_per_step or cfg.weighting == "pcgrad"  # every task's batch at every step
        passes = task_passes(train_data, cfg)  # the sampler's weights: with task_epochs, a task's share follows its passes
        self.total_steps = (cfg.steps or max(1, round(max(passes.values())))) if self.joint else planned_steps(train_data, cfg)
        self.scheduler = make_scheduler(self.optimizer, cfg.schedule, self.total_steps, round(cfg.warmup_ratio * self.total_steps))
        self.schedule = ["all"] * self.total_steps if self.joint else task_schedule(passes, self.total_steps, cfg.sampler, cfg.temperature, cfg.seed)
        n, v = self.total_steps, cfg.validations  # the steps that validate: every eval_every and the last, else v evenly spaced
        self.eval_steps = set(range(cfg.eval_every, n, cfg.eval_every)) | {n} if cfg.eval_every else {round(n * i / v) for i in range(1, v + 1)}
        lengths = {t: [len(ids) for ids in model.encoder._token_ids(d.texts)[0]] for t, d in train_data.items()} if cfg.bucket_by_length else None
        self.queue = BatchQueue({t: len(d) for t, d in train_data.items()}, cfg.batch_size, cfg.seed, lengths)
        self.features = self.val_features = None  # frozen features (cache_encoder / cache_prefix), built when run() starts
        self.features_build_s = 0.0
        self.optimizer_state_mib = 0.0  # what the optimizer's state (AdamW moments) held at the end: what freezing saves besides compute
        self.step, self.rows, self.task_losses = 0, [], {}
        self.best_state, self.best_step, self.best_score = None, None, None

    def run(self) -> TrainResult:
        """The loop: each step draws a task, makes its batch, runs forward and the loss, backward, the gradient hooks,
        the optimizer step and the schedule, and validates now and then, keeping the best state."""
        cfg, model = self.config, self.model
        t0 = self._t0 = time.perf_counter()
        model.train()
        self._call("on_train_begin")
        if cfg.cache_encoder or cfg.cache_prefix:  # run the frozen part once over all the data (mtst.features)
            built = time.perf_counter()
            self.features, self.val_features = features.build(model, self.train_data, self.validation, cfg.progress and self.dist.is_main)
            self.features_build_s = time.perf_counter() - built
        bar = tqdm(self.schedule, desc="train", disable=not cfg.progress or not self.dist.is_main, leave=False)
        for task in bar:  # 1. the task of this step, drawn by the sampler when the run was set up
            self.step += 1
            self._call("on_step_begin", self.step, task)
            adopt_unfrozen(self)  # parts a callback just unfroze join the optimizer at their layer's rate
            if self.joint:  # every task's batch: the summed gradient, or PCGrad's projected one (mtst.weighting)
                loss = joint_backward(self)
            else:
                loss = self.loss(task, self.next_batch(task))  # 2. the batch; 3. forward and the task's loss
                loss.backward()  # 4. gradients of the trainable parameters only
            if self.dist.active:  # several processes: every one steps with the whole batch's gradient
                self.dist.average_gradients(p for g in self.optimizer.param_groups for p in g["params"])
                loss = self.dist.mean(loss.detach())
            self._call("on_after_backward", self.step, task)  # 5. the gradient hook: monitors read gradients here
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_([p for g in self.groups for p in g["params"]], cfg.max_grad_norm, foreach=True)
            logged = self._logged()  # per-task losses and learned weights, taken before the step changes them
            self.optimizer.step()  # 6. AdamW, each parameter group at its own rate
            self.scheduler.step()  # 7. the schedule sets the next step's rates
            self.optimizer.zero_grad(set_to_none=True)
            value = loss.item()
            self.rows.append({"step": self.step, "task": task, "phase": "train", "loss": value, "lr": self.logged_group["lr"], **self._read(logged)})
            self._call("on_step_end", self.step, task, value)
            if self.validation and self.step in self.eval_steps:  # 8. validate; the best state so far is kept
                self.evaluate()
            if self.step % 10 == 0:
                bar.set_postfix(task=task, loss=f"{value:.3f}")
        bar.close()
        if cfg.keep_best:
            self._restore_best()
        self._call("on_train_end")
        self.optimizer_state_mib = sum(t.numel() * t.element_size() for st in self.optimizer.state.values() for t in st.values()
                                       if torch.is_tensor(t)) / 2**20
        return self._result(t0)

    # ------------------------------------------------------------------ what the loop calls
    def next_batch(self, task: str) -> list[int]:
        """The next batch of a task: a seeded permutation, refilled when it runs out (bucketed by length on request)."""
        return self.queue.next(task)

    def loss(self, task: str, idx: list[int]) -> torch.Tensor:
        """The weighted loss of one task's batch (from the frozen features when there are some); stops on NaN or inf.
        Across N processes, `idx` is the global batch: this process's share, its loss scaled so that the processes'
        mean is the loss of the whole batch (every labelled example or word weighs the same wherever it landed)."""
        cfg, model = self.config, self.model
        mine = self.dist.share(idx)
        with autocast(self.device, cfg.precision):
            if self.features is not None:
                inputs, labels = self.features.head_inputs(model, task, mine or idx[:1], self.device)
                logits = model.heads[task](inputs)
            else:
                batch = make_batch(model, self.train_data[task], mine or idx[:1])
                labels = batch["labels"].to(self.device)
                logits = model(batch, [task])[task]
        loss = task_loss(logits, labels) * (cfg.loss_weights or {}).get(task, 1.0)
        whole = loss.detach()
        if self.dist.active:  # the batch's labelled count and loss sum, over the processes: one all-reduce
            count = (labels != IGNORE_INDEX).sum().float() * bool(mine)
            count_all, sum_all = self.dist.total(torch.stack([count, whole.float() * count])).unbind()
            loss, whole = loss * (count * self.dist.num_processes / count_all.clamp(min=1)), sum_all / count_all.clamp(min=1)
        if not torch.isfinite(whole):
            self._restore_best()
            kept = f"the best state (step {self.best_step}) was restored" if self.best_state is not None else "no validation had run yet"
            raise NonFiniteLossError(f"loss is {whole.item()} at step {self.step} on task {task!r}; training stopped and {kept}", self._result(self._t0))
        self.task_losses[task] = whole
        return self.weighter(task, loss) if self.weighter is not None else loss

    def evaluate(self) -> dict[str, dict]:
        metrics = {t: evaluate(self.model, d, t, precision=self.config.precision, cache=self.val_features, run_cache=False)
                   for t, d in self.validation.items()}
        for t, m in metrics.items():
            self.rows.append({"step": self.step, "task": t, "phase": "validation", **m})
        if metrics:
            score = float(np.mean([m["score"] for m in metrics.values()]))
            if self.best_score is None or score > self.best_score:
                self.best_score, self.best_step = score, self.step
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        self._call("on_evaluate", self.step, metrics)
        return metrics

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def _logged(self) -> dict[str, torch.Tensor]:
        """This step's loss per task and, for learned weighting, the weights it used, still on the device."""
        logged = {f"loss:{t}": v for t, v in self.task_losses.items()} if self.joint or self.weighter is not None else {}
        if self.weighter is not None:
            logged |= dict(zip((f"weight:{t}" for t in self.weighter.log_vars), self.weighter.weight_tensor().unbind()))
        self.task_losses = {}
        return logged

    def _read(self, logged: dict[str, torch.Tensor]) -> dict[str, float]:
        """The logged values in one transfer, after the step is queued; the learned weights' rate beside them."""
        out = dict(zip(logged, torch.stack([v.float() for v in logged.values()]).tolist())) if logged else {}
        if self.weighter is not None:
            out["lr:loss_weights"] = self.weight_group["lr"]
        return out

    def _result(self, t0: float) -> TrainResult:
        return TrainResult(pd.DataFrame(self.rows), self.best_step, self.best_score, self.step, time.perf_counter() - t0, asdict(self.config))

    def _restore_best(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)


def train(model: MultiTaskModel, train_data: dict[str, TaskData], config: TrainConfig | None = None,
          validation: dict[str, TaskData] | None = None, callbacks: list[Callback] | tuple = (), groups: list[dict] | None = None,
          run_cache=None) -> TrainResult:
    """Train `model` on the tasks in `train_data` (one task per batch), validating and keeping the best state. A run
    finished before with the same everything is loaded from the run cache (`mtst.runcache`; run_cache=False: never)."""
    return cached_run(Trainer(model, train_data, config, validation, callbacks, groups), run_cache)


def cached_run(trainer: Trainer, run_cache=None) -> TrainResult:
    """The run cache as a layer above the loop: `trainer.run()`, or the same run's recorded result (`mtst.runcache`)."""
    memo = runcache.Memo(trainer, run_cache)
    if (hit := memo.recall()) is not None:
        history, meta = hit
        return TrainResult(history, meta["best_step"], meta["best_score"], meta["steps"], meta["wall_time_s"], asdict(trainer.config),
                           from_cache=True)
    result = trainer.run()
    memo.record(result)
    return result
