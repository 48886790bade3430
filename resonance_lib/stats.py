"""The statistics behind every comparison: Student-t intervals and the verdict read from an interval."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from scipy import stats


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two-sided Student-t interval mean ± t_{n−1}·s/√n (NaN bounds when n < 2)."""
    s = pd.Series(values, dtype=float)
    mean, n = s.mean(), len(s)
    if n < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * s.std(ddof=1) / n**0.5
    return mean, mean - half, mean + half


def verdict(delta_low: float, delta_high: float, higher_is_better: bool = False) -> str:
    """'better' / 'worse' when the interval of the difference to the baseline excludes 0, else
    'no significant difference'; 'n/a (one seed)' without an interval."""
    if pd.isna(delta_low) or pd.isna(delta_high):
        return "n/a (one seed)"
    if delta_low > 0 or delta_high < 0:
        return "better" if (delta_low > 0) == higher_is_better else "worse"
    return "no significant difference"
