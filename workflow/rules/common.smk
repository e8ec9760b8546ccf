# Sample sheet, config validation, input functions and wildcard constraints. No rules here.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from dnalm.errors import DnalmError  # noqa: E402
from dnalm.samples import load_sample_sheet  # noqa: E402

validate(config, schema="../schemas/config.schema.yaml")

try:
    SAMPLE_LIST = load_sample_sheet(config["samples"])
except DnalmError as err:
    raise WorkflowError(str(err)) from None

SAMPLES = {s.sample: s for s in SAMPLE_LIST}
SPLIT_NAMES = ["train", "validation", "test"]
PRETRAIN_SAMPLES = [s.sample for s in SAMPLE_LIST if s.pretrain]
SPECIES_SAMPLES = [s.sample for s in SAMPLE_LIST if s.species_task]


wildcard_constraints:
    sample="|".join(sorted(SAMPLES)) or "NO_SAMPLES",
    split="train|validation|test",


def genome_dir(sample):
    return f"resources/genomes/{sample}"


def primary_input(wildcards):
    """The genome file of a sample: a local path used in place, else the download."""
    s = SAMPLES[wildcards.sample]
    if s.source_kind == "local":
        return str(expand_local_path(s.source))
    return f"{genome_dir(s.sample)}/primary"


def annotation_input(wildcards):
    s = SAMPLES[wildcards.sample]
    if not s.annotation:
        return []
    if s.annotation_kind == "local":
        return str(expand_local_path(s.annotation))
    return f"{genome_dir(s.sample)}/annotation"


def expand_local_path(path):
    from dnalm.samples import expand_local

    return expand_local(path)


def cds_inputs(wildcards):
    return {
        "primary": primary_input(wildcards),
        "annotation": annotation_input(wildcards),
        "provenance": f"{genome_dir(wildcards.sample)}/provenance.json",
    }


def all_targets():
    targets = [
        "results/cds/qc_summary.tsv",
        "results/cds/qc.png",
        "results/splits/assignment.tsv",
        "results/splits/summary.tsv",
    ]
    return targets
