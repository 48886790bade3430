import math

import pandas as pd
import pytest

from resonance_lib.claims import CLAIMS, Measurement, evaluate_family, record_claims, supports
from resonance_lib.plots import Stamp
from resonance_lib.stats import decide

STAMP = Stamp("smoke", "cpu (2 threads)", (0, 1, 2, 3, 4, 5), "abc1234")
COLUMNS = ["claim_id", "source", "notebook", "metric", "margin", "comparison", "n_seeds", "estimate", "ci_low",
           "ci_high", "p_value", "p_holm", "power", "verdict", "profile", "device", "commit"]


def test_every_claim_is_complete():
    for claim in CLAIMS.values():
        assert claim.source and claim.words and claim.metric and claim.notebook in {"01", "02", "03", "04", "05"}
    # the source's headline, in our units: ln(63.88 / 148.90) nats
    assert CLAIMS["phase_beats_standard"].claimed_improvement == pytest.approx(-math.log(63.88 / 148.90))


def test_record_claims_writes_the_protocol_columns_and_replaces_a_notebooks_rows(tmp_path):
    big = Measurement("phase_beats_standard", "equal_steps", [-0.05, -0.06, -0.04, -0.05, -0.055, -0.045])
    null = Measurement("phonetic_beats_random", "equal_steps", [0.001, -0.001, 0.0005, -0.0008, 0.0012, -0.0004])
    rows = record_claims([big, null], "03", STAMP, tmp_path)
    table = pd.read_csv(tmp_path / "claims_smoke.csv", dtype={"notebook": str, "commit": str})
    assert set(COLUMNS) <= set(table.columns) and len(table) == 2
    assert list(rows["verdict"]) == ["better", "equivalent"]
    assert list(rows["supports"]) == ["holds", "contradicted"]
    assert (rows["p_holm"] >= rows["p_value"]).all()
    record_claims([big], "03", STAMP, tmp_path)  # a re-run replaces notebook 03's rows ...
    record_claims([Measurement("everything_beats_baseline", "equal_compute", [0.1, 0.12, 0.09])], "05", STAMP,
                  tmp_path)  # ... and keeps the others
    table = pd.read_csv(tmp_path / "claims_smoke.csv", dtype={"notebook": str, "commit": str})
    assert sorted(table["claim_id"]) == ["everything_beats_baseline", "phase_beats_standard"]


def test_a_measurement_carries_its_context_into_the_claims_file(tmp_path):
    from resonance_lib.claims import measure

    runs = pd.DataFrame([{"variant": v, "seed": s, "step": 10, "val_acc": acc + 0.01 * s}
                         for s in range(6) for v, acc in (("baseline", 0.4), ("delta_dv4", 0.6))])
    context = "reference accuracy 0.43 (chance 0.125)"
    m = measure("delta_forgetting", runs, "delta_dv4", label="forgetting task", context=context)
    assert m.context == context and m.label == "forgetting task"
    record_claims([m], "01", STAMP, tmp_path)
    table = pd.read_csv(tmp_path / "claims_smoke.csv", dtype={"notebook": str, "commit": str})
    assert table["context"].tolist() == [context]


def test_each_recorded_verdict_follows_from_its_rows_interval_margin_and_power(tmp_path):
    measurements = [Measurement(cid, "equal_steps", diffs) for cid, diffs in [
        ("ddl_scalar_lm", [-0.01, -0.012, -0.009, -0.011, -0.010, -0.008]),
        ("ddl_dv4_lm", [0.03, 0.02, 0.025, 0.04, 0.03, 0.035]),
        ("delta_forgetting", [0.1, -0.2, 0.3, 0.0, 0.05, -0.1])]]
    record_claims(measurements, "01", STAMP, tmp_path)
    table = pd.read_csv(tmp_path / "claims_smoke.csv", dtype={"notebook": str, "commit": str})
    for row in table.itertuples():
        assert row.verdict == decide(row.ci_low, row.ci_high, row.margin, row.lower_is_better, row.power)


def test_bad_measurements_are_refused(tmp_path):
    with pytest.raises(ValueError, match="claim_id='nope'"):
        Measurement("nope", "equal_steps", [0.1])
    with pytest.raises(ValueError, match="comparison='equal_time'"):
        Measurement("ddl_dv4_lm", "equal_time", [0.1])
    with pytest.raises(ValueError, match="belong to other notebooks"):
        record_claims([Measurement("ddl_dv4_lm", "equal_steps", [0.1, 0.2])], "03", STAMP, tmp_path)


def test_supports_reads_the_verdict_against_what_the_claim_asserts():
    better, not_worse = CLAIMS["phase_beats_standard"], CLAIMS["prune_revive_minimal_loss"]
    assert supports(better, "equivalent") == "contradicted" and supports(not_worse, "equivalent") == "holds"
    assert supports(better, "inconclusive") == "inconclusive" and supports(not_worse, "worse") == "contradicted"
    assert evaluate_family([]).empty


def test_a_claim_is_corrected_within_its_whole_family_including_comparisons_that_test_no_claim(tmp_path):
    from resonance_lib.stats import compare, holm

    diffs = [0.05, 0.08, 0.03, 0.07, 0.06, 0.04]  # worse than the baseline by ~0.055
    others = [0.001, 0.2, 0.04, float("nan")]  # the family's other comparisons (NaN: not computed, counts as 1)
    alone = evaluate_family([Measurement("everything_beats_baseline", "equal_steps", diffs, family="char level")])
    rows = evaluate_family([Measurement("everything_beats_baseline", "equal_steps", diffs, family="char level")],
                           {"char level": others})
    five = compare(diffs, 0.02, family_size=5)
    assert rows["family_size"].tolist() == [5] and alone["family_size"].tolist() == [1]
    assert rows["ci_low"].iloc[0] == pytest.approx(five["ci_low"]) and rows["ci_low"].iloc[0] < alone["ci_low"].iloc[0]
    assert rows["p_holm"].iloc[0] == pytest.approx(holm([five["p_value"], 0.001, 0.2, 0.04, 1.0])[0])
    # two families in one notebook are corrected apart
    two = evaluate_family([Measurement("everything_beats_baseline", "equal_steps", diffs, family="char level"),
                           Measurement("everything_beats_baseline", "equal_steps", diffs, family="word level")],
                          {"char level": others})
    assert two["family_size"].tolist() == [5, 1]
    record_claims([Measurement("everything_beats_baseline", "equal_steps", diffs, family="char level")], "05",
                  STAMP, tmp_path, other_p_values={"char level": others})
    table = pd.read_csv(tmp_path / "claims_smoke.csv", dtype={"notebook": str, "commit": str})
    assert table["family_size"].tolist() == [5] and table["p_holm"].iloc[0] == pytest.approx(rows["p_holm"].iloc[0])
    with pytest.raises(ValueError, match=r"families \['word level'\]"):
        evaluate_family([Measurement("everything_beats_baseline", "equal_steps", diffs, family="char level")],
                        {"word level": others})
    with pytest.raises(ValueError, match=r"other_p_values\['char level'\] = \[1.5\]"):
        evaluate_family([Measurement("everything_beats_baseline", "equal_steps", diffs, family="char level")],
                        {"char level": [1.5]})
