"""JSON in and out: strict enough for a server, tolerant of what Triton's client writes.

``orjson`` is used when installed (several times faster, numpy arrays written directly); the
standard library otherwise. Both accept the same documents.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from .errors import BadRequest

__all__ = ["did_you_mean", "dumps", "json_data", "loads", "show"]

_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)

_orjson: Any
try:  # an optional accelerator: the same documents parse, several times faster
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by a test that hides orjson
    _orjson = None

_NUMPY_JSON = 0 if _orjson is None else _orjson.OPT_SERIALIZE_NUMPY


_MAX_OPENERS = 10_000


def _shallow(body: bytes | str) -> bool:
    """Whether a document has few enough ``[``/``{`` that no parser can recurse deeply on it.

    Some orjson releases crash (not raise) on documents nested ~100k deep; bodies with more than
    10,000 openers go to the standard library, which raises RecursionError instead.
    """
    if isinstance(body, str):
        return body.count("[") + body.count("{") <= _MAX_OPENERS
    return body.count(b"[") + body.count(b"{") <= _MAX_OPENERS


def loads(body: bytes | str) -> Any:
    """Parse JSON; the literals ``NaN``, ``Infinity`` and ``-Infinity`` are accepted as numbers.

    They are not standard JSON, but Triton's client writes them for non-finite floats, so they
    parse here and the column checks decide: NaN is a missing value (allowed only where the
    column is nullable), infinities are always refused. Uses ``orjson`` when installed.

    Example:
        >>> loads(b'{"a": [1, null, NaN]}')
        {'a': [1, None, nan]}
    """
    first: ValueError = ValueError()
    if _orjson is not None and _shallow(body):
        try:
            return _orjson.loads(body)
        except _orjson.JSONDecodeError as exc:
            first = exc  # maybe only NaN/Infinity literals: the standard library reads those
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray, memoryview)) else body
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        message = first if isinstance(first, json.JSONDecodeError) else exc
        raise BadRequest(
            f"the body is not valid JSON: {message.msg} at line {message.lineno} column {message.colno}"
        ) from None
    except RecursionError:
        raise BadRequest("the body is not acceptable JSON: it is nested too deeply") from None


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes; numpy arrays are written as (flat) arrays, non-finite floats as null.

    Example:
        >>> dumps({"a": [1, 2.5]})
        b'{"a":[1,2.5]}'
    """
    if _orjson is not None:
        return cast(bytes, _orjson.dumps(obj, option=_NUMPY_JSON))
    return _ENCODER.encode(obj).encode("utf-8")


def show(value: Any, limit: int = 80) -> str:
    """A short, safe rendering of a client value for an error message (no deep or huge reprs)."""
    if isinstance(value, (list, dict)):
        return f"{type(value).__name__} of {len(value)} item(s)"
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + "..."
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def did_you_mean(name: str, known: Sequence[str]) -> str:
    if len(name) > 100:
        return ""
    match = difflib.get_close_matches(name, list(known), n=1)
    return f" Did you mean {match[0]!r}?" if match else ""


def json_data(array: np.ndarray) -> Any:
    """A flat JSON-ready form of an output: the array itself for orjson, else a list."""
    flat = array.ravel()
    if flat.dtype.kind in "OSU":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat.tolist()]
    if _orjson is not None and (
        flat.dtype.kind in "biu" or (flat.dtype.kind == "f" and flat.dtype.itemsize >= 4)
    ):
        return np.ascontiguousarray(flat)  # orjson writes numpy arrays itself (NaN as null)
    if flat.dtype.kind == "f" and not np.isfinite(flat).all():
        return [v if v == v and abs(v) != float("inf") else None for v in flat.tolist()]
    return flat.tolist()
