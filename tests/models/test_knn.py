"""The knn family: distance weights survive the ONNX conversion (skl2onnx sign bug fixed)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from leanfit.models import get_family


def _run(model, X: np.ndarray) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"features": X}
    )


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree"])
def test_distance_weights_match_sklearn(p: int, algorithm: str, regression_data, classification_data) -> None:
    family = get_family("knn")
    params = {"n_neighbors": 7, "weights": "distance", "p": p, "algorithm": algorithm}
    reg = family.fit(
        family.build(params, task="regression", n_features=6, n_classes=0, seed=0),
        regression_data.X_train,
        regression_data.y_train,
    )
    (prediction,) = _run(family.to_onnx(reg, 6), regression_data.X_test)
    expected = reg.predict(regression_data.X_test)
    np.testing.assert_allclose(prediction, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())

    clf = family.fit(
        family.build(params, task="classification", n_features=8, n_classes=3, seed=0),
        classification_data.X_train,
        classification_data.y_train,
    )
    label, proba = _run(family.to_onnx(clf, 8), classification_data.X_test)
    np.testing.assert_allclose(proba, clf.predict_proba(classification_data.X_test), atol=1e-4)
    np.testing.assert_array_equal(label, clf.predict(classification_data.X_test))


def test_exact_training_rows_agree_closely(regression_data) -> None:
    """A query equal to a training row: scikit-learn uses that row alone, ONNX weighs it by 1e6."""
    family = get_family("knn")
    model = family.fit(
        family.build({"weights": "distance"}, task="regression", n_features=6, n_classes=0, seed=0),
        regression_data.X_train,
        regression_data.y_train,
    )
    X = regression_data.X_train[:20]
    (prediction,) = _run(family.to_onnx(model, 6), X)
    np.testing.assert_allclose(
        prediction, model.predict(X), rtol=1e-4, atol=1e-4 * np.abs(regression_data.y_train).max()
    )


def test_n_neighbors_is_capped_by_the_training_rows(classification_data) -> None:
    family = get_family("knn")
    model = family.build({"n_neighbors": 50}, task="classification", n_features=8, n_classes=3, seed=0)
    family.fit(model, classification_data.X_train[:30], classification_data.y_train[:30])
    assert model.n_neighbors == 30
    assert model.predict(classification_data.X_test).shape == (len(classification_data.X_test),)
