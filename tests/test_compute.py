"""Equal compute, FLOPs, the learning-rate sweep and the controls of the protocol."""

import dataclasses

import pandas as pd
import pytest
import torch

from resonance_lib.compute import equal_compute_variants, flops_per_token, measure_throughput
from resonance_lib.data import SequenceReconstruction
from resonance_lib.experiments import (
    Variant,
    matched_variants,
    prunable_weights,
    run_grid,
    tune_learning_rates,
    tuned_grid,
    usable_params,
    with_learning_rates,
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


def test_equal_compute_copies_only_slow_arms_with_their_own_schedule():
    variants = [Variant("baseline", SMALL), Variant("slow", SMALL), Variant("fast_enough", SMALL)]
    copies = equal_compute_variants(variants, {"baseline": 1.0, "slow": 0.25, "fast_enough": 0.85}, 2000)
    assert [c.name for c in copies] == ["slow@compute"]
    assert copies[0].train_overrides == {"max_iters": 500, "lr_decay_iters": 500}


def test_learning_rate_sweep_gives_every_arm_the_same_budget_and_picks_the_best(tmp_path):
    variants = [Variant("baseline", SMALL), Variant("wide", dataclasses.replace(SMALL, n_embd=32))]
    cfg = dataclasses.replace(CFG, learning_rate=1e-3, min_lr=1e-4)
    sweep, chosen = tune_learning_rates(variants, [0], TASK, cfg, multipliers=(0.1, 10.0), workers=1,
                                        progress=False, metric="val_loss")  # a toy task: no whole splits
    assert len(sweep) == 4 and set(sweep["multiplier"]) == {0.1, 10.0} and (sweep["n_seeds"] == 1).all()
    for arm, group in sweep.groupby("variant"):
        assert chosen[arm] == group.loc[group["val_loss_mean"].idxmin(), "learning_rate"]
    tuned = with_learning_rates(variants, chosen, cfg)
    assert tuned[0].train_overrides["min_lr"] == pytest.approx(chosen["baseline"] / 10)
    with pytest.raises(ValueError, match="no chosen learning rate for \\['other'\\]"):
        with_learning_rates([Variant("other", SMALL)], chosen, cfg)
    with pytest.raises(ValueError, match="multipliers"):
        tune_learning_rates(variants, [0], TASK, cfg, multipliers=(0.0,))
    with pytest.raises(ValueError, match="metric='final_val_loss' is not a column of the runs"):
        tune_learning_rates(variants[:1], [0], TASK, cfg, multipliers=(1.0,), workers=1, progress=False)


def test_tuned_grid_trains_the_evaluation_seeds_at_each_arms_chosen_rate():
    variants = [Variant("baseline", SMALL), Variant("wide", dataclasses.replace(SMALL, n_embd=32))]
    cfg = dataclasses.replace(CFG, learning_rate=1e-3, min_lr=1e-4)
    options = dict(workers=1, progress=False)
    runs, sweep, chosen = tuned_grid(variants, [0], TASK, cfg, multipliers=(0.1, 10.0), tuning_seeds=[7],
                                     metric="val_loss", **options)
    assert len(sweep) == 4 and set(runs["seed"]) == {0}
    # the same sweep, run by hand, picks the same rates; the evaluation runs are those rates' runs on seed 0
    assert chosen == tune_learning_rates(variants, [7], TASK, cfg, (0.1, 10.0), "val_loss", **options)[1]
    direct = run_grid(with_learning_rates(variants, chosen, cfg), [0], TASK, cfg, **options)
    pd.testing.assert_series_equal(runs["val_loss"], direct["val_loss"])
    assert runs.groupby("variant")["learning_rate"].first().to_dict() == chosen
    # with throughput ratios: the slow arm's equal-compute copy trains fewer steps at the arm's chosen rate
    runs_c, _, _ = tuned_grid(variants, [0], TASK, cfg, multipliers=(0.1, 10.0), tuning_seeds=[7], metric="val_loss",
                              ratios={"baseline": 1.0, "wide": 0.5}, **options)
    copy = runs_c[runs_c["variant"] == "wide@compute"]
    assert copy["step"].max() == cfg.max_iters // 2 and (copy["learning_rate"] == chosen["wide"]).all()
    assert set(runs_c["variant"]) == {"baseline", "wide", "wide@compute"}
    # one multiplier: no sweep, every arm keeps the configured rate
    runs1, sweep1, chosen1 = tuned_grid(variants, [0], TASK, cfg, metric="val_loss", **options)
    assert sweep1.empty and chosen1 == {"baseline": 1e-3, "wide": 1e-3}
    with pytest.raises(ValueError, match=r"tuning_seeds=\[0\] overlap the evaluation seeds"):
        tuned_grid(variants, [0, 1], TASK, cfg, tuning_seeds=[0])


def test_the_small_dense_control_has_the_usable_weights_of_a_73_percent_sparse_arm():
    base = ResonanceConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
    target = usable_params(base, 0.73)
    assert target == config_params(base) - round(0.73 * prunable_weights(base))
    control = dict((v.name, v) for v in matched_variants(base, ["dense_small"]))["dense_small"]
    assert abs(config_params(control.config) - target) <= 0.02 * target
    assert control.callbacks(None, CFG) == ()  # dense: no sparsifier
