"""The leakage audit of a benchmark suite: is a suite's test item (or a near copy of it) in
the sequences a model learnt from?

For every task of a suite and every *reference* — the pretraining corpus of each of our
models (the train split of the corpus the plan says it trained on), the corpus files an
external model's entry lists (``models.external.X.corpus``), and the suite's own train
split (train and validation rows of the task) — each test item gets two identity estimates:

- **k-mer containment** (always): the share C of the item's canonical k-mers (both strands,
  windows with a non-ACGT letter skipped) found anywhere in the reference, and the identity
  it implies, ``C ** (1/k)``: a copy with a share p of its bases changed at random keeps a
  k-mer with probability (1 - p)^k (the Mash containment estimate). The default k = 21
  (Mash's for genomes): a random 21-mer occurs in a 3 Gb genome (both strands) with
  probability ~6e9 / 4^21 = 0.14%, so containment does not grow with corpus size, while a
  200 bp item at 90% identity still keeps ~20 of its 180 k-mers. The estimate is only
  trustworthy near the top (>= ~80%): at 50% identity no 21-mer survives, so below that
  the k-mer estimate reads 0 whatever the truth.
- **MMseqs2 identity** (where the binary is installed; found as the homology splits find it,
  :func:`dnalm.genome.homology.mmseqs_binary`): every item searched against the reference
  with ``mmseqs easy-search`` (nucleotide, both strands, the leakage search's settings); an
  item's identity is the best hit's share of identical aligned bases times the share of the
  item the alignment covers (``fident * qcov``), so a 40 bp local match of a 200 bp item
  counts as at most 20%. Without the binary the MMseqs2 columns are empty and
  ``mmseqs_note`` says why; the audit never fails for it.

An item's identity is the larger of the two estimates. The summary reports per task and
reference the number of test items, the share at >= 50/80/95% identity, and for every
fine-tuning run and baseline that learnt from that reference (a model's runs for its corpus;
every run for the suite's train split) the suite's metric on all test items beside the
metric on the items below 50% identity, computed from the run's ``predictions.tsv``.

Torch-free (numpy, pandas; scikit-learn only to score).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnalm.core.artifacts import PREDICTIONS_TSV
from dnalm.core.errors import DnalmError, InputFormatError
from dnalm.core.io import atomic_write, read_fasta
from dnalm.core.metrics import classification_metrics
from dnalm.core.predictions import read_sequence
from dnalm.genome import homology
from dnalm.tasks.common import load_task

log = logging.getLogger(__name__)

#: default k of the containment search (see the module docstring)
DEFAULT_K = 21
#: the identity thresholds of the summary (those of the CDS leakage report)
THRESHOLDS = homology.THRESHOLDS
#: the identity under which an item counts as unseen
UNSEEN_BELOW = 0.5
#: the reference name of a suite's own train split
TRAIN_SPLIT = "suite train split"
#: positions per chunk of a corpus record (bounds memory on a chromosome)
CHUNK = 1 << 22

SUMMARY_COLUMNS = [
    "suite",
    "task",
    "reference",
    "reference_kind",
    "n_test",
    "k",
    *[f"kmer_ge_{round(t * 100)}" for t in THRESHOLDS],
    *[f"mmseqs_ge_{round(t * 100)}" for t in THRESHOLDS],
    "mmseqs_note",
    *[f"ge_{round(t * 100)}" for t in THRESHOLDS],
    "run",
    "metric",
    "metric_all",
    "n_below_50",
    "metric_below_50",
]
ITEM_COLUMNS = [
    "task",
    "reference",
    "id",
    "length",
    "kmer_containment",
    "kmer_identity",
    "mmseqs_identity",
    "identity",
]


def _code_table() -> np.ndarray:
    """byte -> 2-bit code of A, C, G, T (either case); 4 for every other byte."""
    table = np.full(256, 4, dtype=np.uint8)
    for i, letter in enumerate("ACGT"):
        table[ord(letter)] = table[ord(letter.lower())] = i
    return table


_CODE = _code_table()


# ----------------------------------------------------------------------------- k-mers


def check_k(k: Any, where: str = "suite audit k") -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 8 <= k <= 32:
        raise DnalmError(f"{where}: {k!r}; give an integer k from 8 to 32 (a k-mer is 2k bits)")
    return k


def canonical_kmers(seq: str, k: int) -> np.ndarray:
    """The canonical k-mers (the smaller 2-bit code of a k-mer and its reverse complement)
    of every window of `seq` that holds only A, C, G, T (any case), in order; (n,) uint64."""
    codes = _CODE[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]
    n = codes.size - k + 1
    if n <= 0:
        return np.empty(0, dtype=np.uint64)
    bad = np.concatenate([[0], np.cumsum(codes == 4)])
    valid = (bad[k:] - bad[:-k]) == 0  # (n,)
    a = np.minimum(codes, 3).astype(np.uint64)
    fwd = np.zeros(n, dtype=np.uint64)
    rev = np.zeros(n, dtype=np.uint64)
    for j in range(k):
        fwd = (fwd << np.uint64(2)) | a[j : j + n]
        rev |= (np.uint64(3) - a[j : j + n]) << np.uint64(2 * j)
    return np.minimum(fwd, rev)[valid]


def _chunks(seq: str, k: int) -> Iterator[str]:
    """`seq` in pieces of CHUNK positions overlapping by k - 1 (every window in one)."""
    step = CHUNK
    for start in range(0, max(len(seq) - k + 1, 1), step):
        yield seq[start : start + step + k - 1]


def containment(items: Sequence[str], corpus: Iterable[str], k: int) -> np.ndarray:
    """For each item, the share of its canonical k-mers found in the sequences `corpus`
    (streamed; each record cut into chunks); NaN for an item without a valid k-mer."""
    per_item = [np.unique(canonical_kmers(s, k)) for s in items]
    query = np.unique(np.concatenate(per_item)) if per_item else np.empty(0, np.uint64)
    found = np.zeros(query.size, dtype=bool)
    if query.size:
        for record in corpus:
            for piece in _chunks(record, k):
                kmers = canonical_kmers(piece, k)
                idx = np.searchsorted(query, kmers)
                idx[idx == query.size] = 0
                hit = query[idx] == kmers
                found[idx[hit]] = True
    out = np.full(len(items), math.nan)
    for i, kmers in enumerate(per_item):
        if kmers.size:
            out[i] = found[np.searchsorted(query, kmers)].mean()
    return out


def kmer_identity(share: np.ndarray, k: int) -> np.ndarray:
    """The identity a containment implies, ``share ** (1/k)`` (0 where nothing is shared,
    NaN where the item has no k-mer)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(share), math.nan, np.power(np.nan_to_num(share), 1.0 / k))


# ----------------------------------------------------------------------------- MMseqs2


def mmseqs_identity(
    items: Sequence[str], corpus: Iterable[str], threads: int = 1
) -> tuple[np.ndarray | None, str]:
    """(each item's best ``fident * qcov`` against `corpus` (0 without a hit), "") or
    (None, why) when MMseqs2 is not installed."""
    try:
        homology.mmseqs_binary()
    except DnalmError as err:
        return None, f"MMseqs2 column skipped: {err}"
    hits = homology.search_items(items, corpus, threads=threads)
    out = np.zeros(len(items))
    if len(hits):
        score = hits["fident"].astype(float) * hits["qcov"].astype(float)
        best = score.groupby(hits["q"].to_numpy()).max()
        out[best.index.to_numpy(int)] = np.minimum(best.to_numpy(float), 1.0)
    return out, ""


# ----------------------------------------------------------------------------- references


def fasta_sequences(paths: Sequence[str | os.PathLike]) -> Iterator[str]:
    """The sequences of the (gzipped) FASTA files `paths`, one record at a time."""
    for path in paths:
        if not Path(path).is_file():
            raise InputFormatError(f"{path}: corpus FASTA not found")
        for _, seq, _ in read_fasta(path):
            yield seq


def subset_metric(predictions: pd.DataFrame, ids: Iterable[str], metric: str) -> float:
    """`metric` (accuracy, mcc or macro_f1) of the rows of a predictions table whose id is
    in `ids`; NaN for no row."""
    rows = predictions[predictions["id"].isin(set(map(str, ids)))]
    if not len(rows):
        return math.nan
    got = classification_metrics(rows["label"].to_numpy(str), rows["predicted"].to_numpy(str))
    if metric not in got:
        raise DnalmError(f"metric {metric!r} is not a classification metric ({sorted(got)})")
    return float(got[metric])


def _shares(identity: np.ndarray) -> list[float]:
    if not identity.size:
        return [math.nan] * len(THRESHOLDS)
    return [float(np.mean(np.nan_to_num(identity) >= t)) for t in THRESHOLDS]


def audit_task(
    suite: str,
    task: str,
    data: str | os.PathLike,
    references: Mapping[str, Mapping[str, Any]],
    runs: Mapping[str, Mapping[str, Any]],
    metric: str,
    k: int = DEFAULT_K,
    mmseqs: bool = True,
    threads: int = 1,
) -> tuple[list[dict], list[dict]]:
    """(summary rows, per-item rows) of one task (see the module docstring).

    `references`: name -> {kind, files (FASTAs)}; the suite's train split is added here.
    `runs`: run folder name -> {dir, model (the reference it learnt from, None for a
    baseline)}."""
    df = load_task(data)
    test = df[df["split"] == "test"]
    if not len(test):
        raise InputFormatError(f"{data}: the task has no test rows to audit")
    items, ids = test["sequence"].tolist(), test["id"].astype(str).to_numpy()
    train = df[df["split"].isin(["train", "validation"])]["sequence"].tolist()
    refs: dict[str, tuple[str, Any]] = {TRAIN_SPLIT: ("suite train and validation rows", train)}
    for name, ref in references.items():
        refs[name] = (str(ref["kind"]), list(ref["files"]))
    preds = {run: read_sequence(Path(spec["dir"]) / PREDICTIONS_TSV) for run, spec in runs.items()}
    summary, per_item = [], []
    for name, (kind, source) in refs.items():

        def corpus(source=source, own=name == TRAIN_SPLIT):
            return iter(source) if own else fasta_sequences(source)

        log.info("task %s: %d test items against %s (%s)", task, len(items), name, kind)
        share = containment(items, corpus(), k)
        kid = kmer_identity(share, k)
        mid, note = mmseqs_identity(items, corpus(), threads) if mmseqs else (None, "off")
        identity = np.fmax(kid, mid) if mid is not None else kid
        for i, item_id in enumerate(ids):
            per_item.append(
                {
                    "task": task,
                    "reference": name,
                    "id": item_id,
                    "length": len(items[i]),
                    "kmer_containment": share[i],
                    "kmer_identity": kid[i],
                    "mmseqs_identity": math.nan if mid is None else mid[i],
                    "identity": identity[i],
                }
            )
        unseen = ids[~(np.nan_to_num(identity) >= UNSEEN_BELOW)]
        base = {
            "suite": suite,
            "task": task,
            "reference": name,
            "reference_kind": kind,
            "n_test": len(items),
            "k": k,
            "mmseqs_note": note,
            "n_below_50": len(unseen),
            "metric": metric,
        }
        thresholds = [round(t * 100) for t in THRESHOLDS]
        m_shares = _shares(mid) if mid is not None else [math.nan] * len(THRESHOLDS)
        for t, a, b, c in zip(thresholds, _shares(kid), m_shares, _shares(identity), strict=True):
            base.update({f"kmer_ge_{t}": a, f"mmseqs_ge_{t}": b, f"ge_{t}": c})
        mine = [r for r, s in runs.items() if name == TRAIN_SPLIT or s.get("model") == name]
        if not mine:
            summary.append({**base, "run": "", "metric_all": math.nan, "metric_below_50": math.nan})
        for run in mine:
            summary.append(
                {
                    **base,
                    "run": run,
                    "metric_all": subset_metric(preds[run], ids, metric),
                    "metric_below_50": subset_metric(preds[run], unseen, metric),
                }
            )
    return summary, per_item


def write_audit(
    summary_rows: list[dict],
    item_rows: list[dict],
    summary_tsv: str | os.PathLike,
    items_tsv: str | os.PathLike,
) -> pd.DataFrame:
    """Write the summary and the per-item table (each whole or not at all)."""
    summary = pd.DataFrame(summary_rows, columns=SUMMARY_COLUMNS)
    items = pd.DataFrame(item_rows, columns=ITEM_COLUMNS)
    with atomic_write(items_tsv) as fh:
        items.to_csv(fh, sep="\t", index=False, float_format="%.4f")
    with atomic_write(summary_tsv) as fh:
        summary.to_csv(fh, sep="\t", index=False, float_format="%.4f")
    return summary


def audit_suite(
    suite: str,
    tasks: Mapping[str, Mapping[str, Any]],
    references: Mapping[str, Mapping[str, Any]],
    summary_tsv: str | os.PathLike,
    items_tsv: str | os.PathLike,
    k: int = DEFAULT_K,
    threads: int = 1,
) -> pd.DataFrame:
    """Audit every task of a suite (`tasks`: task -> {data, metric, runs}) against every
    reference and write the two tables; returns the summary."""
    k = check_k(k)
    summary, items = [], []
    for task, spec in tasks.items():
        s, i = audit_task(
            suite, task, spec["data"], references, spec["runs"], spec["metric"], k, True, threads
        )
        summary += s
        items += i
    return write_audit(summary, items, summary_tsv, items_tsv)
