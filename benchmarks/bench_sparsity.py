"""What 73% sparsity buys: compressed checkpoint bytes against dense, and (CUDA, compute capability
>= 8.0) the speed of a 2:4 semi-structured matmul against dense.

    python -m benchmarks.bench_sparsity [--size baby|gpt] [--target 0.73]

Writes benchmarks/results/bench_sparsity_<device>.json.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import torch

from benchmarks.results_io import write_result
from resonance_lib.model import ResonanceConfig, ResonanceLM
from resonance_lib.sparsity import STRATEGIES, export_compressed, sparsify
from resonance_lib.train import resolve_device

SIZES = {"baby": dict(n_layer=4, n_head=4, n_embd=128, block_size=64),
         "gpt": dict(n_layer=6, n_head=6, n_embd=384, block_size=256)}


def checkpoint_bytes(size: str, target: float, strategy: str) -> dict:
    torch.manual_seed(0)
    model = ResonanceLM(ResonanceConfig(vocab_size=65, **SIZES[size]))
    dense = io.BytesIO()
    torch.save(model.state_dict(), dense)
    callback = sparsify(model, strategy=strategy, target_sparsity=target, end_step=0)
    callback.sparsifier.update(1)  # one mask update reaches the target (static/set/rigl start there)
    compressed = export_compressed(model)
    return {"size": size, "strategy": strategy, "target_sparsity": target,
            "measured_sparsity": callback.sparsifier.sparsity(), "dense_bytes": dense.tell(),
            "compressed_bytes": len(compressed), "ratio": len(compressed) / dense.tell()}


def semi_structured_benchmark(rows: int = 4096, cols: int = 4096, batch: int = 4096, repeats: int = 50) -> dict:
    """Time x @ Wᵀ with W dense vs W pruned 2:4 and stored semi-structured (fp16, CUDA with compute
    capability >= 8.0). Returns the timings, or ``{"supported": False, "reason": ...}`` where it cannot run."""
    if not torch.cuda.is_available():
        return {"supported": False, "reason": "no CUDA device"}
    if torch.cuda.get_device_capability() < (8, 0):
        return {"supported": False, "reason": f"compute capability {torch.cuda.get_device_capability()} < (8, 0)"}
    from torch.sparse import to_sparse_semi_structured

    weight = torch.randn(rows, cols, device="cuda", dtype=torch.float16)
    keep = torch.topk(weight.abs().view(rows, cols // 4, 4), 2, dim=-1).indices  # 2 of every 4
    mask = torch.zeros_like(weight, dtype=torch.bool).view(rows, cols // 4, 4).scatter_(-1, keep, True)
    pruned = weight * mask.view(rows, cols)
    sparse = to_sparse_semi_structured(pruned)
    x = torch.randn(batch, cols, device="cuda", dtype=torch.float16)

    def timed(w):
        for _ in range(5):
            torch.nn.functional.linear(x, w)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeats):
            torch.nn.functional.linear(x, w)
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / repeats

    dense_ms, sparse_ms = timed(pruned), timed(sparse)
    error = (torch.nn.functional.linear(x, sparse) - torch.nn.functional.linear(x, pruned)).abs().max().item()
    return {"supported": True, "shape": [batch, cols, rows], "dense_ms": dense_ms, "semi_structured_ms": sparse_ms,
            "speedup": dense_ms / sparse_ms, "max_abs_error": error, "device": torch.cuda.get_device_name()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="baby")
    parser.add_argument("--target", type=float, default=0.73)
    parser.add_argument("--strategy", choices=STRATEGIES, default="resonance")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    device = resolve_device("auto")
    result = {"checkpoint": checkpoint_bytes(args.size, args.target, args.strategy),
              "semi_structured_2_4": semi_structured_benchmark()}
    c = result["checkpoint"]
    print(f"{args.size} at sparsity {c['measured_sparsity']:.4f}: dense {c['dense_bytes']:,} B, "
          f"compressed {c['compressed_bytes']:,} B = {c['ratio']:.3f}x")
    print("2:4 semi-structured:", result["semi_structured_2_4"])
    write_result("bench_sparsity", device, result, args.out, f"bench_sparsity_{device.type}.json")


if __name__ == "__main__":
    main()
