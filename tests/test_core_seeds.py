"""Seed replicates (dnalm.core.seeds): config expansion, the workflow's jobs for them, and
the comparison table that folds them back into mean +- sd rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dnalm.core.errors import ConfigError
from dnalm.core.seeds import (
    cnn_replicates,
    expand_models,
    expand_runs,
    replicate_base,
    replicate_name,
)
from dnalm.finetuning.compare import fold_replicates, summarise_runs
from tests.support.workflow_runner import REPO, make_workdir, snakemake

MODELS = {
    "gpt": {"objective": "gpt", "tokenizer": "nucleotide", "preset": "tiny", "seeds": [0, 3]},
    "mlm": {"objective": "mlm", "tokenizer": "kmer6", "preset": "tiny", "train": {"lr": 0.1}},
}


def test_models_expand_to_one_entry_per_seed():
    out = expand_models(MODELS)
    assert list(out) == ["gpt", "gpt_seed3", "mlm"]
    assert out["gpt"]["train"] == {"seed": 0}
    assert out["gpt_seed3"]["train"] == {"seed": 3}
    assert "seeds" not in out["gpt"]
    assert out["mlm"] == MODELS["mlm"]  # untouched without seeds
    assert MODELS["gpt"]["seeds"] == [0, 3]  # the config is not modified


def test_runs_fine_tune_the_pretraining_replicate_of_their_seed():
    runs = {
        "a": {"model": "gpt", "seeds": [0, 3, 7], "train": {"lr": 0.01}},
        "b": {"model": "mlm", "seeds": [1, 2]},
        "c": {"model": "gpt"},
    }
    out = expand_runs(runs, MODELS)
    assert list(out) == ["a", "a_seed3", "a_seed7", "b", "b_seed2", "c"]
    assert [out[r]["model"] for r in ("a", "a_seed3", "a_seed7")] == ["gpt", "gpt_seed3", "gpt"]
    assert out["a_seed7"]["train"] == {"lr": 0.01, "seed": 7}
    assert [out[r]["model"] for r in ("b", "b_seed2", "c")] == ["mlm", "mlm", "gpt"]
    assert out["b"]["train"] == {"seed": 1}


def test_names_and_bad_seed_lists():
    assert replicate_name("x", [4, 5], 4) == "x"
    assert replicate_name("x", [4, 5], 5) == "x_seed5"
    assert replicate_base("x_seed5") == "x"
    assert replicate_base("my_seedling") == "my_seedling"
    assert cnn_replicates({}) == {"onehot_cnn": None}
    assert cnn_replicates({"seeds": [2, 0]}) == {"onehot_cnn": 2, "onehot_cnn_seed0": 0}
    with pytest.raises(ConfigError, match=r"pretrain\.models\.gpt\.seeds: \[1, 1\] repeats"):
        expand_models({"gpt": {**MODELS["gpt"], "seeds": [1, 1]}})
    with pytest.raises(ConfigError, match=r"baselines\.onehot_cnn\.seeds"):
        cnn_replicates({"seeds": []})


def _table(rows):
    return pd.DataFrame(rows, columns=["run", "regime", "seed", "accuracy", "macro_f1", "mcc"])


def test_fold_replicates_mean_sd_and_per_seed_values():
    table = _table(
        [
            ["m_seed1", "frozen", 1, 0.70, 0.6, 0.3],
            ["m", "frozen", 0, 0.80, 0.7, 0.5],
            ["kmer4", "baseline", None, 0.76, 0.7, 0.4],
        ]
    )
    out = fold_replicates(table, "classification").set_index("run")
    assert list(out.index) == ["kmer4", "m"]  # by the seed mean: 0.76 vs 0.75
    m = out.loc["m"]
    assert math.isclose(m["accuracy"], 0.75)
    assert math.isclose(m["accuracy_sd"], np.std([0.8, 0.7], ddof=1))
    assert m["accuracy_per_seed"] == "0.8;0.7"  # in seed order
    assert (m["seeds"], m["n_seeds"], m["replicates"]) == ("0;1", 2, "m;m_seed1")
    assert math.isclose(m["mcc"], 0.4)
    assert np.isnan(out.loc["kmer4", "accuracy_sd"])


def _write_tsv(folder, ids, labels, predicted):
    folder.mkdir(parents=True)
    pd.DataFrame({"id": ids, "label": labels, "predicted": predicted}).to_csv(
        folder / "predictions.tsv", sep="\t", index=False
    )


def test_seed_mean_interval_against_the_best_baseline(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    ids = [f"s{i}" for i in range(n)]
    labels = rng.choice(["a", "b"], size=n)
    flip = {"m": 0.1, "m_seed1": 0.2, "cnn": 0.3}  # error rates
    rows = []
    for run, rate in flip.items():
        wrong = rng.random(n) < rate
        pred = np.where(wrong, np.where(labels == "a", "b", "a"), labels)
        _write_tsv(tmp_path / run, ids, labels, pred)
        regime = "baseline" if run == "cnn" else "full"
        rows.append([run, regime, 1 if run.endswith("1") else 0, float(np.mean(pred == labels))])
    table = pd.DataFrame(rows, columns=["run", "regime", "seed", "accuracy"])
    out = summarise_runs(table, {r: tmp_path / r for r in flip}, "classification", n_boot=500)
    m = out.set_index("run").loc["m"]
    expected = np.mean(table["accuracy"][:2]) - table["accuracy"][2]
    assert math.isclose(m["delta_vs_best_baseline"], expected, abs_tol=1e-9)
    assert 0 < m["delta_ci95_low"] < m["delta_vs_best_baseline"] < m["delta_ci95_high"]
    assert m["ci95_low"] < m["accuracy"] < m["ci95_high"]


def test_seeded_entries_are_jobs_of_the_workflow(tmp_path):
    """Dry run of the embedded demo with seed replicates of a model, a run and the CNN."""
    workdir = make_workdir(
        tmp_path / "wd",
        {
            "pretrain": {"models": {"gpt_nucleotide": {"seeds": [0, 1]}}},
            "finetune": {"runs": {"gpt_nucleotide_frozen": {"seeds": [0, 1]}}},
            "baselines": {"onehot_cnn": {"seeds": [0, 5]}},
        },
        test_config=REPO / "tests" / "config" / "demo.yaml",
    )
    proc = snakemake(workdir, "-n", "--printshellcmds", "--verbose", timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    for path in (
        "results/models/gpt_nucleotide_seed1/metrics.json",
        "results/finetune/tf_binding/gpt_nucleotide_frozen_seed1/metrics.json",
        "results/finetune/tf_binding/onehot_cnn_seed5/metrics.json",
        "results/finetune/tf_binding/comparison.tsv",
    ):
        assert path in out, path
    # replicates are not probed or sampled by default; unseeded runs get no replicate
    assert "embeddings/pretrained/gpt_nucleotide_seed1" not in out
    assert "gpt_nucleotide_random_seed" not in out
    bad = make_workdir(
        tmp_path / "bad",
        {"finetune": {"runs": {"x_seed2": {"model": "gpt_nucleotide"}}}},
        test_config=REPO / "tests" / "config" / "demo.yaml",
    )
    proc = snakemake(bad, "-n", timeout=300)
    assert proc.returncode != 0
    assert "x_seed2" in proc.stdout + proc.stderr
