"""Metrics of a generated set against the natural held-out set of the same corpus.

All divergences are in bits (base 2):

* ``jsd_k{k}`` (k = 1..6): Jensen-Shannon divergence of the pooled k-mer spectra (every
  overlapping k-mer of every sequence of a set, counted by
  :func:`dnalm.core.alphabet.kmer_frequencies` on the set's sequences joined by N, so no
  k-mer spans two sequences). 0 for identical spectra, 1 for disjoint ones (ln 2 in nats).
* ``gc_ks``, ``gc3_ks``, ``length_ks``: two-sample Kolmogorov-Smirnov statistics
  (:func:`scipy.stats.ks_2samp`) of per-sequence GC, GC3 and length.
* ``codon_kl``: KL(natural || generated) of in-frame codon usage, both smoothed with one
  pseudocount per codon (so it is finite).
* ``valid_orf``: the fraction of valid ORFs (:func:`dnalm.generation.sequences.orf_check`;
  CDS corpora only) among the sequences that ended before the length cap (a stop codon, EOS,
  or a natural CDS shorter than the cap): a sequence cut at the cap has no end to judge, in
  a generated set and a natural one alike. NaN (not applicable) when every sequence was cut.
  ``capped``: the fraction cut at the cap.
* ``frechet``: the Fréchet distance between Gaussians fitted to the mean-pooled embeddings of
  the natural and the generated sequences under one reference model (the FID formula:
  |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2), :func:`scipy.linalg.sqrtm`).
* ``memorised``: the fraction of sequences of which at least 95% of the 31-mers occur in the
  training split (either strand; exact k-mer containment, :class:`KmerIndex`);
  ``containment_mean`` the mean of that fraction.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import linalg, stats
from scipy.spatial.distance import jensenshannon
from tqdm import tqdm

from dnalm.core.alphabet import N_CODE, encode_sequences, kmer_frequencies
from dnalm.core.io import atomic_write
from dnalm.core.log import progress_disabled
from dnalm.generation.sequences import clean, codons, gc3_fraction, gc_fraction, orf_check

log = logging.getLogger(__name__)

KS = (1, 2, 3, 4, 5, 6)
MEMO_K = 31
MEMO_THRESHOLD = 0.95
CODONS = [a + b + c for a in "ACGT" for b in "ACGT" for c in "ACGT"]


def spectrum(seqs: Sequence[str], k: int) -> np.ndarray:
    """Pooled k-mer frequencies of a set (4^k,), summing to 1 (zeros without any k-mer)."""
    joined = "N".join(clean(s) for s in seqs)
    return kmer_frequencies([joined], k)[0].astype(np.float64)


def jsd_bits(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0..1) of two distributions (NaN if one is empty)."""
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    return float(jensenshannon(p, q, base=2) ** 2)


def ks_stat(a: Sequence[float], b: Sequence[float]) -> float:
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if not len(a) or not len(b):
        return float("nan")
    return float(stats.ks_2samp(a, b).statistic)


def codon_usage(seqs: Sequence[str], pseudocount: float = 1.0) -> np.ndarray:
    """Smoothed in-frame codon frequencies (64,) in CODONS order."""
    index = {c: i for i, c in enumerate(CODONS)}
    counts = np.full(64, pseudocount, float)
    for s in seqs:
        for c in codons(s):
            if c in index:
                counts[index[c]] += 1
    return counts / counts.sum()


def kl_bits(p: np.ndarray, q: np.ndarray) -> float:
    return float(stats.entropy(p, q, base=2))


def frechet_distance(x: np.ndarray, y: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to the rows of `x` (N, D) and `y` (M, D).
    A singular product of covariances (fewer samples than dimensions) gets `eps` on the
    diagonal, as pytorch-fid does."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if len(x) < 2 or len(y) < 2:
        return float("nan")
    mu1, mu2 = x.mean(0), y.mean(0)
    s1 = np.atleast_2d(np.cov(x, rowvar=False))
    s2 = np.atleast_2d(np.cov(y, rowvar=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # singular: handled below
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(s1)) * eps
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(max(0.0, diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)))


def _kmer_codes(seq: str, k: int) -> np.ndarray:
    """Canonical (min of forward and reverse complement) 2-bit codes of the k-mers of `seq`
    that hold only A/C/G/T. # (M,) int64"""
    codes, _ = encode_sequences([clean(seq)])
    c = codes[0].astype(np.int64)
    n = len(c) - k + 1
    if n <= 0:
        return np.zeros(0, np.int64)
    fwd = np.zeros(n, np.int64)
    rev = np.zeros(n, np.int64)
    bad = np.zeros(n, bool)
    for j in range(k):
        part = c[j : j + n]
        bad |= part == N_CODE
        part = np.minimum(part, 3)
        fwd = fwd * 4 + part
        rev += (3 - part) << (2 * j)
    return np.minimum(fwd, rev)[~bad]


class KmerIndex:
    """The set of canonical k-mers (k <= 31) of a training split, as a sorted int64 array."""

    def __init__(self, sequences: Sequence[str], k: int = MEMO_K):
        if not 1 <= k <= 31:
            raise ValueError(f"k must be 1..31 for 2-bit codes in int64, got {k}")
        self.k = k
        parts = [
            np.unique(_kmer_codes(s, k))
            for s in tqdm(sequences, desc=f"{k}-mer index", unit="seq", disable=progress_disabled())
        ]
        self.codes = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def containment(self, seq: str) -> float:
        """Fraction of the k-mers of `seq` present in the index (NaN without any k-mer)."""
        q = _kmer_codes(seq, self.k)
        if not len(q) or not len(self.codes):
            return float("nan")
        pos = np.searchsorted(self.codes, q)
        hit = self.codes[np.minimum(pos, len(self.codes) - 1)] == q
        return float(hit.mean())


def memorised(containments: Sequence[float], threshold: float = MEMO_THRESHOLD) -> np.ndarray:
    c = np.asarray(containments, float)
    return np.nan_to_num(c, nan=0.0) >= threshold


def set_metrics(
    natural: Sequence[str],
    generated: Sequence[str],
    *,
    cds: bool,
    starts: Sequence[set[str]] | None = None,
    capped: Sequence[bool] | None = None,
    natural_emb: np.ndarray | None = None,
    generated_emb: np.ndarray | None = None,
    index: KmerIndex | None = None,
) -> dict[str, float]:
    """Every metric of `generated` against `natural` (see the module docstring). `starts`:
    the start codons accepted per generated sequence (default ATG); `capped`: whether each
    generated sequence was cut at the length cap (default: none was)."""
    row: dict[str, float] = {"n": len(generated)}
    row["mean_length"] = float(np.mean([len(s) for s in generated])) if generated else np.nan
    for k in KS:
        row[f"jsd_k{k}"] = jsd_bits(spectrum(natural, k), spectrum(generated, k))
    row["gc_ks"] = ks_stat([gc_fraction(s) for s in natural], [gc_fraction(s) for s in generated])
    row["gc3_ks"] = ks_stat(
        [gc3_fraction(s) for s in natural], [gc3_fraction(s) for s in generated]
    )
    row["length_ks"] = ks_stat([len(s) for s in natural], [len(s) for s in generated])
    row["codon_kl"] = kl_bits(codon_usage(natural), codon_usage(generated))
    capped = list(capped) if capped is not None else [False] * len(generated)
    row["capped"] = float(np.mean(capped)) if capped else np.nan
    if cds:
        starts = starts or [{"ATG"}] * len(generated)
        ok = [
            orf_check(s, st)[0]
            for s, st, cut in zip(generated, starts, capped, strict=True)
            if not cut
        ]
        row["valid_orf"] = float(np.mean(ok)) if ok else np.nan
    else:
        row["valid_orf"] = np.nan
    if natural_emb is not None and generated_emb is not None:
        row["frechet"] = frechet_distance(natural_emb, generated_emb)
    else:
        row["frechet"] = np.nan
    if index is not None:
        cont = [index.containment(s) for s in generated]
        row["containment_mean"] = float(np.nanmean(cont)) if np.isfinite(cont).any() else np.nan
        row["memorised"] = float(memorised(cont).mean()) if cont else np.nan
    else:
        row["containment_mean"] = row["memorised"] = np.nan
    return row


def summary_table(
    metric_files: Mapping[str, str | os.PathLike], out_tsv: str | os.PathLike
) -> pd.DataFrame:
    """Every model's metrics.tsv in one table (model order as given)."""
    frames = [pd.read_csv(path, sep="\t") for path in metric_files.values()]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    with atomic_write(out_tsv) as fh:
        df.to_csv(fh, sep="\t", index=False, float_format="%.6g", na_rep="NA")
    return df
