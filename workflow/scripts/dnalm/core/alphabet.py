"""The one DNA alphabet of the library: base letters and codes, IUPAC, reverse complement,
integer and one-hot encodings, k-mer names and k-mer frequencies (dense and sparse).

Every stage uses these (CDS extraction, tokenizers, tasks, baselines, probes) instead of its
own table, so that "what is a base" has one answer:

- ``IUPAC``: the accepted nucleotide letters (either case); ``AMBIGUITY`` the ambiguity codes
  (R Y S W K M B D H V), which every stage reads as N; U is read as T.
- Integer codes (:func:`encode_sequences`): A=0, C=1, G=2, T=3, N (and padding) = ``N_CODE``.
- :func:`reverse_complement` keeps case, maps U to A and complements ambiguity codes
  (R<->Y, K<->M, B<->V, D<->H; S, W, N unchanged).
- k-mers are ordered lexicographically in A < C < G < T (:func:`kmer_names`); the index of a
  k-mer is its base-4 value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.letters import AMBIGUITY, BASES, IUPAC, kmer_names, reverse_complement

if TYPE_CHECKING:  # torch and scipy are imported where needed: the data stage has neither
    import torch
    from scipy import sparse
#: Code of N (and of padding) in the integer encoding; ACGT are 0..3.
N_CODE = 4
#: code -> base letter (A, C, G, T, N)
CODE_TO_BASE = np.frombuffer(b"ACGTN", dtype=np.uint8)


def _byte_codes() -> np.ndarray:
    """byte -> code for A/C/G/T (either case) and N/n; -1 for anything else."""
    lut = np.full(256, -1, dtype=np.int8)
    for i, b in enumerate(BASES):
        lut[ord(b)] = lut[ord(b.lower())] = i
    lut[ord("N")] = lut[ord("n")] = N_CODE
    return lut


#: byte -> code for A/C/G/T (either case) and N/n; -1 for anything else
_LUT = _byte_codes()
#: byte -> code for A/C/G/T (either case); -1 for anything else (N included)
_ACGT_CODE = np.where(_LUT == N_CODE, -1, _LUT).astype(np.int64)
#: complement of each code (A<->T, C<->G, N->N)
_COMPLEMENT = (3, 2, 1, 0, N_CODE)
#: code -> one-hot row (N and padding: zeros)
_ONE_HOT = np.eye(N_CODE + 1, N_CODE, dtype=np.float32)


def encode_sequences(
    seqs: Sequence[str], length: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of DNA sequences: (N, L) int8 with A=0, C=1, G=2, T=3, N=4, padded on
    the right with 4 to `length` (default: the longest), and the lengths (N,) int64.

    Lower case is accepted; any other character raises InputFormatError naming the
    sequence index and the character."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    width = int(lengths.max(initial=0)) if length is None else int(length)
    if (lengths > width).any():
        raise ValueError(f"a sequence is longer ({lengths.max()}) than length={width}")
    codes = np.full((len(seqs), width), N_CODE, dtype=np.int8)
    for i, s in enumerate(seqs):
        c = _LUT[np.frombuffer(s.encode("ascii", errors="replace"), dtype=np.uint8)]
        if (c < 0).any():
            bad = s[int(np.argmax(c < 0))]
            raise InputFormatError(
                f"sequence {i}: character {bad!r} is not A/C/G/T/N; normalise the task first"
            )
        codes[i, : len(c)] = c
    return codes, lengths


def one_hot(codes: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """One-hot of integer codes: (B, L) -> (B, L, 4) float32; N/padding (4) -> zeros.
    A tensor gives a tensor on the same device, an array an array (this module needs no
    torch: the data stage's environment has none)."""
    if isinstance(codes, np.ndarray):
        return _ONE_HOT[codes.astype(np.int64)]
    return codes.new_tensor(_ONE_HOT).float()[codes.long()]  # (B, L, 4)


def one_hot_encode(seqs: Sequence[str], length: int | None = None) -> np.ndarray:
    """One-hot (N, L, 4) float32 of sequences (ACGT order; N and padding = zeros)."""
    codes, _ = encode_sequences(seqs, length)
    return one_hot(codes)


def reverse_complement_codes(codes: torch.Tensor) -> torch.Tensor:
    """Reverse complement of integer codes along the last axis: (B, L) -> (B, L)."""
    c = codes.long()
    return c.new_tensor(_COMPLEMENT)[c].flip(-1).to(codes.dtype)


def kmer_frequencies_sparse(seqs: Sequence[str], k: int) -> sparse.csr_matrix:
    """Overlapping k-mer frequencies: sparse (N, 4**k) float32, columns in kmer_names(k)
    order. Each row is the count of every k-mer at every offset, divided by the number of
    k-mers counted, so it sums to 1 (k-mers containing N are skipped; a sequence with no
    countable k-mer is a zero row). Lower case counts as upper case."""
    from scipy import sparse  # lazy: scipy.sparse (~0.3 s) stays out of `dnalm cds` and the DAG

    if not 1 <= k <= 8:
        raise ConfigError(f"k must be between 1 and 8 (3-6 are sensible), got {k}")
    codes, _ = encode_sequences(seqs)
    n, width = codes.shape
    if width < k:
        return sparse.csr_matrix((n, 4**k), dtype=np.float32)
    c = codes.astype(np.int64)
    windows = width - k + 1
    index = np.zeros((n, windows), np.int64)  # base-4 number of the k-mer at each offset
    valid = np.ones((n, windows), bool)
    for j in range(k):
        part = c[:, j : j + windows]
        index = index * 4 + np.minimum(part, 3)
        valid &= part < N_CODE  # N or padding inside -> not counted
    rows = np.broadcast_to(np.arange(n)[:, None], index.shape)[valid]
    counts = sparse.csr_matrix(
        (np.ones(rows.size, np.float32), (rows, index[valid])), shape=(n, 4**k)
    )
    counts.sum_duplicates()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    return (sparse.diags(scale.astype(np.float32)) @ counts).tocsr()


def kmer_frequencies(sequences: Sequence[str], k: int = 4, chunk: int = 4096) -> np.ndarray:
    """Overlapping k-mer frequencies of each sequence. -> float32 (N, 4^k)

    Every window of k bases at stride 1 that holds only A/C/G/T (either case) is counted;
    windows touching N or any other letter are skipped. Each row is divided by its number of
    counted windows, so it sums to 1 (a sequence with no countable window is all zeros)."""
    if not 1 <= k <= 8:
        raise ConfigError(f"k-mer size must be between 1 and 8, got {k}")
    n_feat = 4**k
    out = np.zeros((len(sequences), n_feat), dtype=np.float32)
    powers = 4 ** np.arange(k - 1, -1, -1, dtype=np.int64)  # (k,)
    for start in range(0, len(sequences), chunk):
        block = list(sequences[start : start + chunk])
        # One buffer with a separator byte (code -1) after each sequence, so no window spans
        # two sequences.
        raw = np.frombuffer(("\0".join(block) + "\0").encode("ascii", "replace"), np.uint8)
        codes = _ACGT_CODE[raw]  # (L,)
        lens = np.fromiter((len(s) + 1 for s in block), np.int64, count=len(block))
        owner = np.repeat(np.arange(len(block)), lens)  # (L,) sequence of each byte
        if codes.size < k:
            continue
        win = np.lib.stride_tricks.sliding_window_view(codes, k)  # (L-k+1, k)
        ok = (win >= 0).all(1)
        kmer = win[ok] @ powers  # (M,)
        rows = owner[: win.shape[0]][ok]
        counts = np.bincount(rows * n_feat + kmer, minlength=len(block) * n_feat)
        counts = counts.reshape(len(block), n_feat).astype(np.float64)
        total = counts.sum(1, keepdims=True)
        np.divide(counts, total, out=counts, where=total > 0)
        out[start : start + len(block)] = counts
    return out


__all__ = [
    "AMBIGUITY",
    "BASES",
    "CODE_TO_BASE",
    "IUPAC",
    "N_CODE",
    "encode_sequences",
    "kmer_frequencies",
    "kmer_frequencies_sparse",
    "kmer_names",
    "one_hot",
    "one_hot_encode",
    "reverse_complement",
    "reverse_complement_codes",
]
