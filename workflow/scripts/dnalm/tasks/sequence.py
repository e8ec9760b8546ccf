"""Sequence classification/regression task tables from a TSV/CSV table or FASTA files per class,
with leakage-aware split assignment."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import read_fasta
from dnalm.kinds.tasks import SEQUENCE_TASK_KINDS, TASK_KINDS
from dnalm.tasks.common import (
    DEFAULT_FRACTIONS,
    SPLITS,
    NormCounts,
    as_paths,
    assign_splits,
    check_class_splits,
    check_exists,
    check_fractions,
    log_norm,
    normalize_sequence,
    read_table,
    regression_strata,
    write_task,
)
from dnalm.tasks.tf_binding import group_windows, parse_window_name

log = logging.getLogger(__name__)


def _rows_from_table(path: Path, kind: str, default_split: str, counts: NormCounts) -> list[dict]:
    df = read_table(path, ["sequence", "label"], f"sequence {kind}")
    rows = []
    for i, r in enumerate(df.to_dict("records")):
        where = f"{path}:{i + 2}"
        seq, n_iupac, n_u = normalize_sequence(r["sequence"], where, counts)
        label = str(r["label"]).strip()
        if not label:
            raise InputFormatError(f"{where}: empty label")
        if TASK_KINDS.get(kind).scalar:
            try:
                value = float(label)
            except ValueError as err:
                raise InputFormatError(f"{where}: label {label!r} is not a number") from err
            if not math.isfinite(value):
                raise InputFormatError(f"{where}: label is {label!r}; regression needs a number")
            label = value
        split = default_split or str(r.get("split", "")).strip().lower()
        if split and split not in SPLITS:
            raise InputFormatError(
                f"{where}: split {r.get('split')!r} is not one of {', '.join(SPLITS)} (or empty)"
            )
        rec = {k: v for k, v in r.items() if k not in ("sequence", "label", "split", "id")}
        rec.update(
            name=str(r.get("id", "")).strip(),
            sequence=seq,
            label=label,
            preset=split,
            source=str(path),
            source_line=i + 2,
            n_iupac_to_n=n_iupac,
            n_u_to_t=n_u,
        )
        rows.append(rec)
    return rows


def _rows_from_fasta(label: str, path: Path, split: str, counts: NormCounts) -> list[dict]:
    rows = []
    for header, raw, line in read_fasta(path):
        where = f"{path}:{line}"
        seq, n_iupac, n_u = normalize_sequence(raw, where, counts)
        rows.append(
            {
                "name": header.split(maxsplit=1)[0] if header else "",
                "sequence": seq,
                "label": label,
                "preset": split,
                "source": str(path),
                "source_line": line,
                "n_iupac_to_n": n_iupac,
                "n_u_to_t": n_u,
            }
        )
    if not rows:
        raise InputFormatError(f"{path}: no FASTA records (class {label!r})")
    return rows


def _leakage_groups(df: pd.DataFrame) -> tuple[np.ndarray, bool]:
    """Group ids joining rows with identical sequences and, when every name is a genomic
    window (chr1:100-300, chr1_100_300), rows whose windows overlap or abut. Returns the ids
    and whether positions were used."""
    # lazy: SciPy's sparse graphs load only for leakage grouping
    from scipy.sparse import coo_matrix

    # lazy: SciPy's sparse graphs load only for leakage grouping
    from scipy.sparse.csgraph import connected_components

    _, seq_groups = np.unique(df["sequence"].to_numpy(), return_inverse=True)
    coords = [parse_window_name(str(n)) for n in df["name"]]
    if not coords or any(c is None for c in coords):
        return seq_groups, False
    pos_groups = group_windows(
        [c[0] for c in coords], np.array([c[1] for c in coords]), np.array([c[2] for c in coords])
    )
    # bipartite graph: sequence-group nodes, then position-group nodes; one edge per row
    n_s, n_p = int(seq_groups.max()) + 1, int(pos_groups.max()) + 1
    graph = coo_matrix(
        (np.ones(len(df)), (seq_groups, n_s + pos_groups)), shape=(n_s + n_p, n_s + n_p)
    )
    _, comp = connected_components(graph, directed=False)
    return comp[seq_groups], True


def build_sequence_task(
    out_dir: str | os.PathLike,
    kind: str = "classification",
    table: str | os.PathLike | None = None,
    fasta_by_class: Mapping[str, str | os.PathLike | Sequence[str | os.PathLike]] | None = None,
    test_table: str | os.PathLike | None = None,
    test_fasta_by_class: Mapping[str, str | os.PathLike | Sequence] | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    generated: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Whole-sequence classification or regression from user files.

    Inputs: `table` (CSV/TSV with ``sequence`` and ``label``; optional ``id`` and ``split``
    (train/validation/test); other columns are kept as provenance) and/or `fasta_by_class`
    ({class name: FASTA path(s)}, classification only). A provided test set (`test_table`,
    `test_fasta_by_class`, or ``split=test`` rows) is used as is; otherwise test is carved
    with fraction fractions[2]. Validation (unless given) is carved from train in the ratio
    fractions[1] : fractions[0]. Carving is seeded, stratified by label (regression: label
    deciles) and keeps identical sequences in one split. Identical sequences in a provided
    test and in train are reported as a warning (possible leakage). `generated` (TSTR /
    TRTS: the model, set and role of the generated side, :mod:`dnalm.tasks.generated`) is
    recorded in task.json."""
    if kind not in SEQUENCE_TASK_KINDS:
        raise ConfigError(f"unknown task kind {kind!r}; use {' or '.join(SEQUENCE_TASK_KINDS)}")
    fr = check_fractions(fractions)
    if table is None and not fasta_by_class:
        raise ConfigError("sequence task: give a table (sequence,label) or FASTA files per class")
    if TASK_KINDS.get(kind).scalar and (fasta_by_class or test_fasta_by_class):
        raise ConfigError("sequence regression takes a table with numeric labels, not FASTA")
    counts = NormCounts()
    rows: list[dict] = []
    inputs: list[Path] = []
    for path, split in ((table, ""), (test_table, "test")):
        if path is not None:
            inputs.append(Path(path))
            check_exists([Path(path)])
            rows += _rows_from_table(Path(path), kind, split, counts)
    for mapping, split in ((fasta_by_class, ""), (test_fasta_by_class, "test")):
        for label, paths in (mapping or {}).items():
            for p in as_paths(paths):
                inputs.append(p)
                check_exists([p])
                rows += _rows_from_fasta(str(label), p, split, counts)
    log_norm(counts, "sequence task")
    params = {
        "task": f"sequence_{kind}",
        "fractions": list(fr),
        "seed": seed,
        "table": str(table) if table else None,
        "fasta_by_class": {
            k: [str(p) for p in as_paths(v)] for k, v in (fasta_by_class or {}).items()
        },
        "test_table": str(test_table) if test_table else None,
        "test_fasta_by_class": {
            k: [str(p) for p in as_paths(v)] for k, v in (test_fasta_by_class or {}).items()
        },
        "generated": dict(generated) if generated else None,
    }
    return write_sequence_task(out_dir, rows, kind, fr, seed, params, inputs)


def write_sequence_task(
    out_dir: str | os.PathLike,
    rows: list[dict],
    kind: str,
    fr: tuple[float, float, float],
    seed: int,
    params: Mapping[str, Any],
    inputs: Sequence[Path],
) -> pd.DataFrame:
    """Split and write a sequence task from its rows (sequence, label, preset split or '',
    name, source, source_line, provenance columns): rows without a preset split are carved
    (seeded, stratified, identical sequences and overlapping genomic windows kept in one
    split); a leak of a test sequence into train or validation is a warning."""
    df = pd.DataFrame.from_records(rows)
    df["name"] = df["name"].fillna("") if "name" in df else ""

    groups, by_position = _leakage_groups(df)
    if TASK_KINDS.get(kind).classes:
        strata = df["label"].astype(str).to_numpy()
    else:
        strata = regression_strata(df["label"].astype(float).to_numpy())
    df["split"] = assign_splits(df["preset"].to_numpy(), strata, groups, fr, seed)
    df = df.drop(columns="preset")

    split_arr = df["split"].to_numpy()
    test_groups = set(groups[split_arr == "test"].tolist())
    leak = np.flatnonzero((split_arr != "test") & np.isin(groups, list(test_groups)))
    if len(leak):
        first = df.iloc[leak[0]]
        log.warning(
            "%d train/validation sequence(s) are identical to%s a test sequence (first %s:%s); "
            "test metrics may be optimistic",
            len(leak),
            " or overlap the genomic window of" if by_position else "",
            first["source"],
            first["source_line"],
        )
    names = df["name"].astype(str)
    if (names != "").all() and names.is_unique:
        df["id"] = names
    else:
        if (names != "").any():
            log.warning("sequence ids are missing or not unique; using row numbers as ids")
        df["id"] = [f"seq{i:07d}" for i in range(len(df))]
    df["split"] = pd.Categorical(df["split"], SPLITS)
    df = df.sort_values("split", kind="stable").reset_index(drop=True)
    df["split"] = df["split"].astype(str)
    if TASK_KINDS.get(kind).classes:
        df["label"] = df["label"].astype(str)
        check_class_splits(df)
    return write_task(out_dir, df, kind, params, inputs)
