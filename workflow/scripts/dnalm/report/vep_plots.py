"""The zero-shot variant-effect figure: per scorer (each language model and the count-model
baselines) the AUROC with which its score separates simulated nonsense (and missense) SNVs
from synonymous ones, in the one style of :mod:`dnalm.report.style`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.core.errors import InputFormatError
from dnalm.report import style

NEEDED = ("scorer", "kind", "comparison", "auroc")
COMPARISONS = (
    ("nonsense_vs_synonymous", "nonsense vs synonymous"),
    ("missense_vs_synonymous", "missense vs synonymous"),
)


def plot_vep_auroc(auroc_tsv: str | os.PathLike, out_png: str | os.PathLike) -> list[Path]:
    """Grouped horizontal bars from the VEP AUROC table (columns scorer, kind, comparison,
    auroc): one group per scorer (models first, then baselines, hatched), one bar per
    comparison, and the chance line at 0.5. Returns [png, svg]."""
    df = pd.read_csv(auroc_tsv, sep="\t")
    missing = [c for c in NEEDED if c not in df.columns]
    if missing:
        raise InputFormatError(f"{auroc_tsv}: missing column(s) {missing}")
    if df.empty:
        raise InputFormatError(f"{auroc_tsv}: no rows to plot")
    order = df.sort_values("kind", key=lambda k: k != "model", kind="stable")
    scorers = list(dict.fromkeys(order["scorer"]))
    kinds = dict(zip(df["scorer"], df["kind"], strict=False))
    colors = style.palette(len(COMPARISONS))
    bar = 0.8 / len(COMPARISONS)
    y = np.arange(len(scorers))
    with style.style():
        fig = style.new_figure(6.5, max(2.0, 0.5 * len(scorers) + 1.2))
        ax = fig.subplots()
        for j, (comp, label) in enumerate(COMPARISONS):
            vals = []
            for s in scorers:
                hit = df[(df["scorer"] == s) & (df["comparison"] == comp)]["auroc"]
                vals.append(float(hit.iloc[0]) if len(hit) else np.nan)
            ys = y + (j - (len(COMPARISONS) - 1) / 2) * bar
            bars = ax.barh(ys, np.nan_to_num(vals), height=bar, color=colors[j], label=label)
            for b, s in zip(bars, scorers, strict=True):
                if kinds[s] == "baseline":
                    b.set_hatch("//")
            for yi, v in zip(ys, vals, strict=True):
                ax.text(0, yi, " n/a" if np.isnan(v) else f" {v:.2f}", va="center", fontsize=6)
        ax.axvline(0.5, color="0.3", linestyle="--", linewidth=0.8)
        ax.set_yticks(y, [f"{s} (baseline)" if kinds[s] == "baseline" else s for s in scorers])
        ax.invert_yaxis()
        ax.set_xlim(0, 1.0)
        ax.set_xlabel("AUROC (damaging class vs synonymous; 0.5 = chance)")
        fig.legend(loc="outside upper center", ncol=len(COMPARISONS), frameon=False)
        return style.save(fig, out_png)
