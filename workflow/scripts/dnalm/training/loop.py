"""The one training loop of dnalm: pretraining (:class:`dnalm.training.pretrain.Trainer`),
fine-tuning and the one-hot CNN (:func:`dnalm.training.fit.fit`) and the DNA+text stage
(:func:`dnalm.multimodal.train.train_mlm`) all step, evaluate, checkpoint and resume
through :class:`TrainingLoop`.

Its pluggable pieces, given by the caller:

* the batch source: the caller hands :meth:`TrainingLoop.train_step` the micro-batches of
  one optimizer step (pretraining's token windows of the step, an epoch's next batch, a
  sampled DNA+text batch), so the loop knows nothing about epochs or data formats;
* the loss function: ``loss(batch) -> scalar tensor`` (the forward pass included); its
  gradient, times ``scale``, is accumulated over the micro-batches;
* the wrapper: ``module`` (what a forward runs: the model itself, DistributedDataParallel,
  or the FSDP2-sharded model, see :func:`dnalm.training.distributed.wrap`) and, for FSDP2,
  the unsharded ``replica`` used for evaluation, checkpoints and the export.

State: model, optimizer, learning-rate scheduler, precision, device, step, early stopping
and the best step; the caller's own counters (tokens, epochs, curves) travel in a
checkpoint's ``extra`` entries. The loop builds the optimizer and the scheduler itself from
the run's training settings (`train`): AdamW over the parameter groups of the one
weight-decay rule (:func:`dnalm.training.core.param_groups`) with ``train.lr``,
``train.weight_decay``, ``train.beta1``, ``train.beta2`` and ``train.eps``, and a LambdaLR of
the caller's learning-rate multiplier or, by default, of the settings' warm-up and cosine
decay (:class:`WarmupCosine` of ``train.warmup_steps``, ``train.max_steps`` and
``train.min_lr_ratio``). Pretraining hands over its
:class:`dnalm.training.run.PretrainTrainConfig` as it is; fine-tuning and the DNA+text stage
an :class:`AdamWSettings` with their own schedule. So a pretraining setting goes from the
run's settings to the optimizer step in this one module.

The learning-rate schedules are here too, as multipliers of the base rate (a function of
the step alone, so a resumed run follows the same schedule), since they exist to drive the
loop's LambdaLR: :func:`cosine_factor` (half a cosine from 1 at step `start` down to
`min_ratio` at `total`, `min_ratio` after it), :class:`WarmupCosine` (pretraining's linear
warm-up, then the cosine) and :func:`lr_factor` (fine-tuning's linear warm-up, then
"constant" or "cosine", used by dnalm.training.fit.fit).

Checkpoints (:mod:`dnalm.training.checkpoint` files): one format family
``dnalm.training.<loop>/<version>``, each with the common entries ``format``, ``setup``
(every setting that changes the result), ``optimizer``, ``scheduler``, ``rng`` (the RNG
states of every process, a list indexed by rank), ``step`` and ``early_stopping``, plus
the caller's. A run resumes only when its setup equals the checkpoint's
(:meth:`TrainingLoop.changes` names what changed); the caller decides whether a changed
setup starts over (pretraining) or is an error (fine-tuning)."""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import nn

from dnalm.core.config import check_lr_schedule
from dnalm.core.errors import ConfigError
from dnalm.training import checkpoint as ckpt
from dnalm.training import distributed as dd
from dnalm.training.core import EarlyStopping, param_groups
from dnalm.training.track import Tracker

LossFn = Callable[[Any], torch.Tensor]


# ---- learning-rate schedules (multipliers of the base rate)


def cosine_factor(step: int, start: int, total: int, min_ratio: float) -> float:
    """Multiplier at `step` of a cosine decay from 1 at `start` to `min_ratio` at `total`
    (1 before `start`, `min_ratio` from `total` on)."""
    span = max(1, total - start)
    progress = min(1.0, max(0.0, (step - start) / span))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_factor(
    step: int,
    warmup_steps: int = 0,
    total_steps: int | None = None,
    schedule: str = "constant",
    min_lr_ratio: float = 0.1,
) -> float:
    """The learning-rate multiplier of optimiser step `step` (0-based) in fine-tuning.

    Linear warm-up: (step + 1) / warmup_steps over the first `warmup_steps` steps. Then
    "constant": 1; "cosine": :func:`cosine_factor` from the end of the warm-up to
    `total_steps` (the run's step budget; without one, 1)."""
    check_lr_schedule(schedule)
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant" or not total_steps:
        return 1.0
    return cosine_factor(step, warmup_steps, total_steps, min_lr_ratio)


class WarmupCosine:
    """LR multiplier of pretraining: linear warm-up over `warmup` steps, cosine to
    `min_ratio` at `total`. A class (not a lambda) so LambdaLR's state_dict stays plain
    data."""

    def __init__(self, warmup: int, total: int, min_ratio: float):
        self.warmup, self.total, self.min_ratio = int(warmup), int(total), float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        return cosine_factor(step, self.warmup, self.total, self.min_ratio)


class OptimizerSettings(Protocol):
    """What :class:`TrainingLoop` reads of a run's training settings to build AdamW
    (:class:`dnalm.training.run.PretrainTrainConfig` and :class:`AdamWSettings` have it)."""

    lr: float
    weight_decay: float
    beta1: float
    beta2: float
    eps: float


@dataclass(frozen=True)
class AdamWSettings:
    """AdamW's settings for a caller without a settings dataclass of its own (fine-tuning's
    fit(), the DNA+text stage): `lr`, `weight_decay` (of the decayed group) and AdamW's own
    defaults for the rest."""

    lr: float
    weight_decay: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8


class DeviceTally:
    """Running loss sums kept on the device between log rows, so that the steps in between
    never wait for the device: :meth:`add` queues device work only, and :meth:`read` is the
    one host synchronisation of a log interval (and, across processes, the one all-reduce).

    It also records, on the device, the first step whose loss was not finite (0: none), so
    a diverged run is reported with its step at the next read: the steps after it have run,
    but no checkpoint is written before a read (the callers read before every checkpoint),
    so the last good checkpoint stays as it was. Sums are float64 (float32 on MPS, which has
    no float64), the same arithmetic as the Python floats of a per-step ``.item()``."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.dtype = torch.float32 if device.type == "mps" else torch.float64
        self.reset()

    def reset(self) -> None:
        self.sum = torch.zeros((), dtype=self.dtype, device=self.device)
        # the first step with a non-finite loss: (step, its loss, the caller's info); step 0: none
        self.bad = torch.zeros(3, dtype=self.dtype, device=self.device)
        self.steps = 0

    def add(
        self,
        loss: torch.Tensor,
        step: int,
        *,
        divide: float | None = None,
        times: float = 1.0,
        info: torch.Tensor | None = None,
    ) -> None:
        """Add ``loss / divide * times`` (`loss`: the detached loss tensor of `step`, counted
        from 1). `info`: a number (tensor) the caller wants back if this loss is the first
        non-finite one (e.g. the batch's count of non-finite targets)."""
        value = loss.detach().to(self.dtype)
        if divide is not None:
            value = value / divide
        self.sum = self.sum + value * times
        extra = torch.zeros((), dtype=self.dtype, device=self.device) if info is None else info
        new = torch.stack([torch.full_like(value, float(step)), value, extra.to(value)])
        first = (self.bad[0] == 0) & ~torch.isfinite(value)
        self.bad = torch.where(first, new, self.bad)
        self.steps += 1

    def read(self, world: int = 1) -> tuple[float, tuple[int, float, float] | None]:
        """(the sum, None or (the first step with a non-finite loss, that loss, its info))
        since the last reset, summed over the `world` processes (the first bad step of
        any), then reset. The one host synchronisation (and collective) of an interval."""
        both = torch.cat([self.sum.view(1), self.bad])
        if world > 1:
            parts = [torch.empty_like(both) for _ in range(world)]
            dist.all_gather(parts, both)
            both = torch.stack(parts)  # (world, 4)
        rows = both.view(-1, 4).tolist()
        self.reset()
        total = sum(r[0] for r in rows)
        bad = [r[1:] for r in rows if r[1] != 0]
        if not bad:
            return total, None
        step, value, info = min(bad)
        return total, (int(step), value, info)


class Prefetcher:
    """The batch source run one step ahead in a background thread: `make(step)` for
    step = start, start + 1, ... (below `stop`), each result put in a queue of `depth`
    entries, handed out in order by :meth:`get`. `make` must be a pure function of the step
    (no global RNG: pretraining's windows and MLM masks are functions of the seed, epoch and
    window), so the batches, and the run, are the same as built on the training thread.
    An error in `make` is raised by the :meth:`get` of its step. Close it (or use it as a
    context manager) to stop the thread."""

    def __init__(self, make: Callable[[int], Any], start: int, stop: int, depth: int = 2):
        self._make, self._next = make, start
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(start, stop), name="dnalm-prefetch", daemon=True
        )
        self._thread.start()

    def _put(self, item: tuple[int, Any, BaseException | None]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, start: int, stop: int) -> None:
        for step in range(start, stop):
            if self._stop.is_set():
                return
            try:
                item = (step, self._make(step), None)
            except BaseException as err:  # handed to the training thread
                self._put((step, None, err))
                return
            if not self._put(item):
                return

    def get(self, step: int) -> Any:
        """The batches of `step` (the next one in order)."""
        if step != self._next:
            raise RuntimeError(f"prefetcher asked for step {step}, it prepares step {self._next}")
        got, value, err = self._queue.get()
        self._next += 1
        if err is not None:
            raise err
        assert got == step
        return value

    def close(self) -> None:
        self._stop.set()
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._thread.join()

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TrainingLoop:
    """One training run's state and its steps (module docstring).

    model: the plain model (its parameters are the optimizer's). loss: ``loss(batch)``, a
    micro-batch's scalar loss. train: the training settings AdamW is built from
    (:class:`OptimizerSettings`; module docstring). schedule: the learning-rate multiplier
    of a step (a function of the step alone; None: :class:`WarmupCosine` of the settings'
    ``warmup_steps``, ``max_steps`` and ``min_lr_ratio``, pretraining's). params: the
    parameters AdamW trains (default: every parameter of the model with requires_grad).
    fused, foreach: AdamW's `fused` and `foreach` (None: torch's choice). module, replica:
    the wrapper (default: the model itself, no replica). grad_clip: the gradient-norm limit
    (None or 0: none) over `clip_params` (default: every parameter of the model). stopper:
    early stopping on the evaluations. fmt, setup: a checkpoint's ``format`` and ``setup``.
    world, rank: the processes of a torchrun job. tracker: where the caller's curve rows go
    besides curves.csv (:meth:`track`; dnalm.training.track; default: nowhere)."""

    def __init__(
        self,
        model: nn.Module,
        loss: LossFn,
        train: OptimizerSettings,
        *,
        schedule: Callable[[int], float] | None = None,
        params: Iterable[nn.Parameter] | None = None,
        fused: bool | None = None,
        foreach: bool | None = None,
        device: torch.device,
        precision: str = "fp32",
        module: nn.Module | None = None,
        replica: nn.Module | None = None,
        grad_clip: float | None = None,
        clip_params: Sequence[nn.Parameter] | None = None,
        stopper: EarlyStopping | None = None,
        fmt: str = "",
        setup: Mapping[str, Any] | None = None,
        world: int = 1,
        rank: int = 0,
        tracker: Tracker | None = None,
    ) -> None:
        self.model, self.loss = model, loss
        self.tracker = tracker or Tracker()
        self.optimizer = torch.optim.AdamW(
            param_groups(model, train.weight_decay, params),
            lr=train.lr,
            betas=(train.beta1, train.beta2),
            eps=train.eps,
            fused=fused,
            foreach=foreach,
        )
        if schedule is None:  # the settings' own warm-up and cosine decay (pretraining)
            warmup, total = train.warmup_steps, train.max_steps  # type: ignore[attr-defined]
            schedule = WarmupCosine(warmup, total, train.min_lr_ratio)  # type: ignore[attr-defined]
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.device, self.precision = device, precision
        self.module = model if module is None else module
        self.replica = replica
        self.grad_clip = grad_clip
        self.clip_params = clip_params
        self.stopper = stopper or EarlyStopping(None)
        self.fmt = fmt
        self.setup = dict(setup or {})
        self.world, self.rank = world, rank
        self.step = 0
        self.best_step = 0

    # ---- steps

    @property
    def lr(self) -> float:
        """The learning rate of the next optimizer step."""
        return self.scheduler.get_last_lr()[0]

    @property
    def base_lr(self) -> float:
        """The settings' learning rate, before the schedule's multiplier."""
        return self.scheduler.base_lrs[0]

    def train_step(
        self,
        batches: Sequence[Any],
        *,
        scale: float | None = None,
        guard: Callable[[torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """One optimizer step over the micro-batches `batches`: the gradient of
        ``loss(batch) * scale`` (``scale`` None: the loss itself) accumulated over them
        (gradients reduced over processes at the last one only), then `guard(loss sum)`
        (it raises to refuse the step, e.g. on a non-finite loss: the gradients are dropped
        and nothing changes), gradient clipping, the optimizer and scheduler steps.
        Returns the sum of the micro-batch losses (detached)."""
        if not batches:
            raise ValueError("an optimizer step needs at least one micro-batch")
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.device)  # promoted to the losses' dtype
        last = len(batches) - 1
        for i, batch in enumerate(batches):
            with dd.grad_sync(self.module, self.world == 1 or i == last):
                loss = self.loss(batch)
                (loss if scale is None else loss * scale).backward()
            total = total + loss.detach()
        if guard is not None:
            try:
                guard(total)
            except BaseException:
                self.optimizer.zero_grad(set_to_none=True)
                raise
        if self.grad_clip:
            params = self.model.parameters() if self.clip_params is None else self.clip_params
            nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return total

    # ---- curves

    def track(self, *rows: Mapping[str, Any]) -> None:
        """Send curves.csv rows (each with its ``step``) to the run's tracker: the caller
        calls it for every row it records, and after a resume with the checkpoint's rows."""
        for row in rows:
            self.tracker.log_row(row)

    # ---- evaluation

    def plain_model(self) -> nn.Module:
        """The unsharded model with the current weights (under FSDP2 the replica, refreshed
        from the shards: collective, every process calls it)."""
        if self.replica is None:
            return self.model
        dd.refresh_replica(self.model, self.replica, self.step)
        return self.replica

    def evaluate(self, key: float) -> bool:
        """Record an evaluation (the caller's validation pass) whose early-stopping value is
        `key`: True when it improved on the best (the best step becomes this step)."""
        improved = self.stopper.update(key)
        if improved:
            self.best_step = self.step
        return improved

    @property
    def stopped(self) -> bool:
        return self.stopper.stopped

    @property
    def best(self) -> float:
        """The best early-stopping value so far (inf before the first evaluation)."""
        return math.inf if self.stopper.best is None else self.stopper.best

    # ---- checkpoints

    def rng_states(self) -> list[dict[str, Any]]:
        """The RNG states of every process (collective under torchrun)."""
        rng = ckpt.capture_rng()
        if self.world <= 1:
            return [rng]
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, rng)
        return gathered

    def state_dict(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A checkpoint's trainer_state (module docstring), with the caller's `extra`
        entries (collective under torchrun)."""
        return {
            "format": self.fmt,
            "setup": self.setup,
            "optimizer": dd.optimizer_state(self.model, self.optimizer),
            "scheduler": self.scheduler.state_dict(),
            "rng": self.rng_states(),
            "step": self.step,
            "best_step": self.best_step,
            "early_stopping": self.stopper.state_dict(),
            **(extra or {}),
        }

    def checkpoint(
        self,
        root: str | Path,
        best: bool,
        extra: Mapping[str, Any] | None = None,
        skip: frozenset[str] = frozenset(),
    ) -> None:
        """Write the checkpoint of this step to `root` (rank 0; every process calls it):
        weights (without the state-dict names `skip`) and the trainer state."""
        state = self.state_dict(extra)
        model = self.plain_model()
        if self.rank == 0:
            ckpt.save_checkpoint(root, self.step, model, state, best, skip=skip)
        if self.world > 1:
            dist.barrier()

    def changes(self, state: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
        """What differs between the setup of the checkpoint `state` and this run's
        (checkpoint.setup_changes; empty: it may resume)."""
        return ckpt.setup_changes(state.get("setup"), self.setup)

    def resume(
        self, folder: Path, state: Mapping[str, Any], skip: frozenset[str] = frozenset()
    ) -> None:
        """Load the checkpoint `folder` (its trainer state `state`, already checked with
        :meth:`changes`): weights (those not in `skip`), optimizer, scheduler, step,
        early stopping. The RNG states are restored separately (:meth:`restore_rng`), since
        a caller may first replay a part of the data."""
        rngs = state["rng"]
        if isinstance(rngs, list) and len(rngs) != self.world:
            raise ConfigError(
                f"cannot resume from {folder}: it was saved by {len(rngs)} process(es), this "
                f"run has {self.world}; run with {len(rngs)} process(es) to resume, or delete "
                f"the folder {folder.parent} to start over"
            )
        plain = self.model if self.replica is None else self.replica
        ckpt.load_weights(folder, plain, device=self.device, skip=skip)
        step = int(state["step"])
        if self.replica is not None:
            dd.load_model_state(self.model, self.replica, step)
        dd.load_optimizer_state(self.model, self.optimizer, state["optimizer"])
        if "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        else:  # a checkpoint of fit() before it had a scheduler: the rate of `step`
            self.seek_schedule(step)
        self.step = step
        self.best_step = int(state.get("best_step", 0))
        self.stopper.load_state_dict(state["early_stopping"])

    def seek_schedule(self, step: int) -> None:
        """Put the scheduler at `step` (the optimizer's rates those of that step)."""
        sched = self.scheduler
        sched.last_epoch = step
        lrs = [base * fn(step) for base, fn in zip(sched.base_lrs, sched.lr_lambdas, strict=True)]
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        sched._last_lr = lrs

    def restore_rng(self, rng: list[dict[str, Any]] | dict[str, Any]) -> None:
        """Restore this process's RNG states from a checkpoint's ``rng`` entry."""
        ckpt.restore_rng(rng[self.rank] if isinstance(rng, list) else rng)
