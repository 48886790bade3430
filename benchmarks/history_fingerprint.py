"""Did a refactor change what trains? Record every arm's training history, then compare to the last bit.

    python -m benchmarks.history_fingerprint --out before.json          # on the old commit
    python -m benchmarks.history_fingerprint --compare before.json      # on the new one

Each arm of ``experiments.SWITCHES`` (and the baseline, and a sparse arm) trains a model for a few dozen steps
from one seed on tinyshakespeare (characters; words for the phonetic phases), on the CPU with one thread.
``--size small`` (default) is a 2-layer, 32-wide model with dropout; ``--size baby`` is the ``full`` profile's
language model (nanoGPT's baby GPT: 4 layers, 128 wide, 64 tokens of context, batch 12). The losses are stored as
``float.hex`` strings, so "identical" means identical to the last bit. The file also records the commit, the
library's ``code_version()``, the CPU model and torch's version: another CPU can round the same code differently,
so a comparison across machines says so.

The comparison sorts each arm into one of three:

- ``identical``: every loss and accuracy equal to the last bit;
- ``rounding``: equal within a relative ``--rtol`` (default 1e-5): what a fused autograd node or another
  summation order changes, like a different thread count;
- ``DIFFERENT``: anything more, or an arm one side lacks (the exit status is then 1).

A pair of fingerprints with no ``DIFFERENT`` arm, recorded at the ``baby`` size, is the evidence an entry of
``experiments.RESULT_EQUIVALENT_CODE`` needs to let a new library version reuse an earlier one's finished runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys

import torch

from resonance_lib.data import prepare
from resonance_lib.experiments import SPARSE, SWITCHES, Variant, code_version, run_grid, sparse_callbacks
from resonance_lib.model import ResonanceConfig
from resonance_lib.provenance import cpu_model, git_commit
from resonance_lib.train import TrainConfig

COLUMNS = ("train_loss", "val_loss", "train_acc", "val_acc")
SIZES = {
    "small": (dict(block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.1),
              dict(batch_size=4, learning_rate=3e-3, min_lr=3e-4), 24),
    "baby": (dict(block_size=64, n_layer=4, n_head=4, n_embd=128),
             dict(batch_size=12, learning_rate=1e-3, min_lr=1e-4), 30),
}


def fingerprint(size: str = "small", seed: int = 0) -> dict:
    """``{"meta": {commit, code_version, size, steps, seed, cpu, torch}, "arms": {level/arm: {column: [float.hex,
    …]}}}``."""
    if size not in SIZES:
        raise ValueError(f"size={size!r}; allowed: {sorted(SIZES)}")
    torch.set_num_threads(1)
    model_size, train_size, steps = SIZES[size]
    cfg = TrainConfig(max_iters=steps, eval_interval=steps // 2, eval_iters=2, warmup_iters=4, device="cpu",
                      **train_size)
    arms = {}
    for level in ("char", "word"):
        data = prepare("tinyshakespeare", level, max_vocab=500, download=False)
        base = ResonanceConfig(vocab_size=data.vocab_size, **model_size)
        names = [n for n in SWITCHES if (n == "phase_phonetic") == (level == "word")]
        variants = [Variant("baseline", base)] + [Variant(n, dataclasses.replace(base, **SWITCHES[n]))
                                                  for n in names]
        if level == "char":
            variants.append(Variant("sparse_resonance", base, callbacks=sparse_callbacks(SPARSE["sparse_resonance"])))
        df = run_grid(variants, [seed], data, cfg, progress=False)
        for name, group in df.groupby("variant", sort=False):
            arms[f"{level}/{name}"] = {c: [float(v).hex() for v in group[c]] for c in COLUMNS if c in group}
    meta = {"commit": git_commit(), "code_version": code_version(), "size": size, "steps": steps, "seed": seed,
            "cpu": cpu_model(), "torch": torch.__version__}
    return {"meta": meta, "arms": arms}


def compare(before: dict, now: dict, rtol: float = 1e-5) -> dict[str, str]:
    """Each arm of either fingerprint: ``identical``, ``rounding`` (within ``rtol``) or ``DIFFERENT``."""
    verdicts = {}
    for arm in sorted(set(before["arms"]) | set(now["arms"])):
        a, b = before["arms"].get(arm), now["arms"].get(arm)
        if a == b:
            verdicts[arm] = "identical"
            continue
        if a is None or b is None or set(a) != set(b) or any(len(a[c]) != len(b[c]) for c in a):
            verdicts[arm] = "DIFFERENT"
            continue
        pairs = [(float.fromhex(x), float.fromhex(y)) for c in a for x, y in zip(a[c], b[c], strict=True)]
        close = all(math.isclose(x, y, rel_tol=rtol, abs_tol=0.0) for x, y in pairs)
        verdicts[arm] = "rounding" if close else "DIFFERENT"
    return verdicts


def summary(before: dict, now: dict, rtol: float = 1e-5) -> tuple[list[str], bool]:
    """The comparison as printed lines (one per arm, the counts, and a warning when the two files were recorded on
    different machines), and whether any arm is DIFFERENT."""
    verdicts = compare(before, now, rtol)
    lines = [f"{verdict:10s} {arm}" for arm, verdict in verdicts.items()]
    counts = {v: list(verdicts.values()).count(v) for v in ("identical", "rounding", "DIFFERENT")}
    lines.append(f"{before['meta']['commit']} → {now['meta']['commit']}: "
                 + ", ".join(f"{n} {v}" for v, n in counts.items()))
    machines = [(f["meta"].get("cpu", "not recorded"), f["meta"].get("torch", "not recorded")) for f in (before, now)]
    if machines[0] != machines[1]:
        lines.append(f"recorded on different machines (CPU {machines[0][0]}, torch {machines[0][1]} → CPU "
                     f"{machines[1][0]}, torch {machines[1][1]}): 'rounding' may come from the machine, not the code; "
                     "record both commits on one machine to tell")
    return lines, bool(counts["DIFFERENT"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--out", help="write the fingerprint to this JSON file")
    parser.add_argument("--compare", help="compare with a fingerprint written before (at the same size)")
    parser.add_argument("--rtol", type=float, default=1e-5, help="relative tolerance of 'rounding'")
    args = parser.parse_args(argv)
    if args.compare:
        with open(args.compare) as f:
            before = json.load(f)
        if before["meta"]["size"] != args.size:
            parser.error(f"--size {args.size}: {args.compare} was recorded at size {before['meta']['size']!r}")
    now = fingerprint(args.size)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(now, f, indent=1)
    if args.compare:
        lines, different = summary(before, now, args.rtol)
        print("\n".join(lines))
        return 1 if different else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
