"""ONNX helpers the compressors share: tidy opsets, merge with preprocessing, run, compare signatures.

Every candidate is one merged graph, raw columns in and the contract's outputs out,
exactly like the original: compressed model graphs are merged with the run's
preprocessing graph, which is never quantized.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import onnx
from onnx import helper

from ..artifacts.export import merge_graphs
from ..exceptions import ArtifactError

__all__ = [
    "QUANTIZABLE_OPS",
    "check_signature",
    "merge_candidate",
    "quiet_onnxruntime_tools",
    "quantizable_nodes",
    "run_graph",
    "session",
    "tidy_opsets",
]

#: Operators the int8 quantizers touch; everything else (preprocessing, tree ensembles) stays float.
QUANTIZABLE_OPS = ("MatMul", "Gemm", "Conv")


def tidy_opsets(model: onnx.ModelProto) -> onnx.ModelProto:
    """Keep one import per domain and drop domains no node uses (the quantizers add several), in place.

    Example:
        >>> m = helper.make_model(helper.make_graph([], "g", [], []),
        ...                       opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("", 18),
        ...                                      helper.make_opsetid("com.microsoft", 1)])
        >>> [(o.domain, o.version) for o in tidy_opsets(m).opset_import]
        [('', 18)]
    """
    used = {node.domain or "" for node in model.graph.node} | {""}
    versions: dict[str, int] = {}
    for entry in model.opset_import:
        domain = entry.domain or ""
        if domain in used:
            versions[domain] = max(versions.get(domain, 0), entry.version)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in versions.items())
    return model


def quantizable_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes an int8 quantizer would change (MatMul, Gemm, Conv), in graph order."""
    return [node.name for node in model.graph.node if node.op_type in QUANTIZABLE_OPS]


def merge_candidate(preprocessor: onnx.ModelProto, net: onnx.ModelProto) -> onnx.ModelProto:
    """Merge the preprocessing graph with a (compressed) model graph into one tidy candidate graph."""
    net = tidy_opsets(onnx.ModelProto.FromString(net.SerializeToString()))
    return tidy_opsets(merge_graphs(preprocessor, net))


def _signature(model: onnx.ModelProto) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    def spec(values: Any) -> list[tuple[str, int, int]]:
        return [
            (v.name, v.type.tensor_type.elem_type, len(v.type.tensor_type.shape.dim)) for v in values
        ]

    return spec(model.graph.input), spec(model.graph.output)


def check_signature(candidate: onnx.ModelProto, original: onnx.ModelProto, *, name: str) -> None:
    """Raise unless ``candidate`` has the original's inputs and outputs (names, element types, ranks)."""
    got, want = _signature(candidate), _signature(original)
    if got != want:
        raise ArtifactError(
            f"candidate {name!r} changed the graph's signature: inputs/outputs {got} instead of {want}"
        )


def session(model: onnx.ModelProto | bytes, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session of a graph (quiet logs, ``threads`` intra-op threads)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


def run_graph(
    model: onnx.ModelProto | Any, feeds: Mapping[str, np.ndarray], output: str, *, chunk: int = 8192
) -> np.ndarray:
    """Run a graph (or a session) on feeds in chunks of rows; return one output as float64."""
    sess = session(model) if isinstance(model, onnx.ModelProto) else model
    n = len(next(iter(feeds.values())))
    parts = []
    for start in range(0, n, chunk):
        part = {k: v[start : start + chunk] for k, v in feeds.items()}
        parts.append(np.asarray(sess.run([output], part)[0], dtype=np.float64))
    return np.concatenate(parts) if parts else np.zeros((0,))


@contextlib.contextmanager
def quiet_onnxruntime_tools() -> Iterator[None]:
    """Silence the quantization tools' prints and root-logger notes while they run.

    ``onnxruntime.quantization`` prints calibration progress to stdout and logs advice
    through the root logger; a library must not print, so both are held back here.
    """
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)
