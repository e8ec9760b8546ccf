"""The compute figure of a scaling sweep: test bits/nt against training FLOPs (the table of
:func:`dnalm.evaluation.scaling.sweep_summary`), in the one style of :mod:`dnalm.report.style`."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.core.errors import InputFormatError
from dnalm.report import style

NEEDED = ("size", "non_embedding_params", "flops", "test_bits_per_nt", "on_frontier")


def plot_scaling(
    summary: pd.DataFrame | str | os.PathLike,
    png_path: str | os.PathLike,
    fit_text: str,
    predict: Callable[[np.ndarray], np.ndarray] | None = None,
    title: str = "",
) -> list[Path]:
    """Test bits/nt against training FLOPs (log x): one colour per model size (legend with
    its non-embedding parameters), the compute frontier as a step line, the fitted curve
    `predict` (None: no fit) labelled `fit_text` (the formula, or 'no fit: N points'),
    and the count baseline (median of the runs' baseline bits/nt) as a horizontal line.
    Writes PNG + SVG atomically; returns their paths."""
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    from matplotlib.ticker import NullFormatter

    df = summary if isinstance(summary, pd.DataFrame) else pd.read_csv(summary, sep="\t")
    missing = [c for c in NEEDED if c not in df.columns]
    if missing:
        raise InputFormatError(f"scaling summary lacks columns {missing}")
    if df.empty:
        raise InputFormatError("scaling summary has no runs")
    df = df.assign(on_frontier=df["on_frontier"].astype(str).str.lower() == "true")
    sizes = df.groupby("size", sort=False)["non_embedding_params"].first().sort_values().index
    colours = dict(zip(sizes, style.palette(len(sizes)), strict=True))
    with style.style():
        fig = style.new_figure(6.0, 4.2)
        ax = fig.add_subplot()
        for size in sizes:
            sub = df[df["size"] == size]
            n = int(sub["non_embedding_params"].iloc[0])
            label = f"{size} ({style.human(n)} non-emb. params)"
            ax.scatter(
                sub["flops"], sub["test_bits_per_nt"], s=36, color=colours[size], zorder=4,
                edgecolor="black", linewidth=0.4, label=label,
            )  # fmt: skip
        front = df[df["on_frontier"]].sort_values("flops")
        if len(front):
            ax.plot(
                front["flops"], front["test_bits_per_nt"], color="0.3", lw=1.0, ls=":",
                drawstyle="steps-post", zorder=3, label="compute frontier",
            )  # fmt: skip
        lo, hi = float(df["flops"].min()), float(df["flops"].max())
        if predict is not None and lo > 0:
            xs = np.geomspace(lo / 1.5, hi * 1.5, 200)
            ax.plot(xs, predict(xs), color="C3", lw=1.4, zorder=3, label=f"fit: {fit_text}")
        else:
            ax.text(
                0.02, 0.03, fit_text, transform=ax.transAxes, fontsize=8, color="C3",
                ha="left", va="bottom",
            )  # fmt: skip
        base = pd.to_numeric(df.get("baseline_bits_per_nt"), errors="coerce").dropna()
        if len(base):
            name = str(df["baseline"].dropna().iloc[0]) if "baseline" in df else "baseline"
            level = float(base.median())
            if math.isfinite(level):
                ax.axhline(
                    level, color=style.CHANCE_COLOR, lw=1.0, ls="--", zorder=2,
                    label=f"{name} ({level:.3f} bits/nt)",
                )  # fmt: skip
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on short ranges
        ax.set_xlabel("training compute (FLOPs, 6N·D + attention)")
        ax.set_ylabel("test bits per nucleotide")
        if title:
            ax.set_title(title)
        style.legend_below(fig, ax, "runs by model size")
        return style.save(fig, png_path)
