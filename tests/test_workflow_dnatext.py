"""The dnatext stage through the real workflow on three small GenBank samples: the paired
corpus follows the CDS splits, the DNA+text and DNA-only models train a few steps, and the
evaluation table holds both losses, retrieval with its baselines, and the DNA-only rows; the
species probe embeds the fragments with the three models (regime dnatext) next to the k-mer
probe."""

from __future__ import annotations

import pandas as pd
import pytest
from transformers import AutoModelForMaskedLM

from dnalm.modeling.loader import register_model_types
from dnalm.tokenization.build import load_tokenizer
from tests.support.workflow_runner import fail_message, make_workdir, slim_config, snakemake

SAMPLES = ["athaliana_cp", "ypestis_pPCP1", "phiX174"]
DNATEXT = {
    "enabled": True,
    "dna_tokenizer": "bpe",
    "text_vocab_size": 120,
    "max_dna_nt": 60,
    "model": {
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "base_dim": 8,
        "base_layers": 1,
        "base_heads": 2,
    },
    "train": {"steps": 3, "batch_size": 4, "max_len": 48},
    "evaluation": {"max_candidates": 4, "max_queries": 4, "max_test_pairs": 16},
}


@pytest.mark.slow
def test_dnatext_stage_on_three_genbank_samples(tmp_path, shared_data):
    replace = slim_config()
    replace["tokenizers"]["bpe"] = {"type": "bpe", "vocab_size": 64}
    replace["pretrain"]["models"] = {}
    replace["splits"] = {"method": "identity", "seed": 1}
    replace["dnatext"] = DNATEXT
    replace["tasks"]["species_fragments"] = {
        "enabled": True,
        "length": 60,
        "n_train": 20,
        "n_test": 20,
        "n_validation": 0,
        "max_per_cds": 4,
    }
    replace["probe"] = {
        **replace["probe"],
        "enabled": True,
        "models": [],
        "random_init": False,
        "cv_folds": 2,
        "kmer_k": 3,
    }
    wd = make_workdir(tmp_path / "wd", keep=SAMPLES, replace=replace)
    sheet = pd.read_csv(wd / "config/samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    # the probe task's species (ypestis_pPCP1 has no validation-split CDS to train on)
    sheet["species_task"] = ["true" if s != "ypestis_pPCP1" else "false" for s in sheet["sample"]]
    sheet.to_csv(wd / "config/samples.tsv", sep="\t", index=False)
    proc = snakemake(wd, "results/dnatext/evaluation.tsv", "results/probe/probe_table.tsv")
    assert proc.returncode == 0, fail_message(proc)

    pairs = pd.read_csv(wd / "results/dnatext/corpus/pairs.tsv", sep="\t", dtype=str)
    assert set(pairs["sample"]) == set(SAMPLES)
    assignment = pd.concat(
        pd.read_csv(wd / f"results/splits/{s}/assignment.tsv", sep="\t", dtype=str) for s in SAMPLES
    )
    split_of = {(a, c): s for a, c, s in assignment[["sample", "cds_id", "split"]].values}
    assert all(split_of[a, c] == s for a, c, s in pairs[["sample", "cds_id", "split"]].values)
    assert {"train", "test"} <= set(pairs["split"])
    assert (pairs["sequence"].str.len() <= 60).all()
    assert all(
        f"<dna>{s}</dna>" in t for s, t in zip(pairs["sequence"], pairs["text"], strict=True)
    )
    summary = pd.read_csv(wd / "results/dnatext/corpus/summary.tsv", sep="\t")
    assert summary["pairs"].sum() == len(pairs)

    table = pd.read_csv(wd / "results/dnatext/evaluation.tsv", sep="\t")
    value = {(m, k): v for m, k, v in table.itertuples(index=False)}
    for key in ("text_loss_true_dna", "text_loss_random_dna", "dna_loss_with_text"):
        assert 0 < value["dnatext", key] < 20, key
    assert value["dnatext", "retrieval_queries"] >= 1
    for name in ("model", "model_pmi", "kmer_nn", "train_freq", "chance"):
        assert (
            0 <= value["dnatext", f"{name}_top1_acc"] <= value["dnatext", f"{name}_top5_acc"] <= 1
        )
    assert value["dnatext", "chance_top1_acc"] == 1 / value["dnatext", "retrieval_candidates"]
    for name in ("dna_basewise", "dna_table"):
        assert 0 < value[name, "test_bits_per_nt"] < 10
        assert value[name, "parameters"] > 1000
    # each model folder reloads through the Auto classes (once dnalm's model types are
    # registered); the DNA-only ones also carry the DNA tokenizer
    register_model_types()
    for sub in ("dnatext", "dna_basewise", "dna_table"):
        folder = wd / "results/dnatext/models" / sub
        model = AutoModelForMaskedLM.from_pretrained(folder)
        assert sum(p.numel() for p in model.parameters()) > 1000
    for sub in ("dna_basewise", "dna_table"):
        folder = wd / "results/dnatext/models" / sub
        assert (
            load_tokenizer(folder).vocab_size
            == load_tokenizer(wd / "results/tokenizers/bpe").vocab_size
        )
    # the species probe: one row per dnatext-stage model (DNA only), against the k-mer probe
    probe = pd.read_csv(wd / "results/probe/probe_table.tsv", sep="\t")
    assert set(zip(probe["model"], probe["regime"], strict=True)) == {
        ("dna_basewise", "dnatext"),
        ("dna_table", "dnatext"),
        ("dnatext", "dnatext"),
        ("3-mer frequencies", "kmer-baseline"),
    }
    assert probe["accuracy"].between(0, 1).all()
    for job in ("corpus", "train"):
        assert (wd / f"results/benchmarks/dnatext/{job}.tsv").is_file()


def test_gpu_stages_declare_their_gpu_in_a_dry_run(tmp_path, shared_data):
    """A dry run shows the `gpu` resource of the attribution and DNA+text jobs when their
    device may be a GPU (so SLURM gives them one and a local run gives each its own), and
    none for the CPU-only one-hot CNN."""
    import re

    from tests.support.workflow_runner import fail_message, make_workdir, snakemake

    wd = make_workdir(
        tmp_path / "wd",
        {"interpret": {"device": "cuda"}, "dnatext": {"device": "auto", "probe": True}},
    )
    proc = snakemake(
        wd,
        "-n",
        "--forceall",
        "results/interpret/tf_binding/onehot_cnn/summary.tsv",
        "results/dnatext/evaluation.tsv",
        timeout=300,
    )
    assert proc.returncode == 0, fail_message(proc)
    jobs = re.findall(r"\nrule (\w+):.*?\n\s+resources: ([^\n]*)", proc.stdout, flags=re.S)
    resources = {rule: res.split(", ") for rule, res in jobs}
    for rule in ("interpret", "dnatext_train"):
        assert "gpu=1" in resources[rule], (rule, resources.get(rule))
    assert "gpu=0" in resources["baseline_cnn"], resources
