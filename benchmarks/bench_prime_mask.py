"""Prime resonance mask construction: the vectorised form against the plan's Python loop.

    python -m benchmarks.bench_prime_mask [--size 1024]

Writes benchmarks/results/bench_prime_mask.json (CPU; the mask is built once, on the CPU).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from benchmarks.results_io import write_result
from resonance_lib.prime import PRIMES, prime_resonance_mask, prime_resonance_mask_loop


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    n = args.size
    t0 = time.perf_counter()
    fast = prime_resonance_mask(n, n, PRIMES)
    vectorised_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = prime_resonance_mask_loop(n, n, PRIMES)
    loop_s = time.perf_counter() - t0
    result = {"size": [n, n], "primes": list(PRIMES), "vectorised_s": vectorised_s, "loop_s": loop_s,
              "speedup": loop_s / vectorised_s, "equal": bool(torch.equal(fast, slow)),
              "density": fast.float().mean().item(), "threads": torch.get_num_threads()}
    print(f"{n}x{n}: vectorised {vectorised_s * 1000:.1f} ms, loop {loop_s:.1f} s ({result['speedup']:,.0f}x), "
          f"equal={result['equal']}, density {result['density']:.4f}")
    write_result("bench_prime_mask", None, result, args.out, "bench_prime_mask.json")


if __name__ == "__main__":
    main()
