"""Hooks into the training loop. A callback sees the Trainer (model, optimizer, scheduler, step, config) at every hook.

A callback that only watches (a monitor) can say so with `observes_only = True` and keep what it recorded across a
run cache hit with `cache_state()` / `load_cache_state()`; one that changes training gives `cache_key()`, a string
that says how, so that a cached run is only reused for the same change. A callback with neither turns the run cache
off for its run.
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

    def cache_key(self) -> str | None:
        """How this callback changes the run, for the run cache; None: it cannot say, so the run is not cached."""
        return None
