"""Seaborn/matplotlib helpers. Every figure is saved as PNG next to the CSV of the table behind it,
and carries a stamp naming the profile, device, seeds and commit it came from."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

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

    def headline(self) -> str:
        """The part of the stamp a figure's title carries: profile, device and seeds."""
        return f"{self.profile} profile · {self.device} · seeds {list(self.seeds)}"

    def with_seeds(self, seeds) -> Stamp:
        """The same stamp for a table trained on other ``seeds`` (a learning-rate sweep's tuning seeds)."""
        return replace(self, seeds=tuple(seeds))

    def __str__(self) -> str:
        return f"profile={self.profile} · device={self.device} · seeds={list(self.seeds)} · commit={self.commit}"


class SavedFigure(NamedTuple):
    """Where ``save_figure`` wrote a figure and its table; shown as paths relative to the repository, so a cell
    that ends with ``save_figure(...)`` prints no path of the machine that ran it."""

    png: Path
    csv: Path

    def __repr__(self) -> str:
        from .session import display_path

        return f"saved {display_path(self.png)} and {Path(display_path(self.csv)).name}"


def save_figure(fig: plt.Figure, table: pd.DataFrame, name: str, fig_dir: str | Path, stamp: Stamp,
                title: str | None = None) -> SavedFigure:
    """Title ``fig`` with ``title`` and the stamp's profile, device and seeds, write the full stamp (with the
    commit) at its foot, save it as ``<fig_dir>/<name>.png`` and ``table`` as ``<fig_dir>/<name>.csv`` (with the
    stamp's fields as columns where the table has none of its own), and show the PNG inline when running in a
    notebook."""
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    heading = stamp.headline() if title is None else f"{title}\n{stamp.headline()}"
    fig.suptitle(heading, fontsize=10)
    fig.text(0.5, 0.005, str(stamp), ha="center", va="bottom", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    png, csv = fig_dir / f"{name}.png", fig_dir / f"{name}.csv"
    fig.savefig(png, dpi=120, bbox_inches="tight")
    stamp_fields = {"profile": stamp.profile, "device": stamp.device, "seeds": " ".join(map(str, stamp.seeds)),
                    "commit": stamp.commit}
    # the stamp's fields where the table has none of its own (a runs table keeps each run's device and commit)
    table.assign(**{k: v for k, v in stamp_fields.items() if k not in table}).to_csv(csv, index=False)
    show_inline(png)
    plt.close(fig)  # shown once, as saved (an inline backend would otherwise show it again)
    return SavedFigure(png, csv)


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


def arm_palette(arms) -> dict:
    """One colour per arm, the same in every panel of a notebook: ``{arm: colour}`` in the order given."""
    arms = list(dict.fromkeys(arms))
    colours = sns.color_palette("tab10" if len(arms) <= 10 else "tab20", len(arms))
    return dict(zip(arms, colours, strict=True))


def forest(rows: pd.DataFrame, ax: plt.Axes | None = None, margin: float | None = None, palette: dict | None = None,
           label: str = "Δ val loss vs baseline (nats)") -> plt.Figure:
    """Each arm's difference to the baseline with its interval, one row per arm (on ``ax`` if given).

    ``rows`` has variant, estimate, ci_low, ci_high (``stats.compare``'s columns; a ``verdict`` column is
    shown beside the name), or ``summarize``'s delta_mean, delta_ci_low, delta_ci_high. A dashed line marks the
    baseline (0) and a grey band ±``margin``."""
    if "estimate" not in rows:
        rows = rows.drop(columns=["ci_low", "ci_high"], errors="ignore").rename(
            columns={"delta_mean": "estimate", "delta_ci_low": "ci_low", "delta_ci_high": "ci_high"})
    rows = rows.dropna(subset=["estimate"]).reset_index(drop=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.45 * len(rows) + 1.2))
    palette = palette or arm_palette(rows["variant"])
    for i, r in enumerate(rows.to_dict("records")):
        low, high = r["estimate"] - r["ci_low"], r["ci_high"] - r["estimate"]
        ax.errorbar(r["estimate"], i, xerr=[[0.0 if pd.isna(low) else low], [0.0 if pd.isna(high) else high]],
                    fmt="o", capsize=3, color=palette[r["variant"]])
    ax.axvline(0, color="0.4", lw=1, ls="--", label="baseline")
    if margin is not None:
        ax.axvspan(-margin, margin, color="0.9", zorder=0, label=f"±{margin:g} margin")
    names = rows["variant"] if "verdict" not in rows else [f"{v} ({d})" for v, d in zip(rows["variant"],
                                                                                           rows["verdict"], strict=True)]
    ax.set_yticks(range(len(rows)), names)
    ax.invert_yaxis()
    ax.set_xlabel(label)
    return ax.figure


def cost_quality(summary: pd.DataFrame, ax: plt.Axes | None = None, metric: str = "val_loss",
                 palette: dict | None = None, baseline: str = "baseline") -> plt.Figure:
    """Training tokens/s (x, log scale) against the final ``metric`` (y, mean and 95% interval), one colour per
    arm with a legend (no labels over the data), and the baseline's loss (dashed) and speed (dotted) as guide
    lines: below the dashed line is better, left of the dotted one slower."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.5))
    palette = palette or arm_palette(summary["variant"])
    for r in summary.to_dict("records"):
        mean = r[f"{metric}_mean"]
        yerr = [[0 if pd.isna(r["ci_low"]) else mean - r["ci_low"]], [0 if pd.isna(r["ci_high"]) else r["ci_high"] - mean]]
        ax.errorbar(r["tokens_per_s"], mean, yerr=yerr, fmt="o", capsize=3, color=palette[r["variant"]],
                    label=r["variant"])
    if baseline in set(summary["variant"]):
        base = summary[summary["variant"] == baseline].iloc[0]
        ax.axhline(base[f"{metric}_mean"], color="0.4", ls="--", lw=1)
        ax.axvline(base["tokens_per_s"], color="0.4", ls=":", lw=1)
    ax.set(xscale="log", xlabel="training tokens/s (log)", ylabel=f"final {metric.replace('_', ' ')}")
    return ax.figure


def lr_sweep(sweep: pd.DataFrame, metric: str = "final_val_loss", ax: plt.Axes | None = None,
             palette: dict | None = None) -> plt.Figure:
    """The protocol's learning-rate sweep (``tuning.tune_learning_rates``): the mean ``metric`` on the
    tuning seeds at each rate, one line per arm on a log-rate axis, the rate each arm was given ringed."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4.5))
    column = f"{metric}_mean"
    palette = palette or arm_palette(sweep["variant"])
    for arm, group in sweep.groupby("variant", sort=False):
        group = group.sort_values("learning_rate")
        ax.plot(group["learning_rate"], group[column], "o-", color=palette[arm], label=arm)
        if group[column].notna().any():
            chosen = group.loc[group[column].idxmin()]
            ax.scatter([chosen["learning_rate"]], [chosen[column]], s=140, facecolors="none", edgecolors=palette[arm])
    ax.set(xscale="log", xlabel="peak learning rate (log; ringed: the rate chosen)",
           ylabel=f"{metric.replace('_', ' ')}, mean over tuning seeds")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    return ax.figure


def save_sweep(sweep: pd.DataFrame, name: str, fig_dir: str | Path, stamp: Stamp, metric: str = "final_val_loss",
               title: str = "learning-rate sweep", *, tuning_seeds) -> SavedFigure | None:
    """Draw (``lr_sweep``) and save a sweep as ``name``, stamped with the ``tuning_seeds`` it trained on (not
    the notebook's evaluation seeds); a profile with one rate has no sweep, and says so."""
    if not len(sweep):
        print(f"{title}: one learning rate in the {stamp.profile} profile, no sweep to show")
        return None
    if not tuning_seeds:
        raise ValueError(f"tuning_seeds={tuning_seeds!r} must name the seeds the sweep trained on")
    return save_figure(lr_sweep(sweep, metric), sweep, name, fig_dir, stamp.with_seeds(tuning_seeds), title=title)


def save_table(table: pd.DataFrame, name: str, fig_dir: str | Path, stamp: Stamp) -> Path:
    """Write ``table`` as ``<fig_dir>/<name>.csv`` with the stamp's fields as extra columns where the table has
    none of its own: a runs table keeps each run's device and commit (those it was trained on and at, read back
    from the run cache), as ``save_figure`` does."""
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    stamp_fields = {"profile": stamp.profile, "device": stamp.device, "seeds": " ".join(map(str, stamp.seeds)),
                    "commit": stamp.commit}
    stamped = table.assign(**{k: v for k, v in stamp_fields.items() if k not in table})
    path = fig_dir / f"{name}.csv"
    stamped.to_csv(path, index=False)
    return path


STAMP_COLUMNS = {"profile": str, "device": str, "seeds": str, "commit": str}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV written by ``save_table``/``save_figure``/``run_grid`` with its stamp columns as text (a short
    commit such as ``77722e4`` would otherwise be read as the number 7.7722e8)."""
    return pd.read_csv(path, dtype=STAMP_COLUMNS)
