"""Shared fixtures: tiny seeded data and one small run folder per session."""

from __future__ import annotations

from pathlib import Path

import pytest

import leanfit


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
