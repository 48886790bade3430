import math

import pytest
from scipy import stats as sps

from resonance_lib.stats import compare, decide, holm, paired_power


@pytest.mark.parametrize("low, high, lower_is_better, power, expected", [
    (-0.10, -0.05, True, float("nan"), "better"),       # loss down by more than the margin
    (0.05, 0.10, True, float("nan"), "worse"),
    (-0.01, 0.015, True, float("nan"), "equivalent"),   # inside ±0.02
    (-0.03, 0.01, True, float("nan"), "inconclusive"),  # crosses −margin, power unknown
    (-0.03, 0.01, True, 0.9, "not supported"),          # crosses −margin, but the claimed effect would have shown
    (-0.03, 0.01, True, 0.5, "inconclusive"),
    (0.05, 0.10, False, float("nan"), "better"),        # an accuracy went up
    (-0.10, -0.05, False, float("nan"), "worse"),
    (-0.021, -0.019, True, float("nan"), "inconclusive"),  # not wholly beyond −0.02, not wholly inside
    (float("nan"), float("nan"), True, float("nan"), "inconclusive"),
])
def test_decide_reads_the_interval_against_the_margin(low, high, lower_is_better, power, expected):
    assert decide(low, high, 0.02, lower_is_better, power) == expected


def test_holm_matches_the_textbook_example():
    # p = (0.01, 0.04, 0.03, 0.005), k = 4: sorted 0.005·4, 0.01·3, 0.03·2, 0.04·1 → 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5]) == [0.5] and holm([0.9, 0.8]) == [1.0, 1.0]


def test_power_of_the_paired_test_matches_a_simulation_free_check():
    # a huge claimed effect is seen for sure, one at the margin never beyond chance (α)
    assert paired_power(1.0, 0.01, 6, 0.02) == pytest.approx(1.0)
    assert paired_power(0.02, 0.05, 6, 0.02) == pytest.approx(0.05)
    assert 0.05 < paired_power(0.06, 0.05, 6, 0.02) < 0.8 < paired_power(0.06, 0.05, 30, 0.02)
    assert math.isnan(paired_power(None, 0.05, 6, 0.02)) and math.isnan(paired_power(0.1, 0.05, 1, 0.02))


def test_compare_intervals_widen_with_the_family_and_refuse_failed_seeds():
    diffs = [-0.05, -0.04, -0.06, -0.05, -0.045, -0.055]
    one, six = compare(diffs, 0.02), compare(diffs, 0.02, family_size=6)
    assert one["n_seeds"] == 6 and one["estimate"] == pytest.approx(-0.05)
    assert six["ci_low"] < one["ci_low"] < one["ci_high"] < six["ci_high"]
    sd = sps.tstd(diffs)
    assert one["p_value"] == pytest.approx(2 * sps.t.sf(0.05 / (sd / 6**0.5), 5))
    assert one["verdict"] == "better"
    with pytest.raises(ValueError, match="must all be finite"):
        compare([-0.05, float("nan")], 0.02)


def test_bimodal_outcomes_are_counted_with_an_exact_paired_test():
    from resonance_lib.stats import compare_successes, is_bimodal

    assert is_bimodal([0.99, 0.13, 1.0, 0.12], solved=0.9, unsolved=0.2)
    assert not is_bimodal([0.99, 0.5, 1.0], solved=0.9, unsolved=0.2)  # one run in between
    assert not is_bimodal([0.99, 0.95], solved=0.9, unsolved=0.2)  # all solved: not bimodal
    six = compare_successes([True] * 6, [False] * 6)
    assert (six["only_arm"], six["only_baseline"]) == (6, 0)
    assert six["p_value"] == pytest.approx(2 * 0.5**6) and six["verdict"] == "better"  # 0.03125
    five = compare_successes([True] * 5, [False] * 5)
    assert five["p_value"] == pytest.approx(0.0625) and five["verdict"] == "inconclusive"
    same = compare_successes([True, False, True], [True, False, True])
    assert same["p_value"] == 1.0 and same["verdict"] == "inconclusive"
    assert compare_successes([False] * 6, [True] * 6)["verdict"] == "worse"
    with pytest.raises(ValueError, match="same, non-zero number of seeds"):
        compare_successes([True], [True, False])
