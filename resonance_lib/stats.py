"""The statistics behind every comparison: Student-t intervals and the protocol's verdict rule."""

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


# ---------------------------------------------------------------------------------------------------------------
# The protocol's verdict rule, declared before the numbers (DESIGN.md, "The protocol").
#
# Differences are arm − baseline, paired by seed, in the claim's metric. A claim has a practical margin m
# (0.02 nats for LM loss unless the claim states its own) and a direction (is lower or higher better). With the
# improvement I = −Δ (lower is better) or Δ (higher is better) and its interval [I_lo, I_hi]:
#   better        I_lo > m          (the whole interval beyond the margin, in the improving direction)
#   worse         I_hi < −m
#   equivalent    −m ≤ I_lo and I_hi ≤ m   (two one-sided tests at the interval's level)
#   not supported none of these, and the run had power ≥ 0.8 to see the effect the source claims
#   inconclusive  none of these otherwise
# Multiplicity: a notebook's comparisons form one family; their intervals are simultaneous (Bonferroni, level
# 1 − α/k for k comparisons), and the Holm-adjusted p-values of "no difference" are reported beside them.

ALPHA = 0.05
LM_MARGIN = 0.02  # nats of validation cross-entropy: the default practical margin for language-model loss
POWER_NEEDED = 0.8
VERDICTS = ("better", "worse", "equivalent", "not supported", "inconclusive")


def decide(ci_low: float, ci_high: float, margin: float, lower_is_better: bool = True,
           power: float = float("nan")) -> str:
    """The verdict the rule above reads from the interval [ci_low, ci_high] of arm − baseline."""
    if pd.isna(ci_low) or pd.isna(ci_high):
        return "inconclusive"
    low, high = (-ci_high, -ci_low) if lower_is_better else (ci_low, ci_high)  # the improvement's interval
    if low > margin:
        return "better"
    if high < -margin:
        return "worse"
    if low >= -margin and high <= margin:
        return "equivalent"
    return "not supported" if not pd.isna(power) and power >= POWER_NEEDED else "inconclusive"


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: p_(i) ← max_{j ≤ i} min(1, (k − j + 1)·p_(j)) over the sorted p-values."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [float("nan")] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def paired_power(claimed_improvement: float, sd: float, n: int, margin: float, alpha: float = ALPHA) -> float:
    """Power of the one-sided paired t-test of "improvement > margin" at level ``alpha`` when the true
    improvement is ``claimed_improvement``: P(T' > t_{1−α, n−1}), T' noncentral t with n − 1 degrees of freedom
    and noncentrality (claimed − margin)·√n/sd. NaN when it cannot be computed (n < 2, sd = 0, no claim)."""
    if claimed_improvement is None or pd.isna(claimed_improvement) or n < 2 or not sd > 0:
        return float("nan")
    noncentrality = (claimed_improvement - margin) * n**0.5 / sd
    return float(stats.nct.sf(stats.t.ppf(1 - alpha, n - 1), n - 1, noncentrality))


def compare(differences: Sequence[float], margin: float, lower_is_better: bool = True, family_size: int = 1,
            claimed_improvement: float | None = None, confidence: float = 1 - ALPHA) -> dict:
    """One comparison of the protocol from its paired differences (arm − baseline): n, estimate, the
    simultaneous interval of a family of ``family_size``, the two-sided p-value of "no difference", the power
    to see the claimed improvement, and the verdict. Non-finite differences are refused (failed runs are
    reported apart, never averaged)."""
    values = pd.Series(differences, dtype=float)
    if not values.map(pd.notna).all() or values.abs().eq(float("inf")).any():
        raise ValueError(f"differences={list(values)} must all be finite: report failed seeds apart")
    n, estimate = len(values), float(values.mean())
    level = 1 - (1 - confidence) / family_size
    _, low, high = t_interval(values, level)
    sd = float(values.std(ddof=1)) if n > 1 else float("nan")
    if n > 1 and sd > 0:
        p_value = float(2 * stats.t.sf(abs(estimate) / (sd / n**0.5), n - 1))
    else:
        p_value = float("nan")
    power = paired_power(claimed_improvement, sd, n, margin, (1 - confidence) / family_size)
    return {"n_seeds": n, "estimate": estimate, "sd": sd, "ci_low": low, "ci_high": high, "p_value": p_value,
            "power": power, "verdict": decide(low, high, margin, lower_is_better, power)}


def is_bimodal(values: Sequence[float], solved: float, unsolved: float) -> bool:
    """True when some runs end at or beyond ``solved`` and the rest at or below ``unsolved`` (with some of each):
    a mean and a t-interval describe such outcomes badly, so they are counted instead."""
    values = [float(v) for v in values]
    high = [v >= solved for v in values]
    low = [v <= unsolved for v in values]
    return all(h or lo for h, lo in zip(high, low, strict=True)) and any(high) and any(low)


def compare_successes(arm: Sequence[bool], baseline: Sequence[bool], alpha: float = ALPHA) -> dict:
    """Success counts of two arms paired by seed, and the exact McNemar test: among the seeds where exactly
    one arm succeeded (b: only the arm, c: only the baseline), b ~ Binomial(b + c, ½) under "no difference";
    p is the two-sided binomial p-value. Verdict: better / worse when p < ``alpha`` (in the direction of b − c),
    else inconclusive (an exact test of counts has no margin to be equivalent within)."""
    if len(arm) != len(baseline) or not arm:
        raise ValueError(f"arm ({len(arm)}) and baseline ({len(baseline)}) need the same, non-zero number of seeds")
    b = sum(bool(a) and not bool(r) for a, r in zip(arm, baseline, strict=True))
    c = sum(bool(r) and not bool(a) for a, r in zip(arm, baseline, strict=True))
    p_value = float(stats.binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0
    verdict = ("better" if b > c else "worse") if p_value < alpha else "inconclusive"
    return {"n_seeds": len(arm), "arm_successes": int(sum(map(bool, arm))),
            "baseline_successes": int(sum(map(bool, baseline))), "only_arm": b, "only_baseline": c,
            "p_value": p_value, "verdict": verdict}
