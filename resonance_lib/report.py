"""Write the README's results section from the CSVs the notebooks saved: ``python -m resonance_lib.report``.

Numbers in the README are never typed by hand: this replaces everything between the markers
``<!-- results:start -->`` and ``<!-- results:end -->`` with the claim-vs-measured table and the result
tables, rendered from ``figures/*.csv`` (each with the profile, device, seeds and commit recorded in the CSV).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

import pandas as pd

from .data import PACKAGE_ROOT
from .plots import read_table

START, END = "<!-- results:start -->", "<!-- results:end -->"
HEADLINE_START, HEADLINE_END = "<!-- headline:start -->", "<!-- headline:end -->"
BENCH_START, BENCH_END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"

# (csv stem without the profile suffix, heading, columns to show)
TABLES = [
    ("05_baseline_vs_nanogpt", "Baseline vs nanoGPT's published run, best validation loss (notebook 05)",
     ["variant", "n_seeds", "best_val_loss_mean", "ci_low", "ci_high", "final_val_loss_mean", "published_setting",
      "published_val_loss", "tokens_per_s"]),
    ("05_arms", "The ablation under the protocol's rule: each arm − baseline, simultaneous intervals per level, "
     "Holm p (notebook 05)",
     ["level", "variant", "reference", "comparison", "n_seeds", "seeds_lower", "estimate", "ci_low", "ci_high",
      "p_holm", "verdict", "learning_rate", "throughput_ratio", "flops_per_token"]),
    ("05_summary", "The ablation: each arm's final loss (notebook 05)",
     ["level", "variant", "params", "val_loss_mean", "ci_low", "ci_high", "tokens_per_s", "throughput_vs_baseline",
      "infer_tokens_per_s", "infer_vs_baseline"]),
    ("01_charlm_summary", "Delta residual on the char LM (notebook 01)",
     ["variant", "n_seeds", "val_loss_mean", "delta_mean", "delta_ci_low", "delta_ci_high", "verdict",
      "throughput_ratio"]),
    ("02_charlm", "Sparse training at 73% on the char LM (notebook 02)",
     ["variant", "val_loss_mean", "delta_mean", "delta_ci_low", "delta_ci_high", "verdict", "avg_sparsity",
      "max_sparsity", "throughput_vs_baseline"]),
    ("02_toy_benchmark", "The seeds' toy benchmark re-run beside their numbers (notebook 02)",
     ["variant", "final_loss", "avg_sparsity", "max_sparsity", "published_loss", "published_avg_sparsity",
      "published_max_sparsity"]),
    ("02_lookup", "A toy task where capacity matters: dense, the small dense control and the sparse methods "
     "(notebook 02)",
     ["variant", "params", "nonzero_params", "n_seeds", "val_acc_mean", "ci_low", "ci_high", "delta_mean",
      "delta_mean_vs_small_dense"]),
    ("02_mnist", "MNIST patch transformer at 73%: accuracy on every held-out image (notebook 02)",
     ["variant", "params", "nonzero_params", "n_seeds", "final_val_acc_mean", "ci_low", "ci_high", "delta_mean",
      "delta_ci_low",
      "delta_ci_high", "verdict", "learning_rate"]),
    ("03_phase_summary", "Phase-coded attention, word level (notebook 03)",
     ["variant", "params", "val_loss_mean", "ppl_mean", "delta_mean", "delta_ci_low", "delta_ci_high", "verdict",
      "throughput_ratio"]),
    ("03_attribution", "Where the phase source's \"60% smarter\" came from: its comparison split into mechanism and "
     "initialisation, paired by seed (notebook 03)",
     ["difference", "n_seeds", "mean_nats", "ci_low", "ci_high", "perplexity_ratio"]),
    ("04_halting_pareto", "Halting attention against fixed depth: loss for compute (notebook 04)",
     ["variant", "kind", "epsilon", "test_loss", "mean_passes", "mean_iterations", "off_mode_share",
      "flops_per_token", "throughput_vs_baseline"]),
    ("04_halting_vs_fixed_depth", "The control for halting: each halting arm that ran fewer than the most passes "
     "− the fixed-depth arm with no more passes, paired by seed, in the notebook's family (notebook 04)",
     ["epsilon", "arm", "mean_passes", "fixed_depth", "n_seeds", "estimate", "ci_low", "ci_high", "p_holm",
      "verdict"]),
    ("04_summary", "Prime encoder, halting attention, memory, pre-manifest head, prime FFN mask (notebook 04)",
     ["level", "variant", "params", "val_loss_mean", "delta_mean", "delta_ci_low", "delta_ci_high", "verdict",
      "throughput_ratio"]),
]


# ---------------------------------------------------------------------------------------------- claims
# The claim table is figures/claims_<profile>.csv — what the notebooks recorded through claims.record_claims —
# rendered as it is: one row per measured comparison, no parsing, no lookup by name.

CLAIM_COLUMNS = {"notebook": "nb", "words": "claim (the source's words)", "source": "source", "number": "their number",
                 "label": "measured on", "context": "what it rests on", "comparison": "comparison", "n_seeds": "seeds", "estimate": "Δ (arm − ref.)",
                 "interval": "simultaneous 95% CI", "margin": "margin", "p_holm": "Holm p", "power": "power",
                 "verdict": "verdict", "supports": "the claim", "device": "device", "commit": "commit"}


def claim_table(fig_dir: Path, profile: str) -> pd.DataFrame | None:
    """``claims_<profile>.csv`` as the README shows it, or None when no notebook has recorded a claim."""
    path = fig_dir / f"claims_{profile}.csv"
    if not path.exists():
        return None
    table = pd.read_csv(path, dtype={"notebook": str, "commit": str, "number": str, "label": str, "context": str})
    if "context" not in table:  # written before claims carried their context
        table["context"] = ""
    table = table.fillna({"number": "", "label": "", "context": ""})
    table["interval"] = [f"[{lo:+.4f}, {hi:+.4f}]" for lo, hi in zip(table["ci_low"], table["ci_high"], strict=True)]
    table["estimate"] = table["estimate"].map(lambda v: f"{v:+.4f}")
    table["comparison"] = table["comparison"].str.replace("_", " ")
    return table[list(CLAIM_COLUMNS)].rename(columns=CLAIM_COLUMNS)


def _markdown(df: pd.DataFrame) -> str:
    def cell(v):
        if isinstance(v, float):
            return "" if pd.isna(v) else (f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}")
        return str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def render(fig_dir: Path, profile: str, only_existing: bool = False) -> str:
    """Markdown for one profile: the claim table, then every result table (or a line saying it is missing,
    unless ``only_existing``)."""
    parts = [f"### `{profile}` profile"]
    claims = claim_table(fig_dir, profile)
    if claims is not None:
        parts.append(f"**Claim vs measured ({profile} profile)** — `figures/claims_{profile}.csv`, written by the "
                     "notebooks; verdict rule and margins declared in `resonance_lib/claims.py`\n\n"
                     + _markdown(claims))
    for stem, heading, columns in TABLES:
        path = fig_dir / f"{stem}_{profile}.csv"
        if not path.exists():
            if not only_existing:
                parts.append(f"**{heading}** — not run yet in the `{profile}` profile (`{path.name}` missing).")
            continue
        df = read_table(path)
        if not {"profile", "device", "seeds", "commit"} <= set(df.columns):
            parts.append(f"**{heading}** — `{path.name}` carries no provenance stamp (written before figure tables "
                         "were stamped): re-run its notebook to show it here.")
            continue
        origin = df.iloc[0]
        parts.append(f"**{heading}** — `{path.relative_to(fig_dir.parent)}`; profile {origin['profile']}, "
                     f"device {origin['device']}, seeds {origin['seeds']}, commit {origin['commit']}\n\n"
                     + _markdown(df[[c for c in columns if c in df.columns]]))
    return "\n\n".join(parts)


def render_run_times(notebook_dir: Path) -> str:
    """How long each committed executed notebook took, from the metadata papermill wrote into it."""
    rows = []
    for path in sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb")):
        metadata = json.loads(path.read_text(encoding="utf-8"))["metadata"]
        meta, record = metadata.get("papermill", {}), metadata.get("resonance_run", {})
        if meta.get("duration") is not None:
            rows.append({"notebook": path.stem, "profile": meta.get("parameters", {}).get("PROFILE", "?"),
                         "seconds": round(meta["duration"], 1), "CPU seconds": record.get("cpu_seconds", ""),
                         "load average (start, end)": (f"{record['load_average_start']}, {record['load_average_end']}"
                                                       if record else "not recorded"),
                         "finished (UTC)": meta.get("end_time", "")[:19]})
    if not rows:
        return ""
    table = pd.DataFrame(rows)
    total = ", ".join(f"{p}: {g['seconds'].sum() / 60:.1f} min" for p, g in table.groupby("profile"))
    return (f"**Run time of the committed executed notebooks** (papermill's record in each notebook; total {total}). "
            "Wall-clock time depends on what else the machine ran: the CPU seconds (kernel and grid workers) and the "
            "load average around the run, recorded by `python -m resonance_lib.notebooks`, say how busy it was."
            + (" A notebook of a committed profile (`full`, `gpu`) is executed last from its run cache, after its "
               "runs trained over one or more sessions: its time here is reading the runs and drawing the figures; "
               "what the training took is in the next table." if set(table["profile"]) & set(COMMITTED_CACHES)
               else "")
            + "\n\n" + _markdown(table))


COMMITTED_CACHES = ("full", "gpu")  # the profiles whose run histories are committed under runs/


def render_cache_time(runs_dir: Path) -> str:
    """The training held in each committed profile's run cache (``runs/<profile>/*/history.json``): how many runs,
    and the sum of each run's own wall-clock (its last ``elapsed_s``), by device. A profile resumed over several
    sessions shows only its last execution in the notebooks' run times; this is what its cache cost."""
    rows = []
    for profile in COMMITTED_CACHES:
        for history in sorted((runs_dir / profile).glob("*/history.json")):
            last = json.loads(history.read_text(encoding="utf-8"))["data"][-1]
            rows.append({"profile": profile, "device": last.get("device") or "?", "failed": last.get("status") != "ok",
                         "hours": (last.get("elapsed_s") or 0.0) / 3600})
    if not rows:
        return ""
    table = (pd.DataFrame(rows).groupby(["profile", "device"], sort=False)
             .agg(runs=("hours", "size"), failed=("failed", "sum"), hours=("hours", "sum")).reset_index())
    table["hours"] = table["hours"].round(1)
    return ("**Training held in the run caches** (`runs/<profile>/`, committed histories): the sum of each run's own "
            "wall-clock, sweeps and equal-compute copies included. Runs train in parallel worker processes, so a "
            "profile took less time than this sum; a notebook resumed through its cache over several sessions counts "
            "only its last execution in the table above.\n\n" + _markdown(table))


def render_benchmarks(results_dir: Path) -> str:
    """Markdown for every JSON that ``python -m benchmarks`` (or one benchmark) wrote into ``results_dir``."""
    parts = []
    for path in sorted(results_dir.glob("bench_*.json")):
        result = json.loads(path.read_text())
        device = result.get("device") or f"CPU ({result.get('threads')} threads)"
        head = (f"**`{path.name}`** — device {device}, "
                f"torch {result['torch']}, commit {result['commit']}, {result['date']}")
        if result.get("load_average_at_end") is not None:
            head += f", load average {result['load_average_at_end']} at the end"
        name = result["benchmark"]
        if name == "bench_train":
            head += (f"; {result['size']} size, batch {result['batch_size']}, {result['steps']} timed steps, "
                     f"compile={result['compile']}")
            if "timing" in result:
                head += (f"; {result['timing']} of {result['repeats']}, {result['threads'] or 'default'} thread(s), "
                         f"load average {result.get('load_average', '?')} at the start")
            else:
                head += "; arms timed one after another (before the interleaved timer)"
            table = pd.DataFrame(result["results"])
            table = table[[c for c in ("variant", "params", "flops_per_token", "tokens_per_s", "relative_to_baseline",
                                       "mean_iterations", "mean_sequence_passes", "target_ratio") if c in table]]
            parts.append(head + "\n\n" + _markdown(table))
        elif name == "bench_trainer":
            parts.append(head + f"; {result['size']} size, batch {result['batch_size']}, {result['steps']} timed steps, "
                         f"compile={result['compile']}, {result['timing']} of {result['repeats']}\n\nour trainer "
                         f"{statistics.median(result['ours_tokens_per_s']):,.0f} tokens/s against a nanoGPT-style loop's "
                         f"{statistics.median(result['nanogpt_loop_tokens_per_s']):,.0f}: **{result['ratio']:.3f}×**")
        elif name == "bench_attention":
            table = pd.DataFrame(result["results"]).pivot(index="seq_len", columns="form", values="ms").reset_index()
            timing = f", {result['timing']}" if "timing" in result else ", forms timed one after another"
            parts.append(head + f" — fwd+bwd ms{timing}\n\n" + _markdown(table))
        elif name == "bench_sparsity":
            c, semi = result["checkpoint"], result["semi_structured_2_4"]
            line = (f"{c['size']} model at sparsity {c['measured_sparsity']:.4f}: compressed checkpoint "
                    f"{c['compressed_bytes']:,} B = {c['ratio']:.3f}× dense; 2:4 semi-structured matmul: ")
            line += (f"{semi['speedup']:.2f}× dense speed ({semi['shape']})" if semi.get("supported")
                     else f"not measured ({semi['reason']})")
            parts.append(head + "\n\n" + line)
        elif name == "bench_prime_mask":
            parts.append(head + f"\n\n{result['size'][0]}×{result['size'][1]} mask: vectorised "
                         f"{result['vectorised_s'] * 1000:.1f} ms, loop {result['loop_s']:.1f} s "
                         f"({result['speedup']:,.0f}×), identical: {result['equal']}")
    return "\n\n".join(parts)


# The README's opening summary comes from the first of these profiles that has recorded claims: the protocol's
# committed results first, the exploratory `quick` run only until they exist.
HEADLINE_PROFILES = ("full", "gpu", "quick")
# what each value of the claims file's `supports` column says of one comparison and of several, in the order the
# summary counts them
SUPPORT_WORDS = {"holds": ("supports its claim", "support their claim"),
                 "contradicted": ("contradicts it", "contradict it"),
                 "not supported": ("is not supported", "are not supported"),
                 "inconclusive": ("cannot tell (inconclusive)", "cannot tell (inconclusive)")}
NOT_SUPPORTED_MEANS = " (no effect where the run had the power to see the claimed one)"


def _notebooks(claims: pd.DataFrame) -> str:
    names = sorted(set(claims["notebook"]))
    return ("notebook " if len(names) == 1 else "notebooks ") + ", ".join(names)


def _tally(claims: pd.DataFrame, profile: str) -> str:
    """'of the N comparisons recorded for M claims in notebooks …, a support their claim, b contradict it, …'."""
    counts = claims["supports"].value_counts()
    unknown = sorted(set(counts.index) - set(SUPPORT_WORDS))
    if unknown:
        raise ValueError(f"claims_{profile}.csv: supports={unknown} not among {list(SUPPORT_WORDS)}")
    tally = ", ".join(f"{counts[s]} {words[int(counts[s] != 1)]}" + NOT_SUPPORTED_MEANS * (s == "not supported")
                      for s, words in SUPPORT_WORDS.items() if s in counts)
    n, k = len(claims), claims["claim_id"].nunique()
    return (f"of the {n} comparison{'s' * (n != 1)} recorded for {k} claim{'s' * (k != 1)} in "
            f"{_notebooks(claims)}, {tally}")


def _origin(claims: pd.DataFrame) -> str:
    commits = ", ".join(sorted(set(claims["commit"].astype(str))))
    devices = ", ".join(sorted(set(claims["device"].astype(str))))
    return f"{devices}, commit {commits}"


def _held(claims: pd.DataFrame) -> str:
    held = claims[claims["supports"] == "holds"]
    if not len(held):
        return "No comparison supports its claim."
    return "Comparisons that support their claim: " + "; ".join(
        f"{row.claim_id} (notebook {row.notebook}, {row.label}, {row.comparison.replace('_', ' ')})"
        for row in held.itertuples()) + "."


def render_headline(fig_dir: Path, profiles: tuple[str, ...] = HEADLINE_PROFILES) -> str:
    """The README's opening: how many recorded comparisons support, contradict or cannot tell each claim, the
    claims with a supporting comparison, and notebook 05's forest plot with a caption read from its table's stamp.
    Counted from ``claims_<profile>.csv`` of the first profile in ``profiles`` that has one; notebooks that profile
    has not recorded yet (a `full` run that lands notebook by notebook) are counted, separately and labelled with
    their profile and its caveat, from the next profile that has them."""
    from .findings import EXPLORATORY

    recorded = [p for p in profiles if (fig_dir / f"claims_{p}.csv").exists()]
    if not recorded:
        return ("No notebook has recorded a claim yet: run the notebooks (`make notebooks`), then "
                "`python -m resonance_lib.report`.")
    profile = recorded[0]
    claims = pd.read_csv(fig_dir / f"claims_{profile}.csv", dtype={"notebook": str, "commit": str})
    lines = [f"**In short** (`{profile}` profile, {_origin(claims)}; counted from `figures/claims_{profile}.csv`): "
             f"{_tally(claims, profile)}.", _held(claims)]
    if profile in EXPLORATORY:
        lines.append(f"Caveat: {EXPLORATORY[profile]}.")
    covered = set(claims["notebook"])
    for later in recorded[1:]:
        rest = pd.read_csv(fig_dir / f"claims_{later}.csv", dtype={"notebook": str, "commit": str})
        rest = rest[~rest["notebook"].isin(covered)]
        if not len(rest):
            continue
        caveat = f" Caveat: {EXPLORATORY[later]}." if later in EXPLORATORY else ""
        lines.append(f"**Not yet in the `{profile}` profile**: {_notebooks(rest)}, counted from "
                     f"`figures/claims_{later}.csv` (`{later}` profile, {_origin(rest)}): {_tally(rest, later)}. "
                     f"{_held(rest)}{caveat}")
        covered |= set(rest["notebook"])
    forest = fig_dir / f"05_forest_{profile}.png"
    table = fig_dir / f"05_forest_{profile}.csv"
    if forest.exists() and table.exists():
        stamp = read_table(table).iloc[0]
        lines.append(f"![each arm against the matched baseline, paired by seed]({fig_dir.name}/{forest.name})\n\n"
                     f"*Notebook 05, `{stamp['profile']}` profile ({stamp['device']}), seeds {stamp['seeds']}, commit "
                     f"{stamp['commit']}: each arm (and each control) minus its reference in test loss, paired by seed, "
                     "simultaneous 95% intervals; the grey band is the declared margin. Left of zero is better.*")
    return "\n\n".join(lines)


def _replace_between(text: str, start: str, end: str, body: str) -> str:
    return re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: f"{start}\n{body}\n{end}", text, flags=re.S)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", nargs="+", default=["quick", "full", "gpu"],
                        help="profiles to render, in order; after the first only tables that exist are shown")
    parser.add_argument("--readme", type=Path, default=PACKAGE_ROOT / "README.md")
    parser.add_argument("--fig-dir", type=Path, default=PACKAGE_ROOT / "figures")
    parser.add_argument("--bench-dir", type=Path, default=PACKAGE_ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{args.readme} has no {START} … {END} markers")
    parts = [render_run_times(args.fig_dir.parent / "notebooks"), render_cache_time(args.fig_dir.parent / "runs"),
             *(render(args.fig_dir, profile, only_existing=i > 0) for i, profile in enumerate(args.profile))]
    body = "\n\n".join(part for part in parts if part)
    text = _replace_between(text, START, END, body)
    if HEADLINE_START in text and HEADLINE_END in text:
        text = _replace_between(text, HEADLINE_START, HEADLINE_END, render_headline(args.fig_dir))
    if BENCH_START in text and BENCH_END in text:
        text = _replace_between(text, BENCH_START, BENCH_END, render_benchmarks(args.bench_dir))
    args.readme.write_text(text, encoding="utf-8")
    print(f"wrote the {' and '.join(args.profile)} results into {args.readme}")


if __name__ == "__main__":
    main()
