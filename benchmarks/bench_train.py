"""Training throughput (tokens/s) of the baseline and its variants on the current device.

    python -m benchmarks.bench_train                      # baby config on CPU, shakespeare_char on CUDA
    python -m benchmarks.bench_train --size gpt --compile --steps 200

Measured through the one trainer (`resonance_lib.train.train`), whose tokens/s counts forward, backward
and optimizer time and excludes evaluation. Random tokens stand in for text: throughput does not depend
on what the tokens say (nor on which phases a phonetic initialisation gives them). Results are printed and written as JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from pathlib import Path

import torch

from benchmarks.results_io import write_result
from resonance_lib.data import CharTokenizer, TokenData
from resonance_lib.experiments import SWITCHES
from resonance_lib.model import ResonanceConfig, ResonanceLM, count_params
from resonance_lib.train import TrainConfig, resolve_device, train

SIZES = {
    "baby": (dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0), 12),
    "gpt": (dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2), 64),
}
VARIANTS: dict[str, dict] = {"baseline": {}, **SWITCHES}  # unmatched sizes: this measures cost per step


def measure(config: ResonanceConfig, batch_size: int, steps: int, device: str, compile: bool
            ) -> tuple[float, int]:
    vocab = [f"w{i}" for i in range(config.vocab_size)]  # word-like names: phonetic init accepts them
    tokens = torch.randint(config.vocab_size, (200_000,), generator=torch.Generator().manual_seed(0))
    data = TokenData(tokens, tokens, CharTokenizer(vocab))
    torch.manual_seed(0)
    model = ResonanceLM(config, vocab=vocab)
    # two eval points (step 0 and the end); warm-up steps are the first interval's, not counted below
    warmup = max(5, steps // 5)
    cfg = TrainConfig(max_iters=warmup + steps, eval_interval=warmup, batch_size=batch_size, eval_iters=1,
                      device=device, compile=compile, progress=False, warmup_iters=0)
    history = train(model, data, cfg)
    timed = history[history["step"] > warmup]
    return float(timed["tokens_per_s"].mean()), count_params(model)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), help="default: gpt on CUDA, baby on CPU")
    parser.add_argument("--variants", nargs="*", default=sorted(VARIANTS), help=f"of {sorted(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=100)
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
    rows = []
    for name in args.variants:
        config = dataclasses.replace(ResonanceConfig(vocab_size=65, **shape), **VARIANTS[name])
        t0 = time.perf_counter()
        tokens_per_s, params = measure(config, batch_size, args.steps, str(device), args.compile)
        rows.append({"variant": name, "params": params, "tokens_per_s": tokens_per_s,
                     "wall_s": time.perf_counter() - t0})
    base = next((r["tokens_per_s"] for r in rows if r["variant"] == "baseline"), None)
    for r in rows:
        r["relative_to_baseline"] = r["tokens_per_s"] / base if base else None
        print(f"{r['variant']:>16s}  {r['params']:>10,d} params  {r['tokens_per_s']:>12,.0f} tokens/s"
              + (f"  {r['relative_to_baseline']:.2f}x baseline" if base else ""))
    body = {"size": size, "batch_size": batch_size, "steps": args.steps, "compile": args.compile,
            "autocast_bf16": device.type == "cuda", "python": platform.python_version(), "results": rows}
    write_result("bench_train", device, body, args.out,
                 f"bench_train_{device.type}_{size}{'_compile' if args.compile else ''}.json")


if __name__ == "__main__":
    main()
