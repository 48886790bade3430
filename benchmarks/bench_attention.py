"""Forward + backward time and peak memory of plain SDPA, the fast phase form and the explicit S×S phase
form over sequence lengths.

    python -m benchmarks.bench_attention [--seq-lens 256 1024 4096 8192] [--device auto]

Peak memory is measured on CUDA (``torch.cuda.max_memory_allocated``); on CPU only times are measured,
beside the size of the S×S score tensor the explicit form must build. Writes
benchmarks/results/bench_attention_<device>.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from benchmarks.results_io import write_result
from resonance_lib.attention import CausalSelfAttention
from resonance_lib.phase import PhaseResonanceAttention
from resonance_lib.train import resolve_device


def time_attention(seq_len: int, batch: int = 1, n_head: int = 8, head_dim: int = 64, n_frequencies: int = 32,
                   device: str = "cpu", repeats: int = 3) -> list[dict]:
    """Forward + backward time (and peak CUDA memory on a GPU) of plain SDPA, the fast phase form and the
    explicit S×S phase form at one sequence length; a form that runs out of memory is reported as such."""
    dim = n_head * head_dim
    torch.manual_seed(0)
    attn = PhaseResonanceAttention(dim, n_head).to(device)
    plain = lambda x, p: CausalSelfAttention.forward(attn, x)  # noqa: E731
    forms = {"plain_sdpa": plain, "phase_fast": lambda x, p: attn(x, phases=p),
             "phase_explicit": lambda x, p: attn.forward_reference(x, phases=p)}
    rows = []
    for name, form in forms.items():
        x = torch.randn(batch, seq_len, dim, device=device, requires_grad=True)
        phases = torch.randn(batch, seq_len, n_frequencies, device=device)
        row = {"form": name, "seq_len": seq_len, "batch": batch, "n_head": n_head, "head_dim": head_dim}
        try:
            form(x, phases).sum().backward()  # warm-up
            if device.startswith("cuda"):
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            for _ in range(repeats):
                form(x, phases).sum().backward()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
                row["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
            row["ms"] = 1000 * (time.perf_counter() - start) / repeats
        except torch.OutOfMemoryError:
            row["ms"], row["error"] = float("nan"), "out of memory"
        row["score_tensor_mib"] = (batch * n_head * seq_len**2 * 4 / 2**20) if name == "phase_explicit" else 0.0
        rows.append(row)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-lens", type=int, nargs="+", default=[256, 1024, 4096, 8192])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    rows = []
    for seq_len in args.seq_lens:
        for row in time_attention(seq_len, batch=args.batch, device=str(device)):
            rows.append(row)
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    plain = {r["seq_len"]: r["ms"] for r in rows if r["form"] == "plain_sdpa"}
    for r in rows:
        r["time_vs_plain"] = r["ms"] / plain[r["seq_len"]]
    write_result("bench_attention", device, {"results": rows}, args.out, f"bench_attention_{device.type}.json")


if __name__ == "__main__":
    main()
