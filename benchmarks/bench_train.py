"""Training throughput (tokens/s) of the baseline and its variants on the current device, timed interleaved.

    python -m benchmarks.bench_train                      # baby config on CPU, shakespeare_char on CUDA
    python -m benchmarks.bench_train --size gpt --compile --steps 200
    python -m benchmarks.bench_train --variants delta_dv4 --reference   # fused vs plain forms, same run
    python -m benchmarks.bench_train --variants delta_dv4 write_dv4 --compiled   # fused vs compiled kernels
    python -m benchmarks.bench_train --variants --halting-epsilons 0.5 1.0 1.5   # cost vs halting iterations

Timed through ``resonance_lib.compute.measure_throughput``, the one interleaved timer the notebooks' equal-compute
comparisons use: every repeat trains each variant in turn through the one trainer (forward, backward and
optimizer; no evaluation) in this process, and the ratio is each variant's median tokens/s over the baseline's
median, so a machine that is busier in one minute than the next affects every arm alike. ``--reference`` adds,
for every arm with a fused fast form (the d_v > 1 delta state, halting attention's passes), the same arm on its
plain reference forms (``delta_fused=False``, ``halting_fused=False``): a before/after pair on the same device. ``--halting-epsilons`` adds halting-attention
arms at those thresholds, with the iterations per token and attention passes per sequence they use (one
forward at initialisation on the same tokens) and the target ratio 0.9 / mean iterations. FLOPs per token (``torch.utils.flop_counter``)
are recorded beside tokens/s. Random tokens stand in for text: throughput does not depend on what the tokens
say (nor on which phases a phonetic initialisation gives them). Results are printed and written as JSON to
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from pathlib import Path

import torch

from benchmarks.results_io import write_result
from resonance_lib.compute import flops_per_token, measure_throughput
from resonance_lib.data import CharTokenizer, TokenData
from resonance_lib.experiments import SWITCHES, Variant
from resonance_lib.halting import HaltingAttention
from resonance_lib.model import ResonanceConfig, ResonanceLM, count_params
from resonance_lib.provenance import git_commit
from resonance_lib.train import TrainConfig, resolve_device

SIZES = {
    "baby": (dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0), 12),
    "gpt": (dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2), 64),
    "tiny": (dict(n_layer=2, n_head=2, n_embd=32, block_size=32, dropout=0.0), 8),  # the benchmark's own tests
}
VARIANTS: dict[str, dict] = {"baseline": {}, **SWITCHES}  # unmatched sizes: this measures cost per step


def plain_forms(config: ResonanceConfig) -> dict:
    """The settings that put this config's fused fast forms on their plain reference forms: ``delta_fused``
    for a d×d_v state (d_v > 1), ``halting_fused`` for halting attention; empty when it has none."""
    changes = {}
    if config.has_matrix_state:
        changes["delta_fused"] = False
    if config.attention == "halting":
        changes["halting_fused"] = False
    return changes


def arms(names: list[str], shape: dict, halting_epsilons=(), reference: bool = False, compiled: bool = False
         ) -> list[Variant]:
    """The timed arms, the baseline first (the ratios' base): ``names`` of ``VARIANTS``, halting arms at
    ``halting_epsilons``; ``reference`` puts right after each arm with a fused form the same arm on its plain forms
    (``<name>_reference``), ``compiled`` right after each fused arm with a d×d_v state the same arm on
    ``torch.compile``'s kernels (``<name>_compiled``)."""
    variants = []
    for name in ["baseline", *(v for v in names if v != "baseline")]:
        config = dataclasses.replace(ResonanceConfig(vocab_size=65, **shape), **VARIANTS[name])
        variants.append(Variant(name, config))
    for epsilon in halting_epsilons:
        config = ResonanceConfig(vocab_size=65, **shape, attention="halting", halting_epsilon=epsilon)
        variants.append(Variant(f"halting_eps{epsilon:g}", config))
    if reference:
        variants = [w for v in variants for w in (v, *([Variant(f"{v.name}_reference", dataclasses.replace(
            v.config, **plain_forms(v.config)))] if plain_forms(v.config) else []))]
    if compiled:  # not the plain reference forms: delta_compiled replaces the fused forms
        variants = [w for v in variants for w in (v, *([Variant(f"{v.name}_compiled", dataclasses.replace(
            v.config, delta_compiled=True))] if v.config.has_matrix_state and v.config.delta_fused else []))]
    return variants


def measure(variants: list[Variant], batch_size: int, steps: int, repeats: int, device: str, compile: bool,
            threads: int | None) -> list[dict]:
    """One row per variant: params, FLOPs per token, median tokens/s over ``repeats`` interleaved rounds, and
    the median ratio to the first variant (the baseline), with every round's tokens/s."""
    vocab_size = variants[0].config.vocab_size
    vocab = [f"w{i}" for i in range(vocab_size)]  # word-like names: phonetic init accepts them
    tokens = torch.randint(vocab_size, (200_000,), generator=torch.Generator().manual_seed(0))
    data = TokenData(tokens, tokens, CharTokenizer(vocab))
    warmup = max(5, steps // 5)
    cfg = TrainConfig(max_iters=warmup + steps, eval_interval=10**9, batch_size=batch_size, eval_iters=1,
                      device=device, compile=compile, progress=False, warmup_iters=0)
    table = measure_throughput(variants, data, cfg, steps=steps, warmup=warmup, repeats=repeats, threads=threads,
                               model_factory=lambda config: ResonanceLM(config, vocab=vocab))
    rows = []
    for variant in variants:
        timed = table[table["variant"] == variant.name]
        model = ResonanceLM(variant.config, vocab=vocab)
        rows.append({"variant": variant.name, "params": count_params(model),
                     "flops_per_token": flops_per_token(model, data, batch_size),
                     "tokens_per_s": float(timed["tokens_per_s"].median()),
                     "relative_to_baseline": float(timed["ratio"].iloc[0]),
                     "tokens_per_s_rounds": [round(x, 1) for x in timed["tokens_per_s"]]})
        halting = [m for m in model.modules() if isinstance(m, HaltingAttention)]
        if halting:  # what the halting layers use on one training batch at initialisation
            x, _ = data.get_batch("train", batch_size, variant.config.block_size,
                                  generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                model(x)
            iterations = float(torch.stack([m.last_iterations.mean() for m in halting]).mean())
            rows[-1].update(mean_iterations=iterations, target_ratio=0.9 / iterations,
                            mean_sequence_passes=sum(m.sequence_passes / batch_size for m in halting) / len(halting))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), help="default: gpt on CUDA, baby on CPU")
    parser.add_argument("--variants", nargs="*", default=sorted(VARIANTS), help=f"of {sorted(VARIANTS)}")
    parser.add_argument("--reference", action="store_true",
                        help="also time each arm with a fused form on its plain reference forms (<name>_reference)")
    parser.add_argument("--compiled", action="store_true",
                        help="also time each arm with a d×d_v delta state on its compiled kernels (<name>_compiled, "
                             "delta_compiled=True; the model itself stays eager)")
    parser.add_argument("--halting-epsilons", nargs="*", type=float, default=[],
                        help="add halting-attention arms at these thresholds ε (halting_eps<ε>)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per round")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (the median is reported)")
    parser.add_argument("--threads", type=int, help="torch threads while timing (default: 1 on CPU, as the "
                        "grid's workers train; unchanged on CUDA)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/bench_train_<device>.json)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    size = args.size or ("gpt" if device.type == "cuda" else "baby")
    shape, batch_size = SIZES[size]
    unknown = set(args.variants) - VARIANTS.keys()
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; allowed: {sorted(VARIANTS)}")
    threads = args.threads if args.threads is not None else (1 if device.type == "cpu" else None)
    variants = arms(args.variants, shape, args.halting_epsilons, args.reference, args.compiled)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # other work on the machine, for the record
    commit = git_commit()  # the code as imported now, not as it may be when the timing ends
    t0 = time.perf_counter()
    rows = measure(variants, batch_size, args.steps, args.repeats, str(device), args.compile, threads)
    for r in rows:
        print(f"{r['variant']:>22s}  {r['params']:>10,d} params  {r['flops_per_token'] / 1e6:>8.2f} MFLOP/token  "
              f"{r['tokens_per_s']:>12,.0f} tokens/s  {r['relative_to_baseline']:.3f}x baseline"
              + (f"  {r['mean_iterations']:.2f} iterations, {r['mean_sequence_passes']:.2f} passes/sequence, "
                 f"target {r['target_ratio']:.3f}x" if "mean_iterations" in r else ""))
    body = {"commit": commit, "size": size, "batch_size": batch_size, "steps": args.steps, "repeats": args.repeats,
            "timing": "interleaved rounds, median", "threads": threads,
            "load_average": None if load is None else round(load, 2), "compile": args.compile,
            "autocast_bf16": device.type == "cuda", "python": platform.python_version(),
            "wall_s": round(time.perf_counter() - t0, 1), "results": rows}
    write_result("bench_train", device, body, args.out,
                 f"bench_train_{device.type}_{size}{'_compile' if args.compile else ''}.json")


if __name__ == "__main__":
    main()
