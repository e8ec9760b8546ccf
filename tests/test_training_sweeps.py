"""Scaling sweeps (dnalm.training.sweeps): the `sweeps` grid becomes pretrain.models entries
with deterministic names and max_steps from the token budget; a budget under one optimizer
step, an unknown preset and a name used twice stop the workflow before any job."""

from __future__ import annotations

import math

import pytest

from dnalm.core.errors import ConfigError
from dnalm.training.sweeps import (
    budget_label,
    expand_sweeps,
    non_embedding_params,
    size_label,
)
from tests.support.workflow_runner import make_workdir, snakemake


def config(sweep: dict, models: dict | None = None, **train) -> dict:
    return {
        "tokenizers": {"nucleotide": {"type": "nucleotide"}},
        "corpora": {"cds": {"source": "cds"}},
        "corpus": {"block_size": 128},
        "pretrain": {"models": models or {}, "train": {"micro_batch_size": 8, **train}},
        "sweeps": {"s": {"objective": "gpt", "tokenizer": "nucleotide", **sweep}},
    }


def test_labels():
    assert budget_label(50_000) == "50k"
    assert budget_label(2_000_000) == "2M"
    assert budget_label(1_500) == "1500"
    assert size_label("tiny", {"d_model": 32, "n_layer": 1}) == "tiny-L1-D32"


def test_grid_names_and_steps_from_token_budgets():
    cfg = config({"presets": ["tiny"], "architectures": [{"n_layer": 1}],
                  "budgets": [8000, 16000], "seeds": [0, 1]}, grad_accum=2)  # fmt: skip
    points = expand_sweeps(cfg, {})["s"]
    assert [p.model for p in points] == [
        "sweep_s_tiny_8k_s0", "sweep_s_tiny_8k_s1", "sweep_s_tiny_16k_s0", "sweep_s_tiny_16k_s1",
        "sweep_s_tiny-L1_8k_s0", "sweep_s_tiny-L1_8k_s1", "sweep_s_tiny-L1_16k_s0",
        "sweep_s_tiny-L1_16k_s1",
    ]  # fmt: skip
    # one step = 8 windows x 2 micro-batches x 128 tokens = 2048 tokens
    assert [p.max_steps for p in points[:4]] == [4, 4, 8, 8]
    spec = points[5].spec
    assert spec == {
        "objective": "gpt", "tokenizer": "nucleotide", "corpus": "cds", "preset": "tiny",
        "overrides": {"n_layer": 1}, "train": {"max_steps": 4, "seed": 1},
    }  # fmt: skip


def test_tokens_per_param_uses_the_non_embedding_parameters():
    # tiny GPT, width 32: per layer 4 x 32^2 (attention) + 2 x 32 x 128 (MLP) + 2 LayerNorms
    # (weight and bias, 4 x 32); two layers and the final LayerNorm (2 x 32)
    n32 = 2 * (4 * 32**2 + 2 * 32 * 128 + 4 * 32) + 2 * 32
    assert non_embedding_params("gpt", "tiny", {"d_model": 32}) == n32 == 24_896
    cfg = config({"architectures": [{"d_model": 32}, {"d_model": 64}], "tokens_per_param": [2, 20]})
    points = expand_sweeps(cfg, {})["s"]
    assert [p.model for p in points] == [
        "sweep_s_tiny-D32_tpp2", "sweep_s_tiny-D32_tpp20",
        "sweep_s_tiny-D64_tpp2", "sweep_s_tiny-D64_tpp20",
    ]  # fmt: skip
    n64 = non_embedding_params("gpt", "tiny", {"d_model": 64})
    assert n64 == 98_944
    assert [p.tokens for p in points] == [2 * n32, 20 * n32, 2 * n64, 20 * n64]
    tokens = (2 * n32, 20 * n32, 2 * n64, 20 * n64)
    assert [p.max_steps for p in points] == [math.ceil(t / 1024) for t in tokens]


@pytest.mark.parametrize(
    ("sweep", "models", "message"),
    [
        ({"presets": ["tiny"], "budgets": [1000]}, None,
         "sweeps.s.budgets[0]: 1,000 tokens for size tiny is less than one optimizer step "
         "(1,024 tokens"),
        ({"presets": ["tiny"], "tokens_per_param": [0.001]}, None,
         "sweeps.s.tokens_per_param[0]: 99 tokens for size tiny is less than one optimizer"),
        ({"presets": ["huge"], "budgets": [8000]}, None,
         "sweeps.s.presets: unknown gpt preset 'huge'; choose one of tiny, seed, small, base"),
        ({"architectures": [{"preset": "big", "n_layer": 1}], "budgets": [8000]}, None,
         "sweeps.s.architectures[0].preset: unknown gpt preset 'big'"),
        ({"presets": ["tiny"], "budgets": [8000, 8000]}, None,
         "sweeps.s: the run name 'sweep_s_tiny_8k' is used twice (also by sweeps.s)"),
        ({"presets": ["tiny"], "budgets": [8000]},
         {"sweep_s_tiny_8k": {"objective": "gpt", "tokenizer": "nucleotide", "preset": "tiny"}},
         "the run name 'sweep_s_tiny_8k' is used twice (also by pretrain.models.sweep_s_tiny_8k)"),
        ({"presets": ["tiny"], "budgets": [8000], "tokens_per_param": [20]}, None,
         "sweeps.s: give exactly one of `budgets` (tokens) and `tokens_per_param`"),
        ({"presets": ["tiny"], "budgets": [8000], "train": {"max_steps": 5}}, None,
         "sweeps.s.train.max_steps: a sweep derives max_steps from its budgets"),
        ({"budgets": [8000]}, None, "sweeps.s: give `presets` and/or `architectures`"),
    ],
)  # fmt: skip
def test_bad_sweeps_name_the_key(sweep, models, message):
    with pytest.raises(ConfigError) as err:
        expand_sweeps(config(sweep, models), models or {})
    assert message in str(err.value)


SWEEP = {"objective": "gpt", "tokenizer": "nucleotide", "presets": ["tiny"], "budgets": [8000]}


def test_a_bad_sweep_stops_the_workflow_before_any_job(tmp_path, shared_data):
    workdir = make_workdir(tmp_path / "wd", {"sweeps": {"s": {**SWEEP, "budgets": [100]}}})
    proc = snakemake(workdir, "-n", timeout=300)
    assert proc.returncode != 0
    assert "sweeps.s.budgets[0]: 100 tokens for size tiny is less than one optimizer step" in (
        proc.stdout + proc.stderr
    ), proc.stderr[-3000:]
    assert not (workdir / "results").exists()


def test_sweep_runs_are_pretrained_summarised_and_not_probed(tmp_path, shared_data):
    """Dry run: the sweep's runs are pretraining jobs and a summary; the probe (models: all
    by default) and the pretraining figures leave them out."""
    workdir = make_workdir(
        tmp_path / "wd",
        {"sweeps": {"s": {**SWEEP, "budgets": [8000, 16000]}}, "probe": {"models": None}},
    )
    proc = snakemake(workdir, "-n", "--quiet", "rules", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = snakemake(workdir, "-n", "--printshellcmds", "--verbose", timeout=300)
    out = proc.stdout + proc.stderr
    assert "results/models/sweep_s_tiny_16k/metrics.json" in out
    assert "results/sweeps/s/summary.tsv" in out
    assert "results/figures/sweeps/s/scaling.png" in out
    assert "results/probe/embeddings/pretrained/gpt_nucleotide.npz" in out
    assert "embeddings/pretrained/sweep_s" not in out
    assert "finetune/species_fragments/sweep_s" not in out
