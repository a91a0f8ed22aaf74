"""Drift against the stored reference: tests, thresholds, edge cases, the server and ``monitor``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leanfit.artifacts import reference_statistics
from leanfit.exceptions import ArtifactError, DataError
from leanfit.schema import ColumnSpec
from leanfit.serve import DriftReport, ServeConfig, create_app, monitor
from leanfit.serve.drift import DISTANCE_THRESHOLD, P_VALUE_THRESHOLD, compute_drift

from ._artifacts import mixed_frame
from .client import AppClient

NUM = ColumnSpec("x", "numeric")
CAT = ColumnSpec("c", "categorical", categories=("a", "b", "c"))
FLAG = ColumnSpec("f", "boolean")


@pytest.fixture(scope="module")
def reference() -> dict:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(10, 2, 5000),
            "c": rng.choice(["a", "b", "c"], 5000, p=[0.6, 0.3, 0.1]),
            "f": rng.random(5000) < 0.3,
        }
    )
    return reference_statistics(frame, [NUM, CAT, FLAG])


def window(n: int, seed: int, *, mean: float = 10, p: tuple = (0.6, 0.3, 0.1), share: float = 0.3) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "x": rng.normal(mean, 2, n).astype(np.float32),
        "c": rng.choice(["a", "b", "c"], n, p=list(p)).astype(object),
        "f": rng.random(n) < share,
    }


def drift(reference: dict, values: dict) -> DriftReport:
    return compute_drift("m", reference, [NUM, CAT, FLAG], values, n_rows=len(values["x"]))


def verdicts_follow_thresholds(report: DriftReport) -> None:
    for f in report.features:
        assert f.score is not None and np.isfinite(f.score)
        if f.method in ("ks", "chisquare"):
            assert f.threshold == P_VALUE_THRESHOLD and f.drifted == (f.score <= P_VALUE_THRESHOLD)
        else:
            assert f.threshold == DISTANCE_THRESHOLD and f.drifted == (f.score >= DISTANCE_THRESHOLD)
    tested = [f for f in report.features if f.score is not None]
    assert report.share == pytest.approx(sum(f.drifted for f in tested) / len(tested), abs=1e-6)
    assert report.dataset_drift == (report.share >= 0.5)


@pytest.mark.parametrize(
    ("n", "methods"),
    [
        (300, ["ks", "chisquare", "chisquare"]),
        (1000, ["ks", "chisquare", "chisquare"]),
        (3000, ["wasserstein", "jensenshannon", "jensenshannon"]),
    ],
    ids=["small", "at-1000", "large"],
)
def test_no_shift_is_rarely_flagged_and_a_shift_always_is(
    reference: dict, n: int, methods: list[str]
) -> None:
    flagged = {"x": 0, "c": 0, "f": 0}
    seeds = range(100, 130)
    for seed in seeds:
        same = drift(reference, window(n, seed=seed))
        assert [f.method for f in same.features] == methods
        verdicts_follow_thresholds(same)
        for name in same.drifted_features:
            flagged[name] += 1
        moved = drift(reference, window(n, seed=seed + 1000, mean=11.2, p=(0.3, 0.3, 0.4), share=0.55))
        verdicts_follow_thresholds(moved)
        assert moved.drifted_features == ["x", "c", "f"] and moved.dataset_drift
    # p <= 0.05 flags about 5% of calm windows by design; the distances flag none at this size
    limit = 0.0 if n > 1000 else 0.2
    assert all(count / len(seeds) <= limit for count in flagged.values()), flagged


def test_the_wasserstein_score_is_normalised_by_the_training_std(reference: dict) -> None:
    x = next(f for f in drift(reference, window(3000, seed=4, mean=11.0)).features if f.feature == "x")
    assert x.method == "wasserstein" and x.score == pytest.approx(0.5, abs=0.08)  # 1 unit over a std of 2


def test_unseen_categories_drift_without_nan(reference: dict) -> None:
    values = window(200, seed=5)
    values["c"] = np.array(["zzz"] * 200, dtype=object)
    report = drift(reference, values)
    c = next(f for f in report.features if f.feature == "c")
    assert c.drifted and np.isfinite(c.score) and "200 value(s) of levels unseen in training" in c.note
    big = window(2000, seed=6)
    big["c"] = np.array(["zzz"] * 2000, dtype=object)
    c = next(f for f in drift(reference, big).features if f.feature == "c")
    assert c.method == "jensenshannon" and c.drifted and np.isfinite(c.score)


def test_constant_reference_columns_give_no_nan() -> None:
    columns = [ColumnSpec("k", "numeric"), ColumnSpec("level", "categorical", categories=("only",))]
    ref = reference_statistics(pd.DataFrame({"k": [3.0] * 50, "level": ["only"] * 50}), columns)
    for n in (100, 2000):
        same = compute_drift(
            "m", ref, columns, {"k": np.full(n, 3.0), "level": np.array(["only"] * n, object)}, n
        )
        assert not same.drifted_features and all(np.isfinite(f.score) for f in same.features)
        moved = compute_drift(
            "m", ref, columns, {"k": np.full(n, 4.0), "level": np.array(["new"] * n, object)}, n
        )
        assert moved.drifted_features == ["k", "level"] and all(np.isfinite(f.score) for f in moved.features)


def test_missing_values_and_empty_windows(reference: dict) -> None:
    values = window(100, seed=7)
    values["x"] = np.full(100, np.nan, dtype=np.float32)
    report = drift(reference, values)
    x = next(f for f in report.features if f.feature == "x")
    assert x.score is None and not x.drifted and x.note == "no values in the window"
    assert "x" not in report.drifted_features
    json.dumps(report.to_dict())  # null, never NaN
    with pytest.raises(ArtifactError, match="carries no reference statistics"):
        compute_drift("m", {}, [NUM], {"x": np.ones(3)}, 3)


def test_report_table_and_dict(reference: dict) -> None:
    report = drift(reference, window(300, seed=8, mean=12))
    rows = report.table()
    assert DriftReport.TABLE_COLUMNS == ("feature", "kind", "method", "score", "threshold", "drift", "rows")
    assert list(rows[0]) == list(DriftReport.TABLE_COLUMNS)
    assert rows[0]["feature"] == "x" and rows[0]["method"] == "ks" and rows[0]["threshold"] == "<= 0.05"
    assert rows[0]["drift"] == "DRIFT" and rows[0]["rows"] == "300"
    doc = report.to_dict()
    assert doc["features"][0]["statistic"] == "p_value" and doc["thresholds"]["small_window"] == 1000
    assert doc["n_features"] == 3 and doc["share_drifted"] == report.share


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.assign(member=frame["member"].map({True: "yes", False: "no"})).to_csv(path, index=False)
    return path


def test_monitor_matches_the_documented_verdicts(runs: dict[str, Path], tmp_path: Path) -> None:
    calm = monitor(runs["mixed"], write_csv(tmp_path / "calm.csv", mixed_frame(600, seed=11)))
    assert not calm.dataset_drift and calm.n_rows == 600
    moved = monitor(
        runs["mixed"] / "model", write_csv(tmp_path / "moved.csv", mixed_frame(600, seed=12, shift=1.0))
    )
    assert moved.drifted_features == ["age", "grade"]  # the two shifted columns, not the others
    assert moved.share == 0.5 and moved.dataset_drift  # half the features: the dataset drifts
    tail = monitor(runs["mixed"], tmp_path / "moved.csv", window=100)
    assert tail.n_rows == 100
    json.dumps(moved.to_dict())


def test_monitor_errors(runs: dict[str, Path], tampered: Path, tmp_path: Path) -> None:
    frame = mixed_frame(20, seed=13)
    no_grade = tmp_path / "no_grade.csv"
    frame.drop(columns=["grade"]).to_csv(no_grade, index=False)
    with pytest.raises(DataError, match=r"missing column\(s\) \['grade'\]"):
        monitor(runs["mixed"], no_grade)
    bad = frame.astype(object)
    bad.loc[3, "rooms"] = "many"
    with pytest.raises(DataError, match="column 'rooms' expected a number"):
        monitor(runs["mixed"], write_csv(tmp_path / "b.csv", bad))
    with pytest.raises(DataError, match="no such file"):
        monitor(runs["mixed"], tmp_path / "nope.csv")
    with pytest.raises(ArtifactError, match="SHA-256 mismatch"):
        monitor(tampered, write_csv(tmp_path / "c.csv", frame))


def test_the_server_and_monitor_agree(runs: dict[str, Path], tmp_path: Path) -> None:
    frame = mixed_frame(300, seed=14, shift=1.0)
    csv = write_csv(tmp_path / "new.csv", frame)
    offline = monitor(runs["mixed"], csv)
    rows = [
        {
            "age": None if pd.isna(r.age) else float(r.age),
            "rooms": int(r.rooms),
            "member": bool(r.member),
            "grade": r.grade,
        }
        for r in frame.itertuples()
    ]
    with AppClient(create_app([runs["mixed"]], config=ServeConfig(drift_window=1000))) as c:
        assert c.post("/predict", json={"rows": rows}).status_code == 200
        online = c.get("/v2/models/mixed/drift").json()
        metrics = c.get("/metrics").text
    assert online["drifted_features"] == offline.drifted_features
    for a, b in zip(online["features"], offline.to_dict()["features"], strict=True):
        assert a["method"] == b["method"] and a["score"] == pytest.approx(b["score"], rel=1e-6)
    assert 'leanfit_drift_detected{feature="age",model="mixed"} 1.0' in metrics
    assert f'leanfit_drift_share{{model="mixed"}} {offline.share}' in metrics
