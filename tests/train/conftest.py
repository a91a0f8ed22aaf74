"""Shared settings for the training-loop tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_cpu_thread() -> Iterator[None]:
    """Tiny networks train fastest on one thread, and CI's 2 cores are shared with other jobs."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def blobs() -> tuple[torch.Tensor, torch.Tensor]:
    """Two separable classes, seeded: X (N, F) float32, y (N,) int64."""
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(200, 4, generator=generator)  # (N, F)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).long()  # (N,)
    return X, y
