"""The workflow writes a model card and provenance.json into the folder of a pretrained
model and of a fine-tuned (merged LoRA) one: three small genomes, one tiny GPT, one task;
the cards parse with huggingface_hub.ModelCard.load with the metrics of metrics.json, the
checksums are those of the inputs, and ``dnalm publish --dry-run`` passes on both."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from dnalm.cli import main
from tests.support.workflow_runner import (
    SLIM_SAMPLES,
    fail_message,
    make_workdir,
    slim_config,
    snakemake,
)

PRETRAINED = "results/models/gpt_nucleotide"
FINETUNED = "results/finetune/oct4_vs_mafk/gpt_lora/model"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_every_model_folder_gets_a_card_and_provenance(tmp_path, shared_data, capsys):
    replace = slim_config()
    replace["tasks"] = {
        "species_fragments": {"enabled": False},
        "tf_binding": {"sequences": None},
        "sequence_tasks": {
            "oct4_vs_mafk": {
                "kind": "classification",
                "fasta_by_class": {
                    c: str(shared_data / f"tasks/chipseq_oct4_vs_mafk/{c}_train.fa.gz")
                    for c in ("oct4", "mafk")
                },
                "test_fasta_by_class": {
                    c: str(shared_data / f"tasks/chipseq_oct4_vs_mafk/{c}_test.fa")
                    for c in ("oct4", "mafk")
                },
            }
        },
    }
    replace["finetune"] = {
        **replace["finetune"],
        "runs": {"gpt_lora": {"model": "gpt_nucleotide", "regime": "lora"}},
        "train": {"max_epochs": 1, "max_train_examples": 200, "batch_size": 32},
    }
    replace["baselines"] = {"onehot_cnn": {"enabled": False}, "kmer": {"enabled": True, "k": [3]}}
    wd = make_workdir(tmp_path / "wd", keep=list(SLIM_SAMPLES), replace=replace)
    proc = snakemake(wd, f"{PRETRAINED}/README.md", f"{FINETUNED}/README.md")
    assert proc.returncode == 0, fail_message(proc)

    # pretrained: the model's test metrics and its strongest count baseline
    metrics = json.loads((wd / PRETRAINED / "metrics.json").read_text())
    card = ModelCard.load(wd / PRETRAINED / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers"
    assert data["dnalm"]["test_metrics"] == {
        k: metrics["model"][k] for k in data["dnalm"]["test_metrics"]
    }
    assert data["dnalm"]["baseline"]["name"] == metrics["baseline"]["name"]
    beats = metrics["model"]["loss"] < metrics["baseline"]["loss"]
    assert ("does not beat its count baseline" in card.text) == (not beats)
    prov = json.loads((wd / PRETRAINED / "provenance.json").read_text())
    assert sorted(prov["samples"]) == sorted(SLIM_SAMPLES)
    for sample, record in prov["samples"].items():
        verified = json.loads((wd / f"resources/genomes/{sample}/provenance.json").read_text())
        for which, entry in record["files"].items():
            path = Path(entry["path"])
            path = path if path.is_absolute() else wd / path
            assert entry["sha256"] == sha256(path) == verified["files"][which]["sha256"]
    split = prov["inputs"]["split_assignment"]
    assert split["sha256"] == sha256(wd / "results/splits/assignment.tsv")
    assert prov["seeds"]["pretrain"] is not None

    # fine-tuned: its metrics.json, the comparison table's CI and strongest baseline
    run = wd / FINETUNED / ".."
    metrics = json.loads((run / "metrics.json").read_text())
    data = ModelCard.load(wd / FINETUNED / "README.md").data.to_dict()
    assert data["base_model"] == "gpt_nucleotide"
    assert data["dnalm"]["test_metrics"]["accuracy"] == metrics["metrics"]["accuracy"]
    assert data["dnalm"]["baseline"]["name"] == "kmer3"
    assert data["dnalm"]["ci95"]["low"] <= data["dnalm"]["ci95"]["high"]
    prov = json.loads((wd / FINETUNED / "provenance.json").read_text())
    task = wd / "results/tasks/oct4_vs_mafk/data.tsv"
    assert prov["inputs"]["task_table"]["sha256"] == sha256(task)
    assert prov["seeds"]["finetune"] is not None

    for folder in (PRETRAINED, FINETUNED):
        argv = ["publish", "--model", str(wd / folder), "--repo-id", "org/m", "--dry-run"]
        assert main(argv) == 0, capsys.readouterr().out
