"""How the tasks' losses combine into one update: equal (static) weights, uncertainty weighting, PCGrad.

    TrainConfig(weighting="uncertainty")                  # learned per-task weights (Kendall et al. 2018)
    TrainConfig(weighting="pcgrad")                       # conflicting gradients projected (Yu et al. 2020)
    TrainConfig(weighting="equal", all_tasks_per_step=True)  # the baseline: every task each step, static weights

PCGrad needs every task's gradient at the same step, so it always trains all tasks each step.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

WEIGHTINGS = ("equal", "uncertainty", "pcgrad")


def check_weighting(name: str) -> str:
    if name not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {name!r}; valid weightings: {', '.join(WEIGHTINGS)}")
    return name


class UncertaintyWeighting(nn.Module):
    """Kendall et al. 2018: each task's loss becomes exp(−s)·loss + s/2, with s = log σ² learned per task, so a
    task whose loss stays high (noisy, hard) is down-weighted, and the s/2 term stops every σ from growing."""

    def __init__(self, tasks: list[str]):
        super().__init__()
        self.log_vars = nn.ParameterDict({t: nn.Parameter(torch.zeros(())) for t in tasks})

    def forward(self, task: str, loss: torch.Tensor) -> torch.Tensor:
        s = self.log_vars[task]
        return torch.exp(-s) * loss + 0.5 * s

    def weights(self) -> dict[str, float]:
        """Each task's current effective weight exp(−s)."""
        return dict(zip(self.log_vars, self.weight_tensor().tolist()))

    def weight_tensor(self) -> torch.Tensor:
        """The weights exp(−s) in task order, as a new tensor on the parameters' device (no host sync: the trainer
        takes it before the optimizer step and reads it after, with the step's losses)."""
        return torch.exp(-torch.stack([s.detach() for s in self.log_vars.values()]))


def pcgrad(grads: list[torch.Tensor], seed: int | None = None) -> list[torch.Tensor]:
    """Yu et al. 2020, "Gradient Surgery": for each task's (flattened) gradient, in a random order of the other
    tasks, remove the component along another task's gradient whenever the two conflict (dot product < 0).
    Gradients that conflict with no other are returned unchanged."""
    rng = np.random.default_rng(seed)
    out = []
    for i, g in enumerate(grads):
        g = g.clone()
        for j in rng.permutation(len(grads)):
            if j == i:
                continue
            dot = torch.dot(g, grads[j])
            if dot < 0:
                g = g - dot / torch.dot(grads[j], grads[j]).clamp_min(1e-20) * grads[j]
        out.append(g)
    return out


def joint_backward(trainer) -> torch.Tensor:
    """One batch of every task, at one step (all_tasks_per_step, or pcgrad). equal/uncertainty: the weighted sum's
    gradient, one task at a time so that only one graph is in memory. pcgrad: each task's gradient on the shared
    encoder, projected off the others' where they conflict, then summed; the heads get their own. Returns the summed
    loss, detached."""
    model, seed = trainer.model, trainer.config.seed
    total = torch.zeros((), device=trainer.device)
    if trainer.config.weighting != "pcgrad":
        for task in trainer.train_data:
            loss = trainer.loss(task, trainer.next_batch(task))
            loss.backward()
            total = total + loss.detach()
        return total
    shared = [p for p in model.encoder.parameters() if p.requires_grad]
    flat = []
    for task in trainer.train_data:
        loss = trainer.loss(task, trainer.next_batch(task))
        head = [p for p in model.heads[task].parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, shared + head, allow_unused=True)
        for p, g in zip(head, grads[len(shared):]):
            if g is not None:
                p.grad = g if p.grad is None else p.grad + g
        flat.append(trainer.dist.mean(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                                                 for p, g in zip(shared, grads[: len(shared)])])))
        total = total + loss.detach()
    if shared:
        summed = torch.stack(pcgrad(flat, seed=seed * 100_003 + trainer.step)).sum(0)
        offset = 0
        for p in shared:
            p.grad = summed[offset : offset + p.numel()].view_as(p).clone()
            offset += p.numel()
    return total


def uncertainty_summary(result, tail: float = 0.1) -> pd.DataFrame:
    """Where uncertainty weighting ended against where it was heading, per task: the learned weight exp(−s) at the
    last step; the weight that balances the task's recent loss L (exp(−s)·L + s/2 is lowest at exp(−s) = 1/(2L));
    and the summed rate of the updates before that step. Adam moves a scalar by about its rate per step while its
    gradient keeps its sign, so abs(s), the size of the log weight, stays near or below that sum: a short run at a
    head's rate leaves every weight near 1."""
    h = result.curves()
    if "lr:loss_weights" not in h:
        raise ValueError("this run learned no loss weights: train with TrainConfig(weighting='uncertainty') to summarize them")
    recent = h.iloc[-max(1, int(np.ceil(len(h) * tail))):]
    summed = float(h["lr:loss_weights"].iloc[:-1].sum())  # a row's weights are the ones its step used: the updates before it
    rows = {}
    for col in (c for c in h if c.startswith("weight:")):
        task = col.split(":", 1)[1]
        loss = float(recent[f"loss:{task}"].mean())
        w = float(h[col].iloc[-1])
        rows[task] = {"learned_weight": w, "recent_loss": loss, "balancing_weight": 1 / (2 * loss),
                      "abs_log_weight": abs(float(np.log(w))), "summed_rate": summed}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("task")
