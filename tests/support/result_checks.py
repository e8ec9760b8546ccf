"""Checks of workflow outputs that more than one end-to-end run makes (the demo's and the
shared-data run's), each against the settings of its run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ANALYTICS_METRICS = ("bits_per_nt", "rc_r", "probe_accuracy", "vep_auroc")


def check_checkpoint_analytics(run: Path, model: str, steps: list[int]) -> pd.DataFrame:
    """A run's checkpoint analytics: the model folder keeps the weights of every checkpoint
    (`steps`); results/analytics/runs/{model}/ has one row per kept checkpoint, every metric
    finite inside its interval, validation bits/nt lower at the last checkpoint than at the
    first, and a rank correlation of each cheap metric with each downstream one over every
    checkpoint; its figure is drawn. Returns the checkpoint table."""
    kept = run / f"results/models/{model}/checkpoints/kept_checkpoints"
    assert sorted(p.name for p in kept.iterdir()) == [f"step-{s:08d}" for s in steps]
    assert (run / f"results/figures/analytics/runs/{model}.png").stat().st_size > 5_000
    folder = run / f"results/analytics/runs/{model}"
    table = pd.read_csv(folder / "checkpoints.tsv", sep="\t")
    assert table["step"].tolist() == steps
    for metric in ANALYTICS_METRICS:
        values = table[metric].to_numpy(float)
        assert np.isfinite(values).all(), metric
        assert (table[f"{metric}_ci95_low"] <= values + 1e-9).all(), metric
        assert (values <= table[f"{metric}_ci95_high"] + 1e-9).all(), metric
    # training makes the validation windows more likely
    assert table["bits_per_nt"].iloc[-1] < table["bits_per_nt"].iloc[0]
    corr = pd.read_csv(folder / "correlations.tsv", sep="\t")
    assert set(zip(corr["cheap"], corr["downstream"], strict=True)) == {
        (c, d) for c in ("bits_per_nt", "rc_r") for d in ("probe_accuracy", "vep_auroc")
    }
    assert corr["n_points"].eq(len(steps)).all()
    assert corr["spearman_rho"].dropna().between(-1, 1).all()
    return table
