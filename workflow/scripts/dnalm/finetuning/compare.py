"""Confidence intervals in the fine-tuning comparison table.

Every row (fine-tuned model or baseline) of a task gets the percentile bootstrap 95% CI of
the task's main metric over its test items, and every row but the best baseline gets the
paired bootstrap 95% CI of its difference to the best baseline on the same items
(:mod:`dnalm.evaluation.stats`). The table also names its metric and its split in words,
because "r" of a per-base task has been read as a per-window mean elsewhere.

Main metrics: ``pearson_r`` over all flattened test positions (per-base regression; the
resampled item is a whole window), ``pearson_r`` over test sequences (regression),
``accuracy`` over test sequences (classification).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.core.errors import InputFormatError
from dnalm.core.predictions import position_mask, read_per_base, read_sequence
from dnalm.evaluation.stats import accuracy_stats, bootstrap, paired_bootstrap, pearson_stats

BASELINE_REGIME = "baseline"
METRIC_TEXT = {
    "per_base_regression": "pearson_r over all flattened test positions (items: windows)",
    "regression": "pearson_r over test sequences",
    "classification": "accuracy over test sequences",
}
CI_COLUMNS = (
    "metric",
    "split",
    "ci95_low",
    "ci95_high",
    "best_baseline",
    "delta_vs_best_baseline",
    "delta_ci95_low",
    "delta_ci95_high",
    "n_boot",
)


def kind_of(table: pd.DataFrame) -> str:
    """The task kind of a comparison table, from its metric columns."""
    if "auprc_bound" in table.columns:
        return "per_base_regression"
    return "classification" if "accuracy" in table.columns else "regression"


def item_statistics(run_dir: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids (N,), per-item statistics (N, k)) of a run's test predictions."""
    if kind == "per_base_regression":
        z = read_per_base(run_dir / "predictions.npz")
        mask = position_mask(z["lengths"], z["targets"].shape[1])
        return z["ids"], pearson_stats(z["targets"], z["predictions"], mask)
    df = read_sequence(run_dir / "predictions.tsv")
    if kind == "classification":
        correct = (df["label"].astype(str) == df["predicted"].astype(str)).to_numpy()
        return df["id"].to_numpy(str), accuracy_stats(correct)
    try:
        t, p = df["label"].astype(float).to_numpy(), df["predicted"].astype(float).to_numpy()
    except ValueError as err:
        where = run_dir / "predictions.tsv"
        raise InputFormatError(f"{where}: non-numeric label or prediction ({err})") from err
    return df["id"].to_numpy(str), pearson_stats(t, p)


def _aligned(ids_a, stats_a, ids_b, stats_b, where: str):
    shared, ia, ib = np.intersect1d(ids_a, ids_b, assume_unique=True, return_indices=True)
    if shared.size == 0:
        raise InputFormatError(f"{where}: no test item in common with the best baseline")
    return stats_a[ia], stats_b[ib]


def add_confidence_intervals(
    table: pd.DataFrame,
    run_dirs: Mapping[str, str | os.PathLike],
    kind: str,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """`table` (finetune.comparison_table, one task) with the CI_COLUMNS added; the run
    folders hold each row's predictions. Rows keep their order."""
    metric = "accuracy" if kind == "classification" else "pearson"
    items = {run: item_statistics(Path(run_dirs[run]), kind) for run in table["run"]}
    main = "accuracy" if kind == "classification" else "pearson_r"
    baselines = table[table["regime"] == BASELINE_REGIME]
    best = None
    if len(baselines):
        best = str(baselines.sort_values(main, ascending=False, kind="stable")["run"].iloc[0])
    out = table.copy()
    for column in CI_COLUMNS:
        out[column] = math.nan
    out["metric"], out["split"] = METRIC_TEXT[kind], "test"
    out["best_baseline"] = best or ""
    out["n_boot"] = n_boot
    for i, run in enumerate(out["run"]):
        ids, stats = items[run]
        alone = bootstrap(stats, metric, n_boot, seed=seed)
        out.loc[i, ["ci95_low", "ci95_high"]] = [alone.low, alone.high]
        if best is None or run == best:
            continue
        a, b = _aligned(ids, stats, *items[best], where=str(run_dirs[run]))
        _, _, diff = paired_bootstrap(a, b, metric, n_boot, seed=seed)
        out.loc[i, ["delta_vs_best_baseline", "delta_ci95_low", "delta_ci95_high"]] = [
            diff.estimate,
            diff.low,
            diff.high,
        ]
    return out
