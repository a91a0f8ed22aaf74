"""The :class:`Family` base class every model family implements.

A family is stateless: it describes a search space, a small default grid and a good
single configuration, builds an unfitted estimator (scikit-learn API) from a parameter
dict, fits it, and converts the fitted estimator to the ONNX contract of
:mod:`leanfit.models._onnx`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..exceptions import RecipeError
from ..train._choices import check_choice
from ._space import Dist, check_params

if TYPE_CHECKING:
    import onnx

__all__ = ["TASKS", "Family", "check_task"]

TASKS = ("classification", "regression")

OnEpoch = Callable[[int, np.ndarray], None]


def check_task(task: str) -> None:
    """Raise :class:`RecipeError` unless ``task`` is ``classification`` or ``regression``.

    Example:
        >>> check_task("regression")
    """
    check_choice("task", task, TASKS)


def is_classifier(estimator: Any) -> bool:
    """Whether a fitted scikit-learn style estimator is a classifier."""
    from sklearn.base import is_classifier as _is_classifier

    return bool(_is_classifier(estimator))


class Family(abc.ABC):
    """One model family: its search space, default grid, defaults, builder, fit and ONNX export.

    Subclasses set :attr:`name` and :attr:`scale` and implement :meth:`space`,
    :meth:`grid`, :meth:`defaults` and :meth:`build`; :meth:`fit`,
    :meth:`predict_output` and :meth:`to_onnx` have scikit-learn defaults.

    Example:
        >>> from leanfit.models import get_family
        >>> family = get_family("linear")
        >>> family.name, family.scale, family.iterative
        ('linear', True, False)
    """

    name: ClassVar[str]
    #: The family wants standardized inputs (the preprocessor scales numeric columns).
    scale: ClassVar[bool]
    #: :meth:`fit` calls ``on_epoch`` once per epoch, so a pruner can stop a trial early.
    iterative: ClassVar[bool] = False
    #: Keys :meth:`build` accepts besides those of :meth:`space` (fixed settings, never searched).
    extra_params: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def space(self, task: str) -> dict[str, Dist]:
        """The default search space for ``task``."""

    @abc.abstractmethod
    def grid(self, task: str) -> list[dict[str, object]]:
        """A small default grid (about a dozen configurations), every value inside :meth:`space`."""

    @abc.abstractmethod
    def defaults(self, task: str) -> dict[str, object]:
        """A good single configuration (used when a search has one trial, and enqueued first)."""

    @abc.abstractmethod
    def build(
        self,
        params: Mapping[str, object],
        *,
        task: str,
        n_features: int,
        n_classes: int,
        seed: int,
        image_shape: tuple[int, ...] | None = None,
        device: str = "auto",
    ) -> Any:
        """An unfitted scikit-learn style estimator; keys missing from ``params`` take :meth:`defaults`."""

    def resolve(self, params: Mapping[str, object], task: str) -> dict[str, object]:
        """Check ``task`` and the names in ``params``; return the defaults updated with ``params``.

        Example:
            >>> from leanfit.models import get_family
            >>> get_family("linear").resolve({"C": 10.0}, "classification")
            {'penalty': 'l2', 'C': 10.0}
        """
        check_task(task)
        check_params(self.space(task), params, extra=self.extra_params, ranges=False)
        return {**self.defaults(task), **params}

    def fit(
        self,
        estimator: Any,
        X: np.ndarray,
        y: np.ndarray,
        *,
        X_valid: np.ndarray | None = None,
        y_valid: np.ndarray | None = None,
        on_epoch: OnEpoch | None = None,
    ) -> Any:
        """Fit ``estimator`` on ``(X, y)`` and return it.

        Non-iterative families ignore the validation data and ``on_epoch``; the torch
        families use the validation data for early stopping and call
        ``on_epoch(epoch, valid_output)`` after each epoch (it may raise ``optuna.TrialPruned``).
        """
        return estimator.fit(X, y)

    def predict_output(self, estimator: Any, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, C)`` for a classifier, predictions ``(n,)`` for a regressor; float64."""
        if is_classifier(estimator):
            return np.asarray(estimator.predict_proba(X), dtype=np.float64)
        return np.asarray(estimator.predict(X), dtype=np.float64).reshape(len(X))

    def to_onnx(self, estimator: Any, n_features: int) -> onnx.ModelProto:
        """The fitted estimator as an ONNX graph with input ``features`` and the contract's outputs."""
        from ._onnx import skl_to_onnx

        return skl_to_onnx(estimator, n_features, classifier=is_classifier(estimator))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def check_shape_args(n_features: int, n_classes: int, task: str) -> None:
    """Validate the sizes :meth:`Family.build` receives."""
    if n_features < 1:
        raise RecipeError(f"a model needs at least one feature; got {n_features=}.")
    if task == "classification" and n_classes < 2:
        raise RecipeError(f"classification needs at least 2 classes; got {n_classes=}.")
