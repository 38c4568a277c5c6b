"""Which task each step trains on, and how many steps a run takes.

    mtst.task_schedule({"sentiment": 40, "ner": 20}, steps=6, sampler="round_robin")  # one task per step
    mtst.sampling.planned_steps(train_data, TrainConfig(epochs=2))  # every task's batches, twice
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .config import SAMPLERS
from .data import TaskData

if TYPE_CHECKING:
    from .config import TrainConfig



def task_schedule(batches: dict[str, int], steps: int, sampler: str = "proportional", temperature: float = 2.0, seed: int = 0) -> list[str]:
    """Which task each step trains on. Every batch holds one task (as in MT-DNN and sentence-transformers)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; valid samplers: {', '.join(SAMPLERS)}")
    names = list(batches)
    if sampler == "round_robin":
        return [names[i % len(names)] for i in range(steps)]
    if sampler == "temperature" and not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    n = np.array([batches[t] for t in names], dtype=float)
    p = n if sampler == "proportional" else n ** (1.0 / temperature)
    rng = np.random.default_rng(seed)
    return [names[i] for i in rng.choice(len(names), size=steps, p=p / p.sum())]


def sampling_shares(batches: dict[str, int], sampler: str, temperature: float = 2.0) -> dict[str, float]:
    """The expected share of steps each task gets under a sampler."""
    if sampler == "round_robin":
        return {t: 1 / len(batches) for t in batches}
    n = np.array(list(batches.values()), dtype=float)
    p = n if sampler == "proportional" else n ** (1.0 / temperature)
    return dict(zip(batches, (p / p.sum()).tolist()))


def task_passes(train_data: dict[str, TaskData], config: TrainConfig) -> dict[str, float]:
    """Batches each task gets in a run that is `epochs` long: passes (task_epochs, else epochs) × its batches per pass."""
    extra = config.task_epochs or {}
    unknown = sorted(set(extra) - set(train_data))
    if unknown:
        raise KeyError(f"task_epochs names tasks that are not trained: {unknown}; tasks: {list(train_data)}")
    bad = {t: e for t, e in extra.items() if not e > 0}
    if bad:
        raise ValueError(f"task_epochs must be > 0, got {bad}")
    return {t: extra.get(t, config.epochs) * math.ceil(len(d) / config.batch_size) for t, d in train_data.items()}


def planned_steps(train_data: dict[str, TaskData], config: TrainConfig) -> int:
    """The number of optimizer steps a run will take: config.steps, else each task's passes × its batches, summed."""
    return config.steps or max(1, round(sum(task_passes(train_data, config).values())))


class BatchQueue:
    """Which examples each task's next batch holds: a seeded permutation of the task's examples, taken batch_size at a
    time and drawn anew when it runs out. With `lengths` (word pieces per example) the batches are bucketed by length:
    each pool of `pool` batches' worth of the permutation is sorted by length and cut into batches, and the batches of
    a permutation are shuffled, so that a batch pads its texts to a similar length instead of to the longest of a
    random few. Every example is still seen once per pass."""

    def __init__(self, sizes: dict[str, int], batch_size: int, seed: int = 0, lengths: dict[str, list[int]] | None = None,
                 pool: int = 50):
        self.sizes, self.batch_size, self.lengths, self.pool = dict(sizes), batch_size, lengths, pool
        self._rng = np.random.default_rng(seed)
        self._queues: dict[str, list] = {t: [] for t in sizes}

    def next(self, task: str) -> list[int]:
        q, b = self._queues[task], self.batch_size
        if self.lengths is None:  # indices: a short remainder carries over into the next permutation
            if len(q) < b:
                q.extend(self._rng.permutation(self.sizes[task]).tolist())
            idx, self._queues[task] = q[:b], q[b:]
            return idx
        if not q:  # whole batches of similar length, in shuffled order
            perm, lengths = self._rng.permutation(self.sizes[task]).tolist(), self.lengths[task]
            batches = []
            for start in range(0, len(perm), b * self.pool):
                chunk = sorted(perm[start : start + b * self.pool], key=lambda i: lengths[i])
                batches += [chunk[i : i + b] for i in range(0, len(chunk), b)]
            q.extend(batches[i] for i in self._rng.permutation(len(batches)))
        return q.pop(0)
