from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from leanfit.evaluate import compute_metrics, metric_direction, primary_metric, score


def test_primary_metric_by_task() -> None:
    assert primary_metric("classification", 2) == "roc_auc"
    assert primary_metric("classification", 5) == "accuracy"
    assert primary_metric("regression", 0) == "r2"
    assert primary_metric("classification", 2, "f1_macro") == "f1_macro"
    assert metric_direction("rmse") == "minimize" and metric_direction("accuracy") == "maximize"


def test_classification_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    proba = rng.dirichlet(np.ones(3), 200).astype(np.float32)
    got = compute_metrics(y, proba, task="classification", n_classes=3)
    pred = proba.argmax(1)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-6)
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=1e-6)
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-6)
    norm = proba / proba.sum(1, keepdims=True)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, norm, multi_class="ovr"), abs=1e-6)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, norm), abs=1e-5)


def test_regression_metrics() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.0, 2.0, 3.0, 6.0])
    got = compute_metrics(y, pred, task="regression")
    assert got == {"rmse": 1.0, "mae": 0.5, "r2": pytest.approx(0.2)}


def test_auc_with_a_single_class_present_is_none_not_an_error() -> None:
    got = compute_metrics(
        np.zeros(4, dtype=int), np.tile([0.7, 0.3], (4, 1)), task="classification", n_classes=2
    )
    assert got["roc_auc"] is None and got["accuracy"] == 1.0


def test_wrong_metric_for_task() -> None:
    with pytest.raises(ValueError, match="does not apply to regression"):
        score("accuracy", np.zeros(2), np.zeros(2), task="regression")
