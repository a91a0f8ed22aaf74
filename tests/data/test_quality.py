"""The data-quality report."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from leanfit.data import QualityReport, quality_report
from leanfit.schema import ColumnSpec

N = 40


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _report(
    frame: pd.DataFrame, y: np.ndarray, task: str = "classification", **kwargs: object
) -> QualityReport:
    kinds = {"f": "numeric", "i": "integer", "O": "categorical", "b": "boolean"}
    columns = [ColumnSpec(str(n), kinds[frame[n].dtype.kind]) for n in frame.columns]  # type: ignore[arg-type]
    return quality_report(frame, y, columns, task=task, **kwargs)  # type: ignore[arg-type]


def test_id_like_columns(rng: np.random.Generator) -> None:
    frame = pd.DataFrame(
        {
            "row": np.arange(100, 100 + N),  # a sequence
            "shuffled": rng.permutation(N),  # a shuffled sequence
            "auto": np.cumsum(rng.integers(1, 5, N)),  # increasing with gaps
            "key": pd.Series([f"u{i}" for i in rng.permutation(N)], dtype=object),
            "weight": rng.normal(70, 10, N),  # unique floats: a measurement
            "count": rng.choice(10_000, N, replace=False),  # unique integers, no order
        }
    )
    report = _report(frame, rng.integers(0, 2, N))
    assert report.id_like == ["row", "shuffled", "auto", "key"]
    assert report.dropped == ["row", "shuffled", "auto", "key"]


def test_constant_columns_and_switches(rng: np.random.Generator) -> None:
    frame = pd.DataFrame(
        {
            "k": np.ones(N),
            "gone": np.full(N, np.nan),
            "gappy": np.r_[np.ones(N - 1), np.nan],
            "x": rng.normal(size=N),
        }
    )
    report = _report(frame, rng.integers(0, 2, N))
    assert report.constant == ["k", "gone"] and report.dropped == ["k", "gone"]
    assert report.missing == {"k": 0.0, "gone": 1.0, "gappy": 0.025, "x": 0.0}
    kept = _report(frame, rng.integers(0, 2, N), drop_constant=False)
    assert kept.constant == ["k", "gone"] and kept.dropped == []
    assert "column 'k' is constant (1.0 in every row); kept (drop_constant is off)" in kept.warnings


def test_duplicates_ignore_dropped_columns(rng: np.random.Generator) -> None:
    x = rng.normal(size=N)
    frame = pd.DataFrame({"id": np.arange(N + 2), "x": np.r_[x, x[:2]]})
    report = _report(frame, np.r_[np.arange(N) % 2, [0, 1]])
    assert report.duplicate_rows == 2
    assert report.warnings[-1].startswith("2 duplicate rows (4.8%)")


def test_leakage_suspects(rng: np.random.Generator) -> None:
    y = rng.integers(0, 3, N)
    frame = pd.DataFrame(
        {
            "copy": y * 10.0 + 1,
            "label": pd.Series(np.array(["a", "b", "c"])[y], dtype=object),
            "noise": rng.normal(size=N),
        }
    )
    report = _report(frame, y)
    assert [s["column"] for s in report.leakage] == ["copy", "label"]
    assert report.leakage[0] == {"column": "copy", "measure": "balanced accuracy", "score": 1.0}
    assert any("'copy' predicts the target almost perfectly" in w for w in report.warnings)


def test_regression_leakage(rng: np.random.Generator) -> None:
    y = rng.normal(size=N)
    groups = np.repeat(np.arange(N // 2), 2)
    y_grouped = groups.astype(float) * 3 + rng.normal(scale=0.01, size=N)
    frame = pd.DataFrame(
        {
            "scaled": np.exp(y),
            "x": rng.normal(size=N),
            "grp": pd.Series([f"g{g}" for g in groups], dtype=object),
        }
    )
    report = _report(frame, y, task="regression")
    assert [(s["column"], s["measure"]) for s in report.leakage] == [("scaled", "|rank correlation|")]
    report = _report(frame, y_grouped, task="regression")
    assert [(s["column"], s["measure"]) for s in report.leakage] == [("grp", "correlation ratio")]


def test_report_is_json_and_logged(rng: np.random.Generator, caplog: pytest.LogCaptureFixture) -> None:
    frame = pd.DataFrame({"k": np.zeros(N), "x": rng.normal(size=N)})
    with caplog.at_level(logging.WARNING, logger="leanfit"):
        report = _report(frame, rng.integers(0, 2, N))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["constant"] == ["k"] and data["n_rows"] == N
    assert [r.getMessage() for r in caplog.records] == report.warnings
    assert all(r.name == "leanfit.data.quality" for r in caplog.records)
