"""The checkpoint-analytics figure of one run or sweep (dnalm.evaluation.analytics's tables):
each cheap metric (bits/nt, RC consistency) against each downstream one that was measured
(species-probe accuracy, VEP AUROC), one point per checkpoint (or sweep run) with its 95%
intervals on both axes, the points joined in training order, and Spearman's rho over points
with its bootstrap interval in the panel's title."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.report import style

LABELS = {
    "bits_per_nt": "validation bits/nt (lower is better)",
    "rc_r": "RC consistency (Pearson r)",
    "probe_accuracy": "species-probe accuracy",
    "vep_auroc": "VEP AUROC",
}


def _err(df: pd.DataFrame, col: str) -> np.ndarray:
    y = df[col].to_numpy(float)
    lo = np.clip(y - df[f"{col}_ci95_low"].to_numpy(float), 0, None)
    hi = np.clip(df[f"{col}_ci95_high"].to_numpy(float) - y, 0, None)
    return np.nan_to_num(np.stack([lo, hi]))


def _fmt(v: float) -> str:
    return "NA" if not math.isfinite(v) else f"{v:.2f}"


def plot_analytics(
    table: pd.DataFrame, corr: pd.DataFrame, out_png: str | os.PathLike, title: str
) -> list[Path]:
    """A grid: rows the cheap metrics, columns the downstream ones in `corr` (a panel saying
    so when none was measured). Returns [png, svg]."""
    cheap = list(dict.fromkeys(corr["cheap"])) or ["bits_per_nt", "rc_r"]
    down = list(dict.fromkeys(corr["downstream"]))
    table = table.sort_values("step")
    with style.style():
        fig = style.new_figure(4.2 * max(1, len(down)), 3.6 * len(cheap))
        axes = np.atleast_2d(fig.subplots(len(cheap), max(1, len(down)), squeeze=False))
        color = style.palette(1)[0]
        for i, c in enumerate(cheap):
            if not down:
                axes[i, 0].text(
                    0.5,
                    0.5,
                    "no downstream metric measured\n(probe and vep off)",
                    ha="center",
                    va="center",
                    transform=axes[i, 0].transAxes,
                )
                axes[i, 0].set_xlabel(LABELS[c])
                continue
            for j, d in enumerate(down):
                ax = axes[i, j]
                x, y = table[c].to_numpy(float), table[d].to_numpy(float)
                ax.errorbar(x, y, xerr=_err(table, c), yerr=_err(table, d), color=color,
                            marker="o", linestyle="-", linewidth=0.8, capsize=2)  # fmt: skip
                for xi, yi, label in zip(x, y, table["point"], strict=True):
                    ax.annotate(str(label), (xi, yi), fontsize=7, xytext=(3, 3),
                                textcoords="offset points")  # fmt: skip
                row = corr[(corr["cheap"] == c) & (corr["downstream"] == d)].iloc[0]
                ax.set_title(
                    f"Spearman rho {_fmt(row['spearman_rho'])} "
                    f"[{_fmt(row['ci95_low'])}, {_fmt(row['ci95_high'])}], "
                    f"{int(row['n_points'])} points"
                )
                ax.set_xlabel(LABELS[c])
                ax.set_ylabel(LABELS[d])
        fig.suptitle(title)
        return style.save(fig, out_png)
