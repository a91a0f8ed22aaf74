"""The ``knn`` family: k-nearest neighbours on standardized features.

The ONNX graph (skl2onnx) computes all distances to the stored training rows, so its
size and latency grow with the training set; the tree ``algorithm`` only speeds up
scikit-learn's own predictions. Two converter details are handled here:

* skl2onnx 1.20 negates the ``TopK`` distances before turning them into weights, so
  ``weights="distance"`` silently behaves like ``"uniform"``; :func:`_fix_distance_sign`
  removes that negation.
* the graph weighs a neighbour by ``1 / max(d, 1e-6)``, where scikit-learn gives a query
  that coincides with training rows (``d == 0``) the mean of those rows only; the two
  agree to about ``1e-6`` relative.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .._logging import get_logger
from ._base import Family, check_shape_args, is_classifier
from ._onnx import skl_to_onnx
from ._space import Categorical, Dist, Int

__all__ = ["KNNFamily"]

logger = get_logger(__name__)


def _fix_distance_sign(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop a ``Mul(-1)`` applied to the values of a smallest-k ``TopK`` (distances are never negative)."""
    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    topk_values = {
        node.output[0]
        for node in graph.node
        if node.op_type == "TopK" and any(a.name == "largest" and a.i == 0 for a in node.attribute)
    }
    for index, node in enumerate(graph.node):
        if node.op_type != "Mul" or node.input[0] not in topk_values:
            continue
        factor = constants.get(node.input[1])
        if factor is not None and factor.size == 1 and float(factor.ravel()[0]) == -1.0:
            graph.node[index].CopyFrom(
                helper.make_node("Identity", [node.input[0]], list(node.output), name=f"{node.name}_fixed")
            )
    used = {name for node in graph.node for name in node.input}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    return model


class KNNFamily(Family):
    """``KNeighborsClassifier`` / ``Regressor`` with a kd- or ball-tree index.

    Example:
        >>> sorted(KNNFamily().space("classification"))
        ['algorithm', 'n_neighbors', 'p', 'weights']
    """

    name: ClassVar[str] = "knn"
    scale: ClassVar[bool] = True

    def space(self, task: str) -> dict[str, Dist]:
        return {
            "n_neighbors": Int(1, 50, log=True),
            "weights": Categorical(("uniform", "distance")),
            "p": Categorical((2, 1)),
            "algorithm": Categorical(("kd_tree", "ball_tree")),
        }

    def defaults(self, task: str) -> dict[str, object]:
        return {"n_neighbors": 10, "weights": "distance", "p": 2, "algorithm": "kd_tree"}

    def grid(self, task: str) -> list[dict[str, object]]:
        base = self.defaults(task)
        return [
            {**base, "n_neighbors": k, "weights": w, "p": p}
            for k in (3, 10, 30)
            for w in ("uniform", "distance")
            for p in (2, 1)
        ]

    def build(
        self,
        params: Mapping[str, object],
        *,
        task: str,
        n_features: int,
        n_classes: int,
        seed: int,
        image_shape: tuple[int, ...] | None = None,
        device: str = "auto",
    ) -> Any:
        p = self.resolve(params, task)
        check_shape_args(n_features, n_classes, task)
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

        cls: Callable[..., Any]
        cls = KNeighborsClassifier if task == "classification" else KNeighborsRegressor
        return cls(**p)

    def fit(
        self,
        estimator: Any,
        X: np.ndarray,
        y: np.ndarray,
        *,
        X_valid: np.ndarray | None = None,
        y_valid: np.ndarray | None = None,
        on_epoch: Callable[[int, np.ndarray], None] | None = None,
    ) -> Any:
        if estimator.n_neighbors > len(X):
            logger.info(
                "knn: n_neighbors=%d exceeds the %d training rows; using %d",
                estimator.n_neighbors,
                len(X),
                len(X),
            )
            estimator.set_params(n_neighbors=len(X))
        return estimator.fit(X, y)

    def to_onnx(self, estimator: Any, n_features: int) -> onnx.ModelProto:
        model = skl_to_onnx(estimator, n_features, classifier=is_classifier(estimator))
        return _fix_distance_sign(model)
