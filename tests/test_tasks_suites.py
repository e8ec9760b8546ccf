"""Benchmark suites as task sources (dnalm.tasks.suites, dnalm.plan.suites): each format,
built in its exact layout from the shared data (tests/support/suites.py), resolves to the
sequences an independent reference gives, keeps the suite's own splits, names the suite's
metric, and refuses bad inputs naming the file, line or key, with no partial output."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dnalm.core.errors import ConfigError, DownloadError, InputFormatError
from dnalm.finetuning.compare import name_suite_metric
from dnalm.genome import taskfiles
from dnalm.kinds.suites import SUITE_FORMATS
from dnalm.kinds.tasks import TASK_KINDS
from dnalm.plan import load
from dnalm.plan.plan import wildcards
from dnalm.tasks.suites import READERS, build_suite_task
from tests.support import suites as fx
from tests.support.http_server import LocalHTTPServer
from tests.support.workflow_runner import REPO, demo_config

DOWNLOAD = {"retries": 1, "backoff_seconds": 0.0, "timeout_seconds": 10}


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)  # the demo config's relative paths are from the repository root


@pytest.fixture(scope="module")
def yeast(shared_data):
    return fx.yeast_reference(shared_data)


def _suite_plan(suites: dict):
    return load(demo_config(suites=suites))


def _download_genome(plan, task: str, dest_root):
    """What the rule download_task_file does for each reference of `task`: the real
    downloader, to the path the plan names."""
    spec = plan.suite_tasks[task]
    genomes = {}
    for download in spec["downloads"].values():
        dest = dest_root / download.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        taskfiles.fetch(download.file, str(dest), DOWNLOAD)
        genomes.update({u: str(dest) for u, p in spec["genomes"].items() if p == download.path})
    return genomes


def _read(out_dir):
    df = pd.read_csv(out_dir / "data.tsv", sep="\t", dtype=str, keep_default_na=False)
    meta = json.loads((out_dir / "task.json").read_text())
    return df, meta


def test_schema_formats_are_the_registry_and_each_has_a_reader():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    entry = schema["properties"]["suites"]["additionalProperties"]["properties"]
    assert entry["format"]["enum"] == list(SUITE_FORMATS.names())
    assert set(READERS) == set(SUITE_FORMATS.names())
    for fmt in SUITE_FORMATS:  # each official metric is one our classification runs report
        assert fmt.metric in TASK_KINDS.get("classification").metrics


def test_genomic_benchmarks_coordinates_resolve_against_the_downloaded_genome(tmp_path, yeast):
    """Both strands, 0-based half-open coordinates, the record renamed by extra_processing;
    the suite's train/test kept, validation carved from train only, accuracy named."""
    gz, chrom = yeast
    with LocalHTTPServer(tmp_path / "www") as server:
        url = server.add_file("pub/yeast/Saccharomyces_cerevisiae.R64.dna.IV.fa.gz", gz)
        expected = fx.genomic_benchmarks_set(tmp_path / "gb" / "demo_set", url, chrom)
        plan = _suite_plan({"gb": {"format": "genomic_benchmarks", "source": str(tmp_path / "gb"),
                                   "tasks": ["demo_set"], "revision": "v0"}})  # fmt: skip
        assert "gb_demo_set" in plan.task_names()
        assert plan.task_kind("gb_demo_set") == "classification"
        inputs = plan.suite_task_inputs(wildcards(stask="gb_demo_set"))
        (genome_path,) = inputs["genomes"]
        assert genome_path.startswith("resources/task_files/")
        assert any(t.url == url for t in plan.task_files.values())  # download_task_file's
        genomes = _download_genome(plan, "gb_demo_set", tmp_path)
    spec = plan.suite_task_params("gb_demo_set")
    build_suite_task(tmp_path / "out", spec, genomes)
    df, meta = _read(tmp_path / "out")
    assert set(df["id"]) == set(expected)
    for row in df.itertuples():
        want = expected[row.id]
        assert row.sequence == want["sequence"], row.id
        assert row.label == want["label"]
        if want["split"] == "test":
            assert row.split == "test"
        else:
            assert row.split in ("train", "validation")
    assert set(df["strand"]) == {"+", "-"}
    n_val = (df["split"] == "validation").sum()
    assert n_val == 8  # 10% of each class's 40 train items
    assert meta["params"]["suite"] == {
        "suite": "gb", "format": "genomic_benchmarks", "task": "demo_set",
        "source": str(tmp_path / "gb"), "revision": "v0", "metric": "accuracy",
    }  # fmt: skip
    # the carving is seeded: the same validation items again
    build_suite_task(tmp_path / "again", spec, genomes)
    again, _ = _read(tmp_path / "again")
    assert list(again["id"][again["split"] == "validation"]) == list(
        df["id"][df["split"] == "validation"]
    )


def test_genomic_benchmarks_local_genome_instead_of_the_url(tmp_path, yeast):
    gz, chrom = yeast
    (tmp_path / "IV.fa.gz").write_bytes(gz)
    url = "https://ftp.example.org/never/fetched.fa.gz"
    expected = fx.genomic_benchmarks_set(
        tmp_path / "gb" / "s", url, chrom, n={"train": 6, "test": 4}
    )
    plan = _suite_plan({"gb": {"format": "genomic_benchmarks", "source": str(tmp_path / "gb"),
                               "tasks": ["s"], "genome": str(tmp_path / "IV.fa.gz")}})  # fmt: skip
    spec = plan.suite_task_params("gb_s")
    assert not plan.suite_tasks["gb_s"]["downloads"]
    build_suite_task(tmp_path / "out", spec, spec["genomes"])
    df, _ = _read(tmp_path / "out")
    assert dict(zip(df["id"], df["sequence"], strict=True)) == {
        k: v["sequence"] for k, v in expected.items()
    }


def test_nt_downstream_parquet_keeps_its_split_and_names_mcc(tmp_path, shared_data):
    items = fx.chipseq_items(shared_data)
    fx.nt_downstream_set(tmp_path / "nt" / "chip", items)
    plan = _suite_plan({"nt": {"format": "nt_downstream", "source": str(tmp_path / "nt"),
                               "tasks": ["chip"]}})  # fmt: skip
    # an ordinary task: every run that does not restrict its tasks, and the comparison
    assert "nt_chip" in plan.run_tasks("gpt_nucleotide_frozen")
    assert "results/finetune/nt_chip/comparison.tsv" in plan.targets()
    build_suite_task(tmp_path / "out", plan.suite_task_params("nt_chip"))
    df, meta = _read(tmp_path / "out")
    got = {(r.sequence, r.label, r.split == "test") for r in df.itertuples()}
    want = {(s.upper(), str(lab), split == "test") for split in ("train", "test")
            for _, s, lab in items[split]}  # fmt: skip
    assert got == want
    assert set(df["id"]) == {k for split in ("train", "test") for k, _, _ in items[split]}
    assert meta["params"]["suite"]["metric"] == "mcc"


def test_a_suite_at_a_url_is_downloaded_checked_and_read(tmp_path, shared_data, monkeypatch):
    """An NT-style suite served over HTTP: each file a task file of download_task_file,
    checked against the sha256 keyed by <task>/<file>; a wrong one is refused naming the
    key, with nothing left behind."""
    items = fx.chipseq_items(shared_data, 10, 0, 6)
    fx.nt_downstream_set(tmp_path / "www" / "nt" / "chip", items)
    train = (tmp_path / "www" / "nt" / "chip" / "train.parquet").read_bytes()
    with LocalHTTPServer(tmp_path / "www") as server:
        entry = {"format": "nt_downstream", "source": server.url("nt"), "tasks": ["chip"],
                 "sha256": {"chip/train.parquet": hashlib.sha256(train).hexdigest()}}  # fmt: skip
        plan = _suite_plan({"nt": entry})
        inputs = plan.suite_task_inputs(wildcards(stask="nt_chip"))
        assert all(inputs[k].startswith("resources/task_files/") for k in ("train", "test"))
        monkeypatch.chdir(tmp_path)  # the task files' relative paths land here
        spec = plan.suite_task_params("nt_chip")
        for download in plan.suite_tasks["nt_chip"]["downloads"].values():
            Path(download.path).parent.mkdir(parents=True, exist_ok=True)
            taskfiles.fetch(download.file, download.path, DOWNLOAD)
        build_suite_task(tmp_path / "out", spec)
        df, _ = _read(tmp_path / "out")
        assert sorted(df["sequence"]) == sorted(
            s.upper() for split in ("train", "test") for _, s, _ in items[split]
        )

        monkeypatch.chdir(REPO)
        entry["sha256"] = {"chip/test.parquet": "f" * 64}
        plan = _suite_plan({"nt": entry})
        (bad,) = [d for d in plan.suite_tasks["nt_chip"]["downloads"].values() if d.file.sha256]
        dest = tmp_path / "bad" / bad.path
        dest.parent.mkdir(parents=True)
        with pytest.raises(DownloadError) as err:
            taskfiles.fetch(bad.file, str(dest), DOWNLOAD)
        assert "suites.nt.tasks[0] (test.parquet)" in str(err.value)
        assert not list(dest.parent.iterdir())


def test_a_hub_dataset_is_read_at_its_pinned_revision():
    hub = "https://huggingface.co/datasets/InstaDeepAI/nucleotide_transformer_downstream_tasks"
    plan = _suite_plan(
        {"nt": {"format": "nt_downstream", "source": hub, "revision": "e8674d5", "tasks": ["H3"]}}
    )
    urls = sorted(t.url for t in plan.task_files.values() if "huggingface" in t.url)
    assert urls == [
        f"{hub}/resolve/e8674d5/H3/test.parquet",
        f"{hub}/resolve/e8674d5/H3/train.parquet",
    ]


def test_gue_dev_split_is_the_validation_split(tmp_path, shared_data):
    items = fx.chipseq_items(shared_data)
    fx.gue_set(tmp_path / "GUE" / "tf" / "0", items)
    plan = _suite_plan({"gue": {"format": "gue", "source": str(tmp_path / "GUE"),
                                "tasks": ["tf/0"]}})  # fmt: skip
    assert "gue_tf_0" in plan.task_names()
    build_suite_task(tmp_path / "out", plan.suite_task_params("gue_tf_0"))
    df, meta = _read(tmp_path / "out")
    ours = {"train": "train", "dev": "validation", "test": "test"}
    got = sorted(zip(df["sequence"], df["label"], df["split"], strict=True))
    want = sorted(
        (s.upper(), str(lab), ours[split]) for split in ours for _, s, lab in items[split]
    )
    assert got == want
    assert meta["params"]["suite"]["metric"] == "mcc"


def test_csv_folder_without_dev_carves_validation_from_train(tmp_path, shared_data):
    items = fx.chipseq_items(shared_data)
    fx.gue_set(tmp_path / "mine" / "chip", items, dev=False)
    plan = _suite_plan({"mine": {"format": "csv", "source": str(tmp_path / "mine"),
                                 "tasks": ["chip"], "validation": 0.25, "seed": 3}})  # fmt: skip
    build_suite_task(tmp_path / "out", plan.suite_task_params("mine_chip"))
    df, _ = _read(tmp_path / "out")
    test = {s.upper() for _, s, _ in items["test"]}
    assert set(df.loc[df["split"] == "test", "sequence"]) == test
    assert (df["split"] == "validation").sum() == 30  # a quarter of 2 x 60 train items


def test_suite_metric_is_named_in_the_comparison_table():
    table = pd.DataFrame({"run": ["kmer3"], "accuracy": [0.8], "mcc": [0.6]})
    out = name_suite_metric(
        table, {"suite": "nt", "suite_format": "nt_downstream", "metric": "mcc"}
    )
    assert out.loc[0, "suite_metric"] == "mcc"
    assert out.loc[0, "suite"] == "nt (nt_downstream)"
    assert name_suite_metric(table, {}).equals(table)  # a task of no suite: unchanged


# ----------------------------------------------------------------------------- bad inputs


def test_missing_class_file_stops_the_plan_naming_the_file(tmp_path, yeast):
    _, chrom = yeast
    fx.genomic_benchmarks_set(tmp_path / "gb" / "s", "http://x.org/g.fa.gz", chrom,
                              n={"train": 4, "test": 2})  # fmt: skip
    (tmp_path / "gb" / "s" / "test" / "negative.csv.gz").unlink()
    with pytest.raises(ConfigError) as err:
        _suite_plan({"gb": {"format": "genomic_benchmarks", "source": str(tmp_path / "gb"),
                            "tasks": ["s"]}})  # fmt: skip
    msg = str(err.value)
    assert "suites.gb.tasks[0]" in msg
    assert str(tmp_path / "gb" / "s" / "test" / "negative.csv.gz") in msg
    assert "metadata.yaml" in msg  # the layout it needs


def test_coordinates_past_the_contig_end_fail_naming_the_line_no_output(tmp_path, yeast):
    gz, chrom = yeast
    (tmp_path / "IV.fa.gz").write_bytes(gz)
    folder = tmp_path / "gb" / "s"
    fx.genomic_benchmarks_set(folder, "http://x.org/g.fa.gz", chrom, n={"train": 4, "test": 2})
    bad = pd.read_csv(folder / "train" / "positive.csv.gz")
    bad.loc[2, "end"] = len(chrom) + 5
    bad.loc[2, "start"] = len(chrom) - 10
    bad.to_csv(folder / "train" / "positive.csv.gz", index=False, compression="gzip")
    plan = _suite_plan({"gb": {"format": "genomic_benchmarks", "source": str(tmp_path / "gb"),
                               "tasks": ["s"], "genome": str(tmp_path / "IV.fa.gz")}})  # fmt: skip
    spec = plan.suite_task_params("gb_s")
    with pytest.raises(InputFormatError) as err:
        build_suite_task(tmp_path / "out", spec, spec["genomes"])
    msg = str(err.value)
    assert f"{folder / 'train' / 'positive.csv.gz'}:4" in msg  # header + 3rd row
    assert f"length {len(chrom)}" in msg
    assert "end exclusive" in msg
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_region_the_genome_lacks_fails_naming_the_line(tmp_path, yeast):
    gz, chrom = yeast
    (tmp_path / "IV.fa.gz").write_bytes(gz)
    folder = tmp_path / "gb" / "s"
    fx.genomic_benchmarks_set(folder, "http://x.org/g.fa.gz", chrom, n={"train": 4, "test": 2})
    bad = pd.read_csv(folder / "test" / "negative.csv.gz")
    bad.loc[1, "region"] = "chrV"
    bad.to_csv(folder / "test" / "negative.csv.gz", index=False, compression="gzip")
    plan = _suite_plan({"gb": {"format": "genomic_benchmarks", "source": str(tmp_path / "gb"),
                               "tasks": ["s"], "genome": str(tmp_path / "IV.fa.gz")}})  # fmt: skip
    spec = plan.suite_task_params("gb_s")
    with pytest.raises(InputFormatError) as err:
        build_suite_task(tmp_path / "out", spec, spec["genomes"])
    msg = str(err.value)
    assert f"{folder / 'test' / 'negative.csv.gz'}:3: region 'chrV'" in msg
    assert "extra_processing" in msg
    assert not (tmp_path / "out").exists()


def test_html_instead_of_the_genome_and_a_wrong_sha256_are_refused(tmp_path, yeast):
    gz, chrom = yeast
    with LocalHTTPServer(tmp_path / "www") as server:
        html = server.add_file("login/genome.fa.gz", "<!DOCTYPE html><html>sign in</html>")
        fx.genomic_benchmarks_set(tmp_path / "gb" / "s", html, chrom, n={"train": 4, "test": 2})
        plan = _suite_plan({"gb": {"format": "genomic_benchmarks", "source": str(tmp_path / "gb"),
                                   "tasks": ["s"]}})  # fmt: skip
        with pytest.raises(DownloadError) as err:
            _download_genome(plan, "gb_s", tmp_path)
        assert "suites.gb" in str(err.value)
        assert "HTML" in str(err.value)
        assert not list((tmp_path / "resources").rglob("genome.fa.gz*"))

        good = server.add_file("pub/IV.fa.gz", gz)
        fx.genomic_benchmarks_set(tmp_path / "gb2" / "s", good, chrom, n={"train": 4, "test": 2})
        plan = _suite_plan({"gb2": {"format": "genomic_benchmarks", "source": str(tmp_path / "gb2"),
                                    "tasks": ["s"], "sha256": {"IV.fa.gz": "0" * 64}}})  # fmt: skip
        with pytest.raises(DownloadError) as err:
            _download_genome(plan, "gb2_s", tmp_path)
        msg = str(err.value)
        assert "suites.gb2" in msg
        assert "sha256" in msg
        assert not list((tmp_path / "resources").rglob("IV.fa.gz*"))


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"source": "/nonexistent/suite"}, "suites.s.source"),
        ({"tasks": ["nosuch"]}, "suites.s.tasks[0]"),
        ({"format": "genomic_benchmarks", "source": "https://example.org/gb"}, "suites.s.source"),
        ({"source": "https://huggingface.co/datasets/org/suite"}, "suites.s.revision"),
        ({"sha256": {"other.fa.gz": "a" * 64}}, "suites.s.sha256"),
    ],
)
def test_bad_suite_entries_stop_the_plan_naming_the_key(tmp_path, shared_data, entry, key):
    fx.gue_set(tmp_path / "g" / "t", fx.chipseq_items(shared_data, 4, 2, 2))
    spec = {"format": "gue", "source": str(tmp_path / "g"), "tasks": ["t"], **entry}
    with pytest.raises(ConfigError) as err:
        _suite_plan({"s": spec})
    assert key in str(err.value)


def test_suite_task_name_taken_by_a_sequence_task_is_refused(tmp_path, shared_data):
    fx.gue_set(tmp_path / "g" / "mafk", fx.chipseq_items(shared_data, 4, 2, 2))
    over = {"suites": {"oct4_vs": {"format": "gue", "source": str(tmp_path / "g"),
                                   "tasks": ["mafk"]}}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"suites.oct4_vs.tasks\[0\]: the task name"):
        load(demo_config(**over))
