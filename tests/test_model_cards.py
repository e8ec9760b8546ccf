"""Model cards (README.md) and provenance.json of the model folders the workflow writes: a
tiny model pretrained and one fine-tuned (LoRA, merged) by the library, their cards read
back with huggingface_hub.ModelCard.load, their checksums against the inputs."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from dnalm.core.errors import InputFormatError
from dnalm.core.provenance import build_provenance, config_sha256
from dnalm.finetuning import finetune as ft
from dnalm.finetuning.compare import kind_of, summarise_runs
from dnalm.finetuning.kmer_baseline import run_kmer_baseline
from dnalm.finetuning.tables import comparison_table
from dnalm.report import cards
from tests.support.model_cards import CONFIG, carded_model, source_record
from tests.test_finetuning_finetune import class_table, make_model_dir


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    return carded_model(tmp_path_factory.mktemp("cards"))


def test_pretrained_card_parses_with_metrics_of_metrics_json(pretrained):
    folder, _, _ = pretrained
    metrics = json.loads((folder / "metrics.json").read_text())
    card = ModelCard.load(folder / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers"
    assert data["pipeline_tag"] == "text-generation"
    assert sorted(data["datasets"]) == ["GCF_bsub.1", "GCF_ecoli.1"]
    shown = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert shown == {k: metrics["model"][k] for k in cards.PRETRAIN_METRICS}
    assert data["dnalm"]["test_metrics"] == shown
    best = metrics["baseline"]
    assert data["dnalm"]["baseline"]["name"] == best["name"]
    assert data["dnalm"]["baseline"]["loss"] == best["loss"]
    assert data["dnalm"]["beats_baseline"] == (metrics["model"]["loss"] < best["loss"])
    for b in metrics["baselines"]:  # every count baseline is a row of the table
        assert f"| {b['name']} |" in card.text


def test_card_says_plainly_when_the_model_does_not_beat_its_baseline(pretrained):
    folder, _, _ = pretrained
    run = json.loads((folder / "run.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    prov = json.loads((folder / "provenance.json").read_text())
    worse = {**metrics, "model": {**metrics["model"], "loss": metrics["baseline"]["loss"] + 1}}
    card = cards.pretrain_card("tiny_gpt", run, worse, prov)
    assert "This model does not beat its count baseline" in card.text
    assert card.data.to_dict()["dnalm"]["beats_baseline"] is False
    better = {**metrics, "model": {**metrics["model"], "loss": metrics["baseline"]["loss"] - 1}}
    assert "does not beat" not in cards.pretrain_card("tiny_gpt", run, better, prov).text


def test_a_model_without_test_metrics_makes_no_claim(pretrained):
    folder, _, _ = pretrained
    run = json.loads((folder / "run.json").read_text())
    prov = json.loads((folder / "provenance.json").read_text())
    card = cards.pretrain_card("tiny_gpt", run, {}, prov)  # pretrain.train.test_eval: false
    assert "No test comparison" in card.text
    assert card.data.to_dict()["dnalm"]["beats_baseline"] is None


def test_a_run_missing_from_the_comparison_table_is_named():
    table = [{"run": "kmer3", "best_baseline": "kmer3"}]
    with pytest.raises(InputFormatError, match=r"cmp\.tsv: no row for run 'gpt_lora'.*rerun"):
        cards.comparison_rows(table, "gpt_lora_seed1", "cmp.tsv")


def test_provenance_checksums_are_those_of_the_inputs(pretrained):
    folder, records, assignment = pretrained
    prov = json.loads((folder / "provenance.json").read_text())
    for sample, record in records.items():
        path = Path(json.loads(record.read_text())["files"]["primary"]["path"])
        got = prov["samples"][sample]["files"]["primary"]
        assert got["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert got["source"] == f"GCF_{sample}.1"
    split = prov["inputs"]["split_assignment"]
    assert split["sha256"] == hashlib.sha256(assignment.read_bytes()).hexdigest()
    assert prov["config_sha256"] == config_sha256(CONFIG)
    assert prov["leakage"]["rows"] == [{"split": "test", "n": "1", "max_identity": "0.41"}]
    assert prov["seeds"] == {"pretrain": 0, "splits": 11}
    assert {"torch", "transformers", "tokenizers", "dnalm"} <= set(prov["packages"])
    assert prov["packages"]["torch"]  # installed here, so a version
    repo = prov["repository"]
    assert (repo["commit"] and len(repo["commit"]) == 40) or repo["reason"]


def test_a_source_changed_after_verification_is_named(tmp_path):
    record = source_record(tmp_path, "ecoli", ">a\nACGT\n")
    path = Path(json.loads(record.read_text())["files"]["primary"]["path"])
    path.write_bytes(gzip.compress(b">a\nTTTT\n"))
    with pytest.raises(InputFormatError, match=r"ecoli\.fna\.gz: sha256 .* delete .*provenance"):
        build_provenance(config={}, sample_records={"ecoli": record})


def test_finetuned_merged_lora_card_has_ci_and_baseline_of_the_comparison(tmp_path):
    base = make_model_dir(tmp_path / "base", "gpt", context=48, n_layer=1)
    table = class_table(n=80)
    task = tmp_path / "data.tsv"
    table.to_csv(task, sep="\t", index=False)
    runs = tmp_path / "finetune" / "gc"
    settings = {"batch_size": 16, "max_epochs": 1, "lr": 1e-3, "threads": 1, "regime": "lora"}
    ft.finetune(base, table, runs / "lora_run", settings, run_name="lora_run", task_name="gc")
    run_kmer_baseline(table, runs / "kmer2", k=2, task="gc")
    files = [runs / r / "metrics.json" for r in ("lora_run", "kmer2")]
    compared = comparison_table(files)
    compared = summarise_runs(
        compared, {f.parent.name: f.parent for f in files}, kind_of(compared), n_boot=50
    )
    rows = compared.to_dict("records")
    row, baseline = cards.comparison_rows(rows, "lora_run")
    assert baseline is not None
    assert baseline["run"] == "kmer2"
    record = source_record(tmp_path, "ecoli", ">a\nACGT\n")
    prov = build_provenance(
        config={}, sample_records={"ecoli": record}, inputs={"task_table": task}
    )
    metrics = json.loads((runs / "lora_run" / "metrics.json").read_text())
    folder = runs / "lora_run" / "model"
    card = cards.finetune_card("lora_run", "gc", metrics, row, baseline, "tiny_base", prov)
    cards.write_card(folder / "README.md", card)
    loaded = ModelCard.load(folder / "README.md").data.to_dict()
    assert loaded["base_model"] == "tiny_base"
    assert loaded["pipeline_tag"] == "text-classification"
    assert "merged-lora" in loaded["tags"]
    numeric = {k: v for k, v in metrics["metrics"].items() if isinstance(v, int | float)}
    assert "accuracy" in numeric
    assert loaded["dnalm"]["test_metrics"] == numeric
    shown = {
        m["type"]: m["value"] for r in loaded["model-index"][0]["results"] for m in r["metrics"]
    }
    assert shown == numeric
    ci = loaded["dnalm"]["ci95"]
    assert (ci["low"], ci["high"]) == (row["ci95_low"], row["ci95_high"])
    assert ci["low"] <= ci["estimate"] <= ci["high"]
    assert loaded["dnalm"]["baseline"]["name"] == "kmer2"
    assert loaded["dnalm"]["baseline"]["accuracy"] == baseline["accuracy"]
    assert loaded["dnalm"]["delta_vs_baseline"]["estimate"] == row["delta_vs_best_baseline"]
    text = (folder / "README.md").read_text()
    beats = row["accuracy"] > baseline["accuracy"]
    assert ("does not beat its strongest baseline" in text) == (not beats)
    assert prov["inputs"]["task_table"]["sha256"] == hashlib.sha256(task.read_bytes()).hexdigest()
    shutil.rmtree(tmp_path / "finetune")
