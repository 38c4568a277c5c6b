"""Data parallelism across processes through Hugging Face Accelerate: the same script under `python` (one process, and
this module does nothing) or `accelerate launch` (N processes on CPUs, GPUs or machines).

    accelerate launch --num_processes 2 my_script.py       # mtst.train inside it trains on 2 processes

What a step means with N processes: `TrainConfig.batch_size` is the global batch. Every process draws the same
global batch of the same task (one seed), takes its share (batch_size / N examples) and computes its loss, scaled
so that the mean over processes is the loss of the whole batch; Accelerate's `reduce` averages the gradients before
each optimizer step, so every process holds the same weights. Validation and test predictions are split across the
processes and gathered (`gather_for_metrics`), so every example counts once.

Why not `accelerator.prepare(model)` (DistributedDataParallel): DDP fixes the parameters it synchronizes when it wraps
the model, and gradual unfreezing adds parameters mid-run; and it synchronizes in backward hooks, which PCGrad's
per-task `torch.autograd.grad` does not go through. Averaging the gradients that exist, each step, serves both.
"""

from __future__ import annotations

import os
from functools import lru_cache

import torch


class Distributed:
    """Which process this is among how many, and the few collectives training needs. One process: all no-ops."""

    def __init__(self, accelerator=None):
        self.accelerator = accelerator
        self.num_processes = accelerator.num_processes if accelerator else 1
        self.rank = accelerator.process_index if accelerator else 0
        self.is_main = self.rank == 0

    @property
    def active(self) -> bool:
        return self.num_processes > 1

    def device(self, requested: str | None) -> str | None:
        """Each process's own device (cuda:<local rank> on several GPUs); what was asked for otherwise."""
        return str(self.accelerator.device) if self.active and requested is None else requested

    def check_batch(self, batch_size: int) -> None:
        if self.active and batch_size % self.num_processes:
            raise ValueError(f"batch_size {batch_size} is the global batch and must divide among the {self.num_processes} processes "
                             f"(each takes batch_size / {self.num_processes}); use a multiple of {self.num_processes}, e.g. "
                             f"{batch_size - batch_size % self.num_processes or self.num_processes}")

    def share(self, idx: list[int]) -> list[int]:
        """This process's part of a global batch: contiguous, as equal as the batch allows (a short last batch of a
        bucketed pass may leave a process none)."""
        if not self.active:
            return idx
        n, r = len(idx), self.rank
        return idx[n * r // self.num_processes : n * (r + 1) // self.num_processes]

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        return self.accelerator.reduce(t, reduction="mean") if self.active else t

    def total(self, t: torch.Tensor) -> torch.Tensor:
        return self.accelerator.reduce(t, reduction="sum") if self.active else t

    def average_gradients(self, params) -> None:
        """Every process's gradients replaced by their mean, in one flat all-reduce. All processes train the same task
        at the same step, so the same parameters hold gradients on each."""
        if not self.active:
            return
        with_grad = [p for p in params if p.grad is not None]
        if not with_grad:
            return
        flat = self.mean(torch.cat([p.grad.reshape(-1) for p in with_grad]))
        offset = 0
        for p in with_grad:
            p.grad.copy_(flat[offset : offset + p.numel()].view_as(p.grad))
            offset += p.numel()

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Every process starts from process 0's weights (heads initialised anywhere, the same start everywhere)."""
        if not self.active:
            return
        from accelerate.utils import broadcast

        with torch.no_grad():
            for p in module.parameters():
                p.copy_(broadcast(p.detach().clone(), from_process=0))

    def gather(self, items: list) -> list:
        """Python objects from every process, concatenated in process order (`gather_for_metrics`)."""
        return self.accelerator.gather_for_metrics(items, use_gather_object=True) if self.active else items

    def wait(self) -> None:
        if self.active:
            self.accelerator.wait_for_everyone()


SINGLE = Distributed()


@lru_cache(maxsize=1)
def _launched() -> Distributed:
    from accelerate import Accelerator

    # On a machine without a GPU, Accelerate joins the processes over gloo only when told it runs on CPUs.
    cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true") or not torch.cuda.is_available()
    return Distributed(Accelerator(cpu=cpu))


def current() -> Distributed:
    """This process's place: several processes when started by `accelerate launch` (or torchrun) with more than one."""
    return _launched() if int(os.environ.get("WORLD_SIZE", "1")) > 1 else SINGLE


def is_main_process() -> bool:
    """Whether this process writes files and shows progress (always, in one process)."""
    return current().is_main
