"""ONNX conversion of scikit-learn's histogram gradient boosting, written here.

skl2onnx 1.20 cannot convert ``HistGradientBoosting*`` with onnx >= 1.19: it passes
Python booleans to the ``nodes_missing_value_tracks_true`` integer attribute, which
``onnx.helper.make_attribute`` now rejects (``TypeError: ... Expected an int, got a
boolean``). The graph is small enough to build directly, and doing so also pins the two
details that make it match scikit-learn exactly:

* missing values: a NaN goes left where the fitted node says ``missing_go_to_left``
  (``nodes_missing_value_tracks_true=1``), else right, as in scikit-learn;
* thresholds: scikit-learn compares float64 ``x <= t``; the ONNX tree compares in float32,
  so ``t`` is rounded *down* to the nearest float32, which gives the same answer for
  every float32 input.

The graph: ``TreeEnsembleRegressor`` (``ai.onnx.ml``) sums the raw scores of all trees
(one target per class for multiclass, plus the baseline), then the loss's inverse link
turns them into probabilities (sigmoid / softmax) or predictions (identity / exp).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..exceptions import ArtifactError
from ._onnx import BATCH_DIM, INPUT_NAME, TARGET_OPSET, finish

__all__ = ["hgb_to_onnx"]

_IDENTITY_LOSSES = ("squared_error", "absolute_error", "quantile")
_LOG_LINK_LOSSES = ("poisson", "gamma")


def _round_down_to_float32(values: np.ndarray) -> np.ndarray:
    """The largest float32 not above each float64 value (so ``x <= t`` keeps its truth for float32 x)."""
    rounded = values.astype(np.float32)
    above = rounded.astype(np.float64) > values
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded


def _tree_attributes(estimator: Any) -> dict[str, Any]:
    n_targets = int(estimator.n_trees_per_iteration_)
    node_parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("tree", "node", "feature", "mode", "value", "true", "false", "missing")
    }
    target_parts: dict[str, list[np.ndarray]] = {k: [] for k in ("tree", "node", "target", "weight")}
    for iteration, per_target in enumerate(estimator._predictors):
        for target, predictor in enumerate(per_target):
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise ArtifactError(
                    "hgb with categorical splits cannot be exported; leanfit builds it with "
                    "categorical_features=None and one-hot encodes categories in the preprocessor."
                )
            tree_id = iteration * n_targets + target
            n = len(nodes)
            ids = np.arange(n, dtype=np.int64)
            leaf = nodes["is_leaf"].astype(bool)
            node_parts["tree"].append(np.full(n, tree_id, dtype=np.int64))
            node_parts["node"].append(ids)
            node_parts["feature"].append(np.where(leaf, 0, nodes["feature_idx"]).astype(np.int64))
            node_parts["mode"].append(np.where(leaf, "LEAF", "BRANCH_LEQ"))
            thresholds = _round_down_to_float32(nodes["num_threshold"].astype(np.float64))
            node_parts["value"].append(np.where(leaf, np.float32(0), thresholds).astype(np.float32))
            node_parts["true"].append(np.where(leaf, 0, nodes["left"]).astype(np.int64))
            node_parts["false"].append(np.where(leaf, 0, nodes["right"]).astype(np.int64))
            node_parts["missing"].append(np.where(leaf, 0, nodes["missing_go_to_left"]).astype(np.int64))
            target_parts["tree"].append(np.full(int(leaf.sum()), tree_id, dtype=np.int64))
            target_parts["node"].append(ids[leaf])
            target_parts["target"].append(np.full(int(leaf.sum()), target, dtype=np.int64))
            target_parts["weight"].append(nodes["value"][leaf].astype(np.float32))

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts)

    baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(-1)
    return {
        "n_targets": n_targets,
        "aggregate_function": "SUM",
        "post_transform": "NONE",
        "base_values": baseline.astype(np.float32).tolist(),
        "nodes_treeids": cat(node_parts["tree"]).tolist(),
        "nodes_nodeids": cat(node_parts["node"]).tolist(),
        "nodes_featureids": cat(node_parts["feature"]).tolist(),
        "nodes_modes": [str(m) for m in cat(node_parts["mode"])],
        "nodes_values": cat(node_parts["value"]).tolist(),
        "nodes_truenodeids": cat(node_parts["true"]).tolist(),
        "nodes_falsenodeids": cat(node_parts["false"]).tolist(),
        "nodes_missing_value_tracks_true": cat(node_parts["missing"]).tolist(),
        "target_treeids": cat(target_parts["tree"]).tolist(),
        "target_nodeids": cat(target_parts["node"]).tolist(),
        "target_ids": cat(target_parts["target"]).tolist(),
        "target_weights": cat(target_parts["weight"]).tolist(),
    }


def hgb_to_onnx(estimator: Any, n_features: int) -> onnx.ModelProto:
    """Convert a fitted ``HistGradientBoostingClassifier`` / ``Regressor`` to the ONNX contract.

    Example:
        >>> import numpy as np
        >>> from sklearn.ensemble import HistGradientBoostingRegressor
        >>> X = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
        >>> model = hgb_to_onnx(HistGradientBoostingRegressor(max_iter=5).fit(X, X[:, 0]), 2)
        >>> [o.name for o in model.graph.output]
        ['prediction']
    """
    classifier = hasattr(estimator, "classes_")
    attrs = _tree_attributes(estimator)
    n_targets = attrs["n_targets"]
    nodes = [helper.make_node("TreeEnsembleRegressor", [INPUT_NAME], ["raw"], domain="ai.onnx.ml", **attrs)]
    inits: list[onnx.TensorProto] = []
    if classifier:
        outputs = ["label", "probabilities"]
        classes = np.asarray(estimator.classes_)
        n_classes = len(classes)
        if n_targets == 1:  # binary: raw is the log-odds of classes_[1]
            inits.append(numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one"))
            nodes += [
                helper.make_node("Sigmoid", ["raw"], ["p1"]),  # (N, 1)
                helper.make_node("Sub", ["one", "p1"], ["p0"]),  # (N, 1)
                helper.make_node("Concat", ["p0", "p1"], ["probabilities"], axis=1),  # (N, 2)
            ]
        else:
            nodes.append(helper.make_node("Softmax", ["raw"], ["probabilities"], axis=1))  # (N, C)
        codes = np.arange(n_classes)
        if np.issubdtype(classes.dtype, np.integer) and np.array_equal(classes, codes):
            nodes.append(helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0))
        else:
            if not np.issubdtype(classes.dtype, np.integer):
                raise ArtifactError(f"class labels must be int64 codes 0..C-1; got {classes[:5]!r}.")
            inits.append(numpy_helper.from_array(classes.astype(np.int64), "classes"))
            nodes += [
                helper.make_node("ArgMax", ["probabilities"], ["label_index"], axis=1, keepdims=0),
                helper.make_node("Gather", ["classes", "label_index"], ["label"], axis=0),
            ]
        value_infos = [
            helper.make_tensor_value_info("label", TensorProto.INT64, [BATCH_DIM]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [BATCH_DIM, n_classes]),
        ]
    else:
        loss = estimator.loss
        if loss in _LOG_LINK_LOSSES:
            nodes.append(helper.make_node("Exp", ["raw"], ["raw_mean"]))
            last = "raw_mean"
        elif loss in _IDENTITY_LOSSES:
            last = "raw"
        else:
            raise ArtifactError(f"hgb regression with loss {loss!r} cannot be exported.")
        inits.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat_shape"))
        nodes.append(helper.make_node("Reshape", [last, "flat_shape"], ["prediction"]))
        outputs = ["prediction"]
        value_infos = [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [BATCH_DIM])]
    graph = helper.make_graph(
        nodes,
        f"hgb_{'classifier' if classifier else 'regressor'}",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, n_features])],
        value_infos,
        initializer=inits,
    )
    assert [v.name for v in value_infos] == outputs
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in TARGET_OPSET.items()],
        producer_name="leanfit",
    )
    return finish(model, classifier=classifier)
