"""Splits and cross-validation folds."""

from __future__ import annotations

import numpy as np
import pytest

from leanfit.data import cv_folds, make_splits
from leanfit.exceptions import DataError

Y = np.repeat([0, 1, 2], [50, 30, 20])  # 100 rows, imbalanced


def test_splits_partition_the_rows_deterministically() -> None:
    a = make_splits(Y, "classification", test_size=0.2, valid_size=0.1, seed=3)
    b = make_splits(Y, "classification", test_size=0.2, valid_size=0.1, seed=3)
    c = make_splits(Y, "classification", test_size=0.2, valid_size=0.1, seed=4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.test, c.test)
    assert (len(a.train), len(a.valid), len(a.test)) == (70, 10, 20)
    everything = np.concatenate(a)
    assert sorted(everything.tolist()) == list(range(100))
    assert all(s.dtype == np.int64 and np.all(np.diff(s) > 0) for s in a)


def test_classification_splits_are_stratified() -> None:
    s = make_splits(Y, "classification", test_size=0.2, valid_size=0.2, seed=0)
    assert np.bincount(Y[s.test]).tolist() == [10, 6, 4]
    assert np.bincount(Y[s.valid]).tolist() == [10, 6, 4]
    assert np.bincount(Y[s.train]).tolist() == [30, 18, 12]


def test_singleton_class_falls_back_to_plain_split() -> None:
    y = np.r_[np.zeros(30, dtype=int), np.ones(29, dtype=int), [2]]
    s = make_splits(y, "classification", seed=0)
    assert sorted(np.concatenate(s).tolist()) == list(range(60))


def test_regression_and_empty_valid() -> None:
    y = np.linspace(0, 1, 50)
    s = make_splits(y, "regression", test_size=0.2, valid_size=0.0, seed=0)
    assert (len(s.train), len(s.valid), len(s.test)) == (40, 0, 10)


@pytest.mark.parametrize(
    ("test_size", "valid_size", "message"),
    [(1.2, 0.1, r"test_size must be in \[0, 1\); got 1.2"), (0.6, 0.5, r"must leave rows to train on")],
)
def test_bad_sizes(test_size: float, valid_size: float, message: str) -> None:
    with pytest.raises(DataError, match=message):
        make_splits(Y, "classification", test_size=test_size, valid_size=valid_size)


def test_cv_folds_partition_the_rows() -> None:
    folds = cv_folds(Y, "classification", k=5, seed=1)
    assert len(folds) == 5
    valid = np.concatenate([v for _, v in folds])
    assert sorted(valid.tolist()) == list(range(100))
    for train, v in folds:
        assert set(train.tolist()).isdisjoint(v.tolist()) and len(train) + len(v) == 100
        assert np.bincount(Y[v]).tolist() == [10, 6, 4]  # stratified
    again = cv_folds(Y, "classification", k=5, seed=1)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))


def test_cv_folds_regression_and_small_classes() -> None:
    folds = cv_folds(np.linspace(0, 1, 23), "regression", k=4)
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == list(range(23))
    y = np.r_[np.zeros(20, dtype=int), [1, 1]]  # too few of class 1 for 5 stratified folds
    folds = cv_folds(y, "classification", k=5)
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == list(range(22))
    with pytest.raises(DataError, match=r"cv folds must be between 2 and the number of rows \(22\); got 1"):
        cv_folds(y, "classification", k=1)
