"""Measured checks of attributions: bound-vs-unbound AUROC, and motifs from seqlets.

**Bound vs unbound** (:func:`bound_auroc`): the AUROC with which |attribution| at a base
separates bound bases (task target > 0: a HOMER motif score, or its transform, above zero)
from unbound ones, pooled over all scored bases of the explained windows; also the mean of
the per-window AUROCs over windows that have both kinds of base.

**Motifs** (a documented simple seqlet clustering, used instead of TF-MoDISco: TF-MoDISco's
Leiden clustering is slow on CPU and heavy to install for the few hundred sequences explained
here):

1. seqlets (:func:`find_seqlets`): in every sequence, windows of ``width`` bases whose summed
   (signed) attribution is the largest, greedily without overlap, at most ``per_sequence``
   per sequence, kept when the sum is above the ``quantile`` of all windows' sums over all
   sequences (and positive);
2. clustering (:func:`cluster_seqlets`): seqlets in decreasing order of score; each joins the
   cluster whose position frequency matrix (PFM) it matches best (best offset and strand,
   :func:`pwm_similarity` of its one-hot bases against the PFM, overlap at least
   ``width - 2``), if that similarity is at least ``join``, aligned at that offset and strand;
   otherwise it starts a new cluster. Clusters with fewer than ``min_seqlets`` members are
   dropped; the PFM of each is its members' aligned base frequencies, trimmed at both ends to
   the columns with information content of at least 0.5 bit;
3. comparison (:func:`pwm_similarity`): the Pearson correlation of the two matrices'
   overlapping columns (flattened), maximised over offsets (overlap at least
   ``min(len_a, len_b, min_overlap)``) and both strands of the second matrix. A known motif
   (a consensus string such as ATGCAAAT) is compared as its one-hot matrix. Beside each
   score, ``null_p95``: the 95th percentile of the same score of the known motif against 200
   random consensus strings of the discovered motif's length (seeded), so a score can be read
   against what chance gives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from dnalm.core.alphabet import BASES, N_CODE
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.metrics import auroc

# --------------------------------------------------------- bound vs unbound (core.metrics.auroc)


def bound_auroc(track: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """|attribution| (N, L) against bound = targets > 0, over bases where `mask` is set:
    pooled AUROC, mean per-window AUROC, and the counts behind them."""
    track, targets, mask = np.asarray(track), np.asarray(targets), np.asarray(mask, bool)
    if track.shape != targets.shape or track.shape != mask.shape:
        raise InputFormatError(
            f"attribution {track.shape}, targets {targets.shape} and mask {mask.shape} differ"
        )
    score = np.abs(track)
    bound = targets > 0
    per_window = [
        auroc(score[i][mask[i]], bound[i][mask[i]])
        for i in range(len(track))
        if bound[i][mask[i]].any() and (~bound[i][mask[i]]).any()
    ]
    return {
        "auroc_pooled": auroc(score[mask], bound[mask]),
        "auroc_window_mean": float(np.mean(per_window)) if per_window else float("nan"),
        "n_windows": len(track),
        "n_windows_with_both": len(per_window),
        "n_bound_bases": int(bound[mask].sum()),
        "n_bases": int(mask.sum()),
    }


# ----------------------------------------------------------------------------- PWMs


def consensus_matrix(consensus: str) -> np.ndarray:
    """One-hot (L, 4) of a consensus string (A/C/G/T; N = 0.25 in every column)."""
    out = np.zeros((len(consensus), 4), np.float64)
    for i, b in enumerate(consensus.upper()):
        if b == "N":
            out[i] = 0.25
        elif b in BASES:
            out[i, BASES.index(b)] = 1.0
        else:
            raise ConfigError(f"motif consensus {consensus!r}: {b!r} is not A/C/G/T/N")
    return out


def revcomp_matrix(m: np.ndarray) -> np.ndarray:
    """Reverse complement of an (L, 4) ACGT matrix."""
    return np.asarray(m)[::-1, ::-1]


def _best_offset(a: np.ndarray, b: np.ndarray, min_overlap: int) -> tuple[float, int]:
    best, best_off = -np.inf, 0
    for off in range(-(len(b) - min_overlap), len(a) - min_overlap + 1):
        lo, hi = max(0, off), min(len(a), off + len(b))
        if hi - lo < min_overlap:
            continue
        x, y = a[lo:hi].ravel(), b[lo - off : hi - off].ravel()
        if x.std() == 0 or y.std() == 0:
            continue
        r = float(np.corrcoef(x, y)[0, 1])
        if r > best:
            best, best_off = r, off
    return best, best_off


def pwm_similarity(a: np.ndarray, b: np.ndarray, min_overlap: int = 6) -> tuple[float, int, bool]:
    """(best Pearson r, offset of b in a, b reverse-complemented?) over offsets and both
    strands of `b` (module docstring); -inf when no overlap qualifies."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    need = min(len(a), len(b), min_overlap)
    fwd = _best_offset(a, b, need)
    rev = _best_offset(a, revcomp_matrix(b), need)
    if rev[0] > fwd[0]:
        return rev[0], rev[1], True
    return fwd[0], fwd[1], False


def information_content(pfm: np.ndarray) -> np.ndarray:
    """Bits per column of a frequency matrix (L, 4)."""
    p = np.clip(np.asarray(pfm, np.float64), 1e-9, 1.0)
    return 2.0 + (p * np.log2(p)).sum(1)


def trim(pfm: np.ndarray, min_ic: float = 0.5) -> np.ndarray:
    """The columns between the first and last with information content >= min_ic."""
    keep = np.flatnonzero(information_content(pfm) >= min_ic)
    return pfm if not len(keep) else pfm[keep[0] : keep[-1] + 1]


def matrix_consensus(pfm: np.ndarray) -> str:
    return "".join(BASES[i] for i in np.argmax(pfm, 1))


# ----------------------------------------------------------------------------- seqlets


def find_seqlets(
    track: np.ndarray,
    codes: np.ndarray,
    mask: np.ndarray,
    width: int = 10,
    per_sequence: int = 2,
    quantile: float = 0.9,
) -> list[tuple[int, int, float]]:
    """(sequence, start, score) of the seqlets of attribution tracks (module docstring)."""
    track = np.where(np.asarray(mask, bool), np.asarray(track, np.float64), 0.0)
    if track.shape[1] < width:
        raise ConfigError(f"interpret.seqlet_width={width} is longer than the sequences")
    kernel = np.ones(width)
    sums = np.stack([np.convolve(t, kernel, mode="valid") for t in track])  # (N, L-w+1)
    ok = (
        np.stack(
            [
                np.convolve((np.asarray(m, bool) & (c != N_CODE)).astype(float), kernel, "valid")
                for m, c in zip(mask, codes, strict=True)
            ]
        )
        == width
    )  # windows of A/C/G/T bases only
    if not ok.any():
        return []
    cut = max(0.0, float(np.quantile(sums[ok], quantile)))
    out = []
    for i in range(len(track)):
        s = np.where(ok[i], sums[i], -np.inf)
        for _ in range(per_sequence):
            j = int(np.argmax(s))
            if not np.isfinite(s[j]) or s[j] <= cut:
                break
            out.append((i, j, float(s[j])))
            s[max(0, j - width + 1) : j + width] = -np.inf
    return out


@dataclass
class Cluster:
    counts: np.ndarray  # (W, 4) aligned base counts (W grows as members extend it)
    members: list[tuple[int, int, bool]] = field(default_factory=list)  # (seq, start, rc)
    score: float = 0.0

    @property
    def pfm(self) -> np.ndarray:
        return self.counts / np.clip(self.counts.sum(1, keepdims=True), 1e-9, None)


def cluster_seqlets(
    seqlets: Sequence[tuple[int, int, float]],
    codes: np.ndarray,
    width: int = 10,
    join: float = 0.6,
    min_seqlets: int = 5,
) -> list[Cluster]:
    """Greedy clustering of seqlets into aligned PFMs (module docstring), largest first."""
    clusters: list[Cluster] = []
    for i, start, score in sorted(seqlets, key=lambda s: -s[2]):
        x = np.eye(4)[np.asarray(codes[i, start : start + width], np.int64)]  # (w, 4)
        best, where = -np.inf, None
        for k, c in enumerate(clusters):
            r, off, rc = pwm_similarity(c.pfm, x, min_overlap=width - 2)
            if r > best:
                best, where = r, (k, off, rc)
        if where is None or best < join:
            clusters.append(Cluster(x.copy(), [(i, start, False)], score))
            continue
        k, off, rc = where
        c = clusters[k]
        xx = revcomp_matrix(x) if rc else x
        left = max(0, -off)
        right = max(0, off + width - len(c.counts))
        if left or right:  # extend the cluster's columns to hold the member
            c.counts = np.pad(c.counts, ((left, right), (0, 0)))
        lo = off + left
        c.counts[lo : lo + width] += xx
        c.members.append((i, start, rc))
        c.score += score
    kept = [c for c in clusters if len(c.members) >= min_seqlets]
    return sorted(kept, key=lambda c: -len(c.members))


def random_null(known: np.ndarray, length: int, n: int = 200, seed: int = 0) -> float:
    """95th percentile of the best score of `known` against random consensus strings."""
    rng = np.random.default_rng(seed)
    vals = [pwm_similarity(np.eye(4)[rng.integers(0, 4, length)], known)[0] for _ in range(n)]
    return float(np.quantile(vals, 0.95))


def compare_motifs(
    clusters: Sequence[Cluster],
    known: Mapping[str, str],
    n_top: int = 3,
    min_overlap: int = 6,
) -> list[dict]:
    """One row per (discovered motif among the `n_top` largest, known motif): rank,
    seqlets, consensus, score against the known motif (both strands) and its null_p95."""
    rows = []
    for rank, c in enumerate(clusters[:n_top], 1):
        pfm = trim(c.pfm)
        for name, cons in known.items():
            km = consensus_matrix(cons)
            r, _, rc = pwm_similarity(pfm, km, min_overlap)
            rows.append(
                {
                    "motif_rank": rank,
                    "n_seqlets": len(c.members),
                    "consensus": matrix_consensus(pfm),
                    "known": name,
                    "known_consensus": cons,
                    "similarity": r,
                    "reverse_strand": rc,
                    "null_p95": random_null(km, len(pfm)),
                }
            )
    return rows
