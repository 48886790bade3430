"""The sources' claims as data, and the one function that records a measured claim.

``CLAIMS`` holds every claim the notebooks test: where it comes from, the source's own words and number, the
metric we measure it in, which direction of that metric is an improvement, the practical margin declared
before any run, what the source asserts (an improvement, or no loss), and the improvement it implies in our
metric when the source quantifies it (used for power). A notebook measures paired differences
(arm − baseline, one per seed) and hands them to ``record_claims``, which applies the protocol of
``stats.compare`` to the notebook's family of comparisons at once (simultaneous intervals, Holm-adjusted
p-values) and writes the rows into ``figures/claims_<profile>.csv``. The README's claim table is rendered from
that file alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from .plots import Stamp
from .stats import LM_MARGIN, compare, holm

COMPARISONS = ("equal_steps", "equal_compute")
ASSERTS = ("better", "not worse")


@dataclass(frozen=True)
class Claim:
    id: str
    source: str  # the document that makes the claim
    words: str  # the source's words
    number: str  # the source's number, as stated ("" when it gives none)
    metric: str  # what we measure: a column of the runs, e.g. "test_loss" (whole held-out split, final model)
    lower_is_better: bool
    margin: float  # the practical threshold, in the metric's units, declared before the numbers
    notebook: str
    asserts: str = "better"  # "better": an improvement beyond the margin; "not worse": no loss beyond it
    claimed_improvement: float | None = None  # the source's effect in our metric's units, improvement positive

    def __post_init__(self):
        if self.asserts not in ASSERTS:
            raise ValueError(f"asserts={self.asserts!r}; allowed: {list(ASSERTS)}")
        if not self.margin > 0:
            raise ValueError(f"margin={self.margin!r} must be > 0")


def _ln_ratio(new: float, old: float) -> float:
    """A perplexity ratio as a difference of cross-entropy in nats: ln(new/old)."""
    return math.log(new / old)


CLAIMS: dict[str, Claim] = {c.id: c for c in [
    Claim("delta_forgetting", "OUROBOROS README", "the delta update teaches networks to forget", "",
          "val_acc", False, 0.02, "01"),
    Claim("ddl_scalar_lm", "Deep Delta Learning (arXiv 2601.00417)",
          "the scalar (d_v = 1) delta residual lowers validation loss",
          "−0.0061 (124M) / −0.0014 (353M) nats, FineWeb-Edu, one run each", "test_loss", True, 0.005, "01",
          claimed_improvement=0.0061),
    Claim("ddl_dv4_lm", "Deep Delta Learning (arXiv 2601.00417)",
          "the expanded-state (d_v = 4) delta residual lowers validation loss",
          "−0.0244 (124M) / −0.0295 (353M) nats, FineWeb-Edu, one run each", "test_loss", True, 0.005, "01",
          claimed_improvement=0.0244),
    Claim("prune_revive_minimal_loss", "ResonanceTransformer READMEs",
          "stable ~70–75% sparsity with minimal performance degradation", "~73% sparsity", "test_loss", True,
          LM_MARGIN, "02", asserts="not worse"),
    Claim("advanced_modes_beat_base", "ResonanceTransformer READMEs",
          "all advanced modes (wave, twist, etch memory, curvature) lower the toy loss of base resonance",
          "0.047 vs 0.082 (toy sequence reconstruction)", "val_loss", True, 0.005, "02",
          claimed_improvement=0.082 - 0.047),  # margin: one seventh of the claimed gap
    Claim("mnist_sparse_within", "ResonanceTransformer READMEs",
          "a small transformer on MNIST keeps its accuracy at ~73% sparsity", "96.5% sparse vs 97.8% dense",
          "final_val_acc", False, 0.013, "02", asserts="not worse"),
    Claim("phase_beats_standard", "The Resonance Transformer README",
          "phase-coded attention is \"60% smarter\" than a standard transformer",
          "validation perplexity 63.88 vs 148.90 (126M, one run each)", "test_loss", True, LM_MARGIN, "03",
          claimed_improvement=-_ln_ratio(63.88, 148.90)),
    Claim("phonetic_beats_random", "The Resonance Transformer README",
          "phases initialised from CMU rhyme groups beat random phases", "perplexity 63.17 vs 63.88",
          "test_loss", True, 0.005, "03", claimed_improvement=-_ln_ratio(63.17, 63.88)),
    Claim("smaller_phonetic_matches_standard", "The Resonance Transformer README",
          "a smaller phonetic model matches a larger standard one", "", "test_loss", True, LM_MARGIN, "03",
          asserts="not worse"),
    Claim("prime_model_beats_baseline", "Semantic Resonance LM implementation plan",
          "the prime-subspace model (encoder, halting attention, memory, pre-manifest head, prime mask) beats a "
          "same-size baseline", "", "test_loss", True, LM_MARGIN, "04"),
    Claim("halting_saves_compute", "Semantic Resonance LM implementation plan",
          "entropy-based halting stops attention once it is confident, saving compute without losing quality", "",
          "test_loss", True, LM_MARGIN, "04", asserts="not worse"),
    Claim("everything_beats_baseline", "all of the sources",
          "every resonance component together beats a matched baseline", "", "test_loss", True, LM_MARGIN, "05"),
]}


@dataclass(frozen=True)
class Measurement:
    """One comparison of a claim: the paired differences arm − baseline, one per seed (failed seeds left out
    and counted in ``n_failed``), at equal steps or at equal compute."""

    claim_id: str
    comparison: str
    differences: Sequence[float]
    n_failed: int = 0
    label: str = ""  # what was compared, e.g. "char level" (several measurements may share a claim)
    # what the comparison rests on, in numbers computed from the runs: whether the task could tell the arms apart
    # (e.g. the reference's accuracy against chance), what the arm cost; "" when the label says enough
    context: str = ""
    # the family it is corrected within: measurements with the same name form one (``evaluate_family``);
    # "" for every measurement of a notebook that is one family
    family: str = ""

    def __post_init__(self):
        if self.claim_id not in CLAIMS:
            raise ValueError(f"claim_id={self.claim_id!r} is not in the registry; known: {sorted(CLAIMS)}")
        if self.comparison not in COMPARISONS:
            raise ValueError(f"comparison={self.comparison!r}; allowed: {list(COMPARISONS)}")


def measure(claim_id: str, runs: pd.DataFrame, arm: str, baseline: str = "baseline",
            comparison: str = "equal_steps", label: str = "", context: str = "", family: str = "") -> Measurement:
    """The claim's measurement from ``run_grid``'s table: the paired differences arm − baseline of the claim's
    metric at each run's last evaluation (``experiments.paired_differences``); ``label``, ``context`` and
    ``family`` as in ``Measurement``."""
    from .experiments import paired_differences

    if claim_id not in CLAIMS:
        raise ValueError(f"claim_id={claim_id!r} is not in the registry; known: {sorted(CLAIMS)}")
    differences, n_failed = paired_differences(runs, arm, baseline, CLAIMS[claim_id].metric)
    return Measurement(claim_id, comparison, differences, n_failed=n_failed, label=label or arm, context=context,
                       family=family)


def supports(claim: Claim, verdict: str) -> str:
    """What a verdict says of the claim: "holds", "contradicted", or the verdict itself when it cannot tell."""
    if claim.asserts == "better":
        return {"better": "holds", "worse": "contradicted", "equivalent": "contradicted"}.get(verdict, verdict)
    return {"better": "holds", "equivalent": "holds", "worse": "contradicted"}.get(verdict, verdict)


def evaluate_family(measurements: Sequence[Measurement],
                    other_p_values: Mapping[str, Sequence[float]] | None = None) -> pd.DataFrame:
    """Every measurement of one notebook, corrected within its family: simultaneous intervals (Bonferroni over the
    family's size) and Holm-adjusted p-values. Measurements sharing ``family`` form one family (by default all of
    them). ``other_p_values[family]``: the p-values of that family's comparisons that test no registered claim
    (notebook 05's ablation arms beside its ``everything`` arm); they count in the family's size and in Holm's
    correction, so a claim row gets the interval and adjusted p-value the notebook's own table gives it."""
    other_p_values = dict(other_p_values or {})
    families = {m.family for m in measurements}
    unknown = sorted(set(other_p_values) - families)
    if unknown:
        raise ValueError(f"other_p_values has families {unknown} that no measurement belongs to; "
                         f"the measurements' families: {sorted(families)}")
    for family, values in other_p_values.items():
        bad = [p for p in values if not (math.isnan(p) or 0.0 <= p <= 1.0)]
        if bad:
            raise ValueError(f"other_p_values[{family!r}] = {bad}: p-values must lie in [0, 1] (NaN: not computed)")
    sizes = {family: sum(m.family == family for m in measurements) + len(other_p_values.get(family, ()))
             for family in families}
    rows = []
    for m in measurements:
        claim = CLAIMS[m.claim_id]
        result = compare(m.differences, claim.margin, claim.lower_is_better, family_size=sizes[m.family],
                         claimed_improvement=claim.claimed_improvement)
        record = {k: v for k, v in asdict(claim).items() if k != "id"}
        rows.append({"claim_id": claim.id, "label": m.label, "context": m.context, "comparison": m.comparison,
                     **record, **result, "family": m.family, "family_size": sizes[m.family],
                     "n_failed": m.n_failed})
    table = pd.DataFrame(rows)
    if len(table):
        table.insert(table.columns.get_loc("p_value") + 1, "p_holm", float("nan"))
        for family in families:
            mine = table.index[table["family"] == family]
            p = table.loc[mine, "p_value"].fillna(1.0).tolist()
            others = [1.0 if math.isnan(v) else v for v in other_p_values.get(family, ())]
            table.loc[mine, "p_holm"] = holm(p + others)[:len(p)]
        table["supports"] = [supports(CLAIMS[c], v) for c, v in zip(table["claim_id"], table["verdict"], strict=True)]
    return table


def record_claims(measurements: Sequence[Measurement], notebook: str, stamp: Stamp, fig_dir: str | Path,
                  other_p_values: Mapping[str, Sequence[float]] | None = None) -> pd.DataFrame:
    """Evaluate one notebook's families (``evaluate_family``, with ``other_p_values``) and write them into
    ``<fig_dir>/claims_<profile>.csv``, replacing that notebook's earlier rows and keeping every other notebook's.
    Returns the notebook's rows."""
    wrong = [m.claim_id for m in measurements if CLAIMS[m.claim_id].notebook != notebook]
    if wrong:
        raise ValueError(f"claims {wrong} belong to other notebooks than notebook={notebook!r}")
    rows = evaluate_family(measurements, other_p_values).assign(profile=stamp.profile, device=stamp.device,
                                                seeds=" ".join(map(str, stamp.seeds)), commit=stamp.commit)
    path = Path(fig_dir) / f"claims_{stamp.profile}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = pd.read_csv(path, dtype={"notebook": str, "commit": str}) if path.exists() else pd.DataFrame()
    if len(kept):
        kept = kept[kept["notebook"] != notebook]
    pd.concat([kept, rows], ignore_index=True).sort_values(["notebook", "claim_id"], kind="stable").to_csv(
        path, index=False)
    return rows
