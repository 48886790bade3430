"""Grids of (variant × seed) training runs as one tidy DataFrame, and their summary with 95% intervals.

Every run of a grid sees the same data, the same steps and the same eval batches; seed ``s`` sets both
the model initialisation and the batch order, so variants are compared *paired by seed*.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from .model import ResonanceConfig, ResonanceLM, config_params, count_params, match_params
from .provenance import device_name, git_commit
from .sparsity import sparsify
from .stats import t_interval, verdict
from .train import Callback, NonFiniteLossError, TrainConfig, resolve_device, stream_seed, train


@dataclass
class Variant:
    """One arm of an experiment: a model config, optional callbacks, optional TrainConfig overrides.

    ``callbacks(model, train_config)`` makes fresh callbacks for every run (e.g. a sparsifier attached to
    that run's model)."""

    name: str
    config: ResonanceConfig
    callbacks: Callable[[torch.nn.Module, TrainConfig], Sequence[Callback]] = lambda model, cfg: ()
    train_overrides: dict = field(default_factory=dict)


# Every component as a named set of ResonanceConfig switches: the one list the notebooks' ablations and
# the benchmarks draw from. Each issue that lands a component adds its entries here.
SWITCHES: dict[str, dict] = {
    "delta_dv1": {"residual": "delta", "delta_value_dim": 1},
    "delta_dv4": {"residual": "delta", "delta_value_dim": 4},
    "phase_random": {"embedding": "phase", "attention": "phase", "phase_init": "random"},
    "phase_phonetic": {"embedding": "phase", "attention": "phase", "phase_init": "phonetic"},  # word vocabularies
    "prime_encoder": {"encoder": "prime"},
    "halting_attention": {"attention": "halting"},
    "memory": {"memory": True},
    "premanifest_head": {"head": "premanifest"},
    "prime_ffn_mask": {"ffn_mask": "prime"},
    "prime_all": {"encoder": "prime", "attention": "halting", "memory": True, "head": "premanifest",
                  "ffn_mask": "prime"},
}
# Sparse variants keep the baseline's architecture (same dense parameter count) and add a sparsifier.
SPARSE: dict[str, dict] = {
    "sparse_static": {"strategy": "static"},
    "sparse_gmp": {"strategy": "gmp"},
    "sparse_set": {"strategy": "set"},
    "sparse_rigl": {"strategy": "rigl"},
    "sparse_resonance": {"strategy": "resonance"},
    "sparse_resonance_all": {"strategy": "resonance", "wave_amplitude": 0.5, "twist_mode": True,
                             "etch_memory": True, "curvature_exponent": 2.0},
}


# Every component at once. The attention switch takes one value, so this uses phase attention (random phases:
# they work with any vocabulary) and leaves out halting attention; the delta residual uses d_v = 1.
COMBINED: dict[str, tuple[dict, dict]] = {
    "everything": ({"residual": "delta", "delta_value_dim": 1, "embedding": "phase", "attention": "phase",
                    "phase_init": "random",
                    "encoder": "prime", "memory": True, "head": "premanifest", "ffn_mask": "prime"},
                   SPARSE["sparse_resonance"]),
}


def sparse_callbacks(changes: dict, ramp_fraction: float = 0.5, updates: int = 40):
    """A callbacks factory for ``Variant``: a sparsifier whose schedule scales with the run's length
    (the ramp ends at ``ramp_fraction`` of the steps; about ``updates`` mask updates in all)."""

    if "seed" in changes:
        raise ValueError(f"seed={changes['seed']!r} in the sparsity changes: the mask stream follows each run's "
                         "seed (stream_seed(seed, 'sparsity')), so seeds of one arm differ; leave seed out")

    def make(model, cfg: TrainConfig):
        return [sparsify(model, end_step=int(ramp_fraction * cfg.max_iters),
                         update_interval=max(1, cfg.max_iters // updates),
                         seed=stream_seed(cfg.seed, "sparsity"), **changes)]

    return make


def matched_variants(base: ResonanceConfig, names: Sequence[str], tolerance: float = 0.02) -> list[Variant]:
    """``baseline`` (= ``base``) and each named component: a config switch from ``SWITCHES``, resized with
    ``match_params`` to within ``tolerance`` of the baseline's parameter count, a sparsifier from ``SPARSE``,
    or both (``COMBINED``)."""
    allowed = [*SWITCHES, *SPARSE, *COMBINED]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"unknown components {unknown}; allowed: {sorted(allowed)}")
    target = config_params(base)
    variants = [Variant("baseline", base)]
    for name in names:
        switches, sparsity = COMBINED.get(name, (SWITCHES.get(name), SPARSE.get(name)))
        variant = Variant(name, match_params(dataclasses.replace(base, **switches), target, tolerance) if switches
                          else base)
        if sparsity:
            variant.callbacks = sparse_callbacks(sparsity)
        variants.append(variant)
    return variants


@torch.no_grad()
def inference_tokens_per_s(model: torch.nn.Module, data, batch_size: int, device: torch.device,
                           repeats: int = 5) -> float:
    """Forward-only throughput (eval mode, no grad) on one validation batch, in input positions per second."""
    model.eval()
    x, _ = data.get_batch("val", batch_size, model.config.block_size, generator=torch.Generator().manual_seed(0),
                          device=device)
    model(x)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        model(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return repeats * x.shape[0] * x.shape[1] / (time.perf_counter() - t0)


class GridRunError(RuntimeError):
    """Some runs of a grid crashed (not diverged: a diverged run is a result). Raised after every other run
    finished; ``results`` holds all of them, the crashed ones as ``status == "failed"`` rows with their error."""

    def __init__(self, results: pd.DataFrame, crashed: list[tuple[str, int, BaseException]]):
        self.results, self.crashed = results, crashed
        super().__init__(f"{len(crashed)} run(s) crashed: " + "; ".join(
            f"{name} seed {seed}: {type(exc).__name__}: {exc}" for name, seed, exc in crashed)
            + " (the finished runs are in this error's .results)")


def run_grid(variants: Sequence[Variant], seeds: Sequence[int], data, train_config: TrainConfig,
             model_factory: Callable[[ResonanceConfig], torch.nn.Module] | None = None,
             return_models: bool = False):
    """Train every variant with every seed; one row per (variant, seed, eval step).

    ``model_factory(config)`` builds each model; by default ``ResonanceLM(config, vocab=<the data's
    tokenizer vocabulary, if it has one>)``.

    Columns: variant, seed, step, the trainer's metrics, params, infer_tokens_per_s, device, commit, status
    (``ok`` / ``failed``) and error. A run that diverges (``NonFiniteLossError``) is a result: it becomes one
    ``failed`` row with NaN metrics and its error, and the grid goes on. A run that crashes is recorded the same
    way, and once every other run has finished a ``GridRunError`` carrying all the rows is raised.
    With ``return_models=True`` also returns ``{(variant, seed): trained model}`` (moved to the CPU).
    """
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique, got {names}")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    if model_factory is None:
        vocab = getattr(getattr(data, "tokenizer", None), "itos", None)
        model_factory = lambda config: ResonanceLM(config, vocab=vocab)  # noqa: E731
    device, commit, frames, models, crashed = resolve_device(train_config.device), git_commit(), [], {}, []
    for variant in variants:
        for seed in seeds:
            torch.manual_seed(seed)
            try:
                model = model_factory(variant.config)
                cfg = dataclasses.replace(train_config, seed=seed, **variant.train_overrides)
                history = train(model, data, cfg, callbacks=list(variant.callbacks(model, cfg)))
            except Exception as exc:  # noqa: BLE001 - recorded with the run; crashes are raised below
                if not isinstance(exc, NonFiniteLossError):
                    crashed.append((variant.name, seed, exc))
                frames.append(pd.DataFrame([{"variant": variant.name, "seed": seed,
                                             "step": getattr(exc, "step", float("nan")), "val_loss": float("nan"),
                                             "device": device_name(device), "commit": commit, "status": "failed",
                                             "error": f"{type(exc).__name__}: {exc}"}]))
                continue
            history.insert(0, "seed", seed)
            history.insert(0, "variant", variant.name)
            history["params"] = count_params(model)
            history["nonzero_params"] = sum(int((p != 0).sum()) for p in model.parameters())
            history["infer_tokens_per_s"] = inference_tokens_per_s(model, data, cfg.batch_size, device)
            history["device"] = device_name(device)
            history["commit"] = commit
            history["status"], history["error"] = "ok", ""
            frames.append(history)
            if return_models:
                models[variant.name, seed] = model.cpu()
    df = pd.concat(frames, ignore_index=True)
    if crashed:
        raise GridRunError(df, crashed) from crashed[0][2]
    return (df, models) if return_models else df


def block_grad_norms(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """‖∇_θ L‖₂ over each block's parameters for one batch (the model's gradients are overwritten)."""
    model.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    return [torch.sqrt(sum(p.grad.square().sum() for p in b.parameters() if p.grad is not None)).item()
            for b in model.blocks]


def failed_runs(final: pd.DataFrame, metric: str) -> pd.Series:
    """Which final rows are failed runs: marked ``failed`` by ``run_grid``, or with a non-finite ``metric``."""
    failed = ~np.isfinite(pd.to_numeric(final[metric], errors="coerce").to_numpy(dtype=float))
    if "status" in final:
        failed |= final["status"].eq("failed").to_numpy()
    return pd.Series(failed, index=final.index)


def paired_differences(runs: pd.DataFrame, arm: str, baseline: str = "baseline", metric: str = "val_loss"
                       ) -> tuple[list[float], int]:
    """arm − baseline of ``metric`` at each run's last evaluation, one per seed that both finished (in seed
    order), and the number of seeds left out because a run of either failed."""
    for name in (arm, baseline):
        if name not in set(runs["variant"]):
            raise ValueError(f"variant {name!r} is not in the runs; variants: {sorted(set(runs['variant']))}")
    steps = runs["step"].fillna(-1)
    final = runs[steps == steps.groupby([runs["variant"], runs["seed"]]).transform("max")]
    final = final.assign(_failed=failed_runs(final, metric))
    by_seed = {name: final[final["variant"] == name].set_index("seed") for name in (arm, baseline)}
    seeds = sorted(set(by_seed[arm].index) | set(by_seed[baseline].index))
    ok = [s for s in seeds if all(s in t.index and not t.loc[s, "_failed"] for t in by_seed.values())]
    differences = [float(by_seed[arm].loc[s, metric]) - float(by_seed[baseline].loc[s, metric]) for s in ok]
    return differences, len(seeds) - len(ok)


def summarize(df: pd.DataFrame, baseline: str | None = "baseline", metric: str = "val_loss",
              confidence: float = 0.95, higher_is_better: bool = False) -> pd.DataFrame:
    """Final-step ``metric`` per variant: mean, interval, n, and the seed-paired difference to baseline
    with its interval and a verdict (``higher_is_better`` says which direction is an improvement).

    Failed runs (diverged, crashed, non-finite metric) are not seeds of the statistics and are never dropped
    silently: ``n_seeds`` counts the finished ones, ``n_failed`` and ``failed_seeds`` the others, ``n_paired``
    the seeds finished by both the variant and the baseline, and a verdict says how many seeds failed."""
    steps = df["step"].fillna(-1)  # a crashed run's one row has no step
    final = df[steps == steps.groupby([df["variant"], df["seed"]]).transform("max")]
    final = final.assign(_failed=failed_runs(final, metric))
    if baseline is not None and baseline not in set(final["variant"]):
        raise ValueError(f"baseline={baseline!r} is not a variant; variants: {sorted(set(final['variant']))}")
    finished = final[~final["_failed"]]
    base = finished[finished["variant"] == baseline].set_index("seed")[metric] if baseline else None
    rows = []
    for name, group in final.groupby("variant", sort=False):
        ok, failed = group[~group["_failed"]], group[group["_failed"]]
        mean, lo, hi = t_interval(ok[metric].astype(float), confidence)
        row = {"variant": name, "n_seeds": len(ok), f"{metric}_mean": mean, "ci_low": lo, "ci_high": hi,
               "n_failed": len(failed), "failed_seeds": " ".join(str(s) for s in failed["seed"])}
        every_eval = df[df["variant"] == name]  # throughput averaged over the whole run, not the last interval
        for col in ("params", "tokens_per_s", "infer_tokens_per_s"):
            if col in df:
                row[col] = every_eval[col].mean()
        if base is not None:
            paired = (ok.set_index("seed")[metric].astype(float) - base).dropna()  # seeds finished by both
            d_mean, d_lo, d_hi = t_interval(paired, confidence)
            said = "baseline" if name == baseline else verdict(d_lo, d_hi, higher_is_better)
            if len(failed):
                said += f" ({len(failed)} of {len(group)} seeds failed)"
            row.update({"n_paired": len(paired), "delta_mean": d_mean, "delta_ci_low": d_lo,
                        "delta_ci_high": d_hi, "verdict": said})
            if "tokens_per_s" in df:
                row["throughput_vs_baseline"] = row["tokens_per_s"] / df.loc[
                    df["variant"] == baseline, "tokens_per_s"].mean()
        rows.append(row)
    return pd.DataFrame(rows)
