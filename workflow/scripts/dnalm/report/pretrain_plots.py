"""Figures and table of the pretraining stage: training curves, and training cost beside
the test bits per nucleotide and the count baseline's, from each model folder's
``curves.csv``, ``run.json`` and ``metrics.json`` (:mod:`dnalm.core.artifacts`), in the one
style of :mod:`dnalm.report.style`."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnalm.core.artifacts import CURVES_CSV, METRICS_JSON, RUN_JSON, read_metrics, read_run_record
from dnalm.core.errors import InputFormatError
from dnalm.core.io import read_json_object
from dnalm.report import style

log = logging.getLogger(__name__)

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
    items = style.nonempty(model_dirs, "model folders")
    curves = {}
    for name, folder in items:
        df = style.read_table(folder / CURVES_CSV, "pretraining curves", (*CURVE_REQUIRED, x))
        curves[name] = df
    colours = dict(zip(curves, style.palette(len(curves)), strict=True))
    with style.style():
        fig = style.new_figure(style.WIDTH_2COL, 3.0)
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
        style.legend_below(fig, ax_loss, "model")
        return style.save(fig, out_png)


def _pretrain_record(name: str, folder: Path) -> dict[str, Any]:
    run = read_run_record(folder, "pretraining run record")
    secs = style.num(run.get("train_seconds"))
    if not math.isfinite(secs):
        raise InputFormatError(f"{folder / RUN_JSON}: no numeric 'train_seconds'")
    tokens = style.num(run.get("tokens_seen"))
    tok = run.get("tokenizer")
    if isinstance(tok, Mapping):
        tok = tok.get("name") or tok.get("type")
    rec = {
        "name": name,
        "train_seconds": secs,
        "steps": style.num(run.get("steps")),
        "tokens_per_s": tokens / secs if secs > 0 else math.nan,
        "tokenizer": "" if tok is None else str(tok),
        "params": style.num((run.get("params") or {}).get("total")),
        "test_bpn": math.nan,
        "baseline_bpn": math.nan,
        "baseline_name": "",
    }
    metrics_path = folder / METRICS_JSON
    if metrics_path.is_file():  # absent when test_eval is off
        m = read_json_object(metrics_path, "pretraining test metrics")
        rec["test_bpn"] = style.num((m.get("model") or {}).get("bits_per_nt"))
        base = m.get("baseline") or {}
        rec["baseline_bpn"] = style.num(base.get("bits_per_nt"))
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
        run = read_run_record(folder, "run record")
        metrics = read_metrics(folder, "test metrics") if (folder / METRICS_JSON).is_file() else {}
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
    items = style.nonempty(model_dirs, "model folders")
    recs = [_pretrain_record(name, folder) for name, folder in items]
    names = [r["name"] for r in recs]
    labels = [f"{r['name']}\n({r['tokenizer']})" if r["tokenizer"] else r["name"] for r in recs]
    colours = style.palette(len(recs))
    with style.style():
        fig = style.new_figure(style.WIDTH_2COL, style.height(len(recs), 0.45, 1.4))
        ax_t, ax_b = fig.subplots(1, 2, sharey=True)
        secs = np.array([r["train_seconds"] for r in recs])
        bars = style.barh(ax_t, labels, secs, [{"color": c} for c in colours])
        style.label_bars(
            ax_t, bars,
            [
                f"{style.seconds(r['train_seconds'])} · {style.human(r['steps'])} steps · "
                f"{style.human(r['tokens_per_s'])} tok/s"
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
            y + h / 2, np.nan_to_num(base), height=h, color=style.BASELINE_COLOR,
            hatch=style.BASELINE_HATCH, edgecolor="#424242", label="count baseline",
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
        return style.save(fig, out_png)
