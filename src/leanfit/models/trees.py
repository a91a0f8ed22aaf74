"""Tree ensembles: ``hgb`` (histogram gradient boosting) and ``rf`` (random forest).

Neither wants scaled inputs. ``hgb`` handles missing values natively and its ONNX graph
routes them as scikit-learn does (see :mod:`leanfit.models._hgb_onnx`, which replaces
skl2onnx's converter). ``rf`` is converted by skl2onnx, whose tree converter sends NaN
to the right child whatever the forest learnt, so ``rf`` refuses inputs with NaN at fit
time: the preprocessor imputes them for every family but ``hgb``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..exceptions import DataError
from ._base import Family, check_shape_args
from ._space import Categorical, Dist, Float, Int

if TYPE_CHECKING:
    import onnx

__all__ = ["HGBFamily", "RFFamily"]


class HGBFamily(Family):
    """``HistGradientBoostingClassifier`` / ``Regressor``: usually the strongest tabular baseline.

    Example:
        >>> HGBFamily().defaults("regression")["max_iter"]
        200
    """

    name: ClassVar[str] = "hgb"
    scale: ClassVar[bool] = False
    extra_params: ClassVar[tuple[str, ...]] = ("early_stopping", "max_bins")

    def space(self, task: str) -> dict[str, Dist]:
        return {
            "learning_rate": Float(0.01, 0.3, log=True),
            "max_iter": Int(50, 500, log=True),
            "max_leaf_nodes": Int(8, 128, log=True),
            "min_samples_leaf": Int(5, 100, log=True),
            "l2_regularization": Float(1e-6, 10.0, log=True),
        }

    def defaults(self, task: str) -> dict[str, object]:
        return {
            "learning_rate": 0.1,
            "max_iter": 200,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 20,
            "l2_regularization": 1e-6,
        }

    def grid(self, task: str) -> list[dict[str, object]]:
        base = self.defaults(task)
        return [
            {**base, "learning_rate": lr, "max_leaf_nodes": leaves, "max_iter": iters}
            for lr, iters in ((0.05, 300), (0.1, 100))
            for leaves in (15, 31, 63)
        ] + [{**base, "min_samples_leaf": m, "l2_regularization": l2} for m in (5, 50) for l2 in (1e-3, 1.0)]

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
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
        return cls(**p, categorical_features=None, random_state=seed)  # type: ignore[arg-type]

    def to_onnx(self, estimator: Any, n_features: int) -> onnx.ModelProto:
        from ._hgb_onnx import hgb_to_onnx

        return hgb_to_onnx(estimator, n_features)


class RFFamily(Family):
    """``RandomForestClassifier`` / ``Regressor`` with a bounded depth (the graph grows with it).

    Example:
        >>> RFFamily().space("classification")["max_features"].choices
        ('sqrt', 'log2', 0.5, 1.0)
    """

    name: ClassVar[str] = "rf"
    scale: ClassVar[bool] = False
    extra_params: ClassVar[tuple[str, ...]] = ("n_jobs",)

    def space(self, task: str) -> dict[str, Dist]:
        return {
            "n_estimators": Int(50, 300, log=True),
            "max_depth": Int(4, 32, log=True),
            "min_samples_leaf": Int(1, 20, log=True),
            "max_features": Categorical(("sqrt", "log2", 0.5, 1.0)),
        }

    def defaults(self, task: str) -> dict[str, object]:
        return {
            "n_estimators": 100,
            "max_depth": 16,
            "min_samples_leaf": 1 if task == "classification" else 2,
            "max_features": "sqrt" if task == "classification" else 1.0,
        }

    def grid(self, task: str) -> list[dict[str, object]]:
        base = self.defaults(task)
        return [
            {**base, "n_estimators": n, "max_depth": depth, "max_features": features}
            for n in (100, 300)
            for depth in (8, 16, 32)
            for features in ("sqrt", 0.5)
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
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        cls: Callable[..., Any]
        cls = RandomForestClassifier if task == "classification" else RandomForestRegressor
        return cls(**p, random_state=seed)

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
        columns = np.flatnonzero(np.isnan(np.asarray(X, dtype=np.float64)).any(axis=0))
        if len(columns):
            raise DataError(
                f"the rf family needs inputs without NaN (its ONNX graph cannot route missing values); "
                f"feature columns {columns[:10].tolist()} have some. Impute them in the preprocessor "
                "or use the hgb family, which handles missing values."
            )
        return estimator.fit(X, y)
