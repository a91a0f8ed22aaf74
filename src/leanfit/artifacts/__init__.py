"""The pickle-free artifact: one ONNX graph plus a checksummed ``manifest.json``.

This package is on the serving path: it imports numpy, pandas and onnxruntime only.
Exporting (scikit-learn and torch graphs merged into one) lives in
:mod:`leanfit.artifacts.export` and is imported only by the training side.

Example:
    >>> import leanfit
    >>> predictor = leanfit.load("runs/digits")          # doctest: +SKIP
    >>> predictor.predict(frame)                          # doctest: +SKIP
"""

from __future__ import annotations

from .manifest import FORMAT, Manifest, file_sha256, read_manifest, verify, write_manifest
from .predictor import Predictor, load, resolve_model_dir
from .reference import reference_statistics

__all__ = [
    "FORMAT",
    "Manifest",
    "Predictor",
    "file_sha256",
    "load",
    "read_manifest",
    "reference_statistics",
    "resolve_model_dir",
    "verify",
    "write_manifest",
]
