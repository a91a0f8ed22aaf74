"""The column schema: what a model's raw inputs are, on disk, on the wire and in the ONNX graph.

A :class:`ColumnSpec` describes one raw feature column. The same list of specs is
inferred from the training data (``leanfit.data``), written into the artifact's
manifest, used to build the ONNX graph's inputs, and used by ``leanfit.load`` and
``leanfit serve`` to turn user values into tensors. This module needs only numpy
and pandas, so the serving path can import it.

Kinds and their tensors (graph input shape is ``[N, 1]`` for every column):

==============  ===========  =========================================================
kind            V2 datatype  values
==============  ===========  =========================================================
``numeric``     FP32         floats; missing is NaN
``integer``     INT64        whole numbers, never missing (a column with gaps is numeric)
``boolean``     BOOL         true/false; accepts 1/0, "yes"/"no", "true"/"false"
``categorical`` BYTES        strings; missing is ``""``; unseen levels are allowed
``datetime``    FP32         days since 1970-01-01 (UTC); strings are parsed
==============  ===========  =========================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from .exceptions import DataError

__all__ = [
    "DATATYPES",
    "DEFAULT_NA_VALUES",
    "ColumnSpec",
    "Kind",
    "coerce_column",
    "to_feeds",
]

Kind = Literal["numeric", "integer", "boolean", "categorical", "datetime"]

#: V2 (KServe / Triton) datatype of each kind; also the ONNX graph's input type.
DATATYPES: dict[str, str] = {
    "numeric": "FP32",
    "integer": "INT64",
    "boolean": "BOOL",
    "categorical": "BYTES",
    "datetime": "FP32",
}
NUMPY_DTYPES: dict[str, Any] = {"FP32": np.float32, "INT64": np.int64, "BOOL": np.bool_, "BYTES": object}

#: Spellings read as a missing value unless the recipe says otherwise.
DEFAULT_NA_VALUES: tuple[str, ...] = (
    "",
    "NA",
    "N/A",
    "NaN",
    "nan",
    "null",
    "NULL",
    "None",
    "none",
    "n/a",
    "-",
)

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


@dataclass(frozen=True)
class ColumnSpec:
    """One raw feature column of a model.

    Example:
        >>> spec = ColumnSpec("grade", "categorical", categories=("A", "B"))
        >>> spec.datatype
        'BYTES'
        >>> ColumnSpec.from_dict(spec.to_dict()) == spec
        True
    """

    name: str
    kind: Kind
    categories: tuple[str, ...] = field(default=())
    nullable: bool = False

    @property
    def datatype(self) -> str:
        """The V2 datatype clients send for this column."""
        return DATATYPES[self.kind]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "datatype": self.datatype,
            "shape": [-1, 1],
            "nullable": self.nullable,
        }
        if self.kind == "categorical":
            out["categories"] = list(self.categories)
        if self.kind == "datetime":
            out["unit"] = "days since 1970-01-01T00:00:00Z"
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSpec:
        kind = data["kind"]
        if kind not in DATATYPES:
            raise DataError(
                f"column {data.get('name')!r}: unknown kind {kind!r}; expected one of {sorted(DATATYPES)}"
            )
        return cls(
            name=str(data["name"]),
            kind=kind,
            categories=tuple(data.get("categories", ())),
            nullable=bool(data.get("nullable", False)),
        )


def _missing_mask(series: pd.Series, na_values: Sequence[str]) -> np.ndarray:
    """True where a value is None/NaN or text that spells a missing value."""
    mask = series.isna().to_numpy(dtype=bool, copy=True)
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        text = series.where(~mask, "").astype(str).str.strip()
        mask |= text.isin(set(na_values)).to_numpy(dtype=bool)
    return mask


def _first_bad(values: pd.Series, bad: np.ndarray) -> str:
    pos = int(np.flatnonzero(bad)[0])
    return f"row {pos}: {values.iloc[pos]!r}"


def coerce_column(
    values: Any, spec: ColumnSpec, *, na_values: Sequence[str] = DEFAULT_NA_VALUES
) -> np.ndarray:
    """Turn raw values of one column into the ``(N, 1)`` array its ONNX input expects.

    Training data and serving requests go through this same function, so a value
    means the same thing in both.

    Raises:
        DataError: naming the column and the first row that cannot be read.

    Example:
        >>> coerce_column(["1.5", "NA", 3], ColumnSpec("x", "numeric")).ravel().tolist()
        [1.5, nan, 3.0]
        >>> coerce_column([None, "b", "N/A"], ColumnSpec("c", "categorical")).ravel().tolist()
        ['', 'b', '']
    """
    if isinstance(values, pd.Series):
        series = values.reset_index(drop=True)
    elif isinstance(values, np.ndarray):
        series = pd.Series(values.ravel())
    else:
        series = pd.Series(list(values), dtype=object)
    kind = spec.kind
    missing = _missing_mask(series, na_values)
    if kind == "categorical":
        if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
            text = pd.Series([_num_text(v) for v in series.tolist()], dtype=object)
        else:
            text = (
                series.map(lambda v: v if isinstance(v, str) else _num_text(v))
                if series.dtype == object
                else series.astype(str)
            )
        out = text.to_numpy(dtype=object, copy=True)
        out[missing] = ""
        return out.reshape(-1, 1)
    if kind == "datetime":
        if pd.api.types.is_numeric_dtype(series.dtype):
            days = series.to_numpy(dtype=np.float64)
        else:
            text = series.where(~pd.Series(missing), None)
            parsed = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
            has_digit = text.astype(str).str.contains(r"\d", regex=True).to_numpy(dtype=bool)
            bad = (parsed.isna().to_numpy(dtype=bool) | ~has_digit) & ~missing
            if bad.any():
                raise DataError(
                    f"column {spec.name!r} expected a date or time, got {_first_bad(series, bad)}. "
                    "Use ISO 8601 (2024-05-31 or 2024-05-31T12:00:00) or send days since 1970-01-01."
                )
            days = ((parsed - _EPOCH) / pd.Timedelta(days=1)).to_numpy(dtype=np.float64, na_value=np.nan)
        return days.astype(np.float32).reshape(-1, 1)
    if kind == "boolean":

        def to_bool(v: Any) -> Any:
            if isinstance(v, (bool, np.bool_)):
                return bool(v)
            text = str(v).strip().lower()
            return True if text in _TRUE else False if text in _FALSE else None

        parsed_b = series.map(to_bool)
        bad = parsed_b.isna().to_numpy(dtype=bool)
        if bad.any():
            raise DataError(
                f"column {spec.name!r} expected true/false, got {_first_bad(series, bad)}. Send true, false, 1 or 0."
            )
        return parsed_b.to_numpy(dtype=bool).reshape(-1, 1)
    # numeric and integer
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        numbers = series.to_numpy(dtype=np.float64)
    else:
        numbers = pd.to_numeric(series.where(~pd.Series(missing), None), errors="coerce").to_numpy(
            dtype=np.float64
        )
        bad = np.isnan(numbers) & ~missing
        if bad.any():
            raise DataError(
                f"column {spec.name!r} expected a number, got {_first_bad(series, bad)}. "
                "Send a number, or a missing-value marker such as null."
            )
    if kind == "integer":
        if np.isnan(numbers).any():
            raise DataError(
                f"column {spec.name!r} is an integer column without missing values in training; "
                f"got a missing value at row {int(np.flatnonzero(np.isnan(numbers))[0])}. Send a whole number."
            )
        whole = np.isfinite(numbers) & (numbers == np.round(numbers))
        if not whole.all():
            raise DataError(f"column {spec.name!r} expected whole numbers, got {_first_bad(series, ~whole)}.")
        return numbers.astype(np.int64).reshape(-1, 1)
    return numbers.astype(np.float32).reshape(-1, 1)


def _num_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def to_feeds(
    data: Any, columns: Sequence[ColumnSpec], *, na_values: Sequence[str] = DEFAULT_NA_VALUES
) -> dict[str, np.ndarray]:
    """Turn a table of raw values into the ONNX feeds of a model with these columns.

    ``data`` is a pandas DataFrame, a mapping of column name to values, a list of
    row dicts, or a 2-D array whose columns follow ``columns`` (all numeric).
    Extra columns are ignored; a missing one raises :class:`DataError`.

    Example:
        >>> cols = [ColumnSpec("a", "numeric"), ColumnSpec("b", "categorical")]
        >>> feeds = to_feeds({"a": [1, 2], "b": ["x", None]}, cols)
        >>> feeds["a"].shape, feeds["b"].ravel().tolist()
        ((2, 1), ['x', ''])
    """
    if isinstance(data, np.ndarray):
        if data.ndim != 2 or data.shape[1] != len(columns):
            raise DataError(
                f"expected a 2-D array with {len(columns)} columns ({', '.join(c.name for c in columns)}), "
                f"got shape {data.shape}"
            )
        data = pd.DataFrame(data, columns=[c.name for c in columns])
    elif isinstance(data, list):
        data = pd.DataFrame.from_records(data)
    elif not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(dict(data))
    missing = [c.name for c in columns if c.name not in data.columns]
    if missing:
        raise DataError(
            f"input is missing column(s) {missing}; the model expects {[c.name for c in columns]}"
        )
    return {c.name: coerce_column(data[c.name], c, na_values=na_values) for c in columns}
