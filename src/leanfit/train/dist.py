"""The one place that reads the distributed rank (nanoGPT style).

Without an initialised ``torch.distributed`` process group, this process is rank 0
of a world of 1. DDP itself is not built yet; side effects (logging, writing files)
are guarded by :func:`is_main_process` so they stay right once it is.
"""

from __future__ import annotations

__all__ = ["is_main_process", "rank", "world_size"]


def _initialised() -> bool:
    import torch.distributed as dist

    return bool(dist.is_available() and dist.is_initialized())


def rank() -> int:
    """The global rank of this process, 0 when not distributed.

    Example:
        >>> rank()
        0
    """
    if _initialised():
        import torch.distributed as dist

        return int(dist.get_rank())
    return 0


def world_size() -> int:
    """The number of processes in the group, 1 when not distributed.

    Example:
        >>> world_size()
        1
    """
    if _initialised():
        import torch.distributed as dist

        return int(dist.get_world_size())
    return 1


def is_main_process() -> bool:
    """True on rank 0: the process that logs and writes files.

    Example:
        >>> is_main_process()
        True
    """
    return rank() == 0
