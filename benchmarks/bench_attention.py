"""Forward + backward time and peak memory of plain SDPA, the fast phase form and the explicit S×S phase
form over sequence lengths.

    python -m benchmarks.bench_attention [--seq-lens 256 1024 4096 8192] [--device auto]

The forms are timed interleaved (round after round, every form in turn; the median round is reported). Peak
memory is measured on CUDA (``torch.cuda.max_memory_allocated``); on CPU only times are measured,
beside the size of the S×S score tensor the explicit form must build. Writes
benchmarks/results/bench_attention_<device>.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from benchmarks.results_io import write_result
from resonance_lib.attention import CausalSelfAttention
from resonance_lib.phase import PhaseResonanceAttention
from resonance_lib.train import resolve_device


def time_attention(seq_len: int, batch: int = 1, n_head: int = 8, head_dim: int = 64, n_frequencies: int = 32,
                   device: str = "cpu", repeats: int = 3, rounds: int = 5) -> list[dict]:
    """Forward + backward time (and peak CUDA memory on a GPU) of plain SDPA, the fast phase form and the
    explicit S×S phase form at one sequence length, timed interleaved: each of ``rounds`` rounds times every
    form in turn (``repeats`` calls each) and ``ms`` is the median over rounds, so a machine busier in one
    moment than the next weighs on every form alike. A form that runs out of memory is reported as such."""
    dim = n_head * head_dim
    torch.manual_seed(0)
    attn = PhaseResonanceAttention(dim, n_head).to(device)
    plain = lambda x, p: CausalSelfAttention.forward(attn, x)  # noqa: E731
    forms = {"plain_sdpa": plain, "phase_fast": lambda x, p: attn(x, phases=p),
             "phase_explicit": lambda x, p: attn.forward_reference(x, phases=p)}
    x = torch.randn(batch, seq_len, dim, device=device, requires_grad=True)
    phases = torch.randn(batch, seq_len, n_frequencies, device=device)
    cuda = device.startswith("cuda")
    rows, runnable = {}, []
    for name, form in forms.items():  # warm-up, and peak memory of one call on its own
        rows[name] = {"form": name, "seq_len": seq_len, "batch": batch, "n_head": n_head, "head_dim": head_dim,
                      "score_tensor_mib": (batch * n_head * seq_len**2 * 4 / 2**20) if name == "phase_explicit" else 0.0}
        try:
            form(x, phases).sum().backward()
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                form(x, phases).sum().backward()
                torch.cuda.synchronize()
                rows[name]["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
            runnable.append(name)
        except torch.OutOfMemoryError:
            rows[name]["ms"], rows[name]["error"] = float("nan"), "out of memory"
            if cuda:
                torch.cuda.empty_cache()
    times = {name: [] for name in runnable}
    for _ in range(rounds):
        for name in runnable:
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(repeats):
                forms[name](x, phases).sum().backward()
            if cuda:
                torch.cuda.synchronize()
            times[name].append(1000 * (time.perf_counter() - start) / repeats)
    for name in runnable:
        rows[name]["ms"] = statistics.median(times[name])
        rows[name]["ms_rounds"] = [round(t, 3) for t in times[name]]
    return list(rows.values())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-lens", type=int, nargs="+", default=[256, 1024, 4096, 8192])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the median is reported)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    rows = []
    for seq_len in args.seq_lens:
        for row in time_attention(seq_len, batch=args.batch, device=str(device), rounds=args.rounds):
            rows.append(row)
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    plain = {r["seq_len"]: r["ms"] for r in rows if r["form"] == "plain_sdpa"}
    for r in rows:
        r["time_vs_plain"] = r["ms"] / plain[r["seq_len"]]
    write_result("bench_attention", device, {"timing": f"interleaved rounds, median of {args.rounds}", "results": rows},
                 args.out, f"bench_attention_{device.type}.json")


if __name__ == "__main__":
    main()
