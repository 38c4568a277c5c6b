"""What ran a measurement: the commit of the code, the hardware and the date, recorded beside every benchmark and
results file so that a number can be traced to where it came from."""

from __future__ import annotations

import os
import platform
import subprocess
import warnings
from datetime import UTC, datetime
from pathlib import Path

import torch

from ..precision import cpu_bf16_flags, cpuinfo  # noqa: F401 (cpu_bf16_flags: what a benchmark file records)


def hardware() -> dict:
    """What ran this: CPU model and core count, and the GPU when one was used."""
    cpu = cpuinfo("model name") or platform.processor() or platform.machine()
    info = {"cpu": cpu, "cpu_threads": torch.get_num_threads(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    if processes > 1:  # data-parallel under `accelerate launch` (mtst.distributed)
        info["processes"] = processes
    return info


def git_commit(where: str | Path | None = None) -> str:
    """The commit of the code that ran: the git checkout that holds this package (or `where`), whatever the current
    folder is, since results are written beside the package. MTST_COMMIT overrides it, for copies of the tree without
    .git. "-dirty" when tracked files differ from it. results/ is left out of that check: it holds what runs write,
    not code, so a second run in the same checkout is not marked dirty by the files the first one wrote."""
    if os.environ.get("MTST_COMMIT"):
        return os.environ["MTST_COMMIT"]
    where = Path(where) if where is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=where)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top,exclude)results"],
                               capture_output=True, text=True, cwd=where)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        warnings.warn(f"{where} is not in a git checkout, so the provenance records commit 'unknown'; "
                      "set MTST_COMMIT=<sha> to the commit this copy of the code came from", stacklevel=2)
        return "unknown"


def date_span(dates) -> str:
    """'2026-12-03', or '2026-12-03 to 2026-12-04' where the dates differ: the days of ISO dates or timestamps (their
    first ten characters), as notes and tables give when something ran; '' for none."""
    days = sorted(d[:10] for d in dates)
    return "" if not days else days[0] if days[0] == days[-1] else f"{days[0]} to {days[-1]}"


def provenance(**extra) -> dict:
    """commit, date and hardware, plus `extra`: the fields every results and benchmark JSON starts with."""
    return {
        "commit": git_commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "hardware": hardware(),
        **extra,
    }
