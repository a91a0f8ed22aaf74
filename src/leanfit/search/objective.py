"""The objective of a leanfit study: pick a family, suggest its parameters, fit, score.

The family is a categorical parameter (``family``) and each family's parameters
are conditional on it, named ``<family>__<param>``. Model selection uses k-fold
CV on the development rows (train + valid) when the recipe asks for it, or the
single validation split. Preprocessing is fitted on each fold's training rows only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from ..data import Dataset, build_preprocessor, to_feature_matrix
from ..evaluate.metrics import score
from ..models import cap_epochs, fit_family, get_family, suggest

__all__ = ["Design", "Objective"]


@dataclass
class Design:
    """One fold's preprocessed matrices (float32) and targets."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_valid: np.ndarray
    y_valid: np.ndarray


class Objective:
    """Callable Optuna objective over several model families.

    Args:
        data: the loaded dataset.
        folds: ``(train_rows, valid_rows)`` pairs; one pair is a holdout.
        families: family names to choose from.
        metric: the metric to optimise (see :mod:`leanfit.evaluate.metrics`).
        seed: base seed; trial ``n`` fits with ``seed + n``.
        max_epochs: upper bound on the epochs of iterative families (the recipe's train.max_epochs).
        device: ``auto``, ``cpu`` or ``cuda`` for the torch families.
    """

    def __init__(
        self,
        data: Dataset,
        folds: Sequence[tuple[np.ndarray, np.ndarray]],
        *,
        families: Sequence[str],
        metric: str,
        seed: int = 0,
        max_epochs: int | None = None,
        device: str = "auto",
        threads: int | str = "auto",
    ) -> None:
        self.data = data
        self.threads = threads
        self.folds = list(folds)
        self.families = list(families)
        self.metric = metric
        self.seed = seed
        self.max_epochs = max_epochs
        self.device = device
        self._designs: dict[tuple[int, bool], Design] = {}

    def design(self, fold: int, *, scale: bool) -> Design:
        """Preprocess one fold (cached): the preprocessor sees the fold's training rows only."""
        key = (fold, scale)
        if key not in self._designs:
            train_rows, valid_rows = self.folds[fold]
            pre = build_preprocessor(self.data.columns, scale=scale)
            pre.fit(self.data.X.iloc[train_rows])
            self._designs[key] = Design(
                to_feature_matrix(pre, self.data.X.iloc[train_rows]),
                self.data.y[train_rows],
                to_feature_matrix(pre, self.data.X.iloc[valid_rows]),
                self.data.y[valid_rows],
            )
        return self._designs[key]

    def suggest(self, trial: optuna.Trial) -> tuple[str, dict[str, Any]]:
        """Suggest a family and its parameters (``<family>__<param>`` in the study)."""
        name = str(trial.suggest_categorical("family", self.families))
        family = get_family(name)
        params = suggest(trial, family.space(self.data.task), prefix=name)
        if family.iterative:
            params = cap_epochs(params, self.max_epochs)
        return name, params

    def _score(self, output: np.ndarray, y: np.ndarray) -> float:
        return score(self.metric, y, output, task=self.data.task, n_classes=len(self.data.classes))

    def __call__(self, trial: optuna.Trial) -> float:
        name, params = self.suggest(trial)
        family = get_family(name)
        trial.set_user_attr("family", name)
        holdout = len(self.folds) == 1
        scores: list[float] = []
        started = time.perf_counter()
        for k in range(len(self.folds)):
            d = self.design(k, scale=family.scale)
            on_epoch = None
            if holdout and family.iterative:

                def on_epoch(epoch: int, output: np.ndarray, _d: Design = d) -> None:
                    trial.report(self._score(output, _d.y_valid), epoch)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned at epoch {epoch}")

            estimator = fit_family(
                family,
                params,
                self.data,
                d.X_train,
                d.y_train,
                seed=self.seed + trial.number,
                device=self.device,
                X_valid=d.X_valid if holdout else None,
                y_valid=d.y_valid if holdout else None,
                on_epoch=on_epoch,
                threads=self.threads,
            )
            value = self._score(family.predict_output(estimator, d.X_valid), d.y_valid)
            if not np.isfinite(value):
                raise ValueError(f"{self.metric} is not finite on fold {k} ({value})")
            scores.append(value)
            if not holdout:
                trial.report(float(np.mean(scores)), k)
                if k < len(self.folds) - 1 and trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after fold {k}")
        trial.set_user_attr("fit_seconds", round(time.perf_counter() - started, 3))
        trial.set_user_attr("fold_scores", [round(s, 6) for s in scores])
        return float(np.mean(scores))
