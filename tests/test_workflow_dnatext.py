"""The dnatext stage's jobs in a dry run of the real workflow. The stage itself runs in the
shared-data run (tests/test_workflow_e2e.py::test_dnatext_corpus_models_and_evaluation: the
paired corpus, the three models, the evaluation table) and in the embedded demo, whose species
probe embeds the fragments with the three models (tests/test_readme.py)."""

from __future__ import annotations

from tests.support.workflow_runner import fail_message, make_workdir, snakemake


def test_gpu_stages_declare_their_gpu_in_a_dry_run(tmp_path, shared_data):
    """A dry run shows the `gpu` resource of the attribution and DNA+text jobs when their
    device may be a GPU (so SLURM gives them one and a local run gives each its own), and
    none for the CPU-only one-hot CNN."""
    import re

    wd = make_workdir(
        tmp_path / "wd",
        {"interpret": {"device": "cuda"}, "dnatext": {"device": "auto", "probe": True}},
    )
    proc = snakemake(
        wd,
        "-n",
        "--forceall",
        "results/interpret/tf_binding/onehot_cnn/summary.tsv",
        "results/dnatext/evaluation.tsv",
        timeout=300,
    )
    assert proc.returncode == 0, fail_message(proc)
    jobs = re.findall(r"\nrule (\w+):.*?\n\s+resources: ([^\n]*)", proc.stdout, flags=re.S)
    resources = {rule: res.split(", ") for rule, res in jobs}
    for rule in ("interpret", "dnatext_train"):
        assert "gpu=1" in resources[rule], (rule, resources.get(rule))
    assert "gpu=0" in resources["baseline_cnn"], resources
