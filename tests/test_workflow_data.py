"""The data stage end to end through the real workflow: shared genomes -> CDS -> splits,
downloads through a real HTTP server on 127.0.0.1, and bad input stopping cleanly."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from dnalm.io import read_fasta
from tests.http_server import LocalHTTPServer, gzip_bytes, md5_hex
from tests.workflow_runner import REPO, make_workdir, snakemake

DATA_TARGETS = ["results/cds/qc_summary.tsv", "results/cds/qc.png", "results/splits/assignment.tsv"]


def fail_message(proc) -> str:
    return (
        f"snakemake exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
        f"\n--- stderr\n{proc.stderr[-8000:]}"
    )


@pytest.fixture(scope="module")
def data_run(tmp_path_factory, shared_data):
    """One run of the data stage on every genome of tests/config/samples.tsv."""
    workdir = make_workdir(tmp_path_factory.mktemp("data_stage"))
    proc = snakemake(workdir, *DATA_TARGETS)
    assert proc.returncode == 0, fail_message(proc)
    return workdir


@pytest.mark.slow
def test_qc_figures_of_shared_genomes(data_run, shared_data):
    summary = pd.read_csv(data_run / "results/cds/qc_summary.tsv", sep="\t").set_index("sample")
    assert len(summary) == 14
    # NCBI's own CDS FASTA of pPCP1 holds 10 CDS; yeast chrIV has 836 complete CDS.
    assert summary.loc["ypestis_pPCP1", "kept"] == 10
    assert summary.loc["yeast_chrIV", "kept"] == 836
    assert summary.loc["ecoli_hx", "kept"] == 94
    ours = {h.split()[0]: s for h, s, _ in read_fasta(data_run / "results/cds/ypestis_pPCP1.fa.gz")}
    ncbi = [s.upper() for _, s, _ in read_fasta(shared_data / "genbank/NC_005816.ffn")]
    assert sorted(ours.values()) == sorted(ncbi)
    yeast = [s for _, s, _ in read_fasta(data_run / "results/cds/yeast_chrIV.fa.gz")]
    assert all(s.startswith("ATG") and len(s) % 3 == 0 for s in yeast)
    assert all(s[-3:] in {"TAA", "TAG", "TGA"} for s in yeast)
    assert (data_run / "results/cds/qc.png").stat().st_size > 10_000


@pytest.mark.slow
def test_splits_have_no_leakage(data_run):
    table = pd.read_csv(data_run / "results/splits/assignment.tsv", sep="\t")
    assert table.groupby("seq_sha1")["split"].nunique().max() == 1
    kept = pd.read_csv(data_run / "results/cds/qc_summary.tsv", sep="\t")["kept"].sum()
    assert len(table) == kept
    for sample in table["sample"].unique():
        train = {s for _, s, _ in read_fasta(data_run / f"results/splits/{sample}/train.fa.gz")}
        test = {s for _, s, _ in read_fasta(data_run / f"results/splits/{sample}/test.fa.gz")}
        assert not train & test
    all_train = set(table.loc[table["split"] == "train", "seq_sha1"])
    all_test = set(table.loc[table["split"] == "test", "seq_sha1"])
    assert all_test
    assert not all_train & all_test


@pytest.mark.slow
def test_logs_provenance_and_rerun(data_run):
    samples = pd.read_csv(data_run / "config/samples.tsv", sep="\t")["sample"]
    for sample in samples:
        assert (data_run / f"results/logs/cds/{sample}.log").is_file()
        prov = json.loads((data_run / f"resources/genomes/{sample}/provenance.json").read_text())
        assert len(prov["files"]["primary"]["md5"]) == 32
        # local sources are used in place: nothing copied into resources/
        assert not (data_run / f"resources/genomes/{sample}/primary").exists()
    assert (data_run / "results/benchmarks/cds/spyogenes.tsv").is_file()
    proc = snakemake(data_run, "-n", *DATA_TARGETS)
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_downloads_through_workflow(tmp_path, shared_data):
    """An NCBI accession and an Ensembl-style URL served from 127.0.0.1; the URL fails with
    HTTP 500 twice before it succeeds."""
    gbff = (shared_data / "genbank/NC_005816.gb").read_bytes()
    cds = (shared_data / "cds_fasta/ecoli_highly_expressed_genes.fasta").read_bytes()
    with LocalHTTPServer(tmp_path / "www") as server:
        asm = server.add_ncbi_assembly(
            "GCF_000009065.1", "ASM906v1", {"_genomic.gbff.gz": gzip_bytes(gbff)}
        )
        cds_gz = gzip_bytes(cds)
        url = server.add_ensembl(
            "Escherichia_coli.cds.all.fa.gz", cds_gz, species="escherichia_coli"
        )
        path = url.split("/", 3)[3]
        server.fail(path, status=500, times=2)
        sheet = tmp_path / "sheet.tsv"
        sheet.write_text(
            "sample\tspecies\tsource\tformat\tmd5\n"
            "ypestis\tYersinia pestis\tGCF_000009065\tgbff\t\n"
            f"ecoli\tEscherichia coli\t{url}\tcds_fasta\t{md5_hex(cds_gz)}\n"
        )
        workdir = make_workdir(
            tmp_path / "wd",
            {"download": {"ncbi_base_url": server.ncbi_base_url, "backoff_seconds": 0.05}},
            sheet=sheet,
        )
        proc = snakemake(workdir, *DATA_TARGETS)
        assert proc.returncode == 0, fail_message(proc)
        assert server.hits(path) == 3
    got = (workdir / "resources/genomes/ypestis/primary").read_bytes()
    assert gzip.decompress(got) == gbff
    prov = json.loads((workdir / "resources/genomes/ypestis/provenance.json").read_text())
    assert prov["files"]["primary"]["md5"] == asm.md5["_genomic.gbff.gz"]
    summary = pd.read_csv(workdir / "results/cds/qc_summary.tsv", sep="\t").set_index("sample")
    assert summary.loc["ypestis", "kept"] == 10
    assert summary.loc["ecoli", "kept"] == 94
    assert not list((workdir / "resources/genomes").rglob("*.part"))


@pytest.mark.slow
def test_download_404_stops_with_sample_and_url(tmp_path):
    with LocalHTTPServer(tmp_path / "www") as server:
        url = server.url("pub/release-113/fasta/missing.cds.all.fa.gz")
        sheet = tmp_path / "sheet.tsv"
        sheet.write_text(f"sample\tspecies\tsource\tformat\ngone\tX\t{url}\tcds_fasta\n")
        workdir = make_workdir(
            tmp_path / "wd", {"download": {"backoff_seconds": 0.01}}, sheet=sheet
        )
        proc = snakemake(workdir, *DATA_TARGETS)
    assert proc.returncode != 0
    log = (workdir / "results/logs/download/gone.primary.log").read_text()
    assert "gone" in log
    assert url in log
    assert "404" in log
    assert not (workdir / "resources/genomes/gone/primary").exists()
    assert not list((workdir / "resources/genomes/gone").glob("*"))


@pytest.mark.slow
def test_malformed_gbff_leaves_no_partial_outputs(tmp_path, shared_data):
    bad = tmp_path / "bad.gbk"
    text = (shared_data / "genbank/NC_005816.gb").read_text()
    bad.write_text(text[: len(text) // 2].replace("ORIGIN", "ORIGNI"))
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(
        "sample\tspecies\tsource\tformat\n"
        f"broken\tX\t{bad}\tgbff\n"
        f"good\tY\t{shared_data / 'genbank/NC_001422.gbk'}\tgbff\n"
    )
    workdir = make_workdir(tmp_path / "wd", sheet=sheet)
    proc = snakemake(workdir, "--keep-going", *DATA_TARGETS)
    assert proc.returncode != 0
    log = (workdir / "results/logs/cds/broken.log").read_text()
    assert str(bad) in log
    assert not (workdir / "results/cds/broken.fa.gz").exists()
    assert not (workdir / "results/cds/broken.tsv").exists()
    assert (workdir / "results/cds/good.fa.gz").exists()


@pytest.mark.slow
def test_bad_sheet_stops_before_any_job(tmp_path, shared_data):
    src = shared_data / "genbank/NC_001422.gbk"
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(f"sample\tspecies\tsource\tformat\nx\tA\t{src}\tgbff\nx\tB\t{src}\tgbff\n")
    workdir = make_workdir(tmp_path / "wd", sheet=sheet)
    proc = snakemake(workdir, *DATA_TARGETS)
    assert proc.returncode != 0
    assert "samples.tsv:3: duplicate sample ID 'x' (first used on line 2)" in proc.stderr
    assert not (workdir / "results").exists()


@pytest.mark.slow
def test_invalid_config_value_stops_before_any_job(tmp_path, shared_data):
    workdir = make_workdir(tmp_path / "wd", {"splits": {"seed": "abc"}}, keep=["phiX174"])
    proc = snakemake(workdir, *DATA_TARGETS)
    assert proc.returncode != 0
    assert "seed" in proc.stderr
    assert "'abc' is not of type 'integer'" in proc.stderr
    assert not (workdir / "results").exists()


def test_shared_sheet_paths_are_relative_to_repo(shared_data):
    """tests/config/samples.tsv uses ../shared/data paths that resolve from the repo root."""
    sheet = pd.read_csv(REPO / "tests/config/samples.tsv", sep="\t", comment="#")
    for src in sheet["source"]:
        assert (REPO / src).resolve().is_file(), src
