"""Seaborn/matplotlib helpers. Every figure is saved as PNG next to the CSV of the table behind it,
and carries a stamp naming the profile, device, seeds and commit it came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


@dataclass(frozen=True)
class Stamp:
    """Where a figure's numbers came from."""

    profile: str
    device: str
    seeds: tuple[int, ...]
    commit: str

    def __str__(self) -> str:
        return f"profile={self.profile} · device={self.device} · seeds={list(self.seeds)} · commit={self.commit}"


def save_figure(fig: plt.Figure, table: pd.DataFrame, name: str, fig_dir: str | Path, stamp: Stamp
                ) -> tuple[Path, Path]:
    """Stamp ``fig``, save it as ``<fig_dir>/<name>.png`` and ``table`` as ``<fig_dir>/<name>.csv``, and show
    the PNG inline when running in a notebook."""
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    fig.text(0.5, 0.005, str(stamp), ha="center", va="bottom", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    png, csv = fig_dir / f"{name}.png", fig_dir / f"{name}.csv"
    fig.savefig(png, dpi=120, bbox_inches="tight")
    table.to_csv(csv, index=False)
    show_inline(png)
    plt.close(fig)  # shown once, as saved (an inline backend would otherwise show it again)
    return png, csv


def show_inline(png: Path) -> None:
    """Show a saved PNG in the notebook that made it (any matplotlib backend); nothing outside a kernel."""
    from .session import in_kernel

    if in_kernel():
        from IPython.display import Image, display

        display(Image(filename=str(png)))


def loss_curves(df: pd.DataFrame, metrics=("train_loss", "val_loss"), hue: str = "variant") -> plt.Figure:
    """Loss against step, one panel per metric; the band is the 95% interval over seeds."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        sns.lineplot(data=df, x="step", y=metric, hue=hue, errorbar=("ci", 95), ax=ax)
        ax.set_title(metric.replace("_", " "))
        ax.set_ylabel("cross-entropy (nats)")
    return fig


def forest(summary: pd.DataFrame, label: str = "Δ val loss vs baseline (nats)", ax: plt.Axes | None = None
           ) -> plt.Figure:
    """Mean difference to the baseline with its 95% interval, one row per variant (on ``ax`` if given)."""
    rows = summary.dropna(subset=["delta_mean"]).reset_index(drop=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.45 * len(rows) + 1.2))
    lo = rows["delta_mean"] - rows["delta_ci_low"]
    hi = rows["delta_ci_high"] - rows["delta_mean"]
    ax.errorbar(rows["delta_mean"], range(len(rows)), xerr=[lo.fillna(0), hi.fillna(0)], fmt="o", capsize=3)
    ax.axvline(0, color="0.5", lw=1, ls="--")
    ax.set_yticks(range(len(rows)), rows["variant"])
    ax.invert_yaxis()
    ax.set_xlabel(label)
    return ax.figure


def cost_quality(summary: pd.DataFrame, ax: plt.Axes | None = None, metric: str = "val_loss") -> plt.Figure:
    """Training tokens/s (x, log scale) against the final ``metric`` (y, mean and 95% interval), one labelled
    point per variant: up-left is cheap and bad, down-right fast and good."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.5))
    mean = summary[f"{metric}_mean"]
    ax.errorbar(summary["tokens_per_s"], mean, yerr=[(mean - summary["ci_low"]).fillna(0),
                                                     (summary["ci_high"] - mean).fillna(0)], fmt="o", capsize=3)
    for row in summary.itertuples():
        ax.annotate(row.variant, (row.tokens_per_s, getattr(row, f"{metric}_mean")), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")
    ax.set(xscale="log", xlabel="training tokens/s", ylabel=f"final {metric.replace('_', ' ')}")
    return ax.figure


def save_table(table: pd.DataFrame, name: str, fig_dir: str | Path, stamp: Stamp) -> Path:
    """Write ``table`` as ``<fig_dir>/<name>.csv`` with the stamp's fields as extra columns."""
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    stamped = table.assign(profile=stamp.profile, device=stamp.device,
                           seeds=" ".join(map(str, stamp.seeds)), commit=stamp.commit)
    path = fig_dir / f"{name}.csv"
    stamped.to_csv(path, index=False)
    return path


STAMP_COLUMNS = {"profile": str, "device": str, "seeds": str, "commit": str}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV written by ``save_table``/``save_figure``/``run_grid`` with its stamp columns as text (a short
    commit such as ``77722e4`` would otherwise be read as the number 7.7722e8)."""
    return pd.read_csv(path, dtype=STAMP_COLUMNS)
