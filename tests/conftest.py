"""Shared fixtures: tiny seeded data and one small run folder per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_limits

import leanfit


@pytest.fixture(autouse=True, scope="session")
def _one_cpu_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread, and CI's 2 cores are shared with other jobs."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def bc_run(tmp_path_factory: pytest.TempPathFactory) -> leanfit.RunResult:
    """A real run on breast_cancer with a small budget: study, leaderboard, ONNX artifact."""
    out = tmp_path_factory.mktemp("runs")
    return leanfit.run(
        {
            "name": "bc",
            "data": {"source": "sklearn:breast_cancer"},
            "search": {"families": ["linear", "hgb"], "trials": 4, "timeout": 300},
        },
        out=out,
    )


@pytest.fixture(scope="session")
def bc_model_dir(bc_run: leanfit.RunResult) -> Path:
    return bc_run.model_dir
