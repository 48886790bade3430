"""Run every benchmark on this machine and write their JSON: ``python -m benchmarks``.

    python -m benchmarks                     # all five, default settings for the device
    python -m benchmarks --out-dir /tmp/b    # somewhere other than benchmarks/results/
    python -m benchmarks --only train sparsity --train-args --steps 30

Each benchmark keeps its own command line (``python -m benchmarks.bench_train --help``); this entry point
calls each ``main`` in turn with the default settings for the device (``--train-args`` etc. pass extra
arguments through) and writes an index, ``index_<device>.json``, naming every result file and how long each
benchmark took.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks import bench_attention, bench_prime_mask, bench_sparsity, bench_train, bench_trainer
from benchmarks.results_io import RESULTS, write_result
from resonance_lib.train import resolve_device

BENCHMARKS = {"train": bench_train, "trainer": bench_trainer, "attention": bench_attention,
              "sparsity": bench_sparsity, "prime_mask": bench_prime_mask}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run these (default: all)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    for name in BENCHMARKS:
        parser.add_argument(f"--{name.replace('_', '-')}-args", default="",
                            help=f"extra arguments for bench_{name}, one quoted string")
    args = parser.parse_args(argv)
    device = resolve_device("auto")
    index = []
    for name in args.only or list(BENCHMARKS):
        out = args.out_dir / f"bench_{name}_{device.type}.json"
        extra = getattr(args, f"{name}_args").split()
        print(f"== bench_{name} {' '.join(extra)}", flush=True)
        t0 = time.perf_counter()
        BENCHMARKS[name].main(["--out", str(out), *extra])
        index.append({"benchmark": name, "file": out.name, "arguments": extra,
                      "wall_s": round(time.perf_counter() - t0, 2)})
        print(json.dumps(index[-1]), flush=True)
    write_result("all", device, {"runs": index}, args.out_dir / f"index_{device.type}.json", "")


if __name__ == "__main__":
    main()
