"""load_dataset: typing, coercion, target encoding and its errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leanfit.data import load_dataset
from leanfit.exceptions import DataError
from leanfit.schema import to_feeds

from .conftest import MESSY_DUPLICATES, MESSY_ROWS


def test_messy_csv_dataset(messy_csv: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="leanfit"):
        ds = load_dataset(str(messy_csv), target="label")
    assert ds.task == "classification" and ds.classes == ["bad", "good"] and ds.target == "label"
    assert ds.name == "messy" and ds.image_shape is None
    assert ds.y.dtype == np.int64 and set(ds.y.tolist()) == {0, 1}
    assert ds.feature_names == ["age", "income", "city", "member", "signup", "visits", "leak"]
    assert {c: str(t) for c, t in ds.X.dtypes.items()} == {
        "age": "float64",
        "income": "float64",
        "city": "object",
        "member": "bool",
        "signup": "float64",
        "visits": "int64",
        "leak": "object",
    }
    assert len(ds.X) == MESSY_ROWS + MESSY_DUPLICATES
    assert ds.X["age"].isna().sum() == 11  # "", NA, N/A, NaN and null all read as missing
    assert (ds.X["city"] == "").sum() == 6 and set(ds.X["city"]) == {"", "Lyon", "Nice", "Paris"}
    assert ds.X["signup"].iloc[0] == (pd.Timestamp("2023-01-01") - pd.Timestamp("1970-01-01")).days
    q = ds.quality
    assert q.dropped == ["id", "const"] and q.id_like == ["id"] and q.constant == ["const"]
    assert q.duplicate_rows == MESSY_DUPLICATES
    assert [s["column"] for s in q.leakage] == ["leak"]
    assert len(caplog.records) == len(q.warnings) == 4
    json.dumps(q.to_dict())


def test_x_matches_serving_coercion(messy_csv: Path) -> None:
    ds = load_dataset(str(messy_csv), target="label")
    feeds = to_feeds(ds.X, ds.columns)
    for spec in ds.columns:
        expected = ds.X[spec.name].to_numpy()
        got = feeds[spec.name].ravel()
        if spec.kind in ("numeric", "datetime"):
            np.testing.assert_array_equal(got.astype(np.float64), expected)
        else:
            assert got.tolist() == expected.tolist()


def test_missing_targets_are_dropped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x,y\n1,a\n2,\n3,b\n4,NA\n5,a\n6,b\n", encoding="utf-8")
    ds = load_dataset(str(path), target="y")
    assert len(ds.X) == 4 and ds.y.tolist() == [0, 1, 0, 1] and ds.quality.target_missing == 2
    assert "dropped 2 rows whose target 'y' is missing" in ds.quality.warnings


def test_classes_are_json_able_python_values(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("x,y\n1,3\n2,1\n3,3\n4,1\n5,2\n6,2\n7,1\n", encoding="utf-8")
    ds = load_dataset(str(path), target="y")
    assert ds.classes == [1, 2, 3] and all(type(c) is int for c in ds.classes)
    assert ds.y.tolist() == [2, 0, 2, 0, 1, 1, 0]


def test_task_override(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("x,y\n1,1\n2,0\n3,1\n4,0\n", encoding="utf-8")
    ds = load_dataset(str(path), target="y", task="regression")
    assert ds.y.dtype == np.float64 and ds.classes == []
    path.write_text("x,y\n1,a\n2,b\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"target 'y' holds 'a', which is not a number; regression needs"):
        load_dataset(str(path), target="y", task="regression")


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "diabetes"])
def test_bundled(name: str) -> None:
    ds = load_dataset(f"sklearn:{name}")
    assert ds.task == ("regression" if name == "diabetes" else "classification")
    assert all(c.kind == "numeric" for c in ds.columns) and ds.quality.dropped == []


def test_digits_keep_every_pixel() -> None:
    ds = load_dataset("sklearn:digits")
    assert ds.image_shape == (8, 8) and ds.X.shape == (1797, 64) and ds.classes == list(range(10))
    assert "pixel_0_0" in ds.quality.constant and ds.quality.dropped == []


def test_synthetic() -> None:
    ds = load_dataset("synthetic:classification?rows=60&features=5&classes=3&seed=3")
    assert ds.X.shape == (60, 5) and ds.classes == [0, 1, 2] and ds.name == "synthetic-classification"


# ----------------------------------------------------------------------------- errors


def test_unknown_target_suggests_columns(messy_csv: Path) -> None:
    with pytest.raises(DataError) as info:
        load_dataset(str(messy_csv), target="lable")
    assert str(info.value) == (
        f"target column 'lable' not found in {messy_csv}. Did you mean 'label'? "
        "Columns: id, age, income, city, member, signup, visits, const, leak, label"
    )


def test_no_target_given(messy_csv: Path) -> None:
    with pytest.raises(DataError, match=r"no target column given. Set data.target to one of: id, age"):
        load_dataset(str(messy_csv))


def test_single_class_target(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("x,y\n" + "".join(f"{i},a\n" for i in range(120)), encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_dataset(str(path), target="y")
    assert str(info.value) == (
        "target 'y' has a single class 'a' in 120 rows; a classifier needs at least two. "
        "Check the target column or the filter that produced this file."
    )


def test_zero_rows(tmp_path: Path) -> None:
    path = tmp_path / "head.csv"
    path.write_text("x,y\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_dataset(str(path), target="y")
    assert (
        str(info.value) == f"{path} has no rows (only a header?). Point data.source at a file with data rows."
    )
    path.write_text("x,y\n1,\n2,NA\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"target 'y' is missing in all 2 rows"):
        load_dataset(str(path), target="y")


def test_image_shape_must_match(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_dataset("sklearn:digits", image_shape=(7, 7))
    assert str(info.value) == (
        "image_shape (7, 7) holds 49 pixels but the data has 64 feature columns. "
        "Fix data.image_shape or drop the columns that are not pixels."
    )
    ds = load_dataset("synthetic:classification?rows=30&features=4", image_shape=(2, 2))
    assert ds.image_shape == (2, 2)


def test_every_column_dropped(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("id,k,y\n" + "".join(f"{i},same,{i % 2}\n" for i in range(20)), encoding="utf-8")
    with pytest.raises(DataError, match=r"every feature column was dropped as constant or ID-like \(id, k\)"):
        load_dataset(str(path), target="y")
    ds = load_dataset(str(path), target="y", drop_id_like=False, drop_constant=False)
    assert ds.feature_names == ["id", "k"]


def test_typed_parquet_columns(tmp_path: Path) -> None:
    path = tmp_path / "typed.parquet"
    pd.DataFrame(
        {
            "when": pd.to_datetime(["1970-01-02", None, "1970-01-04", "1970-01-05"] * 3),
            "flag": pd.Series([True, False, None, True] * 3, dtype=object),
            "count": pd.array([1, 2, None, 4] * 3, dtype="Int64"),
            "y": ["a", "b", "a", "b"] * 3,
        }
    ).to_parquet(path)
    ds = load_dataset(str(path), target="y")
    assert [(c.name, c.kind, c.nullable) for c in ds.columns] == [
        ("when", "datetime", True),
        ("flag", "numeric", True),
        ("count", "numeric", True),
    ]
    assert ds.X["when"].iloc[:4].tolist()[::2] == [1.0, 3.0] and np.isnan(ds.X["when"].iloc[1])
    assert ds.X["flag"].iloc[:3].tolist()[:2] == [1.0, 0.0]


def test_unparseable_dates_become_missing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "d.csv"
    dates = [f"2024-01-{d:02d}" for d in range(1, 29)] * 2
    path.write_text(
        "d,y\n" + "".join(f"{d},{i % 2}\n" for i, d in enumerate(dates + ["soon"])), encoding="utf-8"
    )
    with caplog.at_level(logging.WARNING, logger="leanfit"):
        ds = load_dataset(str(path), target="y")
    assert ds.columns[0].kind == "datetime" and ds.columns[0].nullable
    assert np.isnan(ds.X["d"].iloc[-1]) and ds.X["d"].iloc[0] == 19723.0
    assert "column 'd': 1 value(s) do not parse as dates; read as missing" in caplog.messages
