"""The layer-wise probe: which layer and pooling of a model carry the probe task's labels in
linearly readable form (config ``probe.layers``, ``probe.pooling``, ``probe.layer_models``).

Input: a layer-wise embeddings file (:class:`dnalm.evaluation.embeddings.LayerEmbeddings`,
written by :func:`dnalm.evaluation.embed.embed_table` from the same forward passes as the
main embedding). Each (layer, pooling) is probed exactly as the main embedding is
(:func:`dnalm.evaluation.probe.fit_probe`: standardised features, the hyperparameter chosen
by stratified CV on the training split, the test split predicted once).

The best layer and pooling of a model are those of the highest cross-validated accuracy on
the training split (ties: the earlier layer, then the earlier pooling of ``probe.pooling``),
so the test split, whose accuracy is reported, does not choose them; the probe table names
them (columns ``best_layer``, ``best_pooling``, ``best_layer_accuracy``: :func:`add_best_layers`).

:func:`layer_table` gathers every model's rows with the k-mer baseline's, each with the
bootstrap CI of its test accuracy over test fragments and the paired CI of its difference to
the k-mer baseline (:func:`dnalm.evaluation.probe.add_probe_intervals`). Torch-free.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnalm.core.errors import InputFormatError
from dnalm.core.io import atomic_write
from dnalm.evaluation.embeddings import load_layer_embeddings
from dnalm.evaluation.probe import (
    _split_rows,
    _test_items,
    _tokenizer_label,
    add_probe_intervals,
    fit_probe,
    read_metrics,
    write_table,
)

log = logging.getLogger(__name__)

#: the per-row metrics kept from each probe (plus layer, pooling, probe_kind, test_items)
ROW_METRICS = (
    "accuracy",
    "macro_f1",
    "balanced_accuracy",
    "cv_accuracy",
    "ece",
    "chance",
    "majority_rate",
    "n_classes",
    "n_train",
    "n_test",
    "n_features",
    "best_C",
)
#: the layer table's columns before the interval columns
LAYER_TABLE_COLUMNS = (
    "model",
    "regime",
    "layer",
    "pooling",
    "probe_kind",
    "accuracy",
    "macro_f1",
    "cv_accuracy",
    "chance",
    "n_test",
    "best",
)
#: the columns :func:`add_best_layers` adds to the probe table
BEST_COLUMNS = ("best_layer", "best_pooling", "best_layer_accuracy")


def best_row(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The row of the highest cross-validated accuracy (the first of equal ones, in the
    order given: layer, then pooling)."""
    if not rows:
        raise InputFormatError("the layer probe has no rows")
    cv = [float(r["cv_accuracy"]) for r in rows]
    return rows[int(np.argmax(cv))]


def probe_layers(
    npz_path: str | os.PathLike,
    out_json: str | os.PathLike | None = None,
    *,
    kinds: Sequence[str] = ("logreg",),
    train_splits: Sequence[str] = ("train",),
    test_split: str = "test",
    **probe_kwargs: Any,
) -> dict[str, Any]:
    """Probe every (layer, pooling) of a layer-wise embeddings file with every probe kind of
    `kinds`; write the metrics JSON (``rows``: one per kind, layer and pooling, with the test
    items the intervals resample; ``best``: per kind, the layer and pooling of the best
    cross-validated accuracy) and return it."""
    emb = load_layer_embeddings(npz_path)
    train, test = _split_rows(emb.split, train_splits, test_split, str(npz_path))
    side = emb.meta
    rows: list[dict[str, Any]] = []
    best: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        kind_rows = []
        for layer in emb.layers.tolist():
            for pooling in emb.poolings.tolist():
                x = emb.features(layer, pooling)
                res = fit_probe(
                    x[train], emb.labels[train], x[test], emb.labels[test],
                    kind=kind, **probe_kwargs,
                )  # fmt: skip
                row = {"layer": int(layer), "pooling": str(pooling), "probe_kind": kind}
                row.update({k: res.metrics.get(k) for k in ROW_METRICS})
                row["test_items"] = _test_items(emb.ids[test], emb.labels[test], res.y_pred)
                kind_rows.append(row)
                log.info(
                    "layer probe %s: layer %d, %s pooling, %s: accuracy %.3f (CV %.3f)",
                    side.get("model", ""), layer, pooling, kind, row["accuracy"],
                    row["cv_accuracy"],
                )  # fmt: skip
        top = best_row(kind_rows)
        best[kind] = {k: top[k] for k in ("layer", "pooling", "accuracy", "cv_accuracy")}
        rows += kind_rows
    metrics = {
        "model": side.get("model", Path(npz_path).stem),
        "tokenizer": _tokenizer_label(side),
        "objective": side.get("objective", ""),
        "regime": side.get("regime", ""),
        "n_layers": side.get("n_layers"),
        "layers": emb.layers.tolist(),
        "poolings": emb.poolings.tolist(),
        "rc_average": side.get("rc_average"),
        "embeddings": str(npz_path),
        "train_splits": list(train_splits),
        "test_split": test_split,
        "selection": "highest cross-validated accuracy on the training split",
        "best": best,
        "rows": rows,
    }
    if out_json is not None:
        with atomic_write(out_json) as fh:
            fh.write(json.dumps(metrics, indent=2, default=str) + "\n")
    return metrics


def _layer_metrics(path: str) -> dict[str, Any]:
    got = read_metrics(path)
    if not isinstance(got.get("rows"), list) or "best" not in got:
        raise InputFormatError(f"{path}: not a layer-probe metrics file (no rows or best)")
    return got


def layer_table(
    layer_files: Iterable[str | os.PathLike],
    kmer_files: Iterable[str | os.PathLike] = (),
    out_tsv: str | os.PathLike | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per model, regime, layer, pooling and probe kind of the layer probes, after the
    k-mer baseline rows (`kmer_files`: probe metrics of :func:`dnalm.evaluation.probe.probe_kmer`),
    with the bootstrap CIs of the probe table; ``best`` marks each model's best layer and
    pooling (:func:`best_row`). Written as TSV when `out_tsv` is given."""
    records: list[dict[str, Any]] = []
    items: list[Mapping[str, list] | None] = []
    for path in [str(p) for p in kmer_files]:
        m = read_metrics(path)
        records.append(
            {
                "model": m["model"],
                "regime": m["regime"],
                "layer": None,
                "pooling": m.get("pooling", "frequency"),
                "probe_kind": m.get("probe_kind") or "logreg",
                **{k: m.get(k) for k in ("accuracy", "macro_f1", "cv_accuracy", "chance")},
                "n_test": m.get("n_test"),
                "best": False,
            }
        )
        items.append(m.get("test_items"))
    for path in [str(p) for p in layer_files]:
        m = _layer_metrics(path)
        for row in m["rows"]:
            top = m["best"].get(row["probe_kind"], {})
            records.append(
                {
                    "model": m["model"],
                    "regime": m["regime"],
                    **{k: row.get(k) for k in LAYER_TABLE_COLUMNS if k in row},
                    "best": (top.get("layer"), top.get("pooling"))
                    == (row["layer"], row["pooling"]),
                }
            )
            items.append(row.get("test_items"))
    df = pd.DataFrame(records, columns=list(LAYER_TABLE_COLUMNS))
    df["layer"] = df["layer"].astype("Int64")
    df = add_probe_intervals(df, n_boot=n_boot, seed=seed, test_items=dict(enumerate(items)))
    if out_tsv is not None:
        write_table(df, out_tsv)
    return df


def add_best_layers(df: pd.DataFrame, layer_files: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """The probe table `df` with the columns ``best_layer``, ``best_pooling`` and
    ``best_layer_accuracy`` (its test accuracy): on the rows of each layer-probed model and
    regime, per probe kind; empty elsewhere."""
    out = df.copy()
    out["best_layer"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    out["best_pooling"] = ""
    out["best_layer_accuracy"] = np.nan
    kinds = out["probe_kind"].fillna("logreg").astype(str)
    for path in [str(p) for p in layer_files]:
        m = _layer_metrics(path)
        for kind, top in m["best"].items():
            at = (out["model"] == m["model"]) & (out["regime"] == m["regime"]) & (kinds == kind)
            out.loc[at, "best_layer"] = int(top["layer"])
            out.loc[at, "best_pooling"] = str(top["pooling"])
            out.loc[at, "best_layer_accuracy"] = float(top["accuracy"])
    return out


__all__ = [
    "BEST_COLUMNS",
    "LAYER_TABLE_COLUMNS",
    "add_best_layers",
    "best_row",
    "layer_table",
    "probe_layers",
]
