"""The "What we found" section that ends every notebook, written from its measured numbers, never typed.

``what_we_found(rows, stamp, facts=..., caveats=...)`` takes the rows ``claims.record_claims`` returned (one
per measured comparison, with its interval, Holm-adjusted p-value, power and verdict) and renders Markdown:

1. one line per claim: the source's words and number, what we measured (estimate and simultaneous 95%
   interval, seeds, equal steps or equal compute), the verdict and what it says of the claim;
2. other measured facts the notebook passes in (strings it formats from its own results);
3. the caveats: seeds below the protocol's six, inconclusive rows and the seeds that would have decided them
   (``seeds_needed``), plus the run length and scale the notebook passes in;
4. what would change each conclusion.

Nothing in the text is a number the caller did not compute: every figure comes from ``rows`` or from the
strings the notebook formats from its results.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from scipy import stats

from .plots import Stamp
from .stats import POWER_NEEDED, paired_power

MIN_SEEDS = 6  # the protocol's minimum of paired evaluation seeds for a claim
# Profiles whose numbers are a look, not the protocol's verdicts (see profiles.py): every "What we found" of
# such a run says so first.
EXPLORATORY = {
    "smoke": "the `smoke` profile only proves that every cell runs: tiny models and a few steps; its numbers "
             "mean nothing",
    "quick": "the `quick` profile is exploratory: short runs, 3 seeds and one learning rate for every arm, so "
             "that all five notebooks fit in half an hour on a laptop; the verdicts that count come from the "
             "`full` profile",
}
MAX_SEEDS = 10_000


def seeds_needed(sd: float, margin: float, claimed_improvement: float | None = None) -> int | None:
    """Paired seeds a re-run would need, at this spread ``sd`` of the differences: with a claimed effect, the
    fewest for power ≥ 0.8 to show it beyond the margin; without one, the fewest for a 95% interval narrower
    than the margin on each side (t_{0.975, n−1}·sd/√n < margin, so that it can fall inside or outside
    ±margin). None when it cannot be computed, when the claimed effect lies inside the margin, or beyond
    10,000 seeds."""
    if pd.isna(sd) or not sd > 0:
        return None
    claimed = claimed_improvement is not None and not pd.isna(claimed_improvement)
    if claimed and claimed_improvement <= margin:
        return None  # no run can call an effect inside the margin "better"
    for n in range(3, MAX_SEEDS + 1):
        if claimed:
            if paired_power(claimed_improvement, sd, n, margin) >= POWER_NEEDED:
                return n
        elif stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) < margin:
            return n
    return None


def _fmt(x: float, digits: int = 4) -> str:
    return "n/a" if pd.isna(x) else f"{x:+.{digits}f}"


def claim_lines(rows: pd.DataFrame) -> list[str]:
    """One Markdown bullet per measured claim."""
    lines = []
    for r in rows.to_dict("records"):
        said = f" ({r['number']})" if isinstance(r.get("number"), str) and r["number"] else ""
        label = f", {r['label']}" if r.get("label") else ""
        failed = f"; {int(r['n_failed'])} seed(s) failed and are left out" if r.get("n_failed") else ""
        power = "" if pd.isna(r["power"]) else f", power {r['power']:.2f} for the claimed effect"
        lines.append(
            f"- **{r['words']}** — {r['source']}{said}. Measured{label} at {r['comparison'].replace('_', ' ')}: "
            f"Δ {r['metric']} (arm − reference) = {_fmt(r['estimate'])} "
            f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] over {int(r['n_seeds'])} paired seeds{failed} "
            f"(margin ±{r['margin']:g}, Holm p = {r['p_holm']:.3g}{power}) → **{r['verdict']}**: "
            f"the claim {_supports_phrase(r['supports'])}.")
    return lines


def _supports_phrase(word: str) -> str:
    return {"holds": "holds here", "contradicted": "is contradicted here",
            "inconclusive": "can be neither confirmed nor refuted by this run",
            "not supported": "is not supported (the run had the power to see it)"}.get(word, word)


def family_words(rows: pd.DataFrame) -> str:
    """The family the rows' intervals are simultaneous over: "the notebook's 4 comparisons", or, when the claims
    were corrected within larger families (``claims.evaluate_family``), "each family of comparisons (char level:
    22)"."""
    if "family_size" not in rows or rows["family_size"].isna().all() or (
            rows["family"].fillna("").eq("").all() and (rows["family_size"] == len(rows)).all()):
        return f"the notebook's {len(rows)} comparison(s)"
    sizes = rows.groupby(rows["family"].fillna(""), sort=False)["family_size"].first()
    return "each family of comparisons (" + ", ".join(
        f"{name or 'the notebook'}: {int(size)}" for name, size in sizes.items()) + ")"


def caveat_lines(rows: pd.DataFrame) -> list[str]:
    """Caveats computed from the rows: too few seeds, undecided rows and what would decide them."""
    lines = []
    few = rows[rows["n_seeds"] < MIN_SEEDS]
    if len(few):
        lines.append(f"- **Exploratory**: {len(few)} of {len(rows)} comparison(s) rest on fewer than the protocol's "
                     f"{MIN_SEEDS} paired seeds ({', '.join(sorted(set(map(str, few['n_seeds'].astype(int)))))}).")
    for r in rows.to_dict("records"):
        if r["verdict"] not in ("inconclusive", "not supported"):
            continue
        if r["verdict"] == "not supported":  # the claimed effect is settled; what is open is the arm against ±margin
            n = seeds_needed(r["sd"], r["margin"])
            what = ("the run had the power to see the claimed effect and did not; whether the arm is within "
                    f"±{r['margin']:g} of its reference would take "
                    + (f"about {n} paired seeds at this spread" if n is not None else "more than seeds alone"))
        else:
            n = seeds_needed(r["sd"], r["margin"], r.get("claimed_improvement"))
            what = (f"about {n} paired seeds would settle it at this spread" if n is not None
                    else "more seeds alone would not settle it at this spread")
        lines.append(f"- `{r['claim_id']}`{' (' + r['label'] + ')' if r.get('label') else ''} is "
                     f"{r['verdict']}: {what}.")
    return lines


def change_lines(rows: pd.DataFrame) -> list[str]:
    """What would change each decided conclusion, from where its interval sits against the margin."""
    lines = []
    for r in rows.to_dict("records"):
        if r["verdict"] in ("better", "worse"):
            distance = min(abs(r["ci_low"]), abs(r["ci_high"])) - r["margin"]
            lines.append(f"- `{r['claim_id']}` ({r['label']}): {r['verdict']} with the interval's near end "
                         f"{distance:.4f} beyond the margin; a longer run, a larger model or the comparison at "
                         f"equal compute could move it.")
        elif r["verdict"] == "equivalent":
            lines.append(f"- `{r['claim_id']}` ({r['label']}): equivalent within ±{r['margin']:g}; an effect that "
                         f"appears only later in training or at larger scale would not be seen here.")
    return lines


def what_we_found(rows: pd.DataFrame, stamp: Stamp, facts: Sequence[str] = (), caveats: Sequence[str] = (),
                  display: bool = True) -> str:
    """The notebook's closing section as Markdown (shown in a notebook when ``display``); returns the text.
    ``facts`` and ``caveats`` are lines the notebook formats from its own results."""
    parts = ["## What we found", "",
             f"*Written by the notebook from this run's numbers ({stamp}); intervals are simultaneous 95% "
             f"intervals over {family_words(rows)}, p-values Holm-adjusted within it.*", ""]
    parts += claim_lines(rows) or ["- No claim was measured in this run."]
    if facts:
        parts += ["", "**Also measured**", ""] + [f"- {f}" for f in facts]
    profile_caveat = [f"- **Profile**: {EXPLORATORY[stamp.profile]}."] if stamp.profile in EXPLORATORY else []
    caveat_text = profile_caveat + caveat_lines(rows) + [f"- {c}" for c in caveats]
    if caveat_text:
        parts += ["", "**Caveats**", ""] + caveat_text
    change = change_lines(rows)
    if change:
        parts += ["", "**What would change these conclusions**", ""] + change
    text = "\n".join(parts)
    from .session import in_kernel

    if display and in_kernel():
        from IPython.display import Markdown
        from IPython.display import display as show

        show(Markdown(text))
    elif display:
        print(text)
    return text
