"""The linear family: the penalty maps onto scikit-learn's non-deprecated ``l1_ratio``."""

from __future__ import annotations

import numpy as np
import pytest

from leanfit.models import get_family


@pytest.mark.parametrize(
    ("params", "l1_ratio"),
    [({"penalty": "l2"}, 0.0), ({"penalty": "l1"}, 1.0), ({"penalty": "elasticnet", "l1_ratio": 0.3}, 0.3)],
)
def test_penalty_becomes_l1_ratio(params: dict[str, object], l1_ratio: float, binary_data) -> None:
    family = get_family("linear")
    model = family.build(params, task="classification", n_features=8, n_classes=2, seed=0)
    assert model.l1_ratio == l1_ratio and model.solver == "saga"
    # Warnings are errors here: a deprecated `penalty` argument would fail the fit.
    family.fit(model, binary_data.X_train, binary_data.y_train)
    if params["penalty"] == "l1":
        model_dense = family.build(
            {"penalty": "l2", "C": 0.05}, task="classification", n_features=8, n_classes=2, seed=0
        )
        sparse = family.build(
            {"penalty": "l1", "C": 0.05}, task="classification", n_features=8, n_classes=2, seed=0
        )
        family.fit(model_dense, binary_data.X_train, binary_data.y_train)
        family.fit(sparse, binary_data.X_train, binary_data.y_train)
        assert np.sum(sparse.coef_ == 0) > np.sum(model_dense.coef_ == 0)


@pytest.mark.parametrize(
    ("kind", "cls"), [("ridge", "Ridge"), ("lasso", "Lasso"), ("elasticnet", "ElasticNet")]
)
def test_regression_kinds(kind: str, cls: str, regression_data) -> None:
    family = get_family("linear")
    model = family.build({"kind": kind, "alpha": 0.1}, task="regression", n_features=6, n_classes=0, seed=0)
    assert type(model).__name__ == cls and model.alpha == 0.1
    family.fit(model, regression_data.X_train, regression_data.y_train)
    assert model.score(regression_data.X_test, regression_data.y_test) > 0.9


def test_fixed_extra_params_pass_through() -> None:
    model = get_family("linear").build(
        {"max_iter": 50}, task="classification", n_features=3, n_classes=2, seed=0
    )
    assert model.max_iter == 50
