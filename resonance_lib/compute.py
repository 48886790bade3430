"""What an arm costs, and the comparison at equal compute.

An arm that trains more slowly than the baseline gets more compute per step, so "better at equal steps" may
only mean "given more compute". The protocol therefore also compares every arm whose training throughput is
below 0.8× the baseline's at *equal compute*: it trains for the steps that fit in the baseline's training time,

    steps_arm = round(steps_baseline · throughput_arm / throughput_baseline),

with its own full learning-rate schedule (warm-up and cosine decay over its own steps).

* ``measure_throughput`` times training steps of every arm interleaved in this process (arm after arm, repeat
  after repeat, one thread by default as the grid's workers train), the trainer's own step with the arm's
  callbacks included (a sparsifier's mask updates cost time too);
* ``flops_per_token`` counts the floating-point operations of one training step (forward and backward) with
  ``torch.utils.flop_counter`` and divides by the tokens of the batch;
* ``equal_compute_variants`` turns the measured ratios into the arms' equal-compute copies;
* ``halts_every_token_at_first_pass`` tells which halting arms run one attention pass whatever they learn, and so
  train as the one-pass fixed-depth arm does, bit for bit (no need to train them twice).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from .checks import check_float, check_int
from .components import ATTENTIONS
from .equivalent_code import TIMING_EQUIVALENT_CODE
from .experiments import RunSpec, Variant, code_version, run_key
from .model import ResonanceConfig, ResonanceLM
from .train import Callback, TrainConfig, train

SLOW = 0.8  # arms below this throughput ratio are also compared at equal compute


class _TimingDone(Exception):
    """Raised by the stopwatch to end a timing run."""


class _Stopwatch(Callback):
    """Times ``steps`` optimizer steps after ``warmup`` steps, then stops the run. On a GPU it waits for the
    queued kernels at both ends (the trainer syncs only every ``sync_interval`` steps), so the time is the
    device's, not how fast the host could queue the steps."""

    def __init__(self, warmup: int, steps: int):
        self.warmup, self.steps, self.t0, self.seconds = warmup, steps, 0.0, float("nan")

    @staticmethod
    def _now(state) -> float:
        if state.device.type == "cuda":
            torch.cuda.synchronize(state.device)
        return time.perf_counter()

    def on_step_end(self, state) -> None:
        if state.step == self.warmup:
            self.t0 = self._now(state)
        elif state.step == self.warmup + self.steps:
            self.seconds = self._now(state) - self.t0
            raise _TimingDone


def _default_factory(data):
    vocab = getattr(getattr(data, "tokenizer", None), "itos", None)
    return lambda config: ResonanceLM(config, vocab=vocab)


def timing_version(code: str | None = None) -> str:
    """The library version a throughput timing is keyed by: ``code`` (default ``experiments.code_version()``),
    or the earlier version whose timed work — the trainer's step loop, the models, the callbacks — it runs
    unchanged (``equivalent_code.TIMING_EQUIVALENT_CODE``)."""
    code = code or code_version()
    return TIMING_EQUIVALENT_CODE.get(code, code)


def measure_throughput(variants: Sequence[Variant], data, train_config: TrainConfig, steps: int = 10,
                       warmup: int = 2, repeats: int = 3, threads: int | None = 1, model_factory=None,
                       seed: int = 0, cache_dir=None) -> pd.DataFrame:
    """Training steps per second of each variant, timed interleaved in this process: for each repeat, every
    variant in turn trains ``warmup`` + ``steps`` steps of its real schedule (``train_config`` with its
    overrides, callbacks included) and the last ``steps`` are timed. Returns one row per (variant, repeat) with
    steps/s and tokens/s, and ``ratio``: the variant's median tokens/s over the baseline's (the first variant).

    ``cache_dir``: the table is kept there (``throughput-<key>.json``, keyed like the grid's runs by every
    variant's run key and the timing settings) and read back instead of timing again. The equal-compute copies'
    steps come from these ratios, so a profile that resumes in a later session must reuse the same measurement:
    timing again would give slightly different steps, and new runs."""
    check_int("steps", steps)
    check_int("warmup", warmup, low=0)
    check_int("repeats", repeats)
    factory = model_factory or _default_factory(data)
    cached = None
    if cache_dir is not None:
        # a timing measures the implementation: keyed by this library version (or one whose timed step it runs
        # unchanged, timing_version), never by an earlier one reviewed as training the same runs (results_version)
        code = timing_version()
        keys = [run_key(RunSpec(v, seed, data, train_config, factory), code) for v in variants]
        settings = json.dumps({"runs": keys, "steps": steps, "warmup": warmup, "repeats": repeats,
                               "threads": threads})
        cached = Path(cache_dir) / f"throughput-{hashlib.sha256(settings.encode()).hexdigest()[:24]}.json"
        if cached.exists():
            return pd.read_json(cached, orient="table")
    table = _time_interleaved(variants, data, train_config, steps, warmup, repeats, threads, factory, seed)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        scratch = cached.with_name(f".{cached.name}.tmp")
        table.to_json(scratch, orient="table", index=False)
        os.replace(scratch, cached)
    return table


def _time_interleaved(variants, data, train_config, steps, warmup, repeats, threads, factory, seed
                      ) -> pd.DataFrame:
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    rows = []
    try:
        for repeat in range(repeats):
            for variant in variants:
                spec = RunSpec(variant, seed, data, train_config, factory)
                cfg = dataclasses.replace(spec.config, eval_interval=10**9, eval_iters=1, checkpoint_path=None,
                                          progress=False)
                torch.manual_seed(seed)
                model = factory(variant.config)
                stopwatch = _Stopwatch(warmup, steps)
                try:
                    train(model, data, cfg, callbacks=[*variant.callbacks(model, cfg), stopwatch])
                except _TimingDone:
                    pass
                if stopwatch.seconds != stopwatch.seconds:  # NaN: the run ended before the timed steps
                    raise ValueError(f"steps={steps} + warmup={warmup} exceed max_iters={cfg.max_iters} of "
                                     f"{variant.name!r}")
                tokens = steps * cfg.batch_size * variant.config.block_size
                rows.append({"variant": variant.name, "repeat": repeat, "seconds": stopwatch.seconds,
                             "steps_per_s": steps / stopwatch.seconds, "tokens_per_s": tokens / stopwatch.seconds,
                             "threads": torch.get_num_threads()})
    finally:
        torch.set_num_threads(before)
    table = pd.DataFrame(rows)
    median = table.groupby("variant", sort=False)["tokens_per_s"].median()
    table["ratio"] = table["variant"].map(median / median.iloc[0])
    return table


def flops_per_token(model: torch.nn.Module, data, batch_size: int, block_size: int | None = None) -> float:
    """Floating-point operations of one training step (forward + backward, ``torch.utils.flop_counter``) per
    token of the batch. Operations the counter does not know (e.g. elementwise ones) are not counted, the same
    for every arm; the step's optimizer update is not counted."""
    block = block_size or model.config.block_size
    x, y = data.get_batch("train", batch_size, block, generator=torch.Generator().manual_seed(0))
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)
    was_training = model.training
    model.train()
    with FlopCounterMode(display=False) as counter:
        _, loss = model(x, y)
        loss.backward()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return counter.get_total_flops() / x.numel()


def equal_compute_variants(variants: Sequence[Variant], ratios: dict[str, float], max_iters: int,
                           slow: float = SLOW) -> list[Variant]:
    """The equal-compute copy (``<name>@compute``) of each variant whose throughput ratio is below ``slow``:
    it trains ``round(max_iters · ratio)`` steps with its own full schedule (``lr_decay_iters`` = its steps,
    evaluations at the same fraction of the run)."""
    check_float("slow", slow, 0.0, 1.0, low_open=True)
    check_int("max_iters", max_iters)
    copies = []
    for variant in variants:
        ratio = ratios.get(variant.name)
        if ratio is None or not ratio < slow:
            continue
        steps = max(1, round(max_iters * ratio))
        overrides = {**variant.train_overrides, "max_iters": steps, "lr_decay_iters": steps}
        copies.append(dataclasses.replace(variant, name=f"{variant.name}@compute", train_overrides=overrides))
    return copies


HALTED = 1.0 - 1e-3  # a token has halted once its summed halting probability reaches this (HaltingAttention.forward)


def halts_every_token_at_first_pass(config: ResonanceConfig) -> bool:
    """Whether a halting-attention config stops every token at its first pass whatever its weights and input, and
    so computes — trains included — what ``halting_max_iters=1`` computes, bit for bit (tested).

    The first pass halts token i when p_i = σ((ε − H_i)/τ) ≥ 1 − 10⁻³, and normalised entropy H_i ≤ 1, so every
    token halts there exactly when ε − 1 ≥ τ·ln 999 (plus 10⁻⁴ for the rounding of H); with τ = 0.05, ε ≥ 1.35.
    A config with ``halting_max_iters=1`` runs one pass by construction."""
    if config.attention != "halting":
        raise ValueError(f"attention={config.attention!r} has no halting: halts_every_token_at_first_pass needs "
                         "attention='halting'")
    layer = ATTENTIONS["halting"](config)  # the layer the model builds: its ε and τ
    return layer.max_iters == 1 or layer.epsilon - (1.0 + 1e-4) >= layer.temperature * math.log(HALTED / (1 - HALTED))
