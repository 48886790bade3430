"""The protocol's learning-rate sweep: the same rates for every arm, extended past an edge by one rule."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from resonance_lib import tuning
from resonance_lib.data import SequenceReconstruction
from resonance_lib.experiments import Variant, run_grid
from resonance_lib.model import ResonanceConfig
from resonance_lib.train import TrainConfig
from resonance_lib.tuning import tune_learning_rates, tuned_grid, with_learning_rates

TASK = SequenceReconstruction(vocab_size=16, seq_len=8, mode="copy")
SMALL = ResonanceConfig(vocab_size=16, block_size=16, n_layer=2, n_head=2, n_embd=16)
CFG = TrainConfig(max_iters=12, batch_size=4, eval_interval=6, eval_iters=1, device="cpu", warmup_iters=0)


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


# each arm's final loss as a known function of its learning rate: (log lr − log best)², failed above `diverges`
OPTIMA = {"interior": 1e-3, "low": 1e-4, "high": 1e-1, "three": 3e-3, "diverges": 1e-1}


def fake_grid(trained, luck=None):
    """A stand-in for ``run_grid`` that records what it was asked to train and returns each arm's known loss."""
    def run(copies, seeds, data, train_config, **options):
        rows = []
        for copy in copies:
            arm, lr = copy.name.split("@")[0], copy.train_overrides["learning_rate"]
            trained.append((arm, round(lr / train_config.learning_rate, 6)))
            failed = arm == "diverges" and lr > 2.5e-3
            loss = np.nan if failed else float(np.log(lr / OPTIMA[arm]) ** 2)
            m = round(lr / train_config.learning_rate, 6)
            rows += [{"variant": copy.name, "seed": s, "step": train_config.max_iters,
                      "final_val_loss": loss + (luck or {}).get((s, m), 0.0), "status": "failed" if failed else "ok"}
                     for s in seeds]
        return pd.DataFrame(rows)
    return run


def test_an_arm_whose_best_rate_is_on_the_edge_tries_the_next_rate_out_and_only_that_arm(monkeypatch, capsys):
    trained = []
    monkeypatch.setattr(tuning, "run_grid", fake_grid(trained))
    variants = [Variant(name, SMALL) for name in OPTIMA]
    cfg = dataclasses.replace(CFG, learning_rate=1e-3, min_lr=1e-4)
    sweep, chosen = tune_learning_rates(variants, [100], TASK, cfg, (1.0, 0.5, 2.0), extend_edges=2)
    tried = {arm: sorted(group["multiplier"]) for arm, group in sweep.groupby("variant")}
    assert tried == {"interior": [0.5, 1, 2],  # best inside the grid: nothing more
                     "low": [0.125, 0.25, 0.5, 1, 2], "high": [0.5, 1, 2, 4, 8],  # on the edge twice: the cap
                     "three": [0.5, 1, 2, 4, 8],  # ×4 beats ×2, then ×8 does not: its best is inside
                     "diverges": [0.5, 1, 2, 4]}  # ×4 fails, so ×2 is inside what it tried
    assert chosen == pytest.approx({"interior": 1e-3, "low": 1.25e-4, "high": 8e-3, "three": 4e-3, "diverges": 2e-3})
    assert sweep.groupby("variant")["at_edge"].first().to_dict() == {
        "interior": False, "low": True, "high": True, "three": False, "diverges": False}
    assert sweep["chosen"].sum() == len(variants)
    assert list(sweep["variant"].drop_duplicates()) == list(OPTIMA)  # the arms' order, then rising rate
    assert sweep.groupby("variant")["multiplier"].apply(lambda m: m.is_monotonic_increasing).all()
    assert len(trained) == len(set(trained)) == len(sweep)  # no rate trained twice
    assert "low (×0.125), high (×8)" in capsys.readouterr().out
    # without extensions the same arms stop at the grid's edge
    trained.clear()
    plain, plain_chosen = tune_learning_rates(variants, [100], TASK, cfg, (0.5, 1.0, 2.0))
    assert len(plain) == 15 and plain_chosen["high"] == pytest.approx(2e-3) and plain["at_edge"].sum() == 12


def test_extending_the_sweep_needs_a_direction_and_names_the_setting():
    variants = [Variant("baseline", SMALL)]
    with pytest.raises(ValueError, match="extend_edges=-1 must be an integer >= 0"):
        tune_learning_rates(variants, [0], TASK, CFG, (0.5, 1.0), extend_edges=-1)
    with pytest.raises(ValueError, match=r"extend_edges=1 needs at least two multipliers.*\[1.0\]"):
        tune_learning_rates(variants, [0], TASK, CFG, (1.0,), extend_edges=1)
    with pytest.raises(ValueError, match=r"extend_edges=2 and confirm_seeds=\[\] need a sweep"):
        tuned_grid(variants, [0], TASK, CFG, multipliers=(1.0,), extend_edges=2)
    with pytest.raises(ValueError, match=r"confirm_seeds=\[0, 1\] repeat the sweep's seeds \[0\]"):
        tune_learning_rates(variants, [0], TASK, CFG, (0.5, 1.0), confirm_seeds=[0, 1])
    with pytest.raises(ValueError, match=r"confirm_seeds=\[1\] overlap the evaluation seeds"):
        tuned_grid(variants, [0, 1], TASK, CFG, multipliers=(0.5, 1.0), tuning_seeds=[7], confirm_seeds=[1])
    with pytest.raises(ValueError, match="confirm_top=0 must be a positive integer"):
        tune_learning_rates(variants, [0], TASK, CFG, (0.5, 1.0), confirm_top=0)


def test_an_extended_sweep_trains_the_runs_a_wider_grid_would_and_reuses_them(tmp_path):
    variants = [Variant("baseline", SMALL)]
    cfg = dataclasses.replace(CFG, learning_rate=1e-3, min_lr=1e-4)
    options = dict(metric="val_loss", workers=1, progress=False, cache_dir=tmp_path)
    sweep, _ = tune_learning_rates(variants, [0], TASK, cfg, (0.1, 1.0), extend_edges=1, **options)
    assert len(sweep) == 3  # at 12 steps the larger rate wins: one more rate out (×10 or ×0.01)
    cached = sorted(tmp_path.rglob("history.json"))
    wider, _ = tune_learning_rates(variants, [0], TASK, cfg, tuple(sweep["multiplier"]), **options)
    assert sorted(tmp_path.rglob("history.json")) == cached  # the same keys: nothing trained again
    pd.testing.assert_frame_equal(wider.drop(columns=["chosen", "at_edge"]), sweep.drop(columns=["chosen", "at_edge"]))


def test_the_best_rates_are_confirmed_on_more_seeds_so_one_lucky_seed_does_not_choose(monkeypatch):
    trained = []
    # on the sweep's seed 100 the "three" arm (best at ×3) is lucky at ×8: −1 makes it beat ×4 there
    monkeypatch.setattr(tuning, "run_grid", fake_grid(trained, luck={(100, 8.0): -1.0}))
    variants = [Variant("three", SMALL), Variant("interior", SMALL)]
    cfg = dataclasses.replace(CFG, learning_rate=1e-3, min_lr=1e-4)
    _, lucky = tune_learning_rates(variants, [100], TASK, cfg, (1.0, 2.0, 4.0, 8.0))
    assert lucky["three"] == pytest.approx(8e-3)
    trained.clear()
    sweep, chosen = tune_learning_rates(variants, [100], TASK, cfg, (1.0, 2.0, 4.0, 8.0), confirm_seeds=[101, 102])
    assert chosen == pytest.approx({"three": 4e-3, "interior": 1e-3})
    confirmed = sweep[sweep["confirmed"]]
    assert confirmed.groupby("variant")["multiplier"].apply(sorted).to_dict() == {"three": [4.0, 8.0],
                                                                                  "interior": [1.0, 2.0]}
    assert (confirmed["n_seeds"] == 3).all() and (sweep.loc[~sweep["confirmed"], "n_seeds"] == 1).all()
    assert len(trained) == 8 + 4  # four rates per arm on seed 100, then the two best of each on two more seeds


def test_tuned_grid_extends_and_confirms_on_a_real_task_then_trains_the_chosen_rates(tmp_path):
    variants = [Variant("baseline", SMALL)]
    cfg = dataclasses.replace(CFG, learning_rate=1e-3, min_lr=1e-4)
    runs, sweep, chosen = tuned_grid(variants, [0], TASK, cfg, multipliers=(0.1, 1.0), tuning_seeds=[7],
                                     metric="val_loss", extend_edges=1, confirm_seeds=[8], workers=1,
                                     progress=False, cache_dir=tmp_path)
    assert len(sweep) == 3 and sweep["confirmed"].sum() == 2 and set(sweep["n_seeds"]) == {1, 2}
    assert sweep.loc[sweep["chosen"], "confirmed"].all()
    assert (runs["learning_rate"] == chosen["baseline"]).all() and set(runs["seed"]) == {0}


def test_a_profiles_tuning_plan_is_what_tuned_grid_trains(monkeypatch):
    assert tuning.tuning_plan("full") == tuning.TuningPlan((0.5, 1.0, 2.0), (100,), 2, (101, 102))
    assert tuning.tuning_plan("gpu", full_multipliers=(0.5, 1.0, 2.0, 4.0)).multipliers == (0.5, 1.0, 2.0, 4.0)
    assert tuning.tuning_plan("smoke") == tuning.TuningPlan((1.0, 2.0), (100,), 0, ())
    assert tuning.tuning_plan("quick").multipliers == (1.0,) and tuning.tuning_plan("full").seeds == [100, 101, 102]
    with pytest.raises(ValueError, match="PROFILE='laptop'"):
        tuning.tuning_plan("laptop")
    trained = {}  # seed → the (arm, rate) copies trained on it

    def recorder(copies, seeds, data, train_config, **options):
        for seed in seeds:
            trained.setdefault(seed, set()).update(c.name for c in copies)
        return fake_grid([])(copies, seeds, data, train_config, **options)

    monkeypatch.setattr(tuning, "run_grid", recorder)
    cfg = dataclasses.replace(CFG, learning_rate=1e-3, min_lr=1e-4)
    _, _, chosen = tuned_grid([Variant("high", SMALL)], [0], TASK, cfg, **tuning.tuning_plan("full").grid_options())
    # ×0.5, 1, 2 on seed 100, two rates further out (its best is at the top edge), the two best on 101 and 102
    assert trained == {100: {"high@lr×0.5", "high@lr×1", "high@lr×2", "high@lr×4", "high@lr×8"},
                       101: {"high@lr×4", "high@lr×8"}, 102: {"high@lr×4", "high@lr×8"}, 0: {"high"}}
    assert chosen == {"high": pytest.approx(8e-3)}
