"""``bench_artifact`` and ``leanfit bench`` on a small artifact with every kind of raw column."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leanfit.artifacts import Manifest, read_manifest, reference_statistics, verify
from leanfit.artifacts.export import merge_graphs, write_artifact
from leanfit.data import build_preprocessor, preprocessor_to_onnx, to_feature_matrix
from leanfit.evaluate.bench import bench_artifact, hardware_fingerprint, make_feeds, measure, synthesize_rows
from leanfit.exceptions import ArtifactError
from leanfit.models import get_family
from leanfit.schema import ColumnSpec

COLUMNS = [
    ColumnSpec("age", "numeric", nullable=True),
    ColumnSpec("visits", "integer"),
    ColumnSpec("member", "boolean"),
    ColumnSpec("grade", "categorical", categories=("A", "B", "C")),
]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "age": np.where(rng.random(n) < 0.1, np.nan, rng.normal(40, 10, n)).astype(np.float32),
            "visits": rng.integers(0, 20, n).astype(np.int64),
            "member": rng.random(n) < 0.4,
            "grade": pd.Series(rng.choice(["A", "B", "C"], n, p=[0.6, 0.3, 0.1]), dtype=object),
        }
    )
    y = ((frame["visits"] > 9) ^ frame["member"]).to_numpy().astype(np.int64)
    pre = build_preprocessor(COLUMNS, scale=True).fit(frame)
    X = to_feature_matrix(pre, frame)
    family = get_family("linear")
    model = family.fit(
        family.build({}, task="classification", n_features=X.shape[1], n_classes=2, seed=0), X, y
    )
    graph = merge_graphs(preprocessor_to_onnx(pre, COLUMNS), family.to_onnx(model, X.shape[1]))
    manifest = Manifest(
        name="fixture",
        task="classification",
        inputs=COLUMNS,
        outputs=[],
        classes=[0, 1],
        family="linear",
        reference=reference_statistics(frame, COLUMNS),
    )
    return write_artifact(tmp_path_factory.mktemp("bench") / "model", graph, manifest)


def test_synthesised_rows_follow_the_reference(artifact: Path) -> None:
    rows = synthesize_rows(read_manifest(artifact), 2000, seed=1)
    assert list(rows.columns) == [c.name for c in COLUMNS]
    assert set(rows["grade"]) <= {"A", "B", "C"} and (rows["grade"] == "A").mean() == pytest.approx(
        0.6, abs=0.05
    )
    assert rows["visits"].dtype == np.int64 and rows["visits"].between(0, 19).all()
    assert rows["member"].dtype == bool
    assert rows["age"].isna().mean() == pytest.approx(0.1, abs=0.03)
    assert rows["age"].median() == pytest.approx(40, abs=2)


def test_bench_measures_and_records(artifact: Path) -> None:
    report = bench_artifact(artifact, batch_sizes=[1, 64], threads=(1, "all"), rounds=2)
    assert {(t.batch_size, t.threads) for t in report.timings} == {
        (1, "1"),
        (1, "all"),
        (64, "1"),
        (64, "all"),
    }
    for t in report.timings:
        assert 0 < t.p50_us <= t.p95_us <= t.p99_us
        assert t.throughput_rows_s > 0 and t.calls >= 6
    assert report.latency(1, 1) < report.latency(64, 1) * 10
    assert report.model_bytes == (artifact / "model.onnx").stat().st_size and report.model_gzip_bytes > 0
    assert report.hardware["cores_logical"] >= 1 and "onnxruntime" in report.hardware["versions"]
    manifest = verify(artifact)  # checksums stay valid after the manifest is rewritten
    assert manifest.extra["benchmark"]["timings"][0]["batch_size"] == 1
    json.dumps(report.to_dict())
    assert report.table().row_count == 4


def test_bench_with_given_rows_and_no_record(artifact: Path) -> None:
    before = (artifact / "manifest.json").read_bytes()
    sample = synthesize_rows(read_manifest(artifact), 5)
    report = bench_artifact(artifact, batch_sizes=[8], threads=(1,), record=False, rounds=1, sample=sample)
    assert report.rows == "5 given rows" and len(report.timings) == 1
    assert (artifact / "manifest.json").read_bytes() == before


def test_measure_interleaves_several_graphs(artifact: Path) -> None:
    manifest = read_manifest(artifact)
    feeds = make_feeds(manifest, synthesize_rows(manifest, 50), [1])
    graph = (artifact / "model.onnx").read_bytes()
    timings, memory = measure({"a": graph, "b": graph}, feeds, threads=[1], rounds=2, round_ms=1)
    assert set(timings) == {"a", "b"} and set(memory) == {"a", "b"}
    assert (
        timings["a"][0].calls == timings["b"][0].calls
        or min(timings["a"][0].calls, timings["b"][0].calls) >= 6
    )


def test_a_changed_file_is_refused(artifact: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(artifact, copy)
    with (copy / "model.onnx").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ArtifactError, match="SHA-256 mismatch"):
        bench_artifact(copy, batch_sizes=[1], record=False)


def test_hardware_fingerprint_names_the_isa() -> None:
    hw = hardware_fingerprint()
    assert hw["cpu_model"] and isinstance(hw["isa"], list)
    if Path("/proc/cpuinfo").exists() and "avx2" in Path("/proc/cpuinfo").read_text():
        assert "avx2" in hw["isa"]


def test_bench_command(artifact: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "leanfit.cli",
            "bench",
            str(artifact),
            "--batch-size",
            "1",
            "--json",
            "--no-record",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {t["threads"] for t in data["timings"]} == {"1", "all"}
    missing = subprocess.run(
        [sys.executable, "-m", "leanfit.cli", "bench", str(artifact.parent / "nope")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 2 and "no such folder" in missing.stderr
