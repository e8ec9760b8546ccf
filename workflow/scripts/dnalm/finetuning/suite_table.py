"""One table per benchmark suite, from its tasks' comparison tables.

Rows are the entries of the comparison tables (fine-tuning runs and baselines, seed
replicates already folded by :mod:`dnalm.finetuning.compare`), and the published numbers
of the suite's paper that the config gives (``suites.X.published``: task -> {model name
-> value}), marked ``published``; columns are the suite's tasks. Each cell is the suite's
official metric (the comparison table's ``suite_metric``) as ``mean ± sd [low, high]``: the
mean and sd over seed replicates (sd empty for one seed) and the bootstrap 95% CI the
comparison table carries for that metric: ``ci95_low``/``ci95_high`` where the suite's metric
is the table's main metric (accuracy: Genomic Benchmarks), ``mcc_ci95_low``/``mcc_ci95_high``
for MCC (NT downstream, GUE; :func:`dnalm.finetuning.compare.mcc_intervals`). A metric without
a CI column (macro-F1) gets mean ± sd only.

:func:`suite_long` gives the numbers in long form (task, row, source, mean, sd, CI) for the
figure (:func:`dnalm.report.suite_plots.plot_suite`); :func:`suite_wide` the table people
read. Torch-free.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from dnalm.core.errors import InputFormatError
from dnalm.core.io import atomic_write
from dnalm.kinds.tasks import TASK_KINDS

LONG_COLUMNS = [
    "task",
    "row",
    "source",
    "metric",
    "mean",
    "sd",
    "n_seeds",
    "ci95_low",
    "ci95_high",
    "ci_metric",
]
#: the metric the comparison tables' CI columns are of (classification tasks)
CLASSIFICATION_MAIN = TASK_KINDS.get("classification").main_metric


def _number(value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def suite_long(
    tables: Mapping[str, str | os.PathLike],
    published: Mapping[str, Mapping[str, float]] | None = None,
) -> pd.DataFrame:
    """The numbers of every task (`tables`: task -> its comparison.tsv) and the published
    ones, one row per (task, row) (LONG_COLUMNS). InputFormatError names a table without
    the suite columns or whose tasks disagree on the metric."""
    rows, metrics = [], {}
    for task, path in tables.items():
        df = pd.read_csv(path, sep="\t")
        if "suite_metric" not in df.columns or df.empty:
            raise InputFormatError(
                f"{path}: no `suite_metric` column (or no row); the comparison table of a "
                "suite task names its metric (rule finetune_compare); rerun it"
            )
        metric = str(df["suite_metric"].iloc[0])
        metrics[task] = metric
        if metric not in df.columns:
            raise InputFormatError(f"{path}: the suite metric {metric!r} has no column")
        for _, r in df.iterrows():
            sd_col = f"{metric}_sd"
            # the CI of the suite's metric: its own columns (MCC), else the table's main one
            low, high = f"{metric}_ci95_low", f"{metric}_ci95_high"
            if low not in df.columns and metric == CLASSIFICATION_MAIN:
                low, high = "ci95_low", "ci95_high"
            rows.append(
                {
                    "task": task,
                    "row": str(r["run"]),
                    "source": "baseline" if str(r.get("regime")) == "baseline" else "ours",
                    "metric": metric,
                    "mean": _number(r[metric]),
                    "sd": _number(r[sd_col]) if sd_col in df.columns else math.nan,
                    "n_seeds": int(_number(r.get("n_seeds", 1)) or 1),
                    "ci95_low": _number(r.get(low)),
                    "ci95_high": _number(r.get(high)),
                    "ci_metric": metric if low in df.columns else "",
                }
            )
    for task, values in (published or {}).items():
        if task not in metrics:
            raise InputFormatError(
                f"published numbers for task {task!r}, which has no comparison table here "
                f"(tasks: {', '.join(metrics)})"
            )
        for model, value in values.items():
            rows.append(
                {
                    "task": task,
                    "row": f"{model} (published)",
                    "source": "published",
                    "metric": metrics[task],
                    "mean": float(value),
                    "sd": math.nan,
                    "n_seeds": 0,
                    "ci95_low": math.nan,
                    "ci95_high": math.nan,
                    "ci_metric": "",
                }
            )
    return pd.DataFrame(rows, columns=LONG_COLUMNS)


def cell(r: Mapping) -> str:
    """``mean ± sd [low, high]`` (the parts that exist)."""
    if not math.isfinite(r["mean"]):
        return ""
    text = f"{r['mean']:.3f}"
    if math.isfinite(r["sd"]):
        text += f" ± {r['sd']:.3f}"
    if math.isfinite(r["ci95_low"]) and math.isfinite(r["ci95_high"]):
        text += f" [{r['ci95_low']:.3f}, {r['ci95_high']:.3f}]"
    return text


def suite_wide(long: pd.DataFrame) -> pd.DataFrame:
    """One row per model (our runs, then baselines, then published numbers; ``source``
    says which), one column per task holding the cell text (:func:`cell`). The first row,
    ``row == "metric"``, names each task's metric."""
    tasks = list(dict.fromkeys(long["task"]))
    order = {"ours": 0, "baseline": 1, "published": 2}
    rows = sorted(
        {(r["row"], r["source"]) for _, r in long.iterrows()},
        key=lambda x: (order.get(x[1], 3), x[0]),
    )
    first = {"row": "metric", "source": ""}
    for task in tasks:
        t = long[long["task"] == task]
        first[task] = f"{t['metric'].iloc[0]} (mean ± sd [bootstrap 95% CI])"
    out = [first]
    for name, source in rows:
        rec = {"row": name, "source": source}
        for task in tasks:
            hit = long[(long["task"] == task) & (long["row"] == name)]
            rec[task] = cell(hit.iloc[0]) if len(hit) else ""
        out.append(rec)
    return pd.DataFrame(out, columns=["row", "source", *tasks])


def write_suite_table(
    tables: Mapping[str, str | os.PathLike],
    published: Mapping[str, Mapping[str, float]] | None,
    out_tsv: str | os.PathLike,
) -> pd.DataFrame:
    """Write the wide table (whole or not at all); returns the long numbers."""
    long = suite_long(tables, published)
    wide = suite_wide(long)
    Path(out_tsv).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_tsv) as fh:
        wide.to_csv(fh, sep="\t", index=False)
    return long
