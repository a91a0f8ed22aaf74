"""Callbacks: the hooks a :class:`~leanfit.train.loop.Trainer` calls around training.

A callback overrides only the hooks it needs; the base class does nothing (skorch's
``Callback``, Optuna's ``NopPruner``). Early stopping and per-epoch reports to a
search are callbacks, not flags threaded through the loop.

``logs`` passed to :meth:`Callback.on_epoch_end` holds ``epoch``, ``train_loss`` and
``lr``, plus ``valid_loss`` and ``valid_output`` (a numpy array: class probabilities
``(n, C)`` or predictions ``(n,)``) when the trainer has validation data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .._logging import get_logger
from .dist import is_main_process

if TYPE_CHECKING:
    import torch

    from .loop import Trainer

__all__ = ["Callback", "EarlyStopping", "EpochReporter"]

logger = get_logger(__name__)


class Callback:
    """A do-nothing callback; subclasses override the hooks they need."""

    def on_train_begin(self, trainer: Trainer) -> None:
        """Called once before the first epoch."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        """Called after each epoch (0-based ``epoch``); set ``trainer.stop_training`` to stop."""

    def on_train_end(self, trainer: Trainer) -> None:
        """Called once after the last epoch (not when an exception ends training)."""


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; optionally restore the best weights.

    Lower is better (a loss). Epochs whose ``monitor`` is missing from the logs are ignored.

    Args:
        patience: epochs without improvement before training stops.
        restore_best: load the weights of the best epoch when training ends.
        monitor: the key of ``logs`` to watch.
        min_delta: an improvement must beat the best by more than this.

    Example:
        >>> stopper = EarlyStopping(patience=5)
        >>> stopper.best_epoch is None
        True
    """

    def __init__(
        self,
        patience: int = 10,
        *,
        restore_best: bool = True,
        monitor: str = "valid_loss",
        min_delta: float = 0.0,
    ) -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1; got {patience=}")
        self.patience = patience
        self.restore_best = restore_best
        self.monitor = monitor
        self.min_delta = min_delta
        self.best_score = math.inf
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self._best_state: dict[str, torch.Tensor] | None = None

    def on_train_begin(self, trainer: Trainer) -> None:
        self.best_score, self.best_epoch, self.stopped_epoch, self._best_state = math.inf, None, None, None

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        score = logs.get(self.monitor)
        if score is None:
            return
        score = float(score)
        if math.isfinite(score) and score < self.best_score - self.min_delta:
            self.best_score, self.best_epoch = score, epoch
            if self.restore_best:
                self._best_state = {k: v.detach().clone() for k, v in trainer.module.state_dict().items()}
            return
        # Epochs since the best one; with no finite score yet, since the start.
        waited = epoch - self.best_epoch if self.best_epoch is not None else epoch + 1
        if waited >= self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def on_train_end(self, trainer: Trainer) -> None:
        if self.stopped_epoch is not None and is_main_process():
            logger.debug(
                "early stopping at epoch %d; best %s %.6g at epoch %s",
                self.stopped_epoch,
                self.monitor,
                self.best_score,
                self.best_epoch,
            )
        if self.restore_best and self._best_state is not None:
            trainer.module.load_state_dict(self._best_state)


class EpochReporter(Callback):
    """Call ``fn(epoch, valid_output)`` after each epoch that has validation output.

    This is how a search reports intermediate scores (and an Optuna pruner acts):
    ``fn`` may raise ``optuna.TrialPruned``, which ends training and propagates.

    Example:
        >>> seen = []
        >>> reporter = EpochReporter(lambda epoch, output: seen.append((epoch, output.shape)))
    """

    def __init__(self, fn: Callable[[int, np.ndarray], None]) -> None:
        self.fn = fn

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        output = logs.get("valid_output")
        if output is not None:
            self.fn(epoch, output)
