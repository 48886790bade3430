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
from .profiles import pick
from .train import TrainConfig


@dataclasses.dataclass(frozen=True)
class TuningPlan:
    """How much tuning every arm gets, the same for every arm of a profile: the learning-rate ``multipliers`` tried
    (× each arm's rate) on ``tuning_seeds``; ``extend_edges`` more rates out where an arm's best is at an edge of
    what it tried; each arm's two best rates trained again on ``confirm_seeds``, the lowest mean over all of them
    winning. ``tuned_grid(variants, seeds, data, cfg, **plan.grid_options())`` runs it."""

    multipliers: tuple[float, ...]
    tuning_seeds: tuple[int, ...]
    extend_edges: int
    confirm_seeds: tuple[int, ...]

    def grid_options(self) -> dict:
        """The keyword arguments of ``tuned_grid`` that carry the plan."""
        return dict(multipliers=self.multipliers, tuning_seeds=list(self.tuning_seeds),
                    extend_edges=self.extend_edges, confirm_seeds=list(self.confirm_seeds))

    @property
    def seeds(self) -> list[int]:
        """Every seed a rate was chosen on (what a sweep's table and figure name)."""
        return [*self.tuning_seeds, *self.confirm_seeds]


def tuning_plan(profile: str, full_multipliers: Sequence[float] = (0.5, 1.0, 2.0)) -> TuningPlan:
    """The protocol's plan for ``profile``: ``full`` and ``gpu`` sweep ``full_multipliers`` on tuning seed 100, extend
    past an edge up to twice and confirm on seeds 101 and 102 (never evaluation seeds); ``smoke`` sweeps ×1 and ×2
    with neither, so that CI runs the sweep's code; ``quick`` trains every arm at its one rate (no sweep)."""
    full = tuple(full_multipliers)
    return TuningPlan(multipliers=pick(profile, smoke=(1.0, 2.0), quick=(1.0,), full=full, gpu=full),
                      tuning_seeds=(100,),
                      extend_edges=pick(profile, smoke=0, quick=0, full=2, gpu=2),
                      confirm_seeds=pick(profile, smoke=(), quick=(), full=(101, 102), gpu=(101, 102)))


def _at_rate(variant: Variant, multiplier: float, train_config: TrainConfig) -> Variant:
    """``variant`` trained at ``multiplier`` × its learning rate (``min_lr`` scaled alike), named
    ``<arm>@lr×<multiplier>``."""
    lr = variant.train_overrides.get("learning_rate", train_config.learning_rate)
    min_lr = variant.train_overrides.get("min_lr", train_config.min_lr)
    return dataclasses.replace(variant, name=f"{variant.name}@lr×{multiplier:g}", train_overrides={
        **variant.train_overrides, "learning_rate": lr * multiplier, "min_lr": min_lr * multiplier})


def _final_values(plan: Sequence[tuple[Variant, float]], seeds, data, train_config, metric, grid_options
                  ) -> list[list[float]]:
    """Train each (arm, multiplier) of ``plan`` on ``seeds`` (one grid, so they share the workers); for each, the
    final ``metric`` of the seeds that finished."""
    copies = [_at_rate(variant, m, train_config) for variant, m in plan]
    runs = run_grid(copies, seeds, data, train_config, **grid_options)
    if metric not in runs:
        raise ValueError(f"metric={metric!r} is not a column of the runs; columns: {sorted(runs.columns)} "
                         "(final_val_loss needs data with whole splits, e.g. a corpus from prepare())")
    steps = runs["step"].fillna(-1)
    final = runs[steps == steps.groupby([runs["variant"], runs["seed"]]).transform("max")]
    final = final[~failed_runs(final, metric)]
    return [final.loc[final["variant"] == copy.name, metric].astype(float).tolist() for copy in copies]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _beyond_edge(tried: dict[float, list[float]]) -> float | None:
    """The next multiplier past the end of an arm's sweep (``{multiplier: final values}``) where its best rate
    lies (the sweep's own step at that end: ×2, ×4 → ×8; ×0.5, ×1 → ×0.25), or None when its best is inside
    what it tried or no rate finished."""
    finished = {m: _mean(v) for m, v in tried.items() if v}
    if not finished:
        return None
    best, ms = min(finished, key=finished.get), sorted(tried)
    if best == ms[-1]:
        return ms[-1] * ms[-1] / ms[-2]
    if best == ms[0]:
        return ms[0] * ms[0] / ms[1]
    return None


def tune_learning_rates(variants: Sequence[Variant], seeds: Sequence[int], data, train_config: TrainConfig,
                        multipliers: Sequence[float] = (0.5, 1.0, 2.0, 4.0), metric: str = "final_val_loss",
                        extend_edges: int = 0, confirm_seeds: Sequence[int] = (), confirm_top: int = 2,
                        **grid_options) -> tuple[pd.DataFrame, dict[str, float]]:
    """The protocol's equal tuning budget: every arm, baseline included, trains with each learning rate
    ``m · train_config.learning_rate`` (``min_lr`` scaled alike) on the tuning ``seeds`` for the full run; the
    rate with the lowest mean final ``metric`` wins.

    ``extend_edges``: an arm whose best rate is the largest (or smallest) it tried also trains at the next rate
    past that end, at the sweep's own step there (×2, ×4 → ×8), and again, up to ``extend_edges`` times: a
    best rate on the edge of the grid says only that the arm's best lies at or beyond it. The same rule for every
    arm; the arms whose best was inside the grid try no more rates.

    ``confirm_seeds``: then each arm's ``confirm_top`` best rates also train on these seeds, and the winner is the
    lowest mean over all the tuning seeds among them. One seed's final loss varies by about as much as
    neighbouring rates differ (notebook 05's baseline: ×8 beat ×4 by 0.008 on its tuning seed and lost by 0.02
    on the six evaluation seeds), so a single-seed pick would often be noise.

    Returns the sweep (one row per arm and rate tried, in the arms' order and rising rate: mean, sd and number of
    finished seeds; ``confirmed`` marks the rates trained on the confirmation seeds too; ``chosen`` the arm's
    rate; ``at_edge`` marks every row of an arm whose chosen rate is still the largest or smallest it tried, so
    its best may lie further out) and ``{arm: chosen learning rate}``. ``grid_options`` go to ``run_grid``."""
    if not multipliers or any(not m > 0 for m in multipliers):
        raise ValueError(f"multipliers={list(multipliers)} must be positive numbers")
    check_int("extend_edges", extend_edges, low=0)
    check_int("confirm_top", confirm_top, low=1)
    if extend_edges and len(set(multipliers)) < 2:
        raise ValueError(f"extend_edges={extend_edges} needs at least two multipliers (a direction and a step to "
                         f"extend by), got multipliers={list(multipliers)}")
    if set(confirm_seeds) & set(seeds):
        raise ValueError(f"confirm_seeds={list(confirm_seeds)} repeat the sweep's seeds {list(seeds)}: a confirmation "
                         "needs seeds the sweep did not train")
    tried: dict[str, dict[float, list[float]]] = {v.name: {} for v in variants}

    def train(plan, on_seeds):
        for (variant, m), values in zip(plan, _final_values(plan, on_seeds, data, train_config, metric, grid_options),
                                        strict=True):
            tried[variant.name].setdefault(m, []).extend(values)

    train([(v, m) for v in variants for m in sorted(set(multipliers))], seeds)
    for _ in range(extend_edges):
        plan = [(v, m) for v in variants if (m := _beyond_edge(tried[v.name])) is not None]
        if not plan:
            break
        train(plan, seeds)
    contenders = {}
    for v in variants:
        finished = sorted((m for m, values in tried[v.name].items() if values), key=lambda m: _mean(tried[v.name][m]))
        contenders[v.name] = finished[:confirm_top] if confirm_seeds else finished
    if confirm_seeds:
        train([(v, m) for v in variants for m in contenders[v.name]], confirm_seeds)
    rows, chosen = [], {}
    for v in variants:
        base = _at_rate(v, 1.0, train_config).train_overrides["learning_rate"]
        means = {m: _mean(tried[v.name][m]) for m in contenders[v.name] if tried[v.name][m]}
        best = min(means, key=means.get) if means else None
        if best is not None:
            chosen[v.name] = base * best
        ms = sorted(tried[v.name])
        for m in ms:
            values = tried[v.name][m]
            rows.append({"variant": v.name, "multiplier": m, "learning_rate": base * m,
                         f"{metric}_mean": _mean(values), f"{metric}_sd": pd.Series(values, dtype=float).std(),
                         "n_seeds": len(values), "confirmed": bool(confirm_seeds) and m in contenders[v.name],
                         "chosen": m == best, "at_edge": best is not None and len(ms) > 1 and best in (ms[0], ms[-1])})
    sweep = pd.DataFrame(rows)
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
               metric: str = "final_val_loss", ratios: dict[str, float] | None = None,
               return_models: bool | Sequence[tuple[str, int]] = False,
               extend_edges: int = 0, confirm_seeds: Sequence[int] = (), **grid_options):
    """The protocol's grid in one call: (1) every arm's learning rate chosen by the same sweep on
    ``tuning_seeds`` (``tune_learning_rates``, extended past an edge up to ``extend_edges`` times, its two best rates
    per arm confirmed on ``confirm_seeds``; with a single multiplier there is no sweep and every arm keeps its
    rate); (2) every arm trained at its chosen rate on the
    evaluation ``seeds`` (equal steps); (3) with ``ratios`` (throughput relative to the baseline, from
    ``compute.measure_throughput``), every arm slower than ``compute.SLOW`` also trained for the steps that fit in
    the baseline's time at the same rate, with its own full schedule (``<arm>@compute``, equal compute).

    Returns (runs, sweep, chosen rates), and the trained models of the evaluation runs as a fourth item with
    ``return_models`` (True: all of them; or the (variant, seed) pairs wanted, as ``run_grid`` takes them); ``runs``
    has a ``learning_rate`` column. Tuning seeds must not be evaluation seeds."""
    from .compute import equal_compute_variants  # compute imports the training modules; keep this one light

    for name, tuning in (("tuning_seeds", tuning_seeds), ("confirm_seeds", confirm_seeds)):
        shared = sorted(set(seeds) & set(tuning))
        if shared:
            raise ValueError(f"{name}={list(tuning)} overlap the evaluation seeds {list(seeds)} at {shared}: "
                             "a rate chosen on a seed must not be judged on it")
    if len(multipliers) > 1:
        sweep, chosen = tune_learning_rates(variants, tuning_seeds, data, train_config, multipliers, metric,
                                            extend_edges, confirm_seeds, **grid_options)
    else:
        if extend_edges or confirm_seeds:
            raise ValueError(f"extend_edges={extend_edges} and confirm_seeds={list(confirm_seeds)} need a sweep (two "
                             f"or more multipliers), got multipliers={list(multipliers)}")
        sweep = pd.DataFrame()
        chosen = {v.name: v.train_overrides.get("learning_rate", train_config.learning_rate) * multipliers[0]
                  for v in variants}
    tuned = with_learning_rates(variants, chosen, train_config)
    arms = tuned + (equal_compute_variants(tuned, ratios, train_config.max_iters) if ratios else [])
    result = run_grid(arms, seeds, data, train_config, return_models=return_models, **grid_options)
    runs, models = result if return_models is not False else (result, None)
    runs["learning_rate"] = runs["variant"].str.removesuffix("@compute").map(chosen)
    return (runs, sweep, chosen, models) if return_models is not False else (runs, sweep, chosen)
