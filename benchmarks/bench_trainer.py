"""Our trainer against a nanoGPT-style training loop, the same baseline model in both, timed interleaved.

    python -m benchmarks.bench_trainer                        # baby config on CPU, shakespeare_char on CUDA
    python -m benchmarks.bench_trainer --size gpt --compile   # the GPU target: ratio ≥ 1.0

What a model costs is the same in both; what differs is the loop around it. The reference loop does what
nanoGPT's ``train.py`` does each iteration, written here from its description: set the learning rate
(linear warm-up, cosine decay), forward under autocast, draw the next batch (random offsets, pinned and
copied without blocking on a GPU) while the device works, backward (through a GradScaler for fp16), clip
the gradient norm, step AdamW (weight decay on every ≥2-D parameter, fused on a GPU), zero the gradients,
and read the loss back only every ``log_interval`` iterations. Our trainer (``resonance_lib.train.train``) runs
through ``compute.measure_throughput``. Each of ``--repeats`` rounds builds a fresh model for each loop, warms
it up and times ``--steps`` steps (waiting for the GPU at both ends); the ratio is the medians' ratio. Writes
benchmarks/results/bench_trainer_<device>_<size>[_compile].json.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import torch

from benchmarks.bench_train import SIZES
from benchmarks.results_io import write_result
from resonance_lib.compute import measure_throughput
from resonance_lib.data import CharTokenizer, TokenData
from resonance_lib.experiments import Variant
from resonance_lib.model import ResonanceConfig, ResonanceLM
from resonance_lib.provenance import git_commit
from resonance_lib.train import TrainConfig, mixed_precision, resolve_device


def nanogpt_lr(it: int, cfg: TrainConfig) -> float:
    """nanoGPT's schedule: linear warm-up to the peak, then cosine decay to ``min_lr`` over ``max_iters``."""
    if it < cfg.warmup_iters:
        return cfg.learning_rate * (it + 1) / (cfg.warmup_iters + 1)
    progress = min(1.0, (it - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters))
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - cfg.min_lr)


def nanogpt_loop_seconds(model: torch.nn.Module, tokens: torch.Tensor, cfg: TrainConfig, device: torch.device,
                         warmup: int, steps: int, log_interval: int = 10) -> float:
    """Train ``warmup + steps`` iterations the nanoGPT way; the seconds of the last ``steps``."""
    block, cuda = model.config.block_size, device.type == "cuda"
    generator = torch.Generator().manual_seed(cfg.seed)

    def get_batch():
        ix = torch.randint(len(tokens) - block - 1, (cfg.batch_size,), generator=generator)
        x = torch.stack([tokens[i:i + block] for i in ix.tolist()])
        y = torch.stack([tokens[i + 1:i + 1 + block] for i in ix.tolist()])
        if cuda:
            return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        return x, y

    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2),
                                  **({"fused": True} if cuda else {}))
    autocast, scaler = mixed_precision(cfg, device)
    forward = torch.compile(model) if cfg.compile else model
    model.train()
    x, y = get_batch()
    t0 = 0.0
    for it in range(warmup + steps):
        if it == warmup:
            if cuda:
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = nanogpt_lr(it, cfg)
        with autocast():
            _, loss = forward(x, y)
        x, y = get_batch()  # the next batch while the device works
        (scaler.scale(loss) if scaler else loss).backward()
        if cfg.grad_clip > 0:
            if scaler:
                scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if it % log_interval == 0:
            loss.item()  # nanoGPT's only host sync
    if cuda:
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), help="default: gpt on CUDA, baby on CPU")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per round")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (the medians are compared)")
    parser.add_argument("--threads", type=int, help="torch threads (default: 1 on CPU, unchanged on CUDA)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    size = args.size or ("gpt" if device.type == "cuda" else "baby")
    shape, batch_size = SIZES[size]
    threads = args.threads if args.threads is not None else (1 if device.type == "cpu" else None)
    if threads is not None:
        torch.set_num_threads(threads)
    load, commit = (os.getloadavg()[0] if hasattr(os, "getloadavg") else None), git_commit()
    config = ResonanceConfig(vocab_size=65, **shape)
    tokens = torch.randint(config.vocab_size, (200_000,), generator=torch.Generator().manual_seed(0))
    data = TokenData(tokens, tokens, CharTokenizer([f"w{i}" for i in range(config.vocab_size)]))
    warmup = max(5, args.steps // 5)
    cfg = TrainConfig(max_iters=warmup + args.steps, eval_interval=10**9, batch_size=batch_size, eval_iters=1,
                      device=str(device), compile=args.compile, progress=False, warmup_iters=0)
    ours, reference = [], []
    for _ in range(args.repeats):
        table = measure_throughput([Variant("baseline", config)], data, cfg, steps=args.steps, warmup=warmup,
                                   repeats=1, threads=threads)
        ours.append(float(table["tokens_per_s"].iloc[0]))
        torch.manual_seed(0)
        model = ResonanceLM(config).to(device)
        seconds = nanogpt_loop_seconds(model, tokens, cfg, device, warmup, args.steps)
        reference.append(args.steps * batch_size * config.block_size / seconds)
    ratio = statistics.median(ours) / statistics.median(reference)
    print(f"our trainer {statistics.median(ours):,.0f} tokens/s, nanoGPT-style loop "
          f"{statistics.median(reference):,.0f} tokens/s: {ratio:.3f}x")
    body = {"commit": commit, "size": size, "batch_size": batch_size, "steps": args.steps, "repeats": args.repeats,
            "compile": args.compile, "threads": threads, "load_average": None if load is None else round(load, 2),
            "timing": "interleaved rounds, median", "ours_tokens_per_s": ours, "nanogpt_loop_tokens_per_s": reference,
            "ratio": ratio}
    write_result("bench_trainer", device, body, args.out,
                 f"bench_trainer_{device.type}_{size}{'_compile' if args.compile else ''}.json")


if __name__ == "__main__":
    main()
