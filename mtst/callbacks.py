"""Hooks into the training loop. A callback sees the Trainer (model, optimizer, scheduler, step, config) at every hook.

A callback knows nothing of the run cache. Keep the arguments of `__init__` as attributes of the same names and what
you record in public attributes (`self.rows`): the run cache keys a run by the former and gives the latter back on a
hit (see `mtst.runcache`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .training import Trainer


class Callback:
    """Hooks into the training loop; override what you need. `trainer` exposes model, optimizer, step."""

    def on_train_begin(self, trainer: "Trainer") -> None: ...
    def on_step_begin(self, trainer: "Trainer", step: int, task: str) -> None: ...
    def on_after_backward(self, trainer: "Trainer", step: int, task: str) -> None: ...
    def on_step_end(self, trainer: "Trainer", step: int, task: str, loss: float) -> None: ...
    def on_evaluate(self, trainer: "Trainer", step: int, metrics: dict[str, dict]) -> None: ...
    def on_train_end(self, trainer: "Trainer") -> None: ...
