"""Distillation: a teacher that knows what the labels hide makes a better student than plain training."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier

from leanfit.compress.distill import Distiller, augment, onnx_teacher
from leanfit.compress.graphs import mlp_to_onnx

from .conftest import Tiny


@pytest.fixture(scope="module")
def hidden_truth() -> dict[str, np.ndarray]:
    """A teacher fitted on 4,000 clean rows; the student sees 300 other rows with 35% of labels scrambled."""
    X, y = make_classification(5000, 10, n_informative=6, n_classes=3, random_state=0)
    X = X.astype(np.float32)
    teacher = HistGradientBoostingClassifier(random_state=0, max_iter=60).fit(X[:4000], y[:4000])
    rng = np.random.default_rng(0)
    noisy = y[4000:4300].copy()
    flip = rng.random(len(noisy)) < 0.35
    noisy[flip] = rng.integers(0, 3, int(flip.sum()))
    return {
        "teacher": teacher,
        "X": X[4000:4300],
        "y": noisy,
        "X_valid": X[4300:],
        "y_valid": y[4300:],
    }


def test_distillation_beats_plain_training_when_the_teacher_knows_more(hidden_truth: dict) -> None:
    h = hidden_truth
    args = (h["X"], h["y"])
    plain = Distiller(hidden=32, alpha=0.0, augment=0.0, seed=0).fit(
        None, *args, task="classification", n_classes=3
    )
    taught = Distiller(hidden=32, alpha=0.7, temperature=2.0, seed=0).fit(
        h["teacher"].predict_proba, *args, task="classification", n_classes=3
    )
    plain_acc = np.mean(plain.student_.predict(h["X_valid"]) == h["y_valid"])
    taught_acc = np.mean(taught.student_.predict(h["X_valid"]) == h["y_valid"])
    assert taught_acc >= plain_acc + 0.03, (taught_acc, plain_acc)
    assert taught.rows_ == {"real": 255, "augmented": 510}


def test_regression_students_learn_the_teacher() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    y = 50 + 10 * np.sin(X[:, 0]) + 5 * X[:, 1] + rng.normal(scale=3.0, size=400)

    def teacher(A: np.ndarray) -> np.ndarray:
        return 50 + 10 * np.sin(A[:, 0]) + 5 * A[:, 1]

    student = Distiller(hidden=32, alpha=0.9, seed=0).fit(teacher, X, y, task="regression").student_
    X_new = rng.normal(size=(200, 5)).astype(np.float32)
    r2 = 1 - np.mean((student.predict(X_new) - teacher(X_new)) ** 2) / np.var(teacher(X_new))
    assert r2 > 0.85


def test_augmented_rows_stay_within_the_training_distribution() -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=200), rng.integers(0, 2, 200), rng.uniform(5, 6, 200)]).astype(
        np.float32
    )
    A = augment(X, 1000, seed=1)
    assert A.shape == (1000, 3) and A.dtype == np.float32
    assert set(np.unique(A[:, 1])) <= {0.0, 1.0}  # one-hot-like columns stay 0/1
    assert (A.min(axis=0) >= X.min(axis=0)).all() and (A.max(axis=0) <= X.max(axis=0)).all()
    assert abs(float(A[:, 0].std()) - float(X[:, 0].std())) < 0.3


def test_an_onnx_graph_can_teach(tiny: Tiny) -> None:
    teacher = onnx_teacher(mlp_to_onnx(tiny.model, tiny.X.shape[1]), "probabilities")
    np.testing.assert_allclose(teacher(tiny.X_valid), tiny.model.predict_proba(tiny.X_valid), atol=1e-5)


def test_distiller_checks_its_arguments(tiny: Tiny) -> None:
    with pytest.raises(ValueError, match="needs a teacher"):
        Distiller().fit(None, tiny.X, tiny.y, task="classification", n_classes=3)
    with pytest.raises(ValueError, match="alpha"):
        Distiller(alpha=1.5).fit(lambda X: X, tiny.X, tiny.y, task="classification", n_classes=3)
