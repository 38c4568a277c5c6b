"""The logic behind the notebooks' panels, without a widget (the widget layer, `mtst.widgets`, only links controls
to these): tests and readers without a kernel call them directly.
"""

from __future__ import annotations

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


class FreezePlayground:
    """What the freeze panel (`mtst.widgets.freeze_panel`) drives, without a widget: toggle parts, read the trainable
    count, train a few real steps and see each part's gradient norm and whether its weights changed; and, with
    `validation`, a short trial run that shows what the chosen freezing does to each task's validation score."""

    def __init__(self, model: nn.Module, train_data: dict, batch_size: int = 8, lr: float = 1e-4, head_lr: float = 1e-3, seed: int = 0,
                 validation: dict[str, TaskData] | None = None):
        self.model, self.train_data, self.validation = model, train_data, validation
        self.batch_size, self.lr, self.head_lr, self.seed = batch_size, lr, head_lr, seed
        self.parts = list(model_parts(model))
        self.last_step: pd.DataFrame | None = None
        self.start = {k: v.detach().clone() for k, v in model.state_dict().items()}  # every trial starts from these weights
        self.trials: list[dict] = []  # one per trial: what was frozen, the scores before and after, the seconds it took
        self.running = False
        self._before: dict[str, float] | None = None

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
        if self.validation is None:
            raise ValueError("a trial scores the validation sets: pass validation={task: TaskData} to FreezePlayground")
        if self.running:
            raise RuntimeError("a trial is already running: wait for it to finish")
        if not any(self.is_trainable(p) for p in self.parts):
            raise ValueError("every part is frozen, so nothing would learn: tick at least one part")
        self.running = True
        try:
            t0 = time.perf_counter()
            model = copy.deepcopy(self.model)
            model.load_state_dict(self.start)
            if self._before is None:  # the starting model's scores do not depend on what is frozen
                self._before = {t: evaluate(model, d, t, run_cache=False)["score"] for t, d in self.validation.items()}
            cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=self.lr, head_lr=self.head_lr, warmup_ratio=0.1, schedule="linear",
                              progress=progress, seed=self.seed, device="cpu", validations=1, keep_best=False,
                              cache_prefix=frozen_prefix_depth(model) is not None)
            result = Trainer(model, self.train_data, cfg, validation=self.validation).run()
            after = result.history[result.history.phase == "validation"].set_index("task").score.to_dict()
            total = trainable_summary(model).iloc[-1]
            self.trials.append({"frozen": self.frozen_label(), "trainable": float(total.trainable_fraction), "steps": steps,
                                "before": dict(self._before), "after": after, "seconds": time.perf_counter() - t0})
        finally:
            self.running = False
        return self.trials_frame()

    def trials_frame(self) -> pd.DataFrame:
        """The trials so far, one row each: what was frozen, each task's validation score before → after, the cost."""
        rows = [{"trial": i + 1, "frozen": t["frozen"], "trainable": f"{t['trainable']:.1%}",
                 **{task: f"{t['before'][task]:.3f} → {t['after'][task]:.3f}" for task in t["after"]}, "seconds": round(t["seconds"], 1)}
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
