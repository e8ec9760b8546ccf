"""The train/test leakage figure: histograms of each test CDS's best identity to any train CDS
(the table of :func:`dnalm.genome.homology.leakage_report`), in the one style of
:mod:`dnalm.report.style`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.core.errors import InputFormatError
from dnalm.report import style

#: identity thresholds marked on the figure (and summarised in the leakage summary)
THRESHOLDS = (0.5, 0.8, 0.95)


def plot_leakage(
    table: pd.DataFrame | str | os.PathLike,
    png_path: str | os.PathLike,
    method: str = "identity",
    level: str = "nucleotide",
    min_identity: float | None = None,
    coverage: float | None = None,
) -> list[Path]:
    """Two panels: best identity of each test CDS to train over any alignment (left) and over
    alignments covering both sequences by at least `coverage` (right); test CDS without a hit
    are counted in the legend, not drawn. Dashed lines at 50/80/95%, a solid one at
    `min_identity`. Writes PNG + SVG atomically; returns their paths."""
    if not isinstance(table, pd.DataFrame):
        table = pd.read_csv(table, sep="\t")
    needed = {"hit", "identity", "identity_covered"}
    if needed - set(table.columns):
        raise InputFormatError(f"leakage table lacks columns {sorted(needed - set(table.columns))}")
    bins = np.linspace(0.0, 1.0, 41)
    cov = f"coverage >= {coverage:g}" if coverage is not None else "covering both"
    panels = [
        ("identity", "best hit, any alignment length"),
        ("identity_covered", f"best hit with {cov} of both CDS"),
    ]
    with style.style():
        fig = style.new_figure(style.WIDTH_2COL, 2.8)
        axes = fig.subplots(1, 2, sharey=True)
        color = style.palette(1)[0]
        for ax, (col, title) in zip(axes, panels, strict=True):
            values = table.loc[table[col] > 0, col].astype(float)
            none = int((table[col] <= 0).sum())
            ax.hist(values, bins=bins, color=color, label=f"{len(values)} test CDS with such a hit")
            for t in THRESHOLDS:
                frac = float((table[col] >= t).mean()) if len(table) else 0.0
                ax.axvline(t, color=style.CHANCE_COLOR, ls="--", lw=0.8)
                ax.text(t, 1.0, f" {frac:.1%}", transform=ax.get_xaxis_transform(), fontsize=7,
                        va="top", ha="left")  # fmt: skip
            if min_identity is not None:
                ax.axvline(
                    min_identity,
                    color="#d55e00",
                    lw=1.0,
                    label=f"splits.mmseqs.min_identity ({min_identity:g})",
                )
            ax.plot([], [], " ", label=f"{none} without one (identity 0, not drawn)")
            ax.set_xlim(0, 1.02)
            ax.set_xlabel("identity to the closest train CDS")
            ax.set_title(title)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), fontsize=7, frameon=False)
        axes[0].set_ylabel("test CDS")
        fig.suptitle(
            f"Train/test leakage: {len(table)} test CDS, splits by {method}, {level} level\n"
            "(labels: share of test CDS at or above each dashed line)",
            fontsize=9,
        )
        return style.save(fig, png_path)
