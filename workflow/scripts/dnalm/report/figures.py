"""Figures of the dnalm report: pretraining curves and cost, fine-tuning curves, performance
and cost per run, predicted versus true per-base tracks, and species-probe accuracy.

Every function reads the workflow's own output files (the formats are the stage contracts:
``curves.csv``, ``run.json`` and ``metrics.json`` of a pretrained model, ``curves.csv`` and
``predictions.npz`` of a fine-tuning run, a task's ``comparison.tsv``, the probe table of
:func:`dnalm.evaluation.probe.assemble_table`) and writes one figure as PNG plus an SVG beside it
(same
stem), each atomically, so a failed rule never leaves a figure Snakemake would trust.

One look for all figures (:func:`style`): seaborn "whitegrid" with paper-sized text (8-10 pt
at the printed size) and the colour-blind palette; baselines are always grey and hatched so
that they read as reference bars, never as competitors. Figures are drawn on
``matplotlib.figure.Figure`` objects (no pyplot state, no GUI backend needed).

A missing or empty input raises :class:`dnalm.core.errors.InputFormatError` naming the file, so a
report rule fails with the path at fault rather than a pandas traceback.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_path, read_json_object
from dnalm.core.predictions import read_per_base

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
MAIN_METRIC = {
    "per_base_regression": "pearson_r",
    "regression": "pearson_r",
    "classification": "accuracy",
}
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


def _read_csv(
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


def _nonempty(mapping: Mapping[str, Any], what: str) -> list[tuple[str, Path]]:
    items = [(str(k), Path(v)) for k, v in mapping.items()]
    if not items:
        raise ConfigError(f"no {what} given to plot")
    return items


def _num(value: Any) -> float:
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


def _is_baseline(regime: Any) -> bool:
    return str(regime) in BASELINE_REGIMES


def _bar_styles(regimes: Sequence[Any]) -> list[dict[str, Any]]:
    """Bar kwargs per row: one colour per non-baseline regime, grey hatched baselines."""
    order = [r for r in dict.fromkeys(map(str, regimes)) if not _is_baseline(r)]
    colours = dict(zip(order, palette(len(order)), strict=True))
    out = []
    for r in map(str, regimes):
        if _is_baseline(r):
            out.append(
                {"facecolor": BASELINE_COLOR, "hatch": BASELINE_HATCH, "edgecolor": "#424242"}
            )
        else:
            out.append({"facecolor": colours[r], "edgecolor": "none"})
    return out


def _regime_legend(ax, regimes: Sequence[Any], extra: Sequence[Any] = ()) -> None:
    """Legend right of the axes (never over a bar): one patch per regime, then `extra`."""
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    from matplotlib.patches import Patch

    seen = list(dict.fromkeys(map(str, regimes)))
    styles = dict(zip(map(str, regimes), _bar_styles(regimes), strict=True))
    handles = [Patch(label=r, **styles[r]) for r in seen] + list(extra)
    ax.legend(
        handles=handles, title="regime", loc="upper left", bbox_to_anchor=(1.01, 1.0),
        frameon=False, borderaxespad=0.0,
    )  # fmt: skip


def _chance_lines(ax, levels: Sequence[tuple[float, str, str]]) -> list:
    """Vertical reference lines (level, linestyle, label) for finite levels; their handles."""
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    from matplotlib.lines import Line2D

    handles = []
    for level, ls, text in levels:
        if math.isfinite(level):
            ax.axvline(level, color=CHANCE_COLOR, lw=1.0, ls=ls, zorder=3)
            handles.append(Line2D([], [], color=CHANCE_COLOR, lw=1.0, ls=ls, label=text))
    return handles


def _legend_below(fig, ax, title: str) -> None:
    """One legend for all panels, below them (it never hides a curve)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(
        handles, labels, title=title, loc="outside lower center", ncols=min(len(labels), 4),
        frameon=False,
    )  # fmt: skip


def _barh(ax, labels: Sequence[str], values: np.ndarray, styles: Sequence[dict]) -> list:
    """Horizontal bars, first row on top."""
    y = np.arange(len(labels))
    bars = []
    for yi, v, st in zip(y, values, styles, strict=True):
        bars.append(ax.barh(yi, 0.0 if not math.isfinite(v) else v, height=0.7, **st)[0])
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    return bars


def _label_bars(ax, bars, texts: Sequence[str]) -> None:
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


def _height(n_rows: int, per_row: float = 0.28, base: float = 1.2) -> float:
    return base + per_row * max(n_rows, 1)


# ----------------------------------------------------------------------------- pretraining

CURVE_REQUIRED = ("step", "train_loss", "bits_per_nt")


def plot_pretrain_curves(
    model_dirs: Mapping[str, str | os.PathLike],
    out_png: str | os.PathLike,
    x: str = "step",
) -> list[Path]:
    """Training loss and validation bits per nucleotide against `x` ("step" or
    "tokens_seen"), one line per model (legend = the mapping's keys).

    Training loss is in nats per *token*, so it is only comparable between models sharing a
    tokenizer; bits per nucleotide divides the validation loss by the nucleotides a token
    covers, which puts every tokenizer on one scale (the right panel)."""
    items = _nonempty(model_dirs, "model folders")
    curves = {}
    for name, folder in items:
        df = _read_csv(folder / "curves.csv", "pretraining curves", (*CURVE_REQUIRED, x))
        curves[name] = df
    colours = dict(zip(curves, palette(len(curves)), strict=True))
    with style():
        fig = new_figure(WIDTH_2COL, 3.0)
        ax_loss, ax_bpn = fig.subplots(1, 2)
        for name, df in curves.items():
            tr = df.dropna(subset=["train_loss"])
            ax_loss.plot(tr[x], tr["train_loss"], color=colours[name], lw=1.2, label=name)
            va = df.dropna(subset=["bits_per_nt"])
            if va.empty:
                log.warning("%s: no validation rows in curves.csv", name)
                continue
            ax_bpn.plot(
                va[x], va["bits_per_nt"], color=colours[name], lw=1.2, marker="o", ms=2.5,
                label=name,
            )  # fmt: skip
        xlabel = "training step" if x == "step" else "tokens seen"
        ax_loss.set(xlabel=xlabel, ylabel="training loss (nats / token)", title="training loss")
        ax_bpn.set(
            xlabel=xlabel,
            ylabel="validation bits / nucleotide",
            title="validation bits per nucleotide\n(comparable across tokenizers)",
        )
        ax_bpn.axhline(2.0, color="0.4", lw=0.8, ls=":")
        ax_bpn.annotate(
            "uniform: 2 bits", (0.99, 2.0), xycoords=("axes fraction", "data"),
            xytext=(0, -2), textcoords="offset points", ha="right", va="top", fontsize=7,
            color="0.3",
        )  # fmt: skip
        _legend_below(fig, ax_loss, "model")
        return save(fig, out_png)


def _pretrain_record(name: str, folder: Path) -> dict[str, Any]:
    run = read_json_object(folder / "run.json", "pretraining run record")
    secs = _num(run.get("train_seconds"))
    if not math.isfinite(secs):
        raise InputFormatError(f"{folder / 'run.json'}: no numeric 'train_seconds'")
    tokens = _num(run.get("tokens_seen"))
    tok = run.get("tokenizer")
    if isinstance(tok, Mapping):
        tok = tok.get("name") or tok.get("type")
    rec = {
        "name": name,
        "train_seconds": secs,
        "steps": _num(run.get("steps")),
        "tokens_per_s": tokens / secs if secs > 0 else math.nan,
        "tokenizer": "" if tok is None else str(tok),
        "params": _num((run.get("params") or {}).get("total")),
        "test_bpn": math.nan,
        "baseline_bpn": math.nan,
        "baseline_name": "",
    }
    metrics_path = folder / "metrics.json"
    if metrics_path.is_file():  # absent when test_eval is off
        m = read_json_object(metrics_path, "pretraining test metrics")
        rec["test_bpn"] = _num((m.get("model") or {}).get("bits_per_nt"))
        base = m.get("baseline") or {}
        rec["baseline_bpn"] = _num(base.get("bits_per_nt"))
        rec["baseline_name"] = str(base.get("name", "baseline"))
    return rec


PRETRAIN_TABLE_COLUMNS = (
    "model", "objective", "loss", "preset", "tokenizer", "params_total", "params_non_embedding",
    "steps", "tokens_seen", "train_seconds", "best_step", "test_bits_per_nt",
    "test_accuracy", "baseline", "baseline_bits_per_nt",
)  # fmt: skip


def pretrain_table(model_dirs: Mapping[str, str | os.PathLike]) -> pd.DataFrame:
    """One row per pretrained model from its run.json and metrics.json: size, loss, training
    cost and test bits per nucleotide (plain cross-entropy, whatever the loss) beside the
    count baseline's (empty where the model was trained without test evaluation)."""
    rows = []
    for name, folder in model_dirs.items():
        folder = Path(folder)
        run = read_json_object(folder / "run.json", "run record")
        metrics = (
            read_json_object(folder / "metrics.json", "test metrics")
            if (folder / "metrics.json").is_file()
            else {}
        )
        model, base = metrics.get("model") or {}, metrics.get("baseline") or {}
        params = run.get("params") or {}
        rows.append(
            {
                "model": name,
                "objective": run.get("objective"),
                "loss": run.get("loss", "ce"),  # the pretraining loss (before it: ce)
                "preset": run.get("preset"),
                "tokenizer": run.get("tokenizer"),
                "params_total": params.get("total"),
                "params_non_embedding": params.get("non_embedding"),
                "steps": run.get("steps"),
                "tokens_seen": run.get("tokens_seen"),
                "train_seconds": run.get("train_seconds"),
                "best_step": run.get("best_step"),
                "test_bits_per_nt": model.get("bits_per_nt"),
                "test_accuracy": model.get("accuracy"),
                "baseline": base.get("name"),
                "baseline_bits_per_nt": base.get("bits_per_nt"),
            }
        )
    if not rows:
        raise InputFormatError("no pretrained models to tabulate")
    return pd.DataFrame(rows, columns=list(PRETRAIN_TABLE_COLUMNS))


def plot_pretrain_time(
    model_dirs: Mapping[str, str | os.PathLike], out_png: str | os.PathLike
) -> list[Path]:
    """Training cost and result per model: wall-clock training time (``run.json``
    train_seconds, bars labelled with steps and tokens/s) and test bits per nucleotide next to
    the count-based baseline of the same test split (``metrics.json``; models trained without
    a test evaluation get no bar there)."""
    items = _nonempty(model_dirs, "model folders")
    recs = [_pretrain_record(name, folder) for name, folder in items]
    names = [r["name"] for r in recs]
    labels = [f"{r['name']}\n({r['tokenizer']})" if r["tokenizer"] else r["name"] for r in recs]
    colours = palette(len(recs))
    with style():
        fig = new_figure(WIDTH_2COL, _height(len(recs), 0.45, 1.4))
        ax_t, ax_b = fig.subplots(1, 2, sharey=True)
        secs = np.array([r["train_seconds"] for r in recs])
        bars = _barh(ax_t, labels, secs, [{"color": c} for c in colours])
        _label_bars(
            ax_t, bars,
            [
                f"{seconds(r['train_seconds'])} · {human(r['steps'])} steps · "
                f"{human(r['tokens_per_s'])} tok/s"
                for r in recs
            ],
        )  # fmt: skip
        ax_t.set(xlabel="training time (s)", title="pretraining wall-clock time")
        ax_t.set_xlim(0, secs.max() * 1.9 if secs.max() > 0 else 1)

        y = np.arange(len(recs))
        h = 0.38
        bpn = np.array([r["test_bpn"] for r in recs])
        base = np.array([r["baseline_bpn"] for r in recs])
        ax_b.barh(y - h / 2, np.nan_to_num(bpn), height=h, color=colours)
        ax_b.barh(
            y + h / 2, np.nan_to_num(base), height=h, color=BASELINE_COLOR,
            hatch=BASELINE_HATCH, edgecolor="#424242", label="count baseline",
        )  # fmt: skip
        for yi, v, b, r in zip(y, bpn, base, recs, strict=True):
            for off, val, txt in ((-h / 2, v, ""), (h / 2, b, r["baseline_name"])):
                if math.isfinite(val):
                    ax_b.annotate(
                        f"{val:.3f}" + (f" {txt}" if txt else ""), (val, yi + off),
                        xytext=(3, 0), textcoords="offset points", va="center", fontsize=7,
                    )  # fmt: skip
                elif off < 0:
                    ax_b.annotate(
                        "no test metrics", (0, yi), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=7, color="0.4",
                    )  # fmt: skip
        top = np.nanmax(np.r_[bpn, base, 2.0])
        ax_b.set_xlim(0, top * 1.45)
        ax_b.axvline(2.0, color="0.4", lw=0.8, ls=":")
        ax_b.set(xlabel="test bits / nucleotide (lower is better)", title="test bits per nt")
        ax_b.grid(axis="y", visible=False)
        ax_b.legend(loc="lower right", frameon=True, framealpha=0.9)  # the baseline only
        log.info("pretrain time figure: %s", ", ".join(names))
        return save(fig, out_png)


# ----------------------------------------------------------------------------- fine-tuning

FT_CURVE_REQUIRED = ("step", "train_loss", "val_loss", "val_metric")
_KMER_RUN = re.compile(r"^kmer\d*$")


def _is_kmer_run(name: str, folder: Path) -> bool:
    """k-mer baselines are fitted in one shot and write no curves.csv."""
    if _KMER_RUN.match(name) or _KMER_RUN.match(folder.name):
        return True
    metrics = folder / "metrics.json"
    if metrics.is_file():
        with contextlib.suppress(InputFormatError):
            return str(read_json_object(metrics, "metrics").get("tokenizer", "")).startswith("kmer")
    return False


def plot_finetune_curves(
    run_dirs: Mapping[str, str | os.PathLike],
    out_png: str | os.PathLike,
    title: str | None = None,
) -> list[Path]:
    """Validation metric (left) and training/validation loss (right, solid/dashed) against
    step, one colour per fine-tuning run. Runs without curves (k-mer baselines) are skipped;
    any other run missing its curves.csv is an error."""
    items = _nonempty(run_dirs, "fine-tuning runs")
    curves: dict[str, pd.DataFrame] = {}
    metric_name = None
    for name, folder in items:
        path = folder / "curves.csv"
        if not path.is_file() and _is_kmer_run(name, folder):
            log.info("%s: k-mer baseline has no training curves; skipped", name)
            continue
        curves[name] = _read_csv(path, "fine-tuning curves", FT_CURVE_REQUIRED)
        if metric_name is None and (folder / "metrics.json").is_file():
            with contextlib.suppress(InputFormatError):
                kind = read_json_object(folder / "metrics.json", "metrics").get("kind")
                metric_name = MAIN_METRIC.get(str(kind))
    if not curves:
        raise InputFormatError(f"none of the runs {[n for n, _ in items]} has a curves.csv to plot")
    colours = dict(zip(curves, palette(len(curves)), strict=True))
    with style():
        fig = new_figure(WIDTH_2COL, 3.0)
        ax_m, ax_l = fig.subplots(1, 2)
        for name, df in curves.items():
            c = colours[name]
            va = df.dropna(subset=["val_metric"])
            ax_m.plot(va["step"], va["val_metric"], color=c, lw=1.2, marker="o", ms=2.5,
                      label=name)  # fmt: skip
            tr = df.dropna(subset=["train_loss"])
            ax_l.plot(tr["step"], tr["train_loss"], color=c, lw=1.0, alpha=0.85)
            vl = df.dropna(subset=["val_loss"])
            ax_l.plot(vl["step"], vl["val_loss"], color=c, lw=1.2, ls="--")
        ylabel = METRIC_LABEL.get(metric_name or "", "validation metric").replace("test", "val")
        ax_m.set(xlabel="step", ylabel=ylabel, title="validation metric")
        ax_l.set(xlabel="step", ylabel="loss", title="loss (solid: train, dashed: validation)")
        _legend_below(fig, ax_m, "run")
        if title:
            fig.suptitle(title)
        return save(fig, out_png)


COMPARISON_REQUIRED = ("run", "regime", "trainable_params", "wall_time_s")


def _comparison(path: str | os.PathLike) -> pd.DataFrame:
    return _read_csv(path, "comparison table", COMPARISON_REQUIRED, sep="\t")


def main_metric(df: pd.DataFrame) -> str:
    """The headline metric of a comparison table: accuracy for classification tables,
    Pearson r for (per-base) regression ones."""
    for col in ("accuracy", "pearson_r"):
        if col in df.columns:
            return col
    raise InputFormatError("comparison table has neither an accuracy nor a pearson_r column")


def _one_value(df: pd.DataFrame, col: str, path: Any) -> float:
    vals = pd.to_numeric(df[col], errors="coerce").dropna().unique() if col in df else []
    if len(vals) == 0:
        return math.nan
    if np.ptp(vals) > 1e-9:
        log.warning("%s: %s differs between runs (%s); drawing the largest", path, col, vals)
    return float(np.max(vals))


def _ci_whiskers(ax, df: pd.DataFrame, values: np.ndarray) -> np.ndarray:
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


def _seed_points(ax, df: pd.DataFrame, metric: str) -> None:
    """Each seed replicate's value (`<metric>_per_seed`) as a dot on its row's bar."""
    column = f"{metric}_per_seed"
    if column not in df.columns:
        return
    for y, text in enumerate(df[column].fillna("").astype(str)):
        values = pd.to_numeric(pd.Series(text.split(";")), errors="coerce").dropna()
        if len(values) > 1:
            ax.plot(values, [y] * len(values), "o", ms=3, mfc="white", mec="0.1", mew=0.7)


def plot_performance(
    comparison_tsv: str | os.PathLike,
    out_png: str | os.PathLike,
    metric: str | None = None,
    title: str | None = None,
) -> list[Path]:
    """The task's main test metric per run (Pearson r, or accuracy with the majority-class
    and uniform chance levels as lines), runs in table order; baselines grey and hatched;
    whiskers: the bootstrap 95% CI over test items when the table has one; dots: the
    values of each seed replicate when there are several."""
    df = _comparison(comparison_tsv)
    metric = metric or main_metric(df)
    if metric not in df.columns:
        raise InputFormatError(f"{comparison_tsv}: no {metric!r} column")
    values = pd.to_numeric(df[metric], errors="coerce").to_numpy(dtype=float)
    runs = df["run"].astype(str).tolist()
    regimes = df["regime"].astype(str).tolist()
    with style():
        fig = new_figure(WIDTH_1COL + 1.6, _height(len(df)))
        ax = fig.add_subplot()
        bars = _barh(ax, runs, values, _bar_styles(regimes))
        _label_bars(ax, bars, [f"{v:.3f}" if math.isfinite(v) else "n/a" for v in values])
        ci = _ci_whiskers(ax, df, values)
        _seed_points(ax, df, metric)
        lo = min(0.0, np.nanmin(values) if np.isfinite(values).any() else 0.0)
        hi = np.nanmax(np.r_[values[np.isfinite(values)], ci[np.isfinite(ci)], 0.0])
        extra = []
        if metric == "accuracy":
            hi = 1.0
            extra = _chance_lines(
                ax,
                [
                    (_one_value(df, "chance_majority", comparison_tsv), "--",
                     "chance: majority class"),
                    (_one_value(df, "chance_uniform", comparison_tsv), ":", "chance: uniform"),
                ],
            )  # fmt: skip
        ax.set_xlim(lo, hi * 1.18 if hi > 0 else 1.0)
        if lo < 0:
            ax.axvline(0, color="0.2", lw=0.6)
        ax.set(xlabel=METRIC_LABEL.get(metric, metric), title=title or "test performance")
        _regime_legend(ax, regimes, extra)
        return save(fig, out_png)


def plot_finetune_time(comparison_tsv: str | os.PathLike, out_png: str | os.PathLike) -> list[Path]:
    """Wall-clock time per fine-tuning/baseline run (log axis when the runs span more than
    30x), each bar labelled with its trainable parameter count."""
    df = _comparison(comparison_tsv)
    secs = pd.to_numeric(df["wall_time_s"], errors="coerce").to_numpy(dtype=float)
    params = pd.to_numeric(df["trainable_params"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(secs).any():
        raise InputFormatError(f"{comparison_tsv}: no numeric wall_time_s")
    runs = df["run"].astype(str).tolist()
    regimes = df["regime"].astype(str).tolist()
    pos = secs[np.isfinite(secs) & (secs > 0)]
    use_log = pos.size > 0 and pos.max() / pos.min() > 30
    with style():
        fig = new_figure(WIDTH_1COL + 1.6, _height(len(df)))
        ax = fig.add_subplot()
        bars = _barh(ax, runs, secs, _bar_styles(regimes))
        _label_bars(
            ax, bars,
            [f"{seconds(s)} · {human(p)} trainable" for s, p in zip(secs, params, strict=True)],
        )  # fmt: skip
        if use_log:
            ax.set_xscale("log")
            ax.set_xlim(pos.min() / 2, pos.max() * 60)
        else:
            ax.set_xlim(0, np.nanmax(secs) * 1.7 if np.nanmax(secs) > 0 else 1)
        ax.set(
            xlabel="wall-clock time (s" + (", log scale)" if use_log else ")"),
            title="fine-tuning cost",
        )
        _regime_legend(ax, regimes)
        return save(fig, out_png)


# ----------------------------------------------------------------------------- tracks


def choose_windows(targets: np.ndarray, lengths: np.ndarray, n: int) -> np.ndarray:
    """Row indices of the `n` windows with the most bound bases (target > 0 within each
    window's length); ties keep file order, so the choice is deterministic."""
    pos = np.arange(targets.shape[1])[None, :]  # (1, L)
    valid = pos < np.asarray(lengths)[:, None]  # (N, L)
    bound = ((np.asarray(targets) > 0) & valid).sum(1)  # (N,)
    order = np.argsort(-bound, kind="stable")
    return order[: min(n, len(order))]


def plot_tracks(
    prediction_npz: Mapping[str, str | os.PathLike],
    out_png: str | os.PathLike,
    n_windows: int = 4,
    ids: Sequence[str] | None = None,
) -> list[Path]:
    """Predicted against true per-base signal for a few test windows: the target as a grey
    filled area, each run's prediction as a line, only the first ``lengths[i]`` bases.

    Windows are `ids` when given, otherwise the `n_windows` with the most bound bases in the
    first file; every file must hold those ids (they are matched by id, not by row)."""
    items = _nonempty(prediction_npz, "prediction files")
    data = {name: read_per_base(path) for name, path in items}
    first_name, first_path = items[0]
    first = data[first_name]
    if ids is None:
        rows = choose_windows(first["targets"], first["lengths"], n_windows)
        chosen = [str(first["ids"][i]) for i in rows]
    else:
        chosen = [str(i) for i in ids]
        if not chosen:
            raise ConfigError("plot_tracks: ids is empty")
    index = {name: {str(w): i for i, w in enumerate(d["ids"])} for name, d in data.items()}
    for name, path in items:
        missing = [w for w in chosen if w not in index[name]]
        if missing:
            raise InputFormatError(f"{path}: window id(s) {missing[:5]} not in this file")
    colours = dict(zip(data, palette(len(data)), strict=True))
    with style():
        fig = new_figure(WIDTH_2COL, 0.4 + 1.45 * len(chosen))
        axes = np.atleast_1d(fig.subplots(len(chosen), 1, squeeze=False)[:, 0])
        for ax, wid in zip(axes, chosen, strict=True):
            i0 = index[first_name][wid]
            n = int(first["lengths"][i0])
            x = np.arange(n)
            true = first["targets"][i0, :n].astype(float)  # (n,)
            ax.fill_between(x, 0, true, color="0.75", lw=0, step="mid", label="true")
            for name, d in data.items():
                i = index[name][wid]
                if int(d["lengths"][i]) != n:
                    raise InputFormatError(
                        f"{dict(items)[name]}: window {wid} has length {int(d['lengths'][i])}"
                        f", {n} in {first_path}"
                    )
                ax.plot(x, d["predictions"][i, :n], color=colours[name], lw=1.0, label=name)
            ax.set_xlim(0, max(n - 1, 1))
            ax.set_title(f"{wid}  ({int((true > 0).sum())} of {n} bases bound)", loc="left",
                         fontsize=8)  # fmt: skip
            ax.set_ylabel("signal")
            ax.grid(axis="x", visible=False)
        axes[-1].set_xlabel("position in window (bp)")
        _legend_below(fig, axes[0], "")  # below the panels: it never hides a track
        return save(fig, out_png)


# ----------------------------------------------------------------------------- probes

PROBE_REQUIRED = ("model", "regime", "accuracy", "chance")


def plot_probe_accuracy(
    probe_table_tsv: str | os.PathLike, out_png: str | os.PathLike
) -> list[Path]:
    """Species-probe test accuracy per representation (the probe table of
    :func:`dnalm.evaluation.probe.assemble_table`): one bar per row, coloured by regime, the k-mer
    baseline grey and hatched, chance (1 / classes) and the majority-class rate as lines;
    whiskers: bootstrap 95% CIs over test fragments when the table has them."""
    df = _read_csv(probe_table_tsv, "probe table", PROBE_REQUIRED, sep="\t")
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
    chance = _one_value(df, "chance", probe_table_tsv)
    majority = _one_value(df, "majority_rate", probe_table_tsv)
    with style():
        fig = new_figure(WIDTH_1COL + 1.6, _height(len(df)))
        ax = fig.add_subplot()
        bars = _barh(ax, labels, acc, _bar_styles(regimes))
        _label_bars(ax, bars, [f"{v:.3f}" if math.isfinite(v) else "n/a" for v in acc])
        _ci_whiskers(ax, df, acc)
        extra = _chance_lines(
            ax, [(majority, "--", "chance: majority class"), (chance, ":", "chance: uniform")]
        )
        ax.set_xlim(0, 1.15)
        n_classes = _one_value(df, "n_classes", probe_table_tsv)
        what = f"{int(n_classes)} species" if math.isfinite(n_classes) else "species"
        ax.set(xlabel="probe accuracy (test)", title=f"linear species probe ({what})")
        _regime_legend(ax, regimes, extra)
        return save(fig, out_png)


__all__ = [
    "DPI",
    "MAIN_METRIC",
    "choose_windows",
    "main_metric",
    "new_figure",
    "palette",
    "plot_finetune_curves",
    "plot_finetune_time",
    "plot_performance",
    "plot_pretrain_curves",
    "plot_pretrain_time",
    "plot_probe_accuracy",
    "plot_tracks",
    "save",
    "style",
]
