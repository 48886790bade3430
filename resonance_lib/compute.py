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
from .experiments import IMPLEMENTATION_FIELDS, RunSpec, Variant, code_version, run_key
from .model import ResonanceConfig, ResonanceLM
from .train import Callback, TrainConfig, train

SLOW = 0.8  # arms below this throughput ratio are also compared at equal compute
DEFAULT_IMPLEMENTATION = {f.name: f.default for f in dataclasses.fields(ResonanceConfig) if f.name in IMPLEMENTATION_FIELDS}


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
    variant's run key and the timing settings, and by the arms' fused, compiled or plain forms where one departs
    from the defaults) and read back instead of timing again. The equal-compute copies'
    steps come from these ratios, so a profile that resumes in a later session must reuse the same measurement:
    timing again would give slightly different steps, and new runs. And an arm that another timing kept there
    already measured beside the same baseline — same settings, the arm the same but for its learning rate, which
    does not change what a step costs (``_timing_identity``) — is taken from that timing instead of timed again, so
    notebooks that time the same arm use one measurement (one ratio, the same equal-compute runs); only the other
    arms are timed, beside the baseline. ``timing`` names the interleaved timing each row comes from, and each
    row's ``ratio`` is over the baseline of that timing."""
    check_int("steps", steps)
    check_int("warmup", warmup, low=0)
    check_int("repeats", repeats)
    factory = model_factory or _default_factory(data)
    if cache_dir is None:
        return _time_interleaved(variants, data, train_config, steps, warmup, repeats, threads, factory,
                                 seed).assign(timing="this call")
    # a timing measures the implementation: keyed by this library version (or one whose timed step it runs
    # unchanged, timing_version), never by an earlier one reviewed as training the same runs (results_version)
    code = timing_version()
    keys = [run_key(RunSpec(v, seed, data, train_config, factory), code) for v in variants]
    settings = {"steps": steps, "warmup": warmup, "repeats": repeats, "threads": threads}
    # run keys leave the implementation out (one result), a timing must not (not one speed); named only where an
    # arm departs from the default forms, so timings kept before this was keyed keep their keys
    how = [{field: getattr(v.config, field) for field in IMPLEMENTATION_FIELDS} for v in variants]
    departs = any(h != DEFAULT_IMPLEMENTATION for h in how)
    digest = hashlib.sha256(json.dumps({"runs": keys, **settings, **({"how": how} if departs else {})}).encode()
                            ).hexdigest()[:24]
    cached = Path(cache_dir) / f"throughput-{digest}.json"
    identities = {v.name: _timing_identity(v, seed, data, train_config, factory, code) for v in variants}
    if cached.exists():
        if not _arms_index(cached).exists():  # a timing kept before arms were shared: index it now
            _write_atomically(_arms_index(cached), json.dumps({"settings": settings, "arms": identities}))
        return _with_timing(pd.read_json(cached, orient="table"), cached)
    reused = _timed_elsewhere(Path(cache_dir), settings, [v.name for v in variants], identities)
    baseline = variants[0].name
    todo = [variants[0], *(v for v in variants[1:] if v.name not in reused)]
    if len(todo) > 1 or len(reused) == 0:
        reused[baseline] = _time_interleaved(todo, data, train_config, steps, warmup, repeats, threads, factory,
                                             seed).assign(timing=cached.stem)
    else:  # every arm was timed elsewhere: the baseline's rows from the timing that holds the first of them
        source = reused[variants[1].name]["timing"].iloc[0]
        reused[baseline] = reused.pop(f"{baseline} in {source}")
    order = {v.name: i for i, v in enumerate(variants)}
    table = pd.concat([rows for name, rows in reused.items() if name in order], ignore_index=True)
    table = table.sort_values(["repeat", "variant"], key=lambda c: c.map(order) if c.name == "variant" else c,
                              kind="stable", ignore_index=True)
    _write_atomically(cached, table.to_json(orient="table", index=False))
    _write_atomically(_arms_index(cached), json.dumps({"settings": settings, "arms": identities}))
    return pd.read_json(cached, orient="table")  # as it reads back later, to the last digit (10 are kept)


def _timing_identity(variant: Variant, seed: int, data, train_config: TrainConfig, factory, code: str) -> str:
    """An arm as a timing sees it: its run key without the learning rate (``learning_rate``, ``min_lr``), which
    changes what a step computes but not what it costs, so an arm timed after tuning serves the untuned arm; and
    with the implementation fields the run key leaves out (fused, compiled or plain forms: one result, not one
    speed)."""
    overrides = {k: v for k, v in variant.train_overrides.items() if k not in ("learning_rate", "min_lr")}
    default = TrainConfig()
    config = dataclasses.replace(train_config, learning_rate=default.learning_rate, min_lr=default.min_lr)
    key = run_key(RunSpec(dataclasses.replace(variant, train_overrides=overrides), seed, data, config, factory), code)
    how = {field: getattr(variant.config, field) for field in IMPLEMENTATION_FIELDS}
    return hashlib.sha256(json.dumps({"run": key, "how": how}, sort_keys=True).encode()).hexdigest()


def _arms_index(timing: Path) -> Path:
    """The file beside a kept timing (``throughput-<key>.json``) that lists its settings and its arms' timing
    identities: ``timed-arms-<key>.json``."""
    return timing.with_name(f"timed-arms-{timing.stem.removeprefix('throughput-')}.json")


def _with_timing(table: pd.DataFrame, timing: Path) -> pd.DataFrame:
    """A kept table with its ``timing`` column (tables kept before the column existed came from one timing)."""
    return table if "timing" in table else table.assign(timing=timing.stem)


def _timed_elsewhere(cache_dir: Path, settings: dict, names: list[str], identities: dict[str, str]
                     ) -> dict[str, pd.DataFrame]:
    """The rows of each arm after the first (the baseline) that a kept timing with these settings measured beside
    the same baseline, from the first such timing by file name; under ``"<baseline> in <timing>"``, the baseline's
    rows of each timing used."""
    baseline, found = names[0], {}
    for index in sorted(cache_dir.glob("timed-arms-*.json")):
        try:
            meta = json.loads(index.read_text(encoding="utf-8"))
            held = {identity: name for name, identity in meta["arms"].items()}
        except (ValueError, KeyError, AttributeError) as error:
            raise ValueError(f"{index} is not a timing index ({error!r}); delete it and its timing to time "
                             "those arms again") from error
        if meta["settings"] != settings or identities[baseline] not in held:
            continue
        wanted = {name: held[identities[name]] for name in names[1:]
                  if name not in found and identities[name] in held}
        if not wanted:
            continue
        timing = index.with_name(f"throughput-{index.name.removeprefix('timed-arms-')}")
        table = _with_timing(pd.read_json(timing, orient="table"), timing)
        for name, theirs in wanted.items():
            found[name] = table[table["variant"] == theirs].assign(variant=name)
        found[f"{baseline} in {timing.stem}"] = table[table["variant"] == held[identities[baseline]]].assign(
            variant=baseline)
    return found


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(text, encoding="utf-8")
    os.replace(scratch, path)


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
