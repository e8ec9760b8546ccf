"""The generation stage's jobs end to end on a tiny causal model trained here: samples,
Markov baseline and natural set from real E. coli CDS, the metric table, the summary and its
figure."""

from __future__ import annotations

import pandas as pd
import pytest

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_write, read_fasta, write_fasta
from dnalm.generation.metrics import summary_table
from dnalm.generation.run import (
    generate_sets,
    metrics_table,
    prefix_length,
    read_set,
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
    # the natural set: 9 reference sequences and a disjoint control draw of as many
    assert job["counts"] == {"model": 9, "markov": 9, "natural": 18, "control": 9}
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
    assert [r.kind for r in natural] == ["natural"] * 9 + ["control"] * 9
    assert len({r.id for r in natural}) == 18
    for r in natural:
        assert r.seq == held[r.id][:cap]
    tsv = pd.read_csv(out / "samples.tsv", sep="\t")
    assert list(tsv["source"].value_counts().sort_index()) == [9, 9, 18]
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
    assert list(df["row"]) == ["gpt", "markov", "natural"]
    assert (df["n"] == 9).all()  # every row: 9 sequences against the same 9 natural ones
    back = pd.read_csv(out / "metrics.tsv", sep="\t").set_index("row")
    for k in range(1, 7):
        assert back[f"jsd_k{k}"].between(0, 1).all()
    assert (back["frechet"] >= 0).all()
    # prefixes are held out and the model never saw E. coli: nothing memorised
    assert back.loc["gpt", "memorised"] == 0.0
    # a second natural draw is closer to the reference than an untrained sampler's samples
    assert back.loc["natural", "jsd_k1"] < back.loc["gpt", "jsd_k1"]
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
    sizes = [len(read_set(out / f"{n}.fa.gz")) for n in ("samples", "markov", "natural")]
    assert sizes == [6, 6, 12]  # the natural reference and its control draw
    summary = pd.read_csv(wd / "results/generate/summary.tsv", sep="\t")
    assert list(summary["row"]) == ["gpt_tiny", "markov", "natural"]
    assert (summary["reference_model"] == "gpt_tiny").all()
    assert summary["n"].nunique() == 1  # sets of one size
    assert summary["capped"].between(0, 1).all()
    log = (wd / "results/logs/generate/gpt_tiny.log").read_text()
    assert "6-mer JSD" in log
    assert (wd / "results/figures/generate/summary.png").stat().st_size > 5_000


def test_a_masked_model_under_generate_models_stops_the_dag(tmp_path, shared_data):
    from tests.support.workflow_runner import make_workdir, snakemake

    wd = make_workdir(tmp_path / "wd", {"generate": {"models": ["mlm_kmer6"]}})
    proc = snakemake(wd, "-n", timeout=300)
    assert proc.returncode != 0
    assert "generate.models: 'mlm_kmer6' is a masked (mlm) model" in proc.stdout + proc.stderr


def test_natural_and_generated_sets_are_judged_alike(tmp_path):
    """Sets of unequal size are compared at one size; ORF validity is judged only on
    sequences that ended before the length cap, in the natural set as in a generated one: a
    natural set whose every CDS was cut at the cap is not applicable (NaN), not 0, and the
    figure draws no bar for it, only "n/a"."""
    from dnalm.generation.run import _write_fasta
    from dnalm.generation.sequences import Record
    from dnalm.report import style
    from dnalm.report.generation_plots import draw_generation_summary

    orf = "ATG" + "GCT" * 10 + "TAA"  # a valid ORF that ended (stop codon)
    long = "ATG" + "GCA" * 13  # 42 nt: cut at the cap, no stop
    natural = [Record(f"n{i}", long, "natural", f"n{i}", "truncated") for i in range(4)]
    natural += [Record(f"c{i}", long, "control", f"c{i}", "truncated") for i in range(4)]
    samples = [Record(f"prefix{i}", orf, "prefix", "n0", "stop_codon") for i in range(5)]
    samples += [Record("free1", long, "free", "", "length_cap")]
    ended = "CCC" + "GCA" * 12 + "TAA"  # ended at a stop codon, but no start codon
    markov = [Record(f"free{i}", ended, "free", "", "stop_codon") for i in range(6)]
    for name, recs in (("natural", natural), ("samples", samples), ("markov", markov)):
        _write_fasta(tmp_path / f"{name}.fa.gz", recs)
    train = tmp_path / "train.fa.gz"
    _write_fasta(train, [Record("t1", orf * 3, "natural", "", "natural")])
    df = metrics_table("gpt", tmp_path, [train], None, tmp_path / "m.tsv", cds=True)
    df = df.set_index("row")
    assert (df["n"] == 4).all()  # 6 samples and 6 Markov ones drawn down to the 4 natural
    assert df.loc["natural", "capped"] == 1.0
    assert pd.isna(df.loc["natural", "valid_orf"])  # every natural CDS was cut: n/a
    assert df.loc["markov", "valid_orf"] == 0.0  # judged (they ended) and invalid
    assert df.loc["gpt", "valid_orf"] == 1.0  # the cut sample is not judged
    assert 0 <= df.loc["gpt", "capped"] <= 0.25
    summary = summary_table({"gpt": tmp_path / "m.tsv"}, tmp_path / "summary.tsv")
    assert pd.isna(summary.set_index("row").loc["natural", "valid_orf"])
    with style.style():
        fig = draw_generation_summary(tmp_path / "summary.tsv")
        orf_axes = fig.axes[1]
        widths = sorted(round(p.get_width(), 3) for p in orf_axes.patches)
        labels = [t.get_text().strip() for t in orf_axes.texts]
    assert widths == [0.0, 1.0]  # the model's 1 and the Markov 0: no bar for the natural row
    assert labels.count("n/a") == 1
