"""The epoch runs of fine-tuning and of the one-hot CNN, on the one training loop
(:class:`dnalm.training.loop.TrainingLoop`: the steps, checkpoints and resume).

:func:`fit` is generic: AdamW, evaluation on validation every epoch (or every `eval_every`
steps), early stopping with `patience`, the best-validation weights restored at the end; with
`checkpoint_dir` a checkpoint after every evaluation and an exact resume (the
:mod:`dnalm.training.checkpoint` format), bf16 autocast on GPU (`precision`). It knows nothing
about DNA: a `forward(model, batch)` maps a batch to predictions and a `loss_fn(pred, batch)`
to a loss, so a fine-tuned transformer plugs in with its own batch format.

Device, precision, AdamW (built by the loop) with its parameter groups (the weight-decay rule:
matrices and kernels are decayed, not biases, norms or embedding tables), early stopping,
curve writing, the divergence error and the checkpoint setup check are the ones pretraining
uses (:mod:`dnalm.training.core`)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from dnalm.core.artifacts import BEST_JSON
from dnalm.core.config import check_lr_schedule
from dnalm.core.device import cat_padded, select_device, to_host
from dnalm.core.errors import ConfigError, TrainingDivergedError
from dnalm.core.io import atomic_write
from dnalm.core.log import progress_disabled
from dnalm.training import checkpoint as ckpt
from dnalm.training.core import (
    PRECISIONS,
    EarlyStopping,
    autocast,
    divergence_error,
    resolve_precision,
)
from dnalm.training.loop import AdamWSettings, DeviceTally, TrainingLoop, lr_factor
from dnalm.training.track import Tracker

log = logging.getLogger(__name__)


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
__all__ = ["PRECISIONS", "ArrayBatches", "FitResult", "fit", "predict", "resolve_precision"]


#: `format` entry of a fit() checkpoint's trainer_state.pt (tells it from a pretraining one).
#: Version 2: AdamW's two parameter groups of the shared weight-decay rule, and the
#: early-stopping state of training.core.EarlyStopping; version 1 checkpoints are refused.
FIT_CHECKPOINT_FORMAT = "dnalm.training.fit/3"
#: formats a fit() run resumes from: version 3 (the training loop's common entries: a
#: scheduler state, the RNG states as a list of processes) and version 2 (without them)
FIT_FORMATS = (FIT_CHECKPOINT_FORMAT, "dnalm.training.fit/2")
OLD_FIT_FORMATS = ("dnalm.baselines.fit/1",)


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
    numpy. Everything stays on the device until the end of the pass, which copies it to the
    host at once (one host synchronisation a pass, not one a batch)."""
    device = select_device(device)
    prec = resolve_precision(precision, device)
    was_training = model.training
    model.eval()
    preds, ys, masks = [], [], []
    # float64 (the arithmetic of a Python float sum) where the device has it
    loss_sum = torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64)
    loss_sum, n = loss_sum.to(device), 0
    try:
        for batch in loader:
            batch = _to_device(batch, device)
            with autocast(device, prec):
                pred = forward(model, batch)
            pred = _as_float32(pred)
            bsz = pred.shape[0]
            if loss_fn is not None:
                loss_sum = loss_sum + loss_fn(pred, batch).detach().to(loss_sum.dtype) * bsz
            n += bsz
            preds.append(pred.detach())
            ys.append(batch["y"])
            if "mask" in batch:
                masks.append(batch["mask"])
    finally:
        model.train(was_training)
    if not preds:
        return {"pred": np.zeros(0, np.float32), "y": np.zeros(0, np.float32), "loss": math.nan}
    parts = [cat_padded(preds), cat_padded(ys), loss_sum] + ([cat_padded(masks)] if masks else [])
    pred_np, y_np, loss_np, *mask_np = to_host(parts)  # the pass's one copy to the host
    loss = float(loss_np) / n
    out = {"pred": pred_np, "y": y_np, "loss": loss}
    if mask_np:
        out["mask"] = mask_np[0]
    return out


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


class _Schedule:
    """The learning-rate multiplier of fit() (:func:`lr_factor`) for LambdaLR: a class, so
    the scheduler's state_dict stays plain data."""

    def __init__(self, warmup_steps: int, total_steps: int | None, schedule: str, min_ratio: float):
        self.warmup_steps, self.total_steps = warmup_steps, total_steps
        self.schedule, self.min_ratio = schedule, min_ratio

    def __call__(self, step: int) -> float:
        return lr_factor(step, self.warmup_steps, self.total_steps, self.schedule, self.min_ratio)


def _bad_targets(batch: Mapping[str, Any]) -> torch.Tensor | None:
    """The number of non-finite targets of `batch` (a device tensor; None: integer targets)."""
    y = batch.get("y")
    if isinstance(y, torch.Tensor) and y.is_floating_point():
        return (~torch.isfinite(y)).sum()
    return None


def _diverged(
    loss: float,
    bad_targets: int,
    where: str,
    lr: float,
    precision: str,
    root: Path | None,
) -> TrainingDivergedError:
    """The error of a non-finite training `loss` at `where` (`bad_targets`: the batch's
    count of NaN/inf targets)."""
    if bad_targets:
        cause = (
            f"this batch's targets hold {bad_targets} NaN/inf value(s): check the task's targets "
            "for NaN (missing values must be dropped or masked before training)"
        )
    else:
        cause = (
            "the targets of this batch are finite, so training diverged: lower the learning "
            f"rate (lr={lr:g}), keep grad_clip on"
            + (", or use precision='fp32'" if precision == "bf16" else "")
            + "; also check the inputs and targets for NaN"
        )
    rerun = (
        "after the fix, rerunning with the same settings resumes from it (fit() refuses "
        "changed settings; delete the folder to start over after changing lr or the data)."
    )
    return divergence_error("the training loss", loss, where, cause, root, rerun)


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
    tracker: Tracker | None = None,
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
    :mod:`dnalm.training.checkpoint` (``step-XXXXXXXX/`` folders, ``last.json``, ``best.json``):
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
    A non-finite training loss raises TrainingDivergedError naming the step, epoch and
    batch, before the optimizer step, so the last checkpoint stays intact.

    tracker: where every curve row goes as it is recorded (and a resumed run's earlier rows
    first), besides FitResult.curves (dnalm.training.track; None: nowhere)."""
    device = select_device(device)
    prec = resolve_precision(precision, device)
    torch.manual_seed(seed)
    model.to(device)
    params = [
        p for p in (model.parameters() if parameters is None else parameters) if p.requires_grad
    ]
    if not params:
        raise ValueError("no trainable parameters")
    root = Path(checkpoint_dir) if checkpoint_dir is not None else None
    n_batches = _n_batches(train_loader)
    names = {id(p): n for n, p in model.named_parameters()}
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
    schedule = _Schedule(warmup_steps, total_steps, lr_schedule, min_lr_ratio)
    run = _EpochRun(model, train_loader, val_loader, forward, loss_fn, device, prec, root)
    run.loop = TrainingLoop(
        model,
        run.micro_loss,
        AdamWSettings(lr=lr, weight_decay=weight_decay),
        schedule=schedule,
        params=params,
        device=device,
        precision=prec,
        grad_clip=grad_clip,
        clip_params=params,
        stopper=EarlyStopping(patience, higher_is_better=True),
        fmt=FIT_CHECKPOINT_FORMAT,
        setup=setup,
        tracker=tracker,
    )
    run.lr, run.schedule, run.frozen, run.n_batches = lr, schedule, frozen, n_batches
    run.val_metric, run.higher_is_better, run.eval_every = val_metric, higher_is_better, eval_every
    run.disable = progress_disabled() if progress is None else not progress
    return run.run(max_epochs, max_steps)


class _EpochRun:
    """A fit() run: epochs of the train loader on a :class:`TrainingLoop`, with what its
    checkpoints carry besides the loop's own entries. Position in the data: `epochs_done`
    complete epochs, then `consumed` batches of the next one, whose shuffle started from
    `epoch_loader` / `epoch_rng`."""

    loop: TrainingLoop
    schedule: _Schedule
    frozen: frozenset[str]
    n_batches: int | None
    val_metric: Callable[[dict[str, Any]], float] | None
    higher_is_better: bool
    eval_every: int | None
    disable: bool
    lr: float

    def __init__(self, model, train_loader, val_loader, forward, loss_fn, device, prec, root):
        self.model, self.train_loader, self.val_loader = model, train_loader, val_loader
        self.forward, self.loss_fn = forward, loss_fn
        self.device, self.prec, self.root = device, prec, root
        self.shapes = _shapes(model)
        self.epoch = 0  # the epoch being run (1-based), for curve rows
        self.epochs_done = 0
        self.consumed = 0
        self.epoch_loader: torch.Tensor | None = None
        self.epoch_rng: dict[str, Any] | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best: dict[str, float] = {"epoch": 0, "step": 0, "metric": math.nan, "loss": math.nan}
        self.run_loss, self.run_n = 0.0, 0
        self.curves: list[dict[str, float]] = []
        self.resume_iter: Iterator | None = None  # a resumed epoch's iterator, fast-forwarded
        self.resumed_from: int | None = None
        self.batch_size = 0
        self.t0 = time.perf_counter()
        self.tally = DeviceTally(device)  # train losses since the last evaluation
        self.where: dict[int, tuple[int, int]] = {}  # step -> (epoch, batch), since then

    def step_lr(self, step: int) -> float:
        return self.lr * self.schedule(step)

    def micro_loss(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """The loss of one batch (already on the device): forward under autocast, the loss
        on float32 predictions."""
        with autocast(self.device, self.prec):
            pred = self.forward(self.model, batch)
        pred = _as_float32(pred)
        self.batch_size = pred.shape[0]
        return self.loss_fn(pred, batch)

    def score(self, out: dict[str, Any]) -> float:
        if self.val_metric is None:
            return -out["loss"]
        value = float(self.val_metric(out))
        return value if self.higher_is_better else -value

    def position(self) -> tuple[int, int, torch.Tensor | None, dict[str, Any] | None]:
        """(complete epochs, batches of the next, its loader and global RNG start states)."""
        if self.consumed and self.consumed == self.n_batches:  # used up: the next one starts
            return self.epochs_done + 1, 0, _loader_state(self.train_loader), None
        if self.consumed == 0:
            return self.epochs_done, 0, _loader_state(self.train_loader), None
        return self.epochs_done, self.consumed, self.epoch_loader, self.epoch_rng

    def save(self, improved: bool) -> None:
        epochs_done, consumed, loader_state, epoch_rng = self.position()
        extra = {
            "shapes": self.shapes,
            "precision": self.prec,
            "epoch_rng": epoch_rng,
            "loader_state": loader_state,
            "epochs_done": epochs_done,
            "batches_done": consumed,
            "best": dict(self.best),
            "run_loss": self.run_loss,
            "run_n": self.run_n,
            "curves": [dict(r) for r in self.curves],
            "elapsed": time.perf_counter() - self.t0,
            "best_val": self.best["metric"],
            "last_val": self.curves[-1]["val_metric"] if self.curves else None,
        }
        self.loop.checkpoint(self.root, improved, extra, skip=self.frozen)

    def resume(self, last: Path) -> None:
        """Restore everything from checkpoint `last` (and the elapsed seconds so far)."""
        root, model, frozen = self.root, self.model, self.frozen
        state = ckpt.load_state(last)
        if state.get("format") in OLD_FIT_FORMATS:
            raise ConfigError(
                f"cannot resume from checkpoint {last}: it was written by an older dnalm "
                f"(format {state['format']!r}, before the shared weight-decay rule), whose "
                f"optimizer state does not fit. Delete the folder {root} to start over."
            )
        if state.get("format") not in FIT_FORMATS:
            raise ConfigError(
                f"{last} is not a checkpoint of a fine-tuning/baseline run (format "
                f"{state.get('format')!r}); delete the folder {root} or pass another "
                "checkpoint_dir"
            )
        if state["shapes"] != self.shapes:
            raise _architecture_error(last, root, state["shapes"], self.shapes)
        diff = self.loop.changes(state)
        if diff:
            lines = ckpt.describe_changes(diff)
            raise ConfigError(
                f"cannot resume from checkpoint {last}: the training setup changed ({lines}). "
                f"Restore the previous settings to resume, or delete the folder {root} to "
                "start over."
            )
        if state["precision"] != self.prec:
            log.warning(
                "checkpoint %s was trained in %s, resuming in %s: the run will not match an "
                "uninterrupted one bit for bit",
                last,
                state["precision"],
                self.prec,
            )
        best_dir = ckpt.best_checkpoint(root)
        step = int(state["step"])
        if int(state["best"]["step"]) == step and state["curves"]:
            # the best is this very checkpoint; repair best.json if a kill fell between
            # the writes of last.json and best.json
            if best_dir != last:
                with atomic_write(root / BEST_JSON) as fh:
                    fh.write(json.dumps({"dir": last.name, "step": step}) + "\n")
            best_dir = last
        elif best_dir is None or ckpt.folder_step(best_dir) != int(state["best"]["step"]):
            raise ConfigError(
                f"checkpoint folder {root} is inconsistent: the best step "
                f"{state['best']['step']} has no checkpoint (best.json -> {best_dir}). "
                "Delete the folder to start over."
            )
        try:
            if best_dir != last:
                ckpt.load_weights(best_dir, model, self.device, frozen)
                self.best_state = ckpt.snapshot(model, frozen)
            self.loop.resume(last, state, skip=frozen)
            if best_dir == last:
                self.best_state = ckpt.snapshot(model, frozen)
        except (RuntimeError, ValueError, KeyError) as e:
            raise ConfigError(
                f"cannot resume from checkpoint {last}: it does not fit this model or its "
                f"trained parameters ({e}). Delete the folder {root} to start over."
            ) from e
        self.loop.best_step = int(state["best"]["step"])
        self.epochs_done = int(state["epochs_done"])
        self.consumed = int(state["batches_done"])
        self.epoch_loader = state["loader_state"]
        self.epoch_rng = state["epoch_rng"]
        self.best = dict(state["best"])
        self.run_loss, self.run_n = float(state["run_loss"]), int(state["run_n"])
        self.curves = [dict(r) for r in state["curves"]]
        self.loop.track(*self.curves)
        _set_loader_state(self.train_loader, self.epoch_loader)
        if self.consumed:
            # replay the epoch's start and draw (and drop) the batches already trained on
            ckpt.restore_rng(self.epoch_rng)
            it = iter(self.train_loader)
            skipped = sum(1 for _ in zip(range(self.consumed), it, strict=False))
            if skipped < self.consumed:
                raise ConfigError(
                    f"cannot resume from checkpoint {last}: the train loader now has fewer "
                    f"batches ({skipped}) than the checkpoint had used of this epoch "
                    f"({self.consumed}). Delete the folder {root} to start over."
                )
            self.resume_iter = it
        self.loop.restore_rng(state["rng"])
        self.resumed_from = step
        log.info(
            "resumed from step %d (%s): %d epoch(s) done, %d batch(es) of the next skipped",
            step,
            last,
            self.epochs_done,
            self.consumed,
        )
        self.t0 -= float(state["elapsed"])

    def read_losses(self) -> None:
        """Add the train losses since the last read to run_loss (the one host
        synchronisation of the steps between evaluations); a non-finite loss on any of them
        stops the run with that step, before the checkpoint of this evaluation."""
        total, bad = self.tally.read()
        where, self.where = self.where, {}
        if bad is not None:
            step, value, n_bad = bad
            epoch, batch = where.get(step, (self.epoch, self.consumed))
            at = f"at step {step} (epoch {epoch}, batch {batch})"
            raise _diverged(value, int(n_bad), at, self.lr, self.prec, self.root)
        self.run_loss += total

    def evaluate(self) -> bool:
        """One validation pass (and checkpoint); returns True when training should stop."""
        self.read_losses()
        step = self.loop.step
        out = predict(
            self.model,
            self.val_loader,
            self.forward,
            self.loss_fn,
            self.device,
            precision=self.prec,
        )
        key = self.score(out)
        metric = float(self.val_metric(out)) if self.val_metric is not None else out["loss"]
        if not math.isfinite(key):
            key = -math.inf
        self.curves.append(
            {
                "epoch": self.epoch,
                "step": step,
                "train_loss": self.run_loss / self.run_n if self.run_n else math.nan,
                "val_loss": out["loss"],
                "val_metric": metric,
                "elapsed_s": time.perf_counter() - self.t0,
                "lr": self.step_lr(max(0, step - 1)),  # of the last step before this evaluation
            }
        )
        self.loop.track(self.curves[-1])
        self.run_loss, self.run_n = 0.0, 0
        log.info(
            "epoch %d step %d: train_loss %.4g val_loss %.4g val_metric %.4g",
            self.epoch,
            step,
            self.curves[-1]["train_loss"],
            out["loss"],
            metric,
        )
        improved = self.loop.evaluate(key)
        if improved:
            self.best_state = ckpt.snapshot(self.model, self.frozen)
            self.best.update(epoch=self.epoch, step=step, metric=metric, loss=out["loss"])
        stop = not improved and self.loop.stopped
        if self.root is not None:
            self.save(improved)
        return stop

    def run(self, max_epochs: int, max_steps: int | None) -> FitResult:
        loop, eval_every = self.loop, self.eval_every
        if self.root is not None:
            last = ckpt.last_checkpoint(self.root)
            if last is not None:
                self.resume(last)
        self.model.train()
        out_of_steps = max_steps is not None and loop.step >= max_steps
        while self.epochs_done < max_epochs and not loop.stopped and not out_of_steps:
            self.epoch = self.epochs_done + 1
            if self.resume_iter is not None:
                it, self.resume_iter = self.resume_iter, None
            else:
                self.consumed = 0
                self.epoch_loader = _loader_state(self.train_loader)
                self.epoch_rng = ckpt.capture_rng() if self.root is not None else None
                it = iter(self.train_loader)
            bar = tqdm(
                it,
                total=self.n_batches,
                initial=self.consumed,
                desc=f"epoch {self.epoch}",
                leave=False,
                disable=self.disable,
            )
            complete = True
            for batch in bar:
                batch = _to_device(batch, self.device)
                self.where[loop.step + 1] = (self.epoch, self.consumed + 1)
                loss = loop.train_step([batch])
                self.consumed += 1
                # kept on the device: read once per evaluation (read_losses)
                self.tally.add(loss, loop.step, times=self.batch_size, info=_bad_targets(batch))
                self.run_n += self.batch_size
                if eval_every and loop.step % eval_every == 0 and self.evaluate():
                    complete = False
                    break
                if max_steps is not None and loop.step >= max_steps:
                    out_of_steps, complete = True, False
                    break
            bar.close()
            if complete or self.consumed == self.n_batches:
                if self.consumed == 0:
                    raise ValueError("the train loader yielded no batches")
                self.epochs_done, self.consumed = self.epochs_done + 1, 0
                if not eval_every and not loop.stopped:
                    self.evaluate()
        if self.run_n and not loop.stopped:  # steps since the last evaluation
            self.evaluate()
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state, strict=not self.frozen)
        return FitResult(
            best_epoch=self.best["epoch"],
            best_step=self.best["step"],
            best_val_metric=self.best["metric"],
            best_val_loss=self.best["loss"],
            epochs_run=self.epochs_done + (1 if self.consumed else 0),
            steps=loop.step,
            stopped_early=loop.stopped,
            elapsed_s=time.perf_counter() - self.t0,
            curves=self.curves,
            precision=self.prec,
            resumed_from_step=self.resumed_from,
        )
