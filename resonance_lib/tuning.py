"""The protocol's equal tuning budget: the same learning-rate sweep for every arm, and the grid at each arm's
chosen rate.

Tuning decides *which* runs to train and which one wins; it computes nothing inside a run. So it lives outside
the modules a training run executes (``experiments.TRAINING_MODULES``): a change to the tuning rule gives no
finished run a new cache key (each run's key already holds its own learning rate), and a sweep extended later
reuses every rate it had tried.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pandas as pd

from .checks import check_int
from .experiments import Variant, failed_runs, run_grid
from .train import TrainConfig


def _at_rate(variant: Variant, multiplier: float, train_config: TrainConfig) -> Variant:
    """``variant`` trained at ``multiplier`` × its learning rate (``min_lr`` scaled alike), named
    ``<arm>@lr×<multiplier>``."""
    lr = variant.train_overrides.get("learning_rate", train_config.learning_rate)
    min_lr = variant.train_overrides.get("min_lr", train_config.min_lr)
    return dataclasses.replace(variant, name=f"{variant.name}@lr×{multiplier:g}", train_overrides={
        **variant.train_overrides, "learning_rate": lr * multiplier, "min_lr": min_lr * multiplier})


def _sweep_rows(plan: Sequence[tuple[Variant, float]], seeds, data, train_config, metric, grid_options
                ) -> list[dict]:
    """Train each (arm, multiplier) of ``plan`` on ``seeds`` (one grid, so they share the workers); one row each:
    the mean and sd of the final ``metric`` over the seeds that finished, and how many did."""
    copies = [_at_rate(variant, m, train_config) for variant, m in plan]
    runs = run_grid(copies, seeds, data, train_config, **grid_options)
    if metric not in runs:
        raise ValueError(f"metric={metric!r} is not a column of the runs; columns: {sorted(runs.columns)} "
                         "(final_val_loss needs data with whole splits, e.g. a corpus from prepare())")
    steps = runs["step"].fillna(-1)
    final = runs[steps == steps.groupby([runs["variant"], runs["seed"]]).transform("max")]
    final = final[~failed_runs(final, metric)]
    rows = []
    for (variant, m), copy in zip(plan, copies, strict=True):
        values = final.loc[final["variant"] == copy.name, metric].astype(float)
        rows.append({"variant": variant.name, "multiplier": m, "learning_rate": copy.train_overrides["learning_rate"],
                     f"{metric}_mean": values.mean(), f"{metric}_sd": values.std(), "n_seeds": len(values)})
    return rows


def _beyond_edge(tried: pd.DataFrame, metric: str) -> float | None:
    """The next multiplier past the end of an arm's sweep where its best rate lies (the sweep's own step at that
    end: ×2, ×4 → ×8; ×0.5, ×1 → ×0.25), or None when its best is inside what it tried or no rate finished."""
    finished = tried.dropna(subset=[f"{metric}_mean"])
    if finished.empty:
        return None
    best = float(finished.loc[finished[f"{metric}_mean"].idxmin(), "multiplier"])
    ms = sorted(tried["multiplier"])
    if best == ms[-1]:
        return ms[-1] * ms[-1] / ms[-2]
    if best == ms[0]:
        return ms[0] * ms[0] / ms[1]
    return None


def tune_learning_rates(variants: Sequence[Variant], seeds: Sequence[int], data, train_config: TrainConfig,
                        multipliers: Sequence[float] = (0.5, 1.0, 2.0, 4.0), metric: str = "final_val_loss",
                        extend_edges: int = 0, **grid_options) -> tuple[pd.DataFrame, dict[str, float]]:
    """The protocol's equal tuning budget: every arm, baseline included, trains with each learning rate
    ``m · train_config.learning_rate`` (``min_lr`` scaled alike) on the tuning ``seeds`` for the full run; the
    rate with the lowest mean final ``metric`` wins.

    ``extend_edges``: an arm whose best rate is the largest (or smallest) it tried also trains at the next rate
    past that end, at the sweep's own step there (×2, ×4 → ×8), and again, up to ``extend_edges`` times: a
    best rate on the edge of the grid says only that the arm's best lies at or beyond it. The same rule for every
    arm; the arms whose best was inside the grid try no more rates.

    Returns the sweep (one row per arm and rate tried, in the arms' order and rising rate: mean, sd and number of
    finished seeds; ``chosen`` marks the arm's rate; ``at_edge`` marks every row of an arm whose chosen rate is
    still the largest or smallest it tried, so its best may lie further out) and ``{arm: chosen learning
    rate}``. ``grid_options`` go to ``run_grid``."""
    if not multipliers or any(not m > 0 for m in multipliers):
        raise ValueError(f"multipliers={list(multipliers)} must be positive numbers")
    check_int("extend_edges", extend_edges, low=0)
    if extend_edges and len(set(multipliers)) < 2:
        raise ValueError(f"extend_edges={extend_edges} needs at least two multipliers (a direction and a step to "
                         f"extend by), got multipliers={list(multipliers)}")
    ordered = sorted(set(multipliers))
    rows = _sweep_rows([(v, m) for v in variants for m in ordered], seeds, data, train_config, metric, grid_options)
    for _ in range(extend_edges):
        sweep = pd.DataFrame(rows)
        plan = [(v, m) for v in variants
                if (m := _beyond_edge(sweep[sweep["variant"] == v.name], metric)) is not None]
        if not plan:
            break
        rows += _sweep_rows(plan, seeds, data, train_config, metric, grid_options)
    order = {v.name: i for i, v in enumerate(variants)}
    sweep = pd.DataFrame(rows)
    sweep = sweep.sort_values(["variant", "multiplier"], key=lambda c: c.map(order) if c.name == "variant" else c,
                              ignore_index=True)
    column = f"{metric}_mean"
    sweep["chosen"], sweep["at_edge"], chosen = False, False, {}
    for arm, group in sweep.groupby("variant", sort=False):
        if group[column].notna().any():
            best = group[column].idxmin()
            chosen[arm] = float(sweep.loc[best, "learning_rate"])
            sweep.loc[best, "chosen"] = True
            multiplier = sweep.loc[best, "multiplier"]
            sweep.loc[group.index, "at_edge"] = len(group) > 1 and multiplier in (group["multiplier"].min(),
                                                                                   group["multiplier"].max())
    edge = sweep.loc[sweep["chosen"] & sweep["at_edge"], ["variant", "multiplier"]]
    if len(edge):
        print(f"learning-rate sweep: the best rate of {', '.join(f'{a} (×{m:g})' for a, m in edge.itertuples(False))} "
              f"is the largest or smallest it tried ({extend_edges} extension(s) allowed): its best may lie further out")
    return sweep, chosen


def with_learning_rates(variants: Sequence[Variant], chosen: dict[str, float], train_config: TrainConfig
                        ) -> list[Variant]:
    """The variants with their chosen learning rates (``min_lr`` keeps its ratio to the learning rate)."""
    missing = [v.name for v in variants if v.name not in chosen]
    if missing:
        raise ValueError(f"no chosen learning rate for {missing}; chosen: {sorted(chosen)}")
    ratio = train_config.min_lr / train_config.learning_rate
    return [dataclasses.replace(v, train_overrides={**v.train_overrides, "learning_rate": chosen[v.name],
                                                    "min_lr": chosen[v.name] * ratio}) for v in variants]


def tuned_grid(variants: Sequence[Variant], seeds: Sequence[int], data, train_config: TrainConfig,
               multipliers: Sequence[float] = (1.0,), tuning_seeds: Sequence[int] = (100,),
               metric: str = "final_val_loss", ratios: dict[str, float] | None = None, return_models: bool = False,
               extend_edges: int = 0, **grid_options):
    """The protocol's grid in one call: (1) every arm's learning rate chosen by the same sweep on
    ``tuning_seeds`` (``tune_learning_rates``, extended past an edge up to ``extend_edges`` times; with a single
    multiplier there is no sweep and every arm keeps its rate); (2) every arm trained at its chosen rate on the
    evaluation ``seeds`` (equal steps); (3) with ``ratios`` (throughput relative to the baseline, from
    ``compute.measure_throughput``), every arm slower than ``compute.SLOW`` also trained for the steps that fit in
    the baseline's time at the same rate, with its own full schedule (``<arm>@compute``, equal compute).

    Returns (runs, sweep, chosen rates), and the trained models of the evaluation runs as a fourth item with
    ``return_models=True``; ``runs`` has a ``learning_rate`` column. Tuning seeds must not be evaluation seeds."""
    from .compute import equal_compute_variants  # compute imports the training modules; keep this one light

    shared = sorted(set(seeds) & set(tuning_seeds))
    if shared:
        raise ValueError(f"tuning_seeds={list(tuning_seeds)} overlap the evaluation seeds {list(seeds)} at {shared}: "
                         "a rate chosen on a seed must not be judged on it")
    if len(multipliers) > 1:
        sweep, chosen = tune_learning_rates(variants, tuning_seeds, data, train_config, multipliers, metric,
                                            extend_edges, **grid_options)
    else:
        if extend_edges:
            raise ValueError(f"extend_edges={extend_edges} needs a sweep (two or more multipliers), got "
                             f"multipliers={list(multipliers)}")
        sweep = pd.DataFrame()
        chosen = {v.name: v.train_overrides.get("learning_rate", train_config.learning_rate) * multipliers[0]
                  for v in variants}
    tuned = with_learning_rates(variants, chosen, train_config)
    arms = tuned + (equal_compute_variants(tuned, ratios, train_config.max_iters) if ratios else [])
    result = run_grid(arms, seeds, data, train_config, return_models=return_models, **grid_options)
    runs, models = result if return_models else (result, None)
    runs["learning_rate"] = runs["variant"].str.removesuffix("@compute").map(chosen)
    return (runs, sweep, chosen, models) if return_models else (runs, sweep, chosen)
