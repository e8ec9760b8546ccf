"""The baselines of the fine-tuning stage.

Two baselines, both trained only on a task's train split, selected on its validation split
and scored once on its test split with :mod:`dnalm.core.metrics`:

- **One-hot CNN** (:mod:`dnalm.modeling.cnn`): the DNA-LLM project's
  baseline. Bases are one-hot encoded (A, C, G, T; N and padding = all zeros), a
  Conv1d(4 -> 128, kernel 11, same padding) + GELU extracts motif features, and the same
  head a pretrained backbone gets sits on top: :class:`dnalm.modeling.heads.PerBaseRegressionHead`
  for per-base regression, a pooled :class:`dnalm.modeling.heads.SequenceClassificationHead` for
  classification (or sequence regression with one output). Parameter count of the per-base
  model: first conv 4*128*11 + 128 = 5,760; head LayerNorm 2*128 = 256, conv
  128*128*11 + 128 = 180,352, linear 128 + 1 = 129; total **186,497** (the "about 186k").
- **k-mer frequencies + linear model** (:mod:`dnalm.finetuning.kmer_baseline`, torch-free):
  overlapping k-mer counts (k = 3..6) normalised to frequencies, standardised, then
  multinomial logistic regression (classification) or ridge regression (sequence regression),
  the inverse regularisation C / the ridge alpha chosen on the validation split (5-fold CV
  on train when there is none). A k-mer *bag* has no positions, so it cannot predict per
  base: per-base tasks are refused with a clear error (the one-hot CNN is the per-base
  baseline).

The CNN trains with :func:`dnalm.training.fit.fit`, the loop fine-tuning uses.

Outputs of every run, in `out_dir` (each written atomically; metrics.json is written last,
so its presence means the run finished):

- ``curves.csv``: epoch, step, train_loss, val_loss, val_metric, elapsed_s per evaluation;
- ``model.safetensors``: best-validation weights (CNN only);
- ``predictions.npz`` (per-base: ``ids`` (N,), ``predictions`` and ``targets`` (N, L)
  float32 padded with 0, ``lengths`` (N,)) or ``predictions.tsv`` (sequence tasks: id,
  label, predicted and, for classification, one ``p_<class>`` column per class);
- ``metrics.json``: see :func:`dnalm.core.metrics.write_metrics_json`.

Augmentations (per-base regression, training batches only):

- shift: every training sequence is cropped to ``L - 2*max_shift`` bases starting at
  ``max_shift + s`` with s uniform in [-max_shift, max_shift], targets cropped alike. The
  model is fully convolutional, so the shorter inputs need nothing special, and no base
  is invented: the vacated ends are *dropped by cropping*, not filled with N and zero
  targets (DNA-LLM fills with N / 0, which teaches the model that N-padded edges are
  unbound, and clips motifs at the edge).
- reverse complement (option): with probability 1/2 a training sequence is replaced by its
  reverse complement and its per-base targets are reversed (class labels are unchanged).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import save_file
from torch import nn

from dnalm.core.alphabet import one_hot
from dnalm.core.artifacts import (
    CURVES_CSV,
    METRICS_JSON,
    WEIGHTS_SAFETENSORS,
)
from dnalm.core.config import CNNTrainConfig, fit_settings
from dnalm.core.io import atomic_path, set_default_modes
from dnalm.core.metrics import write_metrics_json
from dnalm.finetuning.data import (
    discard_stale_checkpoints,
    save_curves,
    score_test,
    split_frames,
    task_arrays,
    task_objective,
)
from dnalm.finetuning.tables import class_labels, task_kind
from dnalm.kinds.tasks import TASK_KINDS
from dnalm.modeling.cnn import OneHotCNN, OneHotCNNClassifier, count_params
from dnalm.training.augment import random_reverse_complement, shift_crop
from dnalm.training.fit import ArrayBatches, fit, predict
from dnalm.training.track import open_tracker

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- one-hot CNN


def train_onehot_cnn(
    df: pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    kind: str | None = None,
    labels: Sequence[str] | None = None,
    config: CNNTrainConfig | Mapping[str, Any] | None = None,
    model_name: str = "onehot_cnn",
    task: str | None = None,
    tracking: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train, select and test the one-hot CNN on a task table; write the run's outputs
    (module docstring) to `out_dir` and return the metrics.json record.

    df: a task table (dnalm.tasks.load_task, or any frame with id, sequence, split and
    label or targets). kind: classification | regression | per_base_regression (default:
    from the table). labels: class order (default: the task's, else sorted). tracking: the
    run's tracker settings (dnalm.training.track; None: none), as fine-tuning's."""
    t_start = time.perf_counter()
    cfg = config if isinstance(config, CNNTrainConfig) else CNNTrainConfig.from_dict(config)
    kind = task_kind(df, kind)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = split_frames(df, cfg.seed)
    per_base = TASK_KINDS.get(kind).per_base
    width = int(df["sequence"].str.len().max())
    order = class_labels(df, labels) if TASK_KINDS.get(kind).classes else None

    def transform(train: bool) -> Callable:
        def fn(batch: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
            if train and per_base and cfg.max_shift > 0:
                batch = shift_crop(batch, cfg.max_shift, gen)
            if train and cfg.reverse_complement:
                batch = random_reverse_complement(batch, gen, per_base)
            batch = dict(batch)
            batch["x"] = one_hot(batch.pop("codes"))  # (B, L, 4)
            return batch

        return fn

    data = {s: task_arrays(p, kind, width, order) for s, p in parts.items()}
    train_loader = ArrayBatches(
        data["train"], cfg.batch_size, shuffle=True, seed=cfg.seed, transform=transform(True)
    )
    val_loader = ArrayBatches(data["validation"], cfg.eval_batch_size, transform=transform(False))
    test_loader = ArrayBatches(data["test"], cfg.eval_batch_size, transform=transform(False))

    torch.manual_seed(cfg.seed)
    loss_fn, select, val_metric = task_objective(kind)
    if per_base:
        model: nn.Module = OneHotCNN(cfg.channels, cfg.kernel_size, cfg.dropout)
    elif TASK_KINDS.get(kind).classes:
        model = OneHotCNNClassifier(
            len(order), cfg.channels, cfg.kernel_size, cfg.dropout, cfg.pooling
        )
    else:
        model = OneHotCNNClassifier(1, cfg.channels, cfg.kernel_size, cfg.dropout, cfg.pooling)

    trainable, total = count_params(model)
    ckpt_dir = out_dir / "checkpoints"
    discard_stale_checkpoints(ckpt_dir, {"model": model_name, "kind": kind, **asdict(cfg)}, data)
    log.info(
        "one-hot CNN (%s): %d trainable / %d parameters; train %d, validation %d, test %d",
        kind,
        trainable,
        total,
        len(parts["train"]),
        len(parts["validation"]),
        len(parts["test"]),
    )
    settings = {"model": model_name, "task": task, "kind": kind, **asdict(cfg)}
    with open_tracker(tracking, settings) as tracker:  # tracking.backend
        result = fit(
            model,
            train_loader,
            val_loader,
            loss_fn,
            val_metric=val_metric,
            device=cfg.device,
            checkpoint_dir=ckpt_dir,
            tracker=tracker,
            **fit_settings(cfg),
        )
        out = predict(model, test_loader, device=cfg.device)  # the one look at test
        test = parts["test"]
        metrics = score_test(
            out_dir, kind, test, out, order, parts["train"]["label"].astype(str) if order else None
        )

        with atomic_path(out_dir / WEIGHTS_SAFETENSORS) as tmp:
            save_file({k: v.contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp))
            set_default_modes(tmp)  # save_file replaces the file with its own 0600 one
        save_curves(out_dir / CURVES_CSV, result.curves)
        fit_info = asdict(result)
        fit_info.pop("curves")
        record = write_metrics_json(
            out_dir / METRICS_JSON,
            model=model_name,
            tokenizer="onehot",
            regime="baseline",
            trainable_params=trainable,
            total_params=total,
            wall_time_s=time.perf_counter() - t_start,
            n_test=len(test),
            metrics=metrics,
            task=task,
            kind=kind,
            selection_metric=f"validation {select}",
            n_train=len(parts["train"]),
            n_validation=len(parts["validation"]),
            fit=fit_info,
            config=asdict(cfg),
        )
        tracker.log_metrics({k: v for k, v in record.items() if k != "config"}, result.steps)
    return record
