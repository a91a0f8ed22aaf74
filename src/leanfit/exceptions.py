"""The exceptions leanfit raises.

Every error derives from :class:`LeanfitError`; each subclass also inherits the
builtin it refines, so ``except ValueError`` keeps working for callers that do
not know leanfit::

    LeanfitError
     ├ RecipeError(LeanfitError, ValueError)      a recipe field is missing, misspelt or out of range
     ├ DataError(LeanfitError, ValueError)        a file, column or row cannot be used
     ├ ArtifactError(LeanfitError, RuntimeError)  bad checksum, missing file, unknown format
     ├ BackendError(LeanfitError, RuntimeError)   a search or training backend failed (Ray, DDP)
     └ MissingDependencyError(LeanfitError, ImportError)  an optional extra is not installed
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "BackendError",
    "DataError",
    "LeanfitError",
    "MissingDependencyError",
    "RecipeError",
]


class LeanfitError(Exception):
    """Root of every error leanfit raises on purpose."""


class RecipeError(LeanfitError, ValueError):
    """A recipe field is missing, misspelt or has a value out of range."""


class DataError(LeanfitError, ValueError):
    """A data source, column or row cannot be used as asked."""


class ArtifactError(LeanfitError, RuntimeError):
    """An artifact is missing a file, fails its checksum or has an unknown format."""


class BackendError(LeanfitError, RuntimeError):
    """A search or training backend failed."""


class MissingDependencyError(LeanfitError, ImportError):
    """An optional dependency is needed for the feature asked for."""
