"""dnalm.core.metrics: hand-computed small cases and agreement with scipy / scikit-learn."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from dnalm.core.metrics import (
    METRICS_JSON_KEYS,
    classification_metrics,
    pearson_r,
    regression_metrics,
    to_jsonable,
    write_metrics_json,
)

# ----------------------------------------------------------------------------- regression


def test_pearson_hand_cases():
    assert pearson_r(np.array([1.0, 2, 3]), np.array([2.0, 4, 6])) == pytest.approx(1.0)
    assert pearson_r(np.array([1.0, 2, 3]), np.array([3.0, 2, 1])) == pytest.approx(-1.0)
    # t = [0, 0, 1, 1], p = [0, 1, 0, 1]: centred dot product 0 -> r = 0
    assert pearson_r(np.array([0.0, 0, 1, 1]), np.array([0.0, 1, 0, 1])) == pytest.approx(0.0)
    assert math.isnan(pearson_r(np.array([1.0, 2, 3]), np.array([5.0, 5, 5])))


def test_regression_hand_case():
    t = np.array([0.0, 5.0, 0.0, 7.0])
    p = np.array([0.9, 0.8, 0.1, 0.2])
    m = regression_metrics(t, p)
    # ranking by p: neg, pos, pos, neg -> precision 1/2 at the first hit, 2/3 at the second
    assert m["auprc_bound"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert m["mse"] == pytest.approx(((0.9) ** 2 + 4.2**2 + 0.1**2 + 6.8**2) / 4)
    assert m["bound_fraction"] == pytest.approx(0.5)
    assert m["n"] == 4
    perfect = regression_metrics(t, np.array([0.1, 0.9, 0.2, 0.8]))
    assert perfect["auprc_bound"] == pytest.approx(1.0)


def test_regression_flattens_all_positions_like_scipy():
    rng = np.random.default_rng(1)
    t = rng.normal(size=(7, 30))
    p = t + rng.normal(scale=0.7, size=t.shape)
    m = regression_metrics(t, p)
    assert m["pearson_r"] == pytest.approx(stats.pearsonr(t.ravel(), p.ravel()).statistic)
    assert m["spearman_r"] == pytest.approx(stats.spearmanr(t.ravel(), p.ravel()).statistic)
    assert m["mse"] == pytest.approx(skm.mean_squared_error(t.ravel(), p.ravel()))
    assert m["auprc_bound"] == pytest.approx(skm.average_precision_score(t.ravel() > 0, p.ravel()))
    assert m["n"] == 7 * 30
    # the flattened r is not the mean of per-sequence r's
    per_seq = np.mean([stats.pearsonr(a, b).statistic for a, b in zip(t, p, strict=True)])
    assert m["pearson_r"] != pytest.approx(per_seq, abs=1e-9)


def test_regression_mask_drops_padding():
    rng = np.random.default_rng(2)
    t = rng.normal(size=(3, 10))
    p = t + rng.normal(size=t.shape)
    lengths = np.array([10, 6, 3])
    mask = np.arange(10)[None, :] < lengths[:, None]
    t_pad, p_pad = t.copy(), p.copy()
    t_pad[~mask], p_pad[~mask] = 0.0, 123.0  # garbage where padded
    masked = regression_metrics(t_pad, p_pad, mask)
    direct = regression_metrics(
        np.concatenate([t[i, :n] for i, n in enumerate(lengths)]),
        np.concatenate([p[i, :n] for i, n in enumerate(lengths)]),
    )
    assert masked == pytest.approx(direct)
    assert masked["n"] == 19


def test_regression_undefined_values_are_nan():
    m = regression_metrics(np.zeros(5), np.arange(5.0))
    assert math.isnan(m["auprc_bound"])  # no bound base
    assert math.isnan(m["pearson_r"])  # constant target
    with pytest.raises(ValueError, match="shape"):
        regression_metrics(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        regression_metrics(np.array([0.0, np.nan]), np.zeros(2))


# ----------------------------------------------------------------------------- classification


def test_classification_hand_case():
    yt = ["a", "a", "a", "b", "b", "c"]
    yp = ["a", "a", "b", "b", "c", "c"]
    m = classification_metrics(yt, yp, labels=["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["per_class_recall"] == pytest.approx({"a": 2 / 3, "b": 1 / 2, "c": 1.0})
    # F1: a = 2*1*(2/3)/(1+2/3) = 0.8, b = 0.5, c = 2*(1/2)*1/(3/2) = 2/3
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(yt, yp))
    assert m["majority_class"] == "a"
    assert m["chance_majority"] == pytest.approx(0.5)  # 'a' is 3 of 6 test labels
    assert m["chance_uniform"] == pytest.approx(1 / 3)
    assert m["n"] == 6


def test_classification_label_order_and_train_majority():
    yt = ["x", "y", "y", "y"]
    yp = ["y", "y", "x", "y"]
    m = classification_metrics(yt, yp, labels=["y", "x"], train_labels=["x", "x", "y"])
    assert m["labels"] == ["y", "x"]
    assert m["confusion_matrix"] == [[2, 1], [1, 0]]  # rows true (y, x), columns predicted
    assert m["majority_class"] == "x"  # from train
    assert m["chance_majority"] == pytest.approx(0.25)  # 'x' is 1 of 4 test labels
    assert list(m["per_class_recall"]) == ["y", "x"]


def test_classification_matches_sklearn_random():
    rng = np.random.default_rng(3)
    yt = rng.integers(0, 4, 200)
    yp = np.where(rng.random(200) < 0.6, yt, rng.integers(0, 4, 200))
    m = classification_metrics(yt, yp)
    assert m["labels"] == ["0", "1", "2", "3"]
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(yt, yp))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(yt, yp, average="macro"))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(yt, yp))
    recall = skm.recall_score(yt, yp, average=None)
    assert [m["per_class_recall"][str(i)] for i in range(4)] == pytest.approx(recall)
    assert np.array_equal(m["confusion_matrix"], skm.confusion_matrix(yt, yp))


def test_classification_errors_and_absent_class():
    with pytest.raises(ValueError, match="not in the label list"):
        classification_metrics(["a", "z"], ["a", "a"], labels=["a", "b"])
    m = classification_metrics(["a", "a"], ["a", "a"], labels=["a", "b"])
    assert math.isnan(m["per_class_recall"]["b"])
    assert m["macro_f1"] == pytest.approx(1.0)  # a class never seen is not averaged in


# ----------------------------------------------------------------------------- metrics.json


def test_write_metrics_json(tmp_path):
    path = tmp_path / "run" / "metrics.json"
    metrics = regression_metrics(np.zeros(4), np.arange(4.0))  # nan r and auprc
    rec = write_metrics_json(
        path,
        model="onehot_cnn",
        tokenizer="onehot",
        regime="baseline",
        trainable_params=np.int64(10),
        total_params=12,
        wall_time_s=1.5,
        n_test=1,
        metrics=metrics,
        task="tf",
    )
    text = path.read_text()

    def reject(token):
        raise AssertionError(f"non-standard JSON token {token}")

    loaded = json.loads(text, parse_constant=reject)
    assert list(loaded)[: len(METRICS_JSON_KEYS)] == list(METRICS_JSON_KEYS)
    assert loaded == rec
    assert loaded["metrics"]["pearson_r"] is None
    assert loaded["task"] == "tf"
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temp files left


def test_to_jsonable():
    out = to_jsonable({"a": np.float32(1.5), "b": [np.nan, np.inf], "c": np.arange(2)})
    assert out == {"a": 1.5, "b": [None, None], "c": [0, 1]}
