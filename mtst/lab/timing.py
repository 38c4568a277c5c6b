"""How the benchmarks time: each contender once per round, in turn, medians of the rounds, and the JSON every
benchmark file holds."""

from __future__ import annotations

import statistics
import time

import torch

from .provenance import provenance


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _medians(times: dict[str, list[float]]) -> dict[str, float]:
    return {k: statistics.median(v) for k, v in times.items()}


def interleaved(contenders: dict, repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Run each contender once per round, in turn, so that drift in the machine hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def _report(benchmark: str, dev: torch.device, batch_size: int, repeats: int, med: dict[str, float], **results) -> dict:
    """What every benchmark's JSON holds: what ran where, the median times, its own results, the provenance."""
    return {"benchmark": benchmark, "batch_size": batch_size, "repeats": repeats, "device": str(dev), "median_s": med, **results, **provenance()}


def _print_medians(r: dict, width: int, unit: str = "ms") -> None:
    for k, v in r["median_s"].items():
        print(f"  {k:>{width}}: {1000 * v:8.1f} ms (median)" if unit == "ms" else f"  {k:>{width}}: {v:8.2f} s (median)")
