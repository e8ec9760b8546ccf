"""What one pretraining run is: :class:`PretrainRun`, the typed object that the workflow
script, ``dnalm pretrain`` and the torchrun workers hand to
:func:`dnalm.training.pretrain.run_pretraining` (one process) or
:func:`dnalm.training.distributed.launch` (several), and its training settings
:class:`PretrainTrainConfig` (``pretrain.train``).

Torch-free: the plan reads the settings' keys at DAG build (dnalm.plan.sections)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from dnalm.core.config import PRECISIONS, Section
from dnalm.core.errors import ConfigError
from dnalm.core.io import atomic_write

#: the worker module torchrun starts (``python -m dnalm.training.worker RUN_JSON``)
WORKER_MODULE = "dnalm.training.worker"


@dataclass
class PretrainTrainConfig(Section):
    """Pretraining settings (``pretrain.train``; a model's ``train`` overrides them). The
    schema (workflow/schemas/config.schema.yaml) gives the same defaults. The optimizer
    settings (``lr``, ``weight_decay``, ``beta1``, ``beta2``, ``eps``) and the schedule's
    (``warmup_steps``, ``max_steps``, ``min_lr_ratio``) are read by the training loop itself
    (:class:`dnalm.training.loop.TrainingLoop`), which builds AdamW and its schedule from
    them."""

    label: ClassVar[str] = "training"

    seed: int = 0
    micro_batch_size: int = 16  # windows per process per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    max_steps: int = 2000
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # final lr = lr * min_lr_ratio
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float | None = 1.0  # max global grad norm; 0 or None: off
    eval_interval: int = 100  # steps between validations (and checkpoints by default)
    checkpoint_interval: int | None = None  # steps between checkpoints (None: every evaluation)
    eval_batches: int | None = 50  # validation batches per evaluation (None: the whole split)
    eval_batch_size: int | None = None  # None: micro_batch_size
    log_interval: int = 10  # steps between rows of curves.csv
    patience: int | None = 10  # evaluations without improvement before stopping (None: never)
    min_delta: float = 0.0  # improvement smaller than this does not count
    mask_prob: float = 0.15  # mlm only
    mask_span: int | None = None  # mlm only; None: k for overlapping k-mers, else 1
    lowercase_loss_weight: float = 1.0  # loss weight of soft-masked (lower-case) targets
    baseline_order: int | None = None  # None: 0, 1, 2 for codon tokens, else the largest affordable
    baseline_alpha: float | None = None  # None: 0.01 for codon tokens, else 1 (add-one)
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | bf16 | fp32
    compile: bool = False  # torch.compile the model
    threads: int | None = None  # torch CPU threads (None: torch's default)
    test_eval: bool = True  # score the test split and the baseline at the end
    keep_checkpoints: bool = False  # keep the weights of every checkpoint (checkpoint analytics)

    def check(self) -> None:
        for key in ("micro_batch_size", "grad_accum", "max_steps", "eval_interval", "log_interval"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"training setting {key} must be a positive integer, got {value}")
        ci = self.checkpoint_interval
        if ci is not None and (isinstance(ci, bool) or not isinstance(ci, int) or ci < 1):
            raise ConfigError(
                f"pretrain.train.checkpoint_interval must be a positive integer or null (every "
                f"evaluation), got {ci!r}"
            )
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        w = self.lowercase_loss_weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 <= w <= 1.0:
            raise ConfigError(
                f"pretrain.train.lowercase_loss_weight must be a number in [0, 1], got {w!r}"
            )


@dataclass
class PretrainRun:
    """One pretraining run: a `objective` ('gpt' | 'mlm') model of architecture `arch`
    (None: the objective's default; modeling.models.ARCHS) and `preset` (with the
    architecture `overrides`) trained on the corpus folder `corpus_dir` into the model
    folder `out_dir`. `train`: the training settings (:class:`PretrainTrainConfig`; a
    mapping is completed with its defaults and checked). `loss`, `loss_options`: the
    pretraining loss (training.objectives). `resume`: continue from the checkpoints of the
    same setup (False: start over). `strategy`: ddp | fsdp, how several processes split the
    model; `gpus`, `nodes`: processes per node and nodes (launch: training.distributed).
    `cpus`: the CPUs of each node (the rule's threads: pretrain.threads CPUs per GPU x the
    GPUs): the CPUs of the node's srun task, and, split over the node's processes, each
    process's torch threads unless ``train.threads`` is set. `tracking`: where the run's
    curves, settings and final metrics are sent besides its files (the plan's
    ``Plan.tracking``: backend, experiment, dir, run; None: nowhere; dnalm.training.track)."""

    corpus_dir: Path
    out_dir: Path
    objective: str
    preset: str = "tiny"
    overrides: dict[str, Any] = field(default_factory=dict)
    train: PretrainTrainConfig = field(default_factory=PretrainTrainConfig)
    resume: bool = True
    loss: str = "ce"
    loss_options: dict[str, Any] = field(default_factory=dict)
    arch: str | None = None
    strategy: str = "ddp"
    gpus: int = 1
    nodes: int = 1
    cpus: int | None = None
    tracking: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.corpus_dir, self.out_dir = Path(self.corpus_dir), Path(self.out_dir)
        self.overrides = dict(self.overrides or {})
        if not isinstance(self.train, PretrainTrainConfig):
            self.train = PretrainTrainConfig.from_dict(self.train)
        self.loss = self.loss or "ce"
        self.loss_options = dict(self.loss_options or {})
        self.gpus, self.nodes = int(self.gpus), int(self.nodes)
        if self.cpus is not None:
            self.cpus = int(self.cpus)
            if self.train.threads is None:  # each process its share of the node's CPUs
                self.train.threads = max(1, self.cpus // max(self.gpus, 1))

    @property
    def several_processes(self) -> bool:
        return self.gpus > 1 or self.nodes > 1

    def loss_spec(self) -> dict[str, Any]:
        """The model entry's {loss, loss_options} (training.objectives.build_objective)."""
        return {"loss": self.loss, "loss_options": self.loss_options}

    # ---- the workers' copy (torchrun starts fresh processes)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["corpus_dir"], out["out_dir"] = os.fspath(self.corpus_dir), os.fspath(self.out_dir)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainRun:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: str | os.PathLike) -> Path:
        """Write the run to `path` (JSON; floats round-trip exactly) for the workers."""
        with atomic_write(path) as fh:
            json.dump(self.to_dict(), fh, indent=1)
            fh.write("\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PretrainRun:
        return cls.from_dict(json.loads(Path(path).read_text()))
