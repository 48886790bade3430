"""The one place config values are checked: each check names the field, the value and what is allowed.

Every config dataclass (model, trainer, sparsity, components) validates its fields with these, so a bad value
fails where it is set, never later inside a forward pass or an optimizer, and nothing is silently clamped.
NaN and infinities are refused wherever a number is expected; ``True`` is not an integer here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def check_int(name: str, value, low: int = 1, high: int | None = None) -> int:
    """An ``int`` (not a bool) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        if low == 1 and high is None:
            raise ValueError(f"{name}={value!r} must be a positive integer")
        span = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name}={value!r} must be an integer {span}")
    return value


def check_float(name: str, value, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number in the interval [low, high], ends excluded where ``*_open``."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    inside = number and math.isfinite(value) and not (
        (low is not None and (value < low or (low_open and value == low)))
        or (high is not None and (value > high or (high_open and value == high))))
    if not inside:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        span = f"{left}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}{right}"
        raise ValueError(f"{name}={value!r} must lie in {span} (a finite number)")
    return float(value)


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}={value!r} must be True or False")
    return value


def check_choice(name: str, value, allowed: Iterable) -> object:
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{name}={value!r}; allowed: {allowed}")
    return value
