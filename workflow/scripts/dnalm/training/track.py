"""Run tracking (the ``tracking`` config section): the curves, the resolved settings and the
final metrics of pretraining and fine-tuning runs sent to TensorBoard, MLflow or Weights &
Biases, beside the files the workflow writes anyway (curves.csv, run.json, metrics.json).

One interface, :class:`Tracker` (which is also the ``none`` backend: it sends nothing), and
one class per backend. The training loop (:class:`dnalm.training.loop.TrainingLoop`) hands
the tracker every row it records in curves.csv (:meth:`Tracker.log_row`, the same values,
``step`` as the step); the run's entry point (pretraining's
:func:`dnalm.training.pretrain.run_pretraining`, :func:`dnalm.finetuning.finetune.finetune`)
opens it with :func:`open_tracker`, which sends the resolved settings, and sends the final
metrics (``metrics.json``) when the run ends.

Where each backend writes (``dir``: ``results/tracking`` by default):

``tensorboard``  event files under ``dir/tensorboard/<run>/`` (torch.utils.tensorboard's
                 SummaryWriter): a scalar per curves.csv column, the settings as the text
                 ``config`` (JSON), the final metrics as scalars ``final/<key>``;
``mlflow``       the file store ``dir/mlruns`` (a ``file:`` URI; mlflow-skinny), experiment
                 `experiment`: a metric per column with its step, the settings as params
                 (flattened, ``a.b``) and the artifact ``config.json``, the final metrics as
                 metrics ``final/<key>``, the run's status FINISHED or FAILED;
``wandb``        offline runs under ``dir/wandb/`` (``WANDB_MODE=offline``; ``wandb sync``
                 uploads them), project `experiment`: the rows logged at their step, the
                 settings as the run's config, the final metrics in its summary.

A run is named as the workflow names it (``pretrain/<model>``, ``finetune/<task>/<run>``:
its log file's name). A rerun of the same run replaces the earlier tracked run (its event
folder, its MLflow run, its offline W&B folder), and a resumed run sends the rows of its
checkpoint again first, so the tracked curves always equal the run's curves.csv. Only the
process of rank 0 tracks.

Torch-free at import: the plan reads :data:`BACKENDS` and :func:`check_backend` at DAG build,
and each backend imports its package only when a run opens (the ``tracking`` extra of
pyproject.toml; none of them is in the base install).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnalm.core.artifacts import CONFIG_JSON, MLRUNS_DIR
from dnalm.core.errors import ConfigError

#: the values of ``tracking.backend``
BACKENDS = ("none", "tensorboard", "mlflow", "wandb")
#: backend -> (the module it imports, the distribution that provides it, its pin)
PACKAGES: dict[str, tuple[str, str, str]] = {
    "tensorboard": ("tensorboard", "tensorboard", "2.21.0"),
    "mlflow": ("mlflow", "mlflow-skinny", "3.18.0"),
    "wandb": ("wandb", "wandb", "0.31.0"),
}


def missing_package(backend: str) -> str | None:
    """The distribution (``name==version``) that `backend` needs and this Python lacks, or
    None (found without importing it)."""
    if backend not in PACKAGES:
        return None
    module, dist, version = PACKAGES[backend]
    return None if importlib.util.find_spec(module) is not None else f"{dist}=={version}"


def check_backend(backend: Any, where: str = "tracking.backend") -> str:
    """`backend` when it is one of :data:`BACKENDS` and its package is installed; else a
    ConfigError naming the key and what to install."""
    if backend not in BACKENDS:
        raise ConfigError(f"{where}: {backend!r} is not one of {', '.join(BACKENDS)}")
    missing = missing_package(backend)
    if missing:
        raise ConfigError(
            f"{where}: {backend} needs the package {missing}, which is not installed where "
            f"the workflow runs; install it with `pip install {missing}` (or `pip install "
            f"-e '.[tracking]'` for every backend), or set {where}: none"
        )
    return backend


@dataclass(frozen=True)
class TrackingSpec:
    """What one run tracks (the plan's :meth:`dnalm.plan.plan.Plan.tracking`): `backend`
    (:data:`BACKENDS`), `experiment` (the MLflow experiment or W&B project), `dir` (the
    folder of the backends' files) and `run` (the run's name)."""

    backend: str
    experiment: str
    dir: str
    run: str

    @classmethod
    def of(cls, spec: TrackingSpec | Mapping[str, Any]) -> TrackingSpec:
        if isinstance(spec, TrackingSpec):
            return spec
        missing = [k for k in cls.__dataclass_fields__ if k not in spec]
        if missing:
            raise ConfigError(f"tracking settings {dict(spec)} lack {', '.join(missing)}")
        return cls(**{k: spec[k] for k in cls.__dataclass_fields__})


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, leaf) of every leaf of nested mappings and lists (a list item by its
    ``name`` when it has one, else by its index)."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list | tuple) and any(isinstance(v, Mapping | list) for v in value):
        for i, v in enumerate(value):
            name = v.get("name") if isinstance(v, Mapping) else None
            yield from flatten(v, f"{prefix}.{name if name is not None else i}")
    else:
        yield prefix, value


def numbers(value: Any) -> dict[str, float]:
    """The finite numeric leaves of `value` (:func:`flatten`; booleans left out)."""
    return {
        k: float(v)
        for k, v in flatten(value)
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def row_values(row: Mapping[str, Any]) -> tuple[int, dict[str, float]]:
    """(step, {column: value}) of one curves.csv row: every numeric cell but the step,
    empty (None) and NaN cells left out, as curves.csv leaves them empty or NaN."""
    values = {k: v for k, v in numbers(dict(row)).items() if k != "step"}
    return int(row["step"]), values


class Tracker:
    """The interface of every backend, and the ``none`` backend itself (sends nothing).
    A context manager: leaving it by an exception closes the run as failed."""

    def log_config(self, config: Mapping[str, Any]) -> None:
        """The run's resolved settings."""

    def log_row(self, row: Mapping[str, Any]) -> None:
        """One curves.csv row (its ``step`` is the step)."""

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        """The final metrics (metrics.json's numbers) at the last `step`."""

    def close(self, failed: bool = False) -> None:
        """End the run (`failed`: it stopped on an error)."""

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(failed=exc_type is not None)


def _run_id(run: str) -> str:
    """A W&B run id for the run name `run` (letters, digits, '_' and '-'; at most 64
    characters, a long name ending in a hash of the whole)."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", run).strip("-") or "run"
    if len(safe) <= 64:
        return safe
    return f"{safe[:55]}-{hashlib.sha1(run.encode()).hexdigest()[:8]}"


class TensorBoardTracker(Tracker):
    """Event files under ``dir/tensorboard/<run>/`` (module docstring)."""

    def __init__(self, spec: TrackingSpec) -> None:
        from torch.utils.tensorboard import SummaryWriter  # lazy: the tracking extra

        self.folder = Path(spec.dir) / "tensorboard" / spec.run
        shutil.rmtree(self.folder, ignore_errors=True)  # a rerun replaces the earlier run
        self.writer = SummaryWriter(log_dir=str(self.folder))
        self.step = 0

    def log_config(self, config: Mapping[str, Any]) -> None:
        text = json.dumps(config, indent=1, sort_keys=True, default=str)
        self.writer.add_text("config", f"```json\n{text}\n```", 0)

    def log_row(self, row: Mapping[str, Any]) -> None:
        step, values = row_values(row)
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        self.step = max(self.step, step)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        for key, value in numbers(metrics).items():
            self.writer.add_scalar(f"final/{key}", value, step)

    def close(self, failed: bool = False) -> None:
        self.writer.close()


class MlflowTracker(Tracker):
    """A run in the MLflow file store ``dir/mlruns`` (module docstring)."""

    def __init__(self, spec: TrackingSpec) -> None:
        # mlflow 3 refuses a file store unless told that it is wanted
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.entities import Metric, Param  # lazy: the tracking extra
        from mlflow.tracking import MlflowClient  # lazy: the tracking extra

        self.Metric, self.Param = Metric, Param
        store = Path(spec.dir) / MLRUNS_DIR
        store.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=store.resolve().as_uri())
        exp = self.client.get_experiment_by_name(spec.experiment)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(spec.experiment)
        name = spec.run.replace("'", "")
        for old in self.client.search_runs([exp_id], f"tags.`mlflow.runName` = '{name}'"):
            self.client.delete_run(old.info.run_id)  # a rerun replaces the earlier run
        self.run_id = self.client.create_run(exp_id, run_name=spec.run).info.run_id

    def _metrics(self, values: Mapping[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        metrics = [self.Metric(k, v, now, step) for k, v in values.items()]
        for i in range(0, len(metrics), 1000):  # log_batch takes 1000 metrics at most
            self.client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def log_config(self, config: Mapping[str, Any]) -> None:
        params = [
            self.Param(k, json.dumps(v, default=str) if not isinstance(v, str) else v)
            for k, v in flatten(dict(config))
        ]
        for i in range(0, len(params), 100):  # log_batch takes 100 params at most
            self.client.log_batch(self.run_id, params=params[i : i + 100])
        plain = json.loads(json.dumps(config, default=str))
        self.client.log_dict(self.run_id, plain, CONFIG_JSON)

    def log_row(self, row: Mapping[str, Any]) -> None:
        step, values = row_values(row)
        self._metrics(values, step)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        self._metrics({f"final/{k}": v for k, v in numbers(metrics).items()}, step)

    def close(self, failed: bool = False) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")


class WandbTracker(Tracker):
    """An offline W&B run under ``dir/wandb/`` (module docstring)."""

    def __init__(self, spec: TrackingSpec) -> None:
        os.environ["WANDB_MODE"] = "offline"
        import wandb  # lazy: the tracking extra

        root = Path(spec.dir)
        run_id = _run_id(spec.run)
        for old in (root / "wandb").glob(f"offline-run-*-{run_id}"):
            shutil.rmtree(old, ignore_errors=True)  # a rerun replaces the earlier run
        root.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=spec.experiment, name=spec.run, id=run_id, dir=str(root), mode="offline"
        )

    def log_config(self, config: Mapping[str, Any]) -> None:
        self.run.config.update(json.loads(json.dumps(config, default=str)))

    def log_row(self, row: Mapping[str, Any]) -> None:
        step, values = row_values(row)
        self.run.log(values, step=step)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        self.run.summary.update({f"final/{k}": v for k, v in numbers(metrics).items()})

    def close(self, failed: bool = False) -> None:
        self.run.finish(exit_code=1 if failed else 0)


TRACKERS: dict[str, type[Tracker]] = {
    "none": Tracker,
    "tensorboard": TensorBoardTracker,
    "mlflow": MlflowTracker,
    "wandb": WandbTracker,
}


def open_tracker(
    spec: TrackingSpec | Mapping[str, Any] | None,
    config: Mapping[str, Any] | None = None,
    rank: int = 0,
) -> Tracker:
    """Start the tracked run of `spec` (None or backend ``none``, or a process of rank
    other than 0: a Tracker that sends nothing), replacing an earlier run of the same name,
    and send its resolved settings `config`."""
    if not spec or rank != 0:
        return Tracker()
    spec = TrackingSpec.of(spec)
    if spec.backend == "none":
        return Tracker()
    check_backend(spec.backend)
    tracker = TRACKERS[spec.backend](spec)
    if config is not None:
        tracker.log_config(config)
    return tracker
