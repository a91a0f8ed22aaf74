"""Model families behind one small interface, and the registry ``name -> Family``.

Each family (``linear``, ``hgb``, ``rf``, ``knn``, ``mlp``, ``cnn``) has a search space,
a default grid, good defaults, ``build``, ``fit`` and ``to_onnx``; see :class:`Family`.
Plug-ins add theirs with :func:`register_family`.

Example:
    >>> import numpy as np
    >>> from leanfit.models import get_family
    >>> family = get_family("linear")
    >>> X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    >>> model = family.fit(family.build({}, task="regression", n_features=3, n_classes=0, seed=0), X, X[:, 0])
    >>> [o.name for o in family.to_onnx(model, 3).graph.output]
    ['prediction']
"""

from __future__ import annotations

from ..exceptions import RecipeError
from ..train._choices import did_you_mean
from ._base import TASKS, Family
from ._space import Categorical, Dist, Float, Int, active, check_params, suggest
from .cnn import CNNClassifier, CNNFamily, CNNRegressor
from .fitting import cap_epochs, early_stopping_split, fit_family
from .knn import KNNFamily
from .linear import LinearFamily
from .mlp import MLPClassifier, MLPFamily, MLPRegressor
from .trees import HGBFamily, RFFamily

__all__ = [
    "FAMILIES",
    "TASKS",
    "CNNClassifier",
    "CNNFamily",
    "CNNRegressor",
    "Categorical",
    "Dist",
    "Family",
    "Float",
    "HGBFamily",
    "Int",
    "KNNFamily",
    "LinearFamily",
    "MLPClassifier",
    "MLPFamily",
    "MLPRegressor",
    "RFFamily",
    "active",
    "cap_epochs",
    "early_stopping_split",
    "fit_family",
    "check_params",
    "get_family",
    "register_family",
    "suggest",
]

#: The registered families by name.
FAMILIES: dict[str, type[Family]] = {
    cls.name: cls for cls in (LinearFamily, HGBFamily, RFFamily, KNNFamily, MLPFamily, CNNFamily)
}


def get_family(name: str) -> Family:
    """The family registered as ``name``.

    Raises:
        RecipeError: no family has that name (the message suggests the closest).

    Example:
        >>> get_family("hgb").name
        'hgb'
    """
    try:
        return FAMILIES[name]()
    except (KeyError, TypeError):
        names = sorted(FAMILIES)
        raise RecipeError(
            f"unknown model family {name!r}; expected one of {', '.join(names)}.{did_you_mean(name, names)}"
        ) from None


def register_family(cls: type[Family], *, replace: bool = False) -> type[Family]:
    """Register a :class:`Family` subclass under its ``name``; usable as a class decorator.

    Raises:
        TypeError: ``cls`` is not a concrete ``Family`` subclass with a ``name``.
        ValueError: the name is taken by another class and ``replace`` is false.

    Example:
        >>> class Tiny(LinearFamily):
        ...     name = "tiny"
        >>> register_family(Tiny).name
        'tiny'
        >>> del FAMILIES["tiny"]
    """
    if not (isinstance(cls, type) and issubclass(cls, Family)) or not isinstance(
        getattr(cls, "name", None), str
    ):
        raise TypeError(f"register_family expects a Family subclass with a name; got {cls!r}.")
    if getattr(cls, "__abstractmethods__", None):
        raise TypeError(f"{cls.__name__} does not implement {', '.join(sorted(cls.__abstractmethods__))}.")
    current = FAMILIES.get(cls.name)
    if current is not None and current is not cls and not replace:
        raise ValueError(
            f"model family {cls.name!r} is already registered ({current.__name__}); pass replace=True."
        )
    FAMILIES[cls.name] = cls
    return cls
