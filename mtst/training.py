"""Multi-task training: one task per batch drawn by a sampler, AdamW over trainable params, validation as it goes.

    result = mtst.train(model, train_data, TrainConfig(steps=300), validation=val_data)
    result.history  # a tidy DataFrame: step, task, phase, loss, lr, metrics
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch

from . import distributed, runcache
from .batches import check_task_data, make_batch, task_loss
from .callbacks import Callback
from .checks import check_device
from .config import TrainConfig, check_config
from .data import TaskData
from .model import IGNORE_INDEX, MultiTaskModel, model_parts
from .optim import layerwise_param_groups, make_optimizer, make_scheduler
from .precision import autocast
from .sampling import BatchQueue, planned_steps, task_passes, task_schedule


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
    """Runs the loop; callbacks see it (model, optimizer, scheduler, step, config) at every hook."""

    def __init__(self, model: MultiTaskModel, train_data: dict[str, TaskData], config: TrainConfig | None = None,
                 validation: dict[str, TaskData] | None = None, callbacks: list[Callback] | tuple = (), groups: list[dict] | None = None,
                 run_cache=None):
        self.config = config or TrainConfig()
        cfg = self.config
        if not train_data:
            raise ValueError("train_data is empty: pass {task: TaskData} for at least one task")
        check_config(cfg, train_data)
        self.dist = distributed.current()  # several processes under `accelerate launch`: see mtst.distributed
        self.dist.check_batch(cfg.batch_size)
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
        if self.joint and (cfg.cache_encoder or cfg.cache_prefix):
            which = "cache_encoder" if cfg.cache_encoder else "cache_prefix"
            raise ValueError(f"{which} trains one task per step; turn off all_tasks_per_step (and pcgrad) to use it")
        if self.joint and cfg.task_epochs:
            raise ValueError("task_epochs sets how many steps each task gets, but all_tasks_per_step (and pcgrad) trains every "
                             "task at every step; drop one of them")
        self.batches = task_passes(train_data, cfg)  # the sampler's weights: with task_epochs, a task's share follows its passes
        self.model, self.train_data, self.validation, self.callbacks = model, train_data, validation or {}, list(callbacks)
        self.device = check_device(self.dist.device(cfg.device))
        torch.manual_seed(cfg.seed)
        model.to(self.device)
        self.dist.broadcast_parameters(model)
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
        self.cache = None  # an EncoderCache or PrefixCache, built at the start of run() when cfg.cache_encoder / cache_prefix
        self.val_cache = None  # and one of the validation sets, so that validating runs only what learns
        self.cache_build_s = 0.0
        lengths = {t: [len(ids) for ids in model.encoder._token_ids(d.texts)[0]] for t, d in train_data.items()} if cfg.bucket_by_length else None
        self.queue = BatchQueue({t: len(d) for t, d in train_data.items()}, cfg.batch_size, cfg.seed, lengths)
        self.run_cache = None if self.dist.active else runcache.resolve(run_cache)  # one process's files, not N racing
        self.optimizer_state_mib = 0.0  # what the optimizer's state (AdamW moments) held at the end: what freezing saves besides compute
        self.rows: list[dict] = []
        self.best_state: dict | None = None
        self.best_step: int | None = None
        self.best_score: float | None = None

    def _next_indices(self, task: str) -> list[int]:
        """The next batch of a task: a seeded permutation, refilled when it runs out (bucketed by length on request)."""
        return self.queue.next(task)

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def evaluate(self) -> dict[str, dict]:
        from .evaluation import evaluate

        metrics = {t: evaluate(self.model, d, t, precision=self.config.precision, cache=self.val_cache, run_cache=False)
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
        cached = {id(p) for m in self._cached_modules() for p in m.parameters()}
        if {id(p) for p in new} & cached:
            raise ValueError(f"{', '.join(parts)} became trainable at step {self.step}, but the run trains on cached outputs of the "
                             f"frozen part (cache_encoder / cache_prefix), so it would never learn; train without the cache to "
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
        """The weighted loss of one task's batch (from the cache when there is one); stops on NaN or inf. Across N
        processes, `idx` is the global batch: this process's share, its loss scaled so that the processes' mean is the
        loss of the whole batch (every labelled example or word weighs the same wherever it landed)."""
        cfg, model = self.config, self.model
        mine = self.dist.share(idx)
        if self.cache is not None:
            with autocast(self.device, cfg.precision):
                features, labels = self.cache.head_inputs(model, task, mine or idx[:1], self.device)
                logits = model.heads[task](features)
        else:
            batch = make_batch(model, self.train_data[task], mine or idx[:1])
            labels = batch["labels"].to(self.device)
            with autocast(self.device, cfg.precision):
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
        self._task_losses[task] = whole
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
            flat.append(self.dist.mean(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                                                  for p, g in zip(shared, grads[: len(shared)])])))
            total = total + loss.detach()
        if shared:
            summed = torch.stack(pcgrad(flat, seed=self.config.seed * 100_003 + self.step)).sum(0)
            offset = 0
            for p in shared:
                p.grad = summed[offset : offset + p.numel()].view_as(p).clone()
                offset += p.numel()
        return total

    # ------------------------------------------------------------------ caches of frozen parts
    def _cached_modules(self) -> list:
        if self.cache is None:
            return []
        enc = self.model.encoder
        return [enc] if getattr(self.cache, "k", None) is None else [enc.embeddings, *enc.layers[: self.cache.k]]

    def _build_caches(self) -> None:
        """cache_encoder, or cache_prefix: run the frozen part once over the training and validation data."""
        from .cache import EncoderCache, PrefixCache, encoder_is_frozen, frozen_prefix_depth

        cfg, model = self.config, self.model
        t = time.perf_counter()
        if cfg.cache_encoder or encoder_is_frozen(model):
            make = lambda data: EncoderCache.shared(model, data)  # noqa: E731 - the same frozen encoder on the same data: built once
        else:
            k = frozen_prefix_depth(model)
            if k is None:
                raise ValueError("cache_prefix=True needs a frozen prefix, at least the embeddings: call "
                                 "mtst.freeze(model, 'embeddings', 'layers:0-1') (for example) first, or train without the cache")
            make = lambda data: PrefixCache(model, data, k, progress=cfg.progress and self.dist.is_main)  # noqa: E731
        self.cache = make(self.train_data)
        if self.validation:
            self.val_cache = make(self.validation)
        self.cache_build_s = time.perf_counter() - t

    # ------------------------------------------------------------------ the run cache
    def _cache_key(self) -> str | None:
        """What decides this run, hashed; None when a callback cannot say how it changes the run."""
        keys = [cb.cache_key() for cb in self.callbacks]
        if self.run_cache is None or any(k is None for k in keys):
            return None
        names = {id(p): n for n, p in self.model.named_parameters()}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [names.get(id(p), "?") for p in g["params"]]}
                  for g in self.groups] if self._custom_groups else None
        cfg = asdict(self.config)
        cfg.pop("progress")
        return runcache.digest("train", runcache.code_digest(), runcache.model_digest(self.model), cfg, groups, keys, self.device.type,
                               {t: runcache.data_digest(d) for t, d in self.train_data.items()},
                               {t: runcache.data_digest(d) for t, d in self.validation.items()})

    def _load_cached(self, key: str) -> TrainResult | None:
        from io import StringIO

        found = self.run_cache.load_run(key)
        if found is None:
            return None
        t = time.perf_counter()
        weights, meta = found
        missing = set(weights) - {n for n, _ in self.model.named_parameters()}
        if missing:
            raise RuntimeError(f"run cache entry {key} names parameters this model lacks: {sorted(missing)[:3]}")
        with torch.no_grad():
            params = dict(self.model.named_parameters())
            for n, w in weights.items():
                params[n].copy_(w)
            for n, p in params.items():
                p.requires_grad_(meta["requires_grad"][n])
        for cb, state in zip(self.callbacks, meta["callbacks"]):
            if state is not None and hasattr(cb, "load_cache_state"):
                cb.load_cache_state(state)
        self.model.train()
        history = pd.read_json(StringIO(meta["history"]), orient="split")
        self.rows, self.step = history.to_dict("records"), meta["steps"]
        self.best_step, self.best_score = meta["best_step"], meta["best_score"]
        self.cache_build_s, self.adopted, self.optimizer_state_mib = meta["cache_build_s"], [tuple(a) for a in meta["adopted"]], meta["optimizer_state_mib"]
        print(f"run cache: loaded a run trained on {meta['created']} ({meta['steps']} steps, {meta['wall_time_s']:.0f} s) "
              f"instead of training it again, in {time.perf_counter() - t:.1f} s")
        return TrainResult(history, self.best_step, self.best_score, meta["steps"], meta["wall_time_s"], asdict(self.config), from_cache=True)

    def _save_cached(self, key: str, result: TrainResult) -> None:
        names = {id(p): n for n, p in self.model.named_parameters()}
        weights = {names[i]: p for i, p in ((id(p), p) for p in self.model.parameters()) if i in self._optimized}
        self.run_cache.save_run(key, weights, {
            "created": runcache.now(), "steps": result.steps, "wall_time_s": result.wall_time_s, "best_step": result.best_step,
            "best_score": result.best_score, "history": result.history.to_json(orient="split"), "cache_build_s": self.cache_build_s,
            "adopted": self.adopted, "optimizer_state_mib": self.optimizer_state_mib,
            "requires_grad": {n: p.requires_grad for n, p in self.model.named_parameters()},
            "callbacks": [cb.cache_state() if hasattr(cb, "cache_state") else None for cb in self.callbacks]})

    # ------------------------------------------------------------------ the run
    def run(self) -> TrainResult:
        """Train (or load the same run from the run cache) and return its result."""
        key = self._cache_key()
        if key is not None and (cached := self._load_cached(key)) is not None:
            return cached
        result = self._train()
        self.optimizer_state_mib = sum(t.numel() * t.element_size() for st in self.optimizer.state.values() for t in st.values()
                                       if torch.is_tensor(t)) / 2**20
        if key is not None:
            self._save_cached(key, result)
        return result

    def _train(self) -> TrainResult:
        from tqdm.auto import tqdm

        cfg, model = self.config, self.model
        # The steps that validate: every eval_every and the last; by default `validations`, evenly spaced, the last at the
        # end (every total // 4 steps would validate a 93-step run at 92 and again at 93).
        n, v = self.total_steps, cfg.validations
        eval_steps = set(range(cfg.eval_every, n, cfg.eval_every)) | {n} if cfg.eval_every else {round(n * i / v) for i in range(1, v + 1)}
        t0 = self._t0 = time.perf_counter()
        model.train()
        self._call("on_train_begin")
        if cfg.cache_encoder or cfg.cache_prefix:
            self._build_caches()
        bar = tqdm(self.schedule, desc="train", disable=not cfg.progress or not self.dist.is_main, leave=False)
        for task in bar:
            self.step += 1
            self._call("on_step_begin", self.step, task)
            self._adopt_unfrozen()
            if self.joint:
                loss = self._joint_backward()
            else:
                loss = self._loss(task, self._next_indices(task))
                loss.backward()
            if self.dist.active:  # every process steps with the whole batch's gradient; the loss logged is the batch's
                self.dist.average_gradients(p for g in self.optimizer.param_groups for p in g["params"])
                loss = self.dist.mean(loss.detach())
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
          validation: dict[str, TaskData] | None = None, callbacks: list[Callback] | tuple = (), groups: list[dict] | None = None,
          run_cache=None) -> TrainResult:
    """Train `model` on the tasks in `train_data` (one task per batch), validating and keeping the best state. A run
    finished before with the same everything is loaded from the run cache (`mtst.runcache`; run_cache=False: never)."""
    return Trainer(model, train_data, config, validation, callbacks, groups, run_cache).run()
