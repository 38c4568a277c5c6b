"""What training does inside the model: per-part gradient norms and update sizes, task-gradient conflict,
and how far each layer's representations move from the pretrained ones (the forgetting meter).

    monitor = mtst.GradientMonitor(every=1)
    mtst.train(model, data, cfg, callbacks=[monitor])
    monitor.frame()   # step, task, part, grad_norm, update_norm, param_norm, update_ratio, finite
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from .batches import make_batch, task_loss
from .callbacks import Callback
from .checks import check_count
from .encoder import pool
from .model import MultiTaskModel, model_parts


def _part_norms(parts: dict[str, list[torch.Tensor]]) -> dict[str, float]:
    """The L2 norm of each part's tensors, from one batched torch._foreach_norm over all of them."""
    flat = [t for ts in parts.values() for t in ts]
    if not flat:
        return {name: 0.0 for name in parts}
    norms = torch.stack(torch._foreach_norm(flat)).float().cpu()
    out, i = {}, 0
    for name, ts in parts.items():
        out[name] = float(torch.linalg.vector_norm(norms[i : i + len(ts)])) if ts else 0.0
        i += len(ts)
    return out


class GradientMonitor(Callback):
    """Records, every `every` steps, each part's gradient norm (before clipping) for that step's task, and the
    size of the optimizer's update relative to the weights. Frozen parts record 0. Non-finite norms are kept
    as they are and flagged (`finite` is False), not averaged away."""

    def __init__(self, every: int = 1, updates: bool = True):
        self.every, self.updates = check_count(every, "every"), updates
        self.rows: list[dict] = []
        self._before: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] | None = None
        self._buffers: dict[str, list[torch.Tensor]] = {}  # reused copies of the weights: no allocation per step
        self._pending: dict | None = None

    def on_train_begin(self, trainer) -> None:
        if not any(p.requires_grad for p in trainer.model.parameters()):
            raise ValueError("GradientMonitor: the model has no trainable parameters, so there are no gradients to "
                             "monitor; unfreeze something first (mtst.unfreeze(model, 'heads'))")

    def on_after_backward(self, trainer, step: int, task: str) -> None:
        if step % self.every:
            return
        parts = model_parts(trainer.model)
        grads = {name: [p.grad.detach() for _, p in ps if p.grad is not None] for name, ps in parts.items()}
        self._pending = {"step": step, "task": task, "grad_norm": _part_norms(grads)}
        if self.updates:
            self._before = {}  # part -> (the parameters snapshotted, their copy): the same ones are compared after the step
            for name, ps in parts.items():
                now = [p.detach() for _, p in ps if p.requires_grad]
                buf = self._buffers.get(name)
                if buf is None or len(buf) != len(now) or any(b.shape != p.shape or b.device != p.device for b, p in zip(buf, now)):
                    buf = self._buffers[name] = [torch.empty_like(p) for p in now]  # first use, or the trainable set changed
                if now:
                    torch._foreach_copy_(buf, now)
                self._before[name] = (now, buf)

    def on_step_end(self, trainer, step: int, task: str, loss: float) -> None:
        if self._pending is None or self._pending["step"] != step:
            return
        grad = self._pending["grad_norm"]
        upd = param = None
        if self.updates and self._before is not None:
            for now, buf in self._before.values():  # in place: the copy becomes before − after, whose norm is the update's
                if now:
                    torch._foreach_sub_(buf, now)
            upd = _part_norms({name: buf for name, (_, buf) in self._before.items()})
            param = _part_norms({name: now for name, (now, _) in self._before.items()})
        for name, g in grad.items():
            row = {"step": step, "task": task, "part": name, "grad_norm": g, "finite": bool(np.isfinite(g))}
            if upd is not None:
                row.update(update_norm=upd[name], param_norm=param[name], update_ratio=upd[name] / param[name] if param[name] else 0.0)
            self.rows.append(row)
        self._pending, self._before = None, None

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def nonfinite(self) -> pd.DataFrame:
        """The (step, part) records whose gradient norm was NaN or inf."""
        f = self.frame()
        return f[~f.finite] if len(f) else f


def part_order(frame: pd.DataFrame) -> list[str]:
    """The parts of a gradient frame bottom to top, "other" only where it had a gradient."""
    parts = list(dict.fromkeys(frame.part))
    return [p for p in parts if p != "other" or frame[frame.part == "other"].grad_norm.any()]


def plot_grad_heatmap(frame: pd.DataFrame, task: str | None = None, ax=None, value: str = "grad_norm"):
    """Part × step heatmap of gradient norms (log colour scale) for one task's steps."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    d = frame if task is None else frame[frame.task == task]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    parts = part_order(d)
    grid = d.pivot_table(index="part", columns="step", values=value, aggfunc="mean").reindex(parts)
    vals = grid.to_numpy(dtype=float)
    pos = vals[np.isfinite(vals) & (vals > 0)]
    norm = LogNorm(vmin=pos.min(), vmax=pos.max()) if pos.size else None
    im = ax.imshow(np.where(vals > 0, vals, np.nan), aspect="auto", cmap="viridis", norm=norm, interpolation="nearest")
    ax.set_yticks(range(len(parts)), parts, fontsize=7)
    steps = grid.columns.to_list()
    ticks = np.linspace(0, len(steps) - 1, min(6, len(steps))).astype(int) if steps else []
    ax.set_xticks(ticks, [steps[i] for i in ticks])
    ax.set_xlabel("step")
    ax.set_title(f"{value.replace('_', ' ')}" + (f" · {task} steps" if task else "") + " (blank: zero, i.e. frozen or not used)", fontsize=9)
    plt.colorbar(im, ax=ax, fraction=0.03)
    return ax


def plot_grad_bars(frame: pd.DataFrame, step: int, ax=None):
    """Each part's gradient norm at one step (the nearest recorded step at or before it)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    recorded = sorted(frame.step.unique())
    at = max([s for s in recorded if s <= step] or recorded[:1])
    d = frame[frame.step == at].set_index("part").reindex(part_order(frame))
    ax.barh(range(len(d)), d.grad_norm, color=["tab:blue" if g > 0 else "lightgrey" for g in d.grad_norm])
    ax.set_yticks(range(len(d)), d.index, fontsize=8)
    ax.set_xlabel("gradient norm")
    ax.set_title(f"step {at} ({d.task.iloc[0]} batch)", fontsize=9)
    return ax


def plot_update_ratio(frame: pd.DataFrame, ax=None, smooth: int = 5):
    """Update size / weight size per encoder part over the steps (log scale): which layers actually move."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    parts = [p for p in part_order(frame) if not p.startswith("head:")]
    cmap = plt.get_cmap("viridis")
    for i, part in enumerate(parts):
        d = frame[frame.part == part].groupby("step").update_ratio.mean()
        d = d[d > 0]
        if len(d):
            ax.plot(d.index, d.rolling(smooth, min_periods=1).mean(), label=part, color=cmap(i / max(1, len(parts) - 1)))
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("‖update‖ / ‖weights‖")
    ax.legend(fontsize=7, ncol=2)
    return ax


# --------------------------------------------------------------------------- task conflict


def task_gradients(model: MultiTaskModel, batches: dict[str, dict]) -> dict[str, dict[str, torch.Tensor]]:
    """Each task's gradient on each encoder part, flattened: {task: {part: vector}}. Runs in eval mode (no
    dropout) and leaves the model's .grad fields as they were."""
    parts = {n: ps for n, ps in model_parts(model).items() if not n.startswith("head:") and n != "other"}
    params = [p for ps in parts.values() for _, p in ps if p.requires_grad]
    if not params:
        raise ValueError("task conflict needs a trainable encoder: every encoder part is frozen")
    was_training = model.training
    saved = [p.grad for p in model.parameters()]
    model.eval()
    out: dict[str, dict[str, torch.Tensor]] = {}
    try:
        for task, batch in batches.items():
            logits = model(batch, [task])[task]
            loss = task_loss(logits, batch["labels"].to(model.device))
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            by_param = {id(p): g for p, g in zip(params, grads)}
            out[task] = {n: torch.cat([(by_param.get(id(p)) if by_param.get(id(p)) is not None else torch.zeros_like(p)).reshape(-1)
                                       for _, p in ps if p.requires_grad]) for n, ps in parts.items()
                         if any(p.requires_grad for _, p in ps)}
    finally:
        model.train(was_training)
        for p, g in zip(model.parameters(), saved):
            p.grad = g
    return out


def _cosine(dot: float, sq_a: float, sq_b: float) -> float:
    """dot / (|a| |b|), and 0 where either vector is zero (as torch's cosine_similarity)."""
    return dot / math.sqrt(sq_a * sq_b) if sq_a > 0 and sq_b > 0 else 0.0


def gradient_cosines(grads: dict[str, dict[str, torch.Tensor]]) -> pd.DataFrame:
    """Cosine between every pair of tasks' encoder gradients, per part and over the whole encoder.
    Sums run in float64 (over millions of entries float32 sums drift past ±1). Each part's vectors are converted
    once, and the whole-encoder cosine comes from the parts' dot products and squared norms, so no vector is
    concatenated or converted per pair."""
    tasks = list(grads)
    pairs = [(a, b) for i, a in enumerate(tasks) for b in tasks[i + 1 :]]
    sq = {t: {} for t in tasks}
    dots: dict[tuple[str, str], dict[str, float]] = {pair: {} for pair in pairs}
    for part in grads[tasks[0]]:
        v = {t: grads[t][part].double() for t in tasks}
        for t in tasks:
            sq[t][part] = float(v[t] @ v[t])
        for a, b in pairs:
            dots[a, b][part] = float(v[a] @ v[b])
    rows = []
    for a, b in pairs:
        for part, dot in dots[a, b].items():
            rows.append({"pair": f"{a}·{b}", "part": part, "cosine": _cosine(dot, sq[a][part], sq[b][part])})
        rows.append({"pair": f"{a}·{b}", "part": "encoder", "cosine": _cosine(sum(dots[a, b].values()), sum(sq[a].values()), sum(sq[b].values()))})
    return pd.DataFrame(rows)


class ConflictMonitor(Callback):
    """Every `every` steps, the cosine between tasks' gradients on the shared encoder, on a fixed probe batch
    per task (eval mode, so the run's own randomness is untouched)."""

    def __init__(self, probe: dict, every: int = 10, batch_size: int = 16):
        empty = [t for t, d in probe.items() if not len(d)]
        if len(probe) < 2 or empty:
            raise ValueError(f"task conflict compares the gradients of two tasks or more: the probe needs examples of each, "
                             f"got {sorted(probe)}" + (f" with none for {empty}" if empty else ""))
        self.probe, self.every, self.batch_size = probe, check_count(every, "every"), check_count(batch_size, "batch_size")
        self.rows: list[dict] = []
        self._batches: dict | None = None

    def on_train_begin(self, trainer) -> None:
        unknown = sorted(set(self.probe) - set(trainer.model.heads))
        if unknown:
            raise ValueError(f"the probe has tasks the model has no head for: {unknown}; the model's tasks: {sorted(trainer.model.heads)}")

    def on_step_end(self, trainer, step: int, task: str, loss: float) -> None:
        if step % self.every and step != 1:
            return
        if self._batches is None:
            self._batches = {t: make_batch(trainer.model, d, list(range(min(self.batch_size, len(d))))) for t, d in self.probe.items()}
        frame = gradient_cosines(task_gradients(trainer.model, self._batches))
        self.rows += [{"step": step, **r} for r in frame.to_dict("records")]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def conflict_share(self) -> pd.DataFrame:
        """Per task pair: the fraction of recorded steps whose whole-encoder cosine was below 0."""
        f = self.frame()
        f = f[f.part == "encoder"]
        return f.groupby("pair").cosine.agg(conflict_share=lambda c: float((c < 0).mean()), mean_cosine="mean", steps="count").reset_index()


def plot_conflict(frame: pd.DataFrame, ax=None):
    """Whole-encoder cosine between task gradients over the steps; below 0 the tasks pull apart."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    f = frame[frame.part == "encoder"]
    for pair, d in f.groupby("pair"):
        ax.plot(d.step, d.cosine, marker=".", label=pair)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("cosine of task gradients (encoder)")
    ax.legend(fontsize=8)
    return ax


# --------------------------------------------------------------------------- forgetting meter


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA (Kornblith et al. 2019) between two [n, d] representations of the same n inputs: 1 = same
    geometry, lower = the representation moved."""
    x = x.double() - x.double().mean(0)
    y = y.double() - y.double().mean(0)
    hsic = torch.linalg.matrix_norm(y.T @ x) ** 2
    return float(hsic / (torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)))


@torch.inference_mode()
def layer_representations(encoder, sentences: list[str], batch_size: int = 64) -> list[torch.Tensor]:
    """Mean-pooled hidden states of every layer (index 0: the embeddings' output) for each sentence."""

    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    per_layer: list[list[torch.Tensor]] = []
    try:
        for start in range(0, len(sentences), batch_size):
            batch = encoder.tokenize(sentences[start : start + batch_size])
            inputs = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            hidden = encoder.model(**inputs, output_hidden_states=True).hidden_states
            if not per_layer:
                per_layer = [[] for _ in hidden]
            for i, h in enumerate(hidden):
                per_layer[i].append(pool(h, inputs["attention_mask"], "mean").float().cpu())
    finally:
        encoder.train(was_training)
    return [torch.cat(chunks) for chunks in per_layer]


def forgetting(reference: list[torch.Tensor], encoder, sentences: list[str]) -> pd.DataFrame:
    """Per layer: linear CKA between the reference (pretrained) representations and this encoder's, and
    forgetting = 1 − CKA. `reference` is layer_representations(pretrained_encoder, sentences)."""
    now = layer_representations(encoder, sentences)
    names = ["embeddings"] + [f"layer_{i}" for i in range(len(now) - 1)]
    return pd.DataFrame([{"layer": n, "cka": linear_cka(a, b), "forgetting": 1 - linear_cka(a, b)} for n, a, b in zip(names, reference, now)])


def plot_forgetting(frames: dict[str, pd.DataFrame], ax=None):
    """1 − CKA per layer for each run: how far each layer moved from the pretrained model."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    for name, f in frames.items():
        ax.plot(range(len(f)), f.forgetting, marker="o", label=name)
    first = next(iter(frames.values()))
    ax.set_xticks(range(len(first)), first.layer, fontsize=8, rotation=30)
    ax.set_ylabel("forgetting (1 − linear CKA vs pretrained)")
    ax.legend(fontsize=8)
    return ax
