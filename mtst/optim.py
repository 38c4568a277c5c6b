"""Parameter groups with layer-wise learning rates, and LR schedules that keep the ratios between groups.

The vocabulary follows timm's `param_groups_layer_decay` and ULMFiT's discriminative fine-tuning, with one
difference that matters: each group stores its real `lr`, so any torch scheduler applies it.
"""

from __future__ import annotations

import math

import pandas as pd
import torch
from torch import nn

from .config import SCHEDULES
from .model import model_parts


def _no_decay(name: str, p: nn.Parameter) -> bool:
    """Biases and LayerNorm weights (all 1-D parameters) get no weight decay."""
    return p.ndim <= 1 or name.endswith(".bias") or "LayerNorm" in name or "layer_norm" in name


def layerwise_param_groups(
    model: nn.Module,
    lr: float,
    head_lr: float | None = None,
    layer_decay: float = 1.0,
    weight_decay: float = 0.01,
    head_lrs: dict[str, float] | None = None,
) -> list[dict]:
    """Torch param groups: the top encoder layer gets `lr`, each layer below ξ times the one above, the
    embeddings below layer 0; heads get `head_lr` (or `head_lrs[task]`). Frozen parameters are left out."""
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if head_lr is not None and not head_lr > 0:
        raise ValueError(f"head_lr must be > 0, got {head_lr}")
    if not 0 < layer_decay <= 1:
        raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}")
    head_lr = lr if head_lr is None else head_lr
    parts = model_parts(model)
    depth = sum(1 for p in parts if p.startswith("layer_"))
    unknown = set(head_lrs or {}) - {p[5:] for p in parts if p.startswith("head:")}
    if unknown:
        raise KeyError(f"head_lrs names tasks without a head: {sorted(unknown)}; heads: {[p[5:] for p in parts if p.startswith('head:')]}")
    bad = {t: r for t, r in (head_lrs or {}).items() if not r > 0}
    if bad:
        raise ValueError(f"head_lrs must be > 0, got {bad}")
    groups = []
    for part, params in parts.items():
        if part == "embeddings":
            part_lr = lr * layer_decay**depth
        elif part.startswith("layer_"):
            part_lr = lr * layer_decay ** (depth - 1 - int(part.split("_")[1]))
        elif part.startswith("head:"):
            part_lr = (head_lrs or {}).get(part[5:], head_lr)
        else:  # anything else the model owns (e.g. learned loss weights) learns at the head rate
            part_lr = head_lr
        for suffix, wd, keep in (("", weight_decay, False), (".no_decay", 0.0, True)):
            chosen = [p for n, p in params if p.requires_grad and _no_decay(n, p) == keep]
            if chosen:
                groups.append({"name": part + suffix, "params": chosen, "lr": part_lr, "weight_decay": wd})
    return groups


def check_param_groups(model: nn.Module, groups: list[dict]) -> None:
    """Raise when the groups miss a trainable parameter, hold a frozen one, or hold one twice."""
    seen: dict[int, str] = {}
    for g in groups:
        for p in g["params"]:
            if id(p) in seen:
                raise ValueError(f"a parameter appears in both group {seen[id(p)]!r} and {g.get('name', '?')!r}")
            seen[id(p)] = g.get("name", "?")
    names = {id(p): n for n, p in model.named_parameters()}
    missing = [names[id(p)] for p in model.parameters() if p.requires_grad and id(p) not in seen]
    if missing:
        raise ValueError(f"{len(missing)} trainable parameters are in no optimizer group, e.g. {missing[:3]}; build the groups after freezing")
    frozen = [names.get(id(p), "?") for g in groups for p in g["params"] if not p.requires_grad]
    if frozen:
        raise ValueError(f"{len(frozen)} frozen parameters are in the optimizer groups, e.g. {frozen[:3]}")


def describe_param_groups(groups: list[dict]) -> pd.DataFrame:
    """One row per group: name, parameter tensors and count, lr and weight decay."""
    return pd.DataFrame(
        [
            {
                "group": g.get("name", str(i)),
                "tensors": len(g["params"]),
                "params": sum(p.numel() for p in g["params"]),
                "lr": g["lr"],
                "weight_decay": g["weight_decay"],
            }
            for i, g in enumerate(groups)
        ]
    )


def make_optimizer(groups: list[dict], model: nn.Module | None = None) -> torch.optim.AdamW:
    """AdamW over the groups (foreach kernels); with nothing trainable, a clear error instead of torch's."""
    if not any(g["params"] for g in groups):
        raise ValueError("nothing to train: every parameter is frozen. Unfreeze a part first, e.g. mtst.unfreeze(model, 'heads')")
    if model is not None:
        check_param_groups(model, groups)
    return torch.optim.AdamW(groups, foreach=True)


def _slanted_triangular(total: int, cut_frac: float = 0.1, ratio: float = 32.0):
    """ULMFiT's schedule (Howard & Ruder 2018): a short linear rise, a long linear fall to 1/ratio."""
    cut = max(1, math.floor(total * cut_frac))

    def f(step: int) -> float:
        p = step / cut if step < cut else 1 - (step - cut) / max(1, cut * (1 / cut_frac - 1))
        return (1 + max(p, 0) * (ratio - 1)) / ratio

    return f


def make_scheduler(optimizer: torch.optim.Optimizer, name: str = "linear", total_steps: int = 100, warmup_steps: int = 0):
    """A LambdaLR whose one factor multiplies every group's own lr, so ratios between groups never change."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; valid schedules: {', '.join(SCHEDULES)}")
    if total_steps < 1:
        raise ValueError(f"total_steps must be ≥ 1, got {total_steps}")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps ({warmup_steps}) must be between 0 and total_steps ({total_steps})")
    if name == "slanted_triangular":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, _slanted_triangular(total_steps))
    from transformers import get_scheduler

    kwargs = {} if name == "constant" else {"num_warmup_steps": warmup_steps}
    return get_scheduler(name, optimizer, num_training_steps=total_steps, **kwargs)


def lr_table(optimizer: torch.optim.Optimizer, scheduler, steps: int) -> pd.DataFrame:
    """Each group's LR at each step, read from the scheduler's factors without stepping it."""
    lambdas = getattr(scheduler, "lr_lambdas", None)
    if lambdas is None:
        raise TypeError("lr_table reads LambdaLR-style schedulers (make_scheduler, transformers.get_scheduler)")
    names = [g.get("name", str(i)) for i, g in enumerate(optimizer.param_groups)]
    rows = {n: [base * lam(s) for s in range(steps)] for n, base, lam in zip(names, scheduler.base_lrs, lambdas)}
    return pd.DataFrame(rows, index=pd.RangeIndex(steps, name="step"))


def schedule_frame(model: nn.Module, lr: float = 1e-4, head_lr: float | None = 1e-3, layer_decay: float = 0.9,
                   schedule: str = "linear", warmup_steps: int = 10, total_steps: int = 100) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What an optimizer would do, without training: the group table, and every group's LR at every step."""
    groups = [g for g in layerwise_param_groups(model, lr, head_lr, layer_decay) if not g["name"].endswith(".no_decay")]
    # A throwaway optimizer over stand-in tensors: the schedule only reads each group's lr.
    probe = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": g["lr"], "name": g["name"]} for g in groups])
    sched = make_scheduler(probe, schedule, total_steps, warmup_steps)
    return describe_param_groups(groups), lr_table(probe, sched, total_steps)


def plot_lr_schedule(table: pd.DataFrame, ax=None, log: bool = True):
    """Each group's LR over the steps (log scale by default, so that the layer-wise ratios show as even gaps)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    cmap = plt.get_cmap("viridis")
    encoder_cols = [c for c in table.columns if not c.startswith("head:")]
    for i, c in enumerate(encoder_cols):
        ax.plot(table.index, table[c], color=cmap(i / max(1, len(encoder_cols) - 1)), label=c, lw=1.2)
    same: dict[str, list[str]] = {}  # heads with the same schedule share one line, named after all of them
    for c in [c for c in table.columns if c.startswith("head:")]:
        twin = next((k for k in same if table[k].equals(table[c])), c)
        same.setdefault(twin, []).append(c)
    for first, cols in same.items():
        label = cols[0] if len(cols) == 1 else "heads: " + ", ".join(c.removeprefix("head:") for c in cols)
        ax.plot(table.index, table[first], "--", lw=1.2, label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.legend(fontsize=7, ncol=2)
    return ax
