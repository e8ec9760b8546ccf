"""The generation stage's jobs end to end on a tiny causal model trained here: samples,
Markov baseline and natural set from real E. coli CDS, the metric table, the summary and its
figure."""

from __future__ import annotations

import pandas as pd
import pytest

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_write, read_fasta, write_fasta
from dnalm.generation.run import (
    generate_sets,
    metrics_table,
    prefix_length,
    read_set,
    summary_table,
)
from dnalm.generation.sequences import orf_check
from dnalm.report.generation_plots import plot_generation_summary
from dnalm.training.pretrain import pretrain
from tests.support.lm_corpus import make_corpus

TRAIN = {
    "max_steps": 30,
    "micro_batch_size": 8,
    "eval_interval": 30,
    "warmup_steps": 3,
    "eval_batches": 1,
    "threads": 1,
    "test_eval": False,
}
SETTINGS = {
    "n_prefix": 6,
    "n_free": 3,
    "prefix_nt": 31,  # rounded down to 30: whole codons on a CDS corpus
    "max_new_nt": 60,
    "temperature": 1.0,
    "top_k": None,
    "top_p": 0.95,
    "seed": 3,
    "markov_order": 4,
}


@pytest.fixture(scope="module")
def job(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("generation")
    model = root / "gpt"
    pretrain(make_corpus(root / "corpus"), model, "gpt", "tiny", {"context": 64}, TRAIN)
    cds = list(read_fasta(shared_data / "cds_fasta/ecoli_highly_expressed_genes.fasta"))
    train, test = root / "train.fa.gz", root / "test.fa.gz"
    for path, recs in ((train, cds[:60]), (test, cds[60:])):
        with atomic_write(path) as fh:
            write_fasta(fh, ((h, s) for h, s, _ in recs))
    out = root / "out"
    counts = generate_sets(model, [test], [train], out, SETTINGS, unit=1, cds=True)
    return {
        "root": root,
        "model": model,
        "train": train,
        "test": test,
        "out": out,
        "counts": counts,
    }


def test_samples_markov_and_natural_sets(job):
    out, cap = job["out"], 30 + 60
    assert job["counts"] == {"model": 9, "markov": 9, "natural": 9}
    samples, markov, natural = (
        read_set(out / f"{n}.fa.gz") for n in ("samples", "markov", "natural")
    )
    held = {h.split()[0]: s for h, s, _ in read_fasta(job["test"])}
    for recs in (samples, markov):
        assert [r.kind for r in recs] == ["prefix"] * 6 + ["free"] * 3
        for r in recs[:6]:
            assert r.seq.startswith(held[r.prefix_id][:30])
        for r in recs:
            assert len(r.seq) <= cap
            assert r.stop in {"eos", "stop_codon", "length_cap"}
            if r.stop == "stop_codon":
                assert orf_check(r.seq[len(r.seq) % 3 :], {r.seq[:3]})[1] in {"ok", "start"}
    # the natural set: the held-out CDS cut to the cap, the first six give the prefixes
    assert [r.id for r in natural[:6]] == [r.prefix_id for r in samples[:6]]
    for r in natural:
        assert r.seq == held[r.id][:cap]
    tsv = pd.read_csv(out / "samples.tsv", sep="\t")
    assert list(tsv["source"].value_counts().sort_index()) == [9, 9, 9]
    assert set(tsv.columns) >= {
        "id",
        "kind",
        "prefix_id",
        "length",
        "gc",
        "gc3",
        "valid_orf",
        "stop",
    }
    assert tsv["gc"].between(0, 1).all()
    # natural CDS longer than the cap are cut (no stop); shorter ones are valid ORFs
    nat = tsv[tsv["source"] == "natural"]
    assert (nat["valid_orf"] == (nat["length"] < cap).astype(int)).all()


def test_generation_is_seeded(job, tmp_path):
    again = generate_sets(
        job["model"], [job["test"]], [job["train"]], tmp_path, SETTINGS, unit=1, cds=True
    )
    assert again == job["counts"]
    for name in ("samples", "markov", "natural"):
        a = [(r.id, r.seq) for r in read_set(job["out"] / f"{name}.fa.gz")]
        assert a == [(r.id, r.seq) for r in read_set(tmp_path / f"{name}.fa.gz")]


def test_metric_table_summary_and_figure(job):
    out = job["out"]
    df = metrics_table(
        "gpt",
        out,
        [job["train"]],
        job["model"],
        out / "metrics.tsv",
        cds=True,
        reference_name="gpt",
    )
    assert list(df["row"]) == ["gpt", "markov", "natural_half"]
    back = pd.read_csv(out / "metrics.tsv", sep="\t").set_index("row")
    for k in range(1, 7):
        assert back[f"jsd_k{k}"].between(0, 1).all()
    assert (back["frechet"] >= 0).all()
    # prefixes are held out and the model never saw E. coli: nothing memorised
    assert back.loc["gpt", "memorised"] == 0.0
    # the natural halves are valid ORFs more often than an untrained sampler's continuations
    assert back.loc["natural_half", "jsd_k1"] < back.loc["gpt", "jsd_k1"]
    summary = summary_table({"gpt": out / "metrics.tsv"}, out / "summary.tsv")
    assert len(summary) == 3
    png, svg = plot_generation_summary(out / "summary.tsv", out / "summary.png")
    assert png.stat().st_size > 5_000
    assert svg.is_file()


def test_bad_settings_and_inputs(job, tmp_path):
    with pytest.raises(ConfigError, match="prefix_nt"):
        prefix_length(2, 1, cds=True)
    assert prefix_length(31, 3, cds=True) == 30
    assert prefix_length(31, 6, cds=False) == 30
    with pytest.raises(ConfigError, match="n_prefix"):
        generate_sets(
            job["model"],
            [job["test"]],
            [job["train"]],
            tmp_path,
            {**SETTINGS, "n_prefix": 1, "n_free": 0},
            unit=1,
            cds=True,
        )
    with pytest.raises(InputFormatError, match=r"test\.fa\.gz"):
        generate_sets(
            job["model"],
            [job["test"]],
            [job["train"]],
            tmp_path,
            {**SETTINGS, "prefix_nt": 6000},
            unit=1,
            cds=True,
        )
    assert not (tmp_path / "samples.fa.gz").exists()


def test_generate_rule_on_a_model_trained_here(job, shared_data, tmp_path):
    """Rules generate and generation_summary (only those: the model folder and the CDS
    splits are put in place), on the shared-data config cut down to one CDS sample."""
    import shutil

    from tests.support.workflow_runner import fail_message, make_workdir, slim_config, snakemake

    replace = {
        **slim_config(model="gpt_tiny"),
        "generate": {"n_prefix": 4, "n_free": 2, "max_new_nt": 45, "top_k": 3},
    }
    wd = make_workdir(tmp_path / "wd", keep=["ecoli_hx"], replace=replace)
    shutil.copytree(job["model"], wd / "results/models/gpt_tiny")
    splits = wd / "results/splits/ecoli_hx"
    splits.mkdir(parents=True)
    shutil.copy(job["train"], splits / "train.fa.gz")
    shutil.copy(job["test"], splits / "test.fa.gz")
    shutil.copy(job["test"], splits / "validation.fa.gz")
    proc = snakemake(
        wd,
        "results/generate/summary.tsv",
        "--allowed-rules",  # the rest of the DAG exists or is not needed
        "generate",
        "generation_summary",
        timeout=600,
    )
    assert proc.returncode == 0, fail_message(proc)
    out = wd / "results/generate/gpt_tiny"
    assert [len(read_set(out / f"{n}.fa.gz")) for n in ("samples", "markov", "natural")] == [6] * 3
    summary = pd.read_csv(wd / "results/generate/summary.tsv", sep="\t")
    assert list(summary["row"]) == ["gpt_tiny", "markov", "natural_half"]
    assert (summary["reference_model"] == "gpt_tiny").all()
    assert summary["valid_orf"].notna().all()
    log = (wd / "results/logs/generate/gpt_tiny.log").read_text()
    assert "6-mer JSD" in log
    assert (wd / "results/figures/generate/summary.png").stat().st_size > 5_000


def test_a_masked_model_under_generate_models_stops_the_dag(tmp_path, shared_data):
    from tests.support.workflow_runner import make_workdir, snakemake

    wd = make_workdir(tmp_path / "wd", {"generate": {"models": ["mlm_kmer6"]}})
    proc = snakemake(wd, "-n", timeout=300)
    assert proc.returncode != 0
    assert "generate.models: 'mlm_kmer6' is a masked (mlm) model" in proc.stdout + proc.stderr
