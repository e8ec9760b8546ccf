"""Baselines of the fine-tuning stage, and the small training loop the fine-tuning reuses.

Two baselines, both trained only on a task's train split, selected on its validation split
and scored once on its test split with :mod:`dnalm.metrics`:

- **One-hot CNN** (:class:`OneHotCNN`, :class:`OneHotCNNClassifier`): the DNA-LLM project's
  baseline. Bases are one-hot encoded (A, C, G, T; N and padding = all zeros), a
  Conv1d(4 -> 128, kernel 11, same padding) + GELU extracts motif features, and the same
  head a pretrained backbone gets sits on top: :class:`dnalm.heads.PerBaseRegressionHead`
  for per-base regression, a pooled :class:`dnalm.heads.SequenceClassificationHead` for
  classification (or sequence regression with one output). Parameter count of the per-base
  model: first conv 4*128*11 + 128 = 5,760; head LayerNorm 2*128 = 256, conv
  128*128*11 + 128 = 180,352, linear 128 + 1 = 129; total **186,497** (the "about 186k").
- **k-mer frequencies + linear model** (:func:`run_kmer_baseline`): overlapping k-mer counts
  (k = 3..6) normalised to frequencies, standardised, then multinomial logistic regression
  (classification) or ridge regression (sequence regression), the inverse regularisation C /
  the ridge alpha chosen on the validation split (5-fold CV on train when there is none).
  A k-mer *bag* has no positions, so it cannot predict per base: per-base tasks are refused
  with a clear error (the one-hot CNN is the per-base baseline).

:func:`fit` is the generic loop: AdamW, evaluation on validation every epoch (or every
`eval_every` steps), early stopping with `patience`, the best-validation weights restored
at the end; with `checkpoint_dir` a checkpoint after every evaluation and an exact resume
(the pretraining's :mod:`dnalm.checkpoint` format), bf16 autocast on GPU (`precision`).
It knows nothing about DNA: a `forward(model, batch)` maps a batch to
predictions and a `loss_fn(pred, batch)` to a loss, so a fine-tuned transformer plugs in
with its own batch format.

Outputs of every run, in `out_dir` (each written atomically; metrics.json is written last,
so its presence means the run finished):

- ``curves.csv``: epoch, step, train_loss, val_loss, val_metric, elapsed_s per evaluation;
- ``model.safetensors``: best-validation weights (CNN only);
- ``predictions.npz`` (per-base: ``ids`` (N,), ``predictions`` and ``targets`` (N, L)
  float32 padded with 0, ``lengths`` (N,)) or ``predictions.tsv`` (sequence tasks: id,
  label, predicted and, for classification, one ``p_<class>`` column per class);
- ``metrics.json``: see :func:`dnalm.metrics.write_metrics_json`.

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

import contextlib
import csv
import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import sparse
from torch import nn
from tqdm import tqdm

from dnalm import checkpoint as ckpt
from dnalm.errors import ConfigError, InputFormatError
from dnalm.heads import PerBaseRegressionHead, SequenceClassificationHead
from dnalm.io import atomic_path, atomic_write
from dnalm.log import progress_disabled
from dnalm.metrics import classification_metrics, regression_metrics, write_metrics_json
from dnalm.schedule import check_lr_schedule, lr_factor

log = logging.getLogger(__name__)

BASES = "ACGT"
#: Code of N (and of padding) in the integer encoding; ACGT are 0..3.
N_CODE = 4
KINDS = ("classification", "regression", "per_base_regression")

_LUT = np.full(256, -1, dtype=np.int8)
for _i, _b in enumerate(BASES):
    _LUT[ord(_b)] = _i
    _LUT[ord(_b.lower())] = _i
_LUT[ord("N")] = _LUT[ord("n")] = N_CODE
#: complement of each code (A<->T, C<->G, N->N)
_COMPLEMENT = torch.tensor([3, 2, 1, 0, N_CODE], dtype=torch.long)


# ----------------------------------------------------------------------------- encoding


def encode_sequences(
    seqs: Sequence[str], length: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of DNA sequences: (N, L) int8 with A=0, C=1, G=2, T=3, N=4, padded on
    the right with 4 to `length` (default: the longest), and the lengths (N,) int64.

    Lower case is accepted; any other character raises InputFormatError naming the
    sequence index and the character."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    width = int(lengths.max(initial=0)) if length is None else int(length)
    if (lengths > width).any():
        raise ValueError(f"a sequence is longer ({lengths.max()}) than length={width}")
    codes = np.full((len(seqs), width), N_CODE, dtype=np.int8)
    for i, s in enumerate(seqs):
        c = _LUT[np.frombuffer(s.encode("ascii", errors="replace"), dtype=np.uint8)]
        if (c < 0).any():
            bad = s[int(np.argmax(c < 0))]
            raise InputFormatError(
                f"sequence {i}: character {bad!r} is not A/C/G/T/N; normalise the task first"
            )
        codes[i, : len(c)] = c
    return codes, lengths


def one_hot(codes: torch.Tensor | np.ndarray) -> torch.Tensor:
    """One-hot of integer codes: (B, L) -> (B, L, 4) float32; N/padding (4) -> zeros."""
    codes = torch.as_tensor(codes).long()
    return F.one_hot(codes, N_CODE + 1)[..., :N_CODE].float()  # (B, L, 4)


def one_hot_encode(seqs: Sequence[str], length: int | None = None) -> np.ndarray:
    """One-hot (N, L, 4) float32 of sequences (ACGT order; N and padding = zeros)."""
    codes, _ = encode_sequences(seqs, length)
    return one_hot(codes).numpy()


def reverse_complement_codes(codes: torch.Tensor) -> torch.Tensor:
    """Reverse complement of integer codes along the last axis: (B, L) -> (B, L)."""
    return _COMPLEMENT.to(codes.device)[codes.long()].flip(-1).to(codes.dtype)


# ----------------------------------------------------------------------------- models


class OneHotCNN(nn.Module):
    """Per-base regression on one-hot DNA: (B, L, 4) -> (B, L).

    Conv1d(4 -> channels, kernel_size, same padding) + GELU, then
    :class:`~dnalm.heads.PerBaseRegressionHead` on those features. With the defaults this is
    the DNA-LLM baseline, 186,497 parameters."""

    def __init__(self, channels: int = 128, kernel_size: int = 11, dropout: float = 0.2) -> None:
        super().__init__()
        self.conv = nn.Conv1d(len(BASES), channels, kernel_size, padding=kernel_size // 2)
        self.act = nn.GELU()
        self.head = PerBaseRegressionHead(channels, channels, kernel_size, dropout)

    def features(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.act(self.conv(x.transpose(1, 2))).transpose(1, 2)  # (B, 4, L) -> (B, L, C)
        if mask is not None:
            h = h * mask.unsqueeze(-1).to(h.dtype)  # (B, L, C)
        return h

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, mask), mask)  # (B, L, C) -> (B, L)


class OneHotCNNClassifier(nn.Module):
    """Sequence classification on one-hot DNA: (B, L, 4), mask (B, L) -> logits (B, n_out).

    The same first convolution as :class:`OneHotCNN`, then a pooled
    :class:`~dnalm.heads.SequenceClassificationHead`. Default pooling "max" (the strongest
    match of each motif filter anywhere in the sequence, as in DeepBind-style models);
    "mean" averages over real bases. n_out = 1 gives a sequence-regression model."""

    def __init__(
        self,
        n_out: int,
        channels: int = 128,
        kernel_size: int = 11,
        dropout: float = 0.2,
        pooling: str = "max",
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(len(BASES), channels, kernel_size, padding=kernel_size // 2)
        self.act = nn.GELU()
        self.head = SequenceClassificationHead(channels, n_out, pooling, dropout)
        self.n_out = n_out

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.act(self.conv(x.transpose(1, 2))).transpose(1, 2)  # (B, L, C)
        return self.head(h, mask)  # (B, n_out)


def count_params(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; shared tensors counted once."""
    seen: dict[int, nn.Parameter] = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return trainable, total


# ----------------------------------------------------------------------------- batching


class ArrayBatches:
    """Mini-batches over equally long arrays (first axis = examples), re-iterable.

    Each pass yields dicts of tensors with the same keys as `arrays`, shuffled with a
    seeded generator (a different, reproducible order every pass) when `shuffle`, then
    passed through `transform` (augmentation, one-hot encoding). Indexing pre-built
    arrays keeps CPU training free of per-example Python work."""

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray | torch.Tensor],
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        transform: Callable[[dict[str, torch.Tensor], torch.Generator], dict] | None = None,
    ) -> None:
        self.arrays = {k: torch.as_tensor(v) for k, v in arrays.items()}
        sizes = {len(v) for v in self.arrays.values()}
        if len(sizes) != 1:
            raise ValueError(f"arrays have different lengths: {sizes}")
        self.n = sizes.pop()
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.transform = transform
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def get_state(self) -> torch.Tensor:
        """The generator's state (a uint8 tensor): shuffling and transforms of the next
        pass follow from it. :func:`fit` stores it at every epoch start in checkpoints."""
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        """Reset the generator to a state from :meth:`get_state` (resume)."""
        self.generator.set_state(state)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else None
        for start in range(0, self.n, self.batch_size):
            if order is None:
                batch = {k: v[start : start + self.batch_size] for k, v in self.arrays.items()}
            else:
                idx = order[start : start + self.batch_size]
                batch = {k: v[idx] for k, v in self.arrays.items()}
            yield self.transform(batch, self.generator) if self.transform else batch


def shift_crop(
    batch: dict[str, torch.Tensor], max_shift: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Random-shift augmentation by cropping (see the module docstring): every (B, L, ...)
    entry named codes/y/mask is cropped to (B, L - 2*max_shift, ...) at an offset
    max_shift + s, s uniform in [-max_shift, max_shift] per example."""
    codes = batch["codes"]
    b, length = codes.shape
    width = length - 2 * max_shift
    if max_shift <= 0:
        return batch
    if width < 1:
        raise ConfigError(f"max_shift={max_shift} leaves nothing of {length}-bp sequences")
    shifts = torch.randint(-max_shift, max_shift + 1, (b,), generator=generator)
    idx = (max_shift + shifts).unsqueeze(1) + torch.arange(width)  # (B, W)
    out = dict(batch)
    for key in ("codes", "y", "mask"):
        if key in batch and batch[key].dim() >= 2 and batch[key].shape[1] == length:
            out[key] = torch.gather(batch[key], 1, idx)  # (B, W)
    return out


def random_reverse_complement(
    batch: dict[str, torch.Tensor], generator: torch.Generator, per_base: bool
) -> dict[str, torch.Tensor]:
    """Replace each sequence by its reverse complement with probability 1/2; per-base
    targets and masks are reversed with it, class labels stay."""
    flip = torch.rand(batch["codes"].shape[0], generator=generator) < 0.5  # (B,)
    if not flip.any():
        return batch
    out = dict(batch)
    out["codes"] = torch.where(
        flip[:, None], reverse_complement_codes(batch["codes"]), batch["codes"]
    )
    keys = ("y", "mask") if per_base else ("mask",)
    for key in keys:
        if key in batch:
            out[key] = torch.where(flip[:, None], batch[key].flip(1), batch[key])
    return out


# ----------------------------------------------------------------------------- training loop


@dataclass
class FitResult:
    """What :func:`fit` did. `curves` rows have the curves.csv columns. `precision` is the
    resolved precision ("bf16" | "fp32"); `resumed_from_step` the step of the checkpoint
    this call resumed from (None for a fresh start)."""

    best_epoch: int
    best_step: int
    best_val_metric: float
    best_val_loss: float
    epochs_run: int
    steps: int
    stopped_early: bool
    elapsed_s: float
    curves: list[dict[str, float]] = field(default_factory=list)
    precision: str = "fp32"
    resumed_from_step: int | None = None


CURVE_COLUMNS = ("epoch", "step", "train_loss", "val_loss", "val_metric", "elapsed_s", "lr")
PRECISIONS = ("auto", "bf16", "fp32")
#: the fit() settings that a run's config (CNNConfig, finetune.FinetuneConfig) carries
FIT_SETTINGS = (
    "max_epochs", "patience", "lr", "weight_decay", "grad_clip", "eval_every", "max_steps",
    "seed", "warmup_steps", "lr_schedule", "min_lr_ratio",
)  # fmt: skip


def fit_settings(cfg: Any) -> dict[str, Any]:
    """The :func:`fit` keyword arguments named in FIT_SETTINGS, read from `cfg`."""
    return {k: getattr(cfg, k) for k in FIT_SETTINGS}


#: `format` entry of a fit() checkpoint's trainer_state.pt (tells it from a pretraining one)
FIT_CHECKPOINT_FORMAT = "dnalm.baselines.fit/1"


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """The resolved precision, "bf16" or "fp32", of `precision` on `device`: "auto" is bf16
    autocast on CUDA and fp32 elsewhere (CPU bf16 is slow and changes results);
    "bf16" / "fp32" force it."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if torch.device(device).type == "cuda" else "fp32"
    return precision


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for the forward pass, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _as_float32(pred: torch.Tensor) -> torch.Tensor:
    """Predictions of an autocast forward in float32 (no copy when they already are), so
    losses, metrics and numpy see full precision."""
    return pred.float() if pred.is_floating_point() and pred.dtype != torch.float32 else pred


def default_forward(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """model(x, mask) for batches with keys "x" and optionally "mask"."""
    return model(batch["x"], batch.get("mask"))


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: Iterable[Mapping[str, torch.Tensor]],
    forward: Callable = default_forward,
    loss_fn: Callable | None = None,
    device: str | torch.device = "cpu",
    *,
    precision: str = "auto",
) -> dict[str, Any]:
    """Run `model` in eval mode over `loader` (in order). Returns numpy arrays "pred", "y"
    (and "mask" when batches carry one), concatenated over batches (padded with 0 along
    axis 1 when per-base lengths differ between batches), and "loss" (the example-weighted
    mean of loss_fn, or nan). `precision` as in :func:`fit`: the forward pass runs under
    bf16 autocast on CUDA by default; predictions are cast to float32 before the loss and
    numpy."""
    device = torch.device(device)
    prec = resolve_precision(precision, device)
    was_training = model.training
    model.eval()
    preds, ys, masks = [], [], []
    loss_sum, n = 0.0, 0
    try:
        for batch in loader:
            batch = _to_device(batch, device)
            with _autocast(device, prec):
                pred = forward(model, batch)
            pred = _as_float32(pred)
            bsz = pred.shape[0]
            if loss_fn is not None:
                loss_sum += float(loss_fn(pred, batch)) * bsz
            n += bsz
            preds.append(pred.cpu().numpy())
            ys.append(batch["y"].cpu().numpy())
            if "mask" in batch:
                masks.append(batch["mask"].cpu().numpy())
    finally:
        model.train(was_training)
    out = {"pred": _concat(preds), "y": _concat(ys), "loss": loss_sum / n if n else math.nan}
    if masks:
        out["mask"] = _concat(masks)
    return out


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.zeros(0, np.float32)
    if parts[0].ndim >= 2 and len({p.shape[1] for p in parts}) > 1:
        width = max(p.shape[1] for p in parts)
        parts = [
            np.pad(p, [(0, 0), (0, width - p.shape[1])] + [(0, 0)] * (p.ndim - 2)) for p in parts
        ]
    return np.concatenate(parts)


def _n_batches(loader: Iterable) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


def _loader_state(loader: Iterable) -> torch.Tensor | None:
    """The shuffling RNG state of a training loader: ``loader.get_state()`` (ArrayBatches),
    else the state of a ``loader.generator`` torch.Generator (a DataLoader given one), else
    None (a loader without its own RNG)."""
    if hasattr(loader, "get_state"):
        return loader.get_state()
    gen = getattr(loader, "generator", None)
    return gen.get_state() if isinstance(gen, torch.Generator) else None


def _set_loader_state(loader: Iterable, state: torch.Tensor | None) -> None:
    if state is None:
        return
    if hasattr(loader, "set_state"):
        loader.set_state(state)
        return
    gen = getattr(loader, "generator", None)
    if isinstance(gen, torch.Generator):
        gen.set_state(state)
    else:
        log.warning("the checkpoint has a loader RNG state but this train loader has none")


def _frozen_keys(model: nn.Module, trained: Sequence[nn.Parameter]) -> frozenset[str]:
    """State-dict names of the model's parameters that are not trained (every name of a
    tied parameter)."""
    ids = {id(p) for p in trained}
    return frozenset(
        n for n, p in model.named_parameters(remove_duplicate=False) if id(p) not in ids
    )


def _fingerprint(model: nn.Module, keys: frozenset[str]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of the state-dict tensors `keys`."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        if k in keys:
            t = v.detach().to("cpu").contiguous()
            h.update(f"{k}|{t.dtype}|{list(t.shape)}|".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _shapes(model: nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def _architecture_error(
    folder: Path, root: Path, saved: dict[str, list[int]], now: dict[str, list[int]]
) -> ConfigError:
    missing = sorted(set(saved) - set(now))
    new = sorted(set(now) - set(saved))
    changed = sorted(k for k in set(saved) & set(now) if saved[k] != now[k])
    parts = []
    if changed:
        eg = ", ".join(f"{k}: {saved[k]} -> {now[k]}" for k in changed[:3])
        parts.append(f"{len(changed)} tensor(s) changed shape, e.g. {eg}")
    if missing:
        parts.append(f"{len(missing)} tensor(s) no longer in the model, e.g. {missing[:3]}")
    if new:
        parts.append(f"{len(new)} tensor(s) new in the model, e.g. {new[:3]}")
    return ConfigError(
        f"cannot resume from checkpoint {folder}: it was written for a different model "
        f"architecture ({'; '.join(parts)}). Delete the folder {root} to train this model "
        "from scratch, or restore the previous model settings to resume."
    )


def _folder_step(folder: Path) -> int | None:
    try:
        return int(json.loads((folder / "state.json").read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass
class _FitState:
    """Everything of a fit() run that a checkpoint must carry (besides weights, optimizer
    and RNG). Position in the data: `epochs_done` complete epochs, then `consumed` batches
    of the next one, whose shuffle started from `epoch_loader` / `epoch_rng`."""

    step: int = 0
    epoch: int = 0  # the epoch being run (1-based), for curve rows
    epochs_done: int = 0
    consumed: int = 0
    epoch_loader: torch.Tensor | None = None
    epoch_rng: dict[str, Any] | None = None
    best_key: float = -math.inf
    best_state: dict[str, torch.Tensor] | None = None
    best: dict[str, float] = field(
        default_factory=lambda: {"epoch": 0, "step": 0, "metric": math.nan, "loss": math.nan}
    )
    bad_evals: int = 0
    stopped: bool = False
    run_loss: float = 0.0
    run_n: int = 0
    curves: list[dict[str, float]] = field(default_factory=list)
    resume_iter: Iterator | None = None  # a resumed epoch's iterator, already fast-forwarded


def _nonfinite_message(
    loss: torch.Tensor,
    batch: Mapping[str, Any],
    s: _FitState,
    lr: float,
    precision: str,
    root: Path | None,
) -> str:
    where = f"at step {s.step + 1} (epoch {s.epoch}, batch {s.consumed + 1})"
    y = batch.get("y")
    if isinstance(y, torch.Tensor) and y.is_floating_point() and not torch.isfinite(y).all():
        bad = int((~torch.isfinite(y)).sum())
        cause = (
            f"this batch's targets hold {bad} NaN/inf value(s): check the task's targets for "
            "NaN (missing values must be dropped or masked before training)"
        )
    else:
        cause = (
            "the targets of this batch are finite, so training diverged: lower the learning "
            f"rate (lr={lr:g}), keep grad_clip on"
            + (", or use precision='fp32'" if precision == "bf16" else "")
            + "; also check the inputs and targets for NaN"
        )
    msg = f"non-finite training loss ({float(loss.detach())}) {where}: {cause}."
    if root is not None:
        last = ckpt.last_checkpoint(root)
        if last is not None:
            msg += (
                f" The last checkpoint {last} (step {_folder_step(last)}) is intact; after the "
                "fix, rerunning resumes from it (delete the folder to start over after "
                "changing lr or the data)."
            )
        else:
            msg += f" No checkpoint was written to {root} yet."
    return msg


def fit(
    model: nn.Module,
    train_loader: Iterable[Mapping[str, torch.Tensor]],
    val_loader: Iterable[Mapping[str, torch.Tensor]],
    loss_fn: Callable[[torch.Tensor, Mapping[str, torch.Tensor]], torch.Tensor],
    *,
    forward: Callable[[nn.Module, Mapping[str, torch.Tensor]], torch.Tensor] = default_forward,
    val_metric: Callable[[dict[str, Any]], float] | None = None,
    higher_is_better: bool = True,
    max_epochs: int = 20,
    patience: int = 3,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    grad_clip: float | None = 1.0,
    eval_every: int | None = None,
    max_steps: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    parameters: Iterable[nn.Parameter] | None = None,
    progress: bool | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    precision: str = "auto",
    warmup_steps: int = 0,
    lr_schedule: str = "constant",
    min_lr_ratio: float = 0.1,
    decay_steps: int | None = None,
) -> FitResult:
    """Train `model` with AdamW and early stopping; on return it holds the best weights.

    forward(model, batch) -> predictions; loss_fn(predictions, batch) -> scalar loss.
    Validation runs every `eval_every` optimiser steps (default: once per epoch) and at the
    end; the model is selected on `val_metric(predict(...))` (higher better unless
    `higher_is_better=False`) or, without one, on the validation loss (lower better).
    Training stops after `patience` evaluations without improvement, after `max_epochs`
    epochs, or after `max_steps` steps (counted over the whole run, resumes included).
    `parameters` restricts what is trained (a frozen backbone: pass the head's
    parameters); default all with requires_grad. Seeded: the same seed, data order and
    model give the same run.

    precision: "auto" (bf16 autocast of the forward pass on CUDA, fp32 on CPU), "bf16" or
    "fp32". The loss is computed on float32 predictions, outside autocast.

    warmup_steps, lr_schedule, min_lr_ratio: the learning rate is lr * :func:`lr_factor`
    of the step: a linear warm-up over the first `warmup_steps` optimiser steps, then
    constant ("constant") or a cosine decay to lr * min_lr_ratio ("cosine") at the step
    budget, min(max_steps, max_epochs * batches per epoch), whether or not early stopping
    ends the run sooner (as pretraining and the Hugging Face Trainer do), or at
    `decay_steps` when given. A function of the step alone: resumes are exact. Under
    "cosine" the decay span is part of the setup, so a checkpoint of a run with another
    budget (other max_steps / max_epochs, no `decay_steps`) cannot be continued.

    checkpoint_dir: after every validation a checkpoint is written there with
    :mod:`dnalm.checkpoint` (``step-XXXXXXXX/`` folders, ``last.json``, ``best.json``):
    ``model.safetensors`` holds the current weights (only the trained parameters and the
    buffers when some parameters are frozen, e.g. a frozen backbone: the frozen ones are
    fingerprinted in the setup instead), and the folder ``best.json`` names holds the
    best-validation weights (no second copy); ``trainer_state.pt`` (read with
    weights_only) holds the optimizer, step, position in the data (complete epochs,
    batches consumed of the current one, the train loader's RNG state and the global RNG
    states at that epoch's start), the global RNG states now, the early-stopping state
    (best key, epoch, step, metric, loss, bad_evals, stopped), the running loss sums, the
    curve rows, the elapsed time, and what must not change on resume (tensor names and
    shapes; lr, weight_decay, grad_clip, seed, eval_every, batches per epoch, the names of
    the trained parameters). When `checkpoint_dir` holds a checkpoint, fit() resumes from
    it: the train loader's generator is reset to the epoch's start and the batches already
    used are drawn again and skipped (so augmentations drawing from the generator stay in
    step), and on CPU the run ends with bitwise the same weights and curves (elapsed_s
    aside) as an uninterrupted one. A finished or early-stopped run returns at once. A
    checkpoint of a different architecture or setup is a ConfigError that says to delete
    the folder. Raising `max_steps` or `max_epochs` of a finished run continues it as if
    it had been started with the larger value when the old stop fell on a regular
    evaluation (max_steps a multiple of `eval_every`, or an epoch end without
    `eval_every`); otherwise the extra evaluation at the old stop stays in the curves.
    The folder is left in place after training (the caller decides when to delete it).

    The train loader must give the same batches for the same RNG state: ArrayBatches
    (get_state/set_state), a DataLoader with a `generator`, or any loader using the global
    torch RNG only when iteration starts (its state at the epoch start is replayed).
    A non-finite training loss raises FloatingPointError naming the step, before the
    optimizer step, so the last checkpoint stays intact."""
    device = torch.device(device)
    prec = resolve_precision(precision, device)
    torch.manual_seed(seed)
    model.to(device)
    params = [
        p for p in (model.parameters() if parameters is None else parameters) if p.requires_grad
    ]
    if not params:
        raise ValueError("no trainable parameters")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    disable = progress_disabled() if progress is None else not progress
    root = Path(checkpoint_dir) if checkpoint_dir is not None else None
    n_batches = _n_batches(train_loader)
    names = {id(p): n for n, p in model.named_parameters()}
    shapes = _shapes(model)
    setup = {
        "lr": float(lr),
        "weight_decay": float(weight_decay),
        "grad_clip": None if grad_clip is None else float(grad_clip),
        "seed": int(seed),
        "eval_every": eval_every,
        "warmup_steps": int(warmup_steps),
        "batches_per_epoch": n_batches,
        "lr_schedule": lr_schedule,
        "trained": [names.get(id(p), "?") for p in params],
    }
    # Parameters that stay frozen (a frozen backbone) are neither checkpointed nor kept in
    # the best-weights snapshot: checkpoints hold what training changes (trained parameters
    # and buffers), and the frozen tensors' fingerprint in the setup makes a resume onto
    # other frozen weights (another pretrained model, say) a ConfigError.
    frozen = _frozen_keys(model, params)
    if frozen and root is not None:
        setup["frozen_weights_sha256"] = _fingerprint(model, frozen)
    check_lr_schedule(lr_schedule)
    budgets = [b for b in (max_steps, None if n_batches is None else max_epochs * n_batches) if b]
    total_steps = decay_steps or (min(budgets) if budgets else None)
    if lr_schedule != "constant":
        if total_steps is None:
            raise ConfigError(
                f"lr_schedule {lr_schedule!r} needs a step budget: set max_steps, or give a "
                "train loader with a length"
            )
        setup.update(min_lr_ratio=float(min_lr_ratio), total_steps=int(total_steps))

    def step_lr(step: int) -> float:
        return lr * lr_factor(step, warmup_steps, total_steps, lr_schedule, min_lr_ratio)

    s = _FitState()
    resumed_from: int | None = None
    t0 = time.perf_counter()

    def score(out: dict[str, Any]) -> float:
        if val_metric is None:
            return -out["loss"]
        value = float(val_metric(out))
        return value if higher_is_better else -value

    def position() -> tuple[int, int, torch.Tensor | None, dict[str, Any] | None]:
        """(complete epochs, batches of the next, its loader and global RNG start states)."""
        if s.consumed and s.consumed == n_batches:  # the epoch is used up: next one starts
            return s.epochs_done + 1, 0, _loader_state(train_loader), None
        if s.consumed == 0:
            return s.epochs_done, 0, _loader_state(train_loader), None
        return s.epochs_done, s.consumed, s.epoch_loader, s.epoch_rng

    def save(improved: bool) -> None:
        epochs_done, consumed, loader_state, epoch_rng = position()
        state = {
            "format": FIT_CHECKPOINT_FORMAT,
            "shapes": shapes,
            "setup": setup,
            "precision": prec,
            "optimizer": opt.state_dict(),
            "rng": ckpt.capture_rng(),
            "epoch_rng": epoch_rng,
            "loader_state": loader_state,
            "step": s.step,
            "epochs_done": epochs_done,
            "batches_done": consumed,
            "best_key": s.best_key,
            "best": dict(s.best),
            "bad_evals": s.bad_evals,
            "stopped": s.stopped,
            "run_loss": s.run_loss,
            "run_n": s.run_n,
            "curves": [dict(r) for r in s.curves],
            "elapsed": time.perf_counter() - t0,
            "best_val": s.best["metric"],
            "last_val": s.curves[-1]["val_metric"] if s.curves else None,
        }
        ckpt.save_checkpoint(root, s.step, model, state, best=improved, skip=frozen)

    def resume(last: Path) -> float:
        """Restore everything from checkpoint `last`; returns the elapsed seconds so far."""
        nonlocal resumed_from
        state = ckpt.load_state(last)
        if state.get("format") != FIT_CHECKPOINT_FORMAT:
            raise ConfigError(
                f"{last} is not a checkpoint of a fine-tuning/baseline run (format "
                f"{state.get('format')!r}); delete the folder {root} or pass another "
                "checkpoint_dir"
            )
        if state["shapes"] != shapes:
            raise _architecture_error(last, root, state["shapes"], shapes)
        saved = state["setup"]
        diff = {k: (saved.get(k), v) for k, v in setup.items() if saved.get(k) != v}
        if diff:
            lines = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in diff.items())
            raise ConfigError(
                f"cannot resume from checkpoint {last}: the training setup changed ({lines}). "
                f"Restore the previous settings to resume, or delete the folder {root} to "
                "start over."
            )
        if state["precision"] != prec:
            log.warning(
                "checkpoint %s was trained in %s, resuming in %s: the run will not match an "
                "uninterrupted one bit for bit",
                last,
                state["precision"],
                prec,
            )
        best_dir = ckpt.best_checkpoint(root)
        step = int(state["step"])
        if int(state["best"]["step"]) == step and state["curves"]:
            # the best is this very checkpoint; repair best.json if a kill fell between
            # the writes of last.json and best.json
            if best_dir != last:
                with atomic_write(root / "best.json") as fh:
                    fh.write(json.dumps({"dir": last.name, "step": step}) + "\n")
            best_dir = last
        elif best_dir is None or _folder_step(best_dir) != int(state["best"]["step"]):
            raise ConfigError(
                f"checkpoint folder {root} is inconsistent: the best step "
                f"{state['best']['step']} has no checkpoint (best.json -> {best_dir}). "
                "Delete the folder to start over."
            )
        try:
            if best_dir != last:
                ckpt.load_weights(best_dir, model, device, frozen)
                s.best_state = ckpt.snapshot(model, frozen)
            ckpt.load_weights(last, model, device, frozen)
            if best_dir == last:
                s.best_state = ckpt.snapshot(model, frozen)
            opt.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise ConfigError(
                f"cannot resume from checkpoint {last}: it does not fit this model or its "
                f"trained parameters ({e}). Delete the folder {root} to start over."
            ) from e
        s.step = step
        s.epochs_done = int(state["epochs_done"])
        s.consumed = int(state["batches_done"])
        s.epoch_loader = state["loader_state"]
        s.epoch_rng = state["epoch_rng"]
        s.best_key = float(state["best_key"])
        s.best = dict(state["best"])
        s.bad_evals = int(state["bad_evals"])
        s.stopped = bool(state["stopped"])
        s.run_loss, s.run_n = float(state["run_loss"]), int(state["run_n"])
        s.curves = [dict(r) for r in state["curves"]]
        _set_loader_state(train_loader, s.epoch_loader)
        if s.consumed:
            # replay the epoch's start and draw (and drop) the batches already trained on
            ckpt.restore_rng(s.epoch_rng)
            it = iter(train_loader)
            skipped = sum(1 for _ in zip(range(s.consumed), it, strict=False))
            if skipped < s.consumed:
                raise ConfigError(
                    f"cannot resume from checkpoint {last}: the train loader now has fewer "
                    f"batches ({skipped}) than the checkpoint had used of this epoch "
                    f"({s.consumed}). Delete the folder {root} to start over."
                )
            s.resume_iter = it
        ckpt.restore_rng(state["rng"])
        resumed_from = step
        log.info(
            "resumed from step %d (%s): %d epoch(s) done, %d batch(es) of the next skipped",
            step,
            last,
            s.epochs_done,
            s.consumed,
        )
        return float(state["elapsed"])

    def evaluate() -> bool:
        """One validation pass (and checkpoint); returns True when training should stop."""
        out = predict(model, val_loader, forward, loss_fn, device, precision=prec)
        key = score(out)
        metric = float(val_metric(out)) if val_metric is not None else out["loss"]
        if not math.isfinite(key):
            key = -math.inf
        s.curves.append(
            {
                "epoch": s.epoch,
                "step": s.step,
                "train_loss": s.run_loss / s.run_n if s.run_n else math.nan,
                "val_loss": out["loss"],
                "val_metric": metric,
                "elapsed_s": time.perf_counter() - t0,
                "lr": step_lr(max(0, s.step - 1)),  # of the last step before this evaluation
            }
        )
        s.run_loss, s.run_n = 0.0, 0
        log.info(
            "epoch %d step %d: train_loss %.4g val_loss %.4g val_metric %.4g",
            s.epoch,
            s.step,
            s.curves[-1]["train_loss"],
            out["loss"],
            metric,
        )
        improved = key > s.best_key or s.best_state is None
        if improved:
            s.best_key, s.bad_evals = key, 0
            s.best_state = ckpt.snapshot(model, frozen)
            s.best.update(epoch=s.epoch, step=s.step, metric=metric, loss=out["loss"])
        else:
            s.bad_evals += 1
        stop = not improved and s.bad_evals >= patience
        s.stopped = s.stopped or stop
        if root is not None:
            save(improved)
        return stop

    if root is not None:
        last = ckpt.last_checkpoint(root)
        if last is not None:
            t0 -= resume(last)

    model.train()
    out_of_steps = max_steps is not None and s.step >= max_steps
    while s.epochs_done < max_epochs and not s.stopped and not out_of_steps:
        s.epoch = s.epochs_done + 1
        if s.resume_iter is not None:
            it, s.resume_iter = s.resume_iter, None
        else:
            s.consumed = 0
            s.epoch_loader = _loader_state(train_loader)
            s.epoch_rng = ckpt.capture_rng() if root is not None else None
            it = iter(train_loader)
        bar = tqdm(
            it,
            total=n_batches,
            initial=s.consumed,
            desc=f"epoch {s.epoch}",
            leave=False,
            disable=disable,
        )
        complete = True
        for batch in bar:
            batch = _to_device(batch, device)
            with _autocast(device, prec):
                pred = forward(model, batch)
            pred = _as_float32(pred)
            loss = loss_fn(pred, batch)
            if not torch.isfinite(loss):
                bar.close()
                raise FloatingPointError(_nonfinite_message(loss, batch, s, lr, prec, root))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(params, grad_clip)
            for group in opt.param_groups:
                group["lr"] = step_lr(s.step)
            opt.step()
            s.step += 1
            s.consumed += 1
            s.run_loss += float(loss.detach()) * pred.shape[0]
            s.run_n += pred.shape[0]
            bar.set_postfix(loss=f"{float(loss.detach()):.4g}", refresh=False)
            if eval_every and s.step % eval_every == 0 and evaluate():
                complete = False
                break
            if max_steps is not None and s.step >= max_steps:
                out_of_steps, complete = True, False
                break
        bar.close()
        if complete or s.consumed == n_batches:
            if s.consumed == 0:
                raise ValueError("the train loader yielded no batches")
            s.epochs_done, s.consumed = s.epochs_done + 1, 0
            if not eval_every and not s.stopped:
                evaluate()
    if s.run_n and not s.stopped:  # steps since the last evaluation (eval_every / max_steps)
        evaluate()
    if s.best_state is not None:
        model.load_state_dict(s.best_state, strict=not frozen)
    return FitResult(
        best_epoch=s.best["epoch"],
        best_step=s.best["step"],
        best_val_metric=s.best["metric"],
        best_val_loss=s.best["loss"],
        epochs_run=s.epochs_done + (1 if s.consumed else 0),
        steps=s.step,
        stopped_early=s.stopped,
        elapsed_s=time.perf_counter() - t0,
        curves=s.curves,
        precision=prec,
        resumed_from_step=resumed_from,
    )


# ----------------------------------------------------------------------------- task tables


def task_kind(df: pd.DataFrame, kind: str | None = None) -> str:
    """The task kind: `kind` if given, else df.attrs['kind'] (set by dnalm.tasks.load_task),
    else per_base_regression when a `targets` column exists, else classification."""
    kind = (
        kind
        or df.attrs.get("kind")
        or ("per_base_regression" if "targets" in df.columns else "classification")
    )
    if kind not in KINDS:
        raise ConfigError(f"task kind must be one of {KINDS}, got {kind!r}")
    need = "targets" if kind == "per_base_regression" else "label"
    missing = {"id", "sequence", "split", need} - set(df.columns)
    if missing:
        raise InputFormatError(f"task table lacks column(s) {sorted(missing)} for a {kind} task")
    return kind


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


def _class_labels(df: pd.DataFrame, labels: Sequence[str] | None) -> list[str]:
    order = labels or df.attrs.get("labels") or sorted(df["label"].astype(str).unique())
    order = [str(x) for x in order]
    unknown = set(df["label"].astype(str)) - set(order)
    if unknown:
        raise InputFormatError(f"labels {sorted(unknown)[:5]} are not in the class list {order}")
    return order


def _save_curves(path: Path, rows: list[dict[str, float]]) -> None:
    with atomic_write(path) as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(CURVE_COLUMNS)
        for r in rows:
            w.writerow([f"{r[c]:.6g}" if isinstance(r[c], float) else r[c] for c in CURVE_COLUMNS])


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _save_predictions_tsv(path: Path, table: pd.DataFrame) -> None:
    with atomic_write(path) as fh:
        table.to_csv(fh, sep="\t", index=False, float_format="%.6g")


# ----------------------------------------------------------------------------- one-hot CNN


@dataclass
class CNNConfig:
    """Settings of the one-hot CNN baseline. Defaults: the DNA-LLM architecture (128
    channels, kernel 11, dropout 0.2) with a learning rate that converges in a few epochs
    on CPU; DNA-LLM used lr 1e-4, weight decay 1e-4, batch 64, patience 10, up to 100
    epochs, selection on validation loss."""

    channels: int = 128
    kernel_size: int = 11
    dropout: float = 0.2
    pooling: str = "max"  # classification / sequence regression only
    batch_size: int = 64
    eval_batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.01
    max_epochs: int = 30
    patience: int = 5
    eval_every: int | None = None  # steps; None = once per epoch
    max_steps: int | None = None
    grad_clip: float | None = 1.0
    max_shift: int = 10  # per-base regression only; 0 = off
    reverse_complement: bool = False
    seed: int = 0
    device: str = "cpu"
    warmup_steps: int = 0
    lr_schedule: str = "cosine"  # after warm-up: cosine | constant
    min_lr_ratio: float = 0.1

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> CNNConfig:
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(
                f"unknown one-hot CNN setting(s) {sorted(unknown)}; "
                f"known: {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**d)


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
    if kind == "per_base_regression":
        y = _targets(part, width)
    elif kind == "classification":
        y = np.array([list(labels).index(str(v)) for v in part["label"]], dtype=np.int64)
    else:
        y = part["label"].astype(np.float32).to_numpy()
    return {"codes": codes, "mask": mask, "y": y}


def task_objective(kind: str) -> tuple[Callable, str, Callable[[dict[str, Any]], float]]:
    """(loss_fn, name of the selection metric, val_metric) of a task kind: masked MSE and
    validation Pearson r over all bases (per-base), cross-entropy and macro-F1
    (classification), MSE and Pearson r (sequence regression)."""
    if kind == "per_base_regression":

        def per_base(out: dict) -> float:
            return regression_metrics(out["y"], out["pred"], out["mask"])["pearson_r"]

        return _masked_mse, "pearson_r", per_base
    if kind == "classification":

        def classes(out: dict) -> float:
            return classification_metrics(out["y"], out["pred"].argmax(1))["macro_f1"]

        return _cross_entropy, "macro_f1", classes

    def sequence(out: dict) -> float:
        return regression_metrics(out["y"], out["pred"][:, 0])["pearson_r"]

    return _seq_mse, "pearson_r", sequence


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
    if kind == "per_base_regression":
        metrics = regression_metrics(out["y"], out["pred"], out["mask"])
        lengths = test["sequence"].str.len().to_numpy()
        _save_npz(
            out_dir / "predictions.npz",
            ids=test["id"].to_numpy(dtype=str),
            predictions=(out["pred"] * out["mask"]).astype(np.float32),
            targets=out["y"].astype(np.float32),
            lengths=lengths.astype(np.int64),
            **npz_extra,
        )
        return metrics
    if kind == "classification":
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
    _save_predictions_tsv(out_dir / "predictions.tsv", table)
    return metrics


def train_onehot_cnn(
    df: pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    kind: str | None = None,
    labels: Sequence[str] | None = None,
    config: CNNConfig | Mapping[str, Any] | None = None,
    model_name: str = "onehot_cnn",
    task: str | None = None,
) -> dict[str, Any]:
    """Train, select and test the one-hot CNN on a task table; write the run's outputs
    (module docstring) to `out_dir` and return the metrics.json record.

    df: a task table (dnalm.tasks.load_task, or any frame with id, sequence, split and
    label or targets). kind: classification | regression | per_base_regression (default:
    from the table). labels: class order (default: the task's, else sorted)."""
    t_start = time.perf_counter()
    cfg = config if isinstance(config, CNNConfig) else CNNConfig.from_dict(config)
    kind = task_kind(df, kind)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = split_frames(df, cfg.seed)
    per_base = kind == "per_base_regression"
    width = int(df["sequence"].str.len().max())
    order = _class_labels(df, labels) if kind == "classification" else None

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
    elif kind == "classification":
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
    result = fit(
        model,
        train_loader,
        val_loader,
        loss_fn,
        val_metric=val_metric,
        device=cfg.device,
        checkpoint_dir=ckpt_dir,
        **fit_settings(cfg),
    )
    out = predict(model, test_loader, device=cfg.device)  # the one look at test
    test = parts["test"]
    metrics = score_test(
        out_dir, kind, test, out, order, parts["train"]["label"].astype(str) if order else None
    )

    from safetensors.torch import save_file

    with atomic_path(out_dir / "model.safetensors") as tmp:
        save_file({k: v.contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp))
    _save_curves(out_dir / "curves.csv", result.curves)
    fit_info = asdict(result)
    fit_info.pop("curves")
    return write_metrics_json(
        out_dir / "metrics.json",
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


def discard_stale_checkpoints(
    ckpt_dir: Path, settings: dict[str, Any], data: Mapping[str, Mapping[str, np.ndarray]]
) -> None:
    """Checkpoints resume a run killed with the *same* settings and data. When either
    changed (the workflow reruns the job because its parameters or its task table changed),
    the old checkpoints belong to another run: remove them and start over, saying so. The
    settings (JSON-able, "threads" and "device" ignored) and a sha256 of the training and
    validation arrays (`data`: split -> task_arrays) are recorded in ``settings.json`` of
    `ckpt_dir`."""
    record = ckpt_dir / "settings.json"
    settings = {k: v for k, v in settings.items() if k not in ("threads", "device")}
    h = hashlib.sha256()
    for split in ("train", "validation"):
        for key, arr in sorted(data[split].items()):
            arr = np.ascontiguousarray(arr)
            h.update(f"{split}|{key}|{arr.dtype}|{arr.shape}|".encode())
            h.update(arr.tobytes())
    settings["data"] = h.hexdigest()
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


# ----------------------------------------------------------------------------- k-mer baseline


def kmer_names(k: int) -> list[str]:
    """The 4**k k-mers in feature order (lexicographic in A < C < G < T)."""
    names = [""]
    for _ in range(k):
        names = [n + b for n in names for b in BASES]
    return names


def kmer_frequencies(seqs: Sequence[str], k: int) -> sparse.csr_matrix:
    """Overlapping k-mer frequencies: sparse (N, 4**k) float32, columns in kmer_names(k)
    order. Each row is the count of every k-mer at every offset, divided by the number of
    k-mers counted, so it sums to 1 (k-mers containing N are skipped; a sequence with no
    countable k-mer is a zero row). Lower case counts as upper case."""
    if not 1 <= k <= 8:
        raise ConfigError(f"k must be between 1 and 8 (3-6 are sensible), got {k}")
    codes, _ = encode_sequences(seqs)
    n, width = codes.shape
    if width < k:
        return sparse.csr_matrix((n, 4**k), dtype=np.float32)
    c = codes.astype(np.int64)
    windows = width - k + 1
    index = np.zeros((n, windows), np.int64)  # base-4 number of the k-mer at each offset
    valid = np.ones((n, windows), bool)
    for j in range(k):
        part = c[:, j : j + windows]
        index = index * 4 + np.minimum(part, 3)
        valid &= part < N_CODE  # N or padding inside -> not counted
    rows = np.broadcast_to(np.arange(n)[:, None], index.shape)[valid]
    counts = sparse.csr_matrix(
        (np.ones(rows.size, np.float32), (rows, index[valid])), shape=(n, 4**k)
    )
    counts.sum_duplicates()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    return (sparse.diags(scale.astype(np.float32)) @ counts).tocsr()


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
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    t_start = time.perf_counter()
    kind = task_kind(df, kind)
    if kind == "per_base_regression":
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
    X = {s: kmer_frequencies(list(p["sequence"]), k) for s, p in parts.items() if len(p)}
    parts = {s: p for s, p in parts.items() if len(p)}
    selection: list[dict[str, Any]] = []
    test = parts["test"]

    if kind == "classification":
        order = _class_labels(df, labels)
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

    with atomic_write(out_dir / "selection.csv") as fh:
        pd.DataFrame(selection).to_csv(fh, index=False, float_format="%.6g")
    _save_predictions_tsv(out_dir / "predictions.tsv", table)
    return write_metrics_json(
        out_dir / "metrics.json",
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
