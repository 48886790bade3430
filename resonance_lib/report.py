"""Write the README's results section from the CSVs the notebooks saved: ``python -m resonance_lib.report``.

Numbers in the README are never typed by hand: this replaces everything between the markers
``<!-- results:start -->`` and ``<!-- results:end -->`` with the claim-vs-measured table and the result
tables, rendered from ``figures/*.csv`` (each with the profile, device, seeds and commit recorded in the CSV).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pandas as pd

from .data import PACKAGE_ROOT
from .plots import read_table

START, END = "<!-- results:start -->", "<!-- results:end -->"
BENCH_START, BENCH_END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"

# (csv stem without the profile suffix, heading, columns to show)
TABLES = [
    ("05_baseline_vs_nanogpt", "Baseline vs nanoGPT's published run, best validation loss (notebook 05)",
     ["variant", "n_seeds", "best_val_loss_mean", "ci_low", "ci_high", "final_val_loss_mean", "published_setting",
      "published_val_loss", "tokens_per_s"]),
    ("05_summary", "The ablation: each component alone and everything together vs the baseline, matched "
     "parameters (notebook 05)",
     ["level", "variant", "params", "val_loss_mean", "delta_mean", "delta_ci_low", "delta_ci_high", "verdict",
      "tokens_per_s", "throughput_vs_baseline", "infer_tokens_per_s", "infer_vs_baseline"]),
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


# ---------------------------------------------------------------------------------------------- claims
# One row per claim from the sources: their words, our number, its interval, seeds and a verdict, each read
# from the CSV a notebook wrote. "holds": the interval supports the claim; "not supported": no significant
# difference (or a criterion missed); "contradicted": significantly the other way.


def _verdict_word(verdict: str) -> str:
    return {"better": "holds", "worse": "contradicted"}.get(verdict, "not supported")


def _row(claim, notebook, measured, interval, table: pd.DataFrame, verdict) -> dict:
    origin = table.iloc[0]
    return {"claim (sources)": claim, "notebook": notebook, "measured": measured, "95% interval": interval,
            "seeds": origin["seeds"], "verdict": verdict, "profile / device": f"{origin['profile']} / {origin['device']}"}


def _paired(table: pd.DataFrame, variant: str, level: str | None = None) -> pd.Series:
    rows = table[table["variant"] == variant]
    if level is not None:
        rows = rows[rows["level"] == level]
    return rows.iloc[0]


def claim_rows(fig_dir: Path, profile: str) -> list[dict]:
    """The claim-vs-measured rows whose CSVs exist in ``fig_dir`` for ``profile``."""
    def load(stem):
        path = fig_dir / f"{stem}_{profile}.csv"
        return read_table(path) if path.exists() else None

    rows = []
    forgetting = load("01_forgetting_summary")
    if forgetting is not None:
        base = _paired(forgetting, "baseline")
        for name in ("delta_dv1", "delta_dv4"):
            r = _paired(forgetting, name)
            rows.append(_row(f"the delta residual helps forgetting ({name}, key→value overwrite task)", "01",
                             f"val acc {r['val_acc_mean']:.3f} vs {base['val_acc_mean']:.3f} (additive)",
                             f"Δ [{r['delta_ci_low']:+.3f}, {r['delta_ci_high']:+.3f}]", forgetting,
                             _verdict_word(r["verdict"])))
    charlm, verdicts = load("02_charlm"), load("02_verdict")
    if charlm is not None and verdicts is not None:
        r = _paired(charlm, "sparse_resonance")
        within = verdicts[verdicts["claim"].str.startswith("sparse_resonance: within 5%")].iloc[0]
        holds = verdicts[verdicts["claim"].str.startswith("sparse_resonance: holds 73%")].iloc[0]
        rows.append(_row("prune/revive holds ~73% sparsity with minimal loss (char LM; ours: within 5% of dense)",
                         "02", f"{within['measured']} val loss at sparsity {holds['measured']}",
                         f"Δ [{r['delta_ci_low']:+.3f}, {r['delta_ci_high']:+.3f}] nats", charlm,
                         "holds" if within["holds"] and holds["holds"] else "not supported"))
    toy = load("02_toy_benchmark")
    if toy is not None:
        for name in ("baseline", "sparse_resonance", "sparse_resonance_all"):
            r = _paired(toy, name)
            sparsity = "" if pd.isna(r["avg_sparsity"]) else f", avg sparsity {r['avg_sparsity']:.2f}, max {r['max_sparsity']:.2f}"
            published = "" if pd.isna(r["published_avg_sparsity"]) else (
                f", avg sparsity {r['published_avg_sparsity']:.2f}, max {r['published_max_sparsity']:.2f}")
            rows.append(_row(f"seed benchmark, {name}: loss {r['published_loss']}{published}", "02",
                             f"loss {r['final_loss']:.4f}{sparsity}", f"sd {r['final_loss_sd']:.2g}", toy,
                             "reproduced (our loss is lower)" if r["final_loss"] <= r["published_loss"] else "not reproduced"))
    if verdicts is not None:
        for prefix in ("toy: all advanced", "MNIST"):
            found = verdicts[verdicts["claim"].str.startswith(prefix)]
            if found.empty:
                continue
            v = found.iloc[0]
            rows.append(_row(f"seed benchmark: {v['claim']}", "02", v["measured"], "", verdicts,
                             "holds" if v["holds"] is True or v["holds"] == "True" else "not supported"))
    phase = load("03_verdict")
    if phase is not None:
        for v in phase.itertuples():
            # each claim says phase attention does at least as well (in loss: a difference ≤ 0); an interval
            # wholly above 0 says it does significantly worse
            low = float(re.search(r"\[([-+]?[\d.]+)", v._3).group(1))
            word = "holds" if str(v.holds) == "True" else ("contradicted" if low > 0 else "not supported")
            rows.append(_row(v.claim, "03", v.measured, v._3, phase, word))
    prime = load("04_verdict")
    if prime is not None:
        for level in ("char", "word"):
            r = _paired(prime, "prime_all", level)
            rows.append(_row(f"the prime model (all prime components) beats the baseline ({level} level)", "04",
                             f"val loss {r['val_loss_mean']:.3f}, Δ {r['delta_mean']:+.3f}",
                             f"Δ [{r['delta_ci_low']:+.3f}, {r['delta_ci_high']:+.3f}]", prime, _verdict_word(r["verdict"])))
    halting = load("04_halting_memory_head")
    if halting is not None and prime is not None:
        mean_iters = halting["iterations"].mean()
        r = _paired(prime, "halting_attention", "char")
        saves = r["throughput_vs_baseline"] >= 1.0
        rows.append(_row("entropy-halting attention saves compute (char level)", "04",
                         f"{mean_iters:.2f} of 4 iterations per token; training at {r['throughput_vs_baseline']:.2f}× the "
                         f"standard-attention baseline; Δ val loss {r['delta_mean']:+.3f}",
                         f"Δ [{r['delta_ci_low']:+.3f}, {r['delta_ci_high']:+.3f}]", prime,
                         "holds" if saves else "not supported (costs more than one attention pass)"))
    summary = load("05_summary")
    if summary is not None:
        for level in sorted(set(summary["level"])):
            r = _paired(summary, "everything", level)
            rows.append(_row(f"every resonance component together beats the baseline ({level} level)", "05",
                             f"val loss {r['val_loss_mean']:.3f}, Δ {r['delta_mean']:+.3f}, "
                             f"{r['throughput_vs_baseline']:.2f}× throughput",
                             f"Δ [{r['delta_ci_low']:+.3f}, {r['delta_ci_high']:+.3f}]", summary, _verdict_word(r["verdict"])))
    return rows


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
    claims = claim_rows(fig_dir, profile)
    if claims:
        parts.append(f"**Claim vs measured ({profile} profile)**\n\n" + _markdown(pd.DataFrame(claims)))
    for stem, heading, columns in TABLES:
        path = fig_dir / f"{stem}_{profile}.csv"
        if not path.exists():
            if not only_existing:
                parts.append(f"**{heading}** — not run yet in the `{profile}` profile (`{path.name}` missing).")
            continue
        df = read_table(path)
        origin = df.iloc[0]
        parts.append(f"**{heading}** — `{path.relative_to(fig_dir.parent)}`; profile {origin['profile']}, "
                     f"device {origin['device']}, seeds {origin['seeds']}, commit {origin['commit']}\n\n"
                     + _markdown(df[[c for c in columns if c in df.columns]]))
    return "\n\n".join(parts)


def render_run_times(notebook_dir: Path) -> str:
    """How long each committed executed notebook took, from the metadata papermill wrote into it."""
    rows = []
    for path in sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb")):
        meta = json.loads(path.read_text(encoding="utf-8"))["metadata"].get("papermill", {})
        if meta.get("duration") is not None:
            rows.append({"notebook": path.stem, "profile": meta.get("parameters", {}).get("PROFILE", "?"),
                         "seconds": round(meta["duration"], 1), "finished (UTC)": meta.get("end_time", "")[:19]})
    if not rows:
        return ""
    table = pd.DataFrame(rows)
    total = ", ".join(f"{p}: {g['seconds'].sum() / 60:.1f} min" for p, g in table.groupby("profile"))
    return (f"**Run time of the committed executed notebooks** (papermill's record in each notebook; total {total})"
            "\n\n" + _markdown(table))


def render_benchmarks(results_dir: Path) -> str:
    """Markdown for every JSON that ``python -m benchmarks`` (or one benchmark) wrote into ``results_dir``."""
    parts = []
    for path in sorted(results_dir.glob("bench_*.json")):
        result = json.loads(path.read_text())
        device = result.get("device") or f"CPU ({result.get('threads')} threads)"
        head = (f"**`{path.name}`** — device {device}, "
                f"torch {result['torch']}, commit {result['commit']}, {result['date']}")
        name = result["benchmark"]
        if name == "bench_train":
            head += (f"; {result['size']} size, batch {result['batch_size']}, {result['steps']} timed steps, "
                     f"compile={result['compile']}")
            table = pd.DataFrame(result["results"])[["variant", "params", "tokens_per_s", "relative_to_baseline"]]
            parts.append(head + "\n\n" + _markdown(table))
        elif name == "bench_attention":
            table = pd.DataFrame(result["results"]).pivot(index="seq_len", columns="form", values="ms").reset_index()
            parts.append(head + " — fwd+bwd ms\n\n" + _markdown(table))
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


def _replace_between(text: str, start: str, end: str, body: str) -> str:
    return re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: f"{start}\n{body}\n{end}", text, flags=re.S)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", nargs="+", default=["cpu", "gpu"],
                        help="profiles to render, in order; after the first only tables that exist are shown")
    parser.add_argument("--readme", type=Path, default=PACKAGE_ROOT / "README.md")
    parser.add_argument("--fig-dir", type=Path, default=PACKAGE_ROOT / "figures")
    parser.add_argument("--bench-dir", type=Path, default=PACKAGE_ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{args.readme} has no {START} … {END} markers")
    body = "\n\n".join([render_run_times(args.fig_dir.parent / "notebooks"),
                          *(render(args.fig_dir, profile, only_existing=i > 0) for i, profile in enumerate(args.profile))])
    text = _replace_between(text, START, END, body)
    if BENCH_START in text and BENCH_END in text:
        text = _replace_between(text, BENCH_START, BENCH_END, render_benchmarks(args.bench_dir))
    args.readme.write_text(text, encoding="utf-8")
    print(f"wrote the {' and '.join(args.profile)} results into {args.readme}")


if __name__ == "__main__":
    main()
