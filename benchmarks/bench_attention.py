"""Forward + backward time and peak memory of plain SDPA, the fast phase form and the explicit S×S phase
form over sequence lengths.

    python -m benchmarks.bench_attention [--seq-lens 256 1024 4096 8192] [--device auto]

Peak memory is measured on CUDA (``torch.cuda.max_memory_allocated``); on CPU only times are measured,
beside the size of the S×S score tensor the explicit form must build. Writes
benchmarks/results/bench_attention_<device>.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.results_io import write_result
from resonance_lib.phase import time_attention
from resonance_lib.train import resolve_device


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
