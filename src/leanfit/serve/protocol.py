"""Open Inference Protocol (KServe V2) over REST: read requests into feeds, write responses.

Everything here is pure (bytes in, numpy out); the app wires it to HTTP. A request is
checked against the model's :class:`~leanfit.schema.ColumnSpec` list before any model call,
and every rejection is a :class:`~leanfit.serve.errors.BadRequest` naming the input and the
offending value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..schema import ColumnSpec
from .binary import V2_DTYPES, datatype_of, decode_raw, encode_tensor, split_body
from .errors import BadRequest
from .feeds import MatrixFeeds
from .jsonio import did_you_mean, dumps, json_data, loads, show

__all__ = [
    "ACCEPTED_DATATYPES",
    "InferRequest",
    "ModelSchema",
    "check_float",
    "encode_infer_response",
    "object_param",
    "parse_infer",
    "parse_timeout",
]

#: V2 datatypes accepted for each column kind (FP64 and INT32 are narrowed/widened on arrival).
ACCEPTED_DATATYPES: dict[str, tuple[str, ...]] = {
    "numeric": ("FP32", "FP64"),
    "datetime": ("FP32", "FP64"),
    "integer": ("INT64", "INT32"),
    "boolean": ("BOOL",),
    "categorical": ("BYTES",),
}
MATRIX_DATATYPES = ("FP32", "FP64")
NUMERIC_KINDS = frozenset({"numeric", "integer", "boolean", "datetime"})
_FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
_INT_TYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
_MAX_DEPTH = 32
_INT64_LIMIT = float(2**63)


@dataclass
class ModelSchema:
    """What the protocol needs to know about a model: its columns and outputs.

    ``strict_categories`` names categorical inputs whose unseen levels are refused (400)
    instead of handed to the graph (which encodes them as all-zeros); it comes from the
    manifest key ``serving.unknown_categories``: ``"reject"`` (every categorical input) or a
    list of input names.
    """

    name: str
    version: str
    columns: list[ColumnSpec]
    outputs: list[str]
    strict_categories: frozenset[str] = frozenset()
    by_name: dict[str, ColumnSpec] = field(init=False)
    names: tuple[str, ...] = field(init=False)
    all_numeric: bool = field(init=False)
    all_float: bool = field(init=False)
    _levels: dict[str, frozenset[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {c.name: c for c in self.columns}
        self.names = tuple(c.name for c in self.columns)
        self.all_numeric = bool(self.columns) and all(c.kind in NUMERIC_KINDS for c in self.columns)
        self.all_float = bool(self.columns) and all(c.kind in ("numeric", "datetime") for c in self.columns)
        self._levels = {
            c.name: frozenset(c.categories) | {""}
            for c in self.columns
            if c.kind == "categorical" and c.name in self.strict_categories and c.categories
        }

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def check_categories(self, spec: ColumnSpec, values: np.ndarray, label: str) -> None:
        levels = self._levels.get(spec.name)
        if levels is None:
            return
        for index, value in enumerate(values.ravel().tolist()):
            if value not in levels:
                known = ", ".join(sorted(spec.categories)[:20])
                raise BadRequest(
                    f"{label}: unknown category {show(value)} at row {index}; this model accepts only the "
                    f"levels seen in training ({known})"
                )


@dataclass
class InferRequest:
    """A parsed V2 inference request: the feeds for the graph plus how to answer."""

    feeds: Mapping[str, np.ndarray]
    rows: int
    id: str | None = None
    outputs: list[tuple[str, bool]] | None = None
    binary_output: bool = False
    timeout: float | None = None


def check_float(spec: ColumnSpec, values: np.ndarray, label: str) -> None:
    finite = np.isfinite(values)
    if finite.all():
        return
    nan = np.isnan(values)
    infinite = ~finite & ~nan
    if infinite.any():
        index = int(np.argmax(infinite))
        raise BadRequest(
            f"{label}: value {float(values[index])!r} at row {index} is not finite (or is outside the FP32 "
            "range); send a finite number"
        )
    if not spec.nullable:
        index = int(np.argmax(nan))
        raise BadRequest(
            f"{label}: missing value (null or NaN) at row {index}, but column {spec.name!r} had no missing "
            "values in training; send a number"
        )


def _flatten(data: Any, name: str) -> list[Any]:
    if type(data) is not list:
        raise BadRequest(
            f"input {name!r}: 'data' must be an array (flat or nested); got {type(data).__name__}"
        )
    if list not in set(map(type, data)):
        return data
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if type(value) is list:
                if len(stack) >= _MAX_DEPTH:
                    raise BadRequest(f"input {name!r}: 'data' is nested deeper than {_MAX_DEPTH} levels")
                stack.append(iter(value))
                break
            out.append(value)
        else:
            stack.pop()
    return out


def _json_values(name: str, datatype: str, data: Any, count: int, shape: list[int]) -> np.ndarray:
    flat = _flatten(data, name)
    if len(flat) != count:
        raise BadRequest(f"input {name!r}: shape {shape} holds {count} value(s) but 'data' has {len(flat)}")
    types = set(map(type, flat))
    if datatype in _FLOAT_TYPES:
        allowed: tuple[type, ...] = (int, float, type(None))
        expected = "a number or null"
    elif datatype in _INT_TYPES:
        allowed, expected = (int,), "a whole number"
    elif datatype == "BOOL":
        allowed, expected = (bool,), "true or false"
    else:  # BYTES
        allowed, expected = (str, type(None)), "a string"
    if not types.issubset(allowed):
        index = next(i for i, v in enumerate(flat) if type(v) not in allowed)
        raise BadRequest(
            f"input {name!r}: {datatype} element {index} must be {expected}; got {show(flat[index])}"
        )
    try:
        if datatype == "BYTES":
            return np.array(["" if v is None else v for v in flat], dtype=object)
        if datatype == "BOOL":
            return np.array(flat, dtype=np.bool_)
        if datatype in _INT_TYPES:
            target = V2_DTYPES[datatype]
            wide = np.array(flat, dtype=np.int64) if datatype != "UINT64" else np.array(flat, dtype=np.uint64)
            if not np.array_equal(wide.astype(target).astype(wide.dtype), wide):
                raise OverflowError
            return wide.astype(target)
        return np.array(flat, dtype=np.float64)
    except OverflowError:
        raise BadRequest(f"input {name!r}: a value does not fit in {datatype}") from None


def _as_float32(values: np.ndarray) -> np.ndarray:
    """FP32 values; FP64 values beyond the FP32 range become inf (and fail the finiteness check)."""
    if values.dtype == np.float32:
        return values
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(np.float32)


def _to_column(spec: ColumnSpec, datatype: str, values: np.ndarray, label: str) -> np.ndarray:
    """Cast a decoded input to its graph dtype and check it against the column (flat in, (N, 1) out)."""
    kind = spec.kind
    if kind in ("numeric", "datetime"):
        out = _as_float32(values)
        check_float(spec, out, label)
    elif kind == "integer":
        out = values.astype(np.int64)
    elif kind == "boolean":
        out = values.astype(np.bool_)
    else:
        out = values
    return out.reshape(-1, 1)


def _matrix_columns(
    schema: ModelSchema, name: str, values: np.ndarray, rows: int
) -> Mapping[str, np.ndarray]:
    """Split one ``[N, F]`` matrix into the model's columns, cast and checked per column kind."""
    matrix = _as_float32(values.reshape(rows, len(schema.columns)))
    if schema.all_float:
        if not np.isfinite(matrix).all():
            for j, spec in enumerate(schema.columns):
                check_float(spec, matrix[:, j], f"input {name!r} column {j} ({spec.name!r})")
        return MatrixFeeds(matrix, schema.names)
    exact = values.reshape(rows, len(schema.columns))
    feeds: dict[str, np.ndarray] = {}
    for j, spec in enumerate(schema.columns):
        label = f"input {name!r} column {j} ({spec.name!r})"
        if spec.kind in ("numeric", "datetime"):
            check_float(spec, matrix[:, j], label)
            feeds[spec.name] = np.ascontiguousarray(matrix[:, j]).reshape(-1, 1)
            continue
        column = exact[:, j]
        bad = ~np.isfinite(column)
        if spec.kind == "integer":
            bad |= column != np.round(column)
            bad |= np.abs(column) >= _INT64_LIMIT
            expected = "whole numbers"
        else:
            bad |= (column != 0) & (column != 1)
            expected = "0 or 1"
        if bad.any():
            index = int(np.argmax(bad))
            raise BadRequest(f"{label}: expected {expected}, got {float(column[index])!r} at row {index}")
        feeds[spec.name] = (column.astype(np.int64) if spec.kind == "integer" else column != 0).reshape(-1, 1)
    return feeds


def _shape(tensor: Mapping[str, Any], name: str) -> list[int]:
    shape = tensor.get("shape")
    if type(shape) is not list or not all(type(d) is int and d >= 0 for d in shape):
        raise BadRequest(
            f"input {name!r}: 'shape' must be an array of non-negative integers; got {show(shape)}"
        )
    return shape


def parse_timeout(parameters: Mapping[str, Any], header: str | None) -> float | None:
    """Seconds from ``timeout_ms``, Triton's ``timeout`` (microseconds) or the header; the smallest wins."""
    found: list[float] = []
    for key, scale in (("timeout_ms", 1e-3), ("timeout", 1e-6)):
        if key in parameters:
            value = parameters[key]
            if type(value) not in (int, float) or not value > 0 or value == float("inf"):
                raise BadRequest(f"parameters.{key} must be a positive number; got {show(value)}")
            found.append(value * scale)
    if header is not None:
        try:
            value = float(header)
        except ValueError:
            value = -1.0
        if not 0 < value < float("inf"):
            raise BadRequest(
                f"X-Request-Timeout-Ms must be a positive number of milliseconds; got {show(header)}"
            )
        found.append(value * 1e-3)
    return min(found) if found else None


def object_param(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if type(value) is not dict:
        raise BadRequest(f"{what} must be a JSON object; got {type(value).__name__}")
    return value


def _requested_outputs(
    header: Mapping[str, Any], schema: ModelSchema, default: bool
) -> list[tuple[str, bool]] | None:
    requested = header.get("outputs")
    if requested is None:
        return None
    if type(requested) is not list:
        raise BadRequest(
            f"'outputs' must be an array of {{\"name\": ...}} objects; got {type(requested).__name__}"
        )
    out: list[tuple[str, bool]] = []
    for index, item in enumerate(requested):
        if type(item) is not dict or type(item.get("name")) is not str:
            raise BadRequest(f"outputs[{index}] must be an object with a string 'name'; got {show(item)}")
        name = item["name"]
        if name not in schema.outputs:
            raise BadRequest(
                f"unknown output {name!r}; model {schema.name!r} has outputs {schema.outputs}."
                + did_you_mean(name, schema.outputs)
            )
        params = object_param(item.get("parameters"), f"outputs[{index}].parameters")
        binary = params.get("binary_data", default)
        if type(binary) is not bool:
            raise BadRequest(
                f"outputs[{index}].parameters.binary_data must be true or false; got {show(binary)}"
            )
        out.append((name, binary))
    return out


def parse_infer(
    body: bytes,
    schema: ModelSchema,
    *,
    header_length: str | None = None,
    timeout_header: str | None = None,
) -> InferRequest:
    """Read a V2 inference request (JSON, or JSON plus binary tensors) into validated feeds.

    Inputs are either the model's raw columns (one tensor each, shape ``[N, 1]`` or ``[N]``)
    or, when every column is numeric-like, one ``FP32``/``FP64`` matrix ``[N, F]`` under any
    name that is not a column name. ``data`` may be flat or nested; only its length counts.

    Example:
        >>> schema = ModelSchema("m", "1", [ColumnSpec("x", "numeric")], ["prediction"])
        >>> req = parse_infer(b'{"inputs":[{"name":"x","shape":[2,1],"datatype":"FP32","data":[[1],[2]]}]}', schema)
        >>> req.rows, req.feeds["x"].dtype.name
        (2, 'float32')
    """
    head, tail = split_body(body, header_length)
    header = loads(head)
    if type(header) is not dict:
        raise BadRequest(f"the request must be a JSON object with 'inputs'; got {type(header).__name__}")
    request_id = header.get("id")
    if request_id is not None and type(request_id) is not str:
        raise BadRequest(f"'id' must be a string; got {type(request_id).__name__}")
    parameters = object_param(header.get("parameters"), "'parameters'")
    binary_output = parameters.get("binary_data_output", False)
    if type(binary_output) is not bool:
        binary_output = False
    inputs = header.get("inputs")
    if type(inputs) is not list or not inputs:
        raise BadRequest(
            "'inputs' must be a non-empty array of tensors; the model expects "
            f"{schema.feature_names}" + (" (or one FP32 matrix [N, F])" if schema.all_numeric else "")
        )
    for index, tensor in enumerate(inputs):
        if type(tensor) is not dict or type(tensor.get("name")) is not str:
            raise BadRequest(f"inputs[{index}] must be an object with a string 'name'")

    matrix = len(inputs) == 1 and schema.all_numeric and inputs[0]["name"] not in schema.by_name
    plan: list[tuple[Mapping[str, Any], str, ColumnSpec | None, list[int], int]] = []
    seen: set[str] = set()
    rows: int | None = None
    for tensor in inputs:
        name = tensor["name"]
        if name in seen:
            raise BadRequest(f"input {name!r} appears twice")
        seen.add(name)
        spec = None if matrix else schema.by_name.get(name)
        if spec is None and not matrix:
            raise BadRequest(
                f"unknown input {name!r}; model {schema.name!r} expects {schema.feature_names}."
                + did_you_mean(name, schema.feature_names)
            )
        datatype = tensor.get("datatype")
        if type(datatype) is not str or datatype not in V2_DTYPES:
            raise BadRequest(
                f"input {name!r}: unknown datatype {show(datatype)}; use one of {sorted(V2_DTYPES)}"
            )
        shape = _shape(tensor, name)
        if matrix:
            width = len(schema.columns)
            if datatype not in MATRIX_DATATYPES:
                raise BadRequest(
                    f"input {name!r} is not one of the model's inputs {schema.feature_names}; as a single "
                    f"matrix it must be FP32 or FP64, got {datatype}"
                )
            if len(shape) != 2 or shape[1] != width:
                raise BadRequest(
                    f"input {name!r} is not one of the model's inputs {schema.feature_names}; as a single "
                    f"matrix its shape must be [N, {width}], got {shape}"
                )
            plan.append((tensor, datatype, None, shape, shape[0]))
            rows = shape[0]
            continue
        assert spec is not None
        if datatype not in ACCEPTED_DATATYPES[spec.kind]:
            raise BadRequest(
                f"input {name!r}: datatype {datatype} does not fit column kind {spec.kind!r}; send "
                + " or ".join(ACCEPTED_DATATYPES[spec.kind])
            )
        if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
            n = shape[0]
        else:
            raise BadRequest(f"input {name!r}: shape {shape} is not accepted; send [N, 1] or [N]")
        if rows is not None and n != rows:
            raise BadRequest(f"input {name!r} has {n} row(s) but the other inputs have {rows}")
        rows = n
        plan.append((tensor, datatype, spec, shape, n))
    if not matrix:
        missing = [c.name for c in schema.columns if c.name not in seen]
        if missing:
            raise BadRequest(
                f"missing input(s) {missing}; model {schema.name!r} expects {schema.feature_names}"
            )
    assert rows is not None
    if rows == 0:
        raise BadRequest("the inputs have no rows (shape [0, ...]); send at least one row")

    offset = 0
    feeds: Any = {}
    for tensor, datatype, spec, shape, _ in plan:
        name = tensor["name"]
        count = 1
        for dim in shape:
            count *= dim
        params = object_param(tensor.get("parameters"), f"input {name!r} parameters")
        if "shared_memory_region" in params:
            raise BadRequest(f"input {name!r}: the shared-memory extension is not supported; send the data")
        size = params.get("binary_data_size")
        if size is not None:
            if "data" in tensor:
                raise BadRequest(f"input {name!r} has both 'data' and parameters.binary_data_size; send one")
            if type(size) is not int or size < 0:
                raise BadRequest(
                    f"input {name!r}: binary_data_size must be a non-negative integer; got {show(size)}"
                )
            if offset + size > len(tail):
                raise BadRequest(
                    f"input {name!r}: binary_data_size {size} runs past the end of the binary data "
                    f"({len(tail)} bytes after the JSON header); set Inference-Header-Content-Length"
                )
            values = decode_raw(datatype, tail[offset : offset + size], count, name)
            offset += size
        elif "data" in tensor:
            values = _json_values(name, datatype, tensor["data"], count, shape)
        else:
            raise BadRequest(f"input {name!r} has no 'data' (and no parameters.binary_data_size)")
        if spec is None:
            feeds = _matrix_columns(schema, name, values, rows)  # the only input
        else:
            column = _to_column(spec, datatype, values, f"input {name!r}")
            if spec.kind == "categorical":
                schema.check_categories(spec, column, f"input {name!r}")
            feeds[name] = column
    if offset != len(tail):
        raise BadRequest(
            f"{len(tail) - offset} byte(s) of binary data after the JSON header belong to no input; "
            "check Inference-Header-Content-Length and each binary_data_size"
        )
    return InferRequest(
        feeds=feeds,
        rows=rows,
        id=request_id,
        outputs=_requested_outputs(header, schema, binary_output),
        binary_output=binary_output,
        timeout=parse_timeout(parameters, timeout_header),
    )


def encode_infer_response(
    schema: ModelSchema, request: InferRequest, outputs: Mapping[str, np.ndarray]
) -> tuple[bytes, dict[str, str]]:
    """The V2 response body and its extra headers (binary outputs after the JSON when asked)."""
    selected = request.outputs or [
        (name, request.binary_output) for name in schema.outputs if name in outputs
    ]
    entries: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, binary in selected:
        array = outputs[name]
        entry: dict[str, Any] = {"name": name, "datatype": datatype_of(array), "shape": list(array.shape)}
        if binary:
            blob = encode_tensor(array)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = json_data(array)
        entries.append(entry)
    response: dict[str, Any] = {"model_name": schema.name, "model_version": schema.version}
    if request.id is not None:
        response["id"] = request.id
    response["outputs"] = entries
    head = dumps(response)
    if not blobs:
        return head, {"content-type": "application/json"}
    return head + b"".join(blobs), {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(head)),
    }
