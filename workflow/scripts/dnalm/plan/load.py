"""Build the plan of a run from the config and the sample sheet: every check of the config
that needs no job runs here, before Snakemake builds the DAG, and raises a DnalmError
(common.smk turns it into one WorkflowError).

The steps, in the order that decides which error a config with several mistakes reports
first (the order the workflow always used):

0. the YAML config files themselves (a key written twice, a Python object tag), which
   Snakemake reads without either check;
1. entries set to null are dropped (a later --configfile cannot otherwise remove them);
2. names that become paths, unknown settings and presets, the split settings, and the
   corpora checks that need no sample sheet (their messages are clearer than the schema's);
   the tokenizer specs (k-mer k, BPE vocab_size, ...) and the split fractions;
3. the JSON schema (workflow/schemas/config.schema.yaml) validates the config and fills in
   its defaults, except in the training settings, which keep what the user wrote (their
   dataclasses, listed in dnalm.plan.sections, add the same defaults in the job; rule
   params that grew by every default would make Snakemake rerun finished jobs);
4. the sample sheet; models, runs and sweeps with their seed replicates; tokenizers and
   corpora of the models (a corpus's block_size within each model's context); held-out
   contigs; task names, fine-tuning runs, reproduce rows;
5. the plan's targets (Plan.targets), which runs every check of the stages that are on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import yaml
from jsonschema import Draft202012Validator, validators

from dnalm.core.config import CONFIG_SCHEMA_PATH, check_config_names, drop_null_entries
from dnalm.core.errors import ConfigError
from dnalm.core.hub import external_models
from dnalm.core.io import read_yaml
from dnalm.core.seeds import cnn_replicates, expand_models, expand_runs
from dnalm.genome.contigs import contig_names
from dnalm.genome.corpora import (
    check_contig_lists,
    check_task_corpora,
    check_window_fits,
    corpus_specs,
)
from dnalm.genome.homology import check_split_settings
from dnalm.genome.samples import Sample, expand_local, load_sample_sheet
from dnalm.genome.splits import check_fractions
from dnalm.kinds.archs import check_context, check_presets
from dnalm.kinds.losses import check_losses
from dnalm.kinds.tokenizers import normalise_spec
from dnalm.plan.plan import Plan
from dnalm.plan.records import SampleTable
from dnalm.plan.sections import (
    check_config_keys,
    restore_training_settings,
    user_training_settings,
)
from dnalm.plan.suites import load_suites
from dnalm.report.reproduce import check_rows
from dnalm.training.sweeps import expand_sweeps

#: sequence-task names taken by the built-in tasks
RESERVED_TASK_NAMES = ("species_fragments", "tf_binding")


def _strict_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` merges; a key written beside it overrides on purpose
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            first = seen.get(key)
        except TypeError:
            continue  # an unhashable key: the safe loader's own error names it
        if first is not None:
            raise ConfigError(
                f"{key_node.start_mark.name}:{line}: the key {key!r} is written twice in one "
                f"mapping (first on line {first}); YAML would keep only the last one. Remove "
                "one of them, or merge their settings into one"
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader (no Python object tags) that refuses a key written twice in one
    mapping, naming both lines."""

    yaml_constructors: ClassVar[dict] = {
        **yaml.SafeLoader.yaml_constructors,
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG: _strict_mapping,
    }


def check_config_files(paths: Iterable[str | os.PathLike]) -> None:
    """Read each YAML/JSON config file of the run with :class:`_StrictLoader`: a key written
    twice, or a ``!!python/...`` tag, is a ConfigError naming the file, the line and the fix
    (Snakemake's own reading keeps the last of two keys and runs Python tags). A file that
    is not there is left to Snakemake."""
    for path in paths:
        path = Path(path)
        if not path.is_file():
            continue
        try:
            with open(path, encoding="utf-8") as fh:
                yaml.load(fh, Loader=_StrictLoader)  # a SafeLoader subclass
        except yaml.constructor.ConstructorError as err:
            mark = err.problem_mark
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            tag = str(err.problem or "").split("tag ", 1)[-1].strip("'")
            if "python/" in tag:
                short = tag.replace("tag:yaml.org,2002:", "!!")
                raise ConfigError(
                    f"{where}: the YAML tag {short} is not allowed in a config file: it makes "
                    "YAML build a Python object (and can run code); write the plain value "
                    "(a string, number, list or mapping) without the tag"
                ) from None
            raise ConfigError(f"{where}: {err.problem}; write a plain YAML value") from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            raise ConfigError(
                f"{where}: not valid YAML ({getattr(err, 'problem', None) or err})"
            ) from None


def check_tokenizers(tokenizers: Mapping[str, Any]) -> None:
    """Every tokenizer spec checked as the tokenizer job checks it (k-mer k in 1-7, BPE
    vocab_size at least its minimum, ...): ConfigError naming tokenizers.<name>."""
    for name, spec in tokenizers.items():
        try:
            normalise_spec(dict(spec))
        except ConfigError as err:
            raise ConfigError(f"tokenizers.{name}: {err}") from None


def check_all_fractions(config: Mapping[str, Any]) -> None:
    """splits.fractions and each task's split fractions are non-negative and sum to 1."""
    tasks = config.get("tasks") if isinstance(config.get("tasks"), Mapping) else {}
    keyed = {
        "splits": config.get("splits") or {},
        "tasks.tf_binding": tasks.get("tf_binding") or {},
    }
    sequence_tasks = tasks.get("sequence_tasks")
    for name, task in (sequence_tasks if isinstance(sequence_tasks, Mapping) else {}).items():
        keyed[f"tasks.sequence_tasks.{name}"] = task or {}
    for key, task in keyed.items():
        fr = task.get("fractions") if isinstance(task, Mapping) else None
        if not isinstance(fr, Mapping):
            continue
        unknown = sorted(set(fr) - {"train", "validation", "test"}, key=str)
        values = {s: fr.get(s, 0.0) for s in ("train", "validation", "test")}
        if unknown or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values.values()
        ):
            continue  # the schema names the bad key or value
        total = sum(values.values())
        if min(values.values()) < 0 or abs(total - 1.0) > 1e-6 or values["train"] <= 0:
            raise ConfigError(
                f"{key}.fractions: {values} sum to {total:g}; the train, validation and test "
                "shares must be non-negative, train > 0, and sum to 1"
            )
        if key == "splits":
            check_fractions(values)  # the CDS splits also need test > 0


def _default_filling_validator(schema: dict) -> jsonschema.protocols.Validator:
    """A Draft 2020-12 validator that fills in each property's `default` as it validates
    (as snakemake.utils.validate does with set_default=True)."""
    base = Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        for name, subschema in properties.items():
            if "default" in subschema and isinstance(instance, dict):
                instance.setdefault(name, subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(base, {"properties": set_defaults})(schema)


def validate_config(config: dict, schema_path: Path = CONFIG_SCHEMA_PATH) -> None:
    """Validate `config` against the config schema and fill in its defaults, leaving the
    training settings as the user wrote them. Raises ConfigError with the schema's message."""
    schema = read_yaml(schema_path)
    saved = user_training_settings(config)
    try:
        _default_filling_validator(schema).validate(config)
    except jsonschema.ValidationError as err:
        raise ConfigError(f"Error validating config file.\n{err}") from None
    restore_training_settings(config, saved)


def check_early(config: dict) -> None:
    """The checks that run before the schema: names that become paths, unknown settings
    and presets, the split settings, and the corpora checks that need no sample sheet."""
    check_config_names(config)
    check_config_keys(config)
    check_presets(config)
    check_losses(config)
    check_split_settings(config.get("splits"))
    corpus_specs(config, None)
    if isinstance(config.get("tokenizers"), Mapping):
        check_tokenizers({k: v for k, v in config["tokenizers"].items() if isinstance(v, Mapping)})
    check_all_fractions(config)


def _genome_contigs(samples: SampleTable):
    """Contig names of a sample's genome file once it is on disk (local, or downloaded)."""

    def contigs(sample: str) -> list[str] | None:
        s = samples[sample]
        if s.source_kind == "local":
            path = Path(expand_local(s.source))
        else:
            path = Path(f"resources/genomes/{sample}/primary")
        return contig_names(s.format, path, sample) if path.is_file() else None

    return contigs


def _models(config: dict, tokenizers: dict) -> tuple[dict, dict, dict, dict, set, set]:
    """pretrain.models (seed replicates expanded, sweep points added), finetune.runs, the
    one-hot CNN replicates, the sweeps, and the sweep and replicate model names."""
    declared = dict(config["pretrain"]["models"] or {})
    models = expand_models(dict(declared))
    runs = expand_runs(dict(config["finetune"]["runs"] or {}), declared)
    cnn_runs = cnn_replicates(config["baselines"]["onehot_cnn"])
    sweeps = expand_sweeps(config, models)
    # sweep runs are pretrained and summarised, not fine-tuned or probed unless named there
    sweep_models = {p.model for points in sweeps.values() for p in points}
    # further seed replicates (X_seed1, ...): fine-tuned where a run names them, not probed
    # or sampled by default (the first replicate, under the entry's own name, is)
    replicate_models = set(models) - set(declared)
    models.update({p.model: p.spec for points in sweeps.values() for p in points})
    for name, spec in models.items():
        if spec["tokenizer"] not in tokenizers:
            raise ConfigError(
                f"pretrain.models.{name}: tokenizer {spec['tokenizer']!r} is not defined "
                f"under `tokenizers` (defined: {', '.join(sorted(tokenizers))})"
            )
    return models, runs, cnn_runs, sweeps, sweep_models, replicate_models


def _corpora(config: dict, samples: SampleTable, models: dict, tokenizers: dict) -> dict:
    """The corpora (sources, samples, windows, splits), each model's corpus checked."""
    corpora = corpus_specs(config, samples)
    for name, spec in models.items():
        corpus = spec.setdefault("corpus", "cds")
        if corpus not in corpora:
            raise ConfigError(
                f"pretrain.models.{name}.corpus: {corpus!r} is not defined under `corpora` "
                f"(defined: {', '.join(sorted(corpora))})"
            )
        check_window_fits(
            corpus,
            corpora[corpus],
            spec["tokenizer"],
            tokenizers[spec["tokenizer"]],
            config["corpus"]["block_size"],
        )
        check_context(f"pretrain.models.{name}", spec, config["corpus"]["block_size"])
    check_contig_lists(corpora, _genome_contigs(samples))
    return corpora


def load(
    config: dict[str, Any],
    sample_list: list[Sample] | None = None,
    config_files: Iterable[str | os.PathLike] = (),
) -> Plan:
    """The plan of a run. `config` is changed in place as the workflow always did it (null
    entries dropped, schema defaults filled in), so that rules reading `config` see the same
    values. `sample_list`: the sheet's samples if already read (else the sheet named by
    config["samples"] is read). `config_files`: the YAML files `config` was read from
    (Snakemake's workflow.configfiles), checked for keys written twice and Python tags.
    Raises a DnalmError subclass for any bad input."""
    check_config_files(config_files)
    dropped = drop_null_entries(config)
    check_early(config)
    validate_config(config)
    if sample_list is None:
        sample_list = load_sample_sheet(config["samples"])
    samples = SampleTable(
        {s.sample: s for s in sample_list}, f"the sample sheet {config['samples']}"
    )
    tokenizers = dict(config["tokenizers"])
    models, runs, cnn_runs, sweeps, sweep_models, replicate_models = _models(config, tokenizers)
    corpora = _corpora(config, samples, models, tokenizers)
    sequence_tasks = dict(config["tasks"]["sequence_tasks"] or {})
    for name in sequence_tasks:
        if name in RESERVED_TASK_NAMES:
            raise ConfigError(
                f"tasks.sequence_tasks: the name {name!r} is reserved; choose another task name"
            )
    suite_tasks = load_suites(config, {*sequence_tasks, *RESERVED_TASK_NAMES})
    external = external_models(config)
    both = sorted(set(external) & set(config["pretrain"]["models"] or {}))
    if both:
        raise ConfigError(
            f"models.external: {both} are also names under pretrain.models; a model name must "
            "say which model it is: rename one of them"
        )
    for name, run in runs.items():
        if run["model"] not in models and run["model"] not in external:
            raise ConfigError(
                f"finetune.runs.{name}: model {run['model']!r} is not defined under "
                f"pretrain.models (defined: {', '.join(sorted(models)) or 'none'}) nor "
                f"models.external (defined: {', '.join(sorted(external)) or 'none'})"
            )
    plan = Plan(
        config=config,
        dropped=dropped,
        sample_list=list(sample_list),
        samples=samples,
        tokenizers=tokenizers,
        models=models,
        runs=runs,
        cnn_runs=cnn_runs,
        sweeps=sweeps,
        sweep_models=sweep_models,
        replicate_models=replicate_models,
        corpora=corpora,
        sequence_tasks=sequence_tasks,
        reproduce_rows=[],
        external=external,
        suite_tasks=suite_tasks,
    )
    # a task corpus must name a task this configuration builds
    check_task_corpora(corpora, plan.task_names())
    plan.reproduce_rows = check_rows((config.get("reproduce") or {}).get("rows"))
    _ = plan.task_files  # a malformed checksum in a task file's URL stops here
    plan.check()  # every check of the stages that are on
    return plan
