"""Probe figures: UMAP scatter plots (one model, or before/after fine-tuning side by side) and
confusion matrices, in the one style of :mod:`dnalm.report.style`."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.report import style


def species_palette(species: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """Species -> colour, by sorted species name, so every figure of a run agrees."""
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    import seaborn as sns

    names = sorted({str(s) for s in species})
    colors = sns.color_palette("colorblind" if len(names) <= 10 else "husl", len(names))
    return dict(zip(names, colors, strict=True))


def _save(fig, png_path: str | os.PathLike) -> list[Path]:
    """Write `fig` as PNG and SVG beside it, each atomically (dnalm.report.style.save, so probe
    figures share the resolution and style of every other dnalm figure)."""
    return style.save(fig, png_path)


def _scatter(ax, df: pd.DataFrame, palette: Mapping[str, Any], title: str) -> None:
    n = len(df)
    size = 12 if n <= 2000 else max(2.0, 12 * math.sqrt(2000 / n))
    for name in palette:
        sub = df[df["species"] == name]
        if len(sub):
            ax.scatter(
                sub["x"], sub["y"], s=size, color=palette[name], alpha=0.75, linewidths=0,
                label=name, rasterized=n > 5000,
            )  # fmt: skip
    ax.set_title(title)
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _legend(fig, palette: Mapping[str, Any]) -> None:
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", linestyle="", color=c, markersize=6, label=name)
        for name, c in palette.items()
    ]
    fig.legend(
        handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
        title="species",
    )  # fmt: skip


def _check_coords(df: pd.DataFrame, what: str) -> None:
    missing = {"species", "x", "y"} - set(df.columns)
    if missing:
        raise InputFormatError(f"{what}: coordinates table lacks columns {sorted(missing)}")


def plot_umap(
    coords_df: pd.DataFrame,
    png_path: str | os.PathLike,
    title: str,
    palette: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Scatter of one UMAP (id, species, x, y) coloured by species; PNG + SVG."""
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    from matplotlib.figure import Figure

    _check_coords(coords_df, "plot_umap")
    palette = palette or species_palette(coords_df["species"])
    with style.style():
        fig = Figure(figsize=(4.2, 3.6), layout="constrained")
        _scatter(fig.add_subplot(), coords_df, palette, title)
        _legend(fig, palette)
        return _save(fig, png_path)


def plot_umap_pair(
    before_df: pd.DataFrame,
    after_df: pd.DataFrame,
    png_path: str | os.PathLike,
    titles: Sequence[str] = ("before fine-tuning", "after fine-tuning"),
    palette: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Two UMAP panels side by side (e.g. one model before and after fine-tuning) with one
    shared species legend and the same colours in both; PNG + SVG."""
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    from matplotlib.figure import Figure

    if len(titles) != 2:
        raise ConfigError(f"plot_umap_pair needs two titles, got {len(titles)}")
    _check_coords(before_df, "plot_umap_pair (before)")
    _check_coords(after_df, "plot_umap_pair (after)")
    palette = palette or species_palette(
        pd.concat([before_df["species"], after_df["species"]]).tolist()
    )
    with style.style():
        fig = Figure(figsize=(7.2, 3.4), layout="constrained")
        axes = fig.subplots(1, 2)
        _scatter(axes[0], before_df, palette, titles[0])
        _scatter(axes[1], after_df, palette, titles[1])
        _legend(fig, palette)
        return _save(fig, png_path)


def plot_confusion(
    cm: np.ndarray | Sequence[Sequence[int]],
    labels: Sequence[str],
    png_path: str | os.PathLike,
    title: str | None = None,
    normalize: bool = True,
) -> list[Path]:
    """Confusion-matrix heatmap (rows true, columns predicted). With `normalize` each row is
    divided by its total, so the diagonal is per-species recall; PNG + SVG."""
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    import seaborn as sns

    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    from matplotlib.figure import Figure

    cm = np.asarray(cm, dtype=np.float64)
    n = len(labels)
    if cm.shape != (n, n):
        raise InputFormatError(f"confusion matrix shape {cm.shape} does not match {n} labels")
    if normalize:
        totals = cm.sum(1, keepdims=True)
        cm = np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)
    side = min(7.2, 1.6 + 0.45 * n)
    with style.style():
        fig = Figure(figsize=(side + 0.9, side), layout="constrained")
        ax = fig.add_subplot()
        sns.heatmap(
            cm, ax=ax, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None, square=True,
            annot=n <= 12, fmt=".2f" if normalize else ".0f", annot_kws={"fontsize": 7},
            xticklabels=list(labels), yticklabels=list(labels),
            cbar_kws={"label": "fraction of true class" if normalize else "count"},
        )  # fmt: skip
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.tick_params(axis="x", labelrotation=45)
        for t in ax.get_xticklabels():
            t.set_horizontalalignment("right")
        ax.tick_params(axis="y", labelrotation=0)
        if title:
            ax.set_title(title)
        return _save(fig, png_path)


# ----------------------------------------------------------------------------- accuracy

PROBE_REQUIRED = ("model", "regime", "accuracy", "chance")


def plot_probe_accuracy(
    probe_table_tsv: str | os.PathLike, out_png: str | os.PathLike
) -> list[Path]:
    """Species-probe test accuracy per representation (the probe table of
    :func:`dnalm.evaluation.probe.assemble_table`): one bar per row, coloured by regime, the k-mer
    baseline grey and hatched, chance (1 / classes) and the majority-class rate as lines;
    whiskers: bootstrap 95% CIs over test fragments when the table has them."""
    df = style.read_table(probe_table_tsv, "probe table", PROBE_REQUIRED, sep="\t")
    acc = pd.to_numeric(df["accuracy"], errors="coerce").to_numpy(dtype=float)
    labels = []
    by = ["model", "probe_kind"] if "probe_kind" in df else ["model"]
    multi_layer = "layer" in df and df.groupby(by)["model"].transform("size").gt(1)
    for k, rec in enumerate(df.to_dict("records")):
        text = str(rec["model"])
        if "layer" in df and bool(multi_layer.iloc[k]) and not pd.isna(rec.get("layer")):
            text += f" L{int(rec['layer'])}"
        if "probe_kind" in df and df["probe_kind"].nunique() > 1:
            text += f" [{rec['probe_kind']}]"
        labels.append(text)
    regimes = df["regime"].astype(str).tolist()
    chance = style.one_value(df, "chance", probe_table_tsv)
    majority = style.one_value(df, "majority_rate", probe_table_tsv)
    with style.style():
        fig = style.new_figure(style.WIDTH_1COL + 1.6, style.height(len(df)))
        ax = fig.add_subplot()
        bars = style.barh(ax, labels, acc, style.bar_styles(regimes))
        style.label_bars(ax, bars, [f"{v:.3f}" if math.isfinite(v) else "n/a" for v in acc])
        style.ci_whiskers(ax, df, acc)
        extra = style.chance_lines(
            ax, [(majority, "--", "chance: majority class"), (chance, ":", "chance: uniform")]
        )
        ax.set_xlim(0, 1.15)
        n_classes = style.one_value(df, "n_classes", probe_table_tsv)
        what = f"{int(n_classes)} species" if math.isfinite(n_classes) else "species"
        ax.set(xlabel="probe accuracy (test)", title=f"linear species probe ({what})")
        style.regime_legend(ax, regimes, extra)
        return style.save(fig, out_png)


# ----------------------------------------------------------------------------- layer probe

LAYER_REQUIRED = ("model", "regime", "layer", "pooling", "probe_kind", "accuracy")


def plot_layer_probe(layer_table_tsv: str | os.PathLike, out_png: str | os.PathLike) -> list[Path]:
    """The layer probe (:func:`dnalm.evaluation.layer_probe.layer_table`): one panel per
    model (and regime), test accuracy against the hidden-state layer (0 = the embedding
    output), one line per pooling with its bootstrap 95% CI as a band where the table has it,
    the model's best layer and pooling (by cross-validated accuracy) ringed, and the k-mer
    baseline's accuracy as a horizontal line. The logistic-regression rows only."""
    df = style.read_table(layer_table_tsv, "layer-probe table", LAYER_REQUIRED, sep="\t")
    df = df[df["probe_kind"].fillna("logreg").astype(str) == "logreg"]
    base = df[df["regime"].map(style.is_baseline)]
    rows = df[~df["regime"].map(style.is_baseline)]
    if rows.empty:
        raise InputFormatError(f"{layer_table_tsv}: no layer-probe rows to draw")
    panels = list(
        dict.fromkeys(zip(rows["model"].astype(str), rows["regime"].astype(str), strict=True))
    )
    poolings = list(dict.fromkeys(rows["pooling"].astype(str)))
    colors = dict(zip(poolings, style.palette(len(poolings)), strict=True))
    n_cols = min(len(panels), 3)
    n_rows = math.ceil(len(panels) / n_cols)
    with style.style():
        fig = style.new_figure(style.WIDTH_1COL * n_cols * 0.9 + 0.4, 2.3 * n_rows + 0.6)
        axes = fig.subplots(n_rows, n_cols, squeeze=False, sharey=True).ravel()
        for ax, (model, regime) in zip(axes, panels, strict=False):
            sub = rows[(rows["model"].astype(str) == model) & (rows["regime"] == regime)]
            for pooling in poolings:
                line = sub[sub["pooling"].astype(str) == pooling].sort_values("layer")
                if line.empty:
                    continue
                x = line["layer"].to_numpy(dtype=float)
                y = line["accuracy"].to_numpy(dtype=float)
                ax.plot(x, y, marker="o", ms=3, lw=1.2, color=colors[pooling], label=pooling)
                if {"ci95_low", "ci95_high"} <= set(line):
                    lo = line["ci95_low"].to_numpy(dtype=float)
                    hi = line["ci95_high"].to_numpy(dtype=float)
                    if np.isfinite(lo).all() and np.isfinite(hi).all():
                        ax.fill_between(x, lo, hi, color=colors[pooling], alpha=0.15, lw=0)
            if "best" in sub:
                top = sub[sub["best"].astype(str).str.lower() == "true"]
                ax.scatter(
                    top["layer"].to_numpy(dtype=float), top["accuracy"].to_numpy(dtype=float),
                    s=70, facecolors="none", edgecolors=style.CHANCE_COLOR, lw=1.0, zorder=4,
                    label="best (CV)",
                )  # fmt: skip
            for _, b in base.iterrows():
                ax.axhline(
                    float(b["accuracy"]), color=style.BASELINE_COLOR, ls="--", lw=1.2,
                    label=str(b["model"]),
                )  # fmt: skip
            ax.set_title(f"{model} ({regime})")
            ax.set_xlabel("layer (0 = embeddings)")
            layers = sorted(sub["layer"].dropna().astype(int).unique())
            ax.set_xticks(layers if len(layers) <= 13 else layers[:: math.ceil(len(layers) / 12)])
            ax.set_ylim(0, 1.02)
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        axes[0].set_ylabel("probe accuracy (test)")
        style.legend_below(fig, axes[0], "pooling")
        return style.save(fig, out_png)
