"""The pieces of the one training loop (:class:`dnalm.training.loop.TrainingLoop`) that its
users share: pretraining (:class:`dnalm.training.pretrain.Trainer`), the epoch runs of
fine-tuning and the one-hot CNN (:func:`dnalm.training.fit.fit`) and the DNA+text stage.

Each piece exists once; the users differ only where their work does (DDP over token
windows against epochs over task arrays, partial frozen checkpoints):

* device: :func:`dnalm.core.device.select_device` (CUDA, then Apple MPS, then the CPU);
* precision: :func:`resolve_precision` and :func:`autocast`;
* optimizer: :func:`param_groups` for AdamW, with the one weight-decay rule below;
* learning-rate schedule: :class:`dnalm.training.loop.WarmupCosine` and
  :func:`dnalm.training.loop.lr_factor`;
* early stopping: :class:`EarlyStopping`;
* curves: :func:`write_curves` (one atomic writer; each loop has its own columns);
* divergence: :func:`divergence_error` builds the one
  :class:`dnalm.core.errors.TrainingDivergedError`;
* checkpoints: :mod:`dnalm.training.checkpoint` (files, the `format` and `setup` entries
  and :func:`dnalm.training.checkpoint.setup_changes`, the check of the recorded setup),
  written and read by :meth:`dnalm.training.loop.TrainingLoop.checkpoint` and ``resume``.

Weight-decay rule (:func:`param_groups`): AdamW's decoupled weight decay applies to every
trained parameter with two or more dimensions (weight matrices of linear layers,
convolution kernels) except embedding tables (token and position embeddings, and an output
layer tied to them); biases, normalisation scales and shifts (LayerNorm, BatchNorm) and any
other vector or scalar are not decayed. Decaying those pulls scales, offsets and rare-token
rows towards zero for no regularisation benefit. A state-space mixer's ``A_log`` (a matrix in
Mamba) is not decayed either, as in the Mamba recipe: it sets the decay rates of the state,
and pulling it to zero would give every state channel the same rate.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from dnalm.core.config import PRECISIONS
from dnalm.core.device import bf16_supported
from dnalm.core.errors import ConfigError, TrainingDivergedError
from dnalm.core.io import atomic_write
from dnalm.training import checkpoint as ckpt

# --------------------------------------------------------------------------- distributed


def dist_info() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the torchrun environment (1 process without)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def all_reduce_sum(values: list[float], device) -> list[float]:
    """`values` summed over the processes of a torchrun job (themselves with one process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


# --------------------------------------------------------------------------- precision


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """The resolved precision, "bf16" or "fp32", of `precision` on `device`: "auto" is bf16
    autocast on a CUDA GPU with bf16 support (:func:`dnalm.core.device.bf16_supported`:
    compute capability 8.0 and newer) and fp32 elsewhere: on older GPUs (V100, T4), where
    bf16 is emulated or missing, and on the CPU (bf16 there is slow and changes results).
    fp16 with a loss scaler is not offered: fp32 on an old GPU is slower but needs no
    scaler and cannot overflow. "bf16" / "fp32" force it; "bf16" on a CUDA GPU without bf16
    support is a ConfigError."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    dev = torch.device(device)
    if precision == "auto":
        return "bf16" if bf16_supported(dev) else "fp32"
    if precision == "bf16" and dev.type == "cuda" and not bf16_supported(dev):
        raise ConfigError(
            f"precision: bf16 was requested but {dev} has no bf16 support (compute capability "
            f"{'.'.join(map(str, torch.cuda.get_device_capability(dev)))}, needs 8.0); set "
            "precision: auto or fp32"
        )
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for the forward pass under precision "bf16", nothing for "fp32"."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def amp_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a resolved precision (None: no autocast)."""
    return torch.bfloat16 if precision == "bf16" else None


# --------------------------------------------------------------------------- optimizer


def decays(module: torch.nn.Module, param: torch.nn.Parameter) -> bool:
    """The weight-decay rule (module docstring): True for a parameter of `module` that
    AdamW decays."""
    if getattr(module, "A_log", None) is param:  # Mamba's state decay rates
        return False
    return param.ndim >= 2 and not isinstance(module, torch.nn.Embedding)


def param_groups(
    model: torch.nn.Module,
    weight_decay: float,
    parameters: Iterable[torch.nn.Parameter] | None = None,
) -> list[dict[str, Any]]:
    """AdamW parameter groups of `model` under the weight-decay rule (module docstring):
    ``[{"params": decayed, "weight_decay": weight_decay}, {"params": rest, "weight_decay":
    0.0}]``, empty groups left out. Only parameters with requires_grad take part, and only
    those in `parameters` when given (a frozen backbone: the head's parameters). A tied
    parameter counts once, under the first module that holds it (an embedding table)."""
    only = None if parameters is None else {id(p) for p in parameters}
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        for param in module.parameters(recurse=False):
            if id(param) in seen or not param.requires_grad:
                continue
            if only is not None and id(param) not in only:
                continue
            seen.add(id(param))
            (decay if decays(module, param) else no_decay).append(param)
    for param in parameters or ():  # given but not part of `model`: by shape alone
        if id(param) not in seen and param.requires_grad:
            seen.add(id(param))
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


# --------------------------------------------------------------------------- early stopping


class EarlyStopping:
    """Early stopping on a validation value: lower is better (a loss) unless
    `higher_is_better`. An evaluation improves when it beats the best by more than
    `min_delta` (the first one always does); after `patience` evaluations in a row without
    improvement, `stopped` is set (patience None: never)."""

    def __init__(
        self, patience: int | None, *, higher_is_better: bool = False, min_delta: float = 0.0
    ) -> None:
        self.patience = patience
        self.higher_is_better = higher_is_better
        self.min_delta = float(min_delta)
        self.best: float | None = None
        self.bad_evals = 0
        self.stopped = False

    def update(self, value: float) -> bool:
        """Record one evaluation; True when it improved on the best so far."""
        if self.best is None:
            improved = True
        elif self.higher_is_better:
            improved = value > self.best + self.min_delta
        else:
            improved = value < self.best - self.min_delta
        if improved:
            self.best, self.bad_evals = value, 0
        else:
            self.bad_evals += 1
            if self.patience is not None and self.bad_evals >= self.patience:
                self.stopped = True
        return improved

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_evals": self.bad_evals, "stopped": self.stopped}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        best = state["best"]
        self.best = None if best is None else float(best)
        self.bad_evals = int(state["bad_evals"])
        self.stopped = bool(state["stopped"])


# --------------------------------------------------------------------------- curves


def format_value(value: Any) -> str:
    """A curves.csv cell: empty for None, 6 significant digits for floats."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def curve_line(row: Mapping[str, Any], columns: Sequence[str]) -> str:
    """The curves.csv line (newline included) of one row."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([format_value(row.get(c)) for c in columns])
    return buf.getvalue()


def write_curves(
    path: str | Path,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    lines: Sequence[str] | None = None,
) -> None:
    """Write curves.csv atomically: a header of `columns`, then one line per row. `lines`:
    the rows already formatted by :func:`curve_line` (a loop that rewrites the file at
    every row keeps them, so each new row costs one line's formatting)."""
    if lines is None:
        lines = [curve_line(row, columns) for row in rows]
    with atomic_write(path) as fh:
        fh.write(",".join(columns) + "\n")
        fh.writelines(lines)


# --------------------------------------------------------------------------- divergence


def divergence_error(
    what: str, value: float, where: str, cause: str, root: Path | None, rerun: str
) -> TrainingDivergedError:
    """The error of a run whose loss became NaN or infinite: "`what` is `value` `where`:
    `cause`.", then what became of the checkpoints in `root` and `rerun` (what a rerun
    does with them)."""
    msg = f"{what} is {value} {where}: {cause}."
    if root is not None:
        last = ckpt.last_checkpoint(root)
        if last is not None:
            msg += f" The last checkpoint {last} (step {ckpt.folder_step(last)}) is intact; "
            msg += rerun
        else:
            msg += f" No checkpoint was written to {root} yet."
    return TrainingDivergedError(msg)
