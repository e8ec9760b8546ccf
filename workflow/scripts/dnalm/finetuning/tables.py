"""The torch-free side of the fine-tuning stage: a task table's kind, class list and checks,
the predictions table writer, the seeded subsampling of a split, and the comparison table of
a task's runs.

Kept apart from :mod:`dnalm.finetuning.data` and :mod:`dnalm.finetuning.finetune` (which need
torch) so that the light jobs (the k-mer baseline, the comparison tables and figures) start
without loading torch.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_write
from dnalm.kinds.tasks import KINDS, TASK_KINDS, infer_kind
from dnalm.tasks.common import (
    load_task,  # noqa: F401 (the task table the light jobs read)
)

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- task tables


def task_kind(df: pd.DataFrame, kind: str | None = None) -> str:
    """The task kind: `kind` if given, else df.attrs['kind'] (set by dnalm.tasks.load_task),
    else per_base_regression when a `targets` column exists, else classification."""
    kind = kind or df.attrs.get("kind") or infer_kind(df.columns)
    if kind not in KINDS:
        raise ConfigError(f"task kind must be one of {KINDS}, got {kind!r}")
    need = TASK_KINDS.get(kind).value_column
    missing = {"id", "sequence", "split", need} - set(df.columns)
    if missing:
        raise InputFormatError(f"task table lacks column(s) {sorted(missing)} for a {kind} task")
    return kind


def class_labels(df: pd.DataFrame, labels: Sequence[str] | None) -> list[str]:
    order = labels or df.attrs.get("labels") or sorted(df["label"].astype(str).unique())
    order = [str(x) for x in order]
    unknown = set(df["label"].astype(str)) - set(order)
    if unknown:
        raise InputFormatError(f"labels {sorted(unknown)[:5]} are not in the class list {order}")
    return order


def save_predictions_tsv(path: Path, table: pd.DataFrame) -> None:
    with atomic_write(path) as fh:
        table.to_csv(fh, sep="\t", index=False, float_format="%.6g")


def validate_task_table(df: pd.DataFrame, kind: str, where: str = "task table") -> None:
    """Refuse tables a model cannot be trained or scored on, naming the row at fault:
    non-finite or ragged per-base targets, non-finite regression labels, and class labels
    of validation/test rows that never occur in train (no model can predict those)."""
    if TASK_KINDS.get(kind).per_base:
        for rid, seq, t in zip(df["id"], df["sequence"], df["targets"], strict=True):
            arr = t if isinstance(t, np.ndarray) else np.array(str(t).split(","), np.float32)
            if len(arr) != len(seq):
                raise InputFormatError(
                    f"{where}: row {rid}: {len(arr)} targets for a {len(seq)}-bp sequence"
                )
            if not np.isfinite(arr).all():
                pos = int(np.flatnonzero(~np.isfinite(arr))[0])
                raise InputFormatError(
                    f"{where}: row {rid}: target at base {pos + 1} is {arr[pos]} (NaN/inf); "
                    "fix or drop the row (targets must be finite numbers)"
                )
    elif TASK_KINDS.get(kind).scalar:
        y = pd.to_numeric(df["label"], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(y)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputFormatError(
                f"{where}: row {df['id'].iloc[i]}: label {df['label'].iloc[i]!r} is not a "
                "finite number"
            )
    else:
        labels = df["label"].astype(str)
        train = set(labels[df["split"] == "train"])
        for split in ("validation", "test"):
            rows = df[(df["split"] == split) & ~labels.isin(train)]
            if len(rows):
                unseen = sorted(set(rows["label"].astype(str)))
                raise InputFormatError(
                    f"{where}: label(s) {unseen[:5]} occur in the {split} split ({len(rows)} "
                    f"rows, e.g. {rows['id'].iloc[0]}) but never in train; a classifier "
                    "cannot predict a class it never saw: add training examples or drop them"
                )


# ----------------------------------------------------------------------------- comparison tables

#: Columns of a task's comparison table before the metric columns.
COMPARISON_COLUMNS = (
    "task",
    "run",
    "model",
    "tokenizer",
    "objective",
    "regime",
    "random_init",
    "seed",
    "trainable_params",
    "total_params",
    "wall_time_s",
    "n_train",
    "n_test",
)
#: test metric columns of each task kind, main metric first (dnalm.kinds.tasks)
METRIC_COLUMNS = {k.name: k.metrics for k in TASK_KINDS}


def subsample_split(
    df: pd.DataFrame, split: str | None, n_max: int | None, seed: int = 0
) -> pd.DataFrame:
    """The table with its `split` rows (every row when `split` is None) cut to a seeded
    random `n_max` (CI-sized runs); other rows untouched, row order kept."""
    if not n_max:
        return df
    rows = df.index if split is None else df.index[df["split"] == split]
    if len(rows) <= n_max:
        return df
    rng = np.random.default_rng(seed)
    drop = rng.permutation(rows)[n_max:]
    out = df.drop(index=drop)
    out.attrs = dict(df.attrs)
    log.info("%s: a seeded subsample of %d of %d rows", split or "table", n_max, len(rows))
    return out


def comparison_table(metrics_files: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per run (fine-tuned models and baselines) of one task, from their
    metrics.json files: the COMPARISON_COLUMNS, then the metrics of the task's kind. The
    run name is the metrics file's folder name. Sorted by the task's main metric, best
    first."""
    rows, kinds = [], set()
    for f in metrics_files:
        f = Path(f)
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise InputFormatError(f"{f}: cannot read run metrics ({err})") from err
        kind = rec.get("kind")
        if kind not in METRIC_COLUMNS:
            raise InputFormatError(f"{f}: unknown task kind {kind!r}")
        kinds.add(kind)
        row = {
            "task": rec.get("task"),
            "run": f.parent.name,
            "model": rec.get("backbone") or rec.get("model"),
            "tokenizer": rec.get("tokenizer"),
            "objective": rec.get("objective", "none"),
            "regime": rec.get("regime"),
            "random_init": bool(rec.get("random_init", False)),
            "seed": (rec.get("config") or {}).get("seed"),
            "trainable_params": rec.get("trainable_params"),
            "total_params": rec.get("total_params"),
            "wall_time_s": rec.get("wall_time_s"),
            "n_train": rec.get("n_train"),
            "n_test": rec.get("n_test"),
        }
        for c in METRIC_COLUMNS[kind]:
            v = rec["metrics"].get(c)
            row[c] = float("nan") if v is None else v
        rows.append(row)
    if len(kinds) > 1:
        raise InputFormatError(f"runs of different task kinds in one table: {sorted(kinds)}")
    if not rows:
        raise InputFormatError("no runs to compare")
    kind = kinds.pop()
    df = pd.DataFrame(rows, columns=[*COMPARISON_COLUMNS, *METRIC_COLUMNS[kind]])
    main = METRIC_COLUMNS[kind][0]
    return df.sort_values(main, ascending=False, kind="stable", na_position="last").reset_index(
        drop=True
    )
