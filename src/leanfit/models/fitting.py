"""Fit one family on a dataset's feature matrix: the step the search, the refit and compression share."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._threads import limit_threads, resolve_threads
from ..data import Dataset
from ._base import Family

__all__ = ["cap_epochs", "early_stopping_split", "fit_family"]


def cap_epochs(params: dict[str, Any], cap: int | None) -> dict[str, Any]:
    """Cap a torch family's ``max_epochs`` at the recipe's ``train.max_epochs``.

    Example:
        >>> cap_epochs({"max_epochs": 200, "lr": 0.1}, 60)
        {'max_epochs': 60, 'lr': 0.1}
    """
    if cap is None:
        return dict(params)
    return {**params, "max_epochs": min(int(params.get("max_epochs", cap)), cap)}


def early_stopping_split(n: int, *, seed: int, share: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into fit and early-stopping rows (seeded).

    Example:
        >>> fit, stop = early_stopping_split(20, seed=0)
        >>> len(fit), len(stop)
        (17, 3)
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_stop = max(1, int(round(n * share))) if n >= 10 else 0
    return np.sort(order[n_stop:]), np.sort(order[:n_stop])


def fit_family(
    family: Family,
    params: dict[str, Any],
    data: Dataset,
    X: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    device: str = "auto",
    X_valid: np.ndarray | None = None,
    y_valid: np.ndarray | None = None,
    on_epoch: Any = None,
    threads: int | str = "auto",
) -> Any:
    """Build and fit one estimator of ``family`` on a preprocessed matrix.

    Iterative families without a validation split get a seeded 15% early-stopping
    split of ``X``. ``threads`` limits the fit's thread pools (see
    :func:`leanfit._threads.resolve_threads`).

    Example:
        >>> from leanfit.data import load_dataset
        >>> from leanfit.models import get_family
        >>> ds = load_dataset("sklearn:iris")
        >>> X = ds.X.to_numpy(dtype="float32")
        >>> fit_family(get_family("knn"), {}, ds, X, ds.y, seed=0).predict(X[:2]).tolist()
        [0, 0]
    """
    estimator = family.build(
        params,
        task=data.task,
        n_features=X.shape[1],
        n_classes=len(data.classes),
        seed=seed,
        image_shape=tuple(data.image_shape) if data.image_shape else None,
        device=device,
    )
    if family.iterative and X_valid is None:
        fit_rows, stop_rows = early_stopping_split(len(X), seed=seed)
        if len(stop_rows):
            X, X_valid, y, y_valid = X[fit_rows], X[stop_rows], y[fit_rows], y[stop_rows]
    with limit_threads(resolve_threads(threads, len(X))):
        return family.fit(estimator, X, y, X_valid=X_valid, y_valid=y_valid, on_epoch=on_epoch)
