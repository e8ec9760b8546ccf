"""Figures of the fine-tuning stage: training curves of each run, the test performance and
cost of the runs of a task (its ``comparison.tsv``), and predicted against true per-base
tracks (``predictions.npz``), in the one style of :mod:`dnalm.report.style`."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.core.artifacts import CURVES_CSV, METRICS_JSON, read_metrics
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import read_json_object
from dnalm.core.predictions import read_per_base
from dnalm.report import style

log = logging.getLogger(__name__)

FT_CURVE_REQUIRED = ("step", "train_loss", "val_loss", "val_metric")
_KMER_RUN = re.compile(r"^kmer\d*$")


def _is_kmer_run(name: str, folder: Path) -> bool:
    """k-mer baselines are fitted in one shot and write no curves.csv."""
    if _KMER_RUN.match(name) or _KMER_RUN.match(folder.name):
        return True
    metrics = folder / METRICS_JSON
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
    items = style.nonempty(run_dirs, "fine-tuning runs")
    curves: dict[str, pd.DataFrame] = {}
    metric_name = None
    for name, folder in items:
        path = folder / CURVES_CSV
        if not path.is_file() and _is_kmer_run(name, folder):
            log.info("%s: k-mer baseline has no training curves; skipped", name)
            continue
        curves[name] = style.read_table(path, "fine-tuning curves", FT_CURVE_REQUIRED)
        if metric_name is None and (folder / METRICS_JSON).is_file():
            with contextlib.suppress(InputFormatError):
                kind = read_metrics(folder, "metrics").get("kind")
                metric_name = style.MAIN_METRIC.get(str(kind))
    if not curves:
        raise InputFormatError(f"none of the runs {[n for n, _ in items]} has a curves.csv to plot")
    colours = dict(zip(curves, style.palette(len(curves)), strict=True))
    with style.style():
        fig = style.new_figure(style.WIDTH_2COL, 3.0)
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
        ylabel = style.METRIC_LABEL.get(metric_name or "", "validation metric").replace(
            "test", "val"
        )
        ax_m.set(xlabel="step", ylabel=ylabel, title="validation metric")
        ax_l.set(xlabel="step", ylabel="loss", title="loss (solid: train, dashed: validation)")
        style.legend_below(fig, ax_m, "run")
        if title:
            fig.suptitle(title)
        return style.save(fig, out_png)


COMPARISON_REQUIRED = ("run", "regime", "trainable_params", "wall_time_s")


def _comparison(path: str | os.PathLike) -> pd.DataFrame:
    return style.read_table(path, "comparison table", COMPARISON_REQUIRED, sep="\t")


def main_metric(df: pd.DataFrame) -> str:
    """The headline metric of a comparison table: accuracy for classification tables,
    Pearson r for (per-base) regression ones."""
    for col in ("accuracy", "pearson_r"):
        if col in df.columns:
            return col
    raise InputFormatError("comparison table has neither an accuracy nor a pearson_r column")


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
    with style.style():
        fig = style.new_figure(style.WIDTH_1COL + 1.6, style.height(len(df)))
        ax = fig.add_subplot()
        bars = style.barh(ax, runs, values, style.bar_styles(regimes))
        style.label_bars(ax, bars, [f"{v:.3f}" if math.isfinite(v) else "n/a" for v in values])
        ci = style.ci_whiskers(ax, df, values)
        _seed_points(ax, df, metric)
        lo = min(0.0, np.nanmin(values) if np.isfinite(values).any() else 0.0)
        hi = np.nanmax(np.r_[values[np.isfinite(values)], ci[np.isfinite(ci)], 0.0])
        extra = []
        if metric == "accuracy":
            hi = 1.0
            extra = style.chance_lines(
                ax,
                [
                    (style.one_value(df, "chance_majority", comparison_tsv), "--",
                     "chance: majority class"),
                    (style.one_value(df, "chance_uniform", comparison_tsv), ":", "chance: uniform"),
                ],
            )  # fmt: skip
        ax.set_xlim(lo, hi * 1.18 if hi > 0 else 1.0)
        if lo < 0:
            ax.axvline(0, color="0.2", lw=0.6)
        ax.set(xlabel=style.METRIC_LABEL.get(metric, metric), title=title or "test performance")
        style.regime_legend(ax, regimes, extra)
        return style.save(fig, out_png)


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
    with style.style():
        fig = style.new_figure(style.WIDTH_1COL + 1.6, style.height(len(df)))
        ax = fig.add_subplot()
        bars = style.barh(ax, runs, secs, style.bar_styles(regimes))
        style.label_bars(
            ax, bars,
            [
                f"{style.seconds(s)} · {style.human(p)} trainable"
                for s, p in zip(secs, params, strict=True)
            ],
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
        style.regime_legend(ax, regimes)
        return style.save(fig, out_png)


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
    items = style.nonempty(prediction_npz, "prediction files")
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
    colours = dict(zip(data, style.palette(len(data)), strict=True))
    with style.style():
        fig = style.new_figure(style.WIDTH_2COL, 0.4 + 1.45 * len(chosen))
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
        style.legend_below(fig, axes[0], "")  # below the panels: it never hides a track
        return style.save(fig, out_png)
