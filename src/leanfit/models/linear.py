"""The ``linear`` family: regularised logistic regression and Ridge / Lasso / ElasticNet.

Classification uses ``LogisticRegression(solver="saga")``; the searched ``penalty``
(``l1``, ``l2``, ``elasticnet``) maps onto ``l1_ratio`` (1, 0, or the searched value),
the API scikit-learn 1.8+ asks for now that its ``penalty`` argument is deprecated.
Regression searches the estimator ``kind`` and its ``alpha``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ._base import Family, check_shape_args
from ._space import Categorical, Dist, Float

__all__ = ["LinearFamily"]

_L1_RATIO = {"l1": 1.0, "l2": 0.0}


def _penalty_is_deprecated() -> bool:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().get_params().get("penalty") == "deprecated"


class LinearFamily(Family):
    """Regularised linear models; fast, small, a strong baseline on standardized features.

    Example:
        >>> import numpy as np
        >>> family = LinearFamily()
        >>> model = family.build({}, task="regression", n_features=2, n_classes=0, seed=0)
        >>> type(model).__name__
        'Ridge'
    """

    name: ClassVar[str] = "linear"
    scale: ClassVar[bool] = True
    extra_params: ClassVar[tuple[str, ...]] = ("max_iter", "tol")

    def space(self, task: str) -> dict[str, Dist]:
        if task == "classification":
            return {
                "penalty": Categorical(("l2", "l1", "elasticnet")),
                "C": Float(1e-3, 1e2, log=True),
                "l1_ratio": Float(0.05, 0.95, when=("penalty", "elasticnet")),
            }
        return {
            "kind": Categorical(("ridge", "lasso", "elasticnet")),
            "alpha": Float(1e-4, 1e2, log=True),
            "l1_ratio": Float(0.05, 0.95, when=("kind", "elasticnet")),
        }

    def defaults(self, task: str) -> dict[str, object]:
        if task == "classification":
            return {"penalty": "l2", "C": 1.0}
        return {"kind": "ridge", "alpha": 1.0}

    def grid(self, task: str) -> list[dict[str, object]]:
        if task == "classification":
            return [
                *({"penalty": "l2", "C": c} for c in (0.01, 0.1, 1.0, 10.0)),
                *({"penalty": "l1", "C": c} for c in (0.1, 1.0, 10.0)),
                *({"penalty": "elasticnet", "C": c, "l1_ratio": 0.5} for c in (0.1, 1.0, 10.0)),
            ]
        return [
            *({"kind": "ridge", "alpha": a} for a in (0.01, 0.1, 1.0, 10.0, 100.0)),
            *({"kind": "lasso", "alpha": a} for a in (0.001, 0.01, 0.1, 1.0)),
            *({"kind": "elasticnet", "alpha": a, "l1_ratio": 0.5} for a in (0.01, 0.1, 1.0)),
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
        p: dict[str, Any] = self.resolve(params, task)
        check_shape_args(n_features, n_classes, task)
        fixed = {k: p[k] for k in self.extra_params if k in p}
        if task == "classification":
            from sklearn.linear_model import LogisticRegression

            penalty = p["penalty"]
            l1_ratio = float(p.get("l1_ratio", 0.5)) if penalty == "elasticnet" else _L1_RATIO[penalty]
            kwargs: dict[str, Any] = {"C": float(p["C"]), "solver": "saga", "max_iter": 1000, **fixed}
            if _penalty_is_deprecated():
                kwargs["l1_ratio"] = l1_ratio
            else:  # scikit-learn < 1.8 reads l1_ratio only with penalty="elasticnet"
                kwargs["penalty"] = penalty
                if penalty == "elasticnet":
                    kwargs["l1_ratio"] = l1_ratio
            return LogisticRegression(random_state=seed, **kwargs)

        from sklearn.linear_model import ElasticNet, Lasso, Ridge

        alpha = float(p["alpha"])
        if p["kind"] == "ridge":
            return Ridge(alpha=alpha, random_state=seed, **fixed)
        if p["kind"] == "lasso":
            return Lasso(alpha=alpha, random_state=seed, **{"max_iter": 5000, **fixed})
        return ElasticNet(
            alpha=alpha,
            l1_ratio=float(p.get("l1_ratio", 0.5)),
            random_state=seed,
            **{"max_iter": 5000, **fixed},
        )
