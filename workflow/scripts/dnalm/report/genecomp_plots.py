"""The gene-completion figure: per source (each causal model and the three baselines), the
amino-acid recovery, the share of continuations stopping in frame at a plausible length and
the 31-mer memorisation against the prompt fraction, with 95% bootstrap intervals over genes
(results/gene_completion/summary.tsv, rows of sample ``all``), in the one style of
:mod:`dnalm.report.style`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dnalm.report import style

PANELS = (
    ("recovery", "amino-acid recovery"),
    ("stop_plausible", "in-frame stop at a plausible length"),
    ("kmer31_share", "31-mers found in training CDS"),
)
NEEDED = (
    "sample",
    "source",
    "kind",
    "prompt_fraction",
    *(f"{c}{s}" for c, _ in PANELS for s in ("", "_ci95_low", "_ci95_high")),
)


def plot_gene_completion(summary_tsv: str | os.PathLike, out_png: str | os.PathLike) -> list[Path]:
    """Lines (one per source, dashed for baselines) over the prompt fractions, one panel per
    metric. Returns [png, svg]."""
    df = style.read_table(summary_tsv, "gene completion summary", NEEDED, sep="\t")
    df = df[df["sample"] == "all"]
    sources = list(dict.fromkeys(df["source"]))
    colors = dict(zip(sources, style.palette(len(sources)), strict=True))
    with style.style():
        fig = style.new_figure(12.0, 3.6)
        axes = fig.subplots(1, len(PANELS), sharex=True)
        for ax, (col, title) in zip(axes, PANELS, strict=True):
            for source in sources:
                part = df[df["source"] == source].sort_values("prompt_fraction")
                x = 100 * part["prompt_fraction"].to_numpy(float)
                y = part[col].to_numpy(float)
                lo = np.clip(y - part[f"{col}_ci95_low"].to_numpy(float), 0, None)
                hi = np.clip(part[f"{col}_ci95_high"].to_numpy(float) - y, 0, None)
                baseline = part["kind"].iloc[0] != "model"
                ax.errorbar(
                    x,
                    y,
                    yerr=np.nan_to_num(np.stack([lo, hi])),
                    label=source,
                    color=colors[source],
                    linestyle="--" if baseline else "-",
                    marker="o",
                    capsize=3,
                )
            ax.set_title(title)
            ax.set_xlabel("prompt (% of the gene)")
            ax.set_ylim(-0.02, 1.02)
        axes[0].set_ylabel("share (mean over genes, 95% CI)")
        axes[-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), title="source")
        return style.save(fig, out_png)
