"""Training steps per second on one process against N processes under `accelerate launch`, at the same global batch,
side by side: each contender is a fresh launch of this module as a worker, in turn, `repeats` rounds.

    python -m mtst.lab.bench processes                  # 1 vs 2 processes (on a CPU: the cores split between them)
    python -m mtst.lab.bench_scale --worker OUT.json    # one contender (what the benchmark launches)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import mtst
from mtst import distributed
from mtst.callbacks import Callback

from .provenance import provenance

WARMUP_STEPS = 3  # the first steps (allocations, the first all-reduce) are not timed


def _launch_cmd(processes: int, out: Path, size: str, batch_size: int, steps: int) -> list[str]:
    worker = ["-m", "mtst.lab.bench_scale", "--worker", str(out), "--size", size, "--batch-size", str(batch_size), "--steps", str(steps)]
    if processes == 1:
        return [sys.executable, *worker]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    accelerate = str(Path(sys.executable).parent / "accelerate")
    return [accelerate, "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", "--main_process_port", str(port), *worker]


def bench_processes(size: str = "demo", batch_size: int = 32, steps: int = 24, repeats: int = 2, processes: int = 2,
                    device: str | None = None, **_) -> dict:
    """Steps/s of full fine-tuning for 1 and `processes` processes at global batch `batch_size`; on a CPU each
    contender gets all the cores (one process: all threads; N: cores / N threads each)."""
    cores = os.cpu_count() or 1
    rounds: dict[str, list[dict]] = {"1 process": [], f"{processes} processes": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for n, label in ((1, "1 process"), (processes, f"{processes} processes")):
                out = Path(tmp) / f"{n}-{r}.json"
                threads = max(1, cores // n)
                env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MTST_BENCH_THREADS": str(threads), "MTST_RUN_CACHE": "0",
                       "TOKENIZERS_PARALLELISM": "false", **({"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else {})}
                done = subprocess.run(_launch_cmd(n, out, size, batch_size, steps), env=env, capture_output=True, text=True, timeout=900)
                if done.returncode:
                    raise RuntimeError(f"{label} failed:\n{done.stderr[-3000:]}")
                rounds[label].append(json.loads(out.read_text()))
    med = {k: statistics.median(x["steps_per_s"] for x in v) for k, v in rounds.items()}
    one, many = med["1 process"], med[f"{processes} processes"]
    allreduce = [x["allreduce_s"] for x in rounds[f"{processes} processes"]]
    return {"benchmark": "processes", "size": size, "global_batch": batch_size, "timed_steps": steps, "warmup_steps": WARMUP_STEPS,
            "repeats": repeats, "allreduce_s": statistics.median(allreduce), "allreduce_mib": rounds[f"{processes} processes"][0]["allreduce_mib"],
            "device": rounds["1 process"][0]["device"], "threads": {k: v[0]["threads"] for k, v in rounds.items()},
            "steps_per_s": med, "rounds": rounds, "ratio_many_over_one": many / one, **provenance()}


def _print_processes(r: dict) -> None:
    print(f"processes: full fine-tuning, global batch {r['global_batch']}, {r['timed_steps']} timed steps, {r['size']} data, on {r['device']}")
    for k, v in r["steps_per_s"].items():
        print(f"  {k:>12}: {v:6.2f} steps/s ({r['threads'][k]} threads each)")
    print(f"  ratio N processes / 1 process = {r['ratio_many_over_one']:.2f}x")
    print(f"  one all-reduce of the trained parameters' gradients ({r['allreduce_mib']:.0f} MiB): {1000 * r['allreduce_s']:.0f} ms")


def worker(out: Path, size: str, batch_size: int, steps: int) -> None:
    """One contender: load, train WARMUP_STEPS + steps, time the last `steps`; the main process writes `out`."""
    torch.set_num_threads(int(os.environ.get("MTST_BENCH_THREADS", torch.get_num_threads())))
    train = {t: mtst.load_task(t, "train", size) for t in mtst.TASKS}
    encoder = mtst.SentenceEncoder.from_pretrained()
    encoder.max_length = mtst.SIZES[size].max_length
    model = mtst.MultiTaskModel.for_tasks(encoder, train, seed=0)
    stamps: list[float] = []

    class Clock(Callback):
        def on_step_end(self, trainer, step, task, loss):
            stamps.append(time.perf_counter())

    cfg = mtst.TrainConfig(steps=WARMUP_STEPS + steps, batch_size=batch_size, lr=1e-4, head_lr=1e-3, progress=False,
                           bucket_by_length=True, keep_best=False)
    mtst.train(model, train, cfg, callbacks=[Clock()], run_cache=False)
    dist = distributed.current()
    record = {"processes": dist.num_processes, "threads": torch.get_num_threads(), "device": str(model.device),
              "steps_per_s": steps / (stamps[-1] - stamps[WARMUP_STEPS - 1])}
    if dist.active:  # what each step adds: one all-reduce of every trained parameter's gradient
        grads = torch.zeros(sum(p.numel() for p in model.parameters() if p.requires_grad), device=model.device)
        times = []
        for _ in range(5):
            dist.wait()
            t = time.perf_counter()
            dist.mean(grads)
            times.append(time.perf_counter() - t)
        record |= {"allreduce_s": statistics.median(times), "allreduce_mib": grads.numel() * 4 / 2**20}
    if dist.is_main:
        out.write_text(json.dumps(record))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mtst.lab.bench_scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", type=Path, required=True, help="write this contender's steps/s here")
    p.add_argument("--size", default="demo")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=24)
    args = p.parse_args(argv)
    worker(args.worker, args.size, args.batch_size, args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
