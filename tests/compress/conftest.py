"""Tiny seeded models and one small compressed run, shared by the compression tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification

import leanfit
from leanfit.models import MLPClassifier


@dataclass(frozen=True)
class Tiny:
    X: np.ndarray
    y: np.ndarray
    X_valid: np.ndarray
    y_valid: np.ndarray
    model: MLPClassifier


@pytest.fixture(scope="session")
def tiny() -> Tiny:
    """A 3-class MLP (8 -> 32 -> 32 -> 3) on 400 seeded rows."""
    X, y = make_classification(500, 8, n_informative=5, n_classes=3, random_state=0)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    model = MLPClassifier(hidden=32, depth=2, dropout=0.0, max_epochs=40, device="cpu", random_state=0)
    model.fit(X[:400], y[:400])
    return Tiny(X[:400], y[:400].astype(np.int64), X[400:], y[400:].astype(np.int64), model)


#: The recipe of the compressed run: a small MLP on tiny synthetic data, every default method.
RUN_RECIPE = {
    "name": "tiny",
    "data": {"source": "synthetic:classification?rows=500&features=6&classes=3&informative=4&seed=1"},
    "search": {"families": ["mlp"], "trials": 1, "metric": "accuracy"},
    "train": {"max_epochs": 25},
    "compress": {"tolerance": 0.02},
}


@pytest.fixture(scope="session")
def compressed_run(tmp_path_factory: pytest.TempPathFactory) -> leanfit.RunResult:
    """The real pipeline with a ``compress`` section, benchmark rounds cut to keep it quick."""
    from leanfit.compress import outputs

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(outputs, "TARGET_ROUNDS", 3)
        mp.setattr(outputs, "GRID_ROUNDS", 1)
        mp.setattr(outputs, "GRID_ROUND_MS", 1.0)
        return leanfit.run(RUN_RECIPE, out=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def run_dir(compressed_run: leanfit.RunResult) -> Path:
    return compressed_run.run_dir
