"""Triton's binary tensor data extension: raw little-endian tensors after the JSON header.

A request or response body is ``<JSON header><tensor 0 bytes><tensor 1 bytes>...``; the
``Inference-Header-Content-Length`` header gives the JSON's length and each binary tensor's
``parameters.binary_data_size`` its byte count, in the order the tensors are listed.
Numbers are little-endian, row-major, unpadded; ``BOOL`` is one byte (0 or 1); ``BYTES``
elements are a 4-byte little-endian length followed by that many bytes.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from .errors import BadRequest

__all__ = [
    "HEADER",
    "V2_DTYPES",
    "datatype_of",
    "decode_bytes",
    "decode_raw",
    "encode_bytes",
    "encode_tensor",
    "split_body",
]

HEADER = "inference-header-content-length"

#: numpy dtype of each V2 datatype on the wire (little-endian).
V2_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
_BY_KIND = {(dt.kind, dt.itemsize): name for name, dt in V2_DTYPES.items() if name not in ("BYTES",)}
_LEN = struct.Struct("<I")


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """Split a body into its JSON header and the binary tail.

    Example:
        >>> split_body(b'{"a":1}xyz', "7")
        (b'{"a":1}', b'xyz')
        >>> split_body(b'{}', None)
        (b'{}', b'')
    """
    if header_length is None:
        return body, b""
    text = header_length.strip()
    if not text.isdigit():
        raise BadRequest(
            f"Inference-Header-Content-Length must be a non-negative integer; got {header_length!r}"
        )
    size = int(text)
    if size > len(body):
        raise BadRequest(f"Inference-Header-Content-Length is {size} but the body has only {len(body)} bytes")
    return body[:size], body[size:]


def decode_raw(datatype: str, raw: bytes, count: int, name: str) -> np.ndarray:
    """Read ``count`` elements of ``datatype`` from raw little-endian bytes (flat array).

    Example:
        >>> decode_raw("INT64", (7).to_bytes(8, "little"), 1, "x").tolist()
        [7]
    """
    if datatype == "BYTES":
        return np.array(decode_bytes(raw, count, name), dtype=object)
    dtype = V2_DTYPES[datatype]
    expected = count * dtype.itemsize
    if len(raw) != expected:
        raise BadRequest(
            f"input {name!r}: binary_data_size is {len(raw)} bytes but shape and {datatype} need "
            f"{count} x {dtype.itemsize} = {expected}"
        )
    if datatype == "BOOL":
        octets = np.frombuffer(raw, dtype=np.uint8)
        if octets.size and int(octets.max()) > 1:
            index = int(np.argmax(octets > 1))
            raise BadRequest(f"input {name!r}: BOOL byte {index} is {int(octets[index])}; send 0 or 1")
        return octets.astype(np.bool_)
    return np.frombuffer(raw, dtype=dtype)


def decode_bytes(raw: bytes, count: int, name: str) -> list[str]:
    """Read ``count`` length-prefixed elements and decode them as UTF-8 text.

    Example:
        >>> decode_bytes(b"\\x02\\x00\\x00\\x00hi\\x00\\x00\\x00\\x00", 2, "c")
        ['hi', '']
    """
    out: list[str] = []
    offset, end = 0, len(raw)
    for index in range(count):
        if offset + 4 > end:
            raise BadRequest(
                f"input {name!r}: BYTES data ends after {index} of {count} elements; "
                "each element is a 4-byte little-endian length followed by its bytes"
            )
        (size,) = _LEN.unpack_from(raw, offset)
        offset += 4
        if offset + size > end:
            raise BadRequest(
                f"input {name!r}: BYTES element {index} claims {size} bytes but only {end - offset} remain"
            )
        try:
            out.append(raw[offset : offset + size].decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise BadRequest(
                f"input {name!r}: BYTES element {index} is not valid UTF-8 ({exc.reason})"
            ) from None
        offset += size
    if offset != end:
        raise BadRequest(f"input {name!r}: {end - offset} bytes left over after {count} BYTES elements")
    return out


def encode_bytes(values: Any) -> bytes:
    """Length-prefix each element (str as UTF-8, bytes as is).

    Example:
        >>> encode_bytes(["hi", b""])
        b'\\x02\\x00\\x00\\x00hi\\x00\\x00\\x00\\x00'
    """
    parts: list[bytes] = []
    for value in values:
        data = value if isinstance(value, bytes) else str(value).encode("utf-8")
        parts.append(_LEN.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def datatype_of(array: np.ndarray) -> str:
    """The V2 datatype of a numpy array (``BYTES`` for text and objects).

    Example:
        >>> datatype_of(np.zeros(2, dtype=np.float32))
        'FP32'
    """
    if array.dtype.kind in "OUS":
        return "BYTES"
    if array.dtype.kind == "b":
        return "BOOL"
    return _BY_KIND.get((array.dtype.kind, array.dtype.itemsize), "FP32")


def encode_tensor(array: np.ndarray) -> bytes:
    """The binary form of a tensor: little-endian, row-major, unpadded.

    Example:
        >>> encode_tensor(np.array([1, 0], dtype=bool))
        b'\\x01\\x00'
    """
    datatype = datatype_of(array)
    if datatype == "BYTES":
        return encode_bytes(array.ravel().tolist())
    if datatype == "BOOL":
        return np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    return np.ascontiguousarray(array, dtype=V2_DTYPES[datatype]).tobytes()
