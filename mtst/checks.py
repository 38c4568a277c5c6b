"""Argument checks shared across mtst, so every refusal names the argument, what was given and what to pass."""

from __future__ import annotations

import numpy as np
import torch


def check_choice(value, options: tuple[str, ...], what: str) -> str:
    """The value, if it is one of options; else a ValueError that lists them."""
    if value not in options:
        raise ValueError(f"unknown {what} {value!r}; valid options: {', '.join(options)}")
    return value


def check_count(value, what: str, most: int | None = None, minimum: int = 1) -> int:
    """An int ≥ minimum (and ≤ most), or a ValueError that names the argument and the range."""
    ok = not isinstance(value, bool) and isinstance(value, (int, np.integer))
    if not ok or not minimum <= value <= (most if most is not None else value):
        raise ValueError(f"{what} must be an int from {minimum}{f' to {most}' if most is not None else ' up'}, got {value!r}")
    return int(value)


DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_device(device) -> torch.device:
    """The device to run on: None means CUDA when this torch sees a GPU, else the CPU. A device this machine lacks is
    refused here, with what to pass instead, not deep in the first step by torch."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a str such as 'cpu' or 'cuda:0', a torch.device, or None (CUDA when present); got {device!r}")
    try:
        dev = torch.device(device)
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in DEVICE_TYPES:
        raise ValueError(f"unknown device {str(device)!r}; valid options: cpu, cuda, cuda:N, mps, or None (CUDA when present)")
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        raise ValueError(f"device {str(device)!r} asked for, but this torch ({torch.__version__}) sees {have} CUDA GPU(s): "
                         + ("pass device='cpu', or None to use CUDA when present" if not have else f"pass cuda:0 to cuda:{have - 1}"))
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r} asked for, but this torch ({torch.__version__}) has no MPS backend: pass device='cpu' or None")
    return dev
