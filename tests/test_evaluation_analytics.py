"""Checkpoint analytics (dnalm.evaluation.analytics): Spearman's rho and its bootstrap interval
against scipy on a hand-made table, the choice of checkpoints, and a tiny model trained a few
steps with every checkpoint kept, whose bits/nt falls from checkpoint to checkpoint."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dnalm.core.errors import InputFormatError
from dnalm.evaluation import analytics as an
from dnalm.training import checkpoint as ckpt
from dnalm.training.pretrain import pretrain
from tests.support.lm_corpus import make_corpus, markov_sequences
from tests.support.tiny_models import gc_at_table

#: a hand-made table of 12 checkpoints: bits/nt falls, probe accuracy mostly rises
BITS = [2.01, 1.95, 1.90, 1.71, 1.62, 1.60, 1.48, 1.47, 1.31, 1.30, 1.22, 1.19]
ACC = [0.31, 0.35, 0.33, 0.40, 0.52, 0.47, 0.55, 0.61, 0.58, 0.66, 0.71, 0.69]


def test_spearman_and_its_interval_match_scipy():
    rho, lo, hi, n = an.spearman_interval(BITS, ACC, n_boot=4000, seed=1)
    assert n == 12
    assert rho == pytest.approx(stats.spearmanr(BITS, ACC).statistic, abs=1e-12)
    assert rho < -0.9
    ref = stats.bootstrap(
        (np.array(BITS), np.array(ACC)),
        lambda x, y: stats.spearmanr(x, y).statistic,
        paired=True,
        vectorized=False,
        n_resamples=4000,
        method="percentile",
        random_state=np.random.default_rng(2),
    ).confidence_interval
    assert lo == pytest.approx(ref.low, abs=0.05)
    assert hi == pytest.approx(ref.high, abs=0.05)
    assert lo <= rho <= hi


def test_spearman_of_ties_a_constant_side_and_too_few_points():
    # ties: average ranks, as scipy
    x, y = [1, 2, 2, 3, 4, 4, 5], [3, 1, 2, 5, 4, 6, 7]
    assert an.spearman_interval(x, y)[0] == pytest.approx(stats.spearmanr(x, y).statistic)
    # a perfectly monotone table: rho 1 and every resample (bar constant ones) 1
    assert an.spearman_interval([1, 2, 3, 4, 5], [10, 20, 30, 40, 50])[:3] == pytest.approx(
        (1, 1, 1)
    )
    assert math.isnan(an.spearman_interval([1, 2, 3], [5, 5, 5])[0])
    assert math.isnan(an.spearman_interval([1, 2], [1, 2])[0])
    # a NaN pair is left out
    assert an.spearman_interval([1, 2, math.nan, 4], [1, 2, 3, 4])[3] == 3


def test_pick_spreads_the_points_and_keeps_both_ends():
    assert an.pick(list(range(10)), 4) == [0, 3, 6, 9]
    assert an.pick(list(range(3)), 8) == [0, 1, 2]
    assert an.pick(list(range(101)), 2) == [0, 100]


def test_correlations_table_has_one_row_per_measured_pair():
    table = pd.DataFrame(
        {"run": "r", "point": [f"step-{i}" for i in range(12)], "step": range(12),
         "bits_per_nt": BITS, "rc_r": np.linspace(0.1, 0.9, 12), "probe_accuracy": ACC,
         "vep_auroc": math.nan}
    )  # fmt: skip
    corr = an.correlations(table, n_boot=200)
    assert list(corr.columns) == an.CORRELATION_COLUMNS
    # vep was off: no vep rows
    assert corr[["cheap", "downstream"]].values.tolist() == [
        ["bits_per_nt", "probe_accuracy"],
        ["rc_r", "probe_accuracy"],
    ]
    assert corr["spearman_rho"].iloc[0] == pytest.approx(stats.spearmanr(BITS, ACC).statistic)


def test_auroc_interval_of_a_perfect_and_a_useless_score():
    labels = np.array([True] * 10 + [False] * 10)
    assert an.auroc_interval(np.arange(20.0)[::-1], labels, n_boot=200) == (1.0, 1.0, 1.0)
    est, lo, hi = an.auroc_interval(np.ones(20), labels, n_boot=200)
    assert est == lo == hi == 0.5


def _fasta(path, seqs):
    with gzip.open(path, "wt") as fh:
        for i, s in enumerate(seqs):
            fh.write(f">v{i}\n{s}\n")
    return path


def test_a_model_that_gets_better_shows_falling_bits_per_nt(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    out = tmp_path / "m"
    cfg = {"max_steps": 30, "micro_batch_size": 8, "eval_interval": 10, "log_interval": 10,
           "warmup_steps": 3, "eval_batches": 2, "threads": 1, "test_eval": False,
           "patience": None, "keep_checkpoints": True}  # fmt: skip
    pretrain(corpus, out, "gpt", "tiny", {}, cfg, resume=False)
    kept = ckpt.kept_checkpoints(out / "checkpoints")
    assert [step for step, _ in kept] == [0, 10, 20, 30]  # every checkpoint, not last and best
    points = an.checkpoint_points(out, 8)
    assert [p[:2] for p in points] == [("step-0", 0), ("step-10", 10), ("step-20", 20),
                                       ("step-30", 30)]  # fmt: skip
    # held-out sequences of the corpus's Markov chain; probe: GC-rich vs AT-rich fragments
    held_out = _fasta(tmp_path / "val.fa.gz", markov_sequences(40, np.random.default_rng(9), 60))
    probe = tmp_path / "probe.tsv"
    gc_at_table(n=60, length=40).to_csv(probe, sep="\t", index=False)
    settings = {
        "n_windows": 24,
        "window_nt": 48,
        "probe_per_class": 8,
        "n_variants": 10,
        "vep_class": "nonsense",
        "n_boot": 200,
        "seed": 0,
        "probe": {"layer": -1, "pooling": "mean", "batch_size": 16, "cv_folds": 2},
    }
    sets = an.fixed_sets([held_out], settings, probe_table=probe)
    assert len(sets.windows) == 24  # 8 per class from train, the 6 per class of test:
    assert sets.probe.groupby(["split", "label"]).size().tolist() == [6, 6, 8, 8]
    table = an.evaluate_points("m", points, sets, settings)
    assert list(table.columns) == an.COLUMNS
    bits = table["bits_per_nt"].to_numpy()
    assert bits[0] > 1.9  # random weights: about 2 bits (or more) per nt
    assert np.all(np.diff(bits) < 0), bits  # strictly better at every kept checkpoint
    assert bits[-1] < 1.6  # the chain's entropy is about 0.85 bits/nt
    assert (table["bits_per_nt_ci95_low"] <= bits).all()
    assert (bits <= table["bits_per_nt_ci95_high"]).all()
    assert table["probe_accuracy"].between(0, 1).all()
    assert table["vep_auroc"].isna().all()
    corr = an.correlations(table, n_boot=200)
    assert set(corr["downstream"]) == {"probe_accuracy"}


def test_a_run_without_kept_checkpoints_is_refused_naming_the_folder_and_fix(tmp_path):
    with pytest.raises(InputFormatError, match=r"checkpoints: 0 kept checkpoint.*analytics\.runs"):
        an.checkpoint_points(tmp_path / "m", 4)


def test_probe_and_vep_subsets_are_seeded_and_bounded(tmp_path):
    table = gc_at_table(n=60, length=20)
    a = an.probe_subset(table, 5, seed=3, where="t")
    assert a.equals(an.probe_subset(table, 5, seed=3, where="t"))
    assert a.groupby(["split", "label"]).size().tolist() == [5, 5, 5, 5]
    assert set(a["split"]) == {"train", "test"}
    sim = pd.DataFrame({"id": [f"v{i}" for i in range(30)],
                        "class": ["synonymous", "missense", "nonsense"] * 10})  # fmt: skip
    v = an.vep_subset(sim, 8, "nonsense", seed=0, where="sim.tsv")
    assert len(v) == 8
    assert set(v["class"]) <= {"nonsense", "synonymous"}
    with pytest.raises(InputFormatError, match=r"sim\.tsv: no nonsense SNV.*vep_class"):
        an.vep_subset(sim[sim["class"] != "nonsense"], 8, "nonsense", seed=0, where="sim.tsv")
