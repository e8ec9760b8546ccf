"""A benchmark suite through the real workflow on the embedded demo: a Genomic Benchmarks
coordinates set (tests/support/suites.py) whose reference genome is served by a local HTTP
server is downloaded by download_task_file, resolved by suite_task, and scored by the k-mer
baseline and the one-hot CNN into a comparison table that names the suite's metric, audited
for leakage against its own train split (suite_audit) and tabulated (suite_table)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.support import suites as fx
from tests.support.http_server import LocalHTTPServer
from tests.support.workflow_runner import REPO, fail_message, make_workdir, snakemake

TASK = "gb_demo_set"
TABLE = f"results/finetune/{TASK}/comparison.tsv"
AUDIT = "results/suites/gb/audit.tsv"
SUITE_TABLE = "results/suites/gb/table.tsv"


def workdir(tmp_path, genome_url: str, chrom: str):
    fx.genomic_benchmarks_set(tmp_path / "gb" / "demo_set", genome_url, chrom)
    replace = {
        "splits": {"method": "identity"},
        "tokenizers": {"nucleotide": {"type": "nucleotide"}},
        "corpora": {"cds": {"source": "cds"}},
        "reproduce": {"rows": []},
        "tasks": {
            "species_fragments": {"enabled": False},
            "tf_binding": {"sequences": None},
            "sequence_tasks": {},
        },
        "suites": {
            "gb": {
                "format": "genomic_benchmarks",
                "source": str(tmp_path / "gb"),
                "revision": "v0",
                "tasks": ["demo_set"],
            }
        },
        "pretrain": {"models": {}, "threads": 1},
        "models": {"external": {}},
        "finetune": {"runs": {}, "train": {}, "per_task": {}, "gpus": 0, "threads": 1},
        "baselines": {
            "onehot_cnn": {"enabled": True, "train": {"max_epochs": 1, "channels": 16}},
            "kmer": {"enabled": True, "k": [3]},
        },
        "probe": {"models": [], "random_init": False, "finetuned": [], "external": {}},
        "generate": {"enabled": False},
        "interpret": {"enabled": False},
        "dnatext": {"enabled": False},
        "vep": {"enabled": False},
        "walks": {"enabled": False},
        "sweeps": {},
    }
    return make_workdir(
        tmp_path / "wd", test_config=REPO / "tests/config/demo.yaml", replace=replace
    )


@pytest.fixture(scope="module")
def yeast(shared_data):
    return fx.yeast_reference(shared_data)


def test_suite_task_is_planned_without_the_network(tmp_path, yeast):
    _, chrom = yeast
    wd = workdir(tmp_path, "https://ftp.example.org/pub/IV.fa.gz", chrom)
    proc = snakemake(wd, "-n", TABLE, AUDIT, SUITE_TABLE, "--quiet", "rules")
    assert proc.returncode == 0, fail_message(proc)
    rules = set(proc.stdout.split()) | set(proc.stderr.split())
    assert {"download_task_file", "suite_task", "baseline_kmer", "baseline_cnn"} <= rules
    assert {"suite_audit", "suite_table"} <= rules
    assert not rules & {"pretrain", "finetune", "sequence_task", "extract_cds"}


def test_suite_task_runs_into_a_comparison_table_naming_its_metric(tmp_path, yeast):
    gz, chrom = yeast
    with LocalHTTPServer(tmp_path / "www") as server:
        url = server.add_file("pub/release-1/Saccharomyces_cerevisiae.IV.fa.gz", gz)
        wd = workdir(tmp_path, url, chrom)
        proc = snakemake(wd, TABLE, AUDIT, SUITE_TABLE)
    assert proc.returncode == 0, fail_message(proc)
    meta = json.loads((wd / f"results/tasks/{TASK}/task.json").read_text())
    assert meta["params"]["suite"]["metric"] == "accuracy"
    assert meta["n_rows"]["test"] == 40  # the suite's own test split, whole
    table = pd.read_csv(wd / TABLE, sep="\t")
    assert set(table["run"]) == {"kmer3", "onehot_cnn"}  # the two baselines
    assert set(table["suite_metric"]) == {"accuracy"}
    assert set(table["suite"]) == {"gb (genomic_benchmarks)"}
    assert table["accuracy"].between(0.0, 1.0).all()
    assert "mcc" in table.columns
    # the audit: every run scored on all 40 test items, as the comparison table scored it
    audit = pd.read_csv(wd / AUDIT, sep="\t")
    assert set(audit["reference"]) == {"suite train split"}  # no pretrained model here
    assert set(audit["run"]) == {"kmer3", "onehot_cnn"}
    assert set(audit["n_test"]) == {40}
    accuracy = table.set_index("run")["accuracy"]
    for _, row in audit.iterrows():
        assert row["metric_all"] == pytest.approx(accuracy[row["run"]], abs=1e-6)
        assert row["n_below_50"] == round(40 * (1 - row["ge_50"]))
    # the suite table: one column for the task, its runs as rows, the metric named
    suite = pd.read_csv(wd / SUITE_TABLE, sep="\t", dtype=str, keep_default_na=False)
    assert list(suite.columns) == ["row", "source", TASK]
    assert set(suite["row"]) == {"metric", "kmer3", "onehot_cnn"}
    assert suite.set_index("row").loc["metric", TASK].startswith("accuracy")
    assert (wd / "results/figures/suites/gb/table.png").stat().st_size > 1000
