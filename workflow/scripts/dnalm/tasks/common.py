"""Task datasets for fine-tuning, baselines and probes.

Every task is written to one folder (``results/tasks/{task}/``) as

- ``data.tsv``: one row per example with at least ``id``, ``sequence`` (upper-case, only
  A/C/G/T/N), ``split`` (train | validation | test) and either ``label`` (a class name or a
  number) or ``targets`` (comma-separated per-base floats, exactly one per base of the
  sequence), plus provenance columns (source file, line, sample, window, ...);
- ``summary.tsv``: rows per split and label (``split=all`` / ``label=*`` for totals) with the
  number of rows, the sequence length min/median/max, the number of bases converted while
  normalising (``bases_iupac_to_n``, ``bases_u_to_t``), sequences containing N, the fraction of
  non-zero targets (per-base tasks), label statistics (regression) and requested/available
  counts (species fragments);
- ``task.json``: the kind (classification | regression | per_base_regression), the class
  names, the parameters and the input files with their md5, so later stages need not guess.

All three appear together or not at all (atomic writes).

Sequence normalisation (every task): surrounding whitespace is stripped, lower case is
upper-cased (soft-masking is not information a model should see), U becomes T, and the IUPAC
ambiguity codes R Y S W K M B D H V become N (counted per row in ``n_iupac_to_n`` and in the
summary; they are kept as N rather than dropped so that per-base targets stay aligned). Any
other character (gap '-', '*', digits) and empty sequences are errors naming file and line.

Split rules, and why:

- species_fragments: the fragments of the task's *train* split are cut from the CDS of the
  pretraining *validation* split, those of its *test* split from the pretraining *test* split.
  Pretraining saw neither, and as the CDS split is a hash of the CDS sequence, no CDS (nor an
  identical copy of it) contributes to both the task's train and test. A CDS found in both
  input pools anyway (hand-made inputs) is dropped from the test pool with a warning, and no
  fragment sequence occurs twice in the whole task. An optional task validation split
  (``n_validation``) is cut from validation-split CDS disjoint from those of task train.
- tf_binding: windows are grouped by genomic position (overlapping or abutting windows, or
  windows closer than ``group_distance`` bp, form one group) and whole groups are assigned by
  a seeded hash, so no two overlapping windows can straddle splits.
- sequence_classification / sequence_regression: a provided test set is used as is;
  otherwise a seeded split stratified by label (by label decile for regression) is carved.
  The validation split is carved from train the same way. Identical sequences are grouped so
  that they always share a split.

Validation is meant for early stopping and model selection; test is evaluated once, at the
end, and never used to choose anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.core.alphabet import AMBIGUITY
from dnalm.core.artifacts import SUMMARY_TSV, TASK_DATA_TSV, TASK_JSON
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_path, file_digest, open_text
from dnalm.kinds.tasks import KINDS, TASK_KINDS, infer_kind

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
#: Default cap on fragments per CDS for species_fragments: with ~10% of a bacterial genome's
#: ~2,000 CDS in each held-out split (~200 CDS) this still reaches 1,000 fragments, while the
#: round-robin draw (one fragment per CDS per round) spreads them over as many genes as exist.
DEFAULT_MAX_PER_CDS = 10

_TO_N = str.maketrans(AMBIGUITY, "N" * len(AMBIGUITY))
_DROP_AMBIGUOUS = str.maketrans("", "", AMBIGUITY)
_INVALID = re.compile(r"[^ACGTN]")
WINDOW_NAME = re.compile(r"^(?P<chrom>.+?)[_:](?P<start>\d+)[_-](?P<end>\d+)$")


# ----------------------------------------------------------------------------- normalising


@dataclass
class NormCounts:
    """Running counts of what sequence normalisation changed (for the log)."""

    lowercase: int = 0
    iupac: int = 0
    u: int = 0


def normalize_sequence(
    raw: str, where: str, counts: NormCounts | None = None
) -> tuple[str, int, int]:
    """Upper-case, U->T and IUPAC ambiguity codes -> N; returns (sequence, n_iupac_to_n,
    n_u_to_t). Raises InputFormatError naming `where` (file:line) for an empty sequence or a
    character that is not a nucleotide code."""
    seq = raw.strip() if isinstance(raw, str) else ""
    if not seq:
        raise InputFormatError(f"{where}: empty sequence; remove the row or give its sequence")
    up = seq.upper()
    if counts is not None and up != seq:
        counts.lowercase += 1
    n_u = up.count("U")
    if n_u:
        up = up.replace("U", "T")
    n_iupac = len(up) - len(up.translate(_DROP_AMBIGUOUS))
    if n_iupac:
        up = up.translate(_TO_N)
    bad = _INVALID.search(up)
    if bad:
        raise InputFormatError(
            f"{where}: invalid character {seq[bad.start()]!r} at position {bad.start() + 1} of "
            "the sequence; only nucleotide codes (ACGTU and IUPAC ambiguity codes) are allowed"
        )
    if counts is not None:
        counts.iupac += n_iupac
        counts.u += n_u
    return up, n_iupac, n_u


def log_norm(counts: NormCounts, what: str) -> None:
    if counts.lowercase:
        log.info("%s: %d sequence(s) had lower-case bases, upper-cased", what, counts.lowercase)
    if counts.u:
        log.warning("%s: %d U base(s) converted to T (RNA input?)", what, counts.u)
    if counts.iupac:
        log.warning(
            "%s: %d IUPAC ambiguity base(s) (%s) converted to N",
            what,
            counts.iupac,
            AMBIGUITY,
        )


# ----------------------------------------------------------------------------- helpers


def stable_u64(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3:
        raise ConfigError(f"fractions must be (train, validation, test), got {fractions!r}")
    fr = tuple(float(f) for f in fractions)
    if any(f < 0 or math.isnan(f) for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise ConfigError(f"fractions must be non-negative and sum to 1, got {fr}")
    if fr[0] <= 0:
        raise ConfigError(f"the train fraction must be > 0, got {fr}")
    return fr  # type: ignore[return-value]


def _sniff_delimiter(path: Path) -> str:
    """',' for .csv, tab for .tsv/.tab/.txt (also under .gz); otherwise decided by the header
    line (more tabs than commas -> tab)."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return ","
    if name.endswith((".tsv", ".tab")):
        return "\t"
    with open_text(path) as fh:
        header = fh.readline()
    return "\t" if header.count("\t") >= header.count(",") and "\t" in header else ","


#: The columns that place a task's items on a genome (BED conventions: 0-based start, end
#: exclusive); read_table keeps them, and a genome/regions corpus excludes what they name.
COORDINATE_COLUMNS = ("chrom", "start", "end")


def has_coordinates(path: str | os.PathLike) -> bool:
    """Whether the header line of the CSV/TSV `path` has the columns chrom, start and end
    (names stripped, any case), as read_table reads them; only the first line is read."""
    path = Path(path)
    sep = _sniff_delimiter(path)
    with open_text(path) as fh:
        header = fh.readline()
    names = {c.strip().strip('"').lower() for c in header.rstrip("\r\n").split(sep)}
    return set(COORDINATE_COLUMNS) <= names


def read_table(path: Path, required: Sequence[str], what: str) -> pd.DataFrame:
    """Read a CSV/TSV as strings (nothing turned into NaN); column names are stripped and
    matched case-insensitively against `required` and renamed to them."""
    sep = _sniff_delimiter(path)
    try:
        with open_text(path) as fh:
            df = pd.read_csv(fh, sep=sep, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputFormatError(f"{path}: cannot read as a {what} table ({err})") from err
    rename = {}
    lower = {str(c).strip().lower(): c for c in df.columns}
    for col in required:
        if col not in lower:
            raise InputFormatError(
                f"{path}: missing column(s) "
                f"{[c for c in required if c not in lower]}; a {what} table needs the columns "
                f"{list(required)} (found {[str(c) for c in df.columns]}; delimiter "
                f"{'TAB' if sep == chr(9) else repr(sep)})"
            )
    for key, col in lower.items():
        rename[col] = key if key in (*required, "id", "split", *COORDINATE_COLUMNS) else col
    df = df.rename(columns=rename)
    if df.columns.duplicated().any():
        raise InputFormatError(f"{path}: duplicate column names {list(df.columns)}")
    if len(df) == 0:
        raise InputFormatError(f"{path}: the {what} table has no rows")
    return df


def as_paths(x: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(x, str | os.PathLike):
        return [Path(x)]
    return [Path(p) for p in x]


def check_exists(paths: Iterable[Path]) -> None:
    for p in paths:
        if not Path(p).is_file():
            raise InputFormatError(f"{p}: input file not found")


def _inputs_record(paths: Iterable[Path]) -> list[dict]:
    seen: dict[str, dict] = {}
    for p in paths:
        if str(p) not in seen:
            seen[str(p)] = {"path": str(p), "md5": file_digest(p)}
    return list(seen.values())


# ----------------------------------------------------------------------------- summary + write


def _length_stats(lengths: np.ndarray) -> dict:
    if len(lengths) == 0:
        return {"length_min": 0, "length_median": 0.0, "length_max": 0}
    return {
        "length_min": int(lengths.min()),
        "length_median": float(np.median(lengths)),
        "length_max": int(lengths.max()),
    }


def summarize_task(
    df: pd.DataFrame, kind: str, extra: Mapping[tuple[str, str], Mapping] | None = None
) -> pd.DataFrame:
    """One row per (split, label) and totals per split (label '*') and overall (split 'all').

    Columns: split, label, n, length_min/median/max, n_with_N, bases_iupac_to_n, bases_u_to_t;
    per-base tasks add nonzero_target_fraction and target_mean; regression adds label_mean,
    label_std, label_min, label_max. `extra` adds columns to given (split, label) rows."""
    lengths = df["sequence"].str.len().to_numpy()
    has_n = df["sequence"].str.contains("N", regex=False).to_numpy()
    rows: list[dict] = []
    present = [s for s in SPLITS if (df["split"] == s).any()]

    def row(split: str, label: str, mask: np.ndarray) -> dict:
        sub = df[mask]
        r: dict = {"split": split, "label": label, "n": int(mask.sum())}
        r.update(_length_stats(lengths[mask]))
        r["n_with_N"] = int(has_n[mask].sum())
        r["bases_iupac_to_n"] = int(sub["n_iupac_to_n"].sum()) if "n_iupac_to_n" in sub else 0
        r["bases_u_to_t"] = int(sub["n_u_to_t"].sum()) if "n_u_to_t" in sub else 0
        if TASK_KINDS.get(kind).per_base:
            total = lengths[mask].sum()
            r["nonzero_target_fraction"] = (
                float(sub["n_nonzero_targets"].sum() / total) if total else 0.0
            )
            r["target_mean"] = float(sub["target_sum"].sum() / total) if total else 0.0
        if TASK_KINDS.get(kind).scalar:
            y = sub["label"].astype(float).to_numpy()
            r["label_mean"] = float(y.mean()) if len(y) else float("nan")
            r["label_std"] = float(y.std(ddof=0)) if len(y) else float("nan")
            r["label_min"] = float(y.min()) if len(y) else float("nan")
            r["label_max"] = float(y.max()) if len(y) else float("nan")
        if extra and (split, label) in extra:
            r.update(extra[(split, label)])
        return r

    split_col = df["split"].to_numpy()
    for split in [*present, "all"]:
        in_split = np.ones(len(df), bool) if split == "all" else split_col == split
        if TASK_KINDS.get(kind).classes:
            labels = df["label"].to_numpy()
            for label in sorted(set(labels[in_split]) | _extra_labels(extra, split)):
                rows.append(row(split, label, in_split & (labels == label)))
        rows.append(row(split, "*", in_split))
    return pd.DataFrame(rows)


def _extra_labels(extra: Mapping[tuple[str, str], Mapping] | None, split: str) -> set[str]:
    return {lab for (s, lab) in (extra or {}) if s == split and lab != "*"}


def write_task(
    out_dir: str | os.PathLike,
    df: pd.DataFrame,
    kind: str,
    params: Mapping,
    inputs: Iterable[Path],
    extra: Mapping[tuple[str, str], Mapping] | None = None,
) -> pd.DataFrame:
    """Check the table against the task contract and write data.tsv, summary.tsv and
    task.json atomically (all three renamed only after all were written)."""
    assert kind in KINDS, kind
    value_col = TASK_KINDS.get(kind).value_column
    for col in ("id", "sequence", "split", value_col):
        assert col in df.columns, f"internal: task table lacks {col}"
    dup = df["id"][df["id"].duplicated()]
    if len(dup):
        raise InputFormatError(
            f"duplicate example id {dup.iloc[0]!r} ({len(dup)} duplicate(s)); ids must be unique"
        )
    bad_split = ~df["split"].isin(SPLITS)
    if bad_split.any():
        raise InputFormatError(f"internal: unknown split {df['split'][bad_split].iloc[0]!r}")
    summary = summarize_task(df, kind, extra)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = sorted(df["label"].unique().tolist()) if TASK_KINDS.get(kind).classes else None
    meta = {
        "kind": kind,
        "labels": labels,
        "n_rows": {s: int((df["split"] == s).sum()) for s in SPLITS},
        "columns": list(df.columns),
        "params": dict(params),
        "inputs": _inputs_record(inputs),
    }
    front = ["id", "sequence", "split", value_col]
    ordered = df[front + [c for c in df.columns if c not in front]]
    with contextlib.ExitStack() as stack:
        p_data = stack.enter_context(atomic_path(out / TASK_DATA_TSV))
        p_sum = stack.enter_context(atomic_path(out / SUMMARY_TSV))
        p_meta = stack.enter_context(atomic_path(out / TASK_JSON))
        ordered.to_csv(p_data, sep="\t", index=False, lineterminator="\n")
        summary.to_csv(p_sum, sep="\t", index=False, lineterminator="\n")
        p_meta.write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    log.info(
        "task written to %s: %s",
        out,
        ", ".join(f"{s} {n}" for s, n in meta["n_rows"].items()),
    )
    return summary


def check_class_splits(df: pd.DataFrame, min_classes: int = 2) -> None:
    """Classification: every label in test (or validation) must occur in train (an error
    naming the label and its file); a train label absent from test/validation is a warning."""
    train = set(df.loc[df["split"] == "train", "label"])
    if len(set(df["label"])) < min_classes:
        raise InputFormatError(
            f"a classification task needs at least {min_classes} classes, found "
            f"{sorted(set(df['label']))}"
        )
    for split in ("test", "validation"):
        sub = df[df["split"] == split]
        if not len(sub):
            continue
        only = sorted(set(sub["label"]) - train)
        if only:
            lab = only[0]
            first = sub[sub["label"] == lab].iloc[0]
            src = f"{first.get('source', '?')}:{first.get('source_line', '?')}"
            raise InputFormatError(
                f"label {lab!r} occurs in the {split} split ({src}) but never in train; a "
                "classifier cannot learn it. Add training examples or remove those rows"
                + (f" (also only in {split}: {only[1:]})" if len(only) > 1 else "")
            )
        missing = sorted(train - set(sub["label"]))
        if missing:
            log.warning(
                "label(s) %s have no example in the %s split; their %s metrics will be missing",
                missing,
                split,
                split,
            )


# ----------------------------------------------------------------------------- splitting


def _carve(
    candidates: np.ndarray,
    fraction: float,
    strata: np.ndarray,
    groups: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Pick about `fraction` of the rows `candidates` (indices), stratified by `strata`, taking
    whole groups (rows with equal `groups` key). Returns the chosen row indices."""
    if fraction <= 0 or len(candidates) == 0:
        return np.array([], dtype=np.int64)
    chosen: list[np.ndarray] = []
    cand_groups = groups[candidates]
    # Each group belongs to the stratum of its first candidate row.
    uniq, first, inverse = np.unique(cand_groups, return_index=True, return_inverse=True)
    members = [[] for _ in range(len(uniq))]
    for pos, g in enumerate(inverse):
        members[g].append(candidates[pos])
    group_stratum = strata[candidates[first]]
    for stratum in sorted(set(group_stratum.tolist()), key=str):
        gidx = np.flatnonzero(group_stratum == stratum)
        n_rows = sum(len(members[g]) for g in gidx)
        target = round(fraction * n_rows)
        taken = 0
        for g in gidx[rng.permutation(len(gidx))]:
            if taken >= target:
                break
            chosen.append(np.asarray(members[g]))
            taken += len(members[g])
    return np.concatenate(chosen) if chosen else np.array([], dtype=np.int64)


def regression_strata(y: np.ndarray) -> np.ndarray:
    """Label deciles (fewer bins for small tables) as strata for a regression split."""
    n_bins = int(min(10, max(1, len(y) // 20)))
    if n_bins <= 1:
        return np.zeros(len(y), dtype=np.int64)
    edges = np.unique(np.quantile(y, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, y, side="right")


def assign_splits(
    preset: np.ndarray,
    strata: np.ndarray,
    groups: np.ndarray,
    fractions: tuple[float, float, float],
    seed: int,
) -> np.ndarray:
    """Fill the empty entries of `preset` (split names or '') with train/validation/test:
    test is carved only when no row is preset to test, validation only when none is preset to
    validation; both stratified and grouped (see _carve)."""
    split = preset.astype(object).copy()
    rng = np.random.default_rng(seed)
    f_train, f_val, f_test = fractions
    free = np.flatnonzero(split == "")
    if not (split == "test").any():
        test = _carve(free, f_test, strata, groups, rng)
        split[test] = "test"
        free = np.flatnonzero(split == "")
    if not (split == "validation").any():
        pool = np.flatnonzero((split == "") | (split == "train"))
        val = _carve(pool, f_val / (f_train + f_val), strata, groups, rng)
        split[val] = "validation"
    split[split == ""] = "train"
    return split


# ----------------------------------------------------------------------------- loading


def load_task(path: str | os.PathLike, targets_as_arrays: bool = False) -> pd.DataFrame:
    """Read a task folder (or its data.tsv). Sequences, ids, splits and class labels are
    strings; regression labels floats; with `targets_as_arrays` the per-base ``targets``
    column holds float32 arrays instead of comma-separated text. The task kind is in
    ``df.attrs['kind']`` (from task.json, else inferred)."""
    path = Path(path)
    data = path / TASK_DATA_TSV if path.is_dir() else path
    meta_path = data.parent / TASK_JSON
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    if not data.is_file():
        raise InputFormatError(f"{data}: task table not found")
    header = pd.read_csv(data, sep="\t", nrows=0).columns
    kind = meta.get("kind") or infer_kind(header)
    desc = TASK_KINDS.get(kind) if kind in TASK_KINDS else None  # unknown: task_kind() says so
    str_cols = {c: str for c in ("id", "sequence", "split", "targets", "group") if c in header}
    if desc is not None and desc.classes and "label" in header:
        str_cols["label"] = str
    df = pd.read_csv(data, sep="\t", dtype=str_cols, keep_default_na=False)
    if desc is not None and desc.scalar:
        df["label"] = df["label"].astype(float)
    if targets_as_arrays and "targets" in df:
        df["targets"] = [np.array(t.split(","), dtype=np.float32) for t in df["targets"]]
    df.attrs["kind"] = kind
    df.attrs["labels"] = meta.get("labels")
    return df


def targets_matrix(df: pd.DataFrame) -> np.ndarray:
    """Stack per-base targets of equal length into a float32 array (N, L)."""
    col = df["targets"]
    arrs = [t if isinstance(t, np.ndarray) else np.array(t.split(","), np.float32) for t in col]
    lengths = {len(a) for a in arrs}
    if len(lengths) > 1:
        raise InputFormatError(f"targets have different lengths {sorted(lengths)[:5]}; pad first")
    return np.stack(arrs).astype(np.float32)  # (N, L)


__all__ = [
    "COORDINATE_COLUMNS",
    "has_coordinates",
    "load_task",
    "normalize_sequence",
    "summarize_task",
    "targets_matrix",
]
