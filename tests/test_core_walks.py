"""DNA walks and chaos-game representation (dnalm.core.walks) on known cases and on real CDS."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from dnalm.core.alphabet import kmer_frequencies, kmer_names, reverse_complement
from dnalm.core.walks import (
    CGR_CORNERS,
    WALK_STEPS,
    cgr_cell,
    cgr_image,
    cgr_points,
    dna_walk,
    resample_path,
    step_vectors,
    walk_batch,
)


def real_cds(shared_data, n: int = 40) -> list[str]:
    """CDS of E. coli highly expressed genes (a real CDS FASTA of the shared data)."""
    path = shared_data / "cds_fasta" / "ecoli_highly_expressed_genes.fasta"
    seqs, cur = [], []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        for line in fh:
            if line.startswith(">"):
                if cur:
                    seqs.append("".join(cur))
                cur = []
            else:
                cur.append(line.strip())
    if cur:
        seqs.append("".join(cur))
    assert len(seqs) >= n
    return seqs[:n]


def test_step_mapping_is_the_documented_one():
    assert WALK_STEPS == {"A": (-1, 0), "C": (0, -1), "G": (0, 1), "T": (1, 0)}
    steps = step_vectors()
    assert steps.shape == (5, 2)
    np.testing.assert_array_equal(steps[4], [0, 0])  # N: no step
    # complements step in opposite directions
    for b, c in zip("ACGT", "TGCA", strict=True):
        np.testing.assert_array_equal(np.add(WALK_STEPS[b], WALK_STEPS[c]), [0, 0])


def test_walk_of_acgt_repeats_returns_to_origin():
    path = dna_walk("ACGT" * 250)
    assert path.shape == (1001, 2)
    np.testing.assert_array_equal(path[0], [0, 0])
    np.testing.assert_array_equal(path[::4], np.zeros((251, 2)))  # back home every period
    assert np.abs(path).max() == 1  # never further than one step
    np.testing.assert_array_equal(path[1:5], [[-1, 0], [-1, -1], [-1, 0], [0, 0]])


def test_walk_counts_skews_is_case_insensitive_and_skips_n():
    seq = "GGGcAAtNNRyTT"
    path = dna_walk(seq)
    # x = #T - #A, y = #G - #C over the whole sequence; N, R, Y are no steps
    np.testing.assert_array_equal(path[-1], [3 - 2, 3 - 1])
    np.testing.assert_array_equal(dna_walk(seq.upper()), path)
    np.testing.assert_array_equal(path[8], path[7])  # the N does not move


def test_reverse_complement_walk_is_the_forward_walk_backwards(shared_data):
    for seq in real_cds(shared_data, 10):
        fwd = dna_walk(seq)
        rc = dna_walk(reverse_complement(seq))
        np.testing.assert_array_equal(rc, fwd[::-1] - fwd[-1])


def test_walk_batch_normalises_length():
    short, long_ = "GGGG", "G" * 400 + "A" * 400
    batch = walk_batch([short, long_, ""], points=5)
    assert batch.shape == (3, 5, 2)
    np.testing.assert_allclose(batch[0, :, 1], [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(batch[1, 2], [0, 0.5])  # half way: 400 G of 800 bases
    np.testing.assert_allclose(batch[1, -1], [-0.5, 0.5])
    np.testing.assert_array_equal(batch[2], 0)
    np.testing.assert_allclose(resample_path(dna_walk("GG"), 3), [[0, 0], [0, 1], [0, 2]])


def test_cgr_of_a_long_run_of_a_converges_to_the_a_corner():
    pts = cgr_points("A" * 60)
    dist = np.linalg.norm(pts - CGR_CORNERS["A"], axis=1)
    np.testing.assert_allclose(dist, np.sqrt(0.5) * 0.5 ** np.arange(1, 61), rtol=1e-12)
    assert dist[-1] < 1e-15
    pts = cgr_points("ACGT" * 5 + "G" * 40)  # from anywhere, a run of G ends at the G corner
    assert np.linalg.norm(pts[-1] - CGR_CORNERS["G"]) < 1e-9


def test_cgr_points_match_the_recursion(shared_data):
    seq = real_cds(shared_data, 1)[0][:300] + "NNrY" + "acgt"
    pts = cgr_points(seq)
    p = np.array([0.5, 0.5])
    for i, b in enumerate(seq.upper()):
        if b in CGR_CORNERS:
            p = (p + CGR_CORNERS[b]) / 2
        np.testing.assert_allclose(pts[i], p, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_cgr_image_is_the_kmer_table_in_cgr_layout(shared_data, k):
    seqs = real_cds(shared_data)
    image = cgr_image(seqs, k)
    assert image.shape == (2**k, 2**k)
    assert image.sum() == pytest.approx(1.0)
    # pooled k-mer frequencies: per-sequence frequencies weighted by their window counts
    windows = np.array([len(s) - k + 1 for s in seqs], dtype=np.float64)
    pooled = (kmer_frequencies(seqs, k) * windows[:, None]).sum(0) / windows.sum()
    rows, cols = cgr_cell(k)
    np.testing.assert_allclose(image[rows, cols], pooled, atol=1e-6)
    assert len({(r, c) for r, c in zip(rows, cols, strict=True)}) == 4**k  # a permutation


def test_cgr_cells_are_where_the_chaos_game_points_fall(shared_data):
    """Binning the points after >= k bases on the 2^k grid gives cgr_image's counts."""
    k = 3
    seq = real_cds(shared_data, 1)[0][:45]  # short: every point exact in double precision
    pts = cgr_points(seq)[k - 1 :]
    binned = np.zeros((2**k, 2**k))
    np.add.at(binned, (np.floor(pts[:, 1] * 2**k).astype(int),
                       np.floor(pts[:, 0] * 2**k).astype(int)), 1)  # fmt: skip
    np.testing.assert_array_equal(binned, cgr_image(seq, k, normalise=False))


def test_cgr_cell_corners():
    rows, cols = cgr_cell(2)
    names = kmer_names(2)
    at = {n: (int(r), int(c)) for n, r, c in zip(names, rows, cols, strict=True)}
    assert at["AA"] == (0, 0)  # lower left
    assert at["CC"] == (3, 0)  # upper left
    assert at["GG"] == (3, 3)
    assert at["TT"] == (0, 3)
    assert at["CA"] == (1, 0)  # last base A: lower-left quadrant
    assert at["AC"] == (2, 0)  # last base C: upper-left quadrant
