"""Expected calibration error and reliability bins (dnalm.evaluation.calibration), the probe
kinds (dnalm.evaluation.probe_kinds) on separable toys, and calibration of a fine-tuning
predictions file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.evaluation.calibration import (
    DEFAULT_BINS,
    from_predictions_tsv,
    from_probabilities,
    probe_table_curves,
    reliability,
)
from dnalm.evaluation.probe import add_probe_intervals, assemble_table, fit_probe, probe_kmer
from dnalm.evaluation.probe_kinds import PROBE_KINDS, check_kinds
from dnalm.finetuning.compare import calibration_of, summarise_runs
from dnalm.report.calibration_plots import plot_reliability


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def test_ece_of_calibrated_toy_is_near_zero():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 200_000)
    correct = rng.uniform(0, 1, conf.size) < conf  # right with the stated probability
    got = reliability(conf, correct)
    assert got["ece"] < 0.01
    assert got["n_bins"] == DEFAULT_BINS
    assert len(got["bins"]) == DEFAULT_BINS
    assert sum(b["count"] for b in got["bins"]) == conf.size
    for b in got["bins"]:
        assert b["low"] <= b["confidence"] <= b["high"]
        assert abs(b["accuracy"] - b["confidence"]) < 0.03


def test_ece_of_overconfident_toy_is_large():
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.9, 1.0, 50_000)
    correct = rng.uniform(0, 1, conf.size) < 0.5  # says >= 90%, right half the time
    got = reliability(conf, correct)
    assert got["ece"] == pytest.approx(0.45, abs=0.02)
    # all mass in the top bins; the empty ones are listed with NaN means
    assert got["bins"][0]["count"] == 0
    assert np.isnan(got["bins"][0]["accuracy"])


def test_ece_by_hand_and_bin_edges():
    # bins of width 0.5: 0.5 falls in the first (right-closed), 0.75 and 1.0 in the second
    got = reliability(np.array([0.5, 0.75, 1.0]), np.array([True, False, True]), n_bins=2)
    assert [b["count"] for b in got["bins"]] == [1, 2]
    # bin 1: |1 - 0.5| * 1/3; bin 2: |0.5 - 0.875| * 2/3
    assert got["ece"] == pytest.approx(0.5 / 3 + 0.375 * 2 / 3)


def test_from_probabilities_uses_top_label():
    prob = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    got = from_probabilities(["a", "b", "b"], ["a", "b"], prob, n_bins=10)
    by_hand = reliability(np.array([0.8, 0.7, 0.6]), np.array([True, True, False]), 10)
    assert got["ece"] == pytest.approx(by_hand["ece"])
    with pytest.raises(InputFormatError, match="do not match"):
        from_probabilities(["a"], ["a", "b"], prob)


def test_bad_confidences_are_refused():
    with pytest.raises(InputFormatError, match=r"\[0, 1\]"):
        reliability(np.array([0.2, 1.5]), np.array([True, False]))
    with pytest.raises(InputFormatError, match="at least one"):
        reliability(np.array([]), np.array([]))


def test_predictions_tsv(tmp_path):
    path = tmp_path / "predictions.tsv"
    pd.DataFrame(
        {"id": ["s1", "s2"], "label": ["x", "y"], "predicted": ["x", "x"],
         "p_x": [0.9, 0.6], "p_y": [0.1, 0.4]}
    ).to_csv(path, sep="\t", index=False)  # fmt: skip
    got = from_predictions_tsv(path, n_bins=10)
    assert got["n"] == 2
    assert got["ece"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.6)
    bare = tmp_path / "bare.tsv"
    pd.DataFrame({"id": ["s1"], "label": ["x"], "predicted": ["x"]}).to_csv(
        bare, sep="\t", index=False
    )
    with pytest.raises(InputFormatError, match=r"bare.tsv: no class-probability"):
        from_predictions_tsv(bare)


# ----------------------------------------------------------------------------- probe kinds


def _blobs(seed, n_per_class=40, dim=8, shift=2.5, classes=("a", "b", "c")):
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(7).normal(size=(len(classes), dim)) * shift
    x = np.concatenate([rng.normal(size=(n_per_class, dim)) + m for m in means])
    return x, np.repeat(classes, n_per_class)


@pytest.mark.parametrize("kind", PROBE_KINDS)
def test_every_kind_beats_chance_on_separable_toy(kind):
    xtr, ytr = _blobs(0)
    xte, yte = _blobs(1, n_per_class=20)
    res = fit_probe(xtr, ytr, xte, yte, kind=kind, cv_folds=3)
    m = res.metrics
    assert m["probe_kind"] == kind
    assert m["accuracy"] > 0.85 > 2 * m["chance"]
    assert res.proba.shape == (len(yte), 3)
    np.testing.assert_allclose(res.proba.sum(1), 1.0, atol=1e-6)
    assert 0.0 <= m["ece"] < 0.5
    assert m["calibration"]["n"] == len(yte)
    assert (m["best_C"] is None) == (kind not in ("logreg", "svm"))
    # the chosen hyperparameter is the one with the best CV accuracy
    ((short, best),) = m["best_params"].items()
    scores = m[f"cv_accuracy_by_{short}"]
    assert scores[repr(best)] == max(scores.values())


def test_kinds_on_noise_stay_near_chance():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(150, 6)), np.repeat(["a", "b", "c"], 50)
    xte, yte = rng.normal(size=(90, 6)), np.repeat(["a", "b", "c"], 30)
    for kind in ("svm", "hgb"):
        assert fit_probe(x, y, xte, yte, kind=kind, cv_folds=3).metrics["accuracy"] < 0.6


def test_check_kinds():
    assert check_kinds(["hgb", "logreg"]) == ["logreg", "hgb"]
    with pytest.raises(ConfigError, match=r"probe\.kinds: unknown probe kind"):
        check_kinds(["logreg", "xgb"])
    with pytest.raises(ConfigError, match="must include logreg"):
        check_kinds(["svm"])
    with pytest.raises(ConfigError, match="unknown probe kind"):
        fit_probe(*_blobs(0), *_blobs(1), kind="knn")


def test_table_has_one_row_per_kind_and_kind_wise_baselines(tmp_path):
    rng = np.random.default_rng(5)
    n = 120
    seqs = ["".join(rng.choice(list("ACGT"), 60, p=p)) for p in
            [[0.4, 0.1, 0.1, 0.4]] * (n // 2) + [[0.1, 0.4, 0.4, 0.1]] * (n // 2)]  # fmt: skip
    table = pd.DataFrame({
        "id": [f"f{i}" for i in range(n)], "sequence": seqs,
        "label": ["AT"] * (n // 2) + ["GC"] * (n // 2),
        "split": (["train"] * 40 + ["test"] * 20) * 2,
    })  # fmt: skip
    files = []
    for kind in ("logreg", "svm"):
        for k in (2, 3):
            out = tmp_path / f"k{k}.{kind}.json"
            probe_kmer(table, out, k=k, kind=kind, cv_folds=3)
            files.append(out)
    df = assemble_table(files, tmp_path / "table.tsv", n_boot=50)
    curves = probe_table_curves(tmp_path / "table.tsv")
    assert sorted(curves) == ["logreg", "svm"]
    assert [len(v) for v in curves.values()] == [2, 2]
    assert plot_reliability(curves, tmp_path / "calib.png")[0].stat().st_size > 0
    assert list(df["probe_kind"]) == ["logreg", "logreg", "svm", "svm"]
    assert df["ece"].notna().all()
    # each kind compares with its own best k-mer row
    for kind in ("logreg", "svm"):
        rows = df[df["probe_kind"] == kind]
        best = rows.loc[rows["accuracy"].idxmax(), "model"]
        assert set(rows["best_baseline"]) == {best}
    assert add_probe_intervals(df, n_boot=0)["ci95_low"].isna().all()


# ----------------------------------------------------------------------------- fine-tuning


def test_finetune_table_ece_is_seed_mean_and_figure(tmp_path):
    rng = np.random.default_rng(2)
    n = 400
    ids = [f"s{i}" for i in range(n)]
    labels = rng.choice(["a", "b"], size=n)
    p_true = {"m": 0.9, "m_seed1": 0.8, "cnn": 0.7}  # probability given to the true class
    rows, eces = [], {}
    for run, p in p_true.items():
        pa = np.where(labels == "a", p, 1 - p)
        pred = np.where(pa >= 0.5, "a", "b")
        (tmp_path / run).mkdir()
        path = tmp_path / run / "predictions.tsv"
        pd.DataFrame(
            {"id": ids, "label": labels, "predicted": pred, "p_a": pa, "p_b": 1 - pa}
        ).to_csv(path, sep="\t", index=False)
        eces[run] = from_predictions_tsv(path)["ece"]
        regime = "baseline" if run == "cnn" else "full"
        rows.append([run, regime, 1 if run.endswith("1") else 0, float(np.mean(pred == labels))])
    # always right with confidence p: ECE = 1 - p
    assert eces["m"] == pytest.approx(0.1)
    table = pd.DataFrame(rows, columns=["run", "regime", "seed", "accuracy"])
    out = summarise_runs(table, {r: tmp_path / r for r in p_true}, "classification", n_boot=0)
    got = out.set_index("run")["ece"]
    assert got["m"] == pytest.approx((eces["m"] + eces["m_seed1"]) / 2)
    assert got["cnn"] == pytest.approx(0.3)

    png = tmp_path / "calibration.png"
    written = plot_reliability(
        {"task": [(r, calibration_of(tmp_path / r)) for r in p_true], "empty": []}, png
    )
    assert [p.suffix for p in written] == [".png", ".svg"]
    assert png.stat().st_size > 0
    with pytest.raises(InputFormatError, match="no classifier"):
        plot_reliability({}, png)
