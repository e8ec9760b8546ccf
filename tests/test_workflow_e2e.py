"""The whole workflow on the shared-data test config (tests/config/), run once, as a user
would run it: every stage's outputs are checked against figures known from the data.

All tests here share one run (module fixture); run with `--dist loadfile` under xdist so the
run happens once."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from transformers import AutoTokenizer

from dnalm.io import read_fasta
from dnalm.tokenizers import load_tokenizer
from tests.workflow_runner import fail_message, make_workdir, snakemake

pytestmark = pytest.mark.slow
TOKENIZERS = ["nucleotide", "kmer6", "codon", "bpe"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared_data):
    """One run of the whole workflow (rule all) on tests/config."""
    workdir = make_workdir(tmp_path_factory.mktemp("e2e"))
    proc = snakemake(workdir)
    assert proc.returncode == 0, fail_message(proc)
    return workdir


def test_qc_figures_of_shared_genomes(run, shared_data):
    summary = pd.read_csv(run / "results/cds/qc_summary.tsv", sep="\t").set_index("sample")
    assert len(summary) == 14
    # NCBI's own CDS FASTA of pPCP1 holds 10 CDS; yeast chrIV has 836 complete CDS.
    assert summary.loc["ypestis_pPCP1", "kept"] == 10
    assert summary.loc["yeast_chrIV", "kept"] == 836
    assert summary.loc["ecoli_hx", "kept"] == 94
    assert summary.loc["spyogenes", "kept"] == 1853
    ours = {h.split()[0]: s for h, s, _ in read_fasta(run / "results/cds/ypestis_pPCP1.fa.gz")}
    ncbi = [s.upper() for _, s, _ in read_fasta(shared_data / "genbank/NC_005816.ffn")]
    assert sorted(ours.values()) == sorted(ncbi)
    yeast = [s for _, s, _ in read_fasta(run / "results/cds/yeast_chrIV.fa.gz")]
    assert all(s.startswith("ATG") and len(s) % 3 == 0 for s in yeast)
    assert all(s[-3:] in {"TAA", "TAG", "TGA"} for s in yeast)
    assert (run / "results/cds/qc.png").stat().st_size > 10_000


def test_splits_have_no_leakage(run):
    table = pd.read_csv(run / "results/splits/assignment.tsv", sep="\t")
    assert table.groupby("seq_sha1")["split"].nunique().max() == 1
    kept = pd.read_csv(run / "results/cds/qc_summary.tsv", sep="\t")["kept"].sum()
    assert len(table) == kept
    for sample in table["sample"].unique():
        train = {s for _, s, _ in read_fasta(run / f"results/splits/{sample}/train.fa.gz")}
        test = {s for _, s, _ in read_fasta(run / f"results/splits/{sample}/test.fa.gz")}
        assert not train & test
    all_train = set(table.loc[table["split"] == "train", "seq_sha1"])
    all_test = set(table.loc[table["split"] == "test", "seq_sha1"])
    assert all_test
    assert not all_train & all_test


def test_logs_provenance_and_rerun(run):
    samples = pd.read_csv(run / "config/samples.tsv", sep="\t")["sample"]
    for sample in samples:
        assert (run / f"results/logs/cds/{sample}.log").is_file()
        prov = json.loads((run / f"resources/genomes/{sample}/provenance.json").read_text())
        assert len(prov["files"]["primary"]["md5"]) == 32
        # local sources are used in place: nothing copied into resources/
        assert not (run / f"resources/genomes/{sample}/primary").exists()
    assert (run / "results/benchmarks/cds/spyogenes.tsv").is_file()
    proc = snakemake(run, "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.parametrize("tok", TOKENIZERS)
def test_tokenizers_load_with_autotokenizer(run, tok, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = run / f"results/tokenizers/{tok}"
    hf = AutoTokenizer.from_pretrained(folder)
    ours = load_tokenizer(folder)
    assert hf.vocab_size == ours.vocab_size or len(hf) == ours.vocab_size
    seq = "ATGGCTAAAGGTGAAGAACTGTTTACCGGTGTTGTTCCGATTCTGGTTGAACTGGATGGTGATGTTAATGGTCACAAATAA"
    assert ours.decode(ours.encode(seq)) == seq
    if tok != "bpe":
        assert hf(seq, add_special_tokens=False)["input_ids"] == ours.encode(seq).tolist()


@pytest.mark.parametrize("tok", TOKENIZERS)
def test_corpus_arrays_and_meta(run, tok):
    folder = run / f"results/corpus/{tok}"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["tokenizer"] == tok
    assert meta["block_size"] == 128
    assert meta["tokenizer_hash"] == load_tokenizer(folder / "tokenizer").hash
    assignment = pd.read_csv(run / "results/splits/assignment.tsv", sep="\t")
    pretrained = assignment[~assignment["sample"].isin(_not_pretrain(run))]
    for split in ("train", "validation", "test"):
        tokens = np.load(folder / f"{split}.tokens.npy")
        positions = np.load(folder / f"{split}.positions.npy")
        assert tokens.dtype == np.uint16
        assert tokens.shape == positions.shape
        assert tokens.shape[1] == 128
        assert (tokens != meta["pad_id"]).any(axis=1).all(), "a window is all padding"
        stats = meta[split]
        assert stats["n_windows"] == len(tokens)
        n_expected = ((pretrained["split"] == split) & (pretrained["length"] >= 60)).sum()
        assert stats["n_sequences"] == n_expected
        assert int((tokens != meta["pad_id"]).sum()) == stats["n_tokens"]
    if tok == "kmer6":
        assert 5.5 < meta["train"]["nt_per_token"] <= 6.0
    if tok == "codon":
        assert meta["train"]["nt_per_token"] == pytest.approx(3.0)


def _not_pretrain(run) -> set[str]:
    sheet = pd.read_csv(run / "config/samples.tsv", sep="\t")
    return set(sheet.loc[sheet["pretrain"].astype(str).str.lower() == "false", "sample"])


def test_species_fragments_task(run):
    data = pd.read_csv(run / "results/tasks/species_fragments/data.tsv", sep="\t")
    assert set(data["label"]) == {
        "Streptococcus pyogenes",
        "Chlamydia trachomatis",
        "Mycoplasma gallisepticum",
        "Saccharomyces cerevisiae",
    }
    assert (data["sequence"].str.len() == 60).all()
    counts = data.groupby(["split", "label"]).size()
    assert (counts.loc["train"] == 200).all()
    assert (counts.loc["test"] == 200).all()
    # no fragment comes from a CDS the language models were trained on
    train_cds = set()
    for sample in ("spyogenes", "ctrachomatis", "mgallisepticum", "yeast_chrIV"):
        train_cds |= {s for _, s, _ in read_fasta(run / f"results/splits/{sample}/train.fa.gz")}
    joined = "|".join(train_cds)
    sample_fragments = data.sample(200, random_state=0)["sequence"]
    hits = [f for f in sample_fragments if f in joined]
    # a 60-mer may recur by chance in another gene, but not for most fragments
    assert len(hits) < 5


def test_tf_binding_task(run):
    data = pd.read_csv(run / "results/tasks/tf_binding/data.tsv", sep="\t")
    assert len(data) == 23139
    assert (data["sequence"].str.len() == 300).all()
    assert set(data["split"]) == {"train", "validation", "test"}
    assert data.loc[data["split"] == "test"].shape[0] > 1500


def test_sequence_classification_task(run):
    data = pd.read_csv(run / "results/tasks/oct4_vs_mafk/data.tsv", sep="\t")
    test = data[data["split"] == "test"]
    assert len(test) == 200
    assert set(test["label"]) == {"oct4", "mafk"}
    summary = pd.read_csv(run / "results/tasks/oct4_vs_mafk/summary.tsv", sep="\t")
    assert {"train", "validation", "test"} <= set(summary["split"])


MODELS = {
    "gpt_nucleotide": "gpt",
    "gpt_codon": "gpt",
    "mlm_kmer6": "mlm",
    "mlm_bpe": "mlm",
}


@pytest.mark.parametrize(("model", "objective"), MODELS.items())
def test_pretrained_models_load_offline(run, model, objective, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = run / f"results/models/{model}"
    auto = AutoModelForCausalLM if objective == "gpt" else AutoModelForMaskedLM
    lm = auto.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    assert lm.config.vocab_size >= len(tok)
    ids = tok("ATGGCTAAAGGTGAAGAACTGTTTACCGGTGTTGTTCCG", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        logits = lm(input_ids=ids).logits
    assert logits.shape[:2] == ids.shape
    assert torch.isfinite(logits).all()
    run_json = json.loads((folder / "run.json").read_text())
    n_params = sum(p.numel() for p in lm.parameters())
    assert run_json["params"]["total"] == n_params


@pytest.mark.parametrize("model", MODELS)
def test_curves_and_test_metrics(run, model):
    folder = run / f"results/models/{model}"
    curves = pd.read_csv(folder / "curves.csv")
    for column in ("step", "tokens_seen", "train_loss", "val_loss", "bits_per_nt", "lr"):
        assert column in curves.columns
    assert curves["step"].max() == 60
    assert curves["tokens_seen"].is_monotonic_increasing
    first, last = curves["train_loss"].dropna().iloc[[0, -1]]
    assert last < first, "training loss did not decrease"
    metrics = json.loads((folder / "metrics.json").read_text())
    for key in ("loss", "perplexity", "bits_per_nt", "accuracy"):
        assert np.isfinite(metrics["model"][key])
        assert np.isfinite(metrics["baseline"][key])
    # bits per nucleotide: a 4-letter alphabet is at most 2 bits/nt for a sane model
    assert 0 < metrics["model"]["bits_per_nt"] < 2.5
