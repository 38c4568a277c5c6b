"""The logic behind the notebooks' panels, without a widget (the widget layer, `mtst.widgets`, only links controls
to these): tests and readers without a kernel call them directly.
"""

from __future__ import annotations

import contextlib
import copy
import time

import pandas as pd
from torch import nn

from .callbacks import Callback
from .data import TaskData
from .evaluation import evaluate
from .features import frozen_prefix_depth
from .freezing import freeze, part_grad_norms, trainable_summary, unfreeze
from .model import model_parts
from .training import TrainConfig, Trainer


class _Trials:
    """What both playgrounds share: the starting weights, the starting scores, and one trial at a time."""

    def _setup_trials(self, model: nn.Module, validation: dict[str, TaskData] | None) -> None:
        self.validation = validation
        self.start = {k: v.detach().clone() for k, v in model.state_dict().items()}  # every trial starts from these weights
        self.trials: list[dict] = []  # one per trial: what was chosen, the scores before and after, the seconds it took
        self.running = False
        self._before: dict[str, float] | None = None

    def _scores_before(self, model: nn.Module) -> None:
        if self._before is None:  # the starting model's scores do not depend on the trial's choices
            self._before = {t: evaluate(model, d, t, run_cache=False)["score"] for t, d in self.validation.items()}

    @contextlib.contextmanager
    def _trial_run(self):
        if self.validation is None:
            raise ValueError(f"a trial scores the validation sets: pass validation={{task: TaskData}} to {type(self).__name__}")
        if self.running:
            raise RuntimeError("a trial is already running: wait for it to finish")
        self.running = True
        try:
            yield
        finally:
            self.running = False


def _train_copy(model: nn.Module, start: dict, train_data: dict, validation: dict, cfg: TrainConfig, before) -> tuple:
    """Train a copy of `model` from the weights `start` under `cfg`, after before(copy) has scored the start; the copy,
    its validation score per task at the end, and the seconds it all took."""
    t0 = time.perf_counter()
    copy_ = copy.deepcopy(model)
    copy_.load_state_dict(start)
    before(copy_)
    result = Trainer(copy_, train_data, cfg, validation=validation).run()
    after = result.history[result.history.phase == "validation"].set_index("task").score.to_dict()
    return copy_, after, time.perf_counter() - t0


def _before_after(trial: dict) -> dict[str, str]:
    return {task: f"{trial['before'][task]:.3f} → {trial['after'][task]:.3f}" for task in trial["after"]}


class FreezePlayground(_Trials):
    """What the freeze panel (`mtst.widgets.freeze_panel`) drives, without a widget: toggle parts, read the trainable
    count, train a few real steps and see each part's gradient norm and whether its weights changed; and, with
    `validation`, a short trial run that shows what the chosen freezing does to each task's validation score."""

    def __init__(self, model: nn.Module, train_data: dict, batch_size: int = 8, lr: float = 1e-4, head_lr: float = 1e-3, seed: int = 0,
                 validation: dict[str, TaskData] | None = None):
        self.model, self.train_data = model, train_data
        self.batch_size, self.lr, self.head_lr, self.seed = batch_size, lr, head_lr, seed
        self.parts = list(model_parts(model))
        self.last_step: pd.DataFrame | None = None
        self._setup_trials(model, validation)

    def frozen_label(self) -> str:
        """The frozen parts in a few words: consecutive layers as one range ("embeddings, layers 0-3, head:ner")."""
        frozen = [p for p in self.parts if not self.is_trainable(p)]
        words, run = [], []
        for part in frozen + [None]:
            if part is not None and part.startswith("layer_") and (not run or int(part[6:]) == int(run[-1][6:]) + 1):
                run.append(part)
                continue
            if run:
                words.append(f"layer {run[0][6:]}" if len(run) == 1 else f"layers {run[0][6:]}-{run[-1][6:]}")
                run = [part] if part is not None and part.startswith("layer_") else []
                if run:
                    continue
            if part is not None:
                words.append(part)
        return "frozen: " + ", ".join(words) if words else "nothing frozen"

    def trial(self, steps: int = 30, batch_size: int = 16, progress: bool = False) -> pd.DataFrame:
        """Train a copy of the starting model, frozen as the toggles say, for `steps` steps (frozen lower layers run
        once: their features are reused), and score each validation task before and after. Each trial adds a row
        to `trials_frame()`, so two freezing choices sit side by side. A second call while one runs is refused."""
        if not any(self.is_trainable(p) for p in self.parts):
            raise ValueError("every part is frozen, so nothing would learn: tick at least one part")
        with self._trial_run():
            cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=self.lr, head_lr=self.head_lr, warmup_ratio=0.1, schedule="linear",
                              progress=progress, seed=self.seed, device="cpu", validations=1, keep_best=False,
                              cache_prefix=frozen_prefix_depth(self.model) is not None)
            model, after, seconds = _train_copy(self.model, self.start, self.train_data, self.validation, cfg, self._scores_before)
            total = trainable_summary(model).iloc[-1]
            self.trials.append({"frozen": self.frozen_label(), "trainable": float(total.trainable_fraction), "steps": steps,
                                "before": dict(self._before), "after": after, "seconds": seconds})
        return self.trials_frame()

    def trials_frame(self) -> pd.DataFrame:
        """The trials so far, one row each: what was frozen, each task's validation score before → after, the cost."""
        rows = [{"trial": i + 1, "frozen": t["frozen"], "trainable": f"{t['trainable']:.1%}",
                 **_before_after(t), "seconds": round(t["seconds"], 1)}
                for i, t in enumerate(self.trials)]
        return pd.DataFrame(rows).set_index("trial") if rows else pd.DataFrame()

    def is_trainable(self, part: str) -> bool:
        return any(p.requires_grad for _, p in model_parts(self.model)[part])

    def set_trainable(self, part: str, trainable: bool) -> None:
        (unfreeze if trainable else freeze)(self.model, part)

    def readout(self) -> str:
        total = trainable_summary(self.model).iloc[-1]
        return f"trainable: {int(total.trainable_params):,} of {int(total.params):,} parameters ({total.trainable_fraction:.1%})"

    def train_steps(self, n: int = 3, progress: bool = False) -> pd.DataFrame:
        """Run n real training steps (with a progress bar on request); per part: mean gradient norm and the share of
        its weights that changed."""
        before = {name: [p.detach().clone() for _, p in params] for name, params in model_parts(self.model).items()}
        norms: list[dict[str, float]] = []

        class Record(Callback):
            def on_after_backward(self, trainer, step, task):
                norms.append(part_grad_norms(trainer.model))

        cfg = TrainConfig(steps=n, batch_size=self.batch_size, lr=self.lr, head_lr=self.head_lr, warmup_ratio=0.0,
                          schedule="constant", progress=progress, seed=self.seed, device="cpu")
        Trainer(self.model, self.train_data, cfg, callbacks=[Record()]).run()
        rows = []
        for name, params in model_parts(self.model).items():
            moved = sum(int((p.detach() != b).sum()) for (_, p), b in zip(params, before[name]))
            size = sum(p.numel() for _, p in params)
            rows.append({"part": name, "trainable": self.is_trainable(name), "grad_norm": sum(d[name] for d in norms) / len(norms),
                         "changed_fraction": moved / size if size else 0.0})
        self.last_step = pd.DataFrame(rows)
        return self.last_step


class RatePlayground(_Trials):
    """What the learning-rate panel (`mtst.widgets.lr_schedule_widget`) trains with: a short run of a copy of the
    starting model under the chosen rates, each task's validation score before and after, and how far each part's
    weights moved (the norm of its change over the norm of its weights). One row per trial, side by side."""

    def __init__(self, model: nn.Module, train_data: dict, validation: dict[str, TaskData], batch_size: int = 16, seed: int = 0):
        self.model, self.train_data, self.batch_size, self.seed = model, train_data, batch_size, seed
        self._setup_trials(model, validation)

    def trial(self, lr: float = 1e-4, head_lr: float = 1e-3, layer_decay: float = 0.9, schedule: str = "linear",
              warmup_ratio: float = 0.1, steps: int = 30, progress: bool = False) -> pd.DataFrame:
        """Train a copy from the starting weights for `steps` steps with these rates; adds a row to `trials_frame()`
        and a column to `updates_frame()`. A second call while one runs is refused."""
        with self._trial_run():
            cfg = TrainConfig(steps=steps, batch_size=self.batch_size, lr=lr, head_lr=head_lr, layer_decay=layer_decay, schedule=schedule,
                              warmup_ratio=warmup_ratio, progress=progress, seed=self.seed, device="cpu", validations=1, keep_best=False)
            model, after, seconds = _train_copy(self.model, self.start, self.train_data, self.validation, cfg, self._scores_before)
            moved = {}
            for part, params in model_parts(model).items():
                delta = sum(float((p.detach() - self.start[name]).pow(2).sum()) for name, p in params)
                size = sum(float(self.start[name].pow(2).sum()) for name, _ in params)
                moved[part] = (delta / size) ** 0.5 if size else 0.0
            self.trials.append({"rates": f"lr {lr:.0e}, heads {head_lr:.0e}, ξ {layer_decay:g}, {schedule}", "steps": steps,
                                "before": dict(self._before), "after": after, "moved": moved, "seconds": seconds})
        return self.trials_frame()

    def trials_frame(self) -> pd.DataFrame:
        """The trials so far: the rates, each task's validation score before → after, the cost."""
        rows = [{"trial": i + 1, "rates": t["rates"], **_before_after(t), "seconds": round(t["seconds"], 1)} for i, t in enumerate(self.trials)]
        return pd.DataFrame(rows).set_index("trial") if rows else pd.DataFrame()

    def updates_frame(self) -> pd.DataFrame:
        """Per part (rows) and trial (columns): how far its weights moved, as a share of their norm."""
        return pd.DataFrame({f"{i + 1}: {t['rates']}": t["moved"] for i, t in enumerate(self.trials)})

    def plot_updates(self, ax=None):
        """Each trial's update size per part, bottom of the network to the heads, on a log scale."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 3.5))
        frame = self.updates_frame()
        for column in frame:
            ax.plot(range(len(frame)), frame[column].clip(lower=1e-12), marker="o", label=column)
        ax.set_xticks(range(len(frame)), frame.index, rotation=45, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("‖Δw‖ / ‖w‖ after the trial")
        ax.legend(fontsize=7)
        return ax
