"""Side-by-side benchmark: full fine-tuning steps on a CPU with glibc's default malloc settings and with the ones the
Makefile exports (MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_). glibc serves large blocks with mmap and hands
them back on free, so every training step maps its activation buffers anew and faults each page in again; with a
high threshold they stay in the heap and are reused. glibc reads these variables when a process starts, so each
contender runs in its own child process, alternating, and the ratio of the median step times is printed.

    python tools/bench_malloc.py [--repeats 2] [--steps 6]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

# The tuned contender is exactly what the Makefile exports, read from it, so the two cannot drift apart.
TUNED = dict(re.findall(r"^export (MALLOC_\w+_) \?= (\d+)$", (Path(__file__).parents[1] / "Makefile").read_text(), re.M))
if not TUNED:
    raise SystemExit("the Makefile exports no MALLOC_* setting: nothing to compare against glibc's defaults")
UNTUNED = tuple(TUNED)

CHILD = r"""
import json, resource, sys, time, torch
import mtst
steps = int(sys.argv[1])
torch.manual_seed(0)
enc = mtst.SentenceEncoder.from_pretrained(max_length=256).train()
texts = mtst.load_task("topic", "train", "full").texts[: 32 * (steps + 1)]  # long posts: every batch fills 256 word pieces
opt = torch.optim.AdamW(enc.parameters(), lr=1e-5)
batches = [enc.tokenize(texts[i:i + 32], warn=False) for i in range(0, len(texts), 32)]
def step(b):
    enc(b)["sentence_embedding"].pow(2).mean().backward()
    opt.step(); opt.zero_grad(set_to_none=True)
step(batches[0])  # warm-up
r0, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
for b in batches[1:]:
    step(b)
dt, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"s_per_step": dt / steps, "sys_s": r1.ru_stime - r0.ru_stime, "user_s": r1.ru_utime - r0.ru_utime,
       "minor_faults": r1.ru_minflt - r0.ru_minflt, "max_rss_mib": r1.ru_maxrss / 1024}))
"""


def run(tuned: bool, steps: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in UNTUNED}
    if tuned:
        env.update(TUNED)
    out = subprocess.run([sys.executable, "-c", CHILD, str(steps)], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {"default": [], "tuned": []}
    for i in range(args.repeats):  # alternate, so drift in the machine's speed hits both alike
        for name in runs:
            runs[name].append(r := run(name == "tuned", args.steps))
            print(f"repeat {i} {name:8s} {r['s_per_step']:.2f} s/step, sys {r['sys_s']:.1f} s, user {r['user_s']:.1f} s, "
                  f"minor faults {r['minor_faults']:,}, max RSS {r['max_rss_mib']:,.0f} MiB", flush=True)
    med = {k: statistics.median(r["s_per_step"] for r in v) for k, v in runs.items()}
    ratio = med["default"] / med["tuned"]
    print(f"median s/step: default {med['default']:.2f}, tuned {med['tuned']:.2f}: tuned is {ratio:.2f}x faster")


if __name__ == "__main__":
    main()
