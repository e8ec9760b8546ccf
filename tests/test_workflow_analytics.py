"""Checkpoint analytics through Snakemake on a tiny workflow (two small CDS samples, one tiny
GPT trained 10 steps with a checkpoint every 5, a two-run sweep, the species probe task and
simulated SNVs): the run keeps every checkpoint and the rules measure each point."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.support.workflow_runner import (
    fail_message,
    make_workdir,
    slim_config,
    snakemake,
)

RUN = "results/analytics/runs/gpt_nucleotide"
TARGETS = [f"{RUN}/checkpoints.tsv", f"{RUN}/correlations.tsv"]
FIGURE = "results/figures/analytics/runs/gpt_nucleotide.png"
SWEEP = "results/analytics/sweeps/two/checkpoints.tsv"


def workdir(tmp_path, shared_data):
    sheet = tmp_path / "sheet.tsv"
    ecoli = shared_data / "cds_fasta" / "ecoli_highly_expressed_genes.fasta"
    phage = shared_data / "genbank" / "phage_T4_test.gbff.gz"
    sheet.write_text(
        "sample\tspecies\tsource\tformat\tgenetic_code\tspecies_task\n"
        f"ecoli_hx\tEscherichia coli\t{ecoli}\tcds_fasta\t11\ttrue\n"
        f"phageT4\tEscherichia phage T4\t{phage}\tgbff\t\ttrue\n"
    )
    slim = slim_config()
    slim["tasks"] = {
        "species_fragments": {"n_train": 30, "n_test": 30, "length": 60},
        "tf_binding": {"sequences": None},
        "sequence_tasks": {},
    }
    slim["probe"] = {"enabled": True, "models": [], "finetuned": [], "external": {}}
    slim["vep"] = {"enabled": True, "sample": "ecoli_hx", "n_per_class": 12, "models": []}
    # a sweep of two budgets (2 and 4 steps of 4 x 128 tokens): its runs are the points
    slim["sweeps"] = {
        "two": {
            "objective": "gpt",
            "tokenizer": "nucleotide",
            "architectures": [{"d_model": 32}],
            "budgets": [1024, 2048],
            "train": {"warmup_steps": 1, "eval_interval": 1000, "eval_batches": 1},
        }
    }
    slim["analytics"] = {
        "enabled": True,
        "runs": ["gpt_nucleotide"],
        "sweeps": ["two"],
        "n_windows": 12,
        "window_nt": 64,
        "probe_per_class": 10,
        "n_variants": 24,
        "n_boot": 200,
    }
    return make_workdir(
        tmp_path / "wd",
        sheet=sheet,
        config_overrides={"splits": {"method": "identity"}},
        replace=slim,
    )


def test_analytics_rule_measures_every_kept_checkpoint(tmp_path, shared_data):
    wd = workdir(tmp_path, shared_data)
    proc = snakemake(wd, *TARGETS, FIGURE, SWEEP)
    assert proc.returncode == 0, fail_message(proc)
    kept = sorted(
        p.name
        for p in (wd / "results/models/gpt_nucleotide/checkpoints/kept_checkpoints").iterdir()
    )
    assert kept == ["step-00000000", "step-00000005", "step-00000010"]
    table = pd.read_csv(wd / TARGETS[0], sep="\t")
    assert table["step"].tolist() == [0, 5, 10]
    assert table["point"].tolist() == ["step-0", "step-5", "step-10"]
    for metric in ("bits_per_nt", "rc_r", "probe_accuracy", "vep_auroc"):
        values = table[metric].to_numpy(float)
        assert np.isfinite(values).all(), metric
        assert (table[f"{metric}_ci95_low"] <= values + 1e-9).all(), metric
        assert (values <= table[f"{metric}_ci95_high"] + 1e-9).all(), metric
    # ten steps of a tiny GPT: the validation windows get more likely
    assert table["bits_per_nt"].iloc[-1] < table["bits_per_nt"].iloc[0]
    assert table["bits_per_nt"].iloc[0] > 1.9
    assert table["probe_accuracy"].between(0, 1).all()
    assert table["n_probe_test"].eq(20).all()
    assert table["n_variants"].eq(24).all()
    corr = pd.read_csv(wd / TARGETS[1], sep="\t")
    pairs = set(zip(corr["cheap"], corr["downstream"], strict=True))
    assert pairs == {
        (c, d) for c in ("bits_per_nt", "rc_r") for d in ("probe_accuracy", "vep_auroc")
    }
    assert corr["n_points"].eq(3).all()
    assert corr["spearman_rho"].dropna().between(-1, 1).all()
    assert (wd / FIGURE).stat().st_size > 0
    bench = pd.read_csv(wd / "results/benchmarks/analytics/runs/gpt_nucleotide.tsv", sep="\t")
    cpu, wall = float(bench["cpu_time"].iloc[0]), float(bench["s"].iloc[0])
    print(f"analytics job: {cpu:.1f} CPU s, {wall:.1f} s")
    # the sweep: one point per run, its final model, in budget order
    sweep = pd.read_csv(wd / SWEEP, sep="\t")
    assert sweep["run"].eq("sweep two").all()
    assert sweep["point"].str.startswith("sweep_two_").all()
    assert sweep["step"].tolist() == [2, 4]
    assert np.isfinite(sweep["bits_per_nt"]).all()
    assert (wd / "results/figures/analytics/sweeps/two.png").stat().st_size > 0
    # a sweep's runs keep only their last and best checkpoints
    assert not list((wd / "results/models").glob("sweep_two_*/checkpoints/kept_checkpoints"))
