"""Genome FASTA samples through the real workflow: a plasmid given as a bare genome FASTA
with pyrodigal gene calling runs through the CDS rule, QC and splits; a genome FASTA without
gene calling gets genome files but no CDS; anything asking for its CDS stops before any job."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from tests.support.http_server import LocalHTTPServer, gzip_bytes
from tests.support.workflow_runner import fail_message, make_workdir, slim_config, snakemake


def sheet(tmp_path, shared_data, extra: str = "") -> object:
    fna = shared_data / "genbank" / "NC_005816.fna"
    gtf = shared_data / "fasta_gff" / "sacCer3_chrIV.annotation.gtf.gz"
    yeast = shared_data / "fasta_gff" / "sacCer3_chrIV.fa.gz"
    path = tmp_path / "sheet.tsv"
    path.write_text(
        "sample\tspecies\tsource\tformat\tannotation\tspecies_task\tannotate\tannotate_mode\n"
        f"ypestis_fna\tYersinia pestis\t{fna}\tfasta\t\tfalse\tpyrodigal\tmeta\n"
        f"bare\tYersinia pestis\t{fna}\tfasta\t\tfalse\t\t\n"
        f"yeast\tSaccharomyces cerevisiae\t{yeast}\tfasta_gff\t{gtf}\tfalse\t\t\n" + extra
    )
    return path


def workdir_for(tmp_path, shared_data, extra=""):
    return make_workdir(
        tmp_path / "wd", sheet=sheet(tmp_path, shared_data, extra), replace=slim_config()
    )


@pytest.mark.slow
def test_fasta_samples_through_cds_and_genome_rules(tmp_path, shared_data):
    wd = workdir_for(tmp_path, shared_data)
    targets = [
        "results/cds/qc_summary.tsv",
        "results/splits/assignment.tsv",
        *(
            f"results/genome/{s}/{f}"
            for s in ("ypestis_fna", "bare", "yeast")
            for f in ("genome.fa.gz", "contigs.tsv", "features.tsv")
        ),
    ]
    proc = snakemake(wd, *targets)
    assert proc.returncode == 0, fail_message(proc)
    summary = pd.read_csv(wd / "results/cds/qc_summary.tsv", sep="\t").set_index("sample")
    assert sorted(summary.index) == ["yeast", "ypestis_fna"]  # bare has no CDS
    assert summary.loc["ypestis_fna", "kept"] == 9
    table = pd.read_csv(wd / "results/cds/ypestis_fna.tsv", sep="\t")
    assert set(table["evidence"]) == {"predicted"}
    assert set(pd.read_csv(wd / "results/cds/yeast.tsv", sep="\t")["evidence"]) == {"annotated"}
    assignment = pd.read_csv(wd / "results/splits/assignment.tsv", sep="\t")
    assert set(assignment["sample"]) == {"yeast", "ypestis_fna"}
    assert not (wd / "results/cds/bare.tsv").exists()
    feats = pd.read_csv(wd / "results/genome/ypestis_fna/features.tsv", sep="\t")
    assert feats["type"].value_counts().to_dict() == {"gene": 9, "CDS": 9}
    assert pd.read_csv(wd / "results/genome/bare/features.tsv", sep="\t").empty
    yeast = pd.read_csv(wd / "results/genome/yeast/features.tsv", sep="\t")
    assert yeast["type"].value_counts().to_dict() == {"exon": 924, "gene": 885, "CDS": 870}
    contigs = pd.read_csv(wd / "results/genome/bare/contigs.tsv", sep="\t")
    assert contigs.to_dict("records") == [
        {
            "contig": "gi|45478711|ref|NC_005816.1|",
            "length": 9609,
            "n_count": 0,
            "lower_fraction": 0.0,
        }
    ]
    with gzip.open(wd / "results/genome/bare/genome.fa.gz", "rt") as fh:
        assert fh.readline() == ">gi|45478711|ref|NC_005816.1|\n"
    for log in ("genome/ypestis_fna.fasta.log", "genome/yeast.features.log", "cds/ypestis_fna.log"):
        assert (wd / "results/logs" / log).stat().st_size > 0


def test_asking_for_missing_cds_or_genome_stops_before_any_job(tmp_path, shared_data):
    ecoli = shared_data / "cds_fasta" / "ecoli_highly_expressed_genes.fasta"
    wd = workdir_for(
        tmp_path, shared_data, f"ecoli\tEscherichia coli\t{ecoli}\tcds_fasta\t\tfalse\t\t\n"
    )
    proc = snakemake(wd, "-n", "results/cds/bare.fa.gz")
    assert proc.returncode != 0
    assert "sample bare has format fasta and no annotate: no CDS" in proc.stderr + proc.stdout
    proc = snakemake(wd, "-n", "results/genome/ecoli/genome.fa.gz")
    assert proc.returncode != 0
    assert "sample ecoli has format cds_fasta: it has no genome" in proc.stderr + proc.stdout
    assert not (wd / "results").exists()


def test_cds_corpus_without_cds_samples_is_refused(tmp_path, shared_data):
    fna = shared_data / "genbank" / "NC_005816.fna"
    path = tmp_path / "only.tsv"
    path.write_text(
        "sample\tspecies\tsource\tformat\tspecies_task\n"
        f"bare\tYersinia pestis\t{fna}\tfasta\tfalse\n"
    )
    wd = make_workdir(tmp_path / "wd", sheet=path, replace=slim_config())
    proc = snakemake(wd, "-n")
    assert proc.returncode != 0
    out = proc.stderr + proc.stdout
    assert "corpora.cds: no samples (source cds: pretrain samples with CDS)" in out
    assert "sample bare has format fasta and no annotate: no CDS" in out


@pytest.mark.slow
def test_ncbi_accession_with_format_fasta_downloads_the_genome_fasta(tmp_path, shared_data):
    """Through the download rule: a format fasta row with an accession takes the assembly's
    _genomic.fna.gz (checked against md5checksums.txt), never its GBFF."""
    gbff = gzip_bytes((shared_data / "genbank/NC_005816.gb").read_bytes())
    fna = gzip_bytes((shared_data / "genbank/NC_005816.fna").read_bytes())
    with LocalHTTPServer(tmp_path / "www") as server:
        entry = server.add_ncbi_assembly(
            "GCF_000009065.1", "ASM906v1", {"_genomic.gbff.gz": gbff, "_genomic.fna.gz": fna}
        )
        path = tmp_path / "sheet.tsv"
        path.write_text(
            "sample\tspecies\tsource\tformat\tspecies_task\tannotate\tannotate_mode\n"
            "ypestis\tYersinia pestis\tGCF_000009065.1\tfasta\tfalse\tpyrodigal\tmeta\n"
        )
        wd = make_workdir(
            tmp_path / "wd",
            {"download": {"ncbi_base_url": server.ncbi_base_url, "backoff_seconds": 0.05}},
            sheet=path,
            replace=slim_config(),
        )
        proc = snakemake(wd, "results/cds/qc_summary.tsv", "results/genome/ypestis/contigs.tsv")
        assert proc.returncode == 0, fail_message(proc)
        assert server.hits(entry.paths["_genomic.fna.gz"]) == 1
        assert server.hits(entry.paths["_genomic.gbff.gz"]) == 0
    assert (wd / "resources/genomes/ypestis/primary").read_bytes() == fna
    prov = json.loads((wd / "resources/genomes/ypestis/provenance.json").read_text())
    assert prov["files"]["primary"]["md5"] == entry.md5["_genomic.fna.gz"]
    summary = pd.read_csv(wd / "results/cds/qc_summary.tsv", sep="\t").set_index("sample")
    assert summary.loc["ypestis", "kept"] == 9
    contigs = pd.read_csv(wd / "results/genome/ypestis/contigs.tsv", sep="\t")
    assert contigs["length"].tolist() == [9609]
