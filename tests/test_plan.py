"""dnalm.plan: the validated config and sample sheet as typed records, without Snakemake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from dnalm.core.errors import ConfigError, DnalmError
from dnalm.genome.samples import load_schema, reserved_sample_ids
from dnalm.plan import Plan, load
from dnalm.plan.plan import wildcards
from dnalm.plan.records import SampleTable
from dnalm.plan.wildcards import alternatives, sample_constraint
from tests.support.workflow_runner import deep_merge

REPO = Path(__file__).resolve().parents[1]
SCHEMA = load_schema()
SAMPLE_RE = sample_constraint(
    SCHEMA["properties"]["sample"]["pattern"], reserved_sample_ids(SCHEMA)
)


def matches(pattern: str, path: str) -> dict | None:
    """The wildcards of `path` against `pattern` ({name} = the constraint), as Snakemake."""
    regex = re.escape(pattern).replace(r"\{sample\}", f"(?P<sample>{SAMPLE_RE})")
    m = re.match(regex + "$", path)
    return m.groupdict() if m else None


@pytest.mark.parametrize(
    ("path", "sample"),
    [
        ("results/cds/ecoli.tsv", "ecoli"),
        ("results/cds/qc_summary2.tsv", "qc_summary2"),
        ("results/cds/qc.final.tsv", "qc.final"),
        ("results/cds/E_coli-K12.v2.fa.gz", "E_coli-K12.v2"),
        ("results/cds/qc_summary.tsv", None),  # rule cds_qc's file, not a sample's
        ("results/cds/a/b.tsv", None),
        ("results/cds/.hidden.tsv", None),
    ],
)
def test_sample_constraint_keeps_the_workflow_files_out(path, sample):
    got = matches("results/cds/{sample}.tsv", path) or matches("results/cds/{sample}.fa.gz", path)
    assert (got or {}).get("sample") == sample


def test_sample_constraint_does_not_grow_with_the_samples():
    """A list of sample names would be copied into every output pattern (O(samples) per
    job); the constraint is the fixed-length ID pattern."""
    assert len(SAMPLE_RE) < 200


def test_alternatives_match_exactly_the_names():
    pattern = alternatives(["a.b", "c"])
    assert re.fullmatch(pattern, "a.b")
    assert re.fullmatch(pattern, "c")
    assert not re.fullmatch(pattern, "axb")
    assert not re.fullmatch(alternatives([]), "")


def test_unknown_sample_is_named_with_the_sheet():
    table = SampleTable({"ecoli": 1}, "the sample sheet s.tsv")
    assert table["ecoli"] == 1
    with pytest.raises(ConfigError, match=r"'nosuch' is not in the sample sheet s.tsv.*ecoli"):
        table["nosuch"]


# --------------------------------------------------------------------------- load()


def demo_config(**over) -> dict:
    """config/config.yaml with tests/config/demo.yaml on top (as `snakemake --configfile
    tests/config/demo.yaml` merges them), then `over` on top of that."""
    config = {}
    for path in (REPO / "config/config.yaml", REPO / "tests/config/demo.yaml", None):
        layer = yaml.safe_load(path.read_text()) if path else over
        config = deep_merge(config, layer)
    return config


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)  # relative paths of the configs are from the repository root


def test_demo_plan():
    plan = load(demo_config())
    assert isinstance(plan, Plan)
    assert "mgallisepticum" in plan.cds_samples
    assert set(plan.models) == {"gpt_nucleotide", "gpt_codon", "mlm_kmer6", "mlm_bpe"}
    assert plan.task_names() == ["species_fragments", "tf_binding", "oct4_vs_mafk"]
    assert plan.run_tasks("gpt_codon_frozen") == ["tf_binding"]
    assert "results/probe/probe_table.tsv" in plan.targets()
    assert plan.generate_models() == ["gpt_nucleotide", "gpt_codon"]
    assert plan.cds_inputs(wildcards(sample="mgallisepticum"))["provenance"] == (
        "resources/genomes/mgallisepticum/provenance.json"
    )


def test_schema_defaults_are_filled_but_not_in_the_training_settings():
    """The schema fills in its defaults; the training settings keep what the config wrote,
    so rule params (and Snakemake's rerun decisions) do not change with the validation."""
    config = demo_config()
    written = dict(config["pretrain"]["train"])
    plan = load(config)
    assert plan.config["pretrain"]["train"] == written
    assert plan.config["splits"]["method"] == "identity"  # a schema default


def test_null_entries_are_dropped():
    plan = load(
        demo_config(
            pretrain={"models": {"mlm_bpe": None}}, finetune={"runs": {"mlm_bpe_lora": None}}
        )
    )
    assert "mlm_bpe" not in plan.models
    assert plan.dropped == ["pretrain.models.mlm_bpe", "finetune.runs.mlm_bpe_lora"]


ROW = {"paper": "P", "metric": "M", "published": 0.5}
BAD_CONFIGS = {
    "path-like name": (
        {"tasks": {"sequence_tasks": {"../ESCAPED": {"kind": "classification"}}}},
        "config key tasks.sequence_tasks: the name '../ESCAPED' is not allowed",
    ),
    "unknown training setting": (
        {"pretrain": {"train": {"max_stepz": 3}}},
        r"pretrain\.train: .*max_stepz",
    ),
    "schema": ({"splits": {"seed": "x"}}, r"Error validating config file\.\n'x' is not of type"),
    "missing sheet": ({"samples": "no/such.tsv"}, r"sample sheet no/such.tsv not found"),
    "model tokenizer": (
        {
            "pretrain": {
                "models": {"m": {"objective": "gpt", "tokenizer": "nope", "preset": "tiny"}}
            }
        },
        r"pretrain\.models\.m: tokenizer 'nope' is not defined under `tokenizers`",
    ),
    "model corpus": (
        {"pretrain": {"models": {"mlm_bpe": {"corpus": "nope"}}}},
        r"pretrain\.models\.mlm_bpe\.corpus: 'nope' is not defined under `corpora`",
    ),
    "run model": (
        {"finetune": {"runs": {"r": {"model": "nope", "regime": "frozen"}}}},
        r"finetune\.runs\.r: model 'nope' is not defined under pretrain\.models",
    ),
    "run tasks": (
        {"finetune": {"runs": {"mlm_bpe_lora": {"tasks": ["nope"]}}}},
        r"finetune\.runs\.mlm_bpe_lora\.tasks: \['nope'\] are not tasks of this configuration",
    ),
    "probe models": (
        {"probe": {"models": ["nope"]}},
        r"probe\.models: \['nope'\] are not under pretrain\.models",
    ),
    "probe finetuned": (
        {"probe": {"finetuned": ["nope"]}},
        r"probe\.finetuned: 'nope' is not under finetune\.runs",
    ),
    "probe finetuned task": (
        {"probe": {"finetuned": ["gpt_codon_frozen"]}},
        r"probe\.finetuned: run 'gpt_codon_frozen' does not train on the probe task",
    ),
    "probe kinds": ({"probe": {"kinds": ["logreg", "forest"]}}, "'forest' is not one of"),
    "generate masked model": (
        {"generate": {"models": ["mlm_kmer6"]}},
        r"generate\.models: 'mlm_kmer6' is a masked \(mlm\) model",
    ),
    "generate reference": (
        {"generate": {"reference_model": "nope"}},
        r"generate\.reference_model: 'nope' is not under pretrain\.models",
    ),
    "vep sample": (
        {"vep": {"enabled": True, "sample": "nope"}},
        r"vep\.sample: 'nope' is not a sample with CDS",
    ),
    "vep models": (
        {"vep": {"enabled": True, "models": ["nope"]}},
        r"vep\.models: 'nope' is not under pretrain\.models",
    ),
    "interpret task": (
        {"interpret": {"enabled": True, "runs": {"nope": ["gpt_nucleotide_frozen"]}}},
        r"interpret\.runs: \['nope'\] are not tasks of this configuration",
    ),
    "interpret run": (
        {"interpret": {"enabled": True, "runs": {"tf_binding": ["kmer4"]}}},
        r"interpret\.runs\.tf_binding: \['kmer4'\] are not fine-tuning or one-hot CNN runs",
    ),
    "reproduce model": (
        {"reproduce": {"rows": [{**ROW, "source": "pretrain", "model": "nope"}]}},
        r"reproduce\.rows\[0\]\.model: 'nope' is not under pretrain\.models",
    ),
    "reproduce probe row": (
        {
            "probe": {"enabled": False},
            "reproduce": {"rows": [{**ROW, "source": "probe", "model": "mlm_kmer6"}]},
        },
        r"reproduce\.rows\[0\]: a probe row needs probe\.enabled",
    ),
    "seeds": (
        {"pretrain": {"models": {"gpt_codon": {"seeds": [1, 1]}}}},
        r"\[1, 1\] has non-unique elements",
    ),
    "corpus window": (
        {
            "corpora": {"long": {"source": "genome", "samples": ["spyogenes"], "window": 2000}},
            "pretrain": {"models": {"gpt_nucleotide": {"corpus": "long"}}},
        },
        r"corpora\.long\.window: a window of 2000 nt is 2000 nucleotide tokens",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_is_refused_by_load(case):
    """Each config check is reachable from load() and raises a DnalmError naming the key."""
    over, message = BAD_CONFIGS[case]
    with pytest.raises(DnalmError, match=message):
        load(demo_config(**over))


# --------------------------------------------------------------------------- GPU resources


def test_gpu_rules_book_a_gpu_when_their_stage_may_use_one():
    """The single-process GPU stages book one GPU (their rules' `gpu` resource) unless
    their device is the CPU or MPS: attributions and DNA+text included."""
    plan = load(demo_config())
    assert plan.gpus("finetune") == 1  # finetune.train.device auto
    assert plan.gpus("interpret") == 0  # interpret.device cpu (the default)
    assert plan.gpus("dnatext") == 0  # dnatext.device cpu (the default)
    assert plan.gpus("cnn") == 0  # baselines.onehot_cnn.train.device cpu (the default)
    plan = load(
        demo_config(
            interpret={"device": "cuda:1"},
            dnatext={"device": "auto"},
            baselines={"onehot_cnn": {"train": {"device": "cuda"}}},
            finetune={"train": {"device": "mps"}},
        )
    )
    assert [plan.gpus(s) for s in ("interpret", "dnatext", "cnn", "finetune")] == [1, 1, 1, 0]
    assert (
        load(demo_config(finetune={"gpus": 0}, interpret={"device": "cuda"})).gpus("interpret") == 0
    )


def test_finetune_gpus_above_one_is_refused():
    """Fine-tuning and its kin run in one process: finetune.gpus 2 would book an idle GPU."""
    with pytest.raises(ConfigError, match=r"finetune\.gpus is 2, .*set finetune\.gpus to 1"):
        load(demo_config(finetune={"gpus": 2}))
