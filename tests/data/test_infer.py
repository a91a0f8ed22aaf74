"""Column-kind and task inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leanfit.data import infer_columns, infer_task, read_source
from leanfit.exceptions import DataError


def _kinds(frame: pd.DataFrame, **kwargs: object) -> dict[str, str]:
    specs, _ = infer_columns(frame, **kwargs)  # type: ignore[arg-type]
    return {s.name: s.kind for s in specs}


def test_messy_csv_kinds(messy_csv: Path) -> None:
    frame, _, _ = read_source(str(messy_csv))
    specs, infos = infer_columns(frame, target="label")
    by_name = {s.name: s for s in specs}
    assert {n: s.kind for n, s in by_name.items()} == {
        "id": "integer",
        "age": "numeric",  # whole numbers with gaps spelt "", NA, N/A, NaN, null
        "income": "numeric",
        "city": "categorical",
        "member": "boolean",
        "signup": "datetime",
        "visits": "integer",
        "const": "categorical",
        "leak": "categorical",
    }
    assert by_name["age"].nullable and not by_name["income"].nullable
    assert by_name["city"].categories == ("Lyon", "Nice", "Paris") and by_name["city"].nullable
    age = next(i for i in infos if i.name == "age")
    assert age.n_missing == 11 and age.reason == "numbers stored as text"


def test_typed_frames() -> None:
    frame = pd.DataFrame(
        {
            "f": [0.5, 1.5, 2.5, 3.5],
            "i": np.array([3, 1, 4, 1], dtype=np.int64),
            "gap": [1.0, np.nan, 3.0, 4.0],
            "b": [True, False, True, True],
            "b01": np.array([0, 1, 1, 0], dtype=np.int64),
            "t": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]),
            "c": pd.Series(["x", "y", "x", "z"], dtype=object),
        }
    )
    assert _kinds(frame) == {
        "f": "numeric",
        "i": "integer",
        "gap": "numeric",
        "b": "boolean",
        "b01": "boolean",
        "t": "datetime",
        "c": "categorical",
    }


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["true", "false", "TRUE"], "boolean"),
        (["Y", "N", "N"], "boolean"),
        (["1", "0", "1"], "boolean"),
        (["yes", "no", None], "categorical"),  # a boolean cannot be missing
        (["1", "2", "3"], "integer"),
        (["1.0", "2.0", "3.0"], "numeric"),
        (["-1", "NA", "3"], "numeric"),
        (["2024-05-31", "31/12/2023", "2024-05-31T12:00:00"], "datetime"),
        (["Jan", "Feb", "Mar"], "categorical"),  # month names alone are not dates
        (["a1", "b2", "c3"], "categorical"),
    ],
)
def test_text_columns(values: list[str | None], kind: str) -> None:
    assert _kinds(pd.DataFrame({"v": values})) == {"v": kind}


def test_mostly_dates_is_datetime_with_gaps() -> None:
    values = [f"2024-01-{d:02d}" for d in range(1, 29)] * 2 + ["garbage"]  # 56 of 57 parse (98%)
    specs, _ = infer_columns(pd.DataFrame({"d": values}))
    assert specs[0].kind == "datetime" and specs[0].nullable
    values = values[:10] + ["garbage"]  # 10 of 11 parse (91%)
    assert _kinds(pd.DataFrame({"d": values})) == {"d": "categorical"}


def test_overrides_win() -> None:
    frame = pd.DataFrame({"zip": ["75001", "69002", "06000"], "score": ["1", "2", "3"], "x": ["a", "b", "c"]})
    kinds = _kinds(frame, categorical=["zip"], numeric=["score"], drop=["x"])
    assert kinds == {"zip": "categorical", "score": "numeric"}


def test_override_errors() -> None:
    frame = pd.DataFrame({"price": ["1", "x"], "b": ["1", "2"]})
    with pytest.raises(DataError) as info:
        infer_columns(frame, drop=["prcie"])
    assert (
        str(info.value) == "data.drop names column 'prcie', which is not in the data. Did you mean 'price'?"
    )
    with pytest.raises(DataError, match=r"column 'price' is listed in data.numeric but holds 'x'"):
        infer_columns(frame, numeric=["price"])
    with pytest.raises(DataError, match=r"column 'b' is listed in both data.categorical and data.numeric"):
        infer_columns(frame, numeric=["b"], categorical=["b"])


def test_free_text_is_refused() -> None:
    rng = np.random.default_rng(0)
    words = ["great", "service", "slow", "delivery", "would", "buy", "again", "not", "happy", "ok"]
    comments = [" ".join(rng.choice(words, size=8)) + f" #{i}" for i in range(40)]
    frame = pd.DataFrame({"comment": comments, "y": [0, 1] * 20})
    with pytest.raises(DataError) as info:
        infer_columns(frame, target="y")
    mean_length = np.mean([len(c) for c in comments])
    assert str(info.value) == (
        f"column 'comment' looks like free text (40 distinct values, mean length {mean_length:.0f}); "
        "leanfit cannot use text features yet. Drop it with data.drop: [comment]"
    )
    assert _kinds(frame, target="y", drop=["comment"]) == {}


def test_short_unique_codes_are_categorical_not_text() -> None:
    frame = pd.DataFrame({"sku": [f"SKU-{i:04d}" for i in range(100)]})
    assert _kinds(frame) == {"sku": "categorical"}


def test_unusable_values() -> None:
    frame = pd.DataFrame({"nested": pd.Series([[1, 2], [3]], dtype=object)})
    with pytest.raises(DataError, match=r"column 'nested' holds values such as \[1, 2\]"):
        infer_columns(frame)


@pytest.mark.parametrize(
    ("y", "task"),
    [
        (["a", "b", "a"], "classification"),
        ([True, False, True], "classification"),
        (np.array([0, 1, 2, 1, 0, 2] * 5), "classification"),
        (np.array(["1", "0", "1", "1"], dtype=object), "classification"),
        (np.array([1.0, 0.0, 1.0, 0.0]), "classification"),
        (np.arange(100), "regression"),  # 100 distinct integers
        (np.linspace(0, 1, 50), "regression"),
        (np.array([0.5, 1.5, 0.5, 1.5]), "regression"),  # not whole numbers
        (np.tile(np.arange(25), 4), "regression"),  # more than 20 distinct
    ],
)
def test_infer_task(y: object, task: str) -> None:
    assert infer_task(y) == task
