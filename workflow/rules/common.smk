# Sample sheet, config validation, input functions and wildcard constraints. No rules here.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from dnalm.errors import DnalmError  # noqa: E402
from dnalm.samples import expand_local, load_sample_sheet  # noqa: E402

validate(config, schema="../schemas/config.schema.yaml")

try:
    SAMPLE_LIST = load_sample_sheet(config["samples"])
except DnalmError as err:
    raise WorkflowError(str(err)) from None

SAMPLES = {s.sample: s for s in SAMPLE_LIST}
PRETRAIN_SAMPLES = [s.sample for s in SAMPLE_LIST if s.pretrain]
SPECIES_SAMPLES = [s.sample for s in SAMPLE_LIST if s.species_task]


TOKENIZERS = dict(config["tokenizers"])
PRETRAIN_MODELS = dict(config["pretrain"]["models"] or {})
for _name, _spec in PRETRAIN_MODELS.items():
    if _spec["tokenizer"] not in TOKENIZERS:
        raise WorkflowError(
            f"pretrain.models.{_name}: tokenizer {_spec['tokenizer']!r} is not defined under "
            f"`tokenizers` (defined: {', '.join(sorted(TOKENIZERS))})"
        )
TASKS = config["tasks"]
SEQUENCE_TASKS = dict(TASKS["sequence_tasks"] or {})
for _name in SEQUENCE_TASKS:
    if _name in ("species_fragments", "tf_binding"):
        raise WorkflowError(
            f"tasks.sequence_tasks: the name {_name!r} is reserved; choose another task name"
        )


def _alternatives(names):
    """A wildcard pattern matching exactly these names (or nothing)."""
    import re

    return "|".join(re.escape(n) for n in sorted(names)) or "(?!x)x"


wildcard_constraints:
    sample=_alternatives(SAMPLES),
    split="train|validation|test",
    tok=_alternatives(TOKENIZERS),
    task=_alternatives(SEQUENCE_TASKS),
    model=_alternatives(PRETRAIN_MODELS),


def genome_dir(sample):
    return f"resources/genomes/{sample}"


def primary_input(wildcards):
    """The genome file of a sample: a local path used in place, else the download."""
    s = SAMPLES[wildcards.sample]
    if s.source_kind == "local":
        return str(expand_local(s.source))
    return f"{genome_dir(s.sample)}/primary"


def annotation_input(wildcards):
    s = SAMPLES[wildcards.sample]
    if not s.annotation:
        return []
    if s.annotation_kind == "local":
        return str(expand_local(s.annotation))
    return f"{genome_dir(s.sample)}/annotation"


def cds_inputs(wildcards):
    return {
        "primary": primary_input(wildcards),
        "annotation": annotation_input(wildcards),
        "provenance": f"{genome_dir(wildcards.sample)}/provenance.json",
    }


def pretrain_train_cfg(model):
    """Shared training settings with the model's own `train` entries on top."""
    return {
        **config["pretrain"]["train"],
        **(PRETRAIN_MODELS[model].get("train") or {}),
    }


def tokenizer_spec(tok):
    return dict(TOKENIZERS[tok])


def tokenizer_training_input(wildcards):
    """BPE learns its merges from the pretraining samples' training split; fixed
    vocabularies need no input."""
    if TOKENIZERS[wildcards.tok]["type"] != "bpe":
        return []
    return expand("results/splits/{sample}/train.fa.gz", sample=PRETRAIN_SAMPLES)


def _task_path(value):
    if value in (None, ""):
        return None
    return str(expand_local(value))


def tf_binding_inputs(wildcards):
    cfg = TASKS["tf_binding"]
    files = {"sequences": _task_path(cfg["sequences"])}
    for key in ("scores", "genome"):
        if cfg.get(key):
            files[key] = _task_path(cfg[key])
    return files


def sequence_task_inputs(wildcards):
    cfg = SEQUENCE_TASKS[wildcards.task]
    files = {}
    for key in ("table", "test_table"):
        if cfg.get(key):
            files[key] = _task_path(cfg[key])
    for key in ("fasta_by_class", "test_fasta_by_class"):
        for label, path in (cfg.get(key) or {}).items():
            files[f"{key}__{label}"] = _task_path(path)
    return files


def task_names():
    names = []
    if TASKS["species_fragments"]["enabled"] and SPECIES_SAMPLES:
        names.append("species_fragments")
    if TASKS["tf_binding"].get("sequences"):
        names.append("tf_binding")
    return names + sorted(SEQUENCE_TASKS)


def all_targets():
    targets = [
        "results/cds/qc_summary.tsv",
        "results/cds/qc.png",
        "results/splits/assignment.tsv",
        "results/splits/summary.tsv",
    ]
    targets += expand("results/corpus/{tok}", tok=sorted(TOKENIZERS))
    targets += expand("results/tasks/{task}/summary.tsv", task=task_names())
    targets += expand(
        "results/models/{model}/metrics.json", model=sorted(PRETRAIN_MODELS)
    )
    return targets
