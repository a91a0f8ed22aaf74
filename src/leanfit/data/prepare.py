"""``prepare``: a recipe's data loaded and split, identically in every process that asks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..recipe import Recipe
from .dataset import Dataset, load_dataset
from .split import cv_folds, make_splits

__all__ = ["CV_AUTO_MAX_ROWS", "Prepared", "prepare"]

#: Up to this many development rows, model selection uses 5-fold CV by default.
CV_AUTO_MAX_ROWS = 5000


@dataclass
class Prepared:
    """A recipe's dataset with its split rows and model-selection folds.

    Attributes:
        data: the loaded dataset.
        train, valid, test: row indices of the three splits.
        folds: ``(train_rows, valid_rows)`` pairs for model selection; one pair is a holdout.
    """

    data: Dataset
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]

    @property
    def dev(self) -> np.ndarray:
        """The development rows (train + valid): what the final model is fitted on."""
        return np.sort(np.concatenate([self.train, self.valid]))


def prepare(recipe: Recipe) -> Prepared:
    """Load the data of a recipe, split it and choose the model-selection folds.

    Example:
        >>> from leanfit.recipe import load_recipe
        >>> p = prepare(load_recipe({"data": {"source": "sklearn:iris"}}))
        >>> len(p.folds), len(p.test)
        (5, 30)
    """
    d = recipe.data
    data = load_dataset(
        d.source,
        target=d.target,
        task=None if d.task == "auto" else d.task,
        na_values=tuple(d.na_values),
        drop=tuple(d.drop),
        categorical=tuple(d.categorical),
        numeric=tuple(d.numeric),
        image_shape=tuple(d.image_shape) if d.image_shape else None,
        drop_id_like=d.drop_id_like,
        drop_constant=d.drop_constant,
    )
    splits = make_splits(data.y, data.task, test_size=d.test_size, valid_size=d.valid_size, seed=recipe.seed)
    dev = np.sort(np.concatenate([splits.train, splits.valid]))
    k = (5 if len(dev) <= CV_AUTO_MAX_ROWS else 0) if d.cv == "auto" else int(d.cv)
    if k >= 2:
        folds = [(dev[tr], dev[va]) for tr, va in cv_folds(data.y[dev], data.task, k=k, seed=recipe.seed)]
    else:
        folds = [(splits.train, splits.valid)]
    return Prepared(data, splits.train, splits.valid, splits.test, folds)
