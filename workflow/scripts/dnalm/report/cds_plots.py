"""The CDS QC figure: counts per sample and drop reason, length and GC distributions."""

from __future__ import annotations

import os
import warnings

from dnalm.core.io import (
    atomic_path,
)


def plot_qc(summary_df, per_cds_df, png_path: str | os.PathLike) -> None:
    """A PNG with three panels: stacked bars of kept / dropped-by-reason CDS per sample, and
    the GC and length distributions of kept CDS per sample. Written atomically."""
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    import matplotlib

    matplotlib.use("Agg")
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    import matplotlib.pyplot as plt

    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    import seaborn as sns

    samples = list(summary_df["sample"])
    reasons = [c for c in summary_df.columns if c.startswith("dropped_")]
    kept = per_cds_df[per_cds_df["status"] == "kept"].copy()
    height = max(3.0, 0.35 * len(samples) + 1.5)
    fig, axes = plt.subplots(1, 3, figsize=(16, height), constrained_layout=True)
    left = [0.0] * len(samples)
    colours = sns.color_palette("tab20", len(reasons) + 1)
    bars = [("kept", list(summary_df["kept"]))] + [
        (c.removeprefix("dropped_"), list(summary_df[c])) for c in reasons
    ]
    for (name, values), colour in zip(bars, colours, strict=True):
        axes[0].barh(samples, values, left=left, label=name, color=colour)
        left = [a + b for a, b in zip(left, values, strict=True)]
    axes[0].invert_yaxis()
    axes[0].set_xlabel("CDS")
    axes[0].set_title("CDS kept and dropped (by reason)")
    axes[0].legend(fontsize="small", loc="lower right")
    if len(kept):
        with warnings.catch_warnings():  # seaborn 0.13 passes matplotlib's deprecated `vert`
            warnings.filterwarnings("ignore", message="vert: bool", module="seaborn")
            sns.boxplot(data=kept, x="gc", y="sample", order=samples, ax=axes[1], fliersize=1)
            sns.boxplot(
                data=kept,
                x="length",
                y="sample",
                order=samples,
                ax=axes[2],
                fliersize=1,
                log_scale=True,
            )
    axes[1].set_title("GC content of kept CDS")
    axes[1].set_xlabel("GC fraction")
    axes[2].set_title("length of kept CDS")
    axes[2].set_xlabel("length (nt, log scale)")
    for ax in axes[1:]:
        ax.set_ylabel("")
        ax.set_yticklabels([])
    with atomic_path(png_path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
