"""The plan's model-card inputs and targets (rules pretrain_card and finetune_card), without
Snakemake: which folders get a card, and which sources, split files and seeds each one is
traced to."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnalm.plan import load
from dnalm.plan.plan import wildcards
from tests.support import hub_fixtures as hf
from tests.support.workflow_runner import demo_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)  # relative paths of the configs are from the repository root


@pytest.fixture
def plan(_at_repo_root):
    return load(demo_config())


def test_every_model_and_fine_tuned_folder_gets_a_card_and_no_baseline(plan):
    targets = plan.card_targets()
    for model in plan.models:
        assert f"results/models/{model}/README.md" in targets
    for run in plan.runs:
        for task in plan.run_tasks(run):
            assert f"results/finetune/{task}/{run}/model/README.md" in targets
    assert not [t for t in targets if "/kmer" in t or "/onehot_cnn" in t]
    assert set(targets) <= set(plan.targets())


def test_a_cds_model_is_traced_to_its_samples_and_the_split_assignment(plan):
    inputs = plan.pretrain_card_inputs(wildcards(model="gpt_nucleotide"))
    assert inputs["metrics"] == "results/models/gpt_nucleotide/metrics.json"
    assert inputs["assignment"] == "results/splits/assignment.tsv"
    assert inputs["leakage"] == "results/splits/leakage_summary.tsv"
    samples = plan.corpora[plan.models["gpt_nucleotide"]["corpus"]]["samples"]
    assert samples
    assert inputs["sources"] == [f"resources/genomes/{s}/provenance.json" for s in sorted(samples)]


def test_a_genome_window_model_is_traced_to_its_window_leakage_and_block_seed(plan):
    inputs = plan.pretrain_card_inputs(wildcards(model="neox_genome"))
    assert "assignment" not in inputs
    assert inputs["leakage"] == "results/windows/genome/leakage.tsv"
    assert inputs["sources"] == [
        "resources/genomes/spyogenes/provenance.json",
        "resources/genomes/yeast_chrIV/provenance.json",
    ]
    assert plan.split_seeds("genome")["corpus_split"] == 42  # the schema's block-hash default


def test_a_fine_tuned_folder_is_traced_to_its_comparison_task_and_base_samples(plan):
    wc = wildcards(ftask="species_fragments", run="mlm_bpe_lora")
    inputs = plan.finetune_card_inputs(wc)
    assert inputs["comparison"] == "results/finetune/species_fragments/comparison.tsv"
    assert inputs["task"] == "results/tasks/species_fragments/data.tsv"
    assert inputs["config"] == "results/finetune/species_fragments/mlm_bpe_lora/model/config.json"
    sources = {Path(s).parent.name for s in inputs["sources"]}
    assert set(plan.species_samples) <= sources
    assert set(plan.model_samples("mlm_bpe")) <= sources
    assert plan.finetune_base_model("mlm_bpe_lora") == "mlm_bpe"


def test_a_folder_fine_tuned_from_an_external_model_is_traced_to_its_record(tmp_path):
    nt = hf.nt_v1_folder(tmp_path / "nt_v1", context=128)
    run = {"model": "nt", "regime": "frozen", "tasks": ["species_fragments"]}
    plan = load(
        demo_config(
            models={"external": {"nt": {"source": str(nt), "objective": "mlm"}}},
            finetune={"runs": {"nt_frozen": run}},
        )
    )
    inputs = plan.finetune_card_inputs(wildcards(ftask="species_fragments", run="nt_frozen"))
    assert inputs["external"] == "resources/external/nt/provenance.json"
    assert "assignment" not in inputs  # no pretraining of ours behind it
    assert plan.finetune_base_model("nt_frozen") == "nt"  # a local folder: its entry's name
    assert plan.split_seeds(plan.finetune_corpus("nt_frozen")) == {"splits": 42}
