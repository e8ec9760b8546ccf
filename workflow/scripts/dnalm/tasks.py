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

import argparse
import contextlib
import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from dnalm.errors import ConfigError, InputFormatError
from dnalm.io import atomic_path, file_digest, open_text, read_fasta
from dnalm.log import progress_disabled

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
KINDS = ("classification", "regression", "per_base_regression")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
#: Default cap on fragments per CDS for species_fragments: with ~10% of a bacterial genome's
#: ~2,000 CDS in each held-out split (~200 CDS) this still reaches 1,000 fragments, while the
#: round-robin draw (one fragment per CDS per round) spreads them over as many genes as exist.
DEFAULT_MAX_PER_CDS = 10

_IUPAC_AMBIGUOUS = "RYSWKMBDHV"
_TO_N = str.maketrans(_IUPAC_AMBIGUOUS, "N" * len(_IUPAC_AMBIGUOUS))
_DROP_AMBIGUOUS = str.maketrans("", "", _IUPAC_AMBIGUOUS)
_INVALID = re.compile(r"[^ACGTN]")
_WINDOW_NAME = re.compile(r"^(?P<chrom>.+?)[_:](?P<start>\d+)[_-](?P<end>\d+)$")
_ACGT_BYTES = np.frombuffer(b"ACGT", dtype=np.uint8)


# ----------------------------------------------------------------------------- normalising


@dataclass
class _Norm:
    """Running counts of what sequence normalisation changed (for the log)."""

    lowercase: int = 0
    iupac: int = 0
    u: int = 0


def normalize_sequence(raw: str, where: str, counts: _Norm | None = None) -> tuple[str, int, int]:
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


def _log_norm(counts: _Norm, what: str) -> None:
    if counts.lowercase:
        log.info("%s: %d sequence(s) had lower-case bases, upper-cased", what, counts.lowercase)
    if counts.u:
        log.warning("%s: %d U base(s) converted to T (RNA input?)", what, counts.u)
    if counts.iupac:
        log.warning(
            "%s: %d IUPAC ambiguity base(s) (%s) converted to N",
            what,
            counts.iupac,
            _IUPAC_AMBIGUOUS,
        )


# ----------------------------------------------------------------------------- helpers


def _stable_u64(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
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


def _read_table(path: Path, required: Sequence[str], what: str) -> pd.DataFrame:
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
        rename[col] = key if key in (*required, "id", "split", "chrom", "start", "end") else col
    df = df.rename(columns=rename)
    if df.columns.duplicated().any():
        raise InputFormatError(f"{path}: duplicate column names {list(df.columns)}")
    if len(df) == 0:
        raise InputFormatError(f"{path}: the {what} table has no rows")
    return df


def _as_paths(x: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(x, str | os.PathLike):
        return [Path(x)]
    return [Path(p) for p in x]


def _check_exists(paths: Iterable[Path]) -> None:
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
        if kind == "per_base_regression":
            total = lengths[mask].sum()
            r["nonzero_target_fraction"] = (
                float(sub["n_nonzero_targets"].sum() / total) if total else 0.0
            )
            r["target_mean"] = float(sub["target_sum"].sum() / total) if total else 0.0
        if kind == "regression":
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
        if kind == "classification":
            labels = df["label"].to_numpy()
            for label in sorted(set(labels[in_split]) | _extra_labels(extra, split)):
                rows.append(row(split, label, in_split & (labels == label)))
        rows.append(row(split, "*", in_split))
    return pd.DataFrame(rows)


def _extra_labels(extra: Mapping[tuple[str, str], Mapping] | None, split: str) -> set[str]:
    return {lab for (s, lab) in (extra or {}) if s == split and lab != "*"}


def _write_task(
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
    value_col = "targets" if kind == "per_base_regression" else "label"
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
    labels = sorted(df["label"].unique().tolist()) if kind == "classification" else None
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
        p_data = stack.enter_context(atomic_path(out / "data.tsv"))
        p_sum = stack.enter_context(atomic_path(out / "summary.tsv"))
        p_meta = stack.enter_context(atomic_path(out / "task.json"))
        ordered.to_csv(p_data, sep="\t", index=False, lineterminator="\n")
        summary.to_csv(p_sum, sep="\t", index=False, lineterminator="\n")
        p_meta.write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    log.info(
        "task written to %s: %s",
        out,
        ", ".join(f"{s} {n}" for s, n in meta["n_rows"].items()),
    )
    return summary


def _check_class_splits(df: pd.DataFrame, min_classes: int = 2) -> None:
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


def _regression_strata(y: np.ndarray) -> np.ndarray:
    """Label deciles (fewer bins for small tables) as strata for a regression split."""
    n_bins = int(min(10, max(1, len(y) // 20)))
    if n_bins <= 1:
        return np.zeros(len(y), dtype=np.int64)
    edges = np.unique(np.quantile(y, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, y, side="right")


def _assign_splits(
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


# ----------------------------------------------------------------------------- species fragments


@dataclass
class _Cds:
    sample: str
    cds_id: str
    seq: str
    source: str
    line: int
    _offsets: np.ndarray | None = None
    _ptr: int = 0
    taken: list[int] = field(default_factory=list)

    def next_offset(self, length: int, rng: np.random.Generator, used: set[str]) -> int | None:
        """The next random in-frame offset whose window is ACGT-only, does not overlap a
        window already taken from this CDS and whose sequence is not yet in the task."""
        if self._offsets is None:
            arr = np.frombuffer(self.seq.encode("ascii"), dtype=np.uint8)
            bad = np.concatenate([[0], np.cumsum(~np.isin(arr, _ACGT_BYTES))])
            starts = np.arange(0, len(arr) - length + 1, 3)
            ok = starts[bad[starts + length] - bad[starts] == 0]
            self._offsets = ok[rng.permutation(len(ok))]
        while self._ptr < len(self._offsets):
            off = int(self._offsets[self._ptr])
            self._ptr += 1
            if any(abs(off - t) < length for t in self.taken):
                continue
            frag = self.seq[off : off + length]
            if frag in used:
                continue
            self.taken.append(off)
            used.add(frag)
            return off
        return None


def _read_cds_pool(sample: str, path: Path) -> list[_Cds]:
    _check_exists([path])
    pool = []
    for header, seq, line in read_fasta(path):
        cds_id = header.split(maxsplit=1)[0] if header else ""
        if not cds_id:
            raise InputFormatError(f"{path}:{line}: FASTA header without an id")
        pool.append(_Cds(sample, cds_id, seq.upper(), str(path), line))
    return pool


def _draw(
    pool: list[_Cds], n: int, length: int, max_per_cds: int, rng: np.random.Generator, used: set
) -> list[tuple[_Cds, int]]:
    """Round-robin over the CDS in a random order: one fragment per CDS per round, until `n`
    fragments, every CDS at `max_per_cds`, or no CDS has a free window left."""
    active = [pool[i] for i in rng.permutation(len(pool))]
    out: list[tuple[_Cds, int]] = []
    while active and len(out) < n:
        keep = []
        for cds in active:
            if len(out) >= n:
                break
            off = cds.next_offset(length, rng, used)
            if off is None:
                continue
            out.append((cds, off))
            if len(cds.taken) < max_per_cds:
                keep.append(cds)
        active = keep
    return out


def build_species_fragments(
    samples: Sequence[Mapping],
    out_dir: str | os.PathLike,
    length: int = 60,
    n_train: int = 1000,
    n_test: int = 1000,
    n_validation: int = 0,
    seed: int = 0,
    max_per_cds: int = DEFAULT_MAX_PER_CDS,
    balance: bool = False,
) -> pd.DataFrame:
    """Species classification from short in-frame CDS fragments of held-out CDS.

    `samples`: dicts with ``sample``, ``species``, ``validation_fasta`` and ``test_fasta``
    (``results/splits/{sample}/{validation,test}.fa.gz``). Samples sharing a species pool their
    CDS. Per species, `n_train` fragments (task train) are cut from the validation-split CDS
    and `n_test` (task test) from the test-split CDS, so no CDS feeds both; with
    `n_validation` > 0 a share of the validation-split CDS is set aside for a task validation
    split. Each fragment is `length` nt starting at an offset divisible by 3 from the CDS start,
    ACGT only; fragments of one CDS do not overlap, at most `max_per_cds` per CDS, drawn
    round-robin so they spread over genes; no fragment sequence occurs twice in the task.

    A species with too few CDS gets fewer fragments and a warning (the summary's ``n`` vs
    ``n_requested`` columns show it). `balance=True` (default False: keep every fragment found,
    warn about the imbalance) downsamples every species to the smallest count per split, with a
    warning. Seeded; a species' draw depends only on seed, species and inputs."""
    if length < 1 or n_train < 1 or n_test < 1 or n_validation < 0 or max_per_cds < 1:
        raise ConfigError(
            "species_fragments: need length >= 1, n_train >= 1, n_test >= 1, n_validation >= 0 "
            f"and max_per_cds >= 1 (got length={length}, n_train={n_train}, n_test={n_test}, "
            f"n_validation={n_validation}, max_per_cds={max_per_cds})"
        )
    keys = ("sample", "species", "validation_fasta", "test_fasta")
    by_species: dict[str, list[Mapping]] = {}
    for i, s in enumerate(samples):
        missing = [k for k in keys if not s.get(k)]
        if missing:
            raise ConfigError(
                f"species_fragments: sample entry {i} ({s.get('sample', '?')}) lacks {missing}; "
                f"each entry needs {list(keys)}"
            )
        by_species.setdefault(str(s["species"]), []).append(s)
    if len(by_species) < 2:
        raise ConfigError(
            "species_fragments needs samples of at least 2 species (flag more samples with "
            f"species_task), got {sorted(by_species)}"
        )
    requested = {"train": n_train, "validation": n_validation, "test": n_test}

    pools: dict[str, dict[str, list[_Cds]]] = {}
    inputs: list[Path] = []
    for species in sorted(by_species):
        train_pool: list[_Cds] = []
        test_pool: list[_Cds] = []
        for s in by_species[species]:
            vpath, tpath = Path(s["validation_fasta"]), Path(s["test_fasta"])
            inputs += [vpath, tpath]
            train_pool += _read_cds_pool(str(s["sample"]), vpath)
            test_pool += _read_cds_pool(str(s["sample"]), tpath)
        val_pool: list[_Cds] = []
        if n_validation:
            rng = np.random.default_rng([seed, _stable_u64(species), 7])
            order = rng.permutation(len(train_pool))
            n_val_cds = round(len(train_pool) * n_validation / (n_train + n_validation))
            val_pool = [train_pool[i] for i in order[:n_val_cds]]
            train_pool = [train_pool[i] for i in order[n_val_cds:]]
        pools[species] = {"train": train_pool, "validation": val_pool, "test": test_pool}

    # No CDS (by sequence) may feed both task train/validation and test.
    fit_seqs = {c.seq for p in pools.values() for c in p["train"] + p["validation"]}
    for species, p in pools.items():
        clash = [c for c in p["test"] if c.seq in fit_seqs]
        if clash:
            log.warning(
                "species %r: %d test-split CDS (first %s:%d) are identical to a validation-split "
                "CDS; dropped from the task's test pool",
                species,
                len(clash),
                clash[0].source,
                clash[0].line,
            )
            p["test"] = [c for c in p["test"] if c.seq not in fit_seqs]

    used: set[str] = set()
    drawn: dict[tuple[str, str], list[tuple[_Cds, int]]] = {}
    for split_idx, split in enumerate(SPLITS):
        if not requested[split]:
            continue
        for species in sorted(pools):
            rng = np.random.default_rng([seed, _stable_u64(species), split_idx])
            pool = pools[species][split]
            got = _draw(pool, requested[split], length, max_per_cds, rng, used)
            drawn[(split, species)] = got
            if len(got) < requested[split]:
                src = "validation" if split != "test" else "test"
                log.warning(
                    "species %r: only %d of %d %s fragments of %d nt (from %d %s-split CDS of "
                    "sample(s) %s; max %d per CDS); the task is imbalanced unless balance: true",
                    species,
                    len(got),
                    requested[split],
                    split,
                    length,
                    len(pool),
                    src,
                    ", ".join(sorted({str(s["sample"]) for s in by_species[species]})),
                    max_per_cds,
                )

    if balance:
        for split in SPLITS:
            counts = {sp: len(v) for (s, sp), v in drawn.items() if s == split}
            if not counts:
                continue
            low = min(counts.values())
            if any(c > low for c in counts.values()):
                log.warning(
                    "balance: downsampling every species to %d %s fragments (counts were %s)",
                    low,
                    split,
                    counts,
                )
                for sp in counts:
                    # round-robin order: the first `low` are the best spread over CDS
                    drawn[(split, sp)] = drawn[(split, sp)][:low]

    records = []
    for (split, species), frags in drawn.items():
        for cds, off in frags:
            records.append(
                {
                    "id": f"{cds.sample}:{cds.cds_id}:{off}",
                    "sequence": cds.seq[off : off + length],
                    "split": split,
                    "label": species,
                    "species": species,
                    "sample": cds.sample,
                    "cds_id": cds.cds_id,
                    "offset": off,
                    "cds_length": len(cds.seq),
                    "source": cds.source,
                    "source_line": cds.line,
                    "n_iupac_to_n": 0,
                    "n_u_to_t": 0,
                }
            )
    df = pd.DataFrame.from_records(records)
    if df.empty:
        raise InputFormatError(
            f"species_fragments: no fragment of {length} nt could be cut from the inputs "
            f"{sorted({str(p) for p in inputs})}"
        )
    df["split"] = pd.Categorical(df["split"], SPLITS)
    df = df.sort_values(["split", "label", "sample", "cds_id", "offset"], kind="stable")
    df = df.reset_index(drop=True)
    df["split"] = df["split"].astype(str)
    _check_class_splits(df)

    extra: dict[tuple[str, str], dict] = {}
    for (split, species), frags in drawn.items():
        pool = pools[species][split]
        extra[(split, species)] = {
            "n_requested": requested[split],
            "n_cds_available": len(pool),
            "n_cds_used": len({id(c) for c, _ in frags}),
        }
    params = {
        "task": "species_fragments",
        "length": length,
        "n_train": n_train,
        "n_validation": n_validation,
        "n_test": n_test,
        "seed": seed,
        "max_per_cds": max_per_cds,
        "balance": balance,
        "samples": [{k: str(s[k]) for k in keys} for s in samples],
    }
    return _write_task(out_dir, df, "classification", params, inputs, extra)


# ----------------------------------------------------------------------------- tf binding


def parse_window_name(name: str) -> tuple[str, int, int] | None:
    """chrom, start, end from names like chr22_10510500_10510799 or chr22:100-400."""
    m = _WINDOW_NAME.match(name)
    if not m:
        return None
    return m["chrom"], int(m["start"]), int(m["end"])


def group_windows(
    chrom: Sequence[str], start: np.ndarray, end: np.ndarray, distance: int = 0
) -> np.ndarray:
    """Group ids for closed intervals [start, end]: windows on one chromosome that overlap,
    abut, or are at most `distance` bp apart end up in one group (single-linkage over the
    position-sorted windows). Returns an int array aligned with the input."""
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    chrom_arr = np.asarray(chrom, dtype=object)
    order = sorted(range(len(start)), key=lambda i: (chrom_arr[i], start[i]))
    groups = np.empty(len(start), dtype=np.int64)
    gid, cur_chrom, cur_end = -1, None, 0
    for i in order:
        if chrom_arr[i] != cur_chrom or start[i] > cur_end + 1 + distance:
            gid += 1
            cur_chrom, cur_end = chrom_arr[i], end[i]
        else:
            cur_end = max(cur_end, end[i])
        groups[i] = gid
    return groups


def _hash_split(keys: Sequence[str], fractions: tuple[float, float, float], seed: int) -> list:
    f_train, f_val, _ = fractions
    out = []
    for k in keys:
        u = _stable_u64(f"{seed}:{k}") / 2**64
        out.append("train" if u < f_train else "validation" if u < f_train + f_val else "test")
    return out


def _format_targets(mat_rows: Iterable[np.ndarray]) -> list[str]:
    # str(float) is the shortest text that reads back to the same float64
    return [",".join(map(str, r.tolist())) for r in mat_rows]


def _read_dnallm(sequences: Path, scores: Path, counts: _Norm) -> tuple[pd.DataFrame, list]:
    """The DNA-LLM format: sequences TSV (sequence, window_name) + scores TSV whose column j
    (header = window name) holds the per-base scores of window j."""
    seq_df = _read_table(sequences, ["sequence", "window_name"], "window sequences")
    names = seq_df["window_name"].str.strip().tolist()
    dup = pd.Series(names)[pd.Series(names).duplicated()]
    if len(dup):
        raise InputFormatError(f"{sequences}: window name {dup.iloc[0]!r} occurs twice")
    try:
        with open_text(scores) as fh:
            sc = pd.read_csv(fh, sep="\t", dtype=np.float64, engine="c")
    except ValueError as err:
        raise InputFormatError(f"{scores}: scores must be numbers ({err})") from err
    score_names = [str(c).strip() for c in sc.columns]
    sc.columns = score_names
    if len(set(score_names)) != len(score_names):
        first = pd.Series(score_names)[pd.Series(score_names).duplicated()].iloc[0]
        raise InputFormatError(f"{scores}: window name {first!r} occurs twice in the header")
    if score_names != names:
        missing = [n for n in names if n not in set(score_names)]
        extra = [n for n in score_names if n not in set(names)]
        if missing or extra:
            first = next(
                (j for j, (a, b) in enumerate(zip(names, score_names, strict=False)) if a != b),
                min(len(names), len(score_names)),
            )
            a = names[first] if first < len(names) else "<none>"
            b = score_names[first] if first < len(score_names) else "<none>"
            raise InputFormatError(
                f"window names differ between {sequences} and {scores}: first mismatch at window "
                f"{first + 1}: {a!r} (sequences, line {first + 2}) vs {b!r} (scores column "
                f"{first + 1}); {len(missing)} name(s) only in the sequences file, {len(extra)} "
                "only in the scores file"
            )
        log.info("%s: score columns are in a different order; matched by window name", scores)
    mat = sc[names].to_numpy(dtype=np.float64).T  # (W, L) one row per window
    nan = np.isnan(mat)
    # a shorter column is padded with NaN at the bottom: its length is up to the last number
    n_scores = np.where(nan.all(1), 0, mat.shape[1] - np.argmax(~nan[:, ::-1], axis=1))
    seqs = []
    rows = []
    for j, (raw, name) in enumerate(zip(seq_df["sequence"].tolist(), names, strict=True)):
        where = f"{sequences}:{j + 2} (window {name})"
        seq, n_iupac, n_u = normalize_sequence(raw, where, counts)
        if nan[j, : n_scores[j]].any():
            pos = int(np.argmax(nan[j, : n_scores[j]])) + 1
            raise InputFormatError(
                f"{scores}: window {name!r} (column {j + 1}) has a missing/NaN score at base "
                f"{pos} (line {pos + 1}); every base needs a number"
            )
        if n_scores[j] != len(seq):
            raise InputFormatError(
                f"window {name!r}: {n_scores[j]} score(s) in {scores} (column {j + 1}) but its "
                f"sequence ({where}) has {len(seq)} bases; they must be equal"
            )
        seqs.append(seq)
        rows.append(
            {
                "id": name,
                "sequence": seq,
                "source": str(sequences),
                "source_line": j + 2,
                "scores_source": str(scores),
                "scores_column": j + 1,
                "n_iupac_to_n": n_iupac,
                "n_u_to_t": n_u,
            }
        )
    df = pd.DataFrame.from_records(rows)
    targets = [mat[j, : n_scores[j]] for j in range(len(names))]
    coords = []
    for j, name in enumerate(names):
        c = parse_window_name(name)
        if c is None:
            raise InputFormatError(
                f"{sequences}:{j + 2}: window name {name!r} does not give a position "
                "(expected chrom_start_end, e.g. chr22_10510500_10510799); positions are "
                "needed to keep overlapping windows in one split"
            )
        coords.append(c)
    df["chrom"] = [c[0] for c in coords]
    df["start"] = [c[1] for c in coords]
    df["end"] = [c[2] for c in coords]  # as in the name (inclusive: end - start + 1 = length)
    return df, targets


def _parse_targets(text: str, where: str) -> np.ndarray:
    try:
        arr = np.array([float(x) for x in text.split(",")], dtype=np.float64)
    except ValueError as err:
        raise InputFormatError(f"{where}: targets must be comma-separated numbers ({err})") from err
    if np.isnan(arr).any():
        pos = int(np.argmax(np.isnan(arr))) + 1
        raise InputFormatError(f"{where}: NaN target at base {pos}; every base needs a number")
    return arr


def _read_pb_tsv(path: Path, counts: _Norm) -> tuple[pd.DataFrame, list, bool]:
    """Generic per-base TSV/CSV: sequence, targets (+ optional id, chrom, start, end with BED
    conventions: 0-based start, end exclusive, default end = start + length)."""
    df = _read_table(path, ["sequence", "targets"], "per-base targets")
    has_pos = "chrom" in df.columns and "start" in df.columns
    rows, targets = [], []
    for i, r in enumerate(df.to_dict("records")):
        where = f"{path}:{i + 2}"
        seq, n_iupac, n_u = normalize_sequence(r["sequence"], where, counts)
        t = _parse_targets(str(r["targets"]), where)
        if len(t) != len(seq):
            raise InputFormatError(
                f"{where}: {len(t)} target(s) for a sequence of {len(seq)} bases; need one per base"
            )
        rec = {k: v for k, v in r.items() if k not in ("sequence", "targets")}
        rec.update(
            id=str(r.get("id") or f"row{i + 2}"),
            sequence=seq,
            source=str(path),
            source_line=i + 2,
            n_iupac_to_n=n_iupac,
            n_u_to_t=n_u,
        )
        if has_pos:
            try:
                start = int(r["start"])
                end = int(r["end"]) if str(r.get("end", "")).strip() else start + len(seq)
            except ValueError as err:
                raise InputFormatError(f"{where}: start/end must be integers ({err})") from err
            rec.update(chrom=str(r["chrom"]), start=start, end=end)
        rows.append(rec)
        targets.append(t)
    return pd.DataFrame.from_records(rows), targets, has_pos


def _read_pb_bed(bed: Path, genome: Path, scores: Path, counts: _Norm) -> tuple[pd.DataFrame, list]:
    """BED (chrom, start, end, name[, score, strand]) + genome FASTA (pyfaidx) + scores TSV
    (name<TAB>comma-separated scores, in the 5'->3' order of the reported sequence, i.e.
    already reversed for '-' strand windows, whose sequence is reverse-complemented)."""
    import pyfaidx

    _check_exists([genome])
    score_by_name: dict[str, tuple[str, int]] = {}
    with open_text(scores) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise InputFormatError(
                    f"{scores}:{lineno}: expected 2 TAB-separated fields (name, comma-separated "
                    f"scores), found {len(parts)}"
                )
            if lineno == 1 and parts[0].strip().lower() == "name":
                continue
            if parts[0] in score_by_name:
                raise InputFormatError(f"{scores}:{lineno}: name {parts[0]!r} occurs twice")
            score_by_name[parts[0]] = (parts[1], lineno)
    try:
        fa = pyfaidx.Fasta(str(genome), as_raw=True, rebuild=False)
    except Exception as err:  # pyfaidx raises several types for unreadable/unindexable files
        raise InputFormatError(
            f"{genome}: cannot open the genome FASTA with pyfaidx ({err}); use an uncompressed "
            "or bgzip-compressed FASTA in a writable folder (for its .fai index)"
        ) from err
    rows, targets = [], []
    comp = str.maketrans("ACGTN", "TGCAN")
    with fa, open_text(bed) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            f = line.rstrip("\r\n").split("\t")
            where = f"{bed}:{lineno}"
            if len(f) < 4:
                raise InputFormatError(
                    f"{where}: BED needs at least 4 columns (chrom, start, end, name), "
                    f"found {len(f)}"
                )
            chrom, name = f[0], f[3]
            try:
                start, end = int(f[1]), int(f[2])
            except ValueError as err:
                raise InputFormatError(f"{where}: start/end must be integers") from err
            if chrom not in fa:
                raise InputFormatError(f"{where}: chromosome {chrom!r} not in {genome}")
            if not (0 <= start < end <= len(fa[chrom])):
                raise InputFormatError(
                    f"{where}: interval {chrom}:{start}-{end} outside the chromosome "
                    f"(length {len(fa[chrom])})"
                )
            seq, n_iupac, n_u = normalize_sequence(fa[chrom][start:end], where, counts)
            strand = f[5] if len(f) > 5 else "+"
            if strand == "-":
                seq = seq.translate(comp)[::-1]
            if name not in score_by_name:
                raise InputFormatError(f"{where}: window {name!r} has no scores in {scores}")
            text, sline = score_by_name[name]
            t = _parse_targets(text, f"{scores}:{sline} (window {name})")
            if len(t) != len(seq):
                raise InputFormatError(
                    f"{scores}:{sline}: window {name!r} has {len(t)} score(s) but its interval "
                    f"({where}) is {len(seq)} bases; they must be equal"
                )
            rows.append(
                {
                    "id": name,
                    "sequence": seq,
                    "chrom": chrom,
                    "start": start,
                    "end": end,
                    "strand": strand,
                    "source": str(bed),
                    "source_line": lineno,
                    "scores_source": str(scores),
                    "scores_line": sline,
                    "n_iupac_to_n": n_iupac,
                    "n_u_to_t": n_u,
                }
            )
            targets.append(t)
    if not rows:
        raise InputFormatError(f"{bed}: no intervals")
    return pd.DataFrame.from_records(rows), targets


def build_tf_binding(
    out_dir: str | os.PathLike,
    sequences: str | os.PathLike,
    scores: str | os.PathLike | None = None,
    fmt: str = "dnallm",
    genome: str | os.PathLike | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    group_distance: int = 0,
) -> pd.DataFrame:
    """A per-base regression task (e.g. TF binding scores along each window).

    Formats (`fmt`):
      - ``dnallm``: `sequences` = TSV with header ``sequence<TAB>window_name``; `scores` = TSV
        with one column per window (header = window names, same set as `sequences`), one row
        per base. Window names give positions: ``chrom_start_end`` (end inclusive).
      - ``tsv``: `sequences` = CSV/TSV with ``sequence`` and ``targets`` (comma-separated, one
        per base), optional ``id``, ``chrom``, ``start``, ``end`` (BED conventions). Without
        chrom/start rows are grouped by identical sequence only (a warning says so).
      - ``bed``: `sequences` = BED with a name column (strand in column 6 optional),
        `genome` = FASTA read with pyfaidx, `scores` = TSV ``name<TAB>scores``.

    The split groups windows that overlap, abut or lie within `group_distance` bp and assigns
    each group by a seeded hash of its first window's position, with `fractions` =
    (train, validation, test); validation is for early stopping, test is used once."""
    fr = _check_fractions(fractions)
    if fmt not in ("dnallm", "tsv", "bed"):
        raise ConfigError(f"tf_binding: unknown format {fmt!r}; use dnallm, tsv or bed")
    if group_distance < 0:
        raise ConfigError(f"tf_binding: group_distance must be >= 0, got {group_distance}")
    seq_path = Path(sequences)
    inputs = [seq_path]
    counts = _Norm()
    has_pos = True
    if fmt == "dnallm":
        if scores is None:
            raise ConfigError("tf_binding: the dnallm format needs a scores file")
        inputs.append(Path(scores))
        _check_exists(inputs)
        df, targets = _read_dnallm(seq_path, Path(scores), counts)
        closed_end = df["end"].to_numpy()
    elif fmt == "tsv":
        _check_exists(inputs)
        df, targets, has_pos = _read_pb_tsv(seq_path, counts)
        closed_end = df["end"].to_numpy() - 1 if has_pos else None
    else:
        if scores is None or genome is None:
            raise ConfigError("tf_binding: the bed format needs a scores file and a genome FASTA")
        inputs += [Path(scores), Path(genome)]
        _check_exists(inputs)
        df, targets = _read_pb_bed(seq_path, Path(genome), Path(scores), counts)
        closed_end = df["end"].to_numpy() - 1
    _log_norm(counts, str(seq_path))

    if has_pos:
        groups = group_windows(df["chrom"].tolist(), df["start"].to_numpy(), closed_end,
                               group_distance)  # fmt: skip
        first = df.groupby(groups, sort=True).agg(chrom=("chrom", "first"), start=("start", "min"))
        gkeys = [f"{c}:{s}" for c, s in zip(first["chrom"], first["start"], strict=True)]
        ends = pd.Series(closed_end).groupby(groups, sort=True).max().to_numpy()
        glabel = [f"{k}-{e}" for k, e in zip(gkeys, ends, strict=True)]
    else:
        log.warning(
            "%s: no chrom/start columns, so windows cannot be grouped by position; rows with "
            "identical sequences share a split, but overlapping windows may straddle splits",
            seq_path,
        )
        uniq, groups = np.unique(df["sequence"].to_numpy(), return_inverse=True)
        gkeys = list(uniq)
        glabel = [f"seq{g}" for g in range(len(uniq))]
    gsplit = np.array(_hash_split(gkeys, fr, seed), dtype=object)
    df["split"] = gsplit[groups]
    df["group"] = np.array(glabel, dtype=object)[groups]
    df["targets"] = _format_targets(tqdm(targets, desc="targets", disable=progress_disabled()))
    df["n_nonzero_targets"] = [int(np.count_nonzero(t)) for t in targets]
    df["target_sum"] = [float(t.sum()) for t in targets]
    for split in SPLITS:
        if fr[SPLITS.index(split)] > 0 and not (df["split"] == split).any():
            log.warning("tf_binding: the %s split is empty (too few position groups)", split)
    params = {
        "task": "tf_binding",
        "format": fmt,
        "fractions": list(fr),
        "seed": seed,
        "group_distance": group_distance,
        "grouped_by_position": has_pos,
        "n_groups": len(gkeys),
    }
    return _write_task(out_dir, df, "per_base_regression", params, inputs)


# ----------------------------------------------------------------------------- user tables


def _rows_from_table(path: Path, kind: str, default_split: str, counts: _Norm) -> list[dict]:
    df = _read_table(path, ["sequence", "label"], f"sequence {kind}")
    rows = []
    for i, r in enumerate(df.to_dict("records")):
        where = f"{path}:{i + 2}"
        seq, n_iupac, n_u = normalize_sequence(r["sequence"], where, counts)
        label = str(r["label"]).strip()
        if not label:
            raise InputFormatError(f"{where}: empty label")
        if kind == "regression":
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


def _rows_from_fasta(label: str, path: Path, split: str, counts: _Norm) -> list[dict]:
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
    from scipy.sparse import coo_matrix
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
) -> pd.DataFrame:
    """Whole-sequence classification or regression from user files.

    Inputs: `table` (CSV/TSV with ``sequence`` and ``label``; optional ``id`` and ``split``
    (train/validation/test); other columns are kept as provenance) and/or `fasta_by_class`
    ({class name: FASTA path(s)}, classification only). A provided test set (`test_table`,
    `test_fasta_by_class`, or ``split=test`` rows) is used as is; otherwise test is carved
    with fraction fractions[2]. Validation (unless given) is carved from train in the ratio
    fractions[1] : fractions[0]. Carving is seeded, stratified by label (regression: label
    deciles) and keeps identical sequences in one split. Identical sequences in a provided
    test and in train are reported as a warning (possible leakage)."""
    if kind not in ("classification", "regression"):
        raise ConfigError(f"unknown task kind {kind!r}; use classification or regression")
    fr = _check_fractions(fractions)
    if table is None and not fasta_by_class:
        raise ConfigError("sequence task: give a table (sequence,label) or FASTA files per class")
    if kind == "regression" and (fasta_by_class or test_fasta_by_class):
        raise ConfigError("sequence regression takes a table with numeric labels, not FASTA")
    counts = _Norm()
    rows: list[dict] = []
    inputs: list[Path] = []
    for path, split in ((table, ""), (test_table, "test")):
        if path is not None:
            inputs.append(Path(path))
            _check_exists([Path(path)])
            rows += _rows_from_table(Path(path), kind, split, counts)
    for mapping, split in ((fasta_by_class, ""), (test_fasta_by_class, "test")):
        for label, paths in (mapping or {}).items():
            for p in _as_paths(paths):
                inputs.append(p)
                _check_exists([p])
                rows += _rows_from_fasta(str(label), p, split, counts)
    _log_norm(counts, "sequence task")
    df = pd.DataFrame.from_records(rows)

    groups, by_position = _leakage_groups(df)
    if kind == "classification":
        strata = df["label"].astype(str).to_numpy()
    else:
        strata = _regression_strata(df["label"].astype(float).to_numpy())
    df["split"] = _assign_splits(df["preset"].to_numpy(), strata, groups, fr, seed)
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
    if kind == "classification":
        df["label"] = df["label"].astype(str)
        _check_class_splits(df)
    params = {
        "task": f"sequence_{kind}",
        "fractions": list(fr),
        "seed": seed,
        "table": str(table) if table else None,
        "fasta_by_class": {
            k: [str(p) for p in _as_paths(v)] for k, v in (fasta_by_class or {}).items()
        },
        "test_table": str(test_table) if test_table else None,
        "test_fasta_by_class": {
            k: [str(p) for p in _as_paths(v)] for k, v in (test_fasta_by_class or {}).items()
        },
    }
    return _write_task(out_dir, df, kind, params, inputs)


# ----------------------------------------------------------------------------- loading


def load_task(path: str | os.PathLike, targets_as_arrays: bool = False) -> pd.DataFrame:
    """Read a task folder (or its data.tsv). Sequences, ids, splits and class labels are
    strings; regression labels floats; with `targets_as_arrays` the per-base ``targets``
    column holds float32 arrays instead of comma-separated text. The task kind is in
    ``df.attrs['kind']`` (from task.json, else inferred)."""
    path = Path(path)
    data = path / "data.tsv" if path.is_dir() else path
    meta_path = data.parent / "task.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    if not data.is_file():
        raise InputFormatError(f"{data}: task table not found")
    header = pd.read_csv(data, sep="\t", nrows=0).columns
    kind = meta.get("kind") or ("per_base_regression" if "targets" in header else "classification")
    str_cols = {c: str for c in ("id", "sequence", "split", "targets", "group") if c in header}
    if kind == "classification" and "label" in header:
        str_cols["label"] = str
    df = pd.read_csv(data, sep="\t", dtype=str_cols, keep_default_na=False)
    if kind == "regression":
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


# ----------------------------------------------------------------------------- CLI


def _parse_class_files(items: Sequence[str] | None, opt: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items or []:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise ConfigError(f"{opt} expects CLASS=FASTA, got {item!r}")
        out.setdefault(label, []).append(path)
    return out


def _fractions_arg(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("give three comma-separated fractions, e.g. 0.8,0.1,0.1")
    return tuple(float(p) for p in parts)  # type: ignore[return-value]


def register(subparsers) -> None:
    """Add ``dnalm task species-fragments | tf-binding | sequence``."""
    p = subparsers.add_parser("task", help="build a task dataset (data.tsv + summary.tsv)")
    sub = p.add_subparsers(dest="task_command", metavar="TASK")
    sub.required = True

    sp = sub.add_parser("species-fragments", help="species classification from CDS fragments")
    sp.add_argument("sheet", help="sample sheet (rows with species_task true are used)")
    sp.add_argument("--splits-dir", default="results/splits", help="folder of {sample}/*.fa.gz")
    sp.add_argument("--out", required=True, help="output folder")
    sp.add_argument("--length", type=int, default=60)
    sp.add_argument("--n-train", type=int, default=1000)
    sp.add_argument("--n-validation", type=int, default=0)
    sp.add_argument("--n-test", type=int, default=1000)
    sp.add_argument("--max-per-cds", type=int, default=DEFAULT_MAX_PER_CDS)
    sp.add_argument("--balance", action="store_true", help="downsample species to the smallest")
    sp.add_argument("--seed", type=int, default=0)

    def run_species(args) -> int:
        from dnalm.samples import load_sample_sheet

        base = Path(args.splits_dir)
        samples = [
            {
                "sample": s.sample,
                "species": s.species,
                "validation_fasta": base / s.sample / "validation.fa.gz",
                "test_fasta": base / s.sample / "test.fa.gz",
            }
            for s in load_sample_sheet(args.sheet, check_local_files=False)
            if s.species_task
        ]
        summary = build_species_fragments(
            samples, args.out, length=args.length, n_train=args.n_train,
            n_test=args.n_test, n_validation=args.n_validation, seed=args.seed,
            max_per_cds=args.max_per_cds, balance=args.balance,
        )  # fmt: skip
        print(summary.to_csv(sep="\t", index=False), end="")
        return 0

    sp.set_defaults(func=run_species)

    tf = sub.add_parser("tf-binding", help="per-base regression (TF binding scores)")
    tf.add_argument("sequences", help="sequences TSV (dnallm, tsv) or BED (bed)")
    tf.add_argument("--scores", help="scores file (dnallm, bed)")
    tf.add_argument("--format", dest="fmt", choices=("dnallm", "tsv", "bed"), default="dnallm")
    tf.add_argument("--genome", help="genome FASTA (bed format)")
    tf.add_argument("--out", required=True)
    tf.add_argument("--fractions", type=_fractions_arg, default=DEFAULT_FRACTIONS)
    tf.add_argument("--group-distance", type=int, default=0)
    tf.add_argument("--seed", type=int, default=0)

    def run_tf(args) -> int:
        summary = build_tf_binding(
            args.out, args.sequences, scores=args.scores, fmt=args.fmt, genome=args.genome,
            fractions=args.fractions, seed=args.seed, group_distance=args.group_distance,
        )  # fmt: skip
        print(summary.to_csv(sep="\t", index=False), end="")
        return 0

    tf.set_defaults(func=run_tf)

    sq = sub.add_parser("sequence", help="sequence classification/regression from CSV or FASTA")
    sq.add_argument("--kind", choices=("classification", "regression"), default="classification")
    sq.add_argument("--table", help="CSV/TSV with sequence,label")
    sq.add_argument("--fasta", action="append", metavar="CLASS=FASTA", help="repeatable")
    sq.add_argument("--test-table")
    sq.add_argument("--test-fasta", action="append", metavar="CLASS=FASTA")
    sq.add_argument("--out", required=True)
    sq.add_argument("--fractions", type=_fractions_arg, default=DEFAULT_FRACTIONS)
    sq.add_argument("--seed", type=int, default=0)

    def run_seq(args) -> int:
        summary = build_sequence_task(
            args.out, kind=args.kind, table=args.table,
            fasta_by_class=_parse_class_files(args.fasta, "--fasta"),
            test_table=args.test_table,
            test_fasta_by_class=_parse_class_files(args.test_fasta, "--test-fasta"),
            fractions=args.fractions, seed=args.seed,
        )  # fmt: skip
        print(summary.to_csv(sep="\t", index=False), end="")
        return 0

    sq.set_defaults(func=run_seq)


__all__ = [
    "build_sequence_task",
    "build_species_fragments",
    "build_tf_binding",
    "group_windows",
    "load_task",
    "normalize_sequence",
    "parse_window_name",
    "register",
    "summarize_task",
    "targets_matrix",
]
