"""Freezing by name: "all", "encoder", "embeddings", "layers:0-3", "layer:5", "head:sentiment", "heads".

Freezing sets requires_grad=False, nothing more. A frozen layer still runs its forward pass (it costs compute),
gets no gradient, and is left out of the optimizer's groups. It stays in training mode, so its dropout is still
active while the model trains: freezing is not eval mode (call .eval() on a part for that).
"""

from __future__ import annotations

import re

import pandas as pd
from torch import nn

from .callbacks import Callback
from .checks import check_count
from .model import model_parts

SPEC_HELP = '"all", "encoder", "embeddings", "layers:A-B", "layer:N", "heads", "head:<task>"'


def _resolve(model: nn.Module, spec: str) -> list[str]:
    """The part names a spec covers."""
    parts = list(model_parts(model))
    layers = [p for p in parts if p.startswith("layer_")]
    heads = [p for p in parts if p.startswith("head:")]
    if spec == "all":
        return parts
    if spec == "encoder":
        return ["embeddings", *layers]
    if spec == "embeddings":
        return ["embeddings"]
    if spec == "heads":
        return heads
    m = re.fullmatch(r"layers?:(\d+)(?:-(\d+))?", spec)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if not (0 <= lo <= hi < len(layers)):
            raise ValueError(f"layer range {spec!r} is out of range: the encoder has layers 0-{len(layers) - 1}")
        return [f"layer_{i}" for i in range(lo, hi + 1)]
    if spec.startswith("head:"):
        if spec not in heads:
            raise KeyError(f"no head {spec[5:]!r}; the model's heads are: {', '.join(h[5:] for h in heads)}")
        return [spec]
    raise ValueError(f"unknown part {spec!r}; valid parts: {SPEC_HELP}; the model's parts are: {', '.join(parts)}")


def _set(model: nn.Module, specs: tuple[str, ...], trainable: bool) -> nn.Module:
    names = [n for spec in specs for n in _resolve(model, spec)]  # validate every spec before changing anything
    parts = model_parts(model)
    for name in names:
        for _, p in parts[name]:
            p.requires_grad_(trainable)
    return model


def freeze(model: nn.Module, *specs: str) -> nn.Module:
    """Stop the named parts from learning (requires_grad=False); a bad spec changes nothing."""
    return _set(model, specs or ("all",), False)


def unfreeze(model: nn.Module, *specs: str) -> nn.Module:
    """Let the named parts learn again; a bad spec changes nothing."""
    return _set(model, specs or ("all",), True)


def trainable_summary(model: nn.Module) -> pd.DataFrame:
    """One row per part: parameter count, trainable or not; the last row totals them with the trainable fraction."""
    rows = []
    for name, params in model_parts(model).items():
        n = sum(p.numel() for _, p in params)
        t = sum(p.numel() for _, p in params if p.requires_grad)
        rows.append({"part": name, "params": n, "trainable_params": t, "trainable": t == n and n > 0, "trainable_fraction": t / n if n else 0.0})
    total = sum(r["params"] for r in rows)
    trainable = sum(r["trainable_params"] for r in rows)
    rows.append({"part": "total", "params": total, "trainable_params": trainable, "trainable": trainable == total, "trainable_fraction": trainable / total})
    return pd.DataFrame(rows)


class GradualUnfreezing(Callback):
    """ULMFiT's gradual unfreezing: start with the heads only, then unfreeze one more encoder layer from the
    top every `every` steps (the embeddings last). A newly unfrozen layer learns at its own layer-wise rate: its
    group is in the optimizer from the start, or, when the encoder was already frozen as the Trainer was built,
    the Trainer adds the group at the step the layer is unfrozen."""

    def __init__(self, every: int):
        self.every = check_count(every, "every")
        self.order: list[str] = []
        self.log: list[tuple[int, str]] = []

    def on_train_begin(self, trainer) -> None:
        model = trainer.model
        parts = list(model_parts(model))
        self.order = [p for p in reversed(parts) if p.startswith("layer_")] + ["embeddings"]
        freeze(model, "encoder")

    def on_step_begin(self, trainer, step: int, task: str) -> None:
        k = (step - 1) // self.every  # how many encoder parts are unfrozen at this step
        for name in self.order[:k]:
            if not any(p.requires_grad for _, p in model_parts(trainer.model)[name]):
                spec = "embeddings" if name == "embeddings" else f"layer:{name.split('_')[1]}"
                unfreeze(trainer.model, spec)
                self.log.append((step, name))

    def cache_key(self) -> str:
        return f"GradualUnfreezing(every={self.every})"

    def cache_state(self) -> list:
        return self.log

    def load_cache_state(self, log: list) -> None:
        self.log = [tuple(x) for x in log]



def part_grad_norms(model: nn.Module) -> dict[str, float]:
    """The L2 norm of each part's gradient right now (0.0 for parts without one, e.g. frozen parts)."""
    import torch

    out = {}
    for name, params in model_parts(model).items():
        grads = [p.grad for _, p in params if p.grad is not None]
        out[name] = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))) if grads else 0.0
    return out


class FreezePanelModel:
    """What the freeze panel shows, without a widget: toggle parts, read the trainable count, train a few
    real steps and see each part's gradient norm and whether its weights changed."""

    def __init__(self, model: nn.Module, train_data: dict, batch_size: int = 8, lr: float = 1e-4, head_lr: float = 1e-3, seed: int = 0):
        self.model, self.train_data = model, train_data
        self.batch_size, self.lr, self.head_lr, self.seed = batch_size, lr, head_lr, seed
        self.parts = list(model_parts(model))
        self.last_step: pd.DataFrame | None = None

    def is_trainable(self, part: str) -> bool:
        return any(p.requires_grad for _, p in model_parts(self.model)[part])

    def set_trainable(self, part: str, trainable: bool) -> None:
        spec = part if part in ("embeddings",) or part.startswith("head:") else f"layer:{part.split('_')[1]}"
        (unfreeze if trainable else freeze)(self.model, spec)

    def readout(self) -> str:
        total = trainable_summary(self.model).iloc[-1]
        return f"trainable: {int(total.trainable_params):,} of {int(total.params):,} parameters ({total.trainable_fraction:.1%})"

    def train_steps(self, n: int = 3, progress: bool = False) -> pd.DataFrame:
        """Run n real training steps (with a progress bar on request); per part: mean gradient norm and the share of
        its weights that changed."""
        from .training import TrainConfig, Trainer

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


def plot_freeze_map(model: nn.Module, ax=None):
    """The model's parts bottom to top, coloured trainable (blue) or frozen (grey), sized by parameter count."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    s = trainable_summary(model).iloc[:-1]
    colors = ["tab:blue" if t else "lightgrey" for t in s.trainable]
    ax.barh(range(len(s)), s.params / 1e6, color=colors)
    ax.set_yticks(range(len(s)), s.part, fontsize=8)
    ax.set_xlabel("parameters (millions)")
    total = trainable_summary(model).iloc[-1]
    ax.set_title(f"blue: trainable, grey: frozen · {total.trainable_fraction:.1%} trainable", fontsize=9)
    return ax


def plot_step_report(report: pd.DataFrame, ax=None):
    """Per-part gradient norm after a few steps (zero for frozen parts), annotated with the share of weights changed."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    colors = ["tab:blue" if t else "lightgrey" for t in report.trainable]
    ax.barh(range(len(report)), report.grad_norm, color=colors)
    ax.set_yticks(range(len(report)), report.part, fontsize=8)
    for i, f in enumerate(report.changed_fraction):
        ax.text(report.grad_norm.max() * 0.02 if report.grad_norm.max() else 0.01, i, f"{f:.0%} changed", va="center", fontsize=7)
    ax.set_xlabel("gradient norm (mean over the steps)")
    return ax
