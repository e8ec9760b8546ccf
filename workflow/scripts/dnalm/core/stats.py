"""Uncertainty of a comparison: seeded, paired bootstrap confidence intervals over test items,
and the mean and spread over seeds.

A model row of a comparison table is compared with the best baseline *on the same test
items*: the items (test sequences; for per-base tasks whole windows, because the positions of
one window are not independent) are resampled with replacement, the metric of both runs is
computed on every resample, and the percentile interval of the difference is reported
(Efron & Tibshirani 1993, ch. 13; paired because both runs see the same resample). The
metric of one run gets the percentile interval of the same resamples.

Metrics are computed from per-item sufficient statistics, so that a resample is a weighted
sum (resample counts x item statistics) and a thousand resamples of a per-base task with
hundreds of thousands of positions take milliseconds:

* ``pearson``: n, sum t, sum p, sum t^2, sum p^2, sum t*p over an item's (valid) positions;
  the Pearson r of all positions of the resampled items, exactly as computed on the
  concatenation of their positions (``dnalm.core.metrics.pearson_r``);
* ``accuracy``: n and the number correct;
* ``mcc``: the item's cell of the K x K confusion matrix (one-hot, true class by predicted
  class); the Matthews correlation of the summed matrix (Gorodkin's multi-class form, equal
  to the binary MCC for two classes; 0 where it is undefined, as scikit-learn returns).

Everything is a pure function of the inputs and the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: The interval columns every comparison table adds (fine-tuning, probes).
INTERVAL_COLUMNS = (
    "ci95_low",
    "ci95_high",
    "best_baseline",
    "delta_vs_best_baseline",
    "delta_ci95_low",
    "delta_ci95_high",
)
#: Resamples summed at once (bounds the (chunk, n_items) count matrix).
CHUNK = 128


@dataclass(frozen=True)
class Interval:
    """A point estimate and its percentile bootstrap interval."""

    estimate: float
    low: float
    high: float
    n_items: int
    n_boot: int  # finite resample values the interval is taken from
    level: float


def pearson_stats(targets: np.ndarray, preds: np.ndarray, mask: np.ndarray | None = None):
    """(N, 6) per-item sums for Pearson r; rows are items, columns positions (or (N,) for
    one value per item). `mask` (same shape) keeps the real positions."""
    t = np.asarray(targets, dtype=np.float64)
    p = np.asarray(preds, dtype=np.float64)
    if t.shape != p.shape:
        raise ValueError(f"targets {t.shape} and predictions {p.shape} differ in shape")
    if t.ndim == 1:
        t, p = t[:, None], p[:, None]
    m = np.ones(t.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.ndim == 1:
        m = m[:, None]
    t, p = np.where(m, t, 0.0), np.where(m, p, 0.0)
    return np.stack(
        [m.sum(1), t.sum(1), p.sum(1), (t * t).sum(1), (p * p).sum(1), (t * p).sum(1)], axis=1
    )


def pearson_from_sums(s: np.ndarray) -> np.ndarray:
    """Pearson r from summed statistics (..., 6); nan where either side is constant."""
    n, st, sp, stt, spp, stp = np.moveaxis(np.asarray(s, dtype=np.float64), -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = stp - st * sp / n
        vt = stt - st * st / n
        vp = spp - sp * sp / n
        r = cov / np.sqrt(vt * vp)
    scale = np.maximum(np.abs(stt), 1.0) * 1e-12
    return np.where((vt > scale) & (vp > np.maximum(np.abs(spp), 1.0) * 1e-12), r, np.nan)


def accuracy_stats(correct: np.ndarray) -> np.ndarray:
    """(N, 2) per-item statistics for accuracy: one example each, correct or not."""
    c = np.asarray(correct, dtype=np.float64).ravel()
    return np.stack([np.ones_like(c), c], axis=1)


def accuracy_from_sums(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s[..., 1] / s[..., 0]


def mcc_stats(y_true, y_pred, classes) -> np.ndarray:
    """(N, K*K) per-item statistics for MCC: each item's one-hot cell (true, predicted) of
    the confusion matrix over `classes` (a label outside `classes` is a ValueError)."""
    index = {str(c): i for i, c in enumerate(classes)}
    k = len(index)
    try:
        t = np.array([index[str(x)] for x in y_true], dtype=np.int64)
        p = np.array([index[str(x)] for x in y_pred], dtype=np.int64)
    except KeyError as err:
        raise ValueError(f"label {err} is not one of the classes {list(index)}") from None
    out = np.zeros((t.size, k * k))
    out[np.arange(t.size), t * k + p] = 1.0
    return out


def mcc_from_sums(s: np.ndarray) -> np.ndarray:
    """MCC of summed :func:`mcc_stats` (..., K*K) -> (...)."""
    s = np.asarray(s, dtype=np.float64)
    k = math.isqrt(s.shape[-1])
    cm = s.reshape(*s.shape[:-1], k, k)
    n = cm.sum(axis=(-2, -1))
    correct = np.trace(cm, axis1=-2, axis2=-1)
    true_k, pred_k = cm.sum(axis=-1), cm.sum(axis=-2)
    cov = correct * n - (true_k * pred_k).sum(-1)
    var_p = n**2 - (pred_k**2).sum(-1)
    var_t = n**2 - (true_k**2).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = cov / np.sqrt(var_p * var_t)
    return np.where((var_p * var_t) > 0, out, 0.0)


FINISH = {"pearson": pearson_from_sums, "accuracy": accuracy_from_sums, "mcc": mcc_from_sums}


def resample_sums(stats: list[np.ndarray], n_boot: int, seed: int) -> list[np.ndarray]:
    """For each (N, k) statistics matrix, its (n_boot, k) sums over the same `n_boot` seeded
    resamples of the N items with replacement."""
    n = stats[0].shape[0]
    if n < 1 or n_boot < 1:
        raise ValueError(f"need items and resamples, got n_items={n}, n_boot={n_boot}")
    if any(s.shape[0] != n for s in stats):
        raise ValueError("paired statistics must cover the same items")
    rng = np.random.default_rng(seed)
    out = [np.empty((n_boot, s.shape[1])) for s in stats]
    for start in range(0, n_boot, CHUNK):
        b = min(CHUNK, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        counts = np.zeros((b, n))
        np.add.at(counts, (np.repeat(np.arange(b), n), idx.ravel()), 1.0)
        for s, o in zip(stats, out, strict=True):
            o[start : start + b] = counts @ s
    return out


def _interval(estimate: float, values: np.ndarray, n_items: int, level: float) -> Interval:
    values = values[np.isfinite(values)]
    if not math.isfinite(estimate) or values.size == 0:
        low = high = math.nan
    else:
        tail = (1.0 - level) / 2.0
        low, high = (float(v) for v in np.quantile(values, [tail, 1.0 - tail]))
    return Interval(float(estimate), low, high, n_items, int(values.size), level)


def _as_list(stats) -> list[np.ndarray]:
    return [stats] if isinstance(stats, np.ndarray) else list(stats)


def _seed_mean(finish, sums: list[np.ndarray]) -> np.ndarray:
    """The metric averaged over seed replicates, per resample (or for the full set)."""
    return np.mean([finish(s) for s in sums], axis=0)


def bootstrap(
    stats, metric: str, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> Interval:
    """Percentile bootstrap interval of `metric` ('pearson' | 'accuracy' | 'mcc') of one run, or of
    its mean over seed replicates when `stats` is a list of (N, k) matrices whose row i is
    the same item in each."""
    finish, stats = FINISH[metric], _as_list(stats)
    sums = resample_sums(stats, n_boot, seed)
    estimate = float(_seed_mean(finish, [s.sum(0) for s in stats]))
    return _interval(estimate, _seed_mean(finish, sums), stats[0].shape[0], level)


def paired_bootstrap(
    stats_a,
    stats_b,
    metric: str,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[Interval, Interval, Interval]:
    """Intervals of run a, run b and of the difference a - b, all from the same resamples
    of the items the two runs share (row i is the same item in every matrix). Either side
    may be a list of seed replicates: its metric is then the mean over seeds."""
    finish = FINISH[metric]
    stats_a, stats_b = _as_list(stats_a), _as_list(stats_b)
    sums = resample_sums([*stats_a, *stats_b], n_boot, seed)
    va = _seed_mean(finish, sums[: len(stats_a)])
    vb = _seed_mean(finish, sums[len(stats_a) :])
    ea = float(_seed_mean(finish, [s.sum(0) for s in stats_a]))
    eb = float(_seed_mean(finish, [s.sum(0) for s in stats_b]))
    n = stats_a[0].shape[0]
    return (
        _interval(ea, va, n, level),
        _interval(eb, vb, n, level),
        _interval(ea - eb, va - vb, n, level),
    )


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; nan for one value) of finite values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else math.nan)
