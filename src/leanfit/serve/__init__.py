"""``leanfit serve``: an Open Inference Protocol (KServe V2) server with batching, cache, metrics and drift.

Importing this package is light: it needs only ``leanfit.artifacts`` (numpy, pandas, ONNX
Runtime), Starlette, uvicorn and prometheus-client; never torch, Optuna or scikit-learn.
Names load on first use.

Example:
    >>> from leanfit.serve import ServeConfig
    >>> ServeConfig(max_batch_size=0).batching
    False
    >>> leanfit.serve.serve(["runs/credit"])                        # doctest: +SKIP
    >>> leanfit.serve.monitor("runs/credit", "new.csv").table()      # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import ServeConfig
from .errors import ServeConfigError, ServeError

__all__ = [
    "DriftReport",
    "FeatureDrift",
    "ServeConfig",
    "ServeConfigError",
    "ServeError",
    "create_app",
    "monitor",
    "serve",
]

_LAZY = {
    "create_app": ("leanfit.serve.app", "create_app"),
    "serve": ("leanfit.serve.server", "serve"),
    "monitor": ("leanfit.serve.drift", "monitor"),
    "DriftReport": ("leanfit.serve.drift", "DriftReport"),
    "FeatureDrift": ("leanfit.serve.drift", "FeatureDrift"),
}

if TYPE_CHECKING:
    from .app import create_app
    from .drift import DriftReport, FeatureDrift, monitor
    from .server import serve


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'leanfit.serve' has no attribute {name!r}")
