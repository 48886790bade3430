"""Write the README's results section from the CSVs the notebooks saved: ``python -m resonance_lib.report``.

Numbers in the README are never typed by hand: this replaces everything between the markers
``<!-- results:start -->`` and ``<!-- results:end -->`` with tables rendered from ``figures/*.csv``
(each with the profile, device, seeds and commit recorded in the CSV).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

from .data import PACKAGE_ROOT

START, END = "<!-- results:start -->", "<!-- results:end -->"

# (csv stem without the profile suffix, heading, columns to show)
TABLES = [
    ("05_baseline_vs_nanogpt", "Baseline vs nanoGPT's published run (notebook 05)",
     ["variant", "n_seeds", "val_loss_mean", "ci_low", "ci_high", "published_setting", "published_val_loss",
      "tokens_per_s"]),
    ("05_ablation_summary", "Each component alone vs the baseline, char LM at matched parameters (notebook 05)",
     ["variant", "params", "val_loss_mean", "delta_mean", "delta_ci_low", "delta_ci_high", "verdict",
      "throughput_vs_baseline"]),
    ("01_verdict", "Delta residual (notebook 01)",
     ["experiment", "variant", "metric", "baseline", "variant_mean", "difference", "ci_low", "ci_high", "verdict",
      "throughput_vs_baseline"]),
    ("02_verdict", "Prune/revive sparsity (notebook 02)", ["claim", "measured", "holds"]),
    ("02_toy_benchmark", "The seeds' toy benchmark re-run beside their numbers (notebook 02)",
     ["variant", "final_loss", "avg_sparsity", "max_sparsity", "published_loss", "published_avg_sparsity",
      "published_max_sparsity"]),
    ("03_verdict", "Phase-coded attention: the seed's three claims (notebook 03)",
     ["claim", "measured", "difference (nats)", "holds"]),
    ("04_verdict", "Prime encoder, halting attention, memory, pre-manifest head, prime FFN mask (notebook 04)",
     ["level", "variant", "params", "val_loss_mean", "delta_mean", "delta_ci_low", "delta_ci_high", "verdict",
      "throughput_vs_baseline"]),
]


def _markdown(df: pd.DataFrame) -> str:
    def cell(v):
        if isinstance(v, float):
            return "" if pd.isna(v) else (f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}")
        return str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def render(fig_dir: Path, profile: str) -> str:
    parts = []
    for stem, heading, columns in TABLES:
        path = fig_dir / f"{stem}_{profile}.csv"
        if not path.exists():
            parts.append(f"**{heading}** — not run yet in the `{profile}` profile (`{path.name}` missing).")
            continue
        df = pd.read_csv(path)
        origin = df.iloc[0]
        parts.append(f"**{heading}** — `{path.relative_to(fig_dir.parent)}`; profile {origin['profile']}, "
                     f"device {origin['device']}, seeds {origin['seeds']}, commit {origin['commit']}\n\n"
                     + _markdown(df[[c for c in columns if c in df.columns]]))
    return "\n\n".join(parts)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--readme", type=Path, default=PACKAGE_ROOT / "README.md")
    parser.add_argument("--fig-dir", type=Path, default=PACKAGE_ROOT / "figures")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{args.readme} has no {START} … {END} markers")
    body = render(args.fig_dir, args.profile)
    text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: f"{START}\n{body}\n{END}", text, flags=re.S)
    args.readme.write_text(text, encoding="utf-8")
    print(f"wrote the {args.profile} results into {args.readme}")


if __name__ == "__main__":
    main()
