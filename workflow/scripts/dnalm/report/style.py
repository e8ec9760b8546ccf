"""The one look of every dnalm report figure and the pieces the figure modules share.

* :func:`style` (a context): seaborn "whitegrid" with paper-sized text (8-10 pt at the printed
  size) and the colour-blind palette; :func:`palette` for more colours; baselines are always
  grey and hatched (:data:`BASELINE_COLOR`, :data:`BASELINE_HATCH`) so that they read as
  reference bars, never as competitors; chance levels are near-black lines.
* :func:`new_figure` and :func:`save`: figures are drawn on ``matplotlib.figure.Figure``
  objects (no pyplot state, no GUI backend needed) and written as PNG plus an SVG beside it
  (same stem), each atomically, so a failed rule never leaves a figure Snakemake would trust.
  The captions of the report are the ``workflow/report/*.rst`` files the rules name.
* Reading inputs: :func:`read_table` raises :class:`dnalm.core.errors.InputFormatError`
  naming the file when a table is missing, empty or lacks a column, so a report rule fails
  with the path at fault rather than a pandas traceback.
* Bar charts: horizontal bars per run (:func:`barh`, :func:`bar_styles`,
  :func:`label_bars`, :func:`regime_legend`), chance lines, bootstrap CI whiskers, labels of
  counts and durations (:func:`human`, :func:`seconds`).

The figures themselves are in the modules per stage: :mod:`dnalm.report.pretrain_plots`,
:mod:`dnalm.report.finetune_plots`, :mod:`dnalm.report.probe_plots`, ...
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_path
from dnalm.kinds.tasks import TASK_KINDS

log = logging.getLogger(__name__)

#: PNG resolution: sharp in the HTML report and small enough to embed (the SVG is for print).
DPI = 150
#: Figure widths in inches: one column and a full page of a two-column paper.
WIDTH_1COL = 3.5
WIDTH_2COL = 7.2
#: Baselines (regime "baseline" of fine-tuning, "kmer-baseline" of probes) look like this.
BASELINE_COLOR = "#9e9e9e"
BASELINE_HATCH = "///"
BASELINE_REGIMES = frozenset({"baseline", "kmer-baseline"})
#: Chance levels: near-black lines (dashed: majority class, dotted: uniform), no palette hue.
CHANCE_COLOR = "#222222"
#: The main metric of each task kind (the figure's bar height).
MAIN_METRIC = {k.name: k.main_metric for k in TASK_KINDS}
METRIC_LABEL = {
    "pearson_r": "Pearson r (test)",
    "spearman_r": "Spearman ρ (test)",
    "accuracy": "accuracy (test)",
    "macro_f1": "macro-F1 (test)",
    "mcc": "Matthews correlation (test)",
    "auprc_bound": "AUPRC of bound bases (test)",
    "mse": "mean squared error (test)",
}

_RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.titleweight": "regular",
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "svg.hashsalt": "dnalm",  # stable element ids: identical input -> identical SVG
    "svg.fonttype": "path",  # text as outlines: the SVG looks the same without the fonts
    "hatch.linewidth": 0.6,
}


# ----------------------------------------------------------------------------- style and saving


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The one look of every dnalm figure, as a context: create *and save* figures inside it
    (some settings, such as the SVG hash salt, are read at save time)."""
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    import matplotlib as mpl

    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    import seaborn as sns

    with (
        mpl.rc_context(),
        sns.axes_style("whitegrid"),
        sns.plotting_context("paper"),
    ):
        sns.set_palette("colorblind")
        mpl.rcParams.update(_RC)
        yield


def palette(n: int) -> list[tuple[float, float, float]]:
    """`n` distinguishable colours: seaborn's colour-blind palette (10), husl beyond."""
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    import seaborn as sns

    return list(sns.color_palette("colorblind" if n <= 10 else "husl", max(n, 1)))[:n]


def new_figure(width: float, height: float, **kwargs: Any):
    """A constrained-layout ``Figure`` not registered with pyplot (nothing to leak)."""
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained", **kwargs)


def save(fig, png_path: str | os.PathLike, dpi: int = DPI) -> list[Path]:
    """Write `fig` as PNG (`dpi`) and as SVG beside it (same stem), each atomically, then close
    it. Returns [png, svg]."""
    png = Path(png_path)
    if png.suffix.lower() != ".png":
        raise ConfigError(f"{png}: figure path must end in .png (an .svg is written beside it)")
    svg = png.with_suffix(".svg")
    try:
        with atomic_path(png, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
        with atomic_path(svg, suffix=".svg") as tmp:
            fig.savefig(tmp, format="svg", bbox_inches="tight", metadata={"Date": None})
    finally:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:  # a pyplot-made figure: drop it from pyplot's registry
            pyplot.close(fig)
    return [png, svg]


# ----------------------------------------------------------------------------- reading inputs


def read_table(
    path: str | os.PathLike, what: str, required: Sequence[str], sep: str = ","
) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: {what} not found")
    try:
        df = pd.read_csv(path, sep=sep)
    except pd.errors.EmptyDataError:
        raise InputFormatError(f"{path}: {what} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputFormatError(f"{path}: {what} cannot be parsed ({err})") from err
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputFormatError(f"{path}: {what} lacks column(s) {missing} (has {list(df.columns)})")
    if df.empty:
        raise InputFormatError(f"{path}: {what} has a header but no rows")
    return df


def nonempty(mapping: Mapping[str, Any], what: str) -> list[tuple[str, Path]]:
    items = [(str(k), Path(v)) for k, v in mapping.items()]
    if not items:
        raise ConfigError(f"no {what} given to plot")
    return items


def num(value: Any) -> float:
    """A float, nan for None/empty/unparseable (JSON null, an empty TSV cell)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def human(n: float) -> str:
    """1234567 -> '1.2M' (parameter counts, tokens)."""
    if not math.isfinite(n):
        return "n/a"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.3g}"


def seconds(s: float) -> str:
    """A duration for a bar label: '42 s', '3.5 min', '2.1 h'."""
    if not math.isfinite(s):
        return "n/a"
    if s < 120:
        return f"{s:.3g} s"
    if s < 7200:
        return f"{s / 60:.3g} min"
    return f"{s / 3600:.3g} h"


def is_baseline(regime: Any) -> bool:
    return str(regime) in BASELINE_REGIMES


def bar_styles(regimes: Sequence[Any]) -> list[dict[str, Any]]:
    """Bar kwargs per row: one colour per non-baseline regime, grey hatched baselines."""
    order = [r for r in dict.fromkeys(map(str, regimes)) if not is_baseline(r)]
    colours = dict(zip(order, palette(len(order)), strict=True))
    out = []
    for r in map(str, regimes):
        if is_baseline(r):
            out.append(
                {"facecolor": BASELINE_COLOR, "hatch": BASELINE_HATCH, "edgecolor": "#424242"}
            )
        else:
            out.append({"facecolor": colours[r], "edgecolor": "none"})
    return out


def regime_legend(ax, regimes: Sequence[Any], extra: Sequence[Any] = ()) -> None:
    """Legend right of the axes (never over a bar): one patch per regime, then `extra`."""
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    from matplotlib.patches import Patch

    seen = list(dict.fromkeys(map(str, regimes)))
    styles = dict(zip(map(str, regimes), bar_styles(regimes), strict=True))
    handles = [Patch(label=r, **styles[r]) for r in seen] + list(extra)
    ax.legend(
        handles=handles, title="regime", loc="upper left", bbox_to_anchor=(1.01, 1.0),
        frameon=False, borderaxespad=0.0,
    )  # fmt: skip


def chance_lines(ax, levels: Sequence[tuple[float, str, str]]) -> list:
    """Vertical reference lines (level, linestyle, label) for finite levels; their handles."""
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    from matplotlib.lines import Line2D

    handles = []
    for level, ls, text in levels:
        if math.isfinite(level):
            ax.axvline(level, color=CHANCE_COLOR, lw=1.0, ls=ls, zorder=3)
            handles.append(Line2D([], [], color=CHANCE_COLOR, lw=1.0, ls=ls, label=text))
    return handles


def legend_below(fig, ax, title: str) -> None:
    """One legend for all panels, below them (it never hides a curve)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(
        handles, labels, title=title, loc="outside lower center", ncols=min(len(labels), 4),
        frameon=False,
    )  # fmt: skip


def barh(ax, labels: Sequence[str], values: np.ndarray, styles: Sequence[dict]) -> list:
    """Horizontal bars, first row on top."""
    y = np.arange(len(labels))
    bars = []
    for yi, v, st in zip(y, values, styles, strict=True):
        bars.append(ax.barh(yi, 0.0 if not math.isfinite(v) else v, height=0.7, **st)[0])
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    return bars


def label_bars(ax, bars, texts: Sequence[str]) -> None:
    for bar, text in zip(bars, texts, strict=True):
        ax.annotate(
            text,
            (bar.get_x() + bar.get_width(), bar.get_y() + bar.get_height() / 2),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            ha="left",
            fontsize=7,
        )


def height(n_rows: int, per_row: float = 0.28, base: float = 1.2) -> float:
    return base + per_row * max(n_rows, 1)


def one_value(df: pd.DataFrame, col: str, path: Any) -> float:
    vals = pd.to_numeric(df[col], errors="coerce").dropna().unique() if col in df else []
    if len(vals) == 0:
        return math.nan
    if np.ptp(vals) > 1e-9:
        log.warning("%s: %s differs between runs (%s); drawing the largest", path, col, vals)
    return float(np.max(vals))


def ci_whiskers(ax, df: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """Draw each row's bootstrap 95% CI (ci95_low/ci95_high) as a whisker on its bar;
    returns the interval ends (nan where the table has none)."""
    if not {"ci95_low", "ci95_high"} <= set(df.columns):
        return np.full(0, np.nan)
    low = pd.to_numeric(df["ci95_low"], errors="coerce").to_numpy(dtype=float)
    high = pd.to_numeric(df["ci95_high"], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(low) & np.isfinite(high) & np.isfinite(values)
    if ok.any():
        y = np.arange(len(values))[ok]
        err = np.vstack([values[ok] - low[ok], high[ok] - values[ok]]).clip(min=0)
        ax.errorbar(values[ok], y, xerr=err, fmt="none", ecolor="0.15", elinewidth=0.8, capsize=2)
    return np.r_[low, high]
