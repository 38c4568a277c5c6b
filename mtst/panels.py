"""The logic behind the notebooks' panels, without a widget (the widget layer, `mtst.widgets`, only links controls
to these): tests and readers without a kernel call them directly.
"""

from __future__ import annotations

import pandas as pd
from torch import nn

from .callbacks import Callback
from .freezing import freeze, part_grad_norms, trainable_summary, unfreeze
from .model import model_parts
from .training import TrainConfig, Trainer


class FreezePlayground:
    """What the freeze panel (`mtst.widgets.freeze_panel`) drives, without a widget: toggle parts, read the trainable
    count, train a few real steps and see each part's gradient norm and whether its weights changed."""

    def __init__(self, model: nn.Module, train_data: dict, batch_size: int = 8, lr: float = 1e-4, head_lr: float = 1e-3, seed: int = 0):
        self.model, self.train_data = model, train_data
        self.batch_size, self.lr, self.head_lr, self.seed = batch_size, lr, head_lr, seed
        self.parts = list(model_parts(model))
        self.last_step: pd.DataFrame | None = None

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
