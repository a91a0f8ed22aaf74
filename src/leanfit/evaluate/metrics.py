"""Quality metrics for classification and regression outputs.

Models hand over *outputs*: class probabilities ``(n, C)`` for classification,
predictions ``(n,)`` for regression. Every metric here is computed from those.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn import metrics as skm

__all__ = ["GREATER_IS_BETTER", "compute_metrics", "metric_direction", "primary_metric", "score"]

#: Whether a larger value of each metric is better.
GREATER_IS_BETTER = {
    "accuracy": True,
    "balanced_accuracy": True,
    "f1_macro": True,
    "roc_auc": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
    "r2": True,
}


def primary_metric(task: str, n_classes: int, requested: str = "auto") -> str:
    """The metric a search optimises: ROC AUC for binary, accuracy for multi-class, R² for regression.

    Example:
        >>> primary_metric("classification", 2), primary_metric("regression", 0)
        ('roc_auc', 'r2')
    """
    if requested != "auto":
        return requested
    if task == "regression":
        return "r2"
    return "roc_auc" if n_classes == 2 else "accuracy"


def metric_direction(metric: str) -> str:
    """``"maximize"`` or ``"minimize"`` for Optuna."""
    return "maximize" if GREATER_IS_BETTER[metric] else "minimize"


def _proba(output: np.ndarray, n_classes: int) -> np.ndarray:
    proba = np.asarray(output, dtype=np.float64)
    if proba.ndim == 1:  # a binary model giving P(class 1)
        proba = np.column_stack([1 - proba, proba])
    if proba.shape[1] != n_classes:
        raise ValueError(f"expected probabilities for {n_classes} classes, got shape {proba.shape}")
    total = proba.sum(axis=1, keepdims=True)
    return proba / np.where(total > 0, total, 1.0)  # float32 graphs sum to 1 only within rounding


def score(metric: str, y_true: np.ndarray, output: np.ndarray, *, task: str, n_classes: int = 0) -> float:
    """One metric from true targets and model outputs.

    Example:
        >>> score("accuracy", np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]), task="classification", n_classes=2)
        1.0
    """
    y_true = np.asarray(y_true)
    if task == "regression":
        pred = np.asarray(output, dtype=np.float64).ravel()
        if metric == "rmse":
            return float(math.sqrt(skm.mean_squared_error(y_true, pred)))
        if metric == "mae":
            return float(skm.mean_absolute_error(y_true, pred))
        if metric == "r2":
            return float(skm.r2_score(y_true, pred))
        raise ValueError(f"metric {metric!r} does not apply to regression; use rmse, mae or r2")
    proba = _proba(output, n_classes)
    labels = np.arange(n_classes)
    pred = proba.argmax(axis=1)
    if metric == "accuracy":
        return float(skm.accuracy_score(y_true, pred))
    if metric == "balanced_accuracy":
        present = np.unique(y_true)
        recalls = [float(np.mean(pred[y_true == c] == c)) for c in present]
        return float(np.mean(recalls))
    if metric == "f1_macro":
        return float(skm.f1_score(y_true, pred, average="macro", labels=labels, zero_division=0))
    if metric == "log_loss":
        return float(skm.log_loss(y_true, np.clip(proba, 1e-15, 1.0), labels=labels))
    if metric == "roc_auc":
        present = np.unique(y_true)
        if present.size < 2:
            return float("nan")
        if n_classes == 2:
            return float(skm.roc_auc_score(y_true, proba[:, 1]))
        if present.size < n_classes:  # some class absent from this split: average over the present ones
            return float(np.mean([skm.roc_auc_score(y_true == c, proba[:, c]) for c in present]))
        return float(skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels))
    raise ValueError(f"metric {metric!r} does not apply to classification")


def compute_metrics(
    y_true: np.ndarray, output: np.ndarray, *, task: str, n_classes: int = 0
) -> dict[str, Any]:
    """All metrics of the task, rounded for reports.

    Example:
        >>> compute_metrics(np.array([1.0, 2.0]), np.array([1.0, 2.5]), task="regression")["mae"]
        0.25
    """
    names = (
        ["rmse", "mae", "r2"]
        if task == "regression"
        else ["accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss"]
    )
    out: dict[str, Any] = {}
    for name in names:
        value = score(name, y_true, output, task=task, n_classes=n_classes)
        out[name] = None if math.isnan(value) else round(value, 6)
    return out
