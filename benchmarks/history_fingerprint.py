"""Did a refactor change what trains? Record every arm's training history, then compare bit for bit.

    python -m benchmarks.history_fingerprint --out before.json          # on the old commit
    python -m benchmarks.history_fingerprint --compare before.json      # on the new one

Each arm of ``experiments.SWITCHES`` (and the baseline, and a sparse arm) trains a baby model for a few dozen
steps from one seed on tinyshakespeare (characters; words for the phonetic phases), on the CPU with one
thread. The losses are stored as ``float.hex`` strings, so "identical" means identical to the last bit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import torch

from resonance_lib.data import prepare
from resonance_lib.experiments import SPARSE, SWITCHES, Variant, run_grid, sparse_callbacks
from resonance_lib.model import ResonanceConfig
from resonance_lib.train import TrainConfig

COLUMNS = ("train_loss", "val_loss", "train_acc", "val_acc")


def fingerprint(steps: int = 24, seed: int = 0) -> dict[str, dict[str, list[str]]]:
    torch.set_num_threads(1)
    cfg = TrainConfig(max_iters=steps, batch_size=4, eval_interval=steps // 2, eval_iters=2, warmup_iters=4,
                      device="cpu", learning_rate=3e-3, min_lr=3e-4)
    out = {}
    for level in ("char", "word"):
        data = prepare("tinyshakespeare", level, max_vocab=500, download=False)
        base = ResonanceConfig(vocab_size=data.vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=32,
                               dropout=0.1)
        names = [n for n in SWITCHES if (n == "phase_phonetic") == (level == "word")]
        variants = [Variant("baseline", base)] + [Variant(n, dataclasses.replace(base, **SWITCHES[n]))
                                                  for n in names]
        if level == "char":
            variants.append(Variant("sparse_resonance", base, callbacks=sparse_callbacks(SPARSE["sparse_resonance"])))
        df = run_grid(variants, [seed], data, cfg)
        for name, group in df.groupby("variant", sort=False):
            out[f"{level}/{name}"] = {c: [float(v).hex() for v in group[c]] for c in COLUMNS if c in group}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the fingerprint to this JSON file")
    parser.add_argument("--compare", help="compare with a fingerprint written before")
    args = parser.parse_args(argv)
    now = fingerprint()
    if args.out:
        with open(args.out, "w") as f:
            json.dump(now, f, indent=1)
    if args.compare:
        with open(args.compare) as f:
            before = json.load(f)
        same = 0
        for arm in sorted(set(before) | set(now)):
            if before.get(arm) == now.get(arm):
                same += 1
                print(f"identical  {arm}")
            else:
                print(f"DIFFERENT  {arm}")
        print(f"{same} of {len(set(before) | set(now))} arms bit-identical")
        return 0 if same == len(set(before) | set(now)) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
