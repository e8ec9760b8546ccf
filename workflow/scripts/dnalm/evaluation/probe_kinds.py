"""The classifiers a species probe may fit (``probe.kinds``), each with its hyperparameter grid.

Every kind is a scikit-learn pipeline ``StandardScaler -> classifier`` whose hyperparameter is
chosen by the same stratified, seeded cross-validation on the training split
(:func:`dnalm.evaluation.probe.fit_probe`), refitted on the whole training split and scored
once on the test split. Every kind gives class probabilities, so every probe row has an
expected calibration error (:mod:`dnalm.evaluation.calibration`).

* ``logreg``: multinomial logistic regression, L2, ``C`` in :data:`DEFAULT_CS`
  (the original probe; its rows keep their file names and the confusion figures).
* ``svm``: a linear support vector machine (``LinearSVC``, squared hinge loss, ``C`` in
  :data:`SVM_CS`). An SVM has no probabilities: it is wrapped in ``CalibratedClassifierCV``
  (Platt's sigmoid fitted on held-out decisions of an inner stratified 3-fold split, 2 when a
  class has fewer than 5 training rows; the classifier is the average of the inner folds'
  calibrated SVMs). Accuracy is that of the calibrated classifier's argmax, which can differ
  slightly from the raw SVM's. (A softmax of ``decision_function`` would be cheaper but its
  scale is arbitrary, so its ECE would say nothing.)
* ``mlp``: a small multilayer perceptron (``MLPClassifier``, one hidden layer of
  :data:`MLP_HIDDEN` ReLU units, Adam, early stopping on a stratified 10% validation part of
  the training rows, at most 200 epochs), L2 penalty ``alpha`` in :data:`MLP_ALPHAS`.
* ``hgb``: histogram gradient boosting (``HistGradientBoostingClassifier``, 100 boosting
  rounds, learning rate 0.1), ``max_leaf_nodes`` in :data:`HGB_LEAVES`. Scaling does not
  change trees; it is kept so every kind has the same pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dnalm.core.errors import ConfigError

PROBE_KINDS: tuple[str, ...] = ("logreg", "svm", "mlp", "hgb")
#: Candidate C values for the cross-validated choice (inverse L2 strength, logistic regression).
DEFAULT_CS: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
SVM_CS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)
MLP_HIDDEN = 64
MLP_ALPHAS: tuple[float, ...] = (1e-4, 1e-2, 1.0)
HGB_LEAVES: tuple[int, ...] = (7, 31)


def check_kinds(kinds: Sequence[str], where: str = "probe.kinds") -> list[str]:
    """The kinds as a list, in :data:`PROBE_KINDS` order; ConfigError naming `where` for an
    unknown kind, an empty list or a list without ``logreg`` (the confusion figures, the UMAP
    pages and the reproduction table read the logistic-regression rows)."""
    if isinstance(kinds, str):
        kinds = [kinds]
    unknown = sorted(set(kinds) - set(PROBE_KINDS))
    if unknown:
        raise ConfigError(f"{where}: unknown probe kind(s) {unknown}; use {list(PROBE_KINDS)}")
    if "logreg" not in kinds:
        raise ConfigError(f"{where}: must include logreg (the reference probe), got {list(kinds)}")
    return [k for k in PROBE_KINDS if k in kinds]


def make_search_space(
    kind: str,
    *,
    cs: Sequence[float] | None = None,
    seed: int = 0,
    max_iter: int = 2000,
    min_class_count: int = 5,
) -> tuple[Any, str, list[Any]]:
    """(pipeline, grid parameter name, candidate values) of one probe kind. `cs` overrides the
    C grid of logreg and svm; `min_class_count` (the smallest class's training rows) sizes the
    SVM's inner calibration split."""
    # lazy: scikit-learn (~1 s) stays out of the DAG build (check_kinds)
    from sklearn.calibration import CalibratedClassifierCV

    # lazy: scikit-learn (~1 s) stays out of the DAG build (check_kinds)
    from sklearn.ensemble import HistGradientBoostingClassifier

    # lazy: scikit-learn (~1 s) stays out of the DAG build (check_kinds)
    from sklearn.linear_model import LogisticRegression

    # lazy: scikit-learn (~1 s) stays out of the DAG build (check_kinds)
    from sklearn.neural_network import MLPClassifier

    # lazy: scikit-learn (~1 s) stays out of the DAG build (check_kinds)
    from sklearn.pipeline import make_pipeline

    # lazy: scikit-learn (~1 s) stays out of the DAG build (check_kinds)
    from sklearn.preprocessing import StandardScaler

    # lazy: scikit-learn (~1 s) stays out of the DAG build (check_kinds)
    from sklearn.svm import LinearSVC

    if kind == "logreg":
        clf = LogisticRegression(max_iter=max_iter)
        return make_pipeline(StandardScaler(), clf), "logisticregression__C", list(cs or DEFAULT_CS)
    if kind == "svm":
        inner = 3 if min_class_count >= 5 else 2
        clf = CalibratedClassifierCV(
            LinearSVC(max_iter=max_iter, random_state=seed), method="sigmoid", cv=inner
        )
        grid = list(cs or SVM_CS)
        return make_pipeline(StandardScaler(), clf), "calibratedclassifiercv__estimator__C", grid
    if kind == "mlp":
        clf = MLPClassifier(
            hidden_layer_sizes=(MLP_HIDDEN,),
            early_stopping=True,
            validation_fraction=0.1,
            max_iter=200,
            random_state=seed,
        )
        return make_pipeline(StandardScaler(), clf), "mlpclassifier__alpha", list(MLP_ALPHAS)
    if kind == "hgb":
        clf = HistGradientBoostingClassifier(
            max_iter=100, learning_rate=0.1, early_stopping=False, random_state=seed
        )
        grid = list(HGB_LEAVES)
        return (
            make_pipeline(StandardScaler(), clf),
            "histgradientboostingclassifier__max_leaf_nodes",
            grid,
        )
    raise ConfigError(f"unknown probe kind {kind!r}; use one of {list(PROBE_KINDS)}")


__all__ = ["DEFAULT_CS", "PROBE_KINDS", "check_kinds", "make_search_space"]
