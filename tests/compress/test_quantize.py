"""Quantization with ONNX Runtime: outputs stay close to fp32, preprocessing stays float, fallback works."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from leanfit.compress.graphs import merge_candidate, mlp_to_onnx, quantizable_nodes, run_graph
from leanfit.compress.quantize import (
    DEFAULT_SPECS,
    QuantSpec,
    fallback,
    fp16_available,
    prepare_graph,
    quantize_graph,
)
from leanfit.models import MLPRegressor, get_family

from .conftest import Tiny


@pytest.fixture(scope="module")
def prepared(tiny: Tiny) -> onnx.ModelProto:
    return prepare_graph(mlp_to_onnx(tiny.model, tiny.X.shape[1]))


def _outputs(graph: onnx.ModelProto, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    feeds = {"features": X}
    return run_graph(graph, feeds, "probabilities"), run_graph(graph, feeds, "label")


@pytest.mark.parametrize("spec", DEFAULT_SPECS, ids=lambda s: s.name)
def test_quantized_outputs_stay_close_to_fp32(spec: QuantSpec, prepared: onnx.ModelProto, tiny: Tiny) -> None:
    if spec.kind == "fp16" and not fp16_available():
        pytest.skip("onnxconverter-common is not installed")
    q = quantize_graph(prepared, spec, calibration=tiny.X[:256])
    proba, label = _outputs(prepared, tiny.X_valid)
    q_proba, q_label = _outputs(q, tiny.X_valid)
    assert np.abs(q_proba - proba).max() < 0.05
    assert np.mean(q_label == label) >= 0.97
    np.testing.assert_allclose(q_proba.sum(axis=1), 1.0, atol=1e-5)  # Softmax stays float


def test_only_matmul_gemm_conv_are_quantized(prepared: onnx.ModelProto, tiny: Tiny) -> None:
    q = quantize_graph(prepared, QuantSpec("static"), calibration=tiny.X[:256])
    ops = [n.op_type for n in q.graph.node]
    assert ops.count("QuantizeLinear") >= 3
    producers = {o: n.op_type for n in q.graph.node for o in n.output}
    assert producers["probabilities"] == "Softmax" and producers["label"] == "ArgMax"
    assert {o.domain for o in q.opset_import} == {""}  # the quantizer's extra domains are tidied away


def test_dynamo_exported_graphs_need_the_pre_processing(tiny: Tiny) -> None:
    """``torch.onnx`` (dynamo) graphs quantize only after ``quant_pre_process``; leanfit runs it first."""
    net = get_family("mlp").to_onnx(tiny.model, tiny.X.shape[1])
    q = quantize_graph(prepare_graph(net), QuantSpec("dynamic"))
    assert "MatMulInteger" in {n.op_type for n in q.graph.node}
    assert np.abs(_outputs(q, tiny.X_valid)[0] - _outputs(net, tiny.X_valid)[0]).max() < 0.05


def test_fallback_keeps_the_most_sensitive_node_in_float(prepared: onnx.ModelProto, tiny: Tiny) -> None:
    nodes = quantizable_nodes(prepared)
    assert len(nodes) == 3
    spec = QuantSpec("dynamic")
    reference = _outputs(prepared, tiny.X_valid)[0]

    def error(node: str) -> float:
        single = quantize_graph(prepared, spec, nodes=[node])
        return float(np.abs(_outputs(single, tiny.X_valid)[0] - reference).mean())

    worst = max(nodes, key=error)

    def drop_of(
        graph: onnx.ModelProto,
    ) -> float:  # a fake metric: only the worst node in float is good enough
        quantized = {n.name for n in graph.graph.node if n.op_type == "MatMulInteger"}
        return 0.0 if not any(worst in name for name in quantized) and len(quantized) == 2 else 1.0

    found = fallback(prepared, spec, drop_of, 0.01, X=tiny.X_valid, output="probabilities")
    assert found is not None
    graph, trial, steps = found
    assert trial.exclude == (worst,) and trial.name == "dynamic-qint8-fallback1"
    assert steps == [{"float_nodes": [worst], "drop": 0.0}]
    assert fallback(prepared, spec, lambda g: 1.0, 0.01, X=tiny.X_valid, output="probabilities") is None


def test_direct_mlp_export_matches_the_family_export(tiny: Tiny) -> None:
    family = get_family("mlp")
    for est in (
        tiny.model,
        MLPRegressor(hidden=8, depth=1, max_epochs=3, device="cpu").fit(tiny.X, tiny.X[:, 0] * 5),
    ):
        mine, theirs = mlp_to_onnx(est, tiny.X.shape[1]), family.to_onnx(est, tiny.X.shape[1])
        assert [o.name for o in mine.graph.output] == [o.name for o in theirs.graph.output]
        for out in (o.name for o in theirs.graph.output):
            feeds = {"features": tiny.X_valid}
            np.testing.assert_allclose(run_graph(mine, feeds, out), run_graph(theirs, feeds, out), atol=1e-5)


def test_merging_keeps_the_output_names(tiny: Tiny) -> None:
    """``quant_pre_process`` annotates outputs in value_info; merging must not rename them."""
    import pandas as pd

    from leanfit.data import build_preprocessor, preprocessor_to_onnx
    from leanfit.schema import ColumnSpec

    columns = [ColumnSpec(f"x{i}", "numeric") for i in range(tiny.X.shape[1])]
    frame = pd.DataFrame(tiny.X, columns=[c.name for c in columns])
    pre = preprocessor_to_onnx(build_preprocessor(columns, scale=True).fit(frame), columns)
    q = quantize_graph(prepare_graph(mlp_to_onnx(tiny.model, tiny.X.shape[1])), QuantSpec("dynamic"))
    merged = merge_candidate(pre, q)
    assert [o.name for o in merged.graph.output] == ["label", "probabilities"]
    assert [i.name for i in merged.graph.input] == [c.name for c in columns]
