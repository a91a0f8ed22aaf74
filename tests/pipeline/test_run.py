"""End to end: a recipe in, a run folder with study, leaderboard, metrics and a verified ONNX artifact out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import leanfit
from leanfit.data import load_dataset
from leanfit.pipeline import prepare
from leanfit.recipe import load_recipe

RUN_FILES = [
    "recipe.yaml",
    "study.db",
    "leaderboard.csv",
    "data_report.json",
    "metrics.json",
    "model/model.onnx",
    "model/manifest.json",
]


def test_run_folder_has_every_file(bc_run: leanfit.RunResult) -> None:
    for rel in RUN_FILES:
        assert (bc_run.run_dir / rel).is_file(), rel


def test_leaderboard_lists_every_trial(bc_run: leanfit.RunResult) -> None:
    board = pd.read_csv(bc_run.run_dir / "leaderboard.csv")
    assert len(board) == 4
    assert set(board["family"]) <= {"linear", "hgb"}
    assert {"trial", "state", "value", "fit_seconds", "params"} <= set(board.columns)
    complete = board[board["state"] == "COMPLETE"]
    assert complete["value"].iloc[0] == complete["value"].max()


def test_metrics_cover_test_train_and_gap(bc_run: leanfit.RunResult) -> None:
    metrics = json.loads((bc_run.run_dir / "metrics.json").read_text())
    assert metrics["metric"] == "roc_auc"
    assert set(metrics["test"]) == {"accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss"}
    assert metrics["test"]["roc_auc"] > 0.95
    assert metrics["train_test_gap"]["accuracy"] == pytest.approx(
        metrics["train"]["accuracy"] - metrics["test"]["accuracy"], abs=1e-5
    )
    assert metrics["onnx_parity_max_abs_diff"] <= 1e-4


def test_loaded_artifact_predicts_like_the_reported_metrics(bc_run: leanfit.RunResult) -> None:
    prepared = prepare(bc_run.recipe)
    predictor = leanfit.load(bc_run.run_dir)
    test_rows = prepared.data.X.iloc[prepared.test]
    proba = predictor.predict_proba(test_rows)
    assert proba.shape == (len(prepared.test), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    labels = predictor.predict(test_rows)
    expected = np.asarray(prepared.data.classes)[prepared.data.y[prepared.test]]
    accuracy = float(np.mean(labels == expected))
    assert accuracy == pytest.approx(bc_run.metrics["test"]["accuracy"], abs=1e-6)


def test_manifest_records_schema_classes_versions_and_checksums(bc_model_dir: Path) -> None:
    manifest = json.loads((bc_model_dir / "manifest.json").read_text())
    assert manifest["format"] == "leanfit.artifact/1"
    assert manifest["task"] == "classification" and manifest["classes"] == [0, 1]
    assert len(manifest["inputs"]) == 30 and manifest["inputs"][0]["datatype"] == "FP32"
    assert [o["name"] for o in manifest["outputs"]] == ["label", "probabilities"]
    assert manifest["outputs"][1]["shape"] == [-1, 2]
    assert {"numpy", "onnx", "onnxruntime", "scikit-learn"} <= set(manifest["versions"])
    assert set(manifest["files"]) == {"model.onnx"}
    assert len(manifest["files"]["model.onnx"]["sha256"]) == 64
    assert manifest["recipe"]["data"]["source"] == "sklearn:breast_cancer"
    assert set(manifest["reference"]["features"]) == {i["name"] for i in manifest["inputs"]}


def test_resume_adds_only_missing_trials(bc_run: leanfit.RunResult, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    shutil.copytree(bc_run.run_dir, out / "bc")
    before = pd.read_csv(out / "bc" / "leaderboard.csv").sort_values("trial")
    recipe = bc_run.recipe.model_dump(mode="json")
    recipe["search"]["trials"] = 6
    leanfit.run(recipe, out=out)
    after = pd.read_csv(out / "bc" / "leaderboard.csv").sort_values("trial")
    assert sorted(after["trial"]) == list(range(6))
    kept = after[after["trial"] < 4].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        kept[["trial", "state", "value", "params"]],
        before[["trial", "state", "value", "params"]].reset_index(drop=True),
    )


FAMILY_CASES = [
    ("linear", "synthetic:classification?rows=240&features=6&classes=3&seed=1"),
    ("hgb", "synthetic:classification?rows=240&features=6&seed=1"),
    ("rf", "synthetic:regression?rows=240&features=5&seed=1"),
    ("knn", "synthetic:regression?rows=240&features=5&seed=1"),
    ("mlp", "synthetic:classification?rows=240&features=6&classes=3&seed=1"),
    ("linear", "synthetic:regression?rows=240&features=5&seed=1"),
]


@pytest.mark.parametrize(("family", "source"), FAMILY_CASES)
def test_each_family_exports_a_graph_that_matches_the_model(family: str, source: str, tmp_path: Path) -> None:
    result = leanfit.run(
        {"name": "f", "data": {"source": source}, "search": {"families": [family], "trials": 1}}, out=tmp_path
    )
    assert result.family == family
    assert result.metrics["onnx_parity_max_abs_diff"] <= 1e-4
    predictor = leanfit.load(result.run_dir)
    data = load_dataset(source)
    out = predictor.predict(data.X.iloc[:5])
    assert out.shape == (5,)


@pytest.mark.slow
def test_cnn_on_image_shaped_digits(tmp_path: Path) -> None:
    result = leanfit.run(
        {
            "name": "cnn",
            "data": {"source": "sklearn:digits", "image_shape": [8, 8], "cv": 0},
            "search": {"families": ["cnn"], "trials": 1},
            "train": {"max_epochs": 15},
        },
        out=tmp_path,
    )
    assert result.metrics["onnx_parity_max_abs_diff"] <= 1e-4
    assert result.metrics["test"]["accuracy"] > 0.9


def test_holdout_mode_when_cv_is_off(tmp_path: Path) -> None:
    recipe = load_recipe({"data": {"source": "sklearn:iris", "cv": 0}})
    prepared = prepare(recipe)
    assert len(prepared.folds) == 1
    train, valid = prepared.folds[0]
    assert not set(train) & set(valid) and not set(valid) & set(prepared.test)
    assert len(prepare(load_recipe({"data": {"source": "sklearn:iris"}})).folds) == 5


@pytest.mark.slow
def test_n_jobs_runs_trials_in_two_processes(tmp_path: Path) -> None:
    import optuna

    result = leanfit.run(
        {
            "name": "par",
            "data": {"source": "synthetic:classification?rows=400&features=6&seed=2", "cv": 0},
            # A time budget, not a trial count: the spawned worker needs seconds to import, and
            # with a count the main process could finish every trial before it arrives.
            "search": {"families": ["mlp"], "trials": None, "timeout": 25, "n_jobs": 2, "pruner": "none"},
        },
        out=tmp_path,
    )
    study = optuna.load_study(study_name="par", storage=f"sqlite:///{result.run_dir / 'study.db'}")
    owners = {t.system_attrs.get("leanfit:owner") for t in study.trials}
    assert len(owners) == 2
    assert len(pd.read_csv(result.run_dir / "leaderboard.csv")) == len(study.trials)


def test_same_seed_same_run(tmp_path: Path) -> None:
    recipe = {
        "name": "rep",
        "seed": 3,
        "data": {"source": "synthetic:classification?rows=200&features=5&seed=4"},
        "search": {"families": ["linear", "knn", "mlp"], "trials": 6},
        "train": {"max_epochs": 10},
    }
    a = leanfit.run(recipe, out=tmp_path / "a").leaderboard.sort_values("trial")
    b = leanfit.run(recipe, out=tmp_path / "b").leaderboard.sort_values("trial")
    pd.testing.assert_frame_equal(
        a[["trial", "state", "family", "value", "params"]], b[["trial", "state", "family", "value", "params"]]
    )
