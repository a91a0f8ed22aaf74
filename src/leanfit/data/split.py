"""Train/validation/test splits and cross-validation folds, seeded and stratified where possible."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._logging import get_logger
from ..exceptions import DataError

__all__ = ["Splits", "cv_folds", "make_splits"]

logger = get_logger(__name__)


class Splits(NamedTuple):
    """Row indices (sorted int64 arrays) of the three splits."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def make_splits(
    y: np.ndarray, task: str, *, test_size: float = 0.2, valid_size: float = 0.2, seed: int = 0
) -> Splits:
    """Split row indices into train, validation and test.

    ``test_size`` and ``valid_size`` are shares of all rows (0 gives an empty split).
    Classification splits are stratified when every class has at least two rows in the
    part being split; otherwise they are plain shuffled splits.

    Raises:
        DataError: the shares are out of range or leave no training rows.

    Example:
        >>> y = np.array([0, 1] * 10)
        >>> s = make_splits(y, "classification", test_size=0.2, valid_size=0.2, seed=0)
        >>> len(s.train), len(s.valid), len(s.test)
        (12, 4, 4)
        >>> np.bincount(y[s.test]).tolist()
        [2, 2]
    """
    y = np.asarray(y)
    n = len(y)
    for label, share in (("test_size", test_size), ("valid_size", valid_size)):
        if not 0.0 <= share < 1.0:
            raise DataError(f"{label} must be in [0, 1); got {share}")
    if test_size + valid_size >= 1.0:
        raise DataError(
            f"test_size + valid_size must leave rows to train on; got {test_size} + {valid_size} >= 1"
        )
    rows = np.arange(n)
    rest, test = _split(rows, y, task, round(test_size * n), seed)
    train, valid = _split(rest, y, task, round(valid_size * n), seed + 1)
    if len(train) == 0:
        raise DataError(f"no training rows are left from {n} rows; lower test_size or valid_size")
    return Splits(np.sort(train), np.sort(valid), np.sort(test))


def _split(rows: np.ndarray, y: np.ndarray, task: str, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    empty = np.array([], dtype=np.int64)
    size = min(size, len(rows) - 1)
    if size <= 0:
        return rows.astype(np.int64), empty
    stratify = None
    if task == "classification":
        labels = y[rows]
        _, counts = np.unique(labels, return_counts=True)
        n_classes = len(counts)
        if counts.min() >= 2 and n_classes <= size and n_classes <= len(rows) - size:
            stratify = labels
        else:
            logger.info("split of %d rows is not stratified: a class has fewer than 2 rows", len(rows))
    kept, held = train_test_split(rows, test_size=size, random_state=seed, shuffle=True, stratify=stratify)
    return np.asarray(kept, dtype=np.int64), np.asarray(held, dtype=np.int64)


def cv_folds(y: np.ndarray, task: str, *, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Shuffled ``k``-fold cross-validation folds ``(train_rows, valid_rows)``.

    Stratified for classification when every class has at least ``k`` rows.

    Raises:
        DataError: ``k`` is below 2 or above the number of rows.

    Example:
        >>> folds = cv_folds(np.array([0, 1] * 5), "classification", k=5)
        >>> len(folds), sorted(np.concatenate([v for _, v in folds]).tolist()) == list(range(10))
        (5, True)
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    y = np.asarray(y)
    if k < 2 or k > len(y):
        raise DataError(f"cv folds must be between 2 and the number of rows ({len(y)}); got {k}")
    rows = np.zeros((len(y), 1))
    if task == "classification" and np.unique(y, return_counts=True)[1].min() >= k:
        splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(rows, y)
    else:
        splits = KFold(n_splits=k, shuffle=True, random_state=seed).split(rows)
    return [(np.asarray(tr, dtype=np.int64), np.asarray(va, dtype=np.int64)) for tr, va in splits]
