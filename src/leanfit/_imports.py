"""Lazy optional imports that fail late with an install hint (after Optuna's ``try_import``)."""

from __future__ import annotations

import importlib
from types import ModuleType

from .exceptions import MissingDependencyError

_EXTRAS = {"ray": "ray", "lightgbm": "lightgbm"}


def optional_import(module: str, *, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install.

    Example:
        >>> optional_import("json").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = extra or _EXTRAS.get(module.split(".")[0], module)
        raise MissingDependencyError(
            f"{module!r} is needed for this feature but is not installed. "
            f"Install it with: pip install 'leanfit[{extra}]'"
        ) from exc
