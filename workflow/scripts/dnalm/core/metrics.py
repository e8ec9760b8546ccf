"""Evaluation metrics of the fine-tuning stage, shared by the baselines and the fine-tuned
models so that every row of a comparison is computed by the same code, and the plain metrics
(AUROC, Pearson r) of the probes, variant effects and motif attributions. Torch-free (numpy,
scipy, scikit-learn), so that every stage may import it.

All functions are pure: numpy arrays in, a plain ``dict`` out (JSON-ready after
:func:`to_jsonable`). Undefined values (a Pearson r of a constant prediction, an AUPRC
without a positive target) are ``float('nan')`` in the dict and ``null`` in metrics.json.

- Per-base (and sequence-level) regression, :func:`regression_metrics`: Pearson r over all
  values flattened into one vector (for per-base tasks every base of every test sequence is
  one point), Spearman rho, MSE, and the AUPRC of finding the bound bases (target > 0)
  ranked by the predicted score. Note on the DNA-LLM figures (0.981 for its one-hot CNN):
  its training script (5_dna-baseline.py) flattens each validation batch of 64 windows,
  computes r per batch and averages the batch r's; ours is one r over all test positions,
  which does not depend on the batch size. Spearman is low on such tasks by construction:
  ~96% of the targets are tied at 0.
- Classification, :func:`classification_metrics`: accuracy, macro-F1, Matthews correlation,
  recall per class, the confusion matrix with rows/columns in a stated label order, and two
  chance levels (see the function).

:func:`write_metrics_json` writes the one ``metrics.json`` format every fine-tuning and
baseline run produces.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from dnalm.core.io import atomic_write

#: Keys every metrics.json has (`write_metrics_json`), in this order.
METRICS_JSON_KEYS = (
    "model",
    "tokenizer",
    "regime",
    "trainable_params",
    "total_params",
    "wall_time_s",
    "n_test",
    "metrics",
)


def _flatten_valid(
    y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true shape {y_true.shape} != y_pred shape {y_pred.shape}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != y_true.shape:
            raise ValueError(f"mask shape {mask.shape} != targets shape {y_true.shape}")
        return y_true[mask], y_pred[mask]
    return y_true.ravel(), y_pred.ravel()


def pearson_r(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Pearson r of two flattened vectors; nan when either is constant or n < 2."""
    t, p = np.asarray(y_true, np.float64).ravel(), np.asarray(y_pred, np.float64).ravel()
    if t.size < 2 or np.ptp(t) == 0 or np.ptp(p) == 0:
        return math.nan
    tc, pc = t - t.mean(), p - p.mean()
    return float(np.dot(tc, pc) / math.sqrt(np.dot(tc, tc) * np.dot(pc, pc)))


def auroc(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray) -> float:
    """AUROC of `scores` for binary `labels` (Mann-Whitney U with mid-ranks for ties);
    NaN when one class is absent."""
    scores = np.asarray(scores, np.float64).ravel()
    labels = np.asarray(labels, bool).ravel()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = stats.rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def regression_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    mask: np.ndarray | None = None,
    bound_threshold: float = 0.0,
) -> dict[str, Any]:
    """Regression metrics over all values, flattened.

    y_true, y_pred: arrays of equal shape, (N,) for sequence regression or (N, L) for
    per-base regression; `mask` (same shape, bool) keeps only real positions when sequences
    were padded. Returns ``pearson_r`` (over the flattened positions), ``spearman_r``, ``mse``,
    ``auprc_bound`` (average precision of ranking the positions with target > `bound_threshold`
    by the prediction; sklearn's ``average_precision_score``, nan without a positive or a
    negative), ``bound_fraction`` (the AUPRC of a random ranking) and ``n`` (values scored).
    """
    # lazy: scikit-learn (~1 s) loads only in the jobs that compute metrics
    from sklearn import metrics as skm

    t, p = _flatten_valid(y_true, y_pred, mask)
    if t.size == 0:
        raise ValueError("no values to score")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise ValueError("targets and predictions must be finite")
    bound = t > bound_threshold
    n_bound = int(bound.sum())
    auprc = float(skm.average_precision_score(bound, p)) if 0 < n_bound < t.size else math.nan
    spearman = math.nan
    if t.size >= 2 and np.ptp(t) > 0 and np.ptp(p) > 0:
        spearman = float(stats.spearmanr(t, p).statistic)
    return {
        "pearson_r": pearson_r(t, p),
        "spearman_r": spearman,
        "mse": float(np.mean((t - p) ** 2)),
        "auprc_bound": auprc,
        "bound_fraction": n_bound / t.size,
        "n": int(t.size),
    }


def classification_metrics(
    y_true: Sequence | np.ndarray,
    y_pred: Sequence | np.ndarray,
    labels: Sequence | None = None,
    train_labels: Sequence | np.ndarray | None = None,
) -> dict[str, Any]:
    """Classification metrics of predicted against true class labels.

    `labels` fixes the class order of ``per_class_recall`` and ``confusion_matrix`` (rows =
    true class, columns = predicted class); default: the sorted union of the labels seen.
    Classes in `labels` that never occur get recall nan.

    Chance levels, both reported because they answer different questions:

    - ``chance_majority``: the accuracy of always predicting the majority class. The
      majority class is taken from `train_labels` when given (what a model could have
      learnt without looking at a sequence), else from `y_true`; its rate is measured
      on `y_true`. On a balanced set it equals ``chance_uniform``.
    - ``chance_uniform``: 1 / number of classes, the expected accuracy of guessing
      uniformly at random.
    """
    # lazy: scikit-learn (~1 s) loads only in the jobs that compute metrics
    from sklearn import metrics as skm

    yt = np.asarray(y_true).astype(str)
    yp = np.asarray(y_pred).astype(str)
    if yt.shape != yp.shape or yt.ndim != 1:
        raise ValueError(f"y_true {yt.shape} and y_pred {yp.shape} must be 1-D of equal length")
    if yt.size == 0:
        raise ValueError("no examples to score")
    order = [str(x) for x in labels] if labels is not None else sorted(set(yt) | set(yp))
    unknown = (set(yt) | set(yp)) - set(order)
    if unknown:
        raise ValueError(f"labels {sorted(unknown)[:5]} are not in the label list {order}")
    cm = skm.confusion_matrix(yt, yp, labels=order)
    support = cm.sum(axis=1)
    recall = {
        lab: (float(cm[i, i] / support[i]) if support[i] else math.nan)
        for i, lab in enumerate(order)
    }
    ref = np.asarray(train_labels).astype(str) if train_labels is not None else yt
    values, counts = np.unique(ref, return_counts=True)
    majority = str(values[np.argmax(counts)])  # ties: the first in sorted order
    with warnings.catch_warnings():  # one class only: sklearn warns and returns MCC 0
        warnings.simplefilter("ignore", UserWarning)
        mcc = float(skm.matthews_corrcoef(yt, yp))
    seen = set(yt) | set(yp)
    present = [lab for lab in order if lab in seen]  # sklearn's default set, in our order
    return {
        "accuracy": float(np.mean(yt == yp)),
        "macro_f1": float(skm.f1_score(yt, yp, labels=present, average="macro", zero_division=0)),
        "mcc": mcc,
        "per_class_recall": recall,
        "labels": order,
        "confusion_matrix": cm.tolist(),
        "majority_class": majority,
        "chance_majority": float(np.mean(yt == majority)),
        "chance_uniform": 1.0 / len(order),
        "n": int(yt.size),
    }


def to_jsonable(obj: Any) -> Any:
    """Recursively turn numpy scalars/arrays into Python values and non-finite floats into
    None, so that json.dump writes valid JSON (no NaN/Infinity tokens)."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_metrics_json(
    path: str | os.PathLike,
    *,
    model: str,
    tokenizer: str,
    regime: str,
    trainable_params: int,
    total_params: int,
    wall_time_s: float,
    n_test: int,
    metrics: Mapping[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """Write the metrics.json of one fine-tuning or baseline run (atomically) and return it.

    model: the model's name (e.g. "onehot_cnn", "kmer_logreg", a pretrained model's name);
    tokenizer: "onehot", "kmer{k}" or the tokenizer name; regime: "baseline", "frozen",
    "full", ...; metrics: the dict of :func:`regression_metrics` or
    :func:`classification_metrics` on the test split. `extra` keys (task, kind, seed,
    config, best_epoch, ...) follow the fixed keys."""
    record = {
        "model": model,
        "tokenizer": tokenizer,
        "regime": regime,
        "trainable_params": int(trainable_params),
        "total_params": int(total_params),
        "wall_time_s": float(wall_time_s),
        "n_test": int(n_test),
        "metrics": dict(metrics),
        **extra,
    }
    record = to_jsonable(record)
    with atomic_write(path) as fh:
        json.dump(record, fh, indent=1, allow_nan=False)
        fh.write("\n")
    return record
