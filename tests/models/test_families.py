"""The contract every model family honours, run over every family and both tasks.

Each case is fitted once per module on tiny seeded data, then exported once: the ONNX
graph must have exactly the contract's input, outputs, opsets and IR version, and
agree with the fitted estimator when run by ONNX Runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from leanfit.exceptions import RecipeError
from leanfit.models import TASKS, Family, active, check_params, get_family

FAMILY_NAMES = ("cnn", "hgb", "knn", "linear", "mlp", "rf")
CASES = [(name, task) for name in FAMILY_NAMES for task in TASKS]
#: Small budgets so the torch families train in well under a second.
FAST = {"mlp": {"hidden": 32, "max_epochs": 15}, "cnn": {"channels": 8, "max_epochs": 10}}


@dataclass
class Fitted:
    family: Family
    task: str
    estimator: Any
    data: Any
    model: onnx.ModelProto


def _data_for(request: pytest.FixtureRequest, name: str, task: str) -> Any:
    if name == "cnn":
        return request.getfixturevalue(
            "digits_data" if task == "classification" else "digits_regression_data"
        )
    return request.getfixturevalue("classification_data" if task == "classification" else "regression_data")


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}-{t}" for n, t in CASES])
def fitted(request: pytest.FixtureRequest) -> Fitted:
    name, task = request.param
    family = get_family(name)
    data = _data_for(request, name, task)
    estimator = family.build(
        FAST.get(name, {}),
        task=task,
        n_features=data.n_features,
        n_classes=data.n_classes,
        seed=0,
        image_shape=data.image_shape,
        device="cpu",
    )
    estimator = family.fit(estimator, data.X_train, data.y_train, X_valid=data.X_test, y_valid=data.y_test)
    return Fitted(family, task, estimator, data, family.to_onnx(estimator, data.n_features))


def _run(model: onnx.ModelProto, X: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"features": X})


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


# -- spaces, grids, defaults ----------------------------------------------------------------------
@pytest.mark.parametrize("name", FAMILY_NAMES)
@pytest.mark.parametrize("task", TASKS)
def test_grid_and_defaults_lie_inside_the_space(name: str, task: str) -> None:
    family = get_family(name)
    space = family.space(task)
    grid = family.grid(task)
    assert 1 <= len(grid) <= 12
    for config in [*grid, family.defaults(task)]:
        check_params(space, config)
        # Conditional keys appear exactly when their condition holds.
        assert set(config) == set(active(space, config)), config
    assert len({tuple(sorted(c.items())) for c in grid}) == len(grid), "grid has duplicates"


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_unknown_parameter_names_the_closest(name: str) -> None:
    family = get_family(name)
    key = next(iter(family.space("regression")))
    with pytest.raises(RecipeError, match=f"unknown parameter '{key}x'.*Did you mean '{key}'"):
        family.build(
            {f"{key}x": 1}, task="regression", n_features=64, n_classes=0, seed=0, image_shape=(8, 8)
        )


def test_fixed_values_outside_the_search_range_are_accepted() -> None:
    model = get_family("hgb").build({"max_iter": 5}, task="regression", n_features=3, n_classes=0, seed=0)
    assert model.max_iter == 5


def test_unknown_task_is_rejected() -> None:
    with pytest.raises(
        RecipeError, match="task must be one of classification, regression; got 'clasification'. Did you mean"
    ):
        get_family("linear").build({}, task="clasification", n_features=3, n_classes=2, seed=0)


@pytest.mark.parametrize(
    ("name", "scale", "iterative"),
    [("linear", True, False), ("hgb", False, False), ("rf", False, False), ("knn", True, False)]
    + [("mlp", True, True), ("cnn", True, True)],
)
def test_family_flags(name: str, scale: bool, iterative: bool) -> None:
    family = get_family(name)
    assert (family.name, family.scale, family.iterative) == (name, scale, iterative)


# -- fit and predict ------------------------------------------------------------------------------
def test_fit_learns_something(fitted: Fitted) -> None:
    data, est = fitted.data, fitted.estimator
    if fitted.task == "classification":
        accuracy = float(np.mean(est.predict(data.X_test) == data.y_test))
        assert accuracy > 1.5 / fitted.data.n_classes  # well above chance
    else:
        residual = np.mean((est.predict(data.X_test) - data.y_test) ** 2)
        assert 1 - residual / np.var(data.y_test) > 0.3


def test_predict_output_shape_and_dtype(fitted: Fitted) -> None:
    out = fitted.family.predict_output(fitted.estimator, fitted.data.X_test)
    n = len(fitted.data.X_test)
    assert out.dtype == np.float64
    if fitted.task == "classification":
        assert out.shape == (n, fitted.data.n_classes)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    else:
        assert out.shape == (n,)


# -- ONNX contract --------------------------------------------------------------------------------
def test_onnx_input_outputs_opsets(fitted: Fitted) -> None:
    model = fitted.model
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 10
    assert {op.domain: op.version for op in model.opset_import} == {"": 18, "ai.onnx.ml": 3}
    assert len(model.opset_import) == 2
    (inp,) = model.graph.input
    assert inp.name == "features"
    assert inp.type.tensor_type.elem_type == TensorProto.FLOAT
    assert _dims(inp) == ["N", fitted.data.n_features]
    outputs = {o.name: o for o in model.graph.output}
    if fitted.task == "classification":
        assert list(outputs) == ["label", "probabilities"]
        assert outputs["label"].type.tensor_type.elem_type == TensorProto.INT64
        assert _dims(outputs["label"]) == ["N"]
        assert outputs["probabilities"].type.tensor_type.elem_type == TensorProto.FLOAT
        assert _dims(outputs["probabilities"]) == ["N", fitted.data.n_classes]
    else:
        assert list(outputs) == ["prediction"]
        assert outputs["prediction"].type.tensor_type.elem_type == TensorProto.FLOAT
        assert _dims(outputs["prediction"]) == ["N"]


def test_onnx_matches_the_estimator(fitted: Fitted) -> None:
    X = fitted.data.X_test
    outputs = _run(fitted.model, X)
    if fitted.task == "classification":
        label, proba = outputs
        assert label.dtype == np.int64 and label.shape == (len(X),)
        assert proba.dtype == np.float32 and proba.shape == (len(X), fitted.data.n_classes)
        np.testing.assert_allclose(proba, fitted.estimator.predict_proba(X), atol=1e-4)
        np.testing.assert_array_equal(label, fitted.estimator.predict(X))
    else:
        (prediction,) = outputs
        assert prediction.dtype == np.float32 and prediction.shape == (len(X),)
        expected = fitted.estimator.predict(X)
        np.testing.assert_allclose(prediction, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_onnx_batch_dimension_is_dynamic(fitted: Fitted) -> None:
    for n in (1, 3):
        outputs = _run(fitted.model, fitted.data.X_test[:n])
        assert all(len(o) == n for o in outputs)


def test_onnx_merges_with_a_preprocessing_graph(fitted: Fitted) -> None:
    """A stand-in for the preprocessor: raw input ``x`` -> ``features``, with the same opsets."""
    n_features = fitted.data.n_features
    pre = helper.make_model(
        helper.make_graph(
            [helper.make_node("Identity", ["x"], ["features"])],
            "pre",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_features])],
            [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", n_features])],
        ),
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("ai.onnx.ml", 3)],
        ir_version=10,
    )
    model = onnx.compose.add_prefix(fitted.model, "model_")
    merged = onnx.compose.merge_models(pre, model, io_map=[("features", "model_features")])
    session = ort.InferenceSession(merged.SerializeToString(), providers=["CPUExecutionProvider"])
    X = fitted.data.X_test[:5]
    for got, want in zip(session.run(None, {"x": X}), _run(fitted.model, X), strict=True):
        np.testing.assert_allclose(got, want)
