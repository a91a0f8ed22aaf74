"""The distributed rank is read in one place; without a process group this is rank 0 of 1."""

from __future__ import annotations

from leanfit.train import is_main_process, rank, world_size


def test_single_process_defaults() -> None:
    assert (rank(), world_size(), is_main_process()) == (0, 1, True)
