"""Forward + backward time and peak memory of plain SDPA, the fast phase form and the explicit S×S phase
form over sequence lengths.

    python -m benchmarks.bench_attention [--seq-lens 256 1024 4096 8192] [--device auto]

Peak memory is measured on CUDA (``torch.cuda.max_memory_allocated``); on CPU only times are measured,
beside the size of the S×S score tensor the explicit form must build. Writes
benchmarks/results/bench_attention_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from resonance_lib.experiments import device_name, git_commit
from resonance_lib.phase import time_attention
from resonance_lib.train import resolve_device

RESULTS = Path(__file__).resolve().parent / "results"


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
    result = {"benchmark": "bench_attention", "device": device_name(device), "torch": torch.__version__,
              "commit": git_commit(), "date": time.strftime("%Y-%m-%d"), "results": rows}
    out = args.out or RESULTS / f"bench_attention_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
