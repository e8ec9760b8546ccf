"""Task arrays for the fine-tuning stage: the kind of a task, its split frames, integer-coded
sequences and targets, the loss and selection metric of each kind, test scoring, curve and
prediction files, and the discarding of checkpoints that were trained on other settings or data."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from dnalm.core.alphabet import encode_sequences
from dnalm.core.artifacts import PREDICTIONS_NPZ, PREDICTIONS_TSV, SETTINGS_JSON
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_path, atomic_write
from dnalm.core.metrics import classification_metrics, regression_metrics
from dnalm.finetuning.tables import save_predictions_tsv
from dnalm.kinds.tasks import TASK_KINDS, selection_metric
from dnalm.tasks.common import (
    load_task,  # noqa: F401 (the task table every run reads)
)
from dnalm.training.core import write_curves
from dnalm.training.fit import CURVE_COLUMNS, FIT_CHECKPOINT_FORMAT

log = logging.getLogger(__name__)


def split_frames(
    df: pd.DataFrame, seed: int = 0, val_fraction: float = 0.1
) -> dict[str, pd.DataFrame]:
    """train/validation/test frames of a task table. A table without validation rows gets
    a seeded `val_fraction` of train as validation (logged), because early stopping and
    model selection must not look at test."""
    parts = {
        s: df[df["split"] == s].reset_index(drop=True) for s in ("train", "validation", "test")
    }
    unknown = set(df["split"]) - set(parts)
    if unknown:
        raise InputFormatError(
            f"unknown split name(s) {sorted(unknown)}: use train/validation/test"
        )
    for s in ("train", "test"):
        if parts[s].empty:
            raise InputFormatError(f"the task table has no {s} rows")
    if parts["validation"].empty:
        rng = np.random.default_rng(seed)
        n_val = max(1, round(val_fraction * len(parts["train"])))
        pick = np.zeros(len(parts["train"]), bool)
        pick[rng.permutation(len(parts["train"]))[:n_val]] = True
        log.warning(
            "no validation rows: using %d random train rows (seed %d) as validation", n_val, seed
        )
        parts["validation"] = parts["train"][pick].reset_index(drop=True)
        parts["train"] = parts["train"][~pick].reset_index(drop=True)
    return parts


def _targets(df: pd.DataFrame, width: int) -> np.ndarray:
    """Per-base targets (N, width) float32, zero-padded; each row must match its sequence."""
    out = np.zeros((len(df), width), np.float32)
    for i, (t, s, rid) in enumerate(zip(df["targets"], df["sequence"], df["id"], strict=True)):
        arr = t if isinstance(t, np.ndarray) else np.array(str(t).split(","), dtype=np.float32)
        if len(arr) != len(s):
            raise InputFormatError(f"row {rid}: {len(arr)} targets for a {len(s)}-bp sequence")
        out[i, : len(arr)] = arr
    return out


def save_curves(path: Path, rows: list[dict[str, float]]) -> None:
    """curves.csv of a fit() run (training.core.write_curves, fit's columns)."""
    write_curves(path, rows, CURVE_COLUMNS)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _masked_mse(pred: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    m = batch["mask"].to(pred.dtype)  # (B, L)
    return ((pred - batch["y"]) ** 2 * m).sum() / m.sum().clamp(min=1.0)


def _cross_entropy(pred: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return F.cross_entropy(pred, batch["y"])


def _seq_mse(pred: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return F.mse_loss(pred.squeeze(-1), batch["y"])


def task_arrays(
    part: pd.DataFrame, kind: str, width: int, labels: Sequence[str] | None
) -> dict[str, np.ndarray]:
    """The arrays a model of `kind` trains on, for one split of a task table: base codes
    (N, width) int8 (N and padding = 4), the base mask (N, width) and y: per-base targets
    (N, width) float32 zero-padded, class indices into `labels` (N,) int64, or sequence
    labels (N,) float32. Shared by the one-hot CNN and fine-tuned language models."""
    codes, lengths = encode_sequences(list(part["sequence"]), width)
    mask = np.arange(width)[None, :] < lengths[:, None]  # (N, L)
    if TASK_KINDS.get(kind).per_base:
        y = _targets(part, width)
    elif TASK_KINDS.get(kind).classes:
        y = np.array([list(labels).index(str(v)) for v in part["label"]], dtype=np.int64)
    else:
        y = part["label"].astype(np.float32).to_numpy()
    return {"codes": codes, "mask": mask, "y": y}


def task_objective(
    kind: str, metric: str | None = None
) -> tuple[Callable, str, Callable[[dict[str, Any]], float]]:
    """(loss_fn, name of the selection metric, val_metric) of a task kind: masked MSE and
    validation Pearson r over all bases (per-base), cross-entropy and macro-F1
    (classification), MSE and Pearson r (sequence regression); the metric is `metric`
    (``finetune.train.selection_metric``, one of the kind's ``selectable``), else the
    kind's selection_metric."""
    desc = TASK_KINDS.get(kind)
    try:
        metric = selection_metric(kind, metric)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if desc.per_base:

        def per_base(out: dict) -> float:
            return regression_metrics(out["y"], out["pred"], out["mask"])[metric]

        return _masked_mse, metric, per_base
    if desc.classes:

        def classes(out: dict) -> float:
            return classification_metrics(out["y"], out["pred"].argmax(1))[metric]

        return _cross_entropy, metric, classes

    def sequence(out: dict) -> float:
        return regression_metrics(out["y"], out["pred"][:, 0])[metric]

    return _seq_mse, metric, sequence


def flip_within_length(values: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    """Reverse each row's first `lengths[i]` entries (positions past a row's length are 0);
    rows padded or cut to `width`. # (N, W') -> (N, width)"""
    n = values.shape[0]
    src = lengths[:, None] - 1 - np.arange(width)[None]  # (N, width)
    valid = (src >= 0) & (src < values.shape[1])
    out = np.take_along_axis(values, np.clip(src, 0, values.shape[1] - 1), axis=1)
    return np.where(valid, out, np.zeros((), values.dtype)).reshape(n, width)


def average_strands(
    fwd: Mapping[str, np.ndarray], rev: Mapping[str, np.ndarray], kind: str, lengths: np.ndarray
) -> dict[str, Any]:
    """Reverse-complement averaging of two :func:`dnalm.training.fit.predict` outputs, of
    the same rows forward (`fwd`) and reverse-complemented (`rev`): class probabilities
    (returned as their log, so a softmax gives them back), regression values, or per-base
    predictions, where each row of `rev` is first flipped back within its length
    (`lengths`, bases) and a base scored on one strand only keeps that strand's value.
    Targets (``y``) are the forward ones; ``loss`` is not defined for the mean (nan)."""
    out = dict(fwd)
    out["loss"] = float("nan")
    if TASK_KINDS.get(kind).per_base:
        width = fwd["pred"].shape[1]
        lengths = np.asarray(lengths, np.int64)
        m_f = fwd["mask"].astype(bool)
        m_r = flip_within_length(rev["mask"].astype(bool), lengths, width)
        p_r = flip_within_length(rev["pred"], lengths, width)
        both = m_f.astype(np.float32) + m_r
        total = np.where(m_f, fwd["pred"], 0.0) + np.where(m_r, p_r, 0.0)
        out["pred"] = (total / np.maximum(both, 1.0)).astype(np.float32)
        out["mask"] = m_f | m_r
    elif TASK_KINDS.get(kind).classes:
        prob = (
            torch.softmax(torch.from_numpy(fwd["pred"]), 1)
            + torch.softmax(torch.from_numpy(rev["pred"]), 1)
        ) / 2
        out["pred"] = torch.log(prob).numpy()
    else:
        out["pred"] = ((fwd["pred"] + rev["pred"]) / 2).astype(np.float32)
    return out


def score_test(
    out_dir: Path,
    kind: str,
    test: pd.DataFrame,
    out: Mapping[str, np.ndarray],
    labels: Sequence[str] | None,
    train_labels: Sequence[str] | None = None,
    **npz_extra: np.ndarray,
) -> dict[str, Any]:
    """Metrics of the test predictions `out` (from :func:`predict`) and the predictions
    file: predictions.npz for per-base tasks (ids, predictions, targets, lengths and any
    `npz_extra` arrays), predictions.tsv otherwise (id, label, predicted and, for
    classification, p_<class> per class). Returns the metrics dict."""
    if TASK_KINDS.get(kind).per_base:
        metrics = regression_metrics(out["y"], out["pred"], out["mask"])
        lengths = test["sequence"].str.len().to_numpy()
        _save_npz(
            out_dir / PREDICTIONS_NPZ,
            ids=test["id"].to_numpy(dtype=str),
            predictions=(out["pred"] * out["mask"]).astype(np.float32),
            targets=out["y"].astype(np.float32),
            lengths=lengths.astype(np.int64),
            **npz_extra,
        )
        return metrics
    if TASK_KINDS.get(kind).classes:
        prob = torch.softmax(torch.from_numpy(out["pred"]), 1).numpy()
        pred_labels = np.array(labels)[prob.argmax(1)]
        metrics = classification_metrics(
            test["label"].astype(str), pred_labels, labels, train_labels
        )
        table = pd.DataFrame({"id": test["id"], "label": test["label"], "predicted": pred_labels})
        for j, lab in enumerate(labels):
            table[f"p_{lab}"] = prob[:, j]
    else:
        metrics = regression_metrics(out["y"], out["pred"][:, 0])
        table = pd.DataFrame(
            {"id": test["id"], "label": test["label"], "predicted": out["pred"][:, 0]}
        )
    save_predictions_tsv(out_dir / PREDICTIONS_TSV, table)
    return metrics


def discard_stale_checkpoints(
    ckpt_dir: Path, settings: dict[str, Any], data: Mapping[str, Mapping[str, np.ndarray]]
) -> None:
    """Checkpoints resume a run killed with the *same* settings and data. When either
    changed (the workflow reruns the job because its parameters or its task table changed),
    the old checkpoints belong to another run: remove them and start over, saying so. The
    settings (JSON-able, "threads" and "device" ignored) and a sha256 of the training and
    validation arrays (`data`: split -> task_arrays) are recorded in ``settings.json`` of
    `ckpt_dir`, with the checkpoint format of fit() (checkpoints of an older format are
    removed alike)."""
    record = ckpt_dir / SETTINGS_JSON
    settings = {k: v for k, v in settings.items() if k not in ("threads", "device")}
    h = hashlib.sha256()
    for split in ("train", "validation"):
        for key, arr in sorted(data[split].items()):
            arr = np.ascontiguousarray(arr)
            h.update(f"{split}|{key}|{arr.dtype}|{arr.shape}|".encode())
            h.update(arr.tobytes())
    settings["data"] = h.hexdigest()
    settings["checkpoint_format"] = FIT_CHECKPOINT_FORMAT
    if ckpt_dir.exists():
        old = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None
        if old != settings:
            changed = sorted(k for k in settings if (old or {}).get(k) != settings[k])
            log.warning(
                "settings changed since the checkpoints in %s were written (%s): starting over",
                ckpt_dir,
                ", ".join(changed[:6]) or "unknown",
            )
            shutil.rmtree(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(record) as fh:
        json.dump(settings, fh, indent=1, default=str)
        fh.write("\n")
