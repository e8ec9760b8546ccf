"""Attribution figures: tracks with the sequence as a logo (logomaker) for a few explained
windows, and the per-task summaries (bound-vs-unbound AUROC per run and method; motif
similarity to the known motifs), in the one style of :mod:`dnalm.report.style`.

Inputs are the interpretation stage's files (``attributions.npz`` and the per-task table;
formats in :mod:`dnalm.interpretation.run`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.core.alphabet import BASES
from dnalm.core.errors import InputFormatError
from dnalm.report import style

METHOD_LABEL = {"ism": "ISM", "grad_x_input": "gradient × input", "ig": "integrated gradients"}


def _load(npz: str | os.PathLike) -> dict[str, np.ndarray]:
    try:
        with np.load(npz, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise InputFormatError(f"{npz}: cannot read attributions ({err})") from err


def plot_attribution_tracks(
    npz: str | os.PathLike, out_png: str | os.PathLike, n_windows: int = 3, title: str = ""
) -> list[Path]:
    """One row per (window, method): the reference sequence as a logo whose letter heights
    are the per-position attribution (positive up, negative down); bound bases (per-base
    tasks) shaded. Windows: the first `n_windows` of the file."""
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    import logomaker

    z = _load(npz)
    methods = [m for m in METHOD_LABEL if m in z]
    if not methods:
        raise InputFormatError(f"{npz}: no attribution arrays ({list(METHOD_LABEL)})")
    n = min(int(n_windows), len(z["codes"]))
    with style.style():
        fig = style.new_figure(style.WIDTH_2COL, 1.0 * n * len(methods) + 0.4)
        axes = fig.subplots(n * len(methods), 1, squeeze=False)[:, 0]
        for i in range(n):
            m = z["mask"][i]
            length = int(np.flatnonzero(z["codes"][i] != 4).max() + 1) if m.any() else 0
            onehot = np.eye(5, 4)[z["codes"][i, :length].astype(int)]  # (L, 4)
            for j, method in enumerate(methods):
                ax = axes[i * len(methods) + j]
                mat = pd.DataFrame(onehot * z[method][i, :length, None], columns=list(BASES))
                logomaker.Logo(mat, ax=ax, color_scheme="classic", baseline_width=0.3)
                if "targets" in z:
                    for p in np.flatnonzero(z["targets"][i, :length] > 0):
                        ax.axvspan(p - 0.5, p + 0.5, color="#f2c94c", alpha=0.25, lw=0)
                label = z["labels"][i] if "labels" in z else ""
                ax.set_ylabel(METHOD_LABEL[method], fontsize=6, rotation=0, ha="right")
                if j == 0:
                    ax.set_title(f"{z['ids'][i]} {label}".strip(), fontsize=7, loc="left")
                ax.set_xticks([])
        if title:
            fig.suptitle(title)
        return style.save(fig, out_png)


def plot_auroc(table: pd.DataFrame, out_png: str | os.PathLike) -> list[Path]:
    """Bars of the pooled bound-vs-unbound AUROC per run, one colour per method; 0.5 dashed."""
    if table.empty:
        raise InputFormatError("no AUROC rows to plot")
    runs = list(dict.fromkeys(table["run"]))
    methods = list(dict.fromkeys(table["method"]))
    colors = style.palette(len(methods))
    with style.style():
        fig = style.new_figure(style.WIDTH_1COL, style.height(len(runs) * len(methods)))
        ax = fig.subplots()
        h = 0.8 / len(methods)
        for k, method in enumerate(methods):
            sub = table[table["method"] == method].set_index("run").reindex(runs)
            y = np.arange(len(runs)) + k * h
            ax.barh(y, sub["auroc_pooled"], height=h, color=colors[k], label=METHOD_LABEL[method])
        ax.axvline(0.5, color=style.CHANCE_COLOR, ls="--", lw=0.8)
        ax.set_yticks(np.arange(len(runs)) + 0.4 - h / 2, runs)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("AUROC, |attribution| of bound vs unbound bases")
        ax.legend(fontsize=6, loc="lower right")
        return style.save(fig, out_png)


def plot_motif_similarity(table: pd.DataFrame, out_png: str | os.PathLike) -> list[Path]:
    """Per run x method x class, the best similarity of a discovered motif to each known
    motif (points), with the chance level (95th percentile of random motifs) as a tick."""
    ok = table[table["motif_rank"] > 0] if "motif_rank" in table else table.iloc[:0]
    if ok.empty or "known" not in ok:
        with style.style():
            fig = style.new_figure(style.WIDTH_1COL, 1.2)
            ax = fig.subplots()
            ax.text(0.5, 0.5, "no motif found by any run", ha="center", va="center")
            ax.set_axis_off()
            return style.save(fig, out_png)
    best = (
        ok.groupby(["run", "method", "class", "known"], sort=False)
        .agg(similarity=("similarity", "max"), null_p95=("null_p95", "max"))
        .reset_index()
    )
    best["row"] = best["run"] + " · " + best["method"].map(METHOD_LABEL) + " · " + best["class"]
    rows = list(dict.fromkeys(best["row"]))
    known = list(dict.fromkeys(best["known"]))
    colors = style.palette(len(known))
    with style.style():
        fig = style.new_figure(style.WIDTH_2COL * 0.7, style.height(len(rows)))
        ax = fig.subplots()
        for k, name in enumerate(known):
            sub = best[best["known"] == name].set_index("row").reindex(rows)
            y = np.arange(len(rows)) + (k - (len(known) - 1) / 2) * 0.2
            ax.scatter(sub["similarity"], y, color=colors[k], s=14, label=name, zorder=3)
            ax.scatter(sub["null_p95"], y, color=colors[k], marker="|", s=40, zorder=2)
        ax.set_yticks(np.arange(len(rows)), rows, fontsize=6)
        ax.invert_yaxis()
        ax.set_xlim(-0.2, 1.02)
        ax.set_xlabel("best motif similarity (Pearson r, both strands)")
        ax.legend(fontsize=6, title="known motif", title_fontsize=6, loc="lower left")
        return style.save(fig, out_png)
