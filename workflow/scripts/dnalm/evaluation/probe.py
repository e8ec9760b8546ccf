"""Linear probes, k-mer baseline, UMAP and figures for sequence embeddings.

The species probe of the Nucleotide Transformer post, for any embedded model: a multinomial
logistic regression reads one mean-pooled embedding per CDS fragment and predicts the
species; its held-out accuracy, set against chance, says how much species information the
representation carries in linearly readable form. A k-mer frequency vector of the same
fragment, probed the same way, is the baseline any learned representation has to beat
(species differ in GC content and codon usage, which 3- and 4-mers already capture).

Probe protocol (:func:`fit_probe`), chosen so that nothing about the test split leaks into the
fitted probe:

* features are standardised by a ``StandardScaler`` fitted on the training rows only (inside
  each cross-validation fold on that fold's training part, then on the whole training split);
* the inverse regularisation strength ``C`` is chosen by stratified, seeded k-fold
  cross-validation on the training split (accuracy), the probe is refitted on the whole
  training split with that ``C``, and the test split is predicted once;
* reported: accuracy, macro-F1, balanced accuracy, per-class recall, the confusion matrix
  (rows true, columns predicted, classes sorted), chance = 1 / number of classes and the
  majority rate (test accuracy of always answering the most frequent training class).

UMAP (:func:`umap_coords`) follows the post: 15 neighbours, cosine metric, a fixed seed
(with a seed, umap-learn runs single-threaded and is reproducible), on the test embeddings.

Figures are drawn on ``matplotlib.figure.Figure`` objects (no pyplot state, no GUI backend),
sized for a paper column or page width with 8-10 pt text, and written as PNG and
SVG, each atomically, in the one style of :mod:`dnalm.report.style`.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnalm.core.alphabet import kmer_frequencies
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_write
from dnalm.core.stats import (
    INTERVAL_COLUMNS,
    accuracy_stats,
    bootstrap,
    paired_bootstrap,
)
from dnalm.core.umap2d import umap_2d
from dnalm.evaluation.calibration import from_probabilities
from dnalm.evaluation.embeddings import REGIMES, load_embeddings, read_table
from dnalm.evaluation.probe_kinds import DEFAULT_CS, PROBE_KINDS, make_search_space

log = logging.getLogger(__name__)

DEFAULT_K = 4
TABLE_COLUMNS = (
    "model",
    "tokenizer",
    "objective",
    "regime",
    "layer",
    "pooling",
    "probe_kind",
    "accuracy",
    "macro_f1",
    "ece",
    "chance",
    "majority_rate",
    "n_classes",
    "n_train",
    "n_test",
    "n_features",
    "best_C",
    "metrics_file",
)
#: A row of the table is identified by these columns (append replaces a row with the same key).
TABLE_KEY = ("model", "regime", "layer", "pooling", "probe_kind")

# ----------------------------------------------------------------------------- probe


@dataclass
class ProbeResult:
    """A fitted probe: the metrics dict, the sklearn pipeline and the test predictions."""

    metrics: dict[str, Any]
    model: Any  # sklearn Pipeline(StandardScaler, classifier)
    y_pred: np.ndarray
    proba: np.ndarray | None = None  # (n_test, n_classes), classes sorted


def fit_probe(
    x_train: np.ndarray,
    y_train: Sequence[str] | np.ndarray,
    x_test: np.ndarray,
    y_test: Sequence[str] | np.ndarray,
    *,
    cs: Sequence[float] | None = None,
    kind: str = "logreg",
    cv_folds: int = 5,
    seed: int = 0,
    max_iter: int = 2000,
    n_jobs: int | None = None,
) -> ProbeResult:
    """Standardise, choose the `kind`'s hyperparameter (C for logreg and svm;
    :mod:`dnalm.evaluation.probe_kinds`) by stratified CV on the training rows, refit, score
    the test rows, and measure the calibration of the test probabilities (``ece``,
    ``calibration``: :mod:`dnalm.evaluation.calibration`).

    `x_*` are (N, D) feature matrices and `y_*` class labels. Raises InputFormatError when
    fewer than two classes are present, a class has fewer than two training rows (no CV
    possible) or the test split has a class the probe never saw."""
    # lazy: scikit-learn (~1 s) is imported only when a model is fitted
    from sklearn.exceptions import ConvergenceWarning

    # lazy: scikit-learn (~1 s) is imported only when a model is fitted
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        recall_score,
    )

    # lazy: scikit-learn (~1 s) is imported only when a model is fitted
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    x_train = np.asarray(x_train, dtype=np.float64)
    x_test = np.asarray(x_test, dtype=np.float64)
    y_train = np.asarray(y_train).astype(str)
    y_test = np.asarray(y_test).astype(str)
    if x_train.ndim != 2 or x_test.ndim != 2 or x_train.shape[1] != x_test.shape[1]:
        raise InputFormatError(
            f"probe features must be 2-D with the same width: train {x_train.shape}, "
            f"test {x_test.shape}"
        )
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise InputFormatError("probe features and labels differ in length")
    classes, counts = np.unique(y_train, return_counts=True)
    if len(classes) < 2:
        raise InputFormatError(f"the training split has {len(classes)} class(es); need two")
    if counts.min() < 2:
        raise InputFormatError(
            f"class {classes[counts.argmin()]!r} has {counts.min()} training row(s); "
            "cross-validation needs at least two per class"
        )
    if len(y_test) == 0:
        raise InputFormatError("the test split is empty")
    unseen = sorted(set(y_test) - set(classes))
    if unseen:
        raise InputFormatError(
            f"test labels {unseen[:5]} never occur in the training split; the probe cannot "
            "predict them"
        )
    folds = int(min(cv_folds, counts.min()))
    if folds < 2:
        raise ConfigError(f"cv_folds must be at least 2, got {cv_folds}")
    if kind not in PROBE_KINDS:
        raise ConfigError(f"unknown probe kind {kind!r}; use one of {list(PROBE_KINDS)}")
    pipe, param, grid = make_search_space(
        kind, cs=cs, seed=seed, max_iter=max_iter, min_class_count=int(counts.min())
    )
    search = GridSearchCV(
        pipe,
        {param: grid},
        cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed),
        scoring="accuracy",
        refit=True,
        n_jobs=n_jobs,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        search.fit(x_train, y_train)
    n_conv = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    if n_conv:
        log.warning("probe: %d fit(s) hit max_iter=%d before converging", n_conv, max_iter)
    y_pred = search.predict(x_test)
    proba = search.predict_proba(x_test)
    labels = list(classes)
    model_classes = [str(c) for c in search.best_estimator_.classes_]
    if model_classes != labels:  # predict_proba's columns follow the fitted classes_
        proba = proba[:, [model_classes.index(c) for c in labels]]
    calib = from_probabilities(y_test, labels, proba)
    by_param = {
        repr(v.item() if hasattr(v, "item") else v): float(sc)
        for v, sc in zip(
            search.cv_results_[f"param_{param}"], search.cv_results_["mean_test_score"], strict=True
        )
    }
    short = param.rsplit("__", 1)[1]
    recall = recall_score(y_test, y_pred, labels=labels, average=None, zero_division=0)
    majority = classes[counts.argmax()]
    present = [c for c in labels if c in set(y_test)]
    metrics = {
        "accuracy": float(accuracy_score(y_test, y_pred)),
        "macro_f1": float(f1_score(y_test, y_pred, labels=present, average="macro")),
        "balanced_accuracy": float(balanced_accuracy_score(y_test, y_pred)),
        "chance": 1.0 / len(classes),
        "majority_class": str(majority),
        "majority_rate": float(np.mean(y_test == majority)),
        "n_classes": len(classes),
        "classes": labels,
        "per_class_recall": {c: float(r) for c, r in zip(labels, recall, strict=True)},
        "confusion_matrix": confusion_matrix(y_test, y_pred, labels=labels).tolist(),
        "probe_kind": kind,
        "best_params": {short: search.best_params_[param]},
        "best_C": float(search.best_params_[param]) if short == "C" else None,
        "cv_accuracy": float(search.best_score_),
        f"cv_accuracy_by_{short}": by_param,
        "ece": calib["ece"],
        "calibration": calib,
        "cv_folds": folds,
        "seed": seed,
        "convergence_warnings": n_conv,
        "n_train": len(y_train),
        "n_test": len(y_test),
        "n_features": int(x_train.shape[1]),
    }
    return ProbeResult(metrics, search.best_estimator_, y_pred, proba)


def _split_rows(split: np.ndarray, train_splits: Sequence[str], test_split: str, where: str):
    train = np.isin(split, list(train_splits))
    test = split == test_split
    if not train.any():
        raise InputFormatError(f"{where}: no rows in training split(s) {list(train_splits)}")
    if not test.any():
        raise InputFormatError(f"{where}: no rows in test split {test_split!r}")
    if test_split in train_splits:
        raise ConfigError(f"test split {test_split!r} is also a training split")
    return train, test


def _tokenizer_label(meta: Mapping[str, Any]) -> str:
    if meta.get("tokenizer_name"):
        return str(meta["tokenizer_name"])
    tok = meta.get("tokenizer")
    if isinstance(tok, Mapping):
        spec = tok.get("spec") or {}
        if tok.get("type"):
            k = spec.get("k")
            return f"{tok['type']}{k}" if k else str(tok["type"])
        return str(tok.get("class", ""))
    return "" if tok is None else str(tok)


def _test_items(ids, labels, predicted) -> dict[str, list]:
    """The test fragments and whether the probe got each right: what the table's bootstrap
    intervals resample."""
    correct = np.asarray(labels).astype(str) == np.asarray(predicted).astype(str)
    return {"id": [str(i) for i in ids], "correct": correct.astype(int).tolist()}


def _write_metrics(out_json: str | os.PathLike | None, metrics: dict[str, Any]) -> None:
    if out_json is not None:
        with atomic_write(out_json) as fh:
            fh.write(json.dumps(metrics, indent=2, default=str) + "\n")


def probe_embeddings(
    npz_path: str | os.PathLike,
    out_json: str | os.PathLike | None = None,
    *,
    train_splits: Sequence[str] = ("train",),
    test_split: str = "test",
    meta: Mapping[str, Any] | None = None,
    **probe_kwargs: Any,
) -> dict[str, Any]:
    """Probe the embeddings of one model (a :func:`dnalm.evaluation.embed.embed_table` output) and
    write
    the metrics JSON: the probe metrics plus model, tokenizer, objective, regime, layer and
    pooling taken from the sidecar (`meta` overrides them). Returns the metrics."""
    emb = load_embeddings(npz_path)
    train, test = _split_rows(emb.split, train_splits, test_split, str(npz_path))
    res = fit_probe(
        emb.embeddings[train], emb.labels[train], emb.embeddings[test], emb.labels[test],
        **probe_kwargs,
    )  # fmt: skip
    side = {**emb.meta, **dict(meta or {})}
    metrics = {
        "model": side.get("model", Path(npz_path).stem),
        "tokenizer": _tokenizer_label(side),
        "objective": side.get("objective", ""),
        "regime": side.get("regime", ""),
        "layer": side.get("layer"),
        "pooling": side.get("pooling", ""),
        "probe_input": "embeddings",
        "embeddings": str(npz_path),
        "train_splits": list(train_splits),
        "test_split": test_split,
        **res.metrics,
        "test_items": _test_items(emb.ids[test], emb.labels[test], res.y_pred),
    }
    _write_metrics(out_json, metrics)
    log.info(
        "probe %s (%s): accuracy %.3f (chance %.3f, majority %.3f)",
        metrics["model"], metrics["regime"], metrics["accuracy"], metrics["chance"],
        metrics["majority_rate"],
    )  # fmt: skip
    return metrics


def probe_kmer(
    table: pd.DataFrame | str | os.PathLike,
    out_json: str | os.PathLike | None = None,
    *,
    k: int = DEFAULT_K,
    train_splits: Sequence[str] = ("train",),
    test_split: str = "test",
    meta: Mapping[str, Any] | None = None,
    **probe_kwargs: Any,
) -> dict[str, Any]:
    """The same probe on overlapping k-mer frequency vectors of the task table's sequences
    (the baseline row of the probe table). Returns the metrics, also written to `out_json`."""
    df = read_table(table)
    split = df["split"].to_numpy(dtype=str)
    train, test = _split_rows(split, train_splits, test_split, str(table))
    feats = kmer_frequencies(df["sequence"].tolist(), k=k)
    labels = df["label"].to_numpy(dtype=str)
    res = fit_probe(feats[train], labels[train], feats[test], labels[test], **probe_kwargs)
    metrics = {
        "model": f"{k}-mer frequencies",
        "tokenizer": f"kmer_overlapping{k}",
        "objective": "none",
        "regime": "kmer-baseline",
        "layer": None,
        "pooling": "frequency",
        "probe_input": "kmer",
        "k": k,
        "train_splits": list(train_splits),
        "test_split": test_split,
        **dict(meta or {}),
        **res.metrics,
        "test_items": _test_items(df["id"].to_numpy(dtype=str)[test], labels[test], res.y_pred),
    }
    _write_metrics(out_json, metrics)
    log.info("probe %d-mer baseline: accuracy %.3f", k, metrics["accuracy"])
    return metrics


# ----------------------------------------------------------------------------- table


def _row(metrics: Mapping[str, Any], source: str) -> dict[str, Any]:
    missing = [c for c in ("model", "regime", "accuracy", "macro_f1", "chance") if c not in metrics]
    if missing:
        raise InputFormatError(f"{source}: not a probe metrics file (missing {missing})")
    if metrics["regime"] not in REGIMES:
        raise InputFormatError(
            f"{source}: regime {metrics['regime']!r} is not one of {list(REGIMES)}"
        )
    row = {c: metrics.get(c) for c in TABLE_COLUMNS}
    row["probe_kind"] = metrics.get("probe_kind") or "logreg"  # files from before the kinds
    row["metrics_file"] = source
    return row


def _finish_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    df["layer"] = df["layer"].astype("Int64")
    df["probe_kind"] = df["probe_kind"].fillna("logreg")
    regime_order = {r: i for i, r in enumerate(REGIMES)}
    kind_order = {k: i for i, k in enumerate(PROBE_KINDS)}
    df = df.assign(_k=df["probe_kind"].map(kind_order), _r=df["regime"].map(regime_order))
    df = df.sort_values(
        ["_k", "_r", "model", "layer", "pooling"], na_position="first", kind="stable"
    )
    return df.drop(columns=["_k", "_r"]).reset_index(drop=True)


def write_table(df: pd.DataFrame, out_tsv: str | os.PathLike) -> None:
    with atomic_write(out_tsv) as fh:
        df.to_csv(fh, sep="\t", index=False, float_format="%.4f")


def read_metrics(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFormatError(f"{path}: probe metrics file not found") from None
    except json.JSONDecodeError as err:
        raise InputFormatError(f"{path}: not valid JSON ({err})") from err


def assemble_table(
    metrics_files: Iterable[str | os.PathLike],
    out_tsv: str | os.PathLike | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per probe metrics JSON (embedded models and k-mer baselines), in a fixed order
    (regime, model, layer), with bootstrap intervals (add_probe_intervals); written as TSV
    when `out_tsv` is given (:func:`write_table`; the layer probe's columns are added by
    :func:`dnalm.evaluation.layer_probe.add_best_layers` before it is written)."""
    files = [str(p) for p in metrics_files]
    rows = [_row(read_metrics(p), p) for p in files]
    df = _finish_table(rows)
    df = add_probe_intervals(df, n_boot=n_boot, seed=seed)
    if out_tsv is not None:
        write_table(df, out_tsv)
    return df


def append_to_table(metrics_file: str | os.PathLike, table_tsv: str | os.PathLike) -> pd.DataFrame:
    """Add one probe's row to a table TSV (created if absent), replacing a row with the same
    model, regime, layer and pooling."""
    new = _row(read_metrics(metrics_file), str(metrics_file))
    rows: list[dict[str, Any]] = []
    if Path(table_tsv).is_file():
        old = pd.read_csv(table_tsv, sep="\t", keep_default_na=False, na_values=[""])
        old["layer"] = old["layer"].astype("Int64")
        if "probe_kind" not in old:
            old["probe_kind"] = "logreg"
        key = tuple(new[c] for c in TABLE_KEY)
        for rec in old.to_dict("records"):
            rec_key = tuple(None if pd.isna(rec[c]) else rec[c] for c in TABLE_KEY)
            if rec_key != key:
                rows.append(rec)
    rows.append(new)
    df = _finish_table(rows)
    write_table(df, table_tsv)
    return df


PROBE_CI_COLUMNS = ("metric", *INTERVAL_COLUMNS)


def add_probe_intervals(
    df: pd.DataFrame,
    n_boot: int = 1000,
    seed: int = 0,
    test_items: Mapping[int, Mapping[str, list]] | None = None,
) -> pd.DataFrame:
    """The table with the percentile bootstrap 95% CI of each row's test accuracy over test
    fragments, and each row's paired bootstrap CI of its accuracy difference to the best
    k-mer baseline of the same probe kind on the same fragments (dnalm.core.stats).
    `test_items`: each row's ``{"id", "correct"}`` by row position (default: read from the
    row's metrics file). Rows without them (files written before they existed) get empty
    intervals."""
    out = df.copy().reset_index(drop=True)
    for column in PROBE_CI_COLUMNS:
        out[column] = np.nan
    out["metric"] = "accuracy over test fragments"
    items = {}
    for i in range(len(out)):
        if not n_boot:
            continue
        if test_items is not None:
            got = test_items.get(i)
        else:
            got = read_metrics(out.loc[i, "metrics_file"]).get("test_items")
        if got:
            items[i] = pd.Series(got["correct"], index=got["id"], dtype=float)
    kinds = out["probe_kind"] if "probe_kind" in out else pd.Series("logreg", index=out.index)
    kinds = kinds.fillna("logreg").astype(str)
    best_of: dict[str, int | None] = {}
    out["best_baseline"] = ""
    for kind in kinds.unique():
        base = out[
            (out["regime"] == "kmer-baseline") & (kinds == kind) & out.index.isin(list(items))
        ]
        best_of[kind] = int(base["accuracy"].astype(float).idxmax()) if len(base) else None
        if best_of[kind] is not None:
            out.loc[kinds == kind, "best_baseline"] = str(out.loc[best_of[kind], "model"])
    for i, correct in items.items():
        best = best_of[kinds[i]]
        ci = bootstrap(accuracy_stats(correct.to_numpy()), "accuracy", n_boot, seed=seed)
        out.loc[i, ["ci95_low", "ci95_high"]] = [ci.low, ci.high]
        if best is None or i == best:
            continue
        shared = correct.index.intersection(items[best].index)
        if shared.empty:
            log.warning("%s: no test fragment in common with the baseline", out.loc[i, "model"])
            continue
        a = accuracy_stats(correct.loc[shared].to_numpy())
        b = accuracy_stats(items[best].loc[shared].to_numpy())
        _, _, diff = paired_bootstrap(a, b, "accuracy", n_boot, seed=seed)
        out.loc[i, ["delta_vs_best_baseline", "delta_ci95_low", "delta_ci95_high"]] = [
            diff.estimate,
            diff.low,
            diff.high,
        ]
    return out


# ----------------------------------------------------------------------------- UMAP


def umap_coords(
    embeddings: np.ndarray,
    ids: Sequence[str],
    labels: Sequence[str],
    *,
    n_neighbors: int = 15,
    metric: str = "cosine",
    min_dist: float = 0.1,
    seed: int = 42,
) -> pd.DataFrame:
    """2-D UMAP of `embeddings` (N, D) -> DataFrame(id, species, x, y), reproducible for a
    given seed. With fewer than `n_neighbors` + 1 points the neighbourhood shrinks to N - 1."""
    xy = umap_2d(embeddings, n_neighbors=n_neighbors, metric=metric, min_dist=min_dist, seed=seed)
    return pd.DataFrame(
        {
            "id": np.asarray(ids, dtype=str),
            "species": np.asarray(labels, dtype=str),
            "x": xy[:, 0].astype(np.float64),
            "y": xy[:, 1].astype(np.float64),
        }
    )


def umap_from_npz(
    npz_path: str | os.PathLike,
    out_tsv: str | os.PathLike | None = None,
    *,
    split: str = "test",
    max_points: int | None = None,
    seed: int = 42,
    **umap_kwargs: Any,
) -> pd.DataFrame:
    """UMAP of one split of an embeddings file, written as TSV (id, species, x, y).
    `max_points` keeps a seeded random subset (same rows for every model embedding the same
    table, so panels are comparable)."""
    emb = load_embeddings(npz_path).subset(split)
    if len(emb.ids) == 0:
        raise InputFormatError(f"{npz_path}: no rows in split {split!r}")
    if max_points is not None and len(emb.ids) > max_points:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(emb.ids), size=max_points, replace=False))
        emb.ids, emb.labels = emb.ids[keep], emb.labels[keep]
        emb.embeddings = emb.embeddings[keep]
    df = umap_coords(emb.embeddings, emb.ids, emb.labels, seed=seed, **umap_kwargs)
    if out_tsv is not None:
        with atomic_write(out_tsv) as fh:
            df.to_csv(fh, sep="\t", index=False, float_format="%.6g")
    return df


def umaps_from_npz(
    npz_paths: Sequence[str | os.PathLike],
    out_tsvs: Sequence[str | os.PathLike],
    **kwargs: Any,
) -> list[pd.DataFrame]:
    """:func:`umap_from_npz` of several embeddings files in turn, in this one process (the
    workflow's ``umap`` job): umap-learn's import and numba's compilation, most of a small
    map's CPU, are paid once instead of once per map. Each map is the one
    :func:`umap_from_npz` gives alone with the same settings (the seed is per map), bit for
    bit (``tests/test_evaluation_probe.py``)."""
    if len(npz_paths) != len(out_tsvs):
        raise ConfigError(f"{len(npz_paths)} embeddings files but {len(out_tsvs)} UMAP tables")
    return [umap_from_npz(npz, out, **kwargs) for npz, out in zip(npz_paths, out_tsvs, strict=True)]


def read_coords(path: str | os.PathLike) -> pd.DataFrame:
    """Read a UMAP coordinates TSV written by :func:`umap_from_npz`."""
    df = pd.read_csv(path, sep="\t", dtype={"id": str, "species": str})
    missing = {"id", "species", "x", "y"} - set(df.columns)
    if missing:
        raise InputFormatError(f"{path}: not a UMAP coordinates table (missing {missing})")
    return df


__all__ = [
    "DEFAULT_CS",
    "PROBE_KINDS",
    "TABLE_COLUMNS",
    "ProbeResult",
    "append_to_table",
    "assemble_table",
    "fit_probe",
    "probe_embeddings",
    "probe_kmer",
    "read_coords",
    "read_metrics",
    "umap_coords",
    "umap_from_npz",
    "umaps_from_npz",
    "write_table",
]
