"""Leakage-free train/validation/test assignment of coding sequences.

Each CDS goes to a split decided by a seeded hash of its upper-case sequence alone:
u = first 64 bits of sha1("{seed}:{SEQUENCE}") / 2**64, then train if u < f_train,
validation if u < f_train + f_validation, else test. The assignment is therefore
deterministic, independent of file order and of which other samples are in the run, and
identical sequences always land in the same split, within and across samples (a gene
duplicated in one genome, or conserved byte for byte between two genomes, can never sit in
train and test at once). Near-identical sequences (paralogs, orthologs with a few
substitutions) are not grouped by this rule; ``splits.method: mmseqs`` groups them into
MMseqs2 clusters first (dnalm.genome.homology) and applies the same rule to each cluster's
key (:func:`split_of_cluster`), so a whole cluster lands in one split.

Per sample the splits are written as FASTA (same headers as results/cds/{sample}.fa.gz) and
an assignment table; `gather_assignments` joins all samples and checks for leakage.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from dnalm.core.errors import ConfigError, DnalmError
from dnalm.core.io import atomic_write, read_fasta, write_fasta

SPLITS = ("train", "validation", "test")
log = logging.getLogger(__name__)


def check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    unknown = set(fractions) - set(SPLITS)
    if unknown:
        raise ConfigError(
            f"splits.fractions has unknown split(s) {sorted(unknown)}; use {', '.join(SPLITS)}"
        )
    fr = {s: float(fractions.get(s, 0.0)) for s in SPLITS}
    if any(v < 0 for v in fr.values()) or abs(sum(fr.values()) - 1.0) > 1e-6:
        raise ConfigError(f"splits.fractions must be non-negative and sum to 1, got {fr}")
    if fr["train"] <= 0 or fr["test"] <= 0:
        raise ConfigError(f"splits.fractions needs train > 0 and test > 0, got {fr}")
    return fr


def seq_digest(seq: str) -> str:
    return hashlib.sha1(seq.upper().encode("ascii")).hexdigest()


def _bucket(data: bytes, seed: int, fractions: Mapping[str, float]) -> str:
    h = hashlib.sha1(f"{seed}:".encode() + data).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    if u < fractions["train"]:
        return "train"
    if u < fractions["train"] + fractions["validation"]:
        return "validation"
    return "test"


def split_of(seq: str, seed: int, fractions: Mapping[str, float]) -> str:
    """The split of one sequence (see the module docstring for the rule)."""
    return _bucket(seq.upper().encode("ascii"), seed, fractions)


def split_of_cluster(key: str, seed: int, fractions: Mapping[str, float]) -> str:
    """The split of a homology cluster (``splits.method: mmseqs``): the same rule applied to
    "cluster:" + the cluster's key (:func:`dnalm.genome.homology.cluster_cds`)."""
    return _bucket(f"cluster:{key}".encode("ascii"), seed, fractions)


def split_sample(
    sample: str,
    cds_fasta: str | os.PathLike,
    out_fastas: Mapping[str, str | os.PathLike],
    assignment_tsv: str | os.PathLike,
    seed: int = 42,
    fractions: Mapping[str, float] | None = None,
    allow_empty: bool = False,
    clusters: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Assign every CDS of one sample to a split; write one FASTA per split and the table.
    A sample without CDS is an error unless `allow_empty` (then it warns). With `clusters`
    (cds_id -> cluster key, ``splits.method: mmseqs``) a CDS goes where its cluster goes
    (:func:`split_of_cluster`); the table's ``cluster`` column is the key (under the
    identity method, the sequence digest)."""
    fr = check_fractions(fractions or {"train": 0.8, "validation": 0.1, "test": 0.1})
    buckets: dict[str, list[tuple[str, str]]] = {s: [] for s in SPLITS}
    rows = []
    for header, seq, line in read_fasta(cds_fasta):
        cds_id = header.split()[0] if header.split() else ""
        digest = seq_digest(seq)
        if clusters is None:
            key, split = digest, split_of(seq, seed, fr)
        elif cds_id in clusters:
            key = clusters[cds_id]
            split = split_of_cluster(key, seed, fr)
        else:
            raise DnalmError(
                f"sample {sample}: {cds_fasta}:{line}: CDS {cds_id!r} is not in the clusters "
                "table (results/splits/clusters.tsv is older than the CDS?); rerun cluster_cds"
            )
        buckets[split].append((header, seq))
        rows.append((sample, cds_id, digest, len(seq), split, key))
    if not rows and allow_empty:
        log.warning("sample %s has no CDS; its splits are empty", sample)
    elif not rows:
        raise DnalmError(
            f"sample {sample}: {cds_fasta} holds no CDS to split; see results/cds/{sample}.tsv "
            "for why every CDS was dropped (or set cds.allow_empty: true)"
        )
    table = pd.DataFrame(
        rows, columns=["sample", "cds_id", "seq_sha1", "length", "split", "cluster"]
    )
    for split in SPLITS:
        with atomic_write(out_fastas[split]) as fh:
            write_fasta(fh, buckets[split])
    with atomic_write(assignment_tsv) as fh:
        table.to_csv(fh, sep="\t", index=False)
    counts = table["split"].value_counts().reindex(SPLITS, fill_value=0)
    log.info("%s: %s", sample, ", ".join(f"{s}={counts[s]}" for s in SPLITS))
    return table


def find_leaks(table: pd.DataFrame) -> pd.DataFrame:
    """Rows whose sequence, or cluster (column ``cluster``, when there), occurs in more than
    one split (must be empty)."""
    bad = pd.Series(False, index=table.index)
    for col in ("seq_sha1", "cluster"):
        if col in table.columns:
            n_splits = table.groupby(col)["split"].nunique()
            bad |= table[col].isin(n_splits[n_splits > 1].index)
    return table[bad]


def gather_assignments(
    tables: list[str | os.PathLike], out_tsv: str | os.PathLike, summary_tsv: str | os.PathLike
) -> pd.DataFrame:
    """Concatenate the per-sample assignments, prove there is no leakage, write a summary."""
    table = pd.concat([pd.read_csv(t, sep="\t") for t in tables], ignore_index=True)
    leaks = find_leaks(table)
    if len(leaks):
        raise DnalmError(
            f"{len(leaks)} CDS share a sequence or cluster with a CDS of another split (first: "
            f"{leaks.iloc[0]['sample']}/{leaks.iloc[0]['cds_id']}); the split tables are "
            "inconsistent - were they made with different seeds or fractions? Rerun the splits."
        )
    summary = (
        table.groupby(["sample", "split"])
        .agg(
            n_cds=("cds_id", "size"),
            nucleotides=("length", "sum"),
            unique_sequences=("seq_sha1", "nunique"),
        )
        .reset_index()
    )
    dup = table.groupby("seq_sha1")["sample"].nunique()
    shared = int((dup > 1).sum())
    with atomic_write(out_tsv) as fh:
        table.to_csv(fh, sep="\t", index=False)
    with atomic_write(summary_tsv) as fh:
        summary.to_csv(fh, sep="\t", index=False)
    log.info(
        "%d CDS in %d samples; %d sequences occur in more than one sample (each kept in one split)",
        len(table),
        table["sample"].nunique(),
        shared,
    )
    return table


def split_paths(out_dir: str | os.PathLike) -> dict[str, Path]:
    return {s: Path(out_dir) / f"{s}.fa.gz" for s in SPLITS}
