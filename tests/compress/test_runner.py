"""``compress_run`` end to end: the pipeline's compress stage, the run folder it leaves, and ``leanfit compress``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import leanfit
from leanfit.artifacts import read_manifest, verify
from leanfit.data import prepare

from .conftest import RUN_RECIPE


def leanfit_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leanfit.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_compression_csv_lists_every_candidate(run_dir: Path) -> None:
    table = pd.read_csv(run_dir / "compression.csv")
    names = set(table["candidate"])
    assert {"original", "dynamic-qint8", "static-minmax", "reference", "prune50", "prune75"} <= names
    assert any(n.startswith("distill-") for n in names) and any(n.startswith("plain-") for n in names)
    assert any("+" in n for n in names)  # pruned/distilled then quantized
    for column in (
        "method",
        "params",
        "valid_accuracy",
        "test_accuracy",
        "drop",
        "size_bytes",
        "status",
        "reason",
    ):
        assert column in table.columns
    for batch in (1, 32, 1024):
        for threads in ("1", "all"):
            assert table[f"p50_us_b{batch}_t{threads}"].notna().all()
    assert (table["status"] == "chosen").sum() == 1
    assert table["pareto"].any()
    assert table["reason"].notna().all()


def test_the_chosen_candidate_is_within_tolerance_and_not_slower_or_larger(run_dir: Path) -> None:
    table = pd.read_csv(run_dir / "compression.csv").set_index("candidate")
    chosen = table[table["status"] == "chosen"].iloc[0]
    original = table.loc["original"]
    assert chosen["drop"] <= 0.02 + 1e-9
    assert chosen["p50_us_b1_t1"] <= original["p50_us_b1_t1"]
    assert chosen["size_bytes"] <= original["size_bytes"]
    for name, row in table.iterrows():
        if row["status"] == "rejected" and row["drop"] > 0.02 + 1e-9:
            assert "tolerance" in row["reason"], name


def test_every_candidate_is_an_artifact_with_the_original_contract(run_dir: Path) -> None:
    original = read_manifest(run_dir / "candidates" / "original")
    assert "compression" not in original.extra
    prepared = prepare(leanfit.load_recipe(RUN_RECIPE))
    rows = prepared.data.X.iloc[prepared.test[:20]]
    folders = sorted(p for p in (run_dir / "candidates").iterdir() if p.is_dir())
    assert len(folders) == len(pd.read_csv(run_dir / "compression.csv"))
    for folder in folders:
        manifest = verify(folder)
        assert [c.name for c in manifest.inputs] == [c.name for c in original.inputs]
        assert manifest.outputs == original.outputs
        proba = leanfit.load(folder).predict_proba(rows)
        assert proba.shape == (20, 3)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-4)
        if folder.name != "original":
            assert manifest.extra["compression"]["candidate"] == folder.name
            assert manifest.extra["benchmark"]["timings"]


def test_model_folder_holds_the_decision(compressed_run: leanfit.RunResult, run_dir: Path) -> None:
    manifest = verify(run_dir / "model")
    decision = manifest.extra["compression"]["decision"]
    chosen = decision["chosen"]
    assert compressed_run.metrics["compression"]["chosen"] == chosen
    assert json.loads((run_dir / "metrics.json").read_text())["compression"]["chosen"] == chosen
    assert manifest.extra["compression"]["candidate"] == chosen
    same = (run_dir / "model" / "model.onnx").read_bytes() == (
        run_dir / "candidates" / chosen / "model.onnx"
    ).read_bytes()
    assert same or chosen == "original"
    assert {c["candidate"] for c in manifest.extra["compression"]["candidates"]} >= {"original", chosen}


def test_compress_command_on_a_run_folder(run_dir: Path, tmp_path: Path) -> None:
    """On its own, on an existing run: the refit is deterministic, model/ is compared with candidates/original."""
    copy = tmp_path / "tiny"
    shutil.copytree(run_dir, copy)
    proc = leanfit_cli(
        "compress",
        str(copy),
        "--set",
        "compress.methods=[quantize]",
        "--set",
        "compress.target.batch_size=32",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "compression of tiny" in proc.stdout and "dynamic-qint8" in proc.stdout
    table = pd.read_csv(copy / "compression.csv")
    assert set(table["method"]) <= {"original", "quantize", "fp16"}
    notes = json.loads((copy / "metrics.json").read_text())["compression"]["notes"]
    assert notes["refit_max_abs_diff"] < 1e-4
    assert verify(copy / "candidates" / "original").graph == "model.onnx"
    assert (copy / "candidates" / "original" / "model.onnx").read_bytes() == (
        run_dir / "candidates" / "original" / "model.onnx"
    ).read_bytes()


def test_compress_command_on_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    proc = leanfit_cli("compress", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2
    assert "not a run folder (missing model/manifest.json, metrics.json, recipe.yaml)" in proc.stderr


def test_a_recipe_with_a_bad_compress_key_fails_with_a_hint() -> None:
    with pytest.raises(leanfit.RecipeError, match=r"Did you mean 'quantize'\?"):
        leanfit.load_recipe({**RUN_RECIPE, "compress": {"methods": ["quantise"]}})


def test_a_fresh_model_folder_is_the_original_again(run_dir: Path, tmp_path: Path) -> None:
    """Re-running ``leanfit run`` rewrites model/ without a decision: that model, not a stale copy, is the original."""
    from leanfit.artifacts import write_manifest
    from leanfit.compress.runner import _original_dir

    copy = tmp_path / "tiny"
    shutil.copytree(run_dir, copy)
    assert _original_dir(copy) == copy / "candidates" / "original"
    manifest = read_manifest(copy / "model")
    del manifest.extra["compression"]
    write_manifest(copy / "model", manifest)
    assert _original_dir(copy) == copy / "model"


def test_a_regression_without_matmuls_is_distilled_and_the_skips_are_explained(tmp_path: Path) -> None:
    from leanfit.compress import outputs

    recipe = {
        "name": "reg",
        "data": {"source": "synthetic:regression?rows=400&features=5&informative=3&noise=5&seed=2"},
        "search": {"families": ["linear"], "trials": 1},
        "compress": {
            "methods": ["quantize", "prune", "distill"],
            "tolerance": "5%",
            "target": {"objective": "size"},
        },
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(outputs, "TARGET_ROUNDS", 2)
        mp.setattr(outputs, "GRID_ROUNDS", 1)
        result = leanfit.run(recipe, out=tmp_path)
    compression = result.metrics["compression"]
    assert compression["metric"] == "r2"
    assert "no MatMul, Gemm or Conv" in compression["notes"]["skipped"]["quantize"]
    assert "pruning needs a torch network" in compression["notes"]["skipped"]["prune"]
    table = pd.read_csv(result.run_dir / "compression.csv")
    assert {"original", "reference"} <= set(table["candidate"])
    assert (
        table["candidate"].str.startswith("distill-").any()
        and table["candidate"].str.startswith("plain-").any()
    )
    # A linear model is tiny: an MLP student is not smaller, so the original stays.
    assert compression["chosen"] == "original"
    assert verify(result.run_dir / "model").extra["compression"]["decision"]["chosen"] == "original"
