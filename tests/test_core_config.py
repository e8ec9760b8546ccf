"""The config sections: the schema and the settings dataclasses (dnalm.core.config, and
dnalm.training.run for pretraining; by config path in dnalm.plan.sections) agree (the same
keys, the same defaults), bad settings fail with the key named, and a typo or an unknown
preset stops the workflow when the DAG is built, before any job (as tests/test_envs.py
checks env pins against pyproject)."""

from __future__ import annotations

import copy
import inspect
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path

import jsonschema
import pytest
import yaml

from dnalm.core.config import (
    CNNTrainConfig,
    FinetuneTrainConfig,
    KmerBaselineConfig,
    ProbeConfig,
    section_keys,
)
from dnalm.core.errors import ConfigError
from dnalm.kinds.archs import check_presets
from dnalm.plan.sections import (
    SECTION_CLASSES,
    check_config_keys,
    restore_training_settings,
    user_training_settings,
)
from dnalm.training.run import PretrainTrainConfig
from tests.support.workflow_runner import make_workdir, snakemake

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())

#: config section -> dataclass (finetune.train: the fields that are not run-entry keys)
SECTIONS = SECTION_CLASSES


def resolve(node: dict) -> dict:
    """Follow a local "#/$defs/..." reference."""
    ref = node.get("$ref")
    if not ref:
        return node
    target = SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def section_schema(path: str) -> dict:
    node = SCHEMA
    for part in path.split("."):
        node = resolve(node)["properties"][part]
    return resolve(node)


def field_default(f):
    if f.default is not MISSING:
        return f.default
    return f.default_factory()


def schema_default(prop: dict):
    """A property's default; an object section's default filled with its keys' defaults,
    as Snakemake's validation fills them."""
    prop = resolve(prop)
    if prop.get("type") == "object" and "properties" in prop:
        out = dict(prop.get("default") or {})
        for key, sub in prop["properties"].items():
            if "default" in resolve(sub) and key not in out:
                out[key] = schema_default(sub)
        return out
    return prop["default"]


def as_plain(value):
    if is_dataclass(value):
        return {f.name: as_plain(getattr(value, f.name)) for f in fields(value)}
    return value


@pytest.mark.parametrize("path", SECTIONS)
def test_schema_and_dataclass_have_the_same_keys_and_defaults(path):
    cls = SECTIONS[path]
    schema = section_schema(path)
    assert schema.get("additionalProperties") is False, f"{path} accepts any key"
    props = schema["properties"]
    keys = section_keys(cls)
    assert sorted(props) == sorted(keys), (
        f"{path}: only in the schema {sorted(set(props) - set(keys))}, only in "
        f"{cls.__name__} {sorted(set(keys) - set(props))}"
    )
    for f in fields(cls):
        if f.name not in props:
            continue
        assert "default" in resolve(props[f.name]), f"{path}.{f.name}: no default in the schema"
        assert schema_default(props[f.name]) == as_plain(field_default(f)), f"{path}.{f.name}"
        assert resolve(props[f.name]).get("description"), f"{path}.{f.name}: no description"


def test_finetune_run_keys_are_the_run_fields():
    entry = section_schema("finetune.runs")["additionalProperties"]
    run_fields = {f.name: f for f in fields(FinetuneTrainConfig) if f.metadata.get("run")}
    not_fields = {"model", "tasks", "train", "seeds"}
    assert sorted(run_fields) == sorted(set(entry["properties"]) - not_fields)
    for name, f in run_fields.items():
        assert entry["properties"][name]["default"] == f.default, name
    from dnalm.core.config import REGIMES

    assert entry["properties"]["regime"]["enum"] == list(REGIMES)


def test_overrides_use_the_shared_definitions():
    """A model's, run's or task's own settings are checked like the shared ones."""
    models = section_schema("pretrain.models")["additionalProperties"]["properties"]
    assert models["train"]["$ref"] == section_schema("pretrain")["properties"]["train"]["$ref"]
    ft = section_schema("finetune")["properties"]
    ref = ft["train"]["$ref"]
    assert ft["per_task"]["additionalProperties"]["$ref"] == ref
    assert ft["runs"]["additionalProperties"]["properties"]["train"]["$ref"] == ref
    cnn = section_schema("baselines.onehot_cnn")["properties"]
    assert cnn["per_task"]["additionalProperties"]["$ref"] == cnn["train"]["$ref"]


def test_dataclass_defaults_are_valid_config():
    config = {
        "samples": "x.tsv",
        "pretrain": {"train": PretrainTrainConfig().as_dict()},
        "finetune": {
            "train": {
                k: getattr(FinetuneTrainConfig(), k) for k in section_keys(FinetuneTrainConfig)
            }
        },
        "baselines": {
            "onehot_cnn": {"train": CNNTrainConfig().as_dict()},
            "kmer": KmerBaselineConfig().as_dict(),
        },
        "probe": ProbeConfig().as_dict(),
    }
    jsonschema.Draft202012Validator(SCHEMA).validate(config)


@pytest.mark.parametrize(
    ("section", "typo"),
    [
        ({"pretrain": {"train": {"lrr": 0.1}}}, "lrr"),
        (
            {
                "pretrain": {
                    "models": {
                        "m": {
                            "objective": "gpt",
                            "tokenizer": "t",
                            "preset": "tiny",
                            "train": {"max_step": 5},
                        }
                    }
                }
            },
            "max_step",
        ),
        ({"finetune": {"train": {"batchsize": 8}}}, "batchsize"),
        ({"finetune": {"per_task": {"t": {"max_epoch": 1}}}}, "max_epoch"),
        ({"finetune": {"runs": {"r": {"model": "m", "train": {"lr_sched": "x"}}}}}, "lr_sched"),
        ({"baselines": {"onehot_cnn": {"train": {"chanels": 8}}}}, "chanels"),
        ({"baselines": {"onehot_cnn": {"per_task": {"t": {"kernel": 3}}}}}, "kernel"),
        ({"baselines": {"kmer": {"kk": [3]}}}, "kk"),
        ({"probe": {"cv_fold": 3}}, "cv_fold"),
        ({"probe": {"umap": {"neighbors": 3}}}, "neighbors"),
    ],
)
def test_a_typo_fails_the_schema_and_the_check(section, typo):
    config = {"samples": "x.tsv", **section}
    with pytest.raises(jsonschema.ValidationError, match=typo):
        jsonschema.Draft202012Validator(SCHEMA).validate(config)
    with pytest.raises(ConfigError, match=f"unknown setting '{typo}'"):
        check_config_keys(config)


def test_check_names_the_path_and_the_nearest_key():
    with pytest.raises(ConfigError) as err:
        check_config_keys({"finetune": {"runs": {"r1": {"model": "m", "train": {"lrr": 1}}}}})
    assert str(err.value).startswith("finetune.runs.r1.train: unknown setting 'lrr' (did you ")
    assert "mean 'lr'?)" in str(err.value)
    with pytest.raises(ConfigError, match=r"'regime' is a setting of the run entry"):
        check_config_keys({"finetune": {"train": {"regime": "full"}}})


def test_unknown_override_key_names_the_model_and_the_nearest_key():
    config = {
        "pretrain": {
            "models": {"m": {"objective": "gpt", "preset": "tiny", "overrides": {"n_layers": 3}}}
        }
    }
    with pytest.raises(ConfigError) as err:
        check_presets(config)
    assert str(err.value).startswith(
        "pretrain.models.m.overrides: unknown architecture setting 'n_layers' (did you mean "
        "'n_layer'?)"
    )


def test_unknown_preset_names_the_model_and_the_presets():
    config = {
        "pretrain": {"models": {"big": {"objective": "mlm", "tokenizer": "t", "preset": "seed"}}}
    }
    with pytest.raises(ConfigError) as err:
        check_presets(config)
    assert str(err.value).startswith(
        "pretrain.models.big: unknown mlm preset 'seed'; choose one of tiny, small, base"
    )
    with pytest.raises(jsonschema.ValidationError, match="'seed' is not one of"):
        jsonschema.Draft202012Validator(SCHEMA).validate({"samples": "x", **config})


def test_fit_settings_are_fit_arguments():
    from dnalm.training.fit import fit

    params = inspect.signature(fit).parameters
    ft, cnn = FinetuneTrainConfig().fit_settings(), CNNTrainConfig().fit_settings()
    assert set(ft) == set(cnn)
    assert set(ft) <= set(params)
    assert (cnn["lr"], ft["lr"]) == (2e-3, 1e-3)


def test_from_dict_keeps_the_checks():
    assert PretrainTrainConfig.from_dict({"lr": 0.5}).as_dict()["lr"] == 0.5
    with pytest.raises(ConfigError, match="unknown training setting 'learning_rate'"):
        PretrainTrainConfig.from_dict({"learning_rate": 1})
    with pytest.raises(ConfigError, match="training setting max_steps must be a positive"):
        PretrainTrainConfig.from_dict({"max_steps": 0})
    with pytest.raises(ConfigError, match=r"^pretrain\.train: precision must be auto, bf16"):
        PretrainTrainConfig.from_dict({"precision": "fp16"}, "pretrain.train")
    with pytest.raises(ConfigError, match="too_long must be one of"):
        FinetuneTrainConfig.from_dict({"too_long": "cut"})
    with pytest.raises(ConfigError, match="lr_schedule must be one of"):
        FinetuneTrainConfig.from_dict({"lr_schedule": "linear"})
    with pytest.raises(ConfigError, match=r"unknown one-hot CNN settings \['a', 'b'\]"):
        CNNTrainConfig.from_dict({"a": 1, "b": 2})
    with pytest.raises(ConfigError, match=r"^probe\.umap: unknown UMAP setting 'k'"):
        ProbeConfig.from_dict({"umap": {"k": 1}})
    probe = ProbeConfig.from_dict({"umap": {"seed": 1}, "cv_folds": 3})
    assert (probe.umap.seed, probe.umap.n_neighbors, probe.cv_folds) == (1, 15, 3)


def test_training_settings_stay_as_written_after_validation():
    """The schema's defaults do not grow the settings a rule gets as params."""
    config = {
        "pretrain": {"train": {"lr": 0.1}, "models": {"m": {"preset": "tiny"}}},
        "finetune": {"per_task": {"t": {"max_epochs": 1}}, "runs": {"r": {"train": {}}}},
    }
    saved = user_training_settings(config)
    filled = copy.deepcopy(config)
    filled["pretrain"]["train"]["seed"] = 0
    filled["pretrain"]["models"]["m"]["train"] = {"seed": 0}
    filled["finetune"]["train"] = {"lr": 1e-3}
    filled["finetune"]["per_task"]["t"]["lr"] = 1e-3
    filled["baselines"] = {"onehot_cnn": {"train": {"lr": 2e-3}, "per_task": {}}}
    restore_training_settings(filled, saved)
    assert filled["pretrain"] == {
        "train": {"lr": 0.1},
        "models": {"m": {"preset": "tiny", "train": {}}},
    }
    assert filled["finetune"] == {
        "per_task": {"t": {"max_epochs": 1}},
        "runs": {"r": {"train": {}}},
        "train": {},
    }
    assert filled["baselines"]["onehot_cnn"]["train"] == {}


# ----------------------------------------------------------------------------- at DAG build

BAD_CONFIGS = {
    "pretrain.train": ({"pretrain": {"train": {"warmup": 10}}}, "'warmup'"),
    "finetune.train": ({"finetune": {"train": {"max_epoch": 2}}}, "'max_epoch'"),
    "baselines.onehot_cnn.train": (
        {"baselines": {"onehot_cnn": {"train": {"kernel": 5}}}},
        "'kernel'",
    ),
    "probe": ({"probe": {"cv_fold": 3}}, "'cv_fold'"),
}


@pytest.mark.parametrize("section", BAD_CONFIGS)
def test_typo_stops_the_workflow_before_any_job(tmp_path, section):
    overrides, key = BAD_CONFIGS[section]
    workdir = make_workdir(tmp_path / "wd", overrides)
    proc = snakemake(workdir, "-n", timeout=300)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert f"{section}: unknown setting {key}" in out, out[-3000:]
    assert not (workdir / "results").exists()


def test_unknown_preset_stops_the_workflow_before_any_job(tmp_path):
    workdir = make_workdir(
        tmp_path / "wd",
        {"pretrain": {"models": {"gpt_nucleotide": {"preset": "huge"}}}},
    )
    proc = snakemake(workdir, "-n", timeout=300)
    assert proc.returncode != 0
    assert (
        "pretrain.models.gpt_nucleotide: unknown gpt preset 'huge'; choose one of tiny, seed, "
        "small, base"
    ) in proc.stdout + proc.stderr, proc.stdout[-3000:]
    assert not (workdir / "results").exists()


def test_valid_settings_pass_the_dag_build(tmp_path, shared_data):
    """The control: the same dry run with every section set (and correct) succeeds."""
    workdir = make_workdir(
        tmp_path / "wd",
        {
            "pretrain": {"train": {"warmup_steps": 10}},
            "finetune": {"train": {"max_epochs": 2}, "per_task": {"tf_binding": {"lr": 0.01}}},
            "baselines": {"onehot_cnn": {"train": {"kernel_size": 5}}},
            "probe": {"cv_folds": 3},
        },
    )
    proc = snakemake(workdir, "-n", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
