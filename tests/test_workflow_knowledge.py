"""Gene completion and the robustness panel through the real workflow: the slim test config
(one tiny GPT trained 10 steps) on one embedded sample, two genes and eight windows."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.support.workflow_runner import fail_message, make_workdir, slim_config, snakemake

TARGETS = [
    "results/gene_completion/summary.tsv",
    "results/figures/gene_completion/summary.png",
    "results/robustness/gpt_nucleotide/panel.tsv",
    "results/figures/robustness/gpt_nucleotide.png",
]


@pytest.mark.slow
def test_gene_completion_and_robustness_rules_run(tmp_path):
    wd = make_workdir(
        tmp_path / "wd",
        {
            "splits": {"method": "identity"},
            "gene_completion": {
                "enabled": True,
                "n_samples_per_gene": 2,
                "samples": ["ecoli_hx"],
                "n_genes": 2,
                "prompt_fractions": [0.25, 0.5],
                "max_new_nt": 300,
            },
            "robustness": {
                "enabled": True,
                "models": ["gpt_nucleotide"],
                "n_windows": 8,
                "window_nt": 60,
                "indel_distances": [0, 20],
            },
        },
        keep=["ecoli_hx"],
        replace=slim_config(),
    )
    proc = snakemake(wd, *TARGETS)
    assert proc.returncode == 0, fail_message(proc)
    summary = pd.read_csv(wd / TARGETS[0], sep="\t")
    sources = ["gpt_nucleotide", "markov", "codon_trigram", "nearest_gene"]
    assert sorted(set(summary["source"])) == sorted(sources)
    assert len(summary) == len(sources) * 2  # x two prompt fractions, sample "all" only
    assert (summary["n_genes"] == 2).all()
    model = summary[summary["source"] == "gpt_nucleotide"]
    assert (model["n_continuations"] == 2 * 2).all()  # 2 genes x 2 continuations
    assert summary["recovery"].between(0, 1).all()
    for source in sources:
        kind = "models" if source == "gpt_nucleotide" else "baselines"
        log = wd / f"results/logs/gene_completion/{kind}/{source}.log"
        assert "2 held-out genes" in log.read_text(), source
        assert (wd / f"results/benchmarks/gene_completion/{kind}/{source}.tsv").is_file()
    panel = pd.read_csv(wd / TARGETS[2], sep="\t")
    assert set(panel["test"]) == {"rc", "shift", "indel"}  # one nt per token: no phase rows
    assert (panel["n_windows"] == 8).all()
    assert (wd / TARGETS[3]).stat().st_size > 0
    assert (wd / "results/logs/robustness/gpt_nucleotide.log").is_file()
