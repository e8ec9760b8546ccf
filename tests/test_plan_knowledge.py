"""The plan of gene completion and the robustness panel: defaults, targets, inputs, and each
config error named at load (without Snakemake)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnalm.core.errors import ConfigError, DnalmError
from dnalm.plan import load
from dnalm.plan.knowledge import check_gene_completion
from dnalm.plan.plan import SPLITS_TABLE, wildcards
from tests.support.workflow_runner import demo_config

REPO = Path(__file__).resolve().parents[1]
# the defaults (the demo names one model and one sample)
ON = {
    "gene_completion": {"enabled": True, "models": None, "samples": None},
    "robustness": {"enabled": True, "models": None},
}


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)


def test_defaults_every_causal_model_every_cds_sample_and_targets():
    plan = load(demo_config(**ON))
    causal = [
        m
        for m, s in plan.models.items()
        if s["objective"] == "gpt" and m not in plan.sweep_models | plan.replicate_models
    ]
    assert plan.genecomp_models() == causal
    assert plan.genecomp_samples() == sorted(plan.cds_samples)
    targets = plan.targets()
    assert "results/gene_completion/summary.tsv" in targets
    assert "results/figures/gene_completion/summary.png" in targets
    assert plan.genecomp_tables()[-3:] == [
        "results/gene_completion/baselines/markov.tsv",
        "results/gene_completion/baselines/codon_trigram.tsv",
        "results/gene_completion/baselines/nearest_gene.tsv",
    ]
    inputs = plan.genecomp_model_inputs(wildcards(model="gpt_codon"))
    assert inputs["splits"] == SPLITS_TABLE
    assert inputs["weights"] == "results/models/gpt_codon/model.safetensors"
    assert plan.genecomp_unit("gpt_codon") == 3
    # the panel: every model, masked ones too; k from the tokenizer
    assert "mlm_kmer6" in plan.robustness_models()
    assert plan.robustness_k("mlm_kmer6") == 6
    assert plan.robustness_k("gpt_nucleotide") == 1
    assert "results/robustness/mlm_kmer6/panel.tsv" in targets
    assert "results/figures/robustness/mlm_kmer6.png" in targets


def test_the_demo_runs_both_and_they_switch_off():
    plan = load(demo_config())
    assert plan.genecomp_models() == ["gpt_nucleotide"]
    assert plan.genecomp_samples() == ["spyogenes"]
    assert plan.robustness_models() == ["mlm_kmer6"]
    plan = load(demo_config(gene_completion={"enabled": False}, robustness={"enabled": False}))
    assert not [t for t in plan.targets() if "gene_completion" in t or "robustness" in t]


BAD = {
    "masked model": (
        {"gene_completion": {"enabled": True, "models": ["mlm_kmer6"]}},
        r"gene_completion\.models: 'mlm_kmer6' is a masked \(mlm\) model",
    ),
    "unknown model": (
        {"gene_completion": {"enabled": True, "models": ["nope"]}},
        r"gene_completion\.models: 'nope' is not under pretrain\.models",
    ),
    "unknown sample": (
        {"gene_completion": {"enabled": True, "samples": ["nope"]}},
        r"gene_completion\.samples: nope is not a sample with CDS",
    ),
    "repeated fraction": (
        {"gene_completion": {"enabled": True, "prompt_fractions": [0.1, 0.1]}},
        r"gene_completion\.prompt_fractions has repeats",
    ),
    "fraction of 1": (
        {"gene_completion": {"enabled": True, "prompt_fractions": [1.0]}},
        "prompt_fractions",
    ),
    "robustness model": (
        {"robustness": {"enabled": True, "models": ["nope"]}},
        r"robustness\.models: 'nope' is not under pretrain\.models",
    ),
    "indel outside the window": (
        {"robustness": {"enabled": True, "window_nt": 40, "indel_distances": [25]}},
        r"robustness\.indel_distances: 25 is not within the half window",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_settings_are_refused_by_load(case):
    over, message = BAD[case]
    with pytest.raises(DnalmError, match=message):
        load(demo_config(**over))


def test_gene_completion_settings_are_checked_by_key():
    settings = {"prompt_fractions": [0.1, 1.5]}
    with pytest.raises(ConfigError, match=r"prompt_fractions: 1\.5 is not a fraction"):
        check_gene_completion(settings)
    with pytest.raises(ConfigError, match="prompt_fractions has repeats"):
        check_gene_completion({"prompt_fractions": [0.1, 0.1]})
