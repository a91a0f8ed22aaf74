"""Feed dicts (input name -> ``(N, 1)`` array) and how batches of them are joined.

A request in the single-matrix form (one FP32 ``[N, F]`` tensor for an all-float model)
becomes a :class:`MatrixFeeds`: the same mapping, but backed by one ``(F, N)`` block whose
rows are the columns. Joining a batch of those is one ``concatenate`` of matrices instead of
one per column, and hashing one for the cache is one pass over one buffer.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from .binary import datatype_of, encode_bytes

__all__ = ["MatrixFeeds", "feeds_key", "join_feeds"]

Feeds = Mapping[str, np.ndarray]


class MatrixFeeds(Mapping[str, np.ndarray]):
    """``{column: (N, 1) float32}`` backed by one row-major ``(N, F)`` matrix.

    The per-column arrays are made on first access (in the worker thread, for a model call),
    so a request that only joins a batch never pays for them.

    Example:
        >>> feeds = MatrixFeeds(np.arange(6, dtype=np.float32).reshape(2, 3), ("a", "b", "c"))
        >>> feeds["b"].ravel().tolist(), feeds.matrix.shape, list(feeds)
        ([1.0, 4.0], (2, 3), ['a', 'b', 'c'])
    """

    def __init__(self, matrix: np.ndarray, names: tuple[str, ...]) -> None:
        self.matrix = matrix  # (N, F) float32
        self.names = names
        self._columns: dict[str, np.ndarray] | None = None

    def _materialise(self) -> dict[str, np.ndarray]:
        if self._columns is None:
            columns = np.ascontiguousarray(self.matrix.T)  # (F, N): each column contiguous for ONNX Runtime
            self._columns = dict(zip(self.names, (row.reshape(-1, 1) for row in columns), strict=True))
        return self._columns

    def __getitem__(self, name: str) -> np.ndarray:
        return self._materialise()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def join_feeds(parts: Sequence[Feeds]) -> Feeds:
    """Concatenate the feeds of several requests along rows (one call for matrix-form batches).

    Example:
        >>> a = {"x": np.ones((1, 1), np.float32)}; b = {"x": np.zeros((2, 1), np.float32)}
        >>> join_feeds([a, b])["x"].ravel().tolist()
        [1.0, 0.0, 0.0]
    """
    first = parts[0]
    matrices = [p for p in parts if isinstance(p, MatrixFeeds) and p.names == getattr(first, "names", None)]
    if len(matrices) == len(parts):
        return MatrixFeeds(np.concatenate([p.matrix for p in matrices], axis=0), matrices[0].names)
    return {name: np.concatenate([p[name] for p in parts], axis=0) for name in first}


def _update(digest: hashlib._Hash, name: str, array: np.ndarray) -> None:
    datatype = datatype_of(array)
    head = f"\x00{name}\x00{datatype}\x00{','.join(map(str, array.shape))}\x00".encode()
    digest.update(struct.pack("<I", len(head)))
    digest.update(head)
    data = (
        encode_bytes(array.ravel().tolist()) if datatype == "BYTES" else np.ascontiguousarray(array).tobytes()
    )
    digest.update(struct.pack("<Q", len(data)))
    digest.update(data)


def feeds_key(model: str, feeds: Feeds) -> bytes:
    """SHA-256 over the model identity and each input's name, datatype, shape and bytes.

    A matrix-form request is hashed as its one matrix (named by its columns).

    Example:
        >>> k = feeds_key("m:1:abc", {"x": np.ones((1, 1), np.float32)})
        >>> k == feeds_key("m:1:abc", {"x": np.ones((1, 1), np.float32)}), len(k)
        (True, 32)
        >>> k == feeds_key("m:2:abc", {"x": np.ones((1, 1), np.float32)})
        False
    """
    digest = hashlib.sha256(model.encode("utf-8"))
    if isinstance(feeds, MatrixFeeds):
        _update(digest, "\x01".join(feeds.names), feeds.matrix)
        return digest.digest()
    for name in sorted(feeds):
        _update(digest, name, feeds[name])
    return digest.digest()
