"""The config's settings sections, by config path, with their dataclass: the shared,
per-model, per-sweep, per-run and per-task training settings (:func:`training_settings`),
checked for unknown keys before the schema (:func:`check_config_keys`) and kept as the user
wrote them while the schema fills in its defaults elsewhere (:func:`user_training_settings`,
:func:`restore_training_settings`).

The sections' dataclasses live with the code that reads them: pretraining's
(:class:`dnalm.training.run.PretrainTrainConfig`) beside the run it configures, the others in
:mod:`dnalm.core.config`. Torch-free (DAG build)."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from dnalm.core.config import (
    CNNTrainConfig,
    FinetuneTrainConfig,
    KmerBaselineConfig,
    ProbeConfig,
    Section,
    UMAPConfig,
    section_keys,
    submapping,
    unknown_keys_message,
)
from dnalm.core.errors import ConfigError
from dnalm.training.run import PretrainTrainConfig

#: Sections of the config and their dataclass, for :func:`check_config_keys`.
SECTION_CLASSES: dict[str, type[Section]] = {
    "pretrain.train": PretrainTrainConfig,
    "finetune.train": FinetuneTrainConfig,
    "baselines.onehot_cnn.train": CNNTrainConfig,
    "baselines.kmer": KmerBaselineConfig,
    "probe": ProbeConfig,
    "probe.umap": UMAPConfig,
}


def training_settings(config: Mapping[str, Any]) -> Iterator[tuple[str, Mapping, str, type]]:
    """(config path, parent mapping, key, dataclass) of every settings mapping of the
    training sections present in `config`: shared ``train``, per-model, per-run and per-task."""
    pretrain = submapping(config, "pretrain")
    yield "pretrain.train", pretrain, "train", PretrainTrainConfig
    for name, spec in submapping(pretrain, "models").items():
        yield f"pretrain.models.{name}.train", spec, "train", PretrainTrainConfig
    for name, sweep in submapping(config, "sweeps").items():
        yield f"sweeps.{name}.train", sweep, "train", PretrainTrainConfig
    finetune = submapping(config, "finetune")
    yield "finetune.train", finetune, "train", FinetuneTrainConfig
    per_task = submapping(finetune, "per_task")
    for task in per_task:
        yield f"finetune.per_task.{task}", per_task, task, FinetuneTrainConfig
    for name, run in submapping(finetune, "runs").items():
        yield f"finetune.runs.{name}.train", run, "train", FinetuneTrainConfig
    cnn = submapping(submapping(config, "baselines"), "onehot_cnn")
    yield "baselines.onehot_cnn.train", cnn, "train", CNNTrainConfig
    per_task = submapping(cnn, "per_task")
    for task in per_task:
        yield f"baselines.onehot_cnn.per_task.{task}", per_task, task, CNNTrainConfig


def check_config_keys(config: Mapping[str, Any]) -> None:
    """Before the schema: unknown keys of the training sections, `probe` and
    `baselines.kmer`, as one ConfigError naming the config path, the key and the valid keys
    (the schema's message for the same mistake is harder to read). The architectures,
    presets and losses of ``pretrain.models`` are checked from their registry
    (:func:`dnalm.kinds.archs.check_presets`, :func:`dnalm.kinds.losses.check_losses`)."""
    for path, parent, key, cls in training_settings(config):
        settings = parent.get(key) if isinstance(parent, Mapping) else None
        if not isinstance(settings, Mapping):
            continue  # missing, or not a mapping: the schema says so
        known = section_keys(cls)
        unknown = sorted((k for k in settings if k not in known), key=str)
        run_keys = section_keys(cls, run=True)
        for k in unknown:
            if k in run_keys:
                raise ConfigError(
                    f"{path}: {k!r} is a setting of the run entry, not of `train`; set it "
                    f"as finetune.runs.<run>.{k}"
                )
        if unknown:
            raise ConfigError(f"{path}: {unknown_keys_message(unknown, known)}")
    for path in ("baselines.kmer", "probe", "probe.umap"):
        node = _get(config, tuple(path.split(".")))
        if isinstance(node, Mapping):
            known = section_keys(SECTION_CLASSES[path])
            unknown = sorted((k for k in node if k not in known), key=str)
            if unknown:
                raise ConfigError(f"{path}: {unknown_keys_message(unknown, known)}")


def _get(config: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = config
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def user_training_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Copies of the training settings as the user wrote them, by config path (before the
    schema's validation fills in every default)."""
    return {
        path: copy.deepcopy(parent[key])
        for path, parent, key, _ in training_settings(config)
        if isinstance(parent, Mapping) and key in parent
    }


def restore_training_settings(config: dict[str, Any], saved: Mapping[str, Any]) -> None:
    """Put back the user's own training settings after the schema filled in its defaults, so
    a rule's params hold only what the config sets (the dataclasses add the same defaults;
    params that grew by every default would make Snakemake rerun finished jobs)."""
    for path, parent, key, _ in list(training_settings(config)):
        if isinstance(parent, dict) and key in parent:
            parent[key] = copy.deepcopy(saved.get(path, {}))


#: Config keys whose entries' names become file or folder names (results/{kind}/{name}/...).
