"""Quantization of model graphs with ONNX Runtime: dynamic int8, static int8 QDQ, fp16, and fallback.

The input is a model graph (``features`` in, contract outputs out). It goes through
``quant_pre_process`` first: plain ``quantize_dynamic`` fails on graphs exported by
``torch.onnx`` (dynamo) with a shape-inference error. Only ``MatMul``, ``Gemm`` and ``Conv``
are quantized; ``Softmax``, ``ArgMax`` and the preprocessing stay float.

When a quantized graph loses more than the tolerance, :func:`fallback` keeps the most
sensitive nodes in float, one at a time (Intel Neural Compressor's op-by-op fallback): each
node is ranked by the output error of quantizing it alone.

Example:
    >>> spec = QuantSpec("static", method="minmax", per_channel=True)
    >>> spec.name
    'static-minmax-pc'
    >>> q = quantize_graph(prepare_graph(net), spec, calibration=X[:256])   # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx

from .._logging import get_logger
from ..exceptions import MissingDependencyError
from .graphs import QUANTIZABLE_OPS, quantizable_nodes, quiet_onnxruntime_tools, run_graph, tidy_opsets

__all__ = [
    "DEFAULT_SPECS",
    "QuantSpec",
    "fallback",
    "fp16_available",
    "node_sensitivity",
    "prepare_graph",
    "quantize_graph",
]

logger = get_logger(__name__)

_CALIBRATION_BATCH = 64


@dataclass(frozen=True)
class QuantSpec:
    """One quantization recipe.

    Args:
        kind: ``dynamic`` (weights int8 at export, activations at run time), ``static``
            (int8 QDQ with calibrated activation ranges) or ``fp16``.
        weight_type: ``qint8`` or ``quint8`` (dynamic); static weights are always ``qint8``.
        activation_type: static activations, ``qint8`` (ONNX Runtime's default) or ``quint8``.
        method: static calibration, ``minmax``, ``entropy`` or ``percentile``.
        per_channel: one scale per output channel of each weight.
        exclude: node names kept in float.
    """

    kind: Literal["dynamic", "static", "fp16"]
    weight_type: Literal["qint8", "quint8"] = "qint8"
    activation_type: Literal["qint8", "quint8"] = "qint8"
    method: Literal["minmax", "entropy", "percentile"] = "minmax"
    per_channel: bool = False
    exclude: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        if self.kind == "fp16":
            base = "fp16"
        elif self.kind == "dynamic":
            base = f"dynamic-{self.weight_type}"
        else:
            base = f"static-{self.method}" + ("-u8" if self.activation_type == "quint8" else "")
        base += "-pc" if self.per_channel else ""
        return base + (f"-fallback{len(self.exclude)}" if self.exclude else "")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "dynamic":
            out["weight_type"] = self.weight_type
        if self.kind == "static":
            out.update(activation_type=self.activation_type, method=self.method)
        if self.kind != "fp16":
            out["per_channel"] = self.per_channel
        if self.exclude:
            out["float_nodes"] = list(self.exclude)
        return out


#: What the ``quantize`` method tries on every graph with MatMul/Gemm/Conv nodes.
DEFAULT_SPECS: tuple[QuantSpec, ...] = (
    QuantSpec("dynamic", weight_type="qint8"),
    QuantSpec("dynamic", weight_type="quint8"),
    QuantSpec("static", method="minmax"),
    QuantSpec("static", method="minmax", activation_type="quint8"),
    QuantSpec("static", method="minmax", per_channel=True),
    QuantSpec("static", method="entropy"),
    QuantSpec("static", method="percentile"),
    QuantSpec("fp16"),
)


def fp16_available() -> bool:
    """Whether ``onnxconverter-common`` (needed for fp16) is installed."""
    return importlib.util.find_spec("onnxconverter_common") is not None


def prepare_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """Run ``quant_pre_process`` (symbolic shape inference and graph optimisation) on a model graph.

    Example:
        >>> [n.op_type for n in prepare_graph(net).graph.node][:2]   # doctest: +SKIP
        ['Gemm', 'Relu']
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="leanfit-q-") as tmp, quiet_onnxruntime_tools():
        src, dst = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        onnx.save_model(model, str(src))
        quant_pre_process(str(src), str(dst))
        return onnx.load_model(str(dst))


class _Reader:
    """A ``CalibrationDataReader`` over rows of the feature matrix."""

    def __init__(self, X: np.ndarray, input_name: str) -> None:
        # Equal batches: the histogram calibrators (entropy, percentile) stack them.
        size = min(_CALIBRATION_BATCH, len(X))
        n = (len(X) // size) * size
        self.batches = [{input_name: X[i : i + size].astype(np.float32)} for i in range(0, n, size)]
        self.index = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.index >= len(self.batches):
            return None
        self.index += 1
        return self.batches[self.index - 1]

    def rewind(self) -> None:
        self.index = 0


def _fp16(model: onnx.ModelProto, exclude: Sequence[str]) -> onnx.ModelProto:
    if not fp16_available():
        raise MissingDependencyError(
            "fp16 conversion needs onnxconverter-common: pip install onnxconverter-common"
        )
    from onnxconverter_common import float16

    converted = float16.convert_float_to_float16(
        model, keep_io_types=True, node_block_list=list(exclude) or None, disable_shape_infer=False
    )
    return converted  # type: ignore[no-any-return]


def quantize_graph(
    model: onnx.ModelProto,
    spec: QuantSpec,
    *,
    calibration: np.ndarray | None = None,
    nodes: Sequence[str] | None = None,
) -> onnx.ModelProto:
    """Quantize a :func:`prepare_graph`-ed model graph as ``spec`` says.

    Args:
        model: the prepared model graph.
        spec: what to do.
        calibration: feature rows (``float [n, F]``) for static calibration, e.g. 512 training rows.
        nodes: quantize only these nodes (used to rank sensitivity); default all quantizable ones.

    Raises:
        ValueError: a static spec without calibration rows.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    if spec.kind == "fp16":
        keep = set(spec.exclude)
        if nodes is not None:
            keep |= {n.name for n in model.graph.node if n.name not in set(nodes)}
        return tidy_opsets(_fp16(model, sorted(keep)))
    types = {"qint8": QuantType.QInt8, "quint8": QuantType.QUInt8}
    common: dict[str, Any] = {
        "op_types_to_quantize": list(QUANTIZABLE_OPS),
        "per_channel": spec.per_channel,
        "nodes_to_exclude": _aliases(spec.exclude) or None,
        "nodes_to_quantize": _aliases(nodes) if nodes is not None else None,
    }
    with tempfile.TemporaryDirectory(prefix="leanfit-q-") as tmp, quiet_onnxruntime_tools():
        src, dst = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        onnx.save_model(model, str(src))
        if spec.kind == "dynamic":
            quantize_dynamic(str(src), str(dst), weight_type=types[spec.weight_type], **common)
        else:
            if calibration is None or len(calibration) == 0:
                raise ValueError("static quantization needs calibration rows")
            methods = {
                "minmax": CalibrationMethod.MinMax,
                "entropy": CalibrationMethod.Entropy,
                "percentile": CalibrationMethod.Percentile,
            }
            quantize_static(
                str(src),
                str(dst),
                _Reader(calibration, model.graph.input[0].name),
                quant_format=QuantFormat.QDQ,
                activation_type=types[spec.activation_type],
                weight_type=QuantType.QInt8,
                calibrate_method=methods[spec.method],
                **common,
            )
        return tidy_opsets(onnx.load_model(str(dst)))


def _aliases(names: Sequence[str]) -> list[str]:
    """Node names as the quantizers see them: the dynamic one first splits ``Gemm`` into ``<name>_MatMul`` + Add."""
    return [alias for name in names for alias in (name, f"{name}_MatMul")]


def _error(reference: np.ndarray, other: np.ndarray) -> float:
    scale = max(float(np.abs(reference).mean()), 1e-12)
    return float(np.abs(reference - other).mean()) / scale


def node_sensitivity(
    model: onnx.ModelProto,
    spec: QuantSpec,
    X: np.ndarray,
    output: str,
    *,
    calibration: np.ndarray | None = None,
) -> dict[str, float]:
    """Output error (mean absolute, relative to the fp32 output) of quantizing each node alone.

    Example:
        >>> node_sensitivity(prepared, QuantSpec("dynamic"), X_valid, "probabilities")   # doctest: +SKIP
        {'node_linear': 0.004, 'node_linear_1': 0.011, 'node_linear_2': 0.002}
    """
    feeds = {model.graph.input[0].name: X.astype(np.float32)}
    reference = run_graph(model, feeds, output)
    out = {}
    for name in quantizable_nodes(model):
        single = quantize_graph(model, replace(spec, exclude=()), calibration=calibration, nodes=[name])
        out[name] = _error(reference, run_graph(single, feeds, output))
    return out


def fallback(
    model: onnx.ModelProto,
    spec: QuantSpec,
    drop_of: Callable[[onnx.ModelProto], float],
    tolerance: float,
    *,
    X: np.ndarray,
    output: str,
    calibration: np.ndarray | None = None,
) -> tuple[onnx.ModelProto, QuantSpec, list[dict[str, Any]]] | None:
    """Keep the most sensitive nodes in float, one more at a time, until the drop is within ``tolerance``.

    Args:
        model: the prepared fp32 model graph.
        spec: the quantization that lost too much.
        drop_of: the metric drop of a quantized model graph against the fp32 one (validation rows).
        tolerance: the largest allowed drop.
        X, output: rows and output used to rank the nodes (:func:`node_sensitivity`).
        calibration: calibration rows for static specs.

    Returns:
        ``(graph, spec_with_exclusions, steps)`` for the first graph within tolerance that still
        quantizes at least one node, or ``None`` when none does.
    """
    ranking = node_sensitivity(model, spec, X, output, calibration=calibration)
    order = sorted(ranking, key=lambda n: -ranking[n])
    steps: list[dict[str, Any]] = []
    for k in range(1, len(order)):
        trial = replace(spec, exclude=tuple(order[:k]))
        graph = quantize_graph(model, trial, calibration=calibration)
        drop = drop_of(graph)
        steps.append({"float_nodes": list(trial.exclude), "drop": round(drop, 6)})
        logger.debug("fallback %s: %d float node(s), drop %.4g", spec.name, k, drop)
        if drop <= tolerance:
            return graph, trial, steps
    return None
