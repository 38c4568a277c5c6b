"""Argument checks shared across mtst, so every refusal names the argument, what was given and what to pass."""

from __future__ import annotations

import numpy as np


def check_choice(value, options: tuple[str, ...], what: str) -> str:
    """The value, if it is one of options; else a ValueError that lists them."""
    if value not in options:
        raise ValueError(f"unknown {what} {value!r}; valid options: {', '.join(options)}")
    return value


def check_count(value, what: str, most: int | None = None) -> int:
    """An int ≥ 1 (and ≤ most), or a ValueError that names the argument and the range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= (most or value):
        raise ValueError(f"{what} must be an int from 1{f' to {most}' if most else ' up'}, got {value!r}")
    return int(value)
