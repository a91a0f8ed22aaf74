"""The preprocessor: leak-free fitting and ONNX parity with scikit-learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from onnx import TensorProto

from leanfit.data import (
    OPSETS,
    build_preprocessor,
    load_dataset,
    make_splits,
    preprocessor_to_onnx,
    to_feature_matrix,
)
from leanfit.exceptions import DataError
from leanfit.schema import ColumnSpec, to_feeds


def _run(model: onnx.ModelProto, X: pd.DataFrame, columns: list[ColumnSpec]) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["features"], to_feeds(X, columns))[0]


@pytest.fixture
def messy(messy_csv: Path) -> tuple[pd.DataFrame, list[ColumnSpec], np.ndarray, np.ndarray]:
    ds = load_dataset(str(messy_csv), target="label")
    splits = make_splits(ds.y, ds.task, test_size=0.3, valid_size=0.0, seed=0)
    return ds.X, ds.columns, splits.train, splits.test


def test_fit_on_train_rows_only(messy: tuple[pd.DataFrame, list[ColumnSpec], np.ndarray, np.ndarray]) -> None:
    X, columns, train, _ = messy
    ct = build_preprocessor(columns, scale=True).fit(X.iloc[train])
    pipeline = ct.named_transformers_["numeric"]
    numeric = [c.name for c in columns if c.kind != "categorical"]
    train_rows = X.iloc[train][numeric].astype(np.float64)
    np.testing.assert_allclose(pipeline["impute"].statistics_, train_rows.median())
    assert not np.allclose(pipeline["impute"].statistics_, X[numeric].astype(np.float64).median())
    imputed = train_rows.fillna(train_rows.median())
    np.testing.assert_allclose(pipeline["scale"].mean_, imputed.mean())
    np.testing.assert_allclose(pipeline["scale"].scale_, imputed.std(ddof=0))


def test_layout_and_encoders() -> None:
    columns = [
        ColumnSpec("x", "numeric", nullable=True),
        ColumnSpec("n", "integer"),
        ColumnSpec("few", "categorical", categories=("a", "b")),
        ColumnSpec("many", "categorical", categories=tuple("abcdefg")),
    ]
    frame = pd.DataFrame(
        {
            "x": [1.0, np.nan, 3.0, 5.0],
            "n": [1, 2, 3, 4],
            "few": pd.Series(["a", "b", "a", ""], dtype=object),
            "many": pd.Series(["a", "b", "c", "d"], dtype=object),
        }
    )
    ct = build_preprocessor(columns, scale=False, onehot_max=3).fit(frame)
    assert [name for name, _, _ in ct.transformers] == ["numeric", "missing", "onehot", "ordinal"]
    Z = to_feature_matrix(ct, frame)
    assert Z.dtype == np.float32 and Z.shape == (4, 2 + 1 + 3 + 1)
    np.testing.assert_array_equal(Z[:, 0], [1, 3, 3, 5])  # median of 1, 3, 5
    np.testing.assert_array_equal(Z[:, 2], [0, 1, 0, 0])  # missing indicator of x
    unseen = frame.assign(few=pd.Series(["zz"] * 4, dtype=object), many=pd.Series(["zz"] * 4, dtype=object))
    Z = to_feature_matrix(ct, unseen)
    np.testing.assert_array_equal(Z[:, 3:6], 0)  # unseen -> all zeros
    np.testing.assert_array_equal(Z[:, 6], -1)  # unseen -> -1


def test_onnx_contract(messy: tuple[pd.DataFrame, list[ColumnSpec], np.ndarray, np.ndarray]) -> None:
    X, columns, train, _ = messy
    ct = build_preprocessor(columns, scale=True).fit(X.iloc[train])
    model = preprocessor_to_onnx(ct, columns)
    want = {
        "numeric": TensorProto.FLOAT,
        "datetime": TensorProto.FLOAT,
        "integer": TensorProto.INT64,
        "boolean": TensorProto.BOOL,
        "categorical": TensorProto.STRING,
    }
    inputs = [
        (i.name, i.type.tensor_type.elem_type, [d.dim_value for d in i.type.tensor_type.shape.dim])
        for i in model.graph.input
    ]
    assert inputs == [(c.name, want[c.kind], [0, 1]) for c in columns]
    (output,) = model.graph.output
    width = len(ct.get_feature_names_out())
    assert output.name == "features" and output.type.tensor_type.elem_type == TensorProto.FLOAT
    assert [d.dim_value for d in output.type.tensor_type.shape.dim] == [0, width]
    assert {o.domain: o.version for o in model.opset_import} == OPSETS


@pytest.mark.parametrize("scale", [True, False])
def test_onnx_parity(
    scale: bool, messy: tuple[pd.DataFrame, list[ColumnSpec], np.ndarray, np.ndarray]
) -> None:
    X, columns, train, test = messy
    ct = build_preprocessor(columns, scale=scale, onehot_max=2).fit(X.iloc[train])  # city goes ordinal
    model = preprocessor_to_onnx(ct, columns)
    X_test = X.iloc[test].reset_index(drop=True).copy()
    X_test.loc[0, "city"] = "Marseille"  # unseen in ordinal encoding
    X_test.loc[1, "leak"] = "unknown"  # unseen in one-hot encoding
    X_test.loc[2, ["age", "income", "signup"]] = np.nan  # missing, also where training had none
    X_test.loc[3, "visits"] = 10_000  # outside the training range
    expected = ct.transform(X_test)
    np.testing.assert_allclose(_run(model, X_test, columns), expected, rtol=1e-5, atol=1e-5)


def test_onnx_parity_with_awkward_names() -> None:
    rng = np.random.default_rng(0)
    n = 50
    columns = [
        ColumnSpec("petal width (cm)", "numeric", nullable=True),
        ColumnSpec("näme", "categorical", categories=("x", "y")),
        ColumnSpec("a-b", "integer"),
        ColumnSpec("merged_columns", "boolean"),  # the name of a tensor inside skl2onnx's graph
        ColumnSpec("level", "categorical", categories=tuple(f"l{i}" for i in range(30))),
    ]
    frame = pd.DataFrame(
        {
            "petal width (cm)": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)).astype(np.float32),
            "näme": pd.Series(rng.choice(["x", "y"], n), dtype=object),
            "a-b": rng.integers(-5, 5, n),
            "merged_columns": rng.random(n) < 0.5,
            "level": pd.Series(rng.choice([f"l{i}" for i in range(30)], n), dtype=object),
        }
    ).astype({"petal width (cm)": np.float64})
    ct = build_preprocessor(columns, scale=True).fit(frame.iloc[:40])
    model = preprocessor_to_onnx(ct, columns)
    assert [i.name for i in model.graph.input] == [c.name for c in columns]
    np.testing.assert_allclose(
        _run(model, frame.iloc[40:], columns), ct.transform(frame.iloc[40:]), atol=1e-5
    )


def test_bundled_parity() -> None:
    ds = load_dataset("sklearn:breast_cancer")
    splits = make_splits(ds.y, ds.task, seed=0)
    ct = build_preprocessor(ds.columns, scale=True).fit(ds.X.iloc[splits.train])
    got = _run(preprocessor_to_onnx(ct, ds.columns), ds.X.iloc[splits.test], ds.columns)
    np.testing.assert_allclose(got, to_feature_matrix(ct, ds.X.iloc[splits.test]), rtol=1e-5, atol=1e-5)


def test_column_named_features_is_refused() -> None:
    columns = [ColumnSpec("features", "numeric")]
    ct = build_preprocessor(columns, scale=False).fit(pd.DataFrame({"features": [1.0, 2.0]}))
    with pytest.raises(DataError, match=r"column 'features' has the name of the preprocessor's output"):
        preprocessor_to_onnx(ct, columns)


def test_column_missing_in_every_training_row() -> None:
    columns = [ColumnSpec("a", "numeric", nullable=True), ColumnSpec("b", "numeric")]
    frame = pd.DataFrame({"a": [np.nan] * 4 + [1.0, 2.0], "b": np.arange(6.0)})
    ct = build_preprocessor(columns, scale=True).fit(frame.iloc[:4])
    assert ct.transform(frame).shape == (6, 3)  # the column is kept, imputed with 0
    np.testing.assert_allclose(
        _run(preprocessor_to_onnx(ct, columns), frame, columns), ct.transform(frame), atol=1e-6
    )
