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
from .features import frozen_modules
from .model import model_parts
from .optim import layerwise_param_groups

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
    if spec in parts:  # a part's own name, as mtst.model_parts spells it ("layer_5", "head:ner")
        return [spec]
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


def adopt_unfrozen(trainer) -> None:
    """Parameters unfrozen mid-run (by a callback, or by hand between hooks) would get gradients and never change,
    because the optimizer was built from the trainable ones. Give them their part's layer-wise rate now, scaled by
    the schedule's current factor. With `groups` passed to the Trainer, their rate is the caller's to say."""
    model, optimizer, scheduler = trainer.model, trainer.optimizer, trainer.scheduler
    new = [p for p in model.parameters() if p.requires_grad and id(p) not in trainer.optimized]
    if not new:
        return
    part_of = {id(p): part for part, params in model_parts(model).items() for _, p in params}
    parts = sorted({part_of.get(id(p), "?") for p in new})
    frozen = {id(p) for m in frozen_modules(model, trainer.features) for p in m.parameters()}
    if {id(p) for p in new} & frozen:
        raise ValueError(f"{', '.join(parts)} became trainable at step {trainer.step}, but the run trains on cached outputs of the "
                         f"frozen part (cache_encoder / cache_prefix), so it would never learn; train without the cache to "
                         f"unfreeze it during a run")
    if trainer.custom_groups:
        raise ValueError(f"{', '.join(parts)} became trainable at step {trainer.step}, but the param groups passed to the Trainer "
                         f"do not hold it, so it would get gradients and never change; build the groups before freezing "
                         f"(mtst.layerwise_param_groups on the unfrozen model) and freeze afterwards")
    cfg, ids = trainer.config, {id(p) for p in new}
    factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
    for g in layerwise_param_groups(model, cfg.lr, cfg.head_lr, cfg.layer_decay, cfg.weight_decay):
        params = [p for p in g["params"] if id(p) in ids]
        if not params:
            continue
        optimizer.add_param_group({**g, "params": params, "lr": g["lr"] * factor, "initial_lr": g["lr"]})
        scheduler.base_lrs.append(g["lr"])
        scheduler.lr_lambdas.append(scheduler.lr_lambdas[0])
        trainer.groups.append(optimizer.param_groups[-1])
        trainer.adopted.append((trainer.step, g["name"]))
    trainer.optimized |= ids


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
                unfreeze(trainer.model, name)
                self.log.append((step, name))



def part_grad_norms(model: nn.Module) -> dict[str, float]:
    """The L2 norm of each part's gradient right now (0.0 for parts without one, e.g. frozen parts)."""
    import torch

    out = {}
    for name, params in model_parts(model).items():
        grads = [p.grad for _, p in params if p.grad is not None]
        out[name] = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))) if grads else 0.0
    return out


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
