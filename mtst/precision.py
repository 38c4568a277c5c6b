"""Which precision a run computes in: fp32, or bf16 autocast where the hardware does bf16 arithmetic natively.

    mtst.precision.describe(model.device, "auto")   # "fp32 on cpu (this CPU has no native bf16)"
"""

from __future__ import annotations

from pathlib import Path

import torch

from .checks import check_choice, check_device

TRAIN_PRECISIONS = ("auto", "fp32", "bf16")  # auto: bf16 autocast on CUDA, fp32 on a CPU
CPUINFO = Path("/proc/cpuinfo")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags for bf16 arithmetic in hardware


def cpuinfo(key: str, path: Path = CPUINFO) -> str | None:
    """The first value of `key` in /proc/cpuinfo, or None where there is no such file or line."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_bf16_flags(path: Path = CPUINFO) -> list[str]:
    """Which of CPU_BF16_FLAGS this CPU has. One CPU model name can come with or without them (virtual machines pass
    on different flags); without them bf16 autocast on the CPU is emulated and slower than fp32."""
    flags = set((cpuinfo("flags", path) or "").split())
    return [f for f in CPU_BF16_FLAGS if f in flags]


def resolve(device: torch.device | str, precision: str) -> str:
    """What `precision` means on `device`: "bf16" or "fp32" ("auto": bf16 on CUDA, fp32 on a CPU)."""
    check_choice(precision, TRAIN_PRECISIONS, "precision")
    device = torch.device(device)
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast(device: torch.device, precision: str):
    """The autocast context a precision asks for on this device (a no-op for fp32)."""
    device = torch.device(device)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=resolve(device, precision) == "bf16")


def describe(device: torch.device | str | None = None, precision: str = "auto") -> str:
    """One line for a notebook: the precision a run computes in, on which device, and why (device None: CUDA when present)."""

    device = check_device(device)
    p = resolve(device, precision)
    if device.type == "cuda":
        return f"{p} on {torch.cuda.get_device_name(device)}"
    native = cpu_bf16_flags()
    hw = f"this CPU has {' and '.join(native)}" if native else "this CPU has no native bf16"
    return f"{p} on the CPU ({torch.get_num_threads()} threads; {hw})"
