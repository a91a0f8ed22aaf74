"""Tree families: leanfit's own hgb ONNX converter (missing values, thresholds, links) and rf's NaN guard."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from leanfit.exceptions import DataError
from leanfit.models import get_family
from leanfit.models._hgb_onnx import _round_down_to_float32, hgb_to_onnx


def _run(model, X: np.ndarray) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"features": X}
    )


def _with_nans(X: np.ndarray, seed: int) -> np.ndarray:
    X = X.copy()
    mask = np.random.default_rng(seed).random(X.shape) < 0.15
    X[mask] = np.nan
    return X


@pytest.mark.parametrize("data_name", ["binary_data", "classification_data"])
def test_hgb_classifier_routes_missing_values_like_sklearn(
    data_name: str, request: pytest.FixtureRequest
) -> None:
    data = request.getfixturevalue(data_name)
    family = get_family("hgb")
    model = family.build(
        {"max_iter": 60}, task="classification", n_features=8, n_classes=data.n_classes, seed=0
    )
    family.fit(model, _with_nans(data.X_train, 0), data.y_train)
    X = _with_nans(data.X_test, 1)
    label, proba = _run(family.to_onnx(model, 8), X)
    np.testing.assert_allclose(proba, model.predict_proba(X), atol=1e-5)
    np.testing.assert_array_equal(label, model.predict(X))


def test_hgb_regressor_with_missing_values_and_nan_only_at_inference(regression_data) -> None:
    family = get_family("hgb")
    model = family.build({}, task="regression", n_features=6, n_classes=0, seed=0)
    family.fit(model, regression_data.X_train, regression_data.y_train)  # no NaN seen in training
    X = _with_nans(regression_data.X_test, 2)
    (prediction,) = _run(family.to_onnx(model, 6), X)
    expected = model.predict(X)
    np.testing.assert_allclose(prediction, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_hgb_thresholds_between_adjacent_float32_values() -> None:
    """Two feature values one float32 ulp apart: the split threshold lies between them."""
    a = np.float32(1.0) + np.float32(3) * np.finfo(np.float32).eps  # odd mantissa: the midpoint rounds up
    b = np.nextafter(a, np.float32(2))
    threshold = (np.float64(a) + np.float64(b)) / 2
    assert np.float64(np.float32(threshold)) > threshold  # naive rounding would send b left
    X = np.repeat(np.array([[a], [b]], dtype=np.float32), 50, axis=0)
    y = np.repeat(np.array([0, 1]), 50)
    model = HistGradientBoostingClassifier(max_iter=5, min_samples_leaf=5, random_state=0).fit(X, y)
    label, proba = _run(hgb_to_onnx(model, 1), X)
    np.testing.assert_array_equal(label, model.predict(X))
    np.testing.assert_array_equal(label, y)
    np.testing.assert_allclose(proba, model.predict_proba(X), atol=1e-6)


def test_round_down_to_float32() -> None:
    values = np.array([0.1, -0.1, 1.0, np.inf, 1e-50])
    rounded = _round_down_to_float32(values)
    assert rounded.dtype == np.float32
    assert np.all(rounded.astype(np.float64) <= values)
    finite = np.isfinite(values)
    assert np.all(np.nextafter(rounded, np.float32(np.inf))[finite].astype(np.float64) > values[finite])


def test_hgb_poisson_link_is_exported() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = rng.poisson(np.exp(X[:, 0]))
    model = HistGradientBoostingRegressor(loss="poisson", max_iter=20).fit(X, y)
    (prediction,) = _run(hgb_to_onnx(model, 3), X)
    np.testing.assert_allclose(prediction, model.predict(X), rtol=1e-4)


def test_hgb_non_code_class_labels_are_gathered() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = np.where(X[:, 0] > 0, 7, 3)
    model = HistGradientBoostingClassifier(max_iter=10).fit(X, y)
    label, _ = _run(hgb_to_onnx(model, 3), X)
    np.testing.assert_array_equal(label, model.predict(X))


def test_rf_refuses_missing_values(classification_data) -> None:
    family = get_family("rf")
    model = family.build({}, task="classification", n_features=8, n_classes=3, seed=0)
    X = classification_data.X_train.copy()
    X[3, 5] = np.nan
    with pytest.raises(DataError) as excinfo:
        family.fit(model, X, classification_data.y_train)
    assert str(excinfo.value) == (
        "the rf family needs inputs without NaN (its ONNX graph cannot route missing values); "
        "feature columns [5] have some. Impute them in the preprocessor or use the hgb family, "
        "which handles missing values."
    )


def test_tree_builds_are_seeded(regression_data) -> None:
    family = get_family("rf")
    preds = []
    for _ in range(2):
        model = family.build({"n_estimators": 50}, task="regression", n_features=6, n_classes=0, seed=3)
        preds.append(
            family.fit(model, regression_data.X_train, regression_data.y_train).predict(
                regression_data.X_test
            )
        )
    np.testing.assert_array_equal(*preds)
