"""The one seeded 2-D UMAP of the workflow (probe embeddings, sequences of several sources).

umap-learn is imported inside the function: it takes seconds (numba) and only this needs it.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from dnalm.core.errors import InputFormatError

log = logging.getLogger(__name__)


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
    reducer = umap.UMAP(
        n_neighbors=k, metric=metric, min_dist=min_dist, random_state=seed, n_components=2
    )
    with warnings.catch_warnings():
        # "n_jobs value 1 overridden to 1 by setting random_state": expected, we want the seed
        warnings.filterwarnings("ignore", message=".*overridden to 1 by setting random_state.*")
        return reducer.fit_transform(x)  # (N, 2)
