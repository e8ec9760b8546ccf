"""The data stage through the real workflow: downloads through a real HTTP server on
127.0.0.1, and bad input stopping cleanly with no partial outputs. (The full shared-data run
is checked in test_workflow_e2e.py.)"""

from __future__ import annotations

import gzip
import json
import os
import shlex
import sys

import pandas as pd
import pytest
import yaml

from tests.support.http_server import LocalHTTPServer, gzip_bytes, md5_hex
from tests.support.workflow_runner import (
    REPO,
    fail_message,
    make_workdir,
    slim_config,
    snakemake,
)

DATA_TARGETS = ["results/cds/qc_summary.tsv", "results/cds/qc.png", "results/splits/assignment.tsv"]


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


@pytest.mark.slow
def test_task_files_from_urls_through_workflow(tmp_path):
    """tasks.tf_binding's two files as URLs served from 127.0.0.1 (one with its sha256, one
    answering HTTP 500 first): the workflow downloads both and builds the task; a dry run
    first lists the downloads and fetches nothing. A wrong sha256 stops the download job,
    naming the config key, with no task file or task table left."""
    import hashlib

    folder = REPO / "tests" / "data" / "tasks" / "tf_binding"
    seqs = (folder / "chr22_sequences.txt.gz").read_bytes()
    scores = (folder / "chr22_scores.txt.gz").read_bytes()
    demo = REPO / "tests" / "config" / "demo.yaml"
    with LocalHTTPServer(tmp_path / "www") as server:
        seq_url = server.add_file("dnallm/chr22_sequences.txt.gz", seqs)
        score_url = server.add_file("dnallm/chr22_scores.txt.gz", scores)
        server.fail("dnallm/chr22_scores.txt.gz", status=500, times=1)

        def workdir(name, sha):
            tf = {"sequences": f"{seq_url}#sha256={sha}", "scores": score_url}
            overrides = {"tasks": {"tf_binding": tf}, "download": {"backoff_seconds": 0.05}}
            return make_workdir(
                tmp_path / name, overrides, keep=["mgallisepticum"], test_config=demo
            )

        good = workdir("good", hashlib.sha256(seqs).hexdigest())
        dry = snakemake(good, "-n", "results/tasks/tf_binding/data.tsv")
        assert dry.returncode == 0, fail_message(dry)
        assert dry.stdout.count("rule download_task_file:") == 2
        assert server.hits("dnallm/chr22_sequences.txt.gz") == 0
        proc = snakemake(good, "results/tasks/tf_binding/data.tsv")
        assert proc.returncode == 0, fail_message(proc)
        assert server.hits("dnallm/chr22_scores.txt.gz") == 2
        got = sorted((good / "resources" / "task_files").rglob("*.gz"))
        assert sorted(p.read_bytes() for p in got) == sorted([seqs, scores])
        assert (good / "results/tasks/tf_binding/data.tsv").stat().st_size > 0

        bad = workdir("bad", "0" * 64)
        proc = snakemake(bad, "results/tasks/tf_binding/data.tsv")
    assert proc.returncode != 0
    logs = "".join(p.read_text() for p in (bad / "results/logs/download").rglob("*.log"))
    assert "config key tasks.tf_binding.sequences" in logs
    assert "0" * 64 in logs
    assert not list((bad / "resources" / "task_files").rglob("chr22_sequences*"))
    assert not (bad / "results/tasks/tf_binding/data.tsv").exists()


@pytest.mark.slow
def test_identity_split_is_done_by_the_extraction_job(tmp_path, shared_data):
    """Under splits.method identity the job that extracts a sample's CDS also splits them
    (one job per sample fewer at DAG build; benchmarks/bench_dag.py): no split_cds job runs,
    and the split files and the split log (results/logs/splits/{sample}.log, apart from the
    CDS log) come from extract_cds. Under mmseqs split_cds stays its own job."""
    samples = ["ypestis_pPCP1", "phiX174"]
    workdir = make_workdir(
        tmp_path / "wd", {"splits": {"method": "identity"}}, keep=samples, replace=slim_config()
    )
    proc = snakemake(workdir, "results/splits/assignment.tsv")
    assert proc.returncode == 0, fail_message(proc)
    out = proc.stdout + proc.stderr
    assert "rule split_cds:" not in out
    assert out.count("rule extract_cds:") == len(samples)
    table = pd.read_csv(workdir / "results/splits/assignment.tsv", sep="\t")
    assert set(table["sample"]) == set(samples)
    for sample in samples:
        for name in ("train.fa.gz", "validation.fa.gz", "test.fa.gz", "assignment.tsv"):
            assert (workdir / f"results/splits/{sample}/{name}").is_file()
        split_log = (workdir / f"results/logs/splits/{sample}.log").read_text()
        assert f"{sample}: train=" in split_log
        cds_log = (workdir / f"results/logs/cds/{sample}.log").read_text()
        assert f"sample {sample}:" in cds_log
        assert "train=" not in cds_log
    mmseqs = make_workdir(
        tmp_path / "mm", {"splits": {"method": "mmseqs"}}, keep=samples, replace=slim_config()
    )
    proc = snakemake(mmseqs, "-n", "results/splits/assignment.tsv")
    assert proc.returncode == 0, fail_message(proc)
    out = proc.stdout + proc.stderr
    assert out.count("rule split_cds:") == len(samples)
    assert "rule cluster_cds:" in out


@pytest.mark.slow
def test_jobs_over_all_samples_wait_for_one_table(tmp_path, shared_data):
    """cds_qc_figure and split_leakage wait for the QC summary and walk_figures for the
    gathered split table (each waits for every per-sample file), not for N per-sample
    inputs of their own: each input is resolved per job at DAG build
    (benchmarks/bench_dag.py)."""
    samples = ["ypestis_pPCP1", "phiX174"]
    workdir = make_workdir(
        tmp_path / "wd",
        {"splits": {"method": "identity"}, "walks": {"enabled": True}},
        keep=samples,
        replace=slim_config(),
    )
    targets = ["results/cds/qc.png", "results/splits/leakage_summary.tsv"]
    proc = snakemake(workdir, "-n", *targets, "results/figures/walks/walks.png")
    assert proc.returncode == 0, fail_message(proc)
    for rule in ("cds_qc_figure", "split_leakage", "walk_figures"):
        inputs = proc.stdout.split(f"rule {rule}:")[1].split("input:")[1].split("\n")[0]
        assert "results/cds/phiX174.tsv" not in inputs, (rule, inputs)
        assert "results/splits/phiX174/test.fa.gz" not in inputs, (rule, inputs)
        assert "results/cds/qc_summary.tsv" in inputs or "assignment.tsv" in inputs


#: a stand-in for the conda client, enough for Snakemake to plan a dry run under --sdm conda
#: (it asks for `conda info --json`, `conda --version` and the channel priority; a dry run
#: creates no environment)
CONDA_FOR_A_DRY_RUN = """#!/bin/sh
case "$1" in
  --version) echo "conda 24.11.3" ;;
  info) echo '{"conda_prefix": "/nonexistent/conda", "platform": "linux-64"}' ;;
  config) echo '{"get": {"channel_priority": "strict"}}' ;;
  *) echo "only for dry runs" >&2; exit 1 ;;
esac
"""


@pytest.mark.slow
def test_per_sample_jobs_run_the_library_with_the_right_python(tmp_path, shared_data):
    """verify_sources and extract_cds are shell: rules that run `python -m dnalm.genome.jobs`
    (no script: job, whose source Snakemake looks up for every job at DAG build;
    benchmarks/bench_dag.py): with the Python that runs Snakemake, or under --sdm conda with
    the conda env's `python`. A changed cds setting reruns the extraction, a renamed species
    does not. A wrong checksum stops the job with the sample and file named in its log and
    on the terminal, and leaves no record."""
    workdir = make_workdir(tmp_path / "wd", keep=["phiX174"], replace=slim_config())
    target = "results/cds/phiX174.tsv"
    scripts = shlex.quote(str(REPO / "workflow" / "scripts"))
    start = f"PYTHONPATH={scripts}${{PYTHONPATH:+:$PYTHONPATH}}"
    proc = snakemake(workdir, "-n", target)
    assert proc.returncode == 0, fail_message(proc)
    out = proc.stdout + proc.stderr
    own = f"{start} {shlex.quote(sys.executable)} -m dnalm.genome.jobs"
    assert f"{own} verify-sources --sample=phiX174 '--species=Escherichia phage phiX174'" in out
    assert f"{own} extract-cds --sample=phiX174 " in out

    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "conda").write_text(CONDA_FOR_A_DRY_RUN)
    (tmp_path / "bin" / "conda").chmod(0o755)
    path = f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"
    proc = snakemake(workdir, "-n", target, "--sdm", "conda", env={"PATH": path})
    assert proc.returncode == 0, fail_message(proc)
    out = proc.stdout + proc.stderr
    assert f"{start} python -m dnalm.genome.jobs verify-sources --sample=phiX174 " in out
    assert f"{start} python -m dnalm.genome.jobs extract-cds --sample=phiX174 " in out
    assert sys.executable not in out

    # what reruns the jobs is as it was with scripts: the cds and split settings (recorded
    # params), not the sample's sheet row or the Python (given as flags that are not recorded)
    proc = snakemake(workdir, target)
    assert proc.returncode == 0, fail_message(proc)
    sheet = workdir / "config/samples.tsv"
    sheet.write_text(sheet.read_text().replace("Escherichia phage phiX174", "phiX"))
    proc = snakemake(workdir, "-n", target)
    assert "Nothing to be done" in proc.stdout + proc.stderr, fail_message(proc)
    config = yaml.safe_load((workdir / "config/config.yaml").read_text())
    config["cds"]["min_length"] = 30
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(workdir, "-n", target)
    assert "Params have changed since last execution" in proc.stdout + proc.stderr

    src = shared_data / "genbank/NC_001422.gbk"
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(f"sample\tspecies\tsource\tformat\tmd5\nphiX\tX\t{src}\tgbff\t{'0' * 32}\n")
    bad = make_workdir(tmp_path / "bad", sheet=sheet, replace=slim_config())
    proc = snakemake(bad, "resources/genomes/phiX/provenance.json")
    assert proc.returncode != 0
    log = (bad / "results/logs/download/phiX.verify.log").read_text()
    assert "phiX" in log
    assert str(src) in log
    assert "0" * 32 in log
    assert "dnalm error: sample 'phiX' (primary): md5 mismatch" in proc.stderr
    assert str(src) in proc.stderr
    assert not (bad / "resources/genomes/phiX/provenance.json").exists()
