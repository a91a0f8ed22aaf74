"""Tiny seeded data sets shared by the model tests (built once per session)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_classification, make_regression


@dataclass(frozen=True)
class Data:
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, ...] | None = None

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(np.unique(self.y_train)) if self.y_train.dtype.kind == "i" else 0


def _split(X: np.ndarray, y: np.ndarray, n_train: int, **kwargs: object) -> Data:
    return Data(X[:n_train], y[:n_train], X[n_train:], y[n_train:], **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def classification_data() -> Data:
    X, y = make_classification(300, 8, n_informative=5, n_classes=3, random_state=0)
    return _split(X.astype(np.float32), y.astype(np.int64), 240)


@pytest.fixture(scope="session")
def binary_data() -> Data:
    X, y = make_classification(300, 8, n_informative=4, random_state=1)
    return _split(X.astype(np.float32), y.astype(np.int64), 240)


@pytest.fixture(scope="session")
def regression_data() -> Data:
    X, y = make_regression(300, 6, n_informative=4, noise=5.0, random_state=0)
    return _split(X.astype(np.float32), y.astype(np.float64), 240)


def _digits(regression: bool) -> Data:
    digits = load_digits()
    X = (digits.data[:400] / 16.0).astype(np.float32)  # (N, 64) pixels in [0, 1]
    if regression:  # ink in the top half of the image: a spatial target a CNN learns quickly
        y = 10.0 * X[:, :32].mean(axis=1).astype(np.float64)
    else:
        y = digits.target[:400].astype(np.int64)
    return _split(X, y, 320, image_shape=(8, 8))


@pytest.fixture(scope="session")
def digits_data() -> Data:
    return _digits(regression=False)


@pytest.fixture(scope="session")
def digits_regression_data() -> Data:
    return _digits(regression=True)
