"""The one seeded 2-D UMAP of the workflow (probe embeddings, sequences of several sources).

umap-learn is imported inside the function: it takes seconds (numba) and only this needs it.
Below 4,096 rows umap-learn finds the neighbours exactly (all pairwise distances); here the
same exact neighbours come from scikit-learn and are handed over (`precomputed_knn`), which
spares compiling umap-learn's parallel neighbour search: about 7 of the ~15 CPU seconds a
process spends on its first map (benchmarks/bench_umap.py). From 4,096 rows umap-learn's own
approximate search (NN-descent) runs, as it would.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from dnalm.core.errors import InputFormatError

log = logging.getLogger(__name__)

# below this many rows umap-learn's own neighbour search is exact (umap_.nearest_neighbors)
EXACT_KNN_BELOW = 4096


def exact_knn(x: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows of every row (itself first), indices and distances (N, k), from all
    pairwise distances, as umap-learn computes them for fewer than 4,096 rows."""
    from sklearn.neighbors import NearestNeighbors  # lazy: scikit-learn loads with the map

    nn = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute").fit(x)
    dist, idx = nn.kneighbors(x)
    return idx.astype(np.int32), dist.astype(np.float32)


def umap_2d(
    x: np.ndarray,
    *,
    n_neighbors: int = 15,
    metric: str = "cosine",
    min_dist: float = 0.1,
    seed: int = 42,
    what: str = "points",
) -> np.ndarray:
    """2-D UMAP coordinates (N, 2) of the rows of `x` (N, D), reproducible for a given seed.
    With fewer than `n_neighbors` + 1 rows the neighbourhood shrinks to N - 1 (logged);
    fewer than 3 rows is an InputFormatError (`what` names them in the message)."""
    import umap  # lazy: umap-learn (~3 s, numba) loads only when a 2-D map is drawn

    x = np.asarray(x, dtype=np.float32)
    n = x.shape[0]
    if n < 3:
        raise InputFormatError(f"UMAP needs at least 3 {what}, got {n}")
    k = min(n_neighbors, n - 1)
    if k < n_neighbors:
        log.warning("UMAP: only %d %s; using %d neighbours instead of %d", n, what, k, n_neighbors)
    knn = None
    if n < EXACT_KNN_BELOW:
        idx, dist = exact_knn(x, k, metric)
        knn = (idx, dist, None)  # no search index: the map is fitted, never extended
    reducer = umap.UMAP(
        n_neighbors=k,
        metric=metric,
        min_dist=min_dist,
        random_state=seed,
        n_components=2,
        precomputed_knn=knn if knn is not None else (None, None, None),
    )
    with warnings.catch_warnings():
        # precomputed neighbours without a search index: only transform() would need one
        warnings.filterwarnings("ignore", message=".*precomputed_knn.*")
        # "n_jobs value 1 overridden to 1 by setting random_state": expected, we want the seed
        warnings.filterwarnings("ignore", message=".*overridden to 1 by setting random_state.*")
        return reducer.fit_transform(x)  # (N, 2)
