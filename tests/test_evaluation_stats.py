"""Bootstrap confidence intervals of the comparison tables (dnalm.core.stats,
dnalm.finetuning.compare), checked against known cases: exact sufficient-statistic Pearson r,
the normal-theory interval of a proportion, a paired difference with a known distribution."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dnalm.core.errors import InputFormatError
from dnalm.core.metrics import pearson_r
from dnalm.core.stats import (
    accuracy_stats,
    bootstrap,
    mean_sd,
    paired_bootstrap,
    pearson_from_sums,
    pearson_stats,
)
from dnalm.finetuning.compare import summarise_runs


def test_pearson_from_item_sums_equals_pearson_of_the_concatenated_positions():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(30, 20))
    p = t + rng.normal(size=(30, 20))
    lengths = rng.integers(5, 21, size=30)
    mask = np.arange(20)[None, :] < lengths[:, None]
    stats = pearson_stats(t, p, mask)
    for resample in (np.arange(30), rng.integers(0, 30, size=30), np.array([3, 3, 3, 7])):
        flat_t = np.concatenate([t[i][mask[i]] for i in resample])
        flat_p = np.concatenate([p[i][mask[i]] for i in resample])
        got = pearson_from_sums(stats[resample].sum(0))
        assert math.isclose(got, pearson_r(flat_t, flat_p), rel_tol=1e-10)
    constant = pearson_stats(np.ones((4, 3)), rng.normal(size=(4, 3)))
    assert np.isnan(pearson_from_sums(constant.sum(0)))


def test_accuracy_interval_matches_the_normal_approximation():
    """400 items, 300 correct: the bootstrap distribution of the accuracy is binomial / n, so
    the 95% interval is 0.75 +- 1.96 * sqrt(0.75 * 0.25 / 400) = [0.7076, 0.7924] up to
    Monte-Carlo and discreteness error."""
    correct = np.r_[np.ones(300), np.zeros(100)]
    ci = bootstrap(accuracy_stats(correct), "accuracy", n_boot=4000, seed=1)
    half = 1.96 * math.sqrt(0.75 * 0.25 / 400)
    assert ci.estimate == 0.75
    assert abs(ci.low - (0.75 - half)) < 0.008
    assert abs(ci.high - (0.75 + half)) < 0.008
    assert (ci.n_items, ci.n_boot) == (400, 4000)
    again = bootstrap(accuracy_stats(correct), "accuracy", n_boot=4000, seed=1)
    assert (again.low, again.high) == (ci.low, ci.high)  # seeded


def test_paired_difference_known_cases():
    rng = np.random.default_rng(2)
    a = rng.random(400) < 0.8
    # identical runs: the paired difference is exactly 0 on every resample
    _, _, same = paired_bootstrap(accuracy_stats(a), accuracy_stats(a), "accuracy", 500)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    # b loses 40 of a's correct items: per item d = a - b is 1 on 40 items, else 0, so the
    # difference is a proportion 0.1 with interval 0.1 +- 1.96 * sqrt(0.1 * 0.9 / 400)
    b = a.copy()
    b[np.flatnonzero(a)[:40]] = False
    ia, ib, diff = paired_bootstrap(accuracy_stats(a), accuracy_stats(b), "accuracy", 4000)
    half = 1.96 * math.sqrt(0.1 * 0.9 / 400)
    assert math.isclose(diff.estimate, 0.1)
    assert abs(diff.low - (0.1 - half)) < 0.008
    assert abs(diff.high - (0.1 + half)) < 0.008
    # pairing matters: the difference's interval is much narrower than a naive combination
    naive = math.hypot(ia.high - ia.low, ib.high - ib.low)
    assert diff.high - diff.low < 0.8 * naive


def test_mean_sd():
    assert mean_sd([1.0, 2.0, 3.0]) == (2.0, 1.0)
    mean, sd = mean_sd([0.5])
    assert mean == 0.5
    assert math.isnan(sd)
    assert all(math.isnan(v) for v in mean_sd([]))


def _write_per_base(folder, ids, targets, preds, lengths):
    folder.mkdir(parents=True)
    np.savez(
        folder / "predictions.npz",
        ids=np.asarray(ids),
        predictions=preds.astype(np.float32),
        targets=targets.astype(np.float32),
        lengths=np.asarray(lengths),
    )


def test_comparison_table_gets_intervals_against_the_best_baseline(tmp_path):
    rng = np.random.default_rng(3)
    n, width = 60, 50
    targets = rng.normal(size=(n, width))
    lengths = rng.integers(20, width + 1, size=n)
    ids = [f"w{i}" for i in range(n)]
    noise = {"cnn": 0.3, "kmer": 3.0, "gpt": 1.0}
    table = []
    for run, scale in noise.items():
        preds = targets + scale * rng.normal(size=(n, width))
        order = rng.permutation(n)  # item order differs between files: aligned by id
        _write_per_base(
            tmp_path / run, np.array(ids)[order], targets[order], preds[order], lengths[order]
        )
        mask = np.arange(width)[None, :] < lengths[:, None]
        table.append(
            {
                "run": run,
                "regime": "frozen" if run == "gpt" else "baseline",
                "pearson_r": pearson_r(targets[mask], preds[mask]),
                "auprc_bound": 0.5,
            }
        )
    df = pd.DataFrame(table)
    out = summarise_runs(df, {r: tmp_path / r for r in noise}, "per_base_regression", n_boot=300)
    rows = out.set_index("run")
    assert set(out["best_baseline"]) == {"cnn"}
    assert np.isnan(rows.loc["cnn", "delta_vs_best_baseline"])
    gpt = rows.loc["gpt"]
    assert math.isclose(
        gpt["delta_vs_best_baseline"], gpt["pearson_r"] - rows.loc["cnn", "pearson_r"], abs_tol=1e-6
    )
    # the GPT is clearly worse than the CNN: the whole interval is below zero
    assert gpt["delta_ci95_high"] < 0
    for run in noise:
        assert rows.loc[run, "ci95_low"] <= rows.loc[run, "pearson_r"] <= rows.loc[run, "ci95_high"]
    assert set(out["metric"]) == {"pearson_r over all flattened test positions (items: windows)"}
    missing = dict.fromkeys(noise, tmp_path / "missing")
    with pytest.raises(InputFormatError, match=r"predictions\.npz"):
        summarise_runs(df, missing, "per_base_regression")
