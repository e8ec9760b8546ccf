"""The k-mer baseline of the fine-tuning stage: overlapping k-mer frequencies and a linear
model (logistic regression for classes, ridge regression for sequence values), as described
in :mod:`dnalm.finetuning.baselines`.

torch-free (scikit-learn only), so the k-mer baseline job does not load torch.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnalm.core.alphabet import kmer_frequencies_sparse
from dnalm.core.artifacts import METRICS_JSON, PREDICTIONS_TSV, SELECTION_CSV
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_write
from dnalm.core.metrics import classification_metrics, regression_metrics, write_metrics_json
from dnalm.finetuning.tables import class_labels, save_predictions_tsv, task_kind
from dnalm.kinds.tasks import TASK_KINDS


def _select_on_grid(
    make: Callable[[float], Any],
    grid: list[float],
    name: str,
    X: Mapping[str, Any],
    y: Mapping[str, np.ndarray],
    score: Callable[[np.ndarray, np.ndarray], float],
    score_name: str,
    splitter: type,
    seed: int,
    folds: int = 5,
) -> tuple[float, list[dict[str, Any]]]:
    """Pick the grid value whose model (fitted on train) scores best: on the validation
    split when there is one, else averaged over `folds` (stratified) CV folds of train.
    Ties go to the first (most regularised) value. Returns (best, one row per value)."""
    rows: list[dict[str, Any]] = []
    if "validation" in X:
        for v in grid:
            m = make(v).fit(X["train"], y["train"])
            rows.append(
                {
                    name: v,
                    f"validation_{score_name}": score(y["validation"], m.predict(X["validation"])),
                }
            )
    else:
        cv = splitter(n_splits=folds, shuffle=True, random_state=seed)
        splits = list(cv.split(np.zeros(len(y["train"])), y["train"]))
        for v in grid:
            vals = []
            for tr, va in splits:
                m = make(v).fit(X["train"][tr], y["train"][tr])
                vals.append(score(y["train"][va], m.predict(X["train"][va])))
            rows.append({name: v, f"cv{folds}_{score_name}": float(np.mean(vals))})
    key = next(k for k in rows[0] if k != name)
    finite = [r for r in rows if math.isfinite(r[key])]
    best = max(finite, key=lambda r: r[key])[name] if finite else grid[0]
    return float(best), rows


def run_kmer_baseline(
    df: pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    k: int = 4,
    kind: str | None = None,
    labels: Sequence[str] | None = None,
    Cs: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0),
    alphas: Sequence[float] = (1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0),
    seed: int = 0,
    task: str | None = None,
) -> dict[str, Any]:
    """k-mer frequencies + linear model on a task table; writes selection.csv (the
    validation score of every C or alpha tried), predictions.tsv and metrics.json to
    `out_dir` and returns the metrics.json record.

    Classification: StandardScaler (no centring, the features are sparse) + logistic
    regression (lbfgs, the multinomial/softmax loss for more than two classes); C chosen
    by validation macro-F1, or by 5-fold stratified CV on train when the table has no
    validation rows. Sequence regression: the same with ridge regression and validation
    Pearson r. The chosen model is the one fitted on train only (validation only selects),
    as for the CNN. Per-base regression is refused: a bag of k-mers has no positions."""
    # lazy: scikit-learn (~1 s) is imported only when a model is fitted
    from sklearn.linear_model import LogisticRegression, Ridge

    # lazy: scikit-learn (~1 s) is imported only when a model is fitted
    from sklearn.model_selection import KFold, StratifiedKFold

    # lazy: scikit-learn (~1 s) is imported only when a model is fitted
    from sklearn.pipeline import make_pipeline

    # lazy: scikit-learn (~1 s) is imported only when a model is fitted
    from sklearn.preprocessing import StandardScaler

    t_start = time.perf_counter()
    kind = task_kind(df, kind)
    if TASK_KINDS.get(kind).per_base:
        raise ConfigError(
            "the k-mer baseline cannot predict per base (a k-mer frequency vector has no "
            "positions); use the one-hot CNN baseline for per-base tasks"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    has_val = bool((df["split"] == "validation").any())
    parts = {
        s: df[df["split"] == s].reset_index(drop=True) for s in ("train", "validation", "test")
    }
    for s in ("train", "test"):
        if parts[s].empty:
            raise InputFormatError(f"the task table has no {s} rows")
    X = {s: kmer_frequencies_sparse(list(p["sequence"]), k) for s, p in parts.items() if len(p)}
    parts = {s: p for s, p in parts.items() if len(p)}
    selection: list[dict[str, Any]] = []
    test = parts["test"]

    if TASK_KINDS.get(kind).classes:
        order = class_labels(df, labels)
        y = {s: p["label"].astype(str).to_numpy() for s, p in parts.items()}

        def make(c: float):
            return make_pipeline(
                StandardScaler(with_mean=False),
                LogisticRegression(C=c, max_iter=2000, random_state=seed),
            )

        def score(yt: np.ndarray, yp: np.ndarray) -> float:
            return classification_metrics(yt, yp)["macro_f1"]

        best_c, selection = _select_on_grid(
            make, list(Cs), "C", X, y, score, "macro_f1", StratifiedKFold, seed
        )
        model = make(best_c).fit(X["train"], y["train"])
        lr = model[-1]
        prob_raw = model.predict_proba(X["test"])
        classes = list(lr.classes_)
        prob = np.zeros((len(test), len(order)))
        for j, lab in enumerate(order):
            if lab in classes:
                prob[:, j] = prob_raw[:, classes.index(lab)]
        pred = model.predict(X["test"])
        metrics = classification_metrics(y["test"], pred, order, y["train"])
        table = pd.DataFrame({"id": test["id"], "label": test["label"], "predicted": pred})
        for j, lab in enumerate(order):
            table[f"p_{lab}"] = prob[:, j]
        n_params = int(lr.coef_.size + lr.intercept_.size)
        chosen = {"C": best_c}
        name = "kmer_logreg"
    else:
        y = {s: p["label"].astype(float).to_numpy() for s, p in parts.items()}

        def make(a: float):
            return make_pipeline(StandardScaler(with_mean=False), Ridge(alpha=a))

        def score(yt: np.ndarray, yp: np.ndarray) -> float:
            return regression_metrics(yt, yp)["pearson_r"]

        best_a, selection = _select_on_grid(
            make, list(alphas), "alpha", X, y, score, "pearson_r", KFold, seed
        )
        model = make(best_a).fit(X["train"], y["train"])
        pred = model.predict(X["test"])
        metrics = regression_metrics(y["test"], pred)
        table = pd.DataFrame({"id": test["id"], "label": test["label"], "predicted": pred})
        n_params = int(np.size(model[-1].coef_) + np.size(model[-1].intercept_))
        chosen = {"alpha": best_a}
        name = "kmer_ridge"

    with atomic_write(out_dir / SELECTION_CSV) as fh:
        pd.DataFrame(selection).to_csv(fh, index=False, float_format="%.6g")
    save_predictions_tsv(out_dir / PREDICTIONS_TSV, table)
    return write_metrics_json(
        out_dir / METRICS_JSON,
        model=name,
        tokenizer=f"kmer{k}",
        regime="baseline",
        trainable_params=n_params,
        total_params=n_params,
        wall_time_s=time.perf_counter() - t_start,
        n_test=len(test),
        metrics=metrics,
        task=task,
        kind=kind,
        k=k,
        selection_metric="validation" if has_val else "5-fold CV on train",
        chosen=chosen,
        n_train=len(parts["train"]),
        n_validation=len(parts["validation"]) if "validation" in parts else 0,
        seed=seed,
    )
