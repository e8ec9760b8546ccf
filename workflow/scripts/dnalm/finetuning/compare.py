"""Seed replicates and confidence intervals in the fine-tuning comparison table.

One row per config entry: a fine-tuning run, or a baseline. Seed replicates of an entry
(``X``, ``X_seed1``, ...; :mod:`dnalm.core.seeds`) are folded into its row: every metric
column is the mean over seeds, and the main metric also gets its standard deviation
(``<metric>_sd``, ddof 1; empty for one seed) and its per-seed values (``<metric>_per_seed``,
in the order of ``seeds``).

Every row gets the percentile bootstrap 95% CI of its (seed-mean) main metric over its test
items, and every row but the best baseline gets the paired bootstrap 95% CI of its
difference to the best baseline on the same items (:mod:`dnalm.core.stats`; both sides
seed means, so the interval covers item sampling, while the sd covers training seeds). The
table also names its metric and its split in words, because "r" of a per-base task has been
read as a per-window mean elsewhere.

Main metrics: ``pearson_r`` over all flattened test positions (per-base regression; the
resampled item is a whole window), ``pearson_r`` over test sequences (regression),
``accuracy`` over test sequences (classification).

Classification tables also get ``ece``: the expected calibration error of the test class
probabilities (``p_<class>`` of ``predictions.tsv``; :mod:`dnalm.evaluation.calibration`,
15 equal-width bins), the mean over seed replicates; empty for a run whose predictions file
has no probabilities.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.core.artifacts import PREDICTIONS_NPZ, PREDICTIONS_TSV
from dnalm.core.errors import InputFormatError
from dnalm.core.predictions import position_mask, read_per_base, read_sequence
from dnalm.core.seeds import replicate_base
from dnalm.core.stats import (
    INTERVAL_COLUMNS,
    accuracy_stats,
    bootstrap,
    mcc_stats,
    mean_sd,
    paired_bootstrap,
    pearson_stats,
)
from dnalm.evaluation.calibration import from_predictions_tsv
from dnalm.finetuning.tables import METRIC_COLUMNS
from dnalm.kinds.tasks import TASK_KINDS

BASELINE_REGIME = "baseline"
#: what the main metric of each task kind is computed over (dnalm.kinds.tasks)
METRIC_TEXT = {k.name: k.metric_text for k in TASK_KINDS}
CI_COLUMNS = ("metric", "split", *INTERVAL_COLUMNS, "n_boot")


def kind_of(table: pd.DataFrame) -> str:
    """The task kind of a comparison table, from its metric columns: the kind with the most
    of its metrics there (the first declared on a tie)."""
    cols = set(table.columns)
    return max(TASK_KINDS, key=lambda k: len(cols & set(k.metrics))).name


def item_statistics(run_dir: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids (N,), per-item statistics (N, k)) of a run's test predictions."""
    if TASK_KINDS.get(kind).per_base:
        z = read_per_base(run_dir / PREDICTIONS_NPZ)
        mask = position_mask(z["lengths"], z["targets"].shape[1])
        return z["ids"], pearson_stats(z["targets"], z["predictions"], mask)
    df = read_sequence(run_dir / PREDICTIONS_TSV)
    if TASK_KINDS.get(kind).classes:
        correct = (df["label"].astype(str) == df["predicted"].astype(str)).to_numpy()
        return df["id"].to_numpy(str), accuracy_stats(correct)
    try:
        t, p = df["label"].astype(float).to_numpy(), df["predicted"].astype(float).to_numpy()
    except ValueError as err:
        where = run_dir / PREDICTIONS_TSV
        raise InputFormatError(f"{where}: non-numeric label or prediction ({err})") from err
    return df["id"].to_numpy(str), pearson_stats(t, p)


def run_ece(run_dir: Path) -> float:
    """ECE of a classification run's test probabilities (NaN when it wrote none)."""
    return calibration_of(run_dir).get("ece", math.nan)


def calibration_of(run_dir: Path) -> dict:
    """The reliability bins and ECE of a classification run folder's predictions.tsv; {}
    when the file is absent or has no class probabilities (p_<class> columns)."""
    path = Path(run_dir) / PREDICTIONS_TSV
    if not path.is_file():
        return {}
    df = read_sequence(path)
    if not any(c.startswith("p_") for c in df.columns):
        return {}
    return from_predictions_tsv(path)


def _common_items(items: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """Each run's statistics restricted to the test items every run scored, in one order."""
    shared = None
    for ids, _ in items.values():
        shared = np.asarray(ids) if shared is None else np.intersect1d(shared, ids)
    if shared is None or shared.size == 0:
        raise InputFormatError(f"runs {sorted(items)} share no test item")
    out = {}
    for run, (ids, stats) in items.items():
        order = np.argsort(ids)
        pos = np.searchsorted(np.asarray(ids)[order], shared)
        out[run] = stats[order[pos]]
    return out


def fold_replicates(table: pd.DataFrame, kind: str, extra: Sequence[str] = ()) -> pd.DataFrame:
    """One row per entry: the metric columns averaged over its seed replicates, the sd and
    per-seed values of the main metric and of each `extra` metric (a suite's official one),
    `seeds`, `n_seeds` and `replicates` (run folders)."""
    main = TASK_KINDS.get(kind).main_metric
    metric_cols = [c for c in METRIC_COLUMNS[kind] if c in table.columns]
    rows = []
    entries = table.assign(entry=[replicate_base(str(r)) for r in table["run"]])
    for entry, group in entries.groupby("entry", sort=False):
        group = group.sort_values("seed", kind="stable") if "seed" in group else group
        row = group.iloc[0].to_dict()
        row["run"] = entry
        for c in metric_cols:
            row[c] = pd.to_numeric(group[c], errors="coerce").mean()
        for m in dict.fromkeys([main, *(e for e in extra if e in group)]):
            values = pd.to_numeric(group[m], errors="coerce").to_numpy(float)
            row[f"{m}_sd"] = mean_sd(values)[1]
            row[f"{m}_per_seed"] = ";".join(f"{v:.6g}" for v in values)
        seeds = group["seed"] if "seed" in group else pd.Series([math.nan] * len(group))
        row["seeds"] = ";".join("" if pd.isna(v) else str(int(v)) for v in seeds)
        row["n_seeds"] = len(group)
        row["replicates"] = ";".join(map(str, group["run"]))
        rows.append(row)
    out = pd.DataFrame(rows).drop(columns=["entry"])
    return out.sort_values(main, ascending=False, kind="stable", na_position="last").reset_index(
        drop=True
    )


def summarise_runs(
    table: pd.DataFrame,
    run_dirs: Mapping[str, str | os.PathLike],
    kind: str,
    n_boot: int = 1000,
    seed: int = 0,
    extra_metrics: Sequence[str] = (),
) -> pd.DataFrame:
    """`table` (finetune.comparison_table: one row per run folder of one task) folded to one
    row per entry (fold_replicates, with the sd of `extra_metrics` too), with the CI_COLUMNS
    added when `n_boot` > 0; the run folders hold each row's predictions."""
    out = fold_replicates(table, kind, extra_metrics)
    for column in CI_COLUMNS:
        out[column] = math.nan
    out["metric"], out["split"] = METRIC_TEXT[kind], "test"
    baselines = out[out["regime"] == BASELINE_REGIME]
    best = str(baselines["run"].iloc[0]) if len(baselines) else ""  # out is sorted by main
    out["best_baseline"] = best
    out["n_boot"] = n_boot
    if TASK_KINDS.get(kind).classes:
        out["ece"] = [
            np.mean([run_ece(Path(run_dirs[r])) for r in str(reps).split(";")])
            for reps in out["replicates"]
        ]
    if not n_boot:
        return out
    metric = "accuracy" if TASK_KINDS.get(kind).classes else "pearson"
    stats = _common_items({run: item_statistics(Path(run_dirs[run]), kind) for run in table["run"]})
    reps = {row["run"]: str(row["replicates"]).split(";") for _, row in out.iterrows()}
    for i, entry in enumerate(out["run"]):
        mine = [stats[r] for r in reps[entry]]
        if entry == best or not best:
            ci = bootstrap(mine, metric, n_boot, seed=seed)
            out.loc[i, ["ci95_low", "ci95_high"]] = [ci.low, ci.high]
            continue
        theirs = [stats[r] for r in reps[best]]
        ci, _, diff = paired_bootstrap(mine, theirs, metric, n_boot, seed=seed)
        out.loc[i, ["ci95_low", "ci95_high"]] = [ci.low, ci.high]
        out.loc[i, ["delta_vs_best_baseline", "delta_ci95_low", "delta_ci95_high"]] = [
            diff.estimate,
            diff.low,
            diff.high,
        ]
    for extra in extra_metrics:
        if extra == "mcc" and TASK_KINDS.get(kind).classes:
            mcc_intervals(out, table, run_dirs, n_boot, seed)
    return out


def mcc_intervals(
    out: pd.DataFrame,
    table: pd.DataFrame,
    run_dirs: Mapping[str, str | os.PathLike],
    n_boot: int,
    seed: int = 0,
) -> None:
    """Add ``mcc_ci95_low`` and ``mcc_ci95_high`` to the folded table `out`: the percentile
    bootstrap 95% CI of each entry's MCC (the mean over its seed replicates) over the test
    items every run scored, from the runs' predictions.tsv (the CI of a suite whose official
    metric is MCC, beside the main metric's)."""
    preds = {
        str(run): read_sequence(Path(run_dirs[run]) / PREDICTIONS_TSV).set_index("id")
        for run in table["run"]
    }
    ids = sorted(set.intersection(*(set(df.index) for df in preds.values())))
    if not ids:
        raise InputFormatError(f"runs {sorted(preds)} share no test item")
    classes = sorted(
        set().union(*(set(df["label"]) | set(df["predicted"]) for df in preds.values()))
    )
    stats = {
        run: mcc_stats(df.loc[ids, "label"], df.loc[ids, "predicted"], classes)
        for run, df in preds.items()
    }
    out["mcc_ci95_low"], out["mcc_ci95_high"] = math.nan, math.nan
    for i, reps in enumerate(out["replicates"]):
        ci = bootstrap([stats[r] for r in str(reps).split(";")], "mcc", n_boot, seed=seed)
        out.loc[i, ["mcc_ci95_low", "mcc_ci95_high"]] = [ci.low, ci.high]


def name_suite_metric(table: pd.DataFrame, suite: Mapping[str, str] | None) -> pd.DataFrame:
    """The comparison table of a benchmark suite's task with the columns ``suite`` (its name
    and format) and ``suite_metric`` (the suite's official metric, one of the table's metric
    columns: accuracy for Genomic Benchmarks, mcc for NT downstream and GUE), so that a
    number is read as the suite reports it. Unchanged for a task of no suite."""
    if not suite:
        return table
    metric = suite["metric"]
    if metric not in table.columns:
        raise InputFormatError(
            f"the suite {suite['suite']!r} reports {metric!r}, which the runs' metrics lack "
            f"(columns: {list(table.columns)})"
        )
    out = table.copy()
    out["suite"] = f"{suite['suite']} ({suite['suite_format']})"
    out["suite_metric"] = metric
    return out
