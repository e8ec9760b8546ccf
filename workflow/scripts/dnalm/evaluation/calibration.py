"""Calibration of classifiers: reliability diagram bins and expected calibration error (ECE).

Definitions (top-label calibration, the usual one for multi-class classifiers):

* each test item's *confidence* is its largest predicted class probability and it is
  *correct* when that class (the argmax) is the true label;
* the confidences are cut into ``n_bins`` **equal-width** bins over [0, 1] (default
  :data:`DEFAULT_BINS` = 15; bin ``b`` holds confidences in ``(b/n, (b+1)/n]``, the first bin
  also holds 0);
* ECE = sum over bins of (items in the bin / all items) x |accuracy in the bin - mean
  confidence in the bin|. 0 is perfect calibration; a classifier that is always 100% sure
  and right half the time has ECE 0.5.

ECE is a biased estimator: on a finite test set even a perfectly calibrated classifier gets
a small positive value (of order sqrt(n_bins / n)), so compare ECE between classifiers scored
on the same test items.

:func:`reliability` returns the bins (the reliability diagram's points) and the ECE;
:func:`from_predictions_tsv` reads a fine-tuning run's ``predictions.tsv`` (``p_<class>``
columns) and :func:`from_probabilities` takes labels, classes and a probability matrix.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dnalm.core.errors import InputFormatError
from dnalm.core.io import read_json_object
from dnalm.core.predictions import read_sequence

#: Equal-width confidence bins over [0, 1] of the reliability diagram and of the ECE.
DEFAULT_BINS = 15


def reliability(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = DEFAULT_BINS
) -> dict[str, Any]:
    """Reliability bins and ECE of top-label `confidence` (N,) in [0, 1] and `correct` (N,)
    booleans. Returns ``{"ece", "n_bins", "n", "bins": [{"low", "high", "count",
    "confidence", "accuracy"}, ...]}`` (empty bins are listed with count 0 and NaN means)."""
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    hit = np.asarray(correct, dtype=np.float64).ravel()
    if conf.shape != hit.shape:
        raise InputFormatError(f"confidence {conf.shape} and correct {hit.shape} differ in length")
    if len(conf) == 0:
        raise InputFormatError("calibration needs at least one prediction")
    if not np.all(np.isfinite(conf)) or conf.min() < 0 or conf.max() > 1 + 1e-9:
        raise InputFormatError("confidences must be finite probabilities in [0, 1]")
    if n_bins < 1:
        raise InputFormatError(f"n_bins must be >= 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bin b holds (edges[b], edges[b+1]]; 0 goes to the first bin
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        sel = which == b
        count = int(sel.sum())
        c = float(conf[sel].mean()) if count else float("nan")
        a = float(hit[sel].mean()) if count else float("nan")
        if count:
            ece += count / len(conf) * abs(a - c)
        bins.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": count,
                "confidence": c,
                "accuracy": a,
            }
        )
    return {"ece": float(ece), "n_bins": int(n_bins), "n": len(conf), "bins": bins}


def from_probabilities(
    labels: Sequence[str] | np.ndarray,
    classes: Sequence[str],
    prob: np.ndarray,
    n_bins: int = DEFAULT_BINS,
) -> dict[str, Any]:
    """Reliability of a probability matrix `prob` (N, len(classes)) against true `labels`."""
    prob = np.asarray(prob, dtype=np.float64)
    labels = np.asarray(labels).astype(str)
    classes = [str(c) for c in classes]
    if prob.ndim != 2 or prob.shape != (len(labels), len(classes)):
        raise InputFormatError(
            f"probabilities {prob.shape} do not match {len(labels)} labels x {len(classes)} classes"
        )
    top = prob.argmax(axis=1)
    predicted = np.asarray(classes)[top]
    return reliability(prob[np.arange(len(prob)), top], predicted == labels, n_bins)


def from_predictions_tsv(path: str | os.PathLike, n_bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Reliability of a classification run's ``predictions.tsv`` (``p_<class>`` columns, as
    :mod:`dnalm.core.predictions` describes). Names the file when it has no probabilities."""
    df = read_sequence(path)
    cols = [c for c in df.columns if c.startswith("p_")]
    if not cols:
        raise InputFormatError(
            f"{path}: no class-probability columns (p_<class>); calibration needs them"
        )
    prob = df[cols].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(prob)):
        raise InputFormatError(f"{path}: non-finite class probabilities")
    return from_probabilities(df["label"].astype(str), [c[2:] for c in cols], prob, n_bins)


__all__ = ["DEFAULT_BINS", "from_predictions_tsv", "from_probabilities", "reliability"]


def probe_table_curves(table_tsv: str | os.PathLike) -> dict[str, list[tuple[str, dict]]]:
    """{probe kind: [(row label, calibration dict)]} of a probe table's rows, read from each
    row's metrics file (rows whose file has no ``calibration``, written before it existed,
    are left out), for :func:`dnalm.report.calibration_plots.plot_reliability`."""
    df = pd.read_csv(table_tsv, sep="\t", keep_default_na=False, na_values=[""])
    if "metrics_file" not in df:
        raise InputFormatError(f"{table_tsv}: not a probe table (no metrics_file column)")
    out: dict[str, list[tuple[str, dict]]] = {}
    for rec in df.to_dict("records"):
        kind = str(rec.get("probe_kind") or "logreg")
        calib = read_json_object(rec["metrics_file"], "a probe row's metrics").get("calibration")
        if calib:
            out.setdefault(kind, []).append((f"{rec['model']} ({rec['regime']})", calib))
    return out


__all__ += ["probe_table_curves"]
