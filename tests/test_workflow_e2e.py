"""The whole workflow on the shared-data test config (tests/config/), run once, as a user
would run it: every stage's outputs are checked against figures known from the data.

All tests here share one run (module fixture); run with `--dist loadfile` under xdist so the
run happens once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from transformers import AutoModelForMaskedLM, AutoTokenizer

from dnalm.core.io import read_fasta
from dnalm.modeling.loader import register_model_types
from dnalm.tokenization.build import load_tokenizer
from dnalm.training.lm_data import load_split
from tests.support.hub_fixtures import CAUSAL_CODE_FILES, CODE_FILES, workflow_externals
from tests.support.result_checks import check_checkpoint_analytics
from tests.support.workflow_runner import deep_merge, fail_message, make_workdir, snakemake

pytestmark = pytest.mark.slow
TOKENIZERS = ["nucleotide", "kmer6", "codon", "bpe"]


def external_model(folder):
    """A plain Hugging Face model folder (BERT + a WordLevel tokenizer, no dnalm files),
    standing in for an external model such as the Nucleotide Transformer."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from tests.support.lm_corpus import VOCAB, save_tokenizer

    save_tokenizer(folder)
    config = BertConfig(
        vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, pad_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(str(folder))
    return folder


YEAST_TASK = "yeast_windows"


def yeast_window_task(path, shared_data):
    """A classification task whose 36 windows of 200 nt lie on yeast chrIV, a pretraining
    genome of the genome and regions corpora, with their coordinates (chrom/start/end, BED
    conventions): 40,037 nt apart (so they fall at every offset of the corpus's 240-nt
    stride), labelled by GC content (upper / lower half); of each class every third window
    is test and two are validation. Written at test time from the shared genome."""
    ((_, chrom, _),) = list(read_fasta(shared_data / "fasta_gff/sacCer3_chrIV.fa.gz"))
    starts = [5_000 + 40_037 * i for i in range(36)]
    seqs = [chrom[s : s + 200].upper() for s in starts]
    gc = np.array([(q.count("G") + q.count("C")) / len(q) for q in seqs])
    label = np.where(gc.argsort().argsort() >= 18, "gc_high", "gc_low")
    rank = pd.Series(label).groupby(label).cumcount().to_numpy()
    split = np.where(rank % 3 == 0, "test", np.where(rank % 9 == 4, "validation", "train"))
    df = pd.DataFrame({"id": [f"yw{i:02d}" for i in range(36)], "sequence": seqs,
                       "label": label, "split": split, "chrom": "chrIV", "start": starts,
                       "end": [s + 200 for s in starts]})  # fmt: skip
    df.to_csv(path, sep="\t", index=False)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared_data):
    """One run of the whole workflow (rule all) on tests/config, plus external models and
    a task placed on a pretraining genome (all made here, not kept in the repository): a plain
    folder named in probe.external, and models.external entries in the Hub's layout (native
    ESM, pinned remote code from a Hugging Face cache tree, a causal one) fine-tuned frozen
    and with LoRA on the species task, probed, scoring variants and generating."""
    base = tmp_path_factory.mktemp("e2e")
    ext = external_model(base / "external_bert")
    externals = workflow_externals(
        base / "hub",
        tasks=["species_fragments"],
        vep_models=VEP_MODELS,
        generate_models=GENERATING,
    )
    table = yeast_window_task(base / f"{YEAST_TASK}.tsv", shared_data)
    workdir = make_workdir(
        base / "work",
        deep_merge(externals["config"], {
            "probe": {"external": {"tiny_bert": {"model": str(ext)}}},
            "tasks": {"sequence_tasks": {YEAST_TASK: {"kind": "classification",
                                                      "table": str(table)}}},
            # what a model knows, of the external ones too: the causal ones complete genes,
            # every one gets the robustness panel
            "gene_completion": {"models": [*CAUSAL, *EXTERNAL_CAUSAL]},
            "robustness": {"models": [*PANEL, *EXTERNAL]},
        }),
    )  # fmt: skip
    (workdir / "hub_env.json").write_text(json.dumps(externals["env"]))
    # about 9 minutes on two idle cores; the limit leaves room for a loaded machine
    proc = snakemake(workdir, timeout=3000, env=externals["env"])
    assert proc.returncode == 0, fail_message(proc)
    return workdir


def hub_env(run) -> dict:
    """The Hugging Face cache and offline switch the run's external entries resolve with."""
    return json.loads((run / "hub_env.json").read_text())


def test_qc_figures_of_shared_genomes(run, shared_data):
    summary = pd.read_csv(run / "results/cds/qc_summary.tsv", sep="\t").set_index("sample")
    assert len(summary) == 15
    # the same plasmid as a bare genome FASTA, genes called by pyrodigal (meta mode)
    assert summary.loc["ypestis_fna", "kept"] == 9
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
    # the shared-data config splits by MMseqs2 cluster: a cluster never straddles splits,
    # so no test CDS has a train CDS at >= 80% identity over >= 80% of both
    assert table.groupby("cluster")["split"].nunique().max() == 1
    leakage = pd.read_csv(run / "results/splits/leakage_summary.tsv", sep="\t")
    overall = leakage.set_index("sample").loc["all"]
    assert overall["n_test"] == (table["split"] == "test").sum()
    assert overall["frac_ge_80_covered"] == 0
    assert (run / "results/splits/clusters.tsv").is_file()
    all_train = set(table.loc[table["split"] == "train", "seq_sha1"])
    all_test = set(table.loc[table["split"] == "test", "seq_sha1"])
    assert all_test
    assert not all_train & all_test


def test_logs_provenance_and_rerun(run):
    samples = pd.read_csv(run / "config/samples.tsv", sep="\t")["sample"]
    with_cds = set(pd.read_csv(run / "results/cds/qc_summary.tsv", sep="\t")["sample"])
    assert set(samples) - with_cds == {"mouse_oct4_peaks"}  # a genome FASTA, no gene calls
    for sample in samples:
        assert (run / f"results/logs/cds/{sample}.log").is_file() == (sample in with_cds)
        prov = json.loads((run / f"resources/genomes/{sample}/provenance.json").read_text())
        assert len(prov["files"]["primary"]["md5"]) == 32
        # local sources are used in place: nothing copied into resources/
        assert not (run / f"resources/genomes/{sample}/primary").exists()
    assert (run / "results/benchmarks/cds/spyogenes.tsv").is_file()
    # logs are for reading: no progress-bar redraws (ours are off without a terminal, the
    # Hugging Face ones are switched off by dnalm.core.smk.run_script)
    logs = sorted((run / "results/logs").rglob("*.log"))
    assert len(logs) > 50
    for log in logs:
        text = log.read_text(encoding="utf-8", errors="replace")
        assert "\r" not in text, f"{log} holds progress-bar redraws"
        assert "Loading weights" not in text, log
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
    folder = run / f"results/corpus/cds/{tok}"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["tokenizer"] == tok
    assert meta["block_size"] == 128
    assert meta["tokenizer_hash"] == load_tokenizer(folder / "tokenizer").hash
    assignment = pd.read_csv(run / "results/splits/assignment.tsv", sep="\t")
    pretrained = assignment[~assignment["sample"].isin(_not_pretrain(run))]
    for split in ("train", "validation", "test"):
        tok_shards, pos_shards = load_split(folder, split)  # the shards, memory-mapped
        assert len(meta[split]["shards"]) >= 1
        tokens, positions = np.asarray(tok_shards), np.asarray(pos_shards)
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
    "mlm_bpe_seed1": "mlm",  # mlm_bpe's second pretraining seed
    "gpt_genome": "gpt",  # on the genome corpus (yeast chrIV + S. pyogenes windows)
    "gpt_regions": "gpt",  # on the regions corpus (yeast promoters + intergenic)
    "mlm_softmask": "mlm",  # soft-masked targets weigh 0.1 (lowercase_loss_weight)
    "esm_kmer6": "mlm",  # the esm architecture (EsmForMaskedLM, NT-v1's class)
}
#: the architecture of each model that does not take its objective's default (opt, bert)
ARCHS = {"esm_kmer6": "esm"}
# the further architectures and losses run in the embedded demo: tests/test_readme.py


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


def objective_of(model: str) -> bool:
    """True for the causal models of the test config."""
    return MODELS[model] == "gpt"


@pytest.mark.parametrize("model", MODELS)
def test_curves_and_test_metrics(run, model):
    folder = run / f"results/models/{model}"
    curves = pd.read_csv(folder / "curves.csv")
    for column in ("step", "tokens_seen", "train_loss", "val_loss", "bits_per_nt", "lr"):
        assert column in curves.columns
    assert curves["step"].max() == 60
    assert curves["tokens_seen"].is_monotonic_increasing
    first, last = curves["train_loss"].dropna().iloc[[0, -1]]
    assert last < first, "training loss (the loss being optimised) did not decrease"
    metrics = json.loads((folder / "metrics.json").read_text())
    for key in ("loss", "perplexity", "bits_per_nt", "accuracy"):
        assert np.isfinite(metrics["model"][key])
        assert np.isfinite(metrics["baseline"][key])
    run_json = json.loads((folder / "run.json").read_text())
    default = "opt" if objective_of(model) else "bert"
    assert run_json["architecture"] == ARCHS.get(model, default)
    if model == "mlm_softmask":
        # lower-case targets weigh 0.1 in training, so the model predicts them poorly: the
        # weighted bits/nt (its objective) are those of a sane model, the plain ones higher
        assert 0 < metrics["model"]["bits_per_nt_weighted"] < 2.5
        assert metrics["model"]["bits_per_nt"] > metrics["model"]["bits_per_nt_weighted"]
    else:
        # bits per nucleotide: a 4-letter alphabet is at most 2 bits/nt for a sane model
        assert 0 < metrics["model"]["bits_per_nt"] < 2.5
    # every baseline row scores the same targets; the reported bar is the strongest one
    names = [b["name"] for b in metrics["baselines"]]
    assert {b["n_targets"] for b in metrics["baselines"]} == {metrics["model"]["n_targets"]}
    assert metrics["baseline"]["loss"] == min(b["loss"] for b in metrics["baselines"])
    table = pd.read_csv(folder / "metrics.tsv", sep="\t")
    assert list(table["model"]) == ["model", *names]
    if "codon" in model:
        assert names == ["codon_usage_unigram", "codon_bigram", "codon_trigram"]
        # on ~1 M training codons the bigram already beats codon usage
        assert metrics["baselines"][1]["loss"] < metrics["baselines"][0]["loss"]


def test_lowercase_loss_weight_on_the_soft_masked_genome(run):
    """mlm_softmask: a case-keeping tokenizer on a soft-masked corpus (the mouse Oct4 peaks
    read as a genome) with lowercase_loss_weight 0.1. The corpus flags lower-case tokens, the
    run records the weight, and the test loss's weight sum shows it applied: the scored
    targets weigh n_upper + 0.1 n_lower, so the lower-case share of the targets comes out of
    it."""
    corpus = run / "results/corpus/peaks_softmasked/nucleotide_case"
    meta = json.loads((corpus / "meta.json").read_text())
    for split in ("train", "test"):
        assert meta[split]["has_lowercase"], split
        assert 0 < meta[split]["lowercase_token_fraction"] < 1, split
    folder = run / "results/models/mlm_softmask"
    assert json.loads((folder / "run.json").read_text())["train"]["lowercase_loss_weight"] == 0.1
    metrics = json.loads((folder / "metrics.json").read_text())
    assert (metrics["lowercase_loss_weight"], metrics["lowercase_flags"]) == (0.1, True)
    model = metrics["model"]
    n_lower = (model["n_targets"] - model["weight_sum"]) / (1 - 0.1)
    share = n_lower / model["n_targets"]
    assert share > 0
    # the masked targets are a seeded 15% of the tokens: their lower-case share is the split's
    assert share == pytest.approx(meta["test"]["lowercase_token_fraction"], rel=0.25)
    assert model["loss_weighted"] != model["loss"]
    curves = pd.read_csv(folder / "curves.csv")
    assert curves["val_loss_weighted"].notna().any()


def test_genome_and_region_corpora(run):
    """Window corpora: 120-nt windows in 20 kb blocks, the models trained on them, and the
    leakage tables (no pretraining contig is named chr22, and the table says so)."""
    for corpus, samples in (("genome", {"yeast_chrIV", "spyogenes"}), ("regions", {"yeast_chrIV"})):
        summary = pd.read_csv(run / f"results/windows/{corpus}/summary.tsv", sep="\t")
        assert set(summary["sample"]) == samples
        meta = json.loads((run / f"results/corpus/{corpus}/nucleotide/meta.json").read_text())
        for split in ("train", "validation", "test"):
            n = summary.loc[summary["split"] == split, "n_windows"].sum()
            assert n > 0
            assert meta[split]["n_input_sequences"] == n
        every = pd.read_csv(run / f"results/windows/{corpus}/leakage.tsv", sep="\t")
        # the task placed on yeast chrIV: test_task_on_a_pretraining_genome_is_excluded
        assert set(every["source"]) == {"task:tf_binding", f"task:{YEAST_TASK}"}
        leakage = every[every["source"] == "task:tf_binding"]
        assert list(leakage["split"]) == ["train", "validation", "test"]
        assert (leakage["n_windows"] == 2332).all()  # the task's test windows
        assert (leakage["overlapping"] == 0).all()
        assert leakage["contig_match"].str.contains("no pretraining contig is named chr22").all()
        names = [
            h for h, _, _ in read_fasta(run / f"results/windows/{corpus}/yeast_chrIV/test.fa.gz")
        ]
        assert names
        assert all(n.startswith("chrIV:") and n.endswith("(+)") for n in names)
    genome = pd.read_csv(run / "results/windows/genome/summary.tsv", sep="\t")
    cut = genome.groupby("sample")[["n_windows", "n_excluded"]].sum()
    assert cut.sum(axis=1).to_dict() == {"spyogenes": 7688, "yeast_chrIV": 6358}  # windows cut
    assert cut["n_excluded"].to_dict() == {"spyogenes": 0, "yeast_chrIV": 38}  # task windows


def _overlaps(window, interval) -> bool:
    return window[0] < interval[1] and interval[0] < window[1]  # half-open


def test_task_on_a_pretraining_genome_is_excluded(run, shared_data):
    """The task yeast_windows lies on yeast chrIV, which the genome corpus pretrains on:
    exactly the corpus's training windows that overlap one of its windows (any split) are
    left out, and the leakage table counts its test windows that overlap each split. Both
    recomputed here from the window grid (20 kb blocks, a 120-nt window every 240 nt), the
    blocks' splits as the written windows show them, and the task's coordinates."""
    task = pd.read_csv(run / f"results/tasks/{YEAST_TASK}/data.tsv", sep="\t")
    assert len(task) == 36
    intervals = list(zip(task["start"], task["end"], strict=True))
    test = list(zip(*(task.loc[task["split"] == "test", c] for c in ("start", "end")), strict=True))
    assert len(test) == 12
    ((_, chrom, _),) = list(read_fasta(shared_data / "fasta_gff/sacCer3_chrIV.fa.gz"))
    folder = run / "results/windows/genome/yeast_chrIV"
    written = {}
    for split in ("train", "validation", "test"):
        written[split] = set()
        for header, seq, _ in read_fasta(folder / f"{split}.fa.gz"):
            start, end = map(int, re.fullmatch(r"chrIV:(\d+)-(\d+)\(\+\)", header).groups())
            assert seq == chrom[start:end]  # case kept
            written[split].add((start, end))
    block_split = {s // 20_000: p for p, windows in written.items() for s, _ in windows}
    assert len(block_split) == -(-len(chrom) // 20_000)  # every block has windows of one split
    grid = {p: set() for p in written}
    for block, split in block_split.items():
        end = min(len(chrom), (block + 1) * 20_000)
        grid[split] |= {(s, s + 120) for s in range(block * 20_000, end - 120 + 1, 240)}
    excluded = {w for w in grid["train"] if any(_overlaps(w, iv) for iv in intervals)}
    # 29 of the 36 task windows lie in training blocks, 9 of them across two corpus windows
    assert len(excluded) == 38
    assert written["train"] == grid["train"] - excluded
    assert (written["validation"], written["test"]) == (grid["validation"], grid["test"])
    summary = pd.read_csv(folder / "windows.tsv", sep="\t").set_index("split")
    assert summary.loc["train", "n_excluded"] == len(excluded)
    assert (summary["n_dropped_n"] == 0).all()

    def n_overlapping(windows):
        return sum(any(_overlaps(w, iv) for w in windows) for iv in test)

    every = pd.read_csv(run / "results/windows/genome/leakage.tsv", sep="\t")
    leak = every[every["source"] == f"task:{YEAST_TASK}"].set_index("split")
    assert list(leak.index) == ["train", "validation", "test"]
    assert (leak["n_windows"] == 12).all()
    assert (leak["n_on_pretraining_contigs"] == 12).all()
    before = leak.loc["train", "overlapping_before_exclusion"]
    assert before == n_overlapping(grid["train"]) > 0
    assert leak.loc["train", "overlapping"] == 0
    for split in ("validation", "test"):
        assert leak.loc[split, "overlapping"] == n_overlapping(grid[split])
    assert leak["excluded_from_train"].all()
    assert leak["contig_match"].str.contains("on pretraining contig(s) chrIV", regex=False).all()
    # the regions corpus (yeast promoters and intergenic) leaves them out of training too
    for header, _, _ in read_fasta(run / "results/windows/regions/yeast_chrIV/train.fa.gz"):
        start, end = map(int, re.fullmatch(r"chrIV:(\d+)-(\d+)\(\+\)", header).groups())
        assert not any(_overlaps((start, end), iv) for iv in intervals), header


# ----------------------------------------------------------------------------- fine-tuning

FINETUNE_RUNS = {
    # the random control, the codon model and the partial run on these two: the demo's
    "tf_binding": {"gpt_nucleotide_frozen", "onehot_cnn"},
    "oct4_vs_mafk": {"gpt_nucleotide_frozen", "onehot_cnn", "kmer4"},
    "species_fragments": {
        "gpt_nucleotide_frozen", "gpt_nucleotide_random", "gpt_codon_frozen",
        "mlm_kmer6_partial", "mlm_bpe_lora", "onehot_cnn", "kmer4", "gpt_nucleotide_full",
        "esm_kmer6_lora",
        "ext_nt_frozen", "ext_v2_lora",  # models.external entries (tests/support/hub_fixtures)
    },
}  # fmt: skip
# the TSTR task and the task placed on yeast chrIV: the runs without a task list, baselines
NEW_TASK_RUNS = {"gpt_nucleotide_frozen", "onehot_cnn", "kmer4"}


def _assert_folded(row, metric: str, seeds: str = "0;1") -> None:
    """A comparison row folding seed replicates: the mean, sd (ddof 1) and per-seed values."""
    assert (row["n_seeds"], row["seeds"]) == (2, seeds)
    per_seed = [float(v) for v in row[f"{metric}_per_seed"].split(";")]
    assert len(per_seed) == 2
    assert np.isclose(np.mean(per_seed), row[metric], atol=1e-5)
    assert np.isclose(np.std(per_seed, ddof=1), row[f"{metric}_sd"], atol=1e-5)


@pytest.mark.parametrize("task", FINETUNE_RUNS)
def test_finetune_comparison_tables(run, task):
    table = pd.read_csv(run / f"results/finetune/{task}/comparison.tsv", sep="\t")
    assert set(table["run"]) == FINETUNE_RUNS[task]
    assert (table["n_test"] > 0).all()
    assert (table["trainable_params"] <= table["total_params"]).all()
    rows = table.set_index("run")
    main = "accuracy" if "accuracy" in table else "pearson_r"
    if task == "species_fragments":
        # the one-hot CNN's two seeds (baselines.onehot_cnn.seeds) folded into one row
        _assert_folded(rows.loc["onehot_cnn"], main)
        assert rows.loc["onehot_cnn", "replicates"] == "onehot_cnn;onehot_cnn_seed1"
        # two seeds of one run folded into one row: mean, sd and the per-seed values; the
        # seed-1 replicate fine-tunes the seed-1 pretraining replicate of mlm_bpe
        _assert_folded(rows.loc["mlm_bpe_lora"], main)
        base = {}
        for name in ("mlm_bpe_lora", "mlm_bpe_lora_seed1"):
            info = run / f"results/finetune/{task}/{name}/model/finetune.json"
            base[name] = json.loads(info.read_text())["base_model"]
        assert base == {"mlm_bpe_lora": "results/models/mlm_bpe",
                        "mlm_bpe_lora_seed1": "results/models/mlm_bpe_seed1"}  # fmt: skip
        weights = [(run / b / "model.safetensors").read_bytes() for b in base.values()]
        assert weights[0] != weights[1]
        # regime full: every weight of backbone and head trains
        full = rows.loc["gpt_nucleotide_full"]
        assert (full["regime"], full["random_init"]) == ("full", False)
        assert full["trainable_params"] == full["total_params"]
        assert full["trainable_params"] > rows.loc["gpt_nucleotide_frozen", "trainable_params"]
        assert rows.loc["gpt_nucleotide_random", "random_init"]
        # frozen: only the head trains (the same head with or without pretrained weights)
        frozen, rand = rows.loc["gpt_nucleotide_frozen"], rows.loc["gpt_nucleotide_random"]
        assert frozen["trainable_params"] < frozen["total_params"]
        assert frozen["trainable_params"] == rand["trainable_params"]
    else:  # baselines.onehot_cnn.seed_tasks: the second seed on the species task only
        assert (rows.loc["onehot_cnn", "n_seeds"], rows.loc["onehot_cnn", "replicates"]) == (
            1,
            "onehot_cnn",
        )
        assert not (run / f"results/finetune/{task}/onehot_cnn_seed1").exists()
    assert rows.loc["gpt_nucleotide_frozen", "regime"] == "frozen"
    for name in FINETUNE_RUNS[task]:
        folder = run / f"results/finetune/{task}/{name}"
        assert (folder / "metrics.json").is_file()
        assert (run / f"results/logs/finetune/{task}/{name}.log").is_file()
        if not name.startswith("kmer"):
            curves = pd.read_csv(folder / "curves.csv")
            assert len(curves) >= 1
    # bootstrap CIs: every row's interval holds its metric; every row but the best
    # baseline has a paired CI of its difference to it, which holds the difference
    assert set(table["split"]) == {"test"}
    assert table["metric"].str.startswith(main).all()
    assert (table["ci95_low"] <= table[main] + 1e-9).all()
    assert (table[main] <= table["ci95_high"] + 1e-9).all()
    best = table["best_baseline"].iloc[0]
    assert best in {"onehot_cnn", "kmer4"}
    others = table[table["run"] != best]
    best_value = rows.loc[best, main]
    assert np.allclose(others["delta_vs_best_baseline"], others[main] - best_value, atol=1e-6)
    assert (others["delta_ci95_low"] <= others["delta_vs_best_baseline"] + 1e-9).all()
    assert (others["delta_vs_best_baseline"] <= others["delta_ci95_high"] + 1e-9).all()
    assert np.isnan(rows.loc[best, "delta_vs_best_baseline"])
    for fig in ("performance", "time", "curves"):
        assert (run / f"results/figures/finetune/{task}/{fig}.png").stat().st_size > 5_000
        assert (run / f"results/figures/finetune/{task}/{fig}.svg").is_file()


def test_tf_binding_cnn_reaches_dnallm_level_and_tracks(run):
    rows = pd.read_csv(run / "results/finetune/tf_binding/comparison.tsv", sep="\t")
    cnn = rows.set_index("run").loc["onehot_cnn"]
    assert cnn["total_params"] == 186_497  # DNA-LLM's "about 186k"
    # DNA-LLM: 0.98 with full training; in 3 epochs seed 0 reaches 0.9 (seed 1 only 0.78)
    assert cnn["pearson_r"] >= 0.9
    m = json.loads((run / "results/finetune/tf_binding/onehot_cnn/metrics.json").read_text())
    assert m["n_test"] == 2332
    assert m["metrics"]["n"] == 2332 * 300  # every test base scored
    assert m["metrics"]["auprc_bound"] > 5 * m["metrics"]["bound_fraction"]
    with np.load(run / "results/finetune/tf_binding/gpt_nucleotide_frozen/predictions.npz") as z:
        assert z["predictions"].shape == z["targets"].shape == (2332, 300)
        assert z["scored"].all()  # one token per base: every base scored
    assert (run / "results/figures/finetune/tf_binding/tracks.png").stat().st_size > 10_000


def test_oct4_mafk_every_model_beats_chance(run):
    rows = pd.read_csv(run / "results/finetune/oct4_vs_mafk/comparison.tsv", sep="\t")
    assert (rows["n_test"] == 200).all()
    # chance is 0.5 on the provided balanced test split; k-mer baseline is in the table
    assert (rows["accuracy"] > rows["chance_majority"]).all(), rows[["run", "accuracy"]]
    assert "kmer4" in set(rows["run"])


def test_tstr_task_trains_on_generated_and_tests_on_real(run):
    """tstr_genome (TSTR): the train side is gpt_genome's prompted samples, each labelled
    with the species of its prompt, the test side the genome corpus's real validation
    windows of both species; task.json records the generated side and its role; the
    comparison table has a row per run."""
    folder = run / "results/tasks/tstr_genome"
    params = json.loads((folder / "task.json").read_text())["params"]
    assert params["generated"] == {"model": "gpt_genome", "set": "samples", "role": "train",
                                   "keep_prompt": False, "prompt_nt": 30}  # fmt: skip
    data = pd.read_csv(folder / "data.tsv", sep="\t")
    generated = pd.read_csv(folder / "generated.tsv", sep="\t")
    species = {"Saccharomyces cerevisiae", "Streptococcus pyogenes"}
    assert len(generated) == 8
    assert set(generated["label"]) == species
    trained = data[data["split"] != "test"]
    assert sorted(trained["sequence"]) == sorted(generated["sequence"])
    real, names = set(), set()
    for sample in ("yeast_chrIV", "spyogenes"):
        path = run / f"results/windows/genome/{sample}/validation.fa.gz"
        for name, seq, _ in read_fasta(path):
            real.add(seq.upper())
            names.add(name)
    tested = data[data["split"] == "test"]
    assert len(tested) == len(names)
    assert set(tested["label"]) == species
    assert set(tested["sequence"]) == real
    # the prompts are test windows of the corpus: none of them is a real test item here
    assert not set(generated["prompt_id"]) & names
    table = pd.read_csv(run / "results/finetune/tstr_genome/comparison.tsv", sep="\t")
    assert set(table["run"]) == NEW_TASK_RUNS
    assert (table["n_test"] == len(names)).all()
    assert (table["n_train"] <= 8).all()


def test_task_placed_on_a_genome_is_fine_tuned(run):
    table = pd.read_csv(run / f"results/finetune/{YEAST_TASK}/comparison.tsv", sep="\t")
    assert set(table["run"]) == NEW_TASK_RUNS
    assert (table["n_test"] == 12).all()


def test_finetuned_backbone_loads_and_differs(run):
    import torch
    from transformers import AutoModelForMaskedLM

    before = AutoModelForMaskedLM.from_pretrained(run / "results/models/mlm_kmer6")
    after = AutoModelForMaskedLM.from_pretrained(
        run / "results/finetune/species_fragments/mlm_kmer6_partial/model"
    )
    b, a = before.state_dict(), after.state_dict()
    frozen = "bert.encoder.layer.0.attention.self.query.weight"
    trained = "bert.encoder.layer.1.attention.self.query.weight"
    assert torch.equal(b[frozen], a[frozen])  # partial: first block frozen
    assert not torch.equal(b[trained], a[trained])
    # LoRA adapters were merged into plain weights
    lora = AutoModelForMaskedLM.from_pretrained(
        run / "results/finetune/species_fragments/mlm_bpe_lora/model"
    )
    assert not any("lora" in k for k in lora.state_dict())
    # ESM with LoRA on its registry targets (query, value), merged: those weights moved, the
    # key projection and the token embeddings did not
    b = AutoModelForMaskedLM.from_pretrained(run / "results/models/esm_kmer6").state_dict()
    a = AutoModelForMaskedLM.from_pretrained(
        run / "results/finetune/species_fragments/esm_kmer6_lora/model"
    ).state_dict()
    assert not any("lora" in k for k in a)
    block = "esm.encoder.layer.0.attention.self"
    for key in (f"{block}.query.weight", f"{block}.value.weight"):
        assert not torch.equal(b[key], a[key]), key
    for key in (f"{block}.key.weight", "esm.embeddings.word_embeddings.weight"):
        assert torch.equal(b[key], a[key]), key
    # regime full: the token embeddings and the first block train too
    from transformers import AutoModelForCausalLM

    b = AutoModelForCausalLM.from_pretrained(run / "results/models/gpt_nucleotide").state_dict()
    a = AutoModelForCausalLM.from_pretrained(
        run / "results/finetune/species_fragments/gpt_nucleotide_full/model"
    ).state_dict()
    for key in ("model.decoder.embed_tokens.weight",
                "model.decoder.layers.0.self_attn.q_proj.weight"):  # fmt: skip
        assert not torch.equal(b[key], a[key]), key


# ----------------------------------------------------------------------------- probes


#: the rows (model, regime) of the probe table
PROBE_ROWS = {
    ("gpt_nucleotide", "pretrained"),
    ("mlm_kmer6", "pretrained"),
    ("esm_kmer6", "pretrained"),
    ("gpt_nucleotide", "random-init"),
    ("mlm_kmer6_partial", "fine-tuned"),
    ("4-mer frequencies", "kmer-baseline"),
    ("tiny_bert", "external"),  # a plain Hugging Face folder named in probe.external
    ("ext_nt", "external"),  # models.external entries (tests/support/hub_fixtures)
    ("ext_v2", "external"),
}


def test_probe_table_and_umaps(run):
    every_kind = pd.read_csv(run / "results/probe/probe_table.tsv", sep="\t")
    table = every_kind[every_kind["probe_kind"] == "logreg"]
    pairs = set(zip(table["model"], table["regime"], strict=True))
    assert pairs == PROBE_ROWS
    assert (table["chance"] == 0.25).all()  # four species
    kmer = table.set_index("regime").loc["kmer-baseline", "accuracy"]
    assert kmer > 0.4  # species differ in composition: k-mers carry it
    # paired CIs against the k-mer baseline: every embedded model scored on the same fragments
    assert set(table["best_baseline"]) == {"4-mer frequencies"}
    others = table[table["regime"] != "kmer-baseline"]
    assert np.allclose(others["delta_vs_best_baseline"], others["accuracy"] - kmer, atol=1e-3)
    assert (others["delta_ci95_low"] <= others["delta_ci95_high"]).all()
    assert (table["ci95_low"] <= table["accuracy"] + 1e-4).all()
    emb = np.load(run / "results/probe/embeddings/pretrained/gpt_nucleotide.npz")
    assert emb["embeddings"].shape == (len(emb["ids"]), 64)
    coords = pd.read_csv(run / "results/probe/umap/pretrained/mlm_kmer6.tsv", sep="\t")
    assert len(coords) == 600  # probe.umap.max_points of the test config
    assert coords["species"].nunique() == 4
    for fig in (
        "probe_accuracy",
        "umap/pretrained/gpt_nucleotide",
        "umap/random-init/gpt_nucleotide",
        "umap/fine-tuned/mlm_kmer6_partial",
        "umap_before_after/mlm_kmer6_partial",
        "confusion/pretrained/mlm_kmer6",
    ):
        assert (run / f"results/figures/probe/{fig}.png").stat().st_size > 5_000
        assert (run / f"results/figures/probe/{fig}.svg").is_file()
    for fig in ("curves", "time"):
        assert (run / f"results/figures/pretrain/{fig}.png").stat().st_size > 5_000


def test_probe_and_head_calibration(run):
    """An ECE for every probe row; reliability diagrams for the probes and for the
    classification tasks' fine-tuned heads (the second probe kind: the demo's,
    tests/test_readme.py)."""
    table = pd.read_csv(run / "results/probe/probe_table.tsv", sep="\t")
    assert set(table["probe_kind"]) == {"logreg"}
    assert table["ece"].between(0, 1).all()
    assert (run / "results/figures/probe/calibration.png").stat().st_size > 5_000
    for task in ("species_fragments", "oct4_vs_mafk"):
        comp = pd.read_csv(run / f"results/finetune/{task}/comparison.tsv", sep="\t")
        heads = comp[comp["run"].isin(["gpt_nucleotide_frozen", "onehot_cnn"])]
        assert len(heads) == 2, task
        assert heads["ece"].between(0, 1).all(), task
        assert (run / f"results/figures/finetune/{task}/calibration.png").stat().st_size > 5_000


def test_attribution_auroc_and_motifs(run):
    """interpret (tests/config): the one-hot CNN, which reaches r >= 0.9 on tf_binding, puts
    its attribution on the bound bases; every run has a row per method; the Oct4/Mafk
    motif table compares what the attributions found with OCT4 and MAFK."""
    tf = pd.read_csv(run / "results/interpret/tf_binding/summary.tsv", sep="\t")
    assert set(tf["run"]) == {"onehot_cnn"}  # an LM head's attributions: the demo's
    assert set(tf["method"]) == {"ism", "grad_x_input", "ig"}
    assert tf["auroc_pooled"].between(0, 1).all()
    assert (tf["n_windows"] == 6).all()
    cnn = tf[tf["run"] == "onehot_cnn"].set_index("method")
    assert cnn.loc["ism", "auroc_pooled"] > 0.7
    npz = np.load(run / "results/interpret/tf_binding/onehot_cnn/attributions.npz")
    assert npz["ism"].shape == (6, 300)
    motifs = pd.read_csv(run / "results/interpret/oct4_vs_mafk/summary.tsv", sep="\t")
    assert set(motifs["run"]) == {"onehot_cnn"}
    assert set(motifs["class"]) == {"oct4", "mafk"}
    found = motifs[motifs["motif_rank"] > 0]
    assert found["similarity"].between(-1, 1).all()
    assert set(found["known"]) <= {"OCT4", "MAFK"}
    for task in ("tf_binding", "oct4_vs_mafk"):
        assert (run / f"results/figures/interpret/{task}/summary.png").stat().st_size > 5_000
    track = run / "results/figures/interpret/tf_binding/onehot_cnn/tracks.png"
    assert track.stat().st_size > 5_000


# ----------------------------------------------------------------------------- generation

CAUSAL = [m for m, objective in MODELS.items() if objective == "gpt"]
# the causal models that generate here: one per corpus kind but the regions corpus (CDS,
# codon tokens, genome windows; gpt_genome's samples are the TSTR task's train side)
GENERATING = ["gpt_nucleotide", "gpt_codon", "gpt_genome"]
# ours that score variants here (tests/config; mlm_bpe's and the other architectures': the demo)
VEP_MODELS = ["gpt_nucleotide", "gpt_codon", "mlm_kmer6"]


def test_generation_from_every_causal_model(run):
    """8 prefix continuations + 4 free samples per causal model (tests/config), the Markov
    baseline and the natural set of the model's own corpus, and one metric table each."""
    from dnalm.generation.run import read_set

    summary = pd.read_csv(run / "results/generate/summary.tsv", sep="\t")
    # ours and the causal models.external entries, native and with pinned remote code (their
    # own checks: test_external_models_...)
    assert sorted(summary["model"].unique()) == sorted([*GENERATING, "ext_gpt", "ext_rgpt"])
    for model in GENERATING:
        folder = run / "results/generate" / model
        sets = {n: read_set(folder / f"{n}.fa.gz") for n in ("samples", "markov", "natural")}
        reference = [r for r in sets["natural"] if r.kind == "natural"]
        controls = len(sets["natural"]) - len(reference)
        assert [len(sets["samples"]), len(sets["markov"]), len(reference)] == [12] * 3, model
        assert 0 <= controls <= 12, model  # a second natural draw, fewer on a short split
        assert sum(r.kind == "prefix" for r in sets["samples"]) == 8
        cap = 30 + 90  # prefix + max_new_nt
        assert all(len(r.seq) <= cap for v in sets.values() for r in v)
        metrics = pd.read_csv(folder / "metrics.tsv", sep="\t").set_index("row")
        assert {model, "markov"} <= set(metrics.index)
        assert (metrics["reference_model"] == "gpt_nucleotide").all()
        assert metrics[[f"jsd_k{k}" for k in range(1, 7)]].stack().between(0, 1).all()
        assert metrics["frechet"].notna().all()
        cds = model not in ("gpt_genome", "gpt_regions")  # on CDS corpora
        assert metrics["n"].nunique() == 1  # every row: sets of one size
        if cds:  # judged among the sequences that ended before the cap; n/a if none did
            judged = metrics["capped"] < 1
            assert metrics.loc[judged, "valid_orf"].notna().all()
            assert metrics.loc[~judged, "valid_orf"].isna().all()
        else:
            assert metrics["valid_orf"].isna().all()
        table = pd.read_csv(folder / "samples.tsv", sep="\t")
        assert len(table) == 36 + controls
    # the codon model's prefixes and the codon trigram's samples are whole codons
    codon = read_set(run / "results/generate/gpt_codon/markov.fa.gz")
    assert all(len(r.seq) % 3 == 0 for r in codon)
    assert (run / "results/figures/generate/summary.png").stat().st_size > 5_000


# ----------------------------------------------------------------------------- variant effects


def test_vep_aurocs_of_simulated_coding_snvs(run):
    """vep (tests/config): 100 synonymous, missense and nonsense SNVs in S. pyogenes' held-out
    CDS, scored by three of our models, four external ones and two count baselines; the
    codon-usage baseline separates nonsense from synonymous (a premature stop codon is rare
    inside a CDS)."""
    folder = run / "results/vep/spyogenes"
    sim = pd.read_csv(folder / "variants.tsv", sep="\t")
    assert sim["class"].value_counts().to_dict() == {
        "synonymous": 100,
        "missense": 100,
        "nonsense": 100,
    }
    # ours, and the four models.external entries (tests/support/hub_fixtures)
    models = [*VEP_MODELS, "ext_nt", "ext_v2", "ext_gpt", "ext_rgpt"]
    for model in models:
        scores = pd.read_csv(folder / f"{model}.tsv", sep="\t")
        assert sorted(scores["id"]) == sorted(sim["id"]), model
        assert scores["score"].notna().all(), model
        assert "DNALM_LLR=" in (folder / f"{model}.vcf").read_text()
    table = pd.read_csv(folder / "auroc.tsv", sep="\t")
    assert set(table["scorer"]) == {*models, "codon_usage", "markov"}
    assert set(table["comparison"]) == {"nonsense_vs_synonymous", "missense_vs_synonymous"}
    assert table["auroc"].between(0, 1).all()
    rows = table.set_index(["scorer", "comparison"])["auroc"]
    assert rows["codon_usage", "nonsense_vs_synonymous"] > 0.9
    assert (run / "results/figures/vep/spyogenes_auroc.png").stat().st_size > 5_000


# ----------------------------------------------------------------------------- what a model knows

#: the models of the robustness panel: every pretraining model but the seed replicate, and
#: the models.external entries (tests/support/hub_fixtures): masked, then causal
PANEL = [m for m in MODELS if m != "mlm_bpe_seed1"]
EXTERNAL_CAUSAL = ["ext_gpt", "ext_rgpt"]
EXTERNAL = ["ext_nt", "ext_v2", *EXTERNAL_CAUSAL]
#: the layer-probed models: every embedded one of the probe table but the random-init control
LAYER_PROBED = {row for row in PROBE_ROWS if row[1] not in ("random-init", "kmer-baseline")}


def test_gene_completion_of_every_causal_model(run):
    """gene_completion: every causal model (the CDS ones, the genome and regions ones, the two
    external ones) completes 4 held-out S. pyogenes genes from 10/25/50% prompts, beside the
    Markov, codon-trigram and nearest-training-gene baselines, each with intervals over genes."""
    summary = pd.read_csv(run / "results/gene_completion/summary.tsv", sep="\t")
    sources = [*CAUSAL, *EXTERNAL_CAUSAL, "markov", "codon_trigram", "nearest_gene"]
    overall = summary[summary["sample"] == "all"]
    assert sorted(set(overall["source"])) == sorted(sources)
    assert sorted(set(overall["prompt_fraction"])) == [0.1, 0.25, 0.5]
    assert len(overall) == len(sources) * 3
    assert (overall["n_genes"] == 4).all()
    models = overall[overall["kind"] == "model"]
    assert set(models["source"]) == {*CAUSAL, *EXTERNAL_CAUSAL}
    assert (models["n_continuations"] == 4 * 2).all()  # 4 genes x 2 continuations
    # the 31-mer share is measured against our training CDS: not applicable (NA) to the
    # external models, whose training data the run does not hold
    external = overall["source"].isin(EXTERNAL_CAUSAL)
    assert overall.loc[external, "kmer31_share"].isna().all()
    for column in ("recovery", "stop_plausible", "frame_shift", "kmer31_share", "memorised"):
        rows = overall[~external] if column == "kmer31_share" else overall
        assert rows[column].between(0, 1).all(), column
        low, high = rows[f"{column}_ci95_low"], rows[f"{column}_ci95_high"]
        assert ((low <= rows[column] + 1e-9) & (rows[column] <= high + 1e-9)).all(), column
    # the nearest-gene baseline continues with a training gene: all its 31-mers are training's
    nearest = overall[overall["source"] == "nearest_gene"]
    assert (nearest["kmer31_share"] == 1).all()
    assert (run / "results/figures/gene_completion/summary.png").stat().st_size > 5_000


def test_robustness_panel_of_every_model(run):
    """robustness: every pretraining and external model's log-likelihood of 8 test windows
    against their reverse complement, shifts of 1-3 nt and one deletion; our 6-mer and codon
    models get phase and length-modulo-k rows, the 1-nt and BPE tokenizers and the external
    models (scored as text) none."""
    for model in [*PANEL, *EXTERNAL]:
        panel = pd.read_csv(run / f"results/robustness/{model}/panel.tsv", sep="\t")
        tests = set(panel["test"])
        assert {"rc", "shift", "indel"} <= tests, model
        assert ("phase" in tests) == (model in ("mlm_kmer6", "esm_kmer6", "gpt_codon")), model
        assert (panel["n_windows"] == 8).all(), model
        shifts = panel[panel["test"] == "shift"]["setting"].astype(int).tolist()
        assert shifts == [1, 2, 3], model
        scored = panel.dropna(subset=["ci95_low"])  # the spread rows carry no interval
        assert (scored["ci95_low"] <= scored["value"] + 1e-9).all(), model
        assert (run / f"results/figures/robustness/{model}.png").stat().st_size > 5_000
    assert not (run / "results/robustness/mlm_bpe_seed1").exists()


def test_layer_probe_of_every_embedded_model(run):
    """The layer probe (probe.layers all x three poolings) of every embedded model: one row per
    hidden-state layer and pooling, the best named in the probe table; the k-mer baseline is
    the line each curve is read against."""
    layers = pd.read_csv(run / "results/probe/layer_table.tsv", sep="\t")
    probed = layers[layers["regime"] != "kmer-baseline"]
    assert set(zip(probed["model"], probed["regime"], strict=True)) == LAYER_PROBED
    probe = pd.read_csv(run / "results/probe/probe_table.tsv", sep="\t")
    for (model, regime), rows in probed.groupby(["model", "regime"]):
        n_layers = rows["layer"].nunique()
        assert n_layers >= 2, model  # the embedding output and at least one block
        assert len(rows) == n_layers * 3, model
        assert set(rows["pooling"]) == {"mean", "last", "max"}, model
        assert rows["best"].sum() == 1, model
        best = rows[rows["best"]].iloc[0]  # chosen by cross-validation on the training split
        assert best["cv_accuracy"] == rows["cv_accuracy"].max(), model
        row = probe[(probe["model"] == model) & (probe["regime"] == regime)].iloc[0]
        assert (int(row["best_layer"]), row["best_pooling"]) == (int(best["layer"]),
                                                                 best["pooling"])  # fmt: skip
    assert (layers["ci95_low"] <= layers["accuracy"] + 1e-9).all()
    assert (layers["accuracy"] <= layers["ci95_high"] + 1e-9).all()
    assert (run / "results/figures/probe/layer_probe.png").stat().st_size > 5_000


def test_checkpoint_analytics_of_a_run_and_the_sweep(run):
    """analytics: gpt_nucleotide's four kept checkpoints (every 20 steps) and the sweep's
    three runs, each with bits/nt, RC consistency, probe accuracy and VEP AUROC and their
    intervals; the rank correlation of each cheap metric with each downstream one."""
    check_checkpoint_analytics(run, "gpt_nucleotide", [0, 20, 40, 60])
    sweep = pd.read_csv(run / "results/analytics/sweeps/tiny_gpt/checkpoints.tsv", sep="\t")
    assert sweep["step"].tolist() == [4, 8, 16]
    assert np.isfinite(sweep["bits_per_nt"]).all()
    assert (run / "results/figures/analytics/sweeps/tiny_gpt.png").stat().st_size > 5_000


# ----------------------------------------------------------------------------- DNA and text


def test_dnatext_corpus_models_and_evaluation(run):
    """dnatext (tests/config): the paired corpus follows the CDS splits; the evaluation table
    holds both losses, retrieval against its baselines and chance, and the DNA-only pair."""
    pairs = pd.read_csv(
        run / "results/dnatext/corpus/pairs.tsv", sep="\t", dtype=str, keep_default_na=False
    )
    assignment = pd.read_csv(run / "results/splits/assignment.tsv", sep="\t", dtype=str)
    split_of = {(a, c): s for a, c, s in assignment[["sample", "cds_id", "split"]].values}
    assert all(split_of[a, c] == s for a, c, s in pairs[["sample", "cds_id", "split"]].values)
    per_sample = pairs["sample"].value_counts()
    assert per_sample["spyogenes"] == 1853
    assert per_sample["mgallisepticum"] == 719
    assert per_sample["yeast_chrIV"] == 836  # GTF: gene ids, no product
    # CDS FASTA and gene calls carry no annotation text
    assert not {"ecoli_hx", "ypestis_fna"} & set(per_sample.index)
    assert (pairs["sequence"].str.len() <= 120).all()
    assert all(f"<dna>{s}</dna>" in t for s, t in pairs[["sequence", "text"]].values)
    summary = pd.read_csv(run / "results/dnatext/corpus/summary.tsv", sep="\t")
    assert summary["pairs"].sum() == len(pairs)

    table = pd.read_csv(run / "results/dnatext/evaluation.tsv", sep="\t")
    value = {(m, k): v for m, k, v in table.itertuples(index=False)}
    for key in ("text_loss_true_dna", "text_loss_random_dna"):
        assert 0 < value["dnatext", key] < 8, key  # ln(300) = 5.7 at random
    for key in ("dna_loss_with_text", "dna_loss_without_text"):
        assert 0 < value["dnatext", key] < 8, key  # ln(512) = 6.2 at random
    assert value["dnatext", "retrieval_candidates"] == 8
    assert value["dnatext", "retrieval_queries"] == 8
    assert value["dnatext", "chance_top1_acc"] == 1 / 8
    for name in ("model", "model_pmi", "kmer_nn", "train_freq"):
        top1, top5 = value["dnatext", f"{name}_top1_acc"], value["dnatext", f"{name}_top5_acc"]
        assert 0 <= top1 <= top5 <= 1, name
    for name in ("dna_basewise", "dna_table"):
        assert 1.0 < value[name, "test_bits_per_nt"] < 3.0, name
        assert 0 <= value[name, "species_probe_acc"] <= 1, name
    # the folders reload through the Auto classes (once dnalm's model types are registered)
    register_model_types()
    models = run / "results/dnatext/models"
    bpe = load_tokenizer(run / "results/tokenizers/bpe")
    for sub in ("dnatext", "dna_basewise", "dna_table"):
        assert AutoModelForMaskedLM.from_pretrained(models / sub).num_parameters() > 1000, sub
    for sub in ("dna_basewise", "dna_table"):
        assert load_tokenizer(models / sub).vocab_size == bpe.vocab_size
    # each model learned: its masked-token loss over the last 3 of its 10 steps is below that
    # of the first 3 (by 0.12-0.18 nats here; one batch of 8 varies by about 0.05), which a
    # model whose weights do not train, or train on the wrong targets, does not show
    for sub in ("dnatext", "dna_basewise", "dna_table"):
        loss = pd.read_csv(models / sub / "curves.csv")["loss"]
        assert len(loss) == 10, sub
        assert loss.iloc[-3:].mean() < loss.iloc[:3].mean() - 0.05, (sub, loss.tolist())
    assert (models / "dnatext/tokenizer/dnatext_tokenizer.json").is_file()


# ----------------------------------------------------------------------------- report


def test_walk_and_cgr_figures(run):
    from tests.test_report_figures import svg_texts

    with_cds = set(pd.read_csv(run / "results/cds/qc_summary.tsv", sep="\t")["sample"])
    for name in ("walks", "cgr"):
        texts = svg_texts(run / f"results/figures/walks/{name}.svg")
        titled = {t.split(" (")[0] for t in texts if t.endswith(")")}
        assert with_cds <= titled, sorted(with_cds - titled)
    # the generation stage runs here: natural, markov and every causal model in one map
    umap = pd.read_csv(run / "results/figures/walks/generated_umap.tsv", sep="\t")
    assert {"natural", "markov", *GENERATING} <= set(umap["source"])


@pytest.fixture(scope="module")
def report(run):
    proc = snakemake(run, "--report", "results/report.html", env=hub_env(run))
    assert proc.returncode == 0, fail_message(proc)
    return run / "results/report.html"


def test_report_holds_every_figure(run, report):
    from tests.support.browser import image_stats, report_images

    files = report_images(report)
    pngs = {k for k in files if k.endswith(".png")}
    expected = {str(p.relative_to(run)) for p in (run / "results/figures").rglob("*.png")} | {
        "results/cds/qc.png"
    }
    assert expected <= pngs, sorted(expected - pngs)
    for key in expected:
        f = files[key]
        assert f.data == (run / key).read_bytes()
        assert f.caption.strip(), f"{key} has no caption"
        std, n_colours, _ = image_stats(f.data)
        assert std > 0
        assert n_colours > 10
    tables = {k for k in files if k.endswith(".tsv")}
    assert "results/probe/probe_table.tsv" in tables
    assert "results/generate/summary.tsv" in tables
    assert "results/finetune/tf_binding/comparison.tsv" in tables
    assert "results/models/summary.tsv" in tables
    for corpus in ("genome", "regions"):
        for table in ("leakage", "summary"):
            key = f"results/windows/{corpus}/{table}.tsv"
            assert key in tables
            assert files[key].caption.strip(), f"{key} has no caption"
    models = pd.read_csv(run / "results/models/summary.tsv", sep="\t")
    assert set(models["model"]) == set(MODELS)
    assert (models["test_bits_per_nt"] > 0).all()


@pytest.mark.browser
def test_report_renders_in_chromium(report, tmp_path):
    import os

    from tests.support.browser import find_chromium, find_subimage, image_stats, screenshot

    if find_chromium() is None:
        if os.environ.get("DNALM_REQUIRE_BROWSER") == "1":
            pytest.fail("DNALM_REQUIRE_BROWSER=1 but no Chromium found")
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")
    landing = screenshot(report, tmp_path / "landing.png", width=1800, height=1400)
    _, n_colours, nonwhite = image_stats(landing)
    assert nonwhite > 0.05
    assert n_colours > 50
    key = "results/figures/finetune/oct4_vs_mafk/performance.png"
    shot = screenshot(report, tmp_path / "fig.png", width=1800, height=1400, show_result=key)
    assert find_subimage(shot, (report.parent.parent / key).read_bytes()) is not None


# ----------------------------------------------------------------------------- external models


def test_external_models_sit_in_the_same_tables(run):
    """models.external (a native ESM folder, a pinned remote-code one, a native causal one and
    a causal one with pinned remote code): their fine-tuning rows beside ours with CIs against
    the same best baseline, probe rows, variant scores and generated samples, each in the
    table our models are in."""
    table = pd.read_csv(run / "results/finetune/species_fragments/comparison.tsv", sep="\t")
    rows = table.set_index("run")
    assert rows.loc["ext_nt_frozen", "regime"] == "frozen"
    assert rows.loc["ext_v2_lora", "regime"] == "lora"
    for name in ("ext_nt_frozen", "ext_v2_lora"):
        row = rows.loc[name]
        assert row["trainable_params"] < row["total_params"], name
        for col in ("ci95_low", "ci95_high", "delta_ci95_low", "delta_ci95_high"):
            assert np.isfinite(row[col]), (name, col)
        assert row["ci95_low"] <= row["accuracy"] <= row["ci95_high"], name
        assert row["best_baseline"] == rows.loc["gpt_nucleotide_frozen", "best_baseline"]
    # the native ESM folder: its own tokenizer class, the head alone trains when frozen
    nt = rows.loc["ext_nt_frozen"]
    assert (nt["model"], nt["objective"], nt["tokenizer"]) == ("ext_nt", "mlm", "EsmTokenizer")
    assert nt["trainable_params"] < nt["total_params"] / 100
    record = json.loads((run / "resources/external/ext_nt/provenance.json").read_text())
    assert set(record["files"]["weights"]) == {"model.safetensors"}
    assert Path(record["entry"]["source"]).name == "ext_nt"  # a local folder, recorded
    sidecar = json.loads((run / "results/probe/embeddings/external/ext_nt.json").read_text())
    assert sidecar["tokenizer"]["class"] == "EsmTokenizer"
    probe = pd.read_csv(run / "results/probe/probe_table.tsv", sep="\t")
    external = probe[probe["regime"] == "external"]
    assert {"ext_nt", "ext_v2", "tiny_bert"} <= set(external["model"])
    assert (external["accuracy"] > 0).all()
    auroc = pd.read_csv(run / "results/vep/spyogenes/auroc.tsv", sep="\t")
    assert {"ext_nt", "ext_v2", "ext_gpt", "ext_rgpt", "gpt_codon"} <= set(auroc["scorer"])
    summary = pd.read_csv(run / "results/generate/summary.tsv", sep="\t")
    assert {"ext_gpt", "ext_rgpt"} <= set(summary["model"])  # native, and with remote code
    # the remote code's hashes are recorded where the fetch rule wrote the entry's record
    for name, files in (("ext_v2", CODE_FILES), ("ext_rgpt", CAUSAL_CODE_FILES)):
        record = json.loads((run / f"resources/external/{name}/provenance.json").read_text())
        code = record["files"]["code"]
        assert set(code) == set(files), (name, record["files"])
        assert all(len(digest) == 64 for digest in code.values()), name
        assert record["commit"] == record["entry"]["revision"], name


def test_every_model_folder_has_a_card_and_provenance(run):
    """Every pretrained and fine-tuned model folder: a model card huggingface_hub parses, with
    the test metrics of metrics.json and the baseline it was compared with (and a plain
    sentence when it does not beat it); provenance.json whose checksums are the inputs'; and
    `dnalm publish --dry-run` passes its checks on the folder."""
    import hashlib
    from pathlib import Path

    from huggingface_hub import ModelCard

    from dnalm.cli import main
    from dnalm.core.seeds import replicate_base

    def sha(path: Path) -> str:
        path = path if path.is_absolute() else run / path
        return hashlib.sha256(path.read_bytes()).hexdigest()

    folders = [p.parent for p in sorted(run.glob("results/models/*/config.json"))]
    folders += [p.parent for p in sorted(run.glob("results/finetune/*/*/model/config.json"))]
    assert len(folders) >= 20
    for folder in folders:
        finetuned = folder.name == "model"
        parent = folder.parent if finetuned else folder
        metrics = json.loads((parent / "metrics.json").read_text())
        card = ModelCard.load(folder / "README.md")
        data = card.data.to_dict()
        assert data["library_name"] == "transformers", folder
        shown = data["dnalm"]["test_metrics"]
        expected = metrics["metrics"] if finetuned else metrics["model"]
        assert shown, folder
        assert all(expected[k] == v for k, v in shown.items()), folder
        if finetuned:
            table = pd.read_csv(folder.parents[1] / "comparison.tsv", sep="\t")
            row = table[table["run"] == replicate_base(folder.parent.name)].iloc[0]
            assert data["dnalm"]["baseline"]["name"] == row["best_baseline"], folder
            assert data["dnalm"]["ci95"]["low"] == pytest.approx(row["ci95_low"]), folder
        else:
            assert data["dnalm"]["baseline"]["name"] == metrics["baseline"]["name"], folder
        assert ("does not beat" in card.text) == (not data["dnalm"]["beats_baseline"]), folder
        prov = json.loads((folder / "provenance.json").read_text())
        for sample, record in prov["samples"].items():
            for which, entry in record["files"].items():
                assert entry["sha256"] == sha(Path(entry["path"])), (folder, sample, which)
        for name, entry in prov["inputs"].items():
            assert entry["sha256"] == sha(Path(entry["path"])), (folder, name)
        if "ext_v2" in str(folder):  # remote code: publish refuses it unless pinned
            continue
        argv = ["publish", "--model", str(folder), "--repo-id", "org/m", "--dry-run"]
        assert main(argv) == 0, folder
