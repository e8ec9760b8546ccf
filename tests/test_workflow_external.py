"""An external model in the real workflow on the embedded demo (tests/data): the NT-v1-shaped
fixture (tests/support/hub_fixtures.py) named by models.external is planned for fetching,
fine-tuning and probing, without pretraining; the fetch rule records a Hub snapshot offline.
The shared-data run fetches, fine-tunes and probes the same fixture and checks its rows
(tests/test_workflow_e2e.py::test_external_models_sit_in_the_same_tables)."""

from __future__ import annotations

import json

from tests.support import hub_fixtures as hf
from tests.support.workflow_runner import REPO, fail_message, make_workdir, snakemake

TARGETS = (
    "results/finetune/species_fragments/comparison.tsv",
    "results/probe/probe_table.tsv",
)


def workdir(tmp_path, external: dict | None = None):
    nt = hf.nt_v1_folder(tmp_path / "nt_v1", context=128)
    replace = {
        "splits": {"method": "identity"},
        "tokenizers": {"nucleotide": {"type": "nucleotide"}},
        "corpora": {"cds": {"source": "cds"}},
        "reproduce": {"rows": []},
        "tasks": {
            "species_fragments": {"n_train": 60, "n_validation": 20, "n_test": 60},
            "tf_binding": {"sequences": None},
            "sequence_tasks": {},
        },
        "pretrain": {"models": {}, "threads": 1},
        "models": {"external": {"nt": {"source": str(nt), "objective": "mlm"}, **(external or {})}},
        "finetune": {
            "runs": {"nt_frozen": {"model": "nt", "regime": "frozen"}},
            "train": {"max_epochs": 1, "batch_size": 16, "device": "cpu", "threads": 1},
            "per_task": {},
            "gpus": 0,
            "threads": 1,
        },
        "baselines": {"onehot_cnn": {"enabled": False}, "kmer": {"enabled": True, "k": [3]}},
        "probe": {
            "models": [],
            "random_init": False,
            "finetuned": [],
            "external": {"nt_probe": {"model": "nt", "batch_size": 32}},
            "umap": {"max_points": 60},
        },
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


def test_external_model_rules_are_planned(tmp_path):
    wd = workdir(tmp_path)
    proc = snakemake(wd, "-n", *TARGETS, "--quiet", "rules")
    assert proc.returncode == 0, fail_message(proc)
    rules = set(proc.stdout.split()) | set(proc.stderr.split())
    assert {"fetch_external_model", "finetune", "embed", "probe"} <= rules
    assert "pretrain" not in rules


def test_fetch_rule_records_a_hub_snapshot_offline(tmp_path):
    """A hub id with pinned remote code, from a Hugging Face cache with HF_HUB_OFFLINE=1: the
    local rule records the snapshot's commit and the sha256 of its code files without
    importing them; a revision the cache lacks fails the job naming the entry, no record."""
    home, marker = tmp_path / "hf", tmp_path / "marker"
    folder = hf.remote_code_folder(tmp_path / "v2_src", marker=marker)
    hf.hub_cache(home, "org/nt-v2-tiny", folder, hf.REVISION)
    entry = {"source": "org/nt-v2-tiny", "revision": hf.REVISION, "trust_remote_code": True}
    missing = {**entry, "revision": "e" * 40}
    wd = workdir(tmp_path, {"v2": entry, "v2_missing": missing})
    env = {"HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    proc = snakemake(wd, "resources/external/v2/provenance.json", env=env)
    assert proc.returncode == 0, fail_message(proc)
    record = json.loads((wd / "resources/external/v2/provenance.json").read_text())
    assert record["commit"] == hf.REVISION
    assert record["files"]["code"] == hf.fixture_code_hashes(folder)
    assert not marker.exists()  # recorded, never imported
    proc = snakemake(wd, "resources/external/v2_missing/provenance.json", env=env)
    assert proc.returncode != 0
    log = (wd / "results/logs/external/v2_missing.log").read_text()
    assert "models.external.v2_missing: org/nt-v2-tiny at revision eeee" in log
    assert "is not in the Hugging Face cache" in log
    assert not (wd / "resources/external/v2_missing/provenance.json").exists()
