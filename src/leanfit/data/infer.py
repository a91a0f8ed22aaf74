"""Column-type and task inference: which :class:`~leanfit.schema.ColumnSpec` each raw column gets.

The rules, in order (recipe overrides ``drop``, ``categorical`` and ``numeric`` win over all):

==============  ===========================================================================
kind            when
==============  ===========================================================================
``boolean``     bool dtype, or exactly two values that read as true/false (``yes``/``no``,
                ``true``/``false``, ``0``/``1``), and nothing missing
``integer``     whole numbers stored as integers (or integer text), nothing missing
``numeric``     other numbers, including integers with gaps and numbers stored as text
``datetime``    text where >= 95% of the non-missing values parse as dates
``categorical`` other text with moderate cardinality
free text       many distinct, long or wordy values: refused with a :class:`DataError`
==============  ===========================================================================
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..exceptions import DataError
from ..schema import DEFAULT_NA_VALUES, ColumnSpec, Kind

__all__ = ["ColumnInfo", "infer_columns", "infer_task", "is_missing", "parse_dates"]

Task = Literal["classification", "regression"]

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}
#: A datetime column needs this share of its non-missing values to parse as dates.
DATE_SHARE = 0.95
#: At most this many distinct integer values make a numeric target a classification target.
MAX_CLASSES_AUTO = 20
_SAMPLE = 2000
_Done = Callable[..., "tuple[ColumnSpec, ColumnInfo]"]


@dataclass
class ColumnInfo:
    """What inference saw in one column and why it chose its kind.

    Example:
        >>> ColumnInfo("age", "integer", n_missing=0, n_distinct=40, reason="whole numbers").to_dict()["kind"]
        'integer'
    """

    name: str
    kind: str
    n_missing: int
    n_distinct: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_missing(values: pd.Series, na_values: Iterable[str] = DEFAULT_NA_VALUES) -> np.ndarray:
    """Boolean mask of the missing cells: None, NaN/NaT, or text spelled like a missing value.

    Example:
        >>> is_missing(pd.Series(["a", "NA", None, " null "])).tolist()
        [False, True, True, True]
    """
    na = sorted({v.strip() for v in na_values})
    mask = values.isna().to_numpy(dtype=bool)
    if isinstance(values.dtype, pd.StringDtype):  # vectorised for text columns
        mask = mask | values.str.strip().isin(na).to_numpy(dtype=bool, na_value=False)
    elif pd.api.types.is_object_dtype(values.dtype):
        na_set = set(na)
        mask = mask | values.map(lambda v: isinstance(v, str) and v.strip() in na_set).to_numpy(dtype=bool)
    return mask


def parse_dates(values: pd.Series) -> pd.Series:
    """Parse text as UTC timestamps; what does not parse (or has no digit) becomes NaT.

    Example:
        >>> parse_dates(pd.Series(["2024-05-31", "March", None])).isna().tolist()
        [False, True, True]
    """
    text = values.map(lambda v: v if isinstance(v, str) and any(c.isdigit() for c in v) else None)
    return pd.to_datetime(text, format="mixed", errors="coerce", utc=True)


def infer_task(y: Any) -> Task:
    """Guess the task from the target values.

    Text, booleans, and whole numbers with at most 20 distinct values (and few values
    per row) mean classification; other numbers mean regression.

    Example:
        >>> infer_task(["cat", "dog", "cat"])
        'classification'
        >>> infer_task([0, 1, 1, 0, 1, 0])
        'classification'
        >>> infer_task([0.5, 1.25, 3.0, 2.75])
        'regression'
    """
    series = pd.Series(np.asarray(y).ravel() if not isinstance(y, pd.Series) else y).dropna()
    if pd.api.types.is_bool_dtype(series.dtype):
        return "classification"
    if not pd.api.types.is_numeric_dtype(series.dtype):
        numbers = pd.to_numeric(series, errors="coerce")
        if numbers.isna().any() or series.map(lambda v: isinstance(v, (bool, np.bool_))).any():
            return "classification"
        series = numbers
    values = series.to_numpy(dtype=np.float64)
    if values.size == 0:
        return "classification"
    distinct = np.unique(values)
    whole = bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
    if (
        whole
        and len(distinct) <= MAX_CLASSES_AUTO
        and (len(distinct) <= 2 or len(distinct) <= 0.5 * values.size)
    ):
        return "classification"
    return "regression"


def infer_columns(
    frame: pd.DataFrame,
    *,
    target: str | None = None,
    drop: Sequence[str] = (),
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    na_values: Sequence[str] = DEFAULT_NA_VALUES,
    max_categories: int | None = None,
    text_min_distinct: int = 20,
    text_min_length: float = 25.0,
    text_min_words: float = 4.0,
) -> tuple[list[ColumnSpec], list[ColumnInfo]]:
    """Decide the kind of every feature column of a raw frame.

    Args:
        frame: the raw frame from :func:`leanfit.data.read_source`.
        target: the target column; it is not a feature.
        drop: columns to leave out.
        categorical: columns that are categorical whatever they look like (e.g. zip codes).
        numeric: columns that are numeric whatever they look like.
        na_values: text spellings of a missing value.
        max_categories: refuse a categorical column with more levels than this
            (``None``: no limit besides the free-text rule).
        text_min_distinct: a text column needs at least this many distinct values, and
            more than half of its values distinct, to count as free text ...
        text_min_length: ... and values this long on average ...
        text_min_words: ... or this many words on average.

    Returns:
        ``(columns, infos)``: one spec per feature column in frame order, and what was seen.

    Raises:
        DataError: an override names an unknown column or both kinds; a column is free
            text; a column's values cannot be used (e.g. nested lists).

    Example:
        >>> frame = pd.DataFrame({"age": ["31", "NA", "45"], "smoker": ["yes", "no", "no"], "y": [0, 1, 0]})
        >>> specs, _ = infer_columns(frame, target="y")
        >>> [(s.name, s.kind, s.nullable) for s in specs]
        [('age', 'numeric', True), ('smoker', 'boolean', False)]
    """
    names = [str(c) for c in frame.columns]
    for option, listed in (("drop", drop), ("categorical", categorical), ("numeric", numeric)):
        for name in listed:
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise DataError(f"data.{option} names column {name!r}, which is not in the data.{hint}")
    both = sorted(set(categorical) & set(numeric))
    if both:
        raise DataError(f"column {both[0]!r} is listed in both data.categorical and data.numeric; keep one.")
    specs: list[ColumnSpec] = []
    infos: list[ColumnInfo] = []
    skip = set(drop) | ({target} if target is not None else set())
    for name in names:
        if name in skip:
            continue
        force: str | None = "categorical" if name in categorical else "numeric" if name in numeric else None
        spec, info = _infer_one(
            frame[name],
            name,
            force=force,
            na_values=na_values,
            max_categories=max_categories,
            text_rule=(text_min_distinct, text_min_length, text_min_words),
        )
        specs.append(spec)
        infos.append(info)
    return specs, infos


def _infer_one(
    column: pd.Series,
    name: str,
    *,
    force: str | None,
    na_values: Sequence[str],
    max_categories: int | None,
    text_rule: tuple[int, float, float],
) -> tuple[ColumnSpec, ColumnInfo]:
    missing = is_missing(column, na_values)
    present = column[~missing]
    n_missing = int(missing.sum())
    nullable = n_missing > 0

    def done(
        kind: Kind, reason: str, categories: tuple[str, ...] = (), *, gaps: bool = False
    ) -> tuple[ColumnSpec, ColumnInfo]:
        n_distinct = len(categories) if kind == "categorical" else int(present.nunique())
        spec = ColumnSpec(name, kind, categories=categories, nullable=nullable or gaps)
        return spec, ColumnInfo(name, kind, n_missing, n_distinct, reason)

    dtype = column.dtype
    if force == "categorical":
        return done("categorical", "listed in data.categorical", _levels(present))
    if force == "numeric":
        numbers = pd.to_numeric(present.map(_bool_to_int), errors="coerce")
        if numbers.isna().any():
            bad = present[numbers.isna().to_numpy()].iloc[0]
            raise DataError(
                f"column {name!r} is listed in data.numeric but holds {bad!r}, which is not a number. "
                "Add that spelling to data.na_values or remove the column from data.numeric."
            )
        return done("numeric", "listed in data.numeric")
    if pd.api.types.is_bool_dtype(dtype):
        return done("boolean", "bool dtype") if not nullable else done("numeric", "bool dtype with gaps")
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return done("datetime", "datetime dtype")
    if pd.api.types.is_numeric_dtype(dtype):
        if pd.api.types.is_complex_dtype(dtype):
            raise _unusable(name, "complex numbers")
        return _numeric_kind(present, nullable, pd.api.types.is_integer_dtype(dtype), done)
    if isinstance(dtype, pd.CategoricalDtype):
        present = present.astype(object)
    if not (pd.api.types.is_object_dtype(present.dtype) or pd.api.types.is_string_dtype(present.dtype)):
        raise _unusable(name, f"values of dtype {dtype}")
    if isinstance(present.dtype, pd.StringDtype):
        text = present  # all text already
    else:
        odd = present.map(lambda v: not isinstance(v, (str, bool, np.bool_, int, float, np.number)))
        if odd.any():
            raise _unusable(name, f"values such as {present[odd.to_numpy()].iloc[0]!r}")
        if len(present) and present.map(lambda v: isinstance(v, (bool, np.bool_))).all():
            if nullable:
                return done("numeric", "true/false with gaps")
            return done("boolean", "true/false values")
        text = present.map(_text)
    if len(text) == 0:
        return done("numeric", "no values")
    numbers = pd.to_numeric(text, errors="coerce")
    if not numbers.isna().any():
        lowered = set(text.str.strip().str.lower().unique())
        if _two_valued_bool(lowered) and not nullable:
            return done("boolean", "0/1 text")
        integer_text = bool(text.str.fullmatch(r"\s*[-+]?\d+\s*").all())
        return _numeric_kind(numbers, nullable, integer_text, done, reason="numbers stored as text")
    lowered = set(text.str.strip().str.lower().unique())
    if _two_valued_bool(lowered):
        if not nullable:
            return done("boolean", "true/false text")
        return done("categorical", "true/false text with gaps", _levels(text))
    counts = text.value_counts()
    top = counts.iloc[:_SAMPLE]  # the most frequent values stand for the rest
    parsed = parse_dates(pd.Series(top.index, dtype=object)).notna().to_numpy()
    share = float(top.to_numpy()[parsed].sum() / top.sum())
    if share >= DATE_SHARE:
        unparsed = share < 1.0  # such values are read as missing
        return done("datetime", f"text that parses as dates ({share:.0%})", gaps=unparsed)
    levels = _levels(text)
    min_distinct, min_length, min_words = text_rule
    n_distinct = len(levels)
    if n_distinct >= min_distinct and n_distinct > 0.5 * len(text):
        mean_length = float(text.str.len().mean())
        mean_words = float(text.map(lambda v: len(v.split())).mean())
        if mean_length >= min_length or mean_words >= min_words:
            raise DataError(
                f"column {name!r} looks like free text ({n_distinct} distinct values, mean length "
                f"{mean_length:.0f}); leanfit cannot use text features yet. Drop it with data.drop: [{name}]"
            )
    if max_categories is not None and n_distinct > max_categories:
        raise DataError(
            f"column {name!r} has {n_distinct} distinct values, more than data.max_categories="
            f"{max_categories}. Drop it with data.drop: [{name}] or raise the limit."
        )
    return done("categorical", "text", levels)


def _numeric_kind(
    numbers: pd.Series, nullable: bool, integer_typed: bool, done: _Done, reason: str = "numbers"
) -> tuple[ColumnSpec, ColumnInfo]:
    values = numbers.to_numpy(dtype=np.float64)
    if nullable or not integer_typed or not np.all(np.isfinite(values)):
        return done("numeric", reason)
    if set(np.unique(values).tolist()) == {0.0, 1.0}:
        return done("boolean", "0/1 values")
    return done("integer", "whole numbers without gaps")


def _two_valued_bool(lowered: set[str]) -> bool:
    return len(lowered) == 2 and len(lowered & _TRUE) == 1 and len(lowered & _FALSE) == 1


def _levels(values: pd.Series) -> tuple[str, ...]:
    return tuple(sorted(_text(v) for v in pd.unique(values)))


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _bool_to_int(value: Any) -> Any:
    return int(value) if isinstance(value, (bool, np.bool_)) else value


def _unusable(name: str, what: str) -> DataError:
    return DataError(
        f"column {name!r} holds {what}; leanfit reads numbers, text, true/false and dates. "
        f"Drop it with data.drop: [{name}] or convert it."
    )
