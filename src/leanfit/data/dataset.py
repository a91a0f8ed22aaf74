"""``load_dataset``: a source string in, a typed, checked :class:`Dataset` out."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from .._logging import get_logger
from ..exceptions import DataError
from ..schema import DEFAULT_NA_VALUES, ColumnSpec, coerce_column
from .infer import Task, infer_columns, infer_task, is_missing, parse_dates
from .quality import QualityReport, quality_report
from .sources import read_source

__all__ = ["Dataset", "coerce_frame", "load_dataset"]

logger = get_logger(__name__)

_X_DTYPES = {"numeric": np.float64, "datetime": np.float64, "integer": np.int64, "boolean": bool}


@dataclass
class Dataset:
    """A dataset ready for splitting and training.

    Attributes:
        X: the coerced raw feature columns: ``numeric``/``datetime`` float64 (NaN missing;
            datetime in days since 1970-01-01 UTC), ``integer`` int64, ``boolean`` bool,
            ``categorical`` object strings (``""`` missing).
        y: int64 class codes ``0..C-1`` (classification) or float64 values (regression).
        task: ``"classification"`` or ``"regression"``.
        columns: one :class:`~leanfit.schema.ColumnSpec` per column of ``X``, in order.
        classes: the original class labels in code order (empty for regression).
        target: the target column's name.
        name: a short name of the source.
        image_shape: the shape of one image (e.g. ``(8, 8)``) when the features are pixels.
        quality: the data-quality report.

    Example:
        >>> ds = load_dataset("sklearn:iris")
        >>> ds.X.shape, ds.task, ds.classes
        ((150, 4), 'classification', [0, 1, 2])
    """

    X: pd.DataFrame
    y: np.ndarray
    task: Task
    columns: list[ColumnSpec]
    classes: list[Any]
    target: str
    name: str
    image_shape: tuple[int, ...] | None
    quality: QualityReport

    @property
    def feature_names(self) -> list[str]:
        """The names of the raw feature columns."""
        return [c.name for c in self.columns]


def load_dataset(
    source: str,
    *,
    target: str | None = None,
    task: Task | None = None,
    na_values: Sequence[str] = DEFAULT_NA_VALUES,
    drop: Sequence[str] = (),
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    image_shape: Sequence[int] | None = None,
    drop_id_like: bool = True,
    drop_constant: bool = True,
) -> Dataset:
    """Read, type, check and coerce a dataset.

    Args:
        source: see :func:`leanfit.data.read_source`.
        target: the target column; bundled and synthetic sources know theirs.
        task: ``"classification"`` or ``"regression"``; inferred from the target if ``None``.
        na_values: text spellings of a missing value.
        drop: columns to leave out.
        categorical: columns to treat as categorical whatever they look like.
        numeric: columns to treat as numeric whatever they look like.
        image_shape: the shape of one image when the features are pixels in row-major
            order (``sklearn:digits`` knows its own). Columns are then kept as they are.
        drop_id_like: drop columns that look like row IDs.
        drop_constant: drop columns with one value.

    Raises:
        DataError: the target is missing or has one class, no rows or no features are
            left, or ``image_shape`` does not match the number of features.

    Example:
        >>> ds = load_dataset("synthetic:regression?rows=50&features=3&seed=1")
        >>> ds.task, ds.y.dtype, ds.feature_names
        ('regression', dtype('float64'), ['f0', 'f1', 'f2'])
    """
    frame, known_target, meta = read_source(source, na_values=na_values, target=target)
    name = str(meta.get("name", source))
    if known_target is None:
        raise DataError(
            f"{source}: no target column given. Set data.target to one of: {_some(frame.columns)}"
        )
    target = known_target
    if target not in frame.columns:
        close = difflib.get_close_matches(target, [str(c) for c in frame.columns], n=3)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise DataError(
            f"target column {target!r} not found in {source}.{hint} Columns: {_some(frame.columns)}"
        )
    if task is not None and task not in ("classification", "regression"):
        raise DataError(f"task must be 'classification' or 'regression'; got {task!r}")
    if len(frame) == 0:
        raise DataError(f"{source} has no rows (only a header?). Point data.source at a file with data rows.")

    missing_target = is_missing(frame[target], na_values)
    n_missing_target = int(missing_target.sum())
    if n_missing_target == len(frame):
        raise DataError(
            f"target {target!r} is missing in all {len(frame)} rows of {source}. "
            "Check data.target and data.na_values."
        )
    if n_missing_target:
        frame = frame.loc[~missing_target].reset_index(drop=True)

    y, classes, task = _encode_target(frame[target], target, task)
    shape = tuple(int(d) for d in image_shape) if image_shape is not None else meta.get("image_shape")
    columns, _infos = infer_columns(
        frame, target=target, drop=drop, categorical=categorical, numeric=numeric, na_values=na_values
    )
    if shape is not None:
        columns = _as_pixels(columns, shape)
    if not columns:
        raise DataError(
            f"{source}: no feature columns are left besides the target {target!r}. Check data.drop."
        )
    X = coerce_frame(frame, columns, na_values=na_values)
    columns = [_with_gaps(spec, X[spec.name]) for spec in columns]

    keep_all = shape is not None  # dropping a pixel would break the image layout
    quality = quality_report(
        X,
        y,
        columns,
        task=task,
        drop_id_like=drop_id_like and not keep_all,
        drop_constant=drop_constant and not keep_all,
    )
    if n_missing_target:
        quality.target_missing = n_missing_target
        quality.warn(f"dropped {n_missing_target} rows whose target {target!r} is missing")
    if quality.dropped:
        columns = [c for c in columns if c.name not in quality.dropped]
        X = X[[c.name for c in columns]]
        if not columns:
            raise DataError(
                f"{source}: every feature column was dropped as constant or ID-like "
                f"({', '.join(quality.dropped)}). Check the file, or pass drop_id_like=False / "
                "drop_constant=False."
            )
    logger.info("dataset %s: %d rows, %d features, task %s", name, len(X), len(columns), task)
    return Dataset(
        X=X,
        y=y,
        task=task,
        columns=columns,
        classes=classes,
        target=target,
        name=name,
        image_shape=shape,
        quality=quality,
    )


def coerce_frame(
    frame: pd.DataFrame, columns: Sequence[ColumnSpec], *, na_values: Sequence[str] = DEFAULT_NA_VALUES
) -> pd.DataFrame:
    """Coerce raw columns to the dtypes ``Dataset.X`` holds, via :func:`leanfit.schema.coerce_column`.

    Values go through the same coercion as at serving time (numbers through float32), so a
    model trained on ``X`` sees exactly what it will see behind the ONNX graph. Datetime text
    that does not parse becomes missing.

    Example:
        >>> cols = [ColumnSpec("a", "numeric"), ColumnSpec("b", "categorical")]
        >>> coerce_frame(pd.DataFrame({"a": ["1.5", "NA"], "b": ["x", None]}), cols).to_dict("list")
        {'a': [1.5, nan], 'b': ['x', '']}
    """
    out: dict[str, Any] = {}
    for spec in columns:
        values = frame[spec.name].reset_index(drop=True)
        if spec.kind == "datetime" and not (
            pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_datetime64_any_dtype(values.dtype)
        ):
            parsed = parse_dates(values)
            bad = int((parsed.isna() & ~pd.Series(is_missing(values, na_values))).sum())
            if bad:
                logger.warning(
                    "column %r: %d value(s) do not parse as dates; read as missing", spec.name, bad
                )
            values = parsed
        array = coerce_column(values, spec, na_values=na_values).ravel()
        if spec.kind == "categorical":
            out[spec.name] = pd.Series(array, dtype=object)
        else:
            out[spec.name] = pd.Series(array.astype(_X_DTYPES[spec.kind]))
    return pd.DataFrame(out)


def _encode_target(values: pd.Series, target: str, task: Task | None) -> tuple[np.ndarray, list[Any], Task]:
    values = values.reset_index(drop=True)
    if not pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        numbers = pd.to_numeric(values, errors="coerce")
        if not numbers.isna().any():
            values = numbers
    task = task or infer_task(values)
    if task == "regression":
        if pd.api.types.is_bool_dtype(values.dtype) or not pd.api.types.is_numeric_dtype(values.dtype):
            example = values.iloc[int(np.flatnonzero(pd.to_numeric(values, errors="coerce").isna())[0])]
            raise DataError(
                f"target {target!r} holds {example!r}, which is not a number; regression needs numbers. "
                "Set task: classification or fix the column."
            )
        return values.to_numpy(dtype=np.float64), [], task
    labels = [_label(v) for v in values]
    classes = sorted(set(labels), key=lambda v: (str(type(v)), v))
    if len(classes) < 2:
        raise DataError(
            f"target {target!r} has a single class {classes[0]!r} in {len(labels)} rows; "
            "a classifier needs at least two. Check the target column or the filter that produced this file."
        )
    codes = {label: i for i, label in enumerate(classes)}
    return np.array([codes[v] for v in labels], dtype=np.int64), classes, task


def _label(value: Any) -> Any:
    """A class label as a plain JSON-able Python value; whole floats become ints."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def _with_gaps(spec: ColumnSpec, values: pd.Series) -> ColumnSpec:
    """The spec with ``nullable`` as the coerced training values show it (dates that failed to parse)."""
    if spec.kind in ("numeric", "datetime"):
        gaps = bool(values.isna().any())
        return spec if gaps == spec.nullable else replace(spec, nullable=gaps)
    return spec


def _as_pixels(columns: list[ColumnSpec], shape: tuple[int, ...]) -> list[ColumnSpec]:
    size = int(np.prod(shape))
    if size != len(columns):
        raise DataError(
            f"image_shape {shape} holds {size} pixels but the data has {len(columns)} feature columns. "
            "Fix data.image_shape or drop the columns that are not pixels."
        )
    bad = [c.name for c in columns if c.kind == "categorical"]
    if bad:
        raise DataError(f"image data needs numeric pixels; column {bad[0]!r} holds text. Fix or drop it.")
    return [ColumnSpec(c.name, "numeric", nullable=c.nullable) for c in columns]


def _some(names: Any, limit: int = 20) -> str:
    names = [str(n) for n in names]
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
