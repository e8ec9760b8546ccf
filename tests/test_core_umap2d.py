"""dnalm.core.umap2d: the neighbours handed to umap-learn are the exact ones."""

import numpy as np

from dnalm.core.umap2d import EXACT_KNN_BELOW, exact_knn


def test_exact_knn_equals_all_pairwise_cosine_distances():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8)).astype(np.float32)
    idx, dist = exact_knn(x, 5, "cosine")
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    full = 1.0 - unit @ unit.T
    want = np.argsort(full, axis=1, kind="stable")[:, :5]
    assert idx.shape == dist.shape == (60, 5)
    assert (idx[:, 0] == np.arange(60)).all()  # each row is its own first neighbour
    assert (idx == want).all()
    assert np.allclose(dist, np.take_along_axis(full, want, axis=1), atol=1e-5)
    assert EXACT_KNN_BELOW == 4096  # umap-learn's own switch to its approximate search
