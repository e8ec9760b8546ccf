"""The generation summary figure: per causal model, the k-mer spectrum divergence (JSD, k = 6)
and the fraction of valid ORFs of its samples beside its count-model (Markov) baseline and
a second natural draw of the same size, in the one style of :mod:`dnalm.report.style`. A
value that does not apply (valid ORFs of a genome corpus, or of a set whose every sequence
was cut at the length cap) gets no bar, only the label "n/a"."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.core.errors import InputFormatError
from dnalm.report import style

NEEDED = ("model", "row", "jsd_k6", "valid_orf")
PANELS = (
    ("jsd_k6", "6-mer spectrum JSD (bits, lower is better)"),
    ("valid_orf", "valid ORF fraction (CDS corpora)"),
)
ROW_KINDS = ("model", "markov", "natural")
ROW_LABELS = {
    "model": "language model",
    "markov": "Markov baseline",
    "natural": "natural (second draw)",
}
NOT_APPLICABLE = "n/a"


def plot_generation_summary(
    summary_tsv: str | os.PathLike, out_png: str | os.PathLike
) -> list[Path]:
    """Grouped horizontal bars from results/generate/summary.tsv (columns model, row, jsd_k6,
    valid_orf): one group per model, one bar per row kind. Returns [png, svg]."""
    with style.style():
        return style.save(draw_generation_summary(summary_tsv), out_png)


def draw_generation_summary(summary_tsv: str | os.PathLike):
    """The figure of :func:`plot_generation_summary`, not yet saved (call it inside
    ``style.style()``): a NaN value (not applicable) draws no bar, only the label "n/a"."""
    df = pd.read_csv(summary_tsv, sep="\t")
    missing = [c for c in NEEDED if c not in df.columns]
    if missing:
        raise InputFormatError(f"{summary_tsv}: missing column(s) {missing}")
    if df.empty:
        raise InputFormatError(f"{summary_tsv}: no rows to plot")
    df = df.assign(kind=np.where(df["row"] == df["model"], "model", df["row"]))
    models = list(dict.fromkeys(df["model"]))
    colors = dict(zip(ROW_KINDS, style.palette(len(ROW_KINDS)), strict=True))
    height = 0.8
    bar = height / len(ROW_KINDS)
    fig = style.new_figure(9.0, max(2.0, 0.6 * len(models) + 1.2))
    axes = fig.subplots(1, len(PANELS), sharey=True)
    y = np.arange(len(models))
    for ax, (col, title) in zip(axes, PANELS, strict=True):
        for j, kind in enumerate(ROW_KINDS):
            vals = []
            for m in models:
                hit = df[(df["model"] == m) & (df["kind"] == kind)][col]
                vals.append(float(hit.iloc[0]) if len(hit) else np.nan)
            ys = y + (j - 1) * bar
            shown = [not np.isnan(v) for v in vals]
            ax.barh(
                ys[shown],
                np.asarray(vals)[shown],
                height=bar,
                color=colors[kind],
                label=ROW_LABELS[kind],
            )
            for yi, v in zip(ys, vals, strict=True):
                label = NOT_APPLICABLE if np.isnan(v) else f"{v:.3g}"
                ax.text(0, yi, f" {label}", va="center", fontsize=6)
        ax.set_title(title)
        ax.set_yticks(y, models)
    axes[0].invert_yaxis()  # shared y: once for both panels (first model on top)
    axes[1].set_xlim(0, 1.05)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=len(ROW_KINDS), frameon=False)
    return fig
