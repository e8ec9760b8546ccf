"""2-D pictures of DNA: the DNA walk and the chaos-game representation (CGR).

One implementation for the report figures and for any training loss that needs 2-D
coordinates of a sequence. numpy only (no scipy, no torch).

DNA walk (the Gates-type walk, as in GenomeWalk and the walk figures of
nucleotide-model-experiments): each base is a unit step,

    A = (-1, 0)  left       T = (+1, 0)  right
    C = (0, -1)  down       G = (0, +1)  up

so complementary bases step in opposite directions (A/T on the x axis, C/G on the y axis):
x is the T-A skew and y the G-C skew of the prefix read so far. N, the IUPAC ambiguity codes
and any other letter are no step (the path stays put). Lower case reads as upper case, U as T.
The walk of a sequence of length L is its (L + 1, 2) cumulative path starting at (0, 0).

Because complements step in opposite directions, the walk of the reverse complement is the
forward walk run backwards, moved to start at the origin:
``dna_walk(rc(s))[j] == dna_walk(s)[L - j] - dna_walk(s)[L]``.

CGR (Jeffrey 1990): the corners of the unit square are

    A = (0, 0) lower left   C = (0, 1) upper left
    G = (1, 1) upper right  T = (1, 0) lower right

and starting from the centre (0.5, 0.5) each base moves the point half way towards its corner.
After at least k bases, the point lies in the cell of the 2^k x 2^k grid that the last k bases
determine (the last base picks the quadrant, the one before it the sub-quadrant, ...), so the
frequency image at resolution 2^k (:func:`cgr_image`) is the k-mer frequency table laid out
in that grid (:func:`cgr_cell`). Images are indexed ``[row, column]`` with row 0 at the bottom
(y = 0) and column 0 on the left (x = 0): draw them with ``origin="lower"``. N and other
letters do not move the CGR point, and k-mers containing them are not counted (as in
:func:`dnalm.core.alphabet.kmer_frequencies`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: base -> walk step (x, y); see the module docstring
WALK_STEPS: dict[str, tuple[int, int]] = {"A": (-1, 0), "C": (0, -1), "G": (0, 1), "T": (1, 0)}
#: base -> CGR corner (x, y) in the unit square
CGR_CORNERS: dict[str, tuple[int, int]] = {"A": (0, 0), "C": (0, 1), "G": (1, 1), "T": (1, 0)}

_BASES = "ACGT"
#: byte -> 0..3 for A/C/G/T/U (either case), -1 for anything else
_CODE = np.full(256, -1, dtype=np.int64)
for _i, _b in enumerate(_BASES):
    _CODE[ord(_b)] = _CODE[ord(_b.lower())] = _i
_CODE[ord("U")] = _CODE[ord("u")] = 3


def _codes(seq: str) -> np.ndarray:
    """0..3 for A/C/G/T (U), -1 for N and any other character. -> (L,) int64"""
    return _CODE[np.frombuffer(seq.encode("ascii", errors="replace"), dtype=np.uint8)]


def step_vectors() -> np.ndarray:
    """The walk step of each base code: (5, 2) float64, rows A, C, G, T, then a zero row for
    N / ambiguity / anything else (no step)."""
    rows = [WALK_STEPS[b] for b in _BASES] + [(0, 0)]
    return np.asarray(rows, dtype=np.float64)


def dna_walk(seq: str) -> np.ndarray:
    """The cumulative 2-D walk of `seq`: (L + 1, 2) float64, row 0 the origin, row i the
    position after the first i bases."""
    steps = step_vectors()[_codes(seq)]  # code -1 picks the last (zero) row
    path = np.zeros((len(seq) + 1, 2), dtype=np.float64)
    np.cumsum(steps, axis=0, out=path[1:])
    return path


def resample_path(path: np.ndarray, points: int) -> np.ndarray:
    """`points` positions evenly spaced along a path's steps (linear interpolation between
    vertices): (M, 2) -> (points, 2). The first and last vertices are kept."""
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    path = np.asarray(path, dtype=np.float64)
    if len(path) == 1:
        return np.repeat(path, points, axis=0)
    t = np.linspace(0.0, len(path) - 1, points)
    s = np.arange(len(path), dtype=np.float64)
    return np.stack([np.interp(t, s, path[:, 0]), np.interp(t, s, path[:, 1])], axis=1)


def walk_batch(seqs: Sequence[str], points: int = 200, normalise: bool = True) -> np.ndarray:
    """Walks of many sequences on one scale, to overlay them: (N, points, 2).

    Each walk is resampled to `points` positions evenly spaced along the sequence (position
    0 to L), and with `normalise` divided by its length L, so every sequence runs from the
    origin to its mean step (its T-A and G-C skews) whatever its length. An empty sequence
    is a walk that stays at the origin."""
    out = np.zeros((len(seqs), points, 2), dtype=np.float64)
    for i, seq in enumerate(seqs):
        path = resample_path(dna_walk(seq), points)
        if normalise and len(seq):
            path /= len(seq)
        out[i] = path
    return out


def cgr_points(seq: str) -> np.ndarray:
    """The chaos-game points of `seq`: (L, 2) float64, row i the point after base i (the
    centre (0.5, 0.5) is the start and is not included). N and other letters do not move
    the point (its row repeats the previous one).

    The recursion p_i = (p_{i-1} + corner_i) / 2 is evaluated in closed form, as the sum of
    the corners weighted 2^-(age + 1) plus the start weighted 2^-n, in blocks of 48 bases
    (older bases fall below double precision anyway)."""
    codes = _codes(seq)
    corners = np.asarray([CGR_CORNERS[b] for b in _BASES], dtype=np.float64)
    out = np.empty((len(codes), 2), dtype=np.float64)
    point = np.array([0.5, 0.5])
    block = 48
    for start in range(0, len(codes), block):
        c = codes[start : start + block]
        moves = c >= 0
        n_moves = np.cumsum(moves)  # (b,) moves made so far in this block
        # weight of the move made at j, seen from position i >= j: 2^-(n_moves[i] - n_moves[j] + 1)
        corner_xy = np.where(moves[:, None], corners[np.maximum(c, 0)], 0.0)
        scale = np.ldexp(1.0, -n_moves)  # (b,)
        weights = np.where(moves, np.ldexp(1.0, n_moves - 1), 0.0)  # (b,) 2^(n_j - 1)
        acc = np.cumsum(corner_xy * weights[:, None], axis=0)  # (b, 2)
        out[start : start + len(c)] = acc * scale[:, None] + point * scale[:, None]
        point = out[start + len(c) - 1].copy()
    return out


def cgr_cell(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each k-mer sits in the 2^k x 2^k CGR grid: (rows, columns), each (4^k,) int64,
    indexed by the k-mer's base-4 number (the order of
    :func:`dnalm.core.alphabet.kmer_names`). The last base of the k-mer is the most
    significant bit of both coordinates."""
    if not 1 <= k <= 10:
        raise ValueError(f"CGR k must be between 1 and 10, got {k}")
    xbit = np.array([CGR_CORNERS[b][0] for b in _BASES], dtype=np.int64)
    ybit = np.array([CGR_CORNERS[b][1] for b in _BASES], dtype=np.int64)
    index = np.arange(4**k, dtype=np.int64)
    rows = np.zeros(4**k, dtype=np.int64)
    cols = np.zeros(4**k, dtype=np.int64)
    for pos in range(k):  # pos 0 = first base of the k-mer = least significant bit
        base = (index // 4 ** (k - 1 - pos)) % 4
        cols += xbit[base] << pos
        rows += ybit[base] << pos
    return rows, cols


def kmer_counts(seq: str, k: int) -> np.ndarray:
    """Overlapping k-mer counts of one sequence (windows with N or other letters skipped):
    (4^k,) int64 in base-4 (A<C<G<T) order."""
    codes = _codes(seq)
    if len(codes) < k:
        return np.zeros(4**k, dtype=np.int64)
    win = np.lib.stride_tricks.sliding_window_view(codes, k)
    ok = (win >= 0).all(1)
    index = win[ok] @ (4 ** np.arange(k - 1, -1, -1, dtype=np.int64))
    return np.bincount(index, minlength=4**k)


def cgr_image(seqs: Sequence[str] | str, k: int = 6, normalise: bool = True) -> np.ndarray:
    """Frequency CGR image of one or many sequences: (2^k, 2^k) float64, ``[row, column]``
    with row 0 at the bottom. Cell counts are the k-mer counts over all sequences (each CGR
    point after at least k bases falls in the cell of its last k bases); with `normalise`
    they are divided by their total, so the image sums to 1 (or is all zeros)."""
    if isinstance(seqs, str):
        seqs = [seqs]
    counts = np.zeros(4**k, dtype=np.int64)
    for seq in seqs:
        counts += kmer_counts(seq, k)
    rows, cols = cgr_cell(k)
    image = np.zeros((2**k, 2**k), dtype=np.float64)
    image[rows, cols] = counts
    if normalise and counts.sum():
        image /= counts.sum()
    return image


__all__ = [
    "CGR_CORNERS",
    "WALK_STEPS",
    "cgr_cell",
    "cgr_image",
    "cgr_points",
    "dna_walk",
    "kmer_counts",
    "resample_path",
    "step_vectors",
    "walk_batch",
]
