"""The closing "What we found" section is written from the measured rows, never typed."""

import pandas as pd
import pytest

from resonance_lib.claims import Measurement, evaluate_family, measure
from resonance_lib.experiments import paired_differences
from resonance_lib.findings import seeds_needed, what_we_found
from resonance_lib.plots import Stamp
from resonance_lib.stats import paired_power

STAMP = Stamp("smoke", "cpu", (0, 1, 2), "abc1234")


def runs_table(values: dict[str, list[float]], status: dict | None = None) -> pd.DataFrame:
    rows = []
    for variant, finals in values.items():
        for seed, final in enumerate(finals):
            rows += [{"variant": variant, "seed": seed, "step": 0, "val_loss": 4.0, "status": "ok"},
                     {"variant": variant, "seed": seed, "step": 10, "val_loss": final, "test_loss": final,
                      "status": (status or {}).get((variant, seed), "ok")}]
    return pd.DataFrame(rows)


def test_paired_differences_take_the_last_evaluation_and_leave_out_failed_seeds():
    runs = runs_table({"baseline": [2.0, 2.1, 2.2], "arm": [1.9, float("nan"), 2.0]})
    differences, n_failed = paired_differences(runs, "arm", metric="val_loss")
    assert differences == pytest.approx([-0.1, -0.2]) and n_failed == 1
    m = measure("ddl_scalar_lm", runs, "arm", label="char LM")
    assert m.differences == differences and m.n_failed == 1 and m.label == "char LM"
    with pytest.raises(ValueError, match="variant 'nope' is not in the runs"):
        paired_differences(runs, "nope")
    with pytest.raises(ValueError, match="claim_id='nope'"):
        measure("nope", runs, "arm")


def test_seeds_needed_reaches_the_power_it_promises_and_refuses_effects_inside_the_margin():
    n = seeds_needed(0.02, 0.005, claimed_improvement=0.0244)
    assert paired_power(0.0244, 0.02, n, 0.005) >= 0.8 > paired_power(0.0244, 0.02, n - 1, 0.005)
    assert seeds_needed(0.02, 0.005, claimed_improvement=0.004) is None  # inside the margin: never "better"
    assert seeds_needed(0.001, 0.02) == 3 and seeds_needed(float("nan"), 0.02) is None
    assert seeds_needed(0.05, 0.02) > seeds_needed(0.03, 0.02)


def test_what_we_found_states_the_rows_numbers_and_verdicts_and_flags_too_few_seeds():
    rows = evaluate_family([
        Measurement("phase_beats_standard", "equal_steps", [0.20, 0.21, 0.19], label="random phases"),
        Measurement("phonetic_beats_random", "equal_steps", [0.01, -0.03, 0.02], label="phonetic"),
    ])
    text = what_we_found(rows, STAMP, facts=["measured fact 1.23"], caveats=["200 steps"], display=False)
    worse, unclear = rows.iloc[0], rows.iloc[1]
    assert f"{worse['estimate']:+.4f} [{worse['ci_low']:+.4f}, {worse['ci_high']:+.4f}]" in text
    assert "→ **worse**: the claim is contradicted here" in text and "→ **inconclusive**" in text
    assert f"Holm p = {unclear['p_holm']:.3g}" in text and "over 3 paired seeds" in text
    assert "**Exploratory**: 2 of 2 comparison(s) rest on fewer than the protocol's 6" in text
    assert "`phonetic_beats_random` (phonetic) is inconclusive" in text
    assert "- measured fact 1.23" in text and "- 200 steps" in text and str(STAMP) in text
    assert "simultaneous 95% intervals over the notebook's 2 comparison(s)" in text
    # claims corrected within a larger family say which family, and its size
    wider = evaluate_family([Measurement("everything_beats_baseline", "equal_steps", [0.2, 0.21, 0.19],
                                         family="char level")], {"char level": [0.5] * 21})
    assert "intervals over each family of comparisons (char level: 22)" in what_we_found(wider, STAMP, display=False)
    six = evaluate_family([Measurement("phase_beats_standard", "equal_steps", [0.2, 0.21, 0.19, 0.2, 0.22, 0.18])])
    assert "Exploratory" not in what_we_found(six, Stamp("full", "cpu", tuple(range(6)), "abc1234"), display=False)


def test_an_exploratory_profile_says_so_and_the_full_profile_does_not():
    six = evaluate_family([Measurement("phase_beats_standard", "equal_steps", [0.2, 0.21, 0.19, 0.2, 0.22, 0.18])])
    quick = what_we_found(six, Stamp("quick", "cpu", tuple(range(6)), "abc"), display=False)
    assert "- **Profile**: the `quick` profile is exploratory" in quick
    assert "**Profile**" not in what_we_found(six, Stamp("full", "cpu", tuple(range(6)), "abc"), display=False)


def test_a_not_supported_row_is_not_told_that_seeds_would_settle_the_claim():
    from resonance_lib.findings import caveat_lines

    rows = pd.DataFrame([
        {"claim_id": "big_claim", "label": "", "verdict": "not supported", "n_seeds": 6, "sd": 0.03, "margin": 0.02,
         "claimed_improvement": 0.4},
        {"claim_id": "open_claim", "label": "", "verdict": "inconclusive", "n_seeds": 6, "sd": 0.03, "margin": 0.02,
         "claimed_improvement": 0.1}])
    settled, open_ = caveat_lines(rows)
    assert "had the power to see the claimed effect and did not" in settled and "would settle it" not in settled
    assert f"about {seeds_needed(0.03, 0.02)} paired seeds" in settled  # the interval against ±margin
    assert f"about {seeds_needed(0.03, 0.02, 0.1)} paired seeds would settle it" in open_
