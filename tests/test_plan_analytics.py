"""The plan of checkpoint analytics: the runs that keep their checkpoints, the targets, the
inputs where the probe and vep stages are on or off, and each config error named at load
(without Snakemake)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnalm.core.errors import ConfigError
from dnalm.plan import load
from dnalm.plan.plan import wildcards
from tests.support.workflow_runner import demo_config

REPO = Path(__file__).resolve().parents[1]
RUN = "results/analytics/runs/gpt_nucleotide"
ON = {"enabled": True, "runs": ["gpt_nucleotide"], "sweeps": ["tiny_gpt"]}


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)


def test_plan_turns_on_keep_checkpoints_and_names_the_key_at_fault():
    plan = load(demo_config(analytics=ON))
    assert plan.pretrain_train_cfg("gpt_nucleotide")["keep_checkpoints"] is True
    assert "keep_checkpoints" not in plan.pretrain_train_cfg("gpt_codon")
    targets = plan.targets()
    assert f"{RUN}/correlations.tsv" in targets
    assert "results/figures/analytics/sweeps/tiny_gpt.png" in targets
    off = load(demo_config(analytics={"enabled": False}))
    assert not [t for t in off.targets() if "analytics" in t]
    assert "keep_checkpoints" not in off.pretrain_train_cfg("gpt_nucleotide")
    with pytest.raises(ConfigError, match=r"analytics\.runs: 'nope' is not under pretrain\.models"):
        load(demo_config(analytics={"enabled": True, "runs": ["nope"]}))
    with pytest.raises(ConfigError, match=r"analytics\.runs: 'tiny_gpt' .*analytics\.sweeps"):
        load(demo_config(analytics={"enabled": True, "runs": ["tiny_gpt"]}))
    with pytest.raises(ConfigError, match=r"analytics\.sweeps: 'nope' is not under sweeps"):
        load(demo_config(analytics={"enabled": True, "sweeps": ["nope"]}))
    one = {"objective": "gpt", "tokenizer": "nucleotide", "presets": ["tiny"], "budgets": [4096]}
    with pytest.raises(
        ConfigError, match=r"analytics\.sweeps: sweep 'one' has 1 run; .*two or more"
    ):
        load(demo_config(sweeps={"one": one}, analytics={"enabled": True, "sweeps": ["one"]}))
    with pytest.raises(
        ConfigError, match=r"analytics\.enabled is true, but analytics\.runs and analytics\.sweeps"
    ):
        load(demo_config(analytics={"enabled": True, "runs": [], "sweeps": []}))


def test_inputs_follow_the_probe_and_vep_stages():
    plan = load(demo_config(analytics=ON))
    inputs = plan.analytics_inputs(wildcards(model="gpt_nucleotide"))
    assert inputs["gpt_nucleotide_run"] == "results/models/gpt_nucleotide/run.json"
    assert inputs["probe_task"] == "results/tasks/species_fragments/data.tsv"
    assert inputs["simulated"] == "results/vep/spyogenes/variants.tsv"
    sweep = plan.analytics_inputs(wildcards(sweep="tiny_gpt"))
    assert len([k for k in sweep if k.endswith("_weights")]) == 3
    assert len(plan.analytics_model_dirs(wildcards(sweep="tiny_gpt"))) == 3
    settings = plan.analytics_settings()
    assert settings["probe"]["cv_folds"] == 5
    assert settings["probe"]["pooling"] == "mean"  # the demo's list's first: the main embedding
    assert settings["vep"]["window"] == 128
    off = load(demo_config(analytics=ON, vep={"enabled": False}, probe={"enabled": False}))
    inputs = off.analytics_inputs(wildcards(model="gpt_nucleotide"))
    assert "probe_task" not in inputs
    assert "simulated" not in inputs
