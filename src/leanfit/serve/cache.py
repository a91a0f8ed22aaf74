"""A bounded LRU cache of model outputs, keyed by what the model actually sees.

The key is a SHA-256 over the model's identity (name, version, graph checksum) and, for
each input in name order, its name, datatype, shape and bytes. The request ``id``, the
output format (JSON or binary) and the route (V2 or ``/predict``) are not part of it, so
the same rows hit the same entry whichever way they arrive.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from .feeds import feeds_key

__all__ = ["ResponseCache", "cache_key"]

Outputs = dict[str, np.ndarray]


def cache_key(model: str, feeds: Mapping[str, np.ndarray]) -> bytes:
    """The SHA-256 digest identifying ``feeds`` for ``model`` (a ``name:version:checksum`` string).

    Example:
        >>> a = cache_key("m:1:abc", {"x": np.ones((1, 1), np.float32)})
        >>> a == cache_key("m:1:abc", {"x": np.ones((1, 1), np.float32)}), len(a)
        (True, 32)
    """
    return feeds_key(model, feeds)


def _size(outputs: Outputs) -> int:
    total = 64
    for array in outputs.values():
        if array.dtype.kind == "O":
            total += sum(len(str(v)) + 50 for v in array.ravel().tolist())
        else:
            total += int(array.nbytes) + 100
    return total


class ResponseCache:
    """LRU of ``key -> outputs`` bounded in entries and in bytes; counts hits, misses, evictions.

    An entry larger than a sixteenth of the byte budget is not stored, so one big request
    cannot flush the cache.

    Example:
        >>> cache = ResponseCache(max_entries=1, max_bytes=10_000)
        >>> cache.put(b"a", {"y": np.zeros(1)}), cache.put(b"b", {"y": np.ones(1)})  # evictions made
        (0, 1)
        >>> cache.get(b"a") is None, cache.get(b"b")["y"].tolist(), cache.evictions
        (True, [1.0], 1)
    """

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._data: OrderedDict[bytes, tuple[Outputs, int]] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: bytes) -> Outputs | None:
        entry = self._data.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return entry[0]

    def put(self, key: bytes, outputs: Outputs) -> int:
        """Store an entry; returns how many older entries were evicted to make room."""
        size = _size(outputs)
        if not self.enabled or size > self.max_bytes // 16:
            return 0
        old = self._data.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        self._data[key] = (outputs, size)
        self.bytes += size
        evicted = 0
        while len(self._data) > self.max_entries or self.bytes > self.max_bytes:
            _, (_, dropped) = self._data.popitem(last=False)
            self.bytes -= dropped
            evicted += 1
        self.evictions += evicted
        return evicted

    def clear(self) -> None:
        """Drop every entry (the model changed); counters keep their totals."""
        self._data.clear()
        self.bytes = 0
