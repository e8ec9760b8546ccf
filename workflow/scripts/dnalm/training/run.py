"""What one pretraining run is: :class:`PretrainRun`, the typed object that the workflow
script, ``dnalm pretrain`` and the torchrun workers hand to
:func:`dnalm.training.pretrain.run_pretraining` (one process) or
:func:`dnalm.training.distributed.launch` (several)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dnalm.core.config import PretrainTrainConfig
from dnalm.core.io import atomic_write

#: the worker module torchrun starts (``python -m dnalm.training.worker RUN_JSON``)
WORKER_MODULE = "dnalm.training.worker"


@dataclass
class PretrainRun:
    """One pretraining run: a `objective` ('gpt' | 'mlm') model of architecture `arch`
    (None: the objective's default; modeling.models.ARCHS) and `preset` (with the
    architecture `overrides`) trained on the corpus folder `corpus_dir` into the model
    folder `out_dir`. `train`: the training settings (core.config.PretrainTrainConfig; a
    mapping is completed with its defaults and checked). `loss`, `loss_options`: the
    pretraining loss (training.objectives). `resume`: continue from the checkpoints of the
    same setup (False: start over). `strategy`: ddp | fsdp, how several processes split the
    model; `gpus`, `nodes`: processes per node and nodes (launch: training.distributed).
    `cpus`: the CPUs of each node (the rule's threads: pretrain.threads CPUs per GPU x the
    GPUs): the CPUs of the node's srun task, and, split over the node's processes, each
    process's torch threads unless ``train.threads`` is set."""

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
