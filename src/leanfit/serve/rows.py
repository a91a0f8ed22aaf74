"""``POST /predict``: ``{"rows": [{column: value, ...}, ...]}`` for people without a V2 client."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..exceptions import DataError
from ..schema import coerce_column
from .errors import BadRequest
from .jsonio import did_you_mean, dumps, json_data, loads
from .protocol import InferRequest, ModelSchema, check_float, object_param, parse_timeout

__all__ = ["encode_predict_response", "parse_rows"]


def parse_rows(body: bytes, schema: ModelSchema, *, timeout_header: str | None = None) -> InferRequest:
    """Read ``{"rows": [{column: value, ...}, ...]}`` into validated feeds (lenient values, strict columns).

    Values are coerced as :func:`leanfit.schema.coerce_column` does (``"41"`` is a number,
    ``"yes"`` a boolean, ``null`` missing); every row must name every column.

    Example:
        >>> from leanfit.schema import ColumnSpec
        >>> schema = ModelSchema("m", "1", [ColumnSpec("x", "numeric")], ["prediction"])
        >>> parse_rows(b'{"rows": [{"x": 1}, {"x": "2.5"}]}', schema).feeds["x"].ravel().tolist()
        [1.0, 2.5]
    """
    payload = loads(body)
    if type(payload) is not dict or type(payload.get("rows")) is not list or not payload["rows"]:
        raise BadRequest(
            'send {"rows": [{column: value, ...}, ...]} with at least one row; the model expects '
            f"{schema.feature_names}"
        )
    rows = payload["rows"]
    names = schema.feature_names
    known = set(names)
    for index, row in enumerate(rows):
        if type(row) is not dict:
            raise BadRequest(f"rows[{index}] must be an object mapping column names to values")
        if row.keys() != known:
            extra = [k for k in row if k not in known]
            if extra:
                raise BadRequest(
                    f"rows[{index}]: unknown column {extra[0]!r}; model {schema.name!r} expects {names}."
                    + did_you_mean(extra[0], names)
                )
            missing = [n for n in names if n not in row]
            raise BadRequest(f"rows[{index}] is missing column(s) {missing}; send null for a missing value")
    feeds: dict[str, np.ndarray] = {}
    for spec in schema.columns:
        values = [row[spec.name] for row in rows]
        for index, value in enumerate(values):
            if type(value) in (list, dict):
                raise BadRequest(
                    f"rows[{index}].{spec.name}: expected a single value, got {type(value).__name__}"
                )
        try:
            column = coerce_column(values, spec)
        except DataError as exc:
            raise BadRequest(f"rows: {exc}") from None
        except (TypeError, ValueError, OverflowError) as exc:
            raise BadRequest(f"rows: column {spec.name!r} cannot be read ({exc})") from None
        label = f"column {spec.name!r}"
        if spec.kind in ("numeric", "datetime"):
            check_float(spec, column.ravel(), label)
        elif spec.kind == "categorical":
            schema.check_categories(spec, column, label)
        feeds[spec.name] = column
    params = object_param(payload.get("parameters"), "'parameters'")
    return InferRequest(feeds=feeds, rows=len(rows), timeout=parse_timeout(params, timeout_header))


def encode_predict_response(
    schema: ModelSchema, outputs: Mapping[str, np.ndarray], *, task: str, classes: Sequence[Any]
) -> bytes:
    """The ``/predict`` answer: decoded predictions, plus probabilities and classes for a classifier."""
    response: dict[str, Any] = {"model_name": schema.name, "model_version": schema.version}
    if "label" in outputs and task == "classification":
        codes = outputs["label"].astype(np.int64).ravel().tolist()
        labels = list(classes)
        response["predictions"] = [labels[c] if 0 <= c < len(labels) else c for c in codes]
        if "probabilities" in outputs:
            response["probabilities"] = outputs["probabilities"].astype(np.float64).round(7).tolist()
        response["classes"] = labels
    elif "prediction" in outputs:
        response["predictions"] = json_data(outputs["prediction"].astype(np.float64))
    else:
        response["outputs"] = {name: json_data(array) for name, array in outputs.items()}
    return dumps(response)
