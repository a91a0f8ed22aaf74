"""Evaluation: quality metrics on a split (latency, robustness and fairness come later)."""

from __future__ import annotations

from .metrics import compute_metrics, metric_direction, primary_metric, score

__all__ = ["compute_metrics", "metric_direction", "primary_metric", "score"]
