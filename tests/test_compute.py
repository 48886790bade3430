"""Equal compute, FLOPs and the controls of the protocol."""

import dataclasses

import pandas as pd
import pytest
import torch

from resonance_lib.compute import equal_compute_variants, flops_per_token, measure_throughput
from resonance_lib.data import SequenceReconstruction
from resonance_lib.equivalent_code import TIMING_EQUIVALENT_CODE
from resonance_lib.experiments import (
    Variant,
    matched_variants,
    prunable_weights,
    results_version,
    usable_params,
)
from resonance_lib.model import ResonanceConfig, ResonanceLM, config_params
from resonance_lib.train import TrainConfig

TASK = SequenceReconstruction(vocab_size=16, seq_len=8, mode="copy")
SMALL = ResonanceConfig(vocab_size=16, block_size=16, n_layer=2, n_head=2, n_embd=16)
CFG = TrainConfig(max_iters=12, batch_size=4, eval_interval=6, eval_iters=1, device="cpu", warmup_iters=0)


def test_flops_per_token_follow_the_dense_matmul_count():
    torch.manual_seed(0)
    model = ResonanceLM(SMALL)
    flops = flops_per_token(model, TASK, batch_size=2)
    # a training step of a dense transformer is about 6 · (matmul weights) FLOPs per token, plus attention
    weights = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "wpe" not in n)
    assert 5 * weights < flops < 12 * weights
    wider = ResonanceLM(dataclasses.replace(SMALL, n_embd=32))
    assert flops_per_token(wider, TASK, batch_size=2) > 2.5 * flops


def test_measure_throughput_times_every_arm_interleaved_and_sees_a_slower_one():
    slow = dataclasses.replace(SMALL, n_layer=6, n_embd=64)
    table = measure_throughput([Variant("baseline", SMALL), Variant("deep", slow)], TASK, CFG, steps=4, repeats=2)
    assert list(table["variant"]) == ["baseline", "deep", "baseline", "deep"]
    assert (table.loc[table["variant"] == "baseline", "ratio"] == 1.0).all()
    assert table.loc[table["variant"] == "deep", "ratio"].iloc[0] < 0.8
    with pytest.raises(ValueError, match="exceed max_iters=12"):
        measure_throughput([Variant("baseline", SMALL)], TASK, CFG, steps=20)


def test_a_throughput_measurement_is_kept_and_reused_so_a_resumed_profile_gets_the_same_steps(tmp_path,
                                                                                               monkeypatch):
    from resonance_lib import compute

    arms = [Variant("baseline", SMALL), Variant("deep", dataclasses.replace(SMALL, n_layer=3))]
    first = measure_throughput(arms, TASK, CFG, steps=2, warmup=1, repeats=1, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("throughput-*.json"))) == 1
    monkeypatch.setattr(compute, "_time_interleaved", lambda *a: pytest.fail("timed again"))
    again = measure_throughput(arms, TASK, CFG, steps=2, warmup=1, repeats=1, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(first, again)
    monkeypatch.undo()
    other = measure_throughput(arms, TASK, CFG, steps=3, warmup=1, repeats=1, cache_dir=tmp_path)  # new settings
    assert len(list(tmp_path.glob("throughput-*.json"))) == 2 and len(other) == 2


def test_a_version_whose_timed_step_is_unchanged_reuses_the_earlier_versions_timing(tmp_path, monkeypatch):
    from resonance_lib import compute, equivalent_code

    arms = [Variant("baseline", SMALL)]
    monkeypatch.setattr(compute, "code_version", lambda: "old")
    first = measure_throughput(arms, TASK, CFG, steps=2, warmup=1, repeats=1, cache_dir=tmp_path)
    monkeypatch.setitem(equivalent_code.TIMING_EQUIVALENT_CODE, "new", "old")
    monkeypatch.setattr(compute, "code_version", lambda: "new")
    monkeypatch.setattr(compute, "_time_interleaved", lambda *a: pytest.fail("timed again"))
    pd.testing.assert_frame_equal(first, measure_throughput(arms, TASK, CFG, steps=2, warmup=1, repeats=1,
                                                            cache_dir=tmp_path))
    monkeypatch.setattr(compute, "code_version", lambda: "unlisted")  # any other edit: timed again
    with pytest.raises(pytest.fail.Exception, match="timed again"):
        measure_throughput(arms, TASK, CFG, steps=2, warmup=1, repeats=1, cache_dir=tmp_path)


def test_an_arm_another_timing_measured_beside_the_same_baseline_is_taken_from_it_not_timed_again(tmp_path,
                                                                                                   monkeypatch):
    from resonance_lib import compute

    baseline, deep = Variant("baseline", SMALL), Variant("deep", dataclasses.replace(SMALL, n_layer=3))
    wide = Variant("wide", dataclasses.replace(SMALL, n_embd=32))
    timed = []
    real = compute._time_interleaved
    monkeypatch.setattr(compute, "_time_interleaved", lambda variants, *a: timed.append([v.name for v in variants])
                        or real(variants, *a))
    settings = dict(steps=2, warmup=1, repeats=2, cache_dir=tmp_path)
    first = measure_throughput([baseline, deep, wide], TASK, CFG, **settings)
    # a later request for some of its arms, one after tuning (another learning rate): served, nothing timed
    tuned_deep = dataclasses.replace(deep, train_overrides={"learning_rate": 3e-3, "min_lr": 3e-4})
    some = measure_throughput([baseline, tuned_deep], TASK, CFG, **settings)
    assert timed == [["baseline", "deep", "wide"]]
    served = first[first["variant"].isin(["baseline", "deep"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(some, served)
    # a request with a new arm: only it is timed, beside the baseline; each ratio over its own timing's baseline
    narrow = Variant("narrow", dataclasses.replace(SMALL, n_embd=8))
    mixed = measure_throughput([baseline, wide, narrow], TASK, CFG, **settings)
    assert timed[1:] == [["baseline", "narrow"]]
    assert list(mixed["variant"]) == ["baseline", "wide", "narrow"] * 2
    wide_rows = mixed[mixed["variant"] == "wide"]
    assert wide_rows["ratio"].tolist() == first.loc[first["variant"] == "wide", "ratio"].tolist()
    assert wide_rows["timing"].iloc[0] != mixed.loc[mixed["variant"] == "narrow", "timing"].iloc[0]
    # kept as assembled: asked again, the same table, nothing timed
    pd.testing.assert_frame_equal(mixed, measure_throughput([baseline, wide, narrow], TASK, CFG, **settings))
    assert len(timed) == 2
    # not served: another arm config, other settings, another baseline
    measure_throughput([baseline, dataclasses.replace(deep, config=dataclasses.replace(SMALL, n_layer=4))], TASK,
                       CFG, **settings)
    measure_throughput([baseline, deep], TASK, CFG, **{**settings, "repeats": 1})
    measure_throughput([Variant("baseline", dataclasses.replace(SMALL, n_head=4)), deep], TASK, CFG, **settings)
    assert [t for t in timed[2:]] == [["baseline", "deep"]] * 3
    # nor across implementations: the fused and plain forms of one function give one result, not one speed
    halting = Variant("halting", dataclasses.replace(SMALL, attention="halting"))
    measure_throughput([baseline, halting], TASK, CFG, **settings)
    plain = dataclasses.replace(halting, config=dataclasses.replace(halting.config, halting_fused=False))
    measure_throughput([baseline, plain, wide], TASK, CFG, **settings)
    assert timed[5:] == [["baseline", "halting"], ["baseline", "halting"]]
    # and the same request on the other forms is another key: a kept timing of the plain forms is not read back
    fresh = {**settings, "cache_dir": tmp_path / "fresh"}
    measure_throughput([baseline, plain], TASK, CFG, **fresh)
    measure_throughput([baseline, halting], TASK, CFG, **fresh)
    assert timed[7:] == [["baseline", "halting"], ["baseline", "halting"]]


def test_a_timing_kept_before_arms_were_shared_is_indexed_when_read_and_then_shared(tmp_path, monkeypatch):
    from resonance_lib import compute

    baseline, deep = Variant("baseline", SMALL), Variant("deep", dataclasses.replace(SMALL, n_layer=3))
    settings = dict(steps=2, warmup=1, repeats=1, cache_dir=tmp_path)
    first = measure_throughput([baseline, deep], TASK, CFG, **settings)
    for index in tmp_path.glob("timed-arms-*.json"):  # as a timing kept by an earlier version
        index.unlink()
    kept = next(tmp_path.glob("throughput-*.json"))
    pd.read_json(kept, orient="table").drop(columns="timing").to_json(kept, orient="table", index=False)
    monkeypatch.setattr(compute, "_time_interleaved", lambda *a: pytest.fail("timed again"))
    with pytest.raises(pytest.fail.Exception, match="timed again"):  # not indexed: cannot be shared yet
        measure_throughput([baseline, dataclasses.replace(deep, train_overrides={"learning_rate": 2e-3})], TASK,
                           CFG, **settings)
    pd.testing.assert_frame_equal(first, measure_throughput([baseline, deep], TASK, CFG, **settings))
    shared = measure_throughput([baseline, dataclasses.replace(deep, train_overrides={"learning_rate": 2e-3})],
                                TASK, CFG, **settings)
    pd.testing.assert_frame_equal(shared, first)
    next(tmp_path.glob("timed-arms-*.json")).write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="is not a timing index"):
        measure_throughput([baseline, Variant("other", dataclasses.replace(SMALL, n_layer=1))], TASK, CFG, **settings)


@pytest.mark.parametrize("version", sorted(TIMING_EQUIVALENT_CODE))
def test_a_timing_is_shared_only_between_versions_reviewed_as_training_the_same_runs(version):
    assert results_version(version) == results_version(TIMING_EQUIVALENT_CODE[version])


def test_equal_compute_copies_only_slow_arms_with_their_own_schedule():
    variants = [Variant("baseline", SMALL), Variant("slow", SMALL), Variant("fast_enough", SMALL)]
    copies = equal_compute_variants(variants, {"baseline": 1.0, "slow": 0.25, "fast_enough": 0.85}, 2000)
    assert [c.name for c in copies] == ["slow@compute"]
    assert copies[0].train_overrides == {"max_iters": 500, "lr_decay_iters": 500}


def test_the_small_dense_control_has_the_usable_weights_of_a_73_percent_sparse_arm():
    base = ResonanceConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
    target = usable_params(base, 0.73)
    assert target == config_params(base) - round(0.73 * prunable_weights(base))
    control = dict((v.name, v) for v in matched_variants(base, ["dense_small"]))["dense_small"]
    assert abs(config_params(control.config) - target) <= 0.02 * target
    assert control.callbacks(None, CFG) == ()  # dense: no sparsifier
