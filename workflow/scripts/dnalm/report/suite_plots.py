"""The figure of a benchmark suite: one panel per task, one dot per model with its
bootstrap 95% CI where the table has one, published numbers as open diamonds
(:mod:`dnalm.finetuning.suite_table` gives the numbers)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.core.errors import InputFormatError
from dnalm.report import style

MARKERS = {"ours": ("o", None), "baseline": ("s", style.BASELINE_COLOR), "published": ("D", "none")}


def plot_suite(long: pd.DataFrame, out_png: str | os.PathLike, title: str = "") -> list[Path]:
    """Dot plot of `long` (columns task, row, source, metric, mean, ci95_low, ci95_high)."""
    if long.empty:
        raise InputFormatError(f"{out_png}: no numbers to plot for the suite")
    tasks = list(dict.fromkeys(long["task"]))
    rows = list(dict.fromkeys(long.sort_values(["source", "row"])["row"]))
    y = {r: i for i, r in enumerate(rows)}
    with style.style():
        fig = style.new_figure(
            min(style.WIDTH_2COL, 1.2 + 2.0 * len(tasks)), style.height(len(rows)) + 0.4
        )
        axes = fig.subplots(1, len(tasks), sharey=True, squeeze=False)[0]
        for ax, task in zip(axes, tasks, strict=True):
            t = long[long["task"] == task]
            for _, r in t.iterrows():
                marker, face = MARKERS.get(r["source"], ("o", None))
                yy = y[r["row"]]
                lo, hi = r["ci95_low"], r["ci95_high"]
                if math.isfinite(lo) and math.isfinite(hi):
                    ax.plot([lo, hi], [yy, yy], color="0.3", lw=1)
                ax.plot(
                    [r["mean"]], [yy], marker=marker, ls="", color="0.15",
                    markerfacecolor=face if face is not None else "0.15",
                )  # fmt: skip
            values = t["mean"].to_numpy(float)
            lo = np.nanmin(np.r_[values, t["ci95_low"].to_numpy(float)])
            ax.set_xlim(min(0.0, lo) if np.isfinite(lo) else 0.0, 1.0)
            ax.set(title=task, xlabel=style.METRIC_LABEL.get(t["metric"].iloc[0], "metric"))
        axes[0].set_yticks(range(len(rows)), rows)
        axes[0].invert_yaxis()
        if title:
            fig.suptitle(title)
        return style.save(fig, out_png)
