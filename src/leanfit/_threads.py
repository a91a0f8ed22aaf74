"""One place that decides how many threads a fit may use.

Small fits are faster on one thread: OpenMP (scikit-learn's and torch's, two
separate runtimes in one process) spins at every barrier, and on a busy 2-core
machine a HistGradientBoosting fit that takes a second alone can take minutes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["SMALL_DATA_ROWS", "limit_threads", "resolve_threads"]

#: Up to this many training rows, ``threads: auto`` means one thread per fit.
SMALL_DATA_ROWS = 20_000


def resolve_threads(setting: int | str, n_rows: int) -> int:
    """Threads for a fit: ``auto`` is 1 for small data, else every core.

    Example:
        >>> resolve_threads("auto", 1000), resolve_threads(3, 10)
        (1, 3)
    """
    if setting == "auto":
        return 1 if n_rows <= SMALL_DATA_ROWS else max(os.cpu_count() or 1, 1)
    return max(int(setting), 1)


@contextlib.contextmanager
def limit_threads(n: int) -> Iterator[None]:
    """Limit OpenMP/BLAS pools (threadpoolctl) and torch's intra-op threads inside the block."""
    from threadpoolctl import threadpool_limits

    torch_threads = None
    try:
        import sys

        if "torch" in sys.modules:
            import torch

            torch_threads = torch.get_num_threads()
            torch.set_num_threads(n)
    except ImportError:  # pragma: no cover - torch is a dependency
        torch_threads = None
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        if torch_threads is not None:
            import torch

            torch.set_num_threads(torch_threads)
