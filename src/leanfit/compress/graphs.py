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
from onnx import helper, numpy_helper

from ..artifacts.export import merge_graphs
from ..exceptions import ArtifactError

__all__ = [
    "QUANTIZABLE_OPS",
    "check_signature",
    "merge_candidate",
    "mlp_to_onnx",
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
    """Merge the preprocessing graph with a (compressed) model graph into one candidate graph,
    keeping only the opset imports its nodes use."""
    return tidy_opsets(merge_graphs(preprocessor, net))


def _signature(model: onnx.ModelProto) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    def spec(values: Any) -> list[tuple[str, int, int]]:
        return [(v.name, v.type.tensor_type.elem_type, len(v.type.tensor_type.shape.dim)) for v in values]

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


def mlp_to_onnx(estimator: Any, n_features: int) -> onnx.ModelProto:
    """Build the contract graph of a fitted MLP estimator directly (``Gemm``/``Relu``), in milliseconds.

    Equivalent to ``get_family("mlp").to_onnx`` for networks of ``Linear``, ``ReLU`` and
    ``Dropout`` layers (a test pins the parity); ``torch.onnx.export`` takes about a second
    per graph, and compression exports dozens. Other layouts fall back to the family's export.

    Example:
        >>> graph = mlp_to_onnx(estimator, 64)      # doctest: +SKIP
        >>> [o.name for o in graph.graph.output]    # doctest: +SKIP
        ['label', 'probabilities']
    """
    from torch import nn

    from ..models._base import is_classifier
    from ..models._onnx import BATCH_DIM, INPUT_NAME, finish

    module = estimator.module_
    if not all(isinstance(m, (nn.Linear, nn.ReLU, nn.Dropout)) for m in module):
        from ..models import get_family

        return get_family("cnn" if any(isinstance(m, nn.Conv2d) for m in module) else "mlp").to_onnx(
            estimator, n_features
        )
    nodes, inits = [], []
    current = INPUT_NAME
    for i, layer in enumerate(module):
        if isinstance(layer, nn.Linear):
            w = layer.weight.detach().cpu().numpy().astype(np.float32)
            b = layer.bias.detach().cpu().numpy().astype(np.float32)
            inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
            nodes.append(
                helper.make_node("Gemm", [current, f"W{i}", f"B{i}"], [f"h{i}"], transB=1, name=f"gemm_{i}")
            )
            current = f"h{i}"
        elif isinstance(layer, nn.ReLU):
            nodes.append(helper.make_node("Relu", [current], [f"h{i}"], name=f"relu_{i}"))
            current = f"h{i}"
    n_out = int(module[-1].out_features) if isinstance(module[-1], nn.Linear) else 0
    if is_classifier(estimator):
        classes = np.asarray(estimator.classes_, dtype=np.int64)
        nodes.append(helper.make_node("Softmax", [current], ["probabilities"], axis=1, name="softmax"))
        if np.array_equal(classes, np.arange(len(classes))):
            nodes.append(
                helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0, name="argmax")
            )
        else:
            inits.append(numpy_helper.from_array(classes, "classes"))
            nodes.append(
                helper.make_node("ArgMax", ["probabilities"], ["index"], axis=1, keepdims=0, name="argmax")
            )
            nodes.append(helper.make_node("Gather", ["classes", "index"], ["label"], axis=0, name="decode"))
        outputs = [
            helper.make_tensor_value_info("label", onnx.TensorProto.INT64, [BATCH_DIM]),
            helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, [BATCH_DIM, n_out]),
        ]
    else:
        outputs = [helper.make_tensor_value_info(current, onnx.TensorProto.FLOAT, [BATCH_DIM, 1])]
    graph = helper.make_graph(
        nodes,
        "leanfit_mlp",
        [helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.FLOAT, [BATCH_DIM, n_features])],
        outputs,
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return finish(model, classifier=is_classifier(estimator))
