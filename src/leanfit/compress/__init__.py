"""Compression that pays: quantize, prune and distill, measured on this machine, keep only what wins.

:func:`compress_run` makes candidates from a run's model (ONNX Runtime int8 and fp16
quantization, structured pruning with exact surgery and fine-tuning, distillation into
small MLP students, and their combinations), evaluates each on the validation split,
benchmarks all of them side by side with ONNX Runtime, and replaces ``model/`` only with a
candidate within the accuracy tolerance that is measurably faster or smaller. See
``docs/compression.md``.

Example:
    >>> from leanfit.compress import compress_run
    >>> result = compress_run("runs/digits")      # doctest: +SKIP
    >>> result.to_dict()["chosen"]                # doctest: +SKIP
    'static-minmax'
"""

from __future__ import annotations

from .candidates import Candidate
from .distill import Distiller, augment, onnx_teacher
from .prune import MagnitudePruner, StructuredPruner, unit_importance
from .quantize import DEFAULT_SPECS, QuantSpec, prepare_graph, quantize_graph
from .result import CompressionResult
from .runner import compress_run
from .select import Scored, Selection, pareto_front, resolve_tolerance, select
from .surgery import count_parameters, mask, shrink

__all__ = [
    "DEFAULT_SPECS",
    "Candidate",
    "CompressionResult",
    "Distiller",
    "MagnitudePruner",
    "QuantSpec",
    "Scored",
    "Selection",
    "StructuredPruner",
    "augment",
    "compress_run",
    "count_parameters",
    "mask",
    "onnx_teacher",
    "pareto_front",
    "prepare_graph",
    "quantize_graph",
    "resolve_tolerance",
    "select",
    "shrink",
    "unit_importance",
]
