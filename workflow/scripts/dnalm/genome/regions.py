"""Intervals on a genome: the features table, GPN-style target regions (promoters or
upstream regions, genes, exons, CDS, UTRs, intergenic), interval unions and overlap tests.

Coordinates are 0-based, half-open ``[start, end)`` throughout. Interval sets are NumPy
arrays of starts and ends; a *union* is sorted, disjoint and non-abutting.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dnalm.core.errors import InputFormatError
from dnalm.core.io import open_text

FEATURE_COLUMNS = ["contig", "start", "end", "strand", "type", "name"]
FEATURE_TYPES = ("gene", "CDS", "exon", "five_prime_UTR", "three_prime_UTR")


def read_features(path: str | os.PathLike) -> pd.DataFrame:
    """The features table (TSV: contig start end strand type name; 0-based half-open)."""
    with open_text(path) as fh:
        df = pd.read_csv(fh, sep="\t", dtype={"contig": str, "name": str}, keep_default_na=False)
    missing = [c for c in FEATURE_COLUMNS if c not in df.columns]
    if missing:
        raise InputFormatError(
            f"{path}: features table lacks column(s) {missing} (header must be "
            f"{' '.join(FEATURE_COLUMNS)})"
        )
    for col in ("start", "end"):
        if not pd.api.types.is_integer_dtype(df[col]):
            raise InputFormatError(f"{path}: column {col!r} must hold integers")
    bad = df[(df["start"] < 0) | (df["end"] <= df["start"]) | ~df["strand"].isin(["+", "-"])]
    if len(bad):
        row = bad.index[0]
        raise InputFormatError(
            f"{path}:{row + 2}: bad feature (start {df.at[row, 'start']}, end "
            f"{df.at[row, 'end']}, strand {df.at[row, 'strand']!r}): need 0 <= start < end "
            "and strand + or -"
        )
    return df


def union(starts: Sequence[int], ends: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The union of intervals as sorted, disjoint, non-abutting intervals."""
    s = np.asarray(starts, dtype=np.int64)
    e = np.asarray(ends, dtype=np.int64)
    keep = e > s
    s, e = s[keep], e[keep]
    if not s.size:
        return s, e
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    reach = np.maximum.accumulate(e)
    new = np.ones(s.size, dtype=bool)
    new[1:] = s[1:] > reach[:-1]  # a gap before this interval starts a new run
    idx = np.flatnonzero(new)
    return s[idx], np.maximum.reduceat(e, idx)


def overlaps_union(
    starts: np.ndarray, ends: np.ndarray, u_starts: np.ndarray, u_ends: np.ndarray
) -> np.ndarray:
    """For each query [start, end): does it overlap the union (u_starts, u_ends)?"""
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    if not u_starts.size or not starts.size:
        return np.zeros(starts.size, dtype=bool)
    i = np.searchsorted(u_ends, starts, side="right")  # first union piece ending after start
    hit = i < u_starts.size
    hit[hit] &= u_starts[i[hit]] < ends[hit]
    return hit


def complement(
    u_starts: np.ndarray, u_ends: np.ndarray, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """[0, length) minus a union."""
    s = np.concatenate([[0], u_ends]).astype(np.int64)
    e = np.concatenate([u_starts, [length]]).astype(np.int64)
    keep = e > s
    return s[keep], e[keep]


def target_regions(
    features: pd.DataFrame, contig: str, length: int, wanted: Sequence[str], upstream: int
) -> tuple[np.ndarray, np.ndarray]:
    """The union of the wanted regions of one contig of `length` bp (GPN's target intervals):

    * ``promoter`` / ``upstream``: `upstream` bp before each gene's start, strand-aware (the
      bases before `start` on +, after `end` on -), clipped at the contig ends;
    * ``gene``, ``exon``, ``CDS``, ``five_prime_UTR``, ``three_prime_UTR``: those rows;
    * ``intergenic``: the contig minus every gene.
    """
    rows = features[features["contig"] == contig]
    genes = rows[rows["type"] == "gene"]
    parts_s: list[np.ndarray] = []
    parts_e: list[np.ndarray] = []
    for feat in wanted:
        if feat in ("promoter", "upstream"):
            gs, ge = genes["start"].to_numpy(np.int64), genes["end"].to_numpy(np.int64)
            plus = genes["strand"].to_numpy() == "+"
            s = np.where(plus, gs - upstream, ge)
            e = np.where(plus, gs, ge + upstream)
            parts_s.append(np.clip(s, 0, length))
            parts_e.append(np.clip(e, 0, length))
        elif feat == "intergenic":
            gs, ge = union(genes["start"], np.minimum(genes["end"], length))
            s, e = complement(gs, ge, length)
            parts_s.append(s)
            parts_e.append(e)
        else:
            sub = rows[rows["type"] == feat]
            parts_s.append(sub["start"].to_numpy(np.int64))
            parts_e.append(np.minimum(sub["end"].to_numpy(np.int64), length))
    if not parts_s:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return union(np.concatenate(parts_s), np.concatenate(parts_e))


def read_bed(path: str | os.PathLike) -> pd.DataFrame:
    """A BED file as (id, split, chrom, start, end); id = name column or chrom:start-end.
    Header, track and browser lines and comments are skipped."""
    rows = []
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            f = line.rstrip("\n").split("\t")
            if len(f) < 3:
                raise InputFormatError(f"{path}:{lineno}: BED needs chrom, start, end")
            try:
                start, end = int(f[1]), int(f[2])
            except ValueError:
                raise InputFormatError(
                    f"{path}:{lineno}: BED start/end must be integers, got {f[1]!r}, {f[2]!r}"
                ) from None
            if start < 0 or end <= start:
                raise InputFormatError(f"{path}:{lineno}: need 0 <= start < end")
            name = f[3] if len(f) > 3 and f[3] else f"{f[0]}:{start}-{end}"
            rows.append((name, "all", f[0], start, end))
    return pd.DataFrame(rows, columns=["id", "split", "chrom", "start", "end"])
