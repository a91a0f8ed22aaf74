"""leanfit: from a dataset to the best model that fits a deployment budget, exported and served.

``import leanfit`` is light: the stages load on first use, so a server imports
neither torch nor Optuna nor scikit-learn.

Example:
    >>> import leanfit
    >>> sorted(leanfit.__all__)[:3]
    ['ArtifactError', 'BackendError', 'ColumnSpec']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .exceptions import (
    ArtifactError,
    BackendError,
    DataError,
    LeanfitError,
    MissingDependencyError,
    RecipeError,
)
from .schema import ColumnSpec

__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "BackendError",
    "ColumnSpec",
    "DataError",
    "LeanfitError",
    "MissingDependencyError",
    "Predictor",
    "Recipe",
    "RecipeError",
    "RunResult",
    "Search",
    "__version__",
    "load",
    "load_recipe",
    "run",
]

_LAZY = {
    "run": ("leanfit.pipeline", "run"),
    "RunResult": ("leanfit.pipeline", "RunResult"),
    "load": ("leanfit.artifacts", "load"),
    "Predictor": ("leanfit.artifacts", "Predictor"),
    "Recipe": ("leanfit.recipe", "Recipe"),
    "load_recipe": ("leanfit.recipe", "load_recipe"),
    "Search": ("leanfit.search", "Search"),
}

if TYPE_CHECKING:
    from .artifacts import Predictor, load
    from .pipeline import RunResult, run
    from .recipe import Recipe, load_recipe
    from .search import Search


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'leanfit' has no attribute {name!r}")
