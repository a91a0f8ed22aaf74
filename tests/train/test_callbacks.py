"""Callbacks on their own: early stopping's counting and weight restore, the epoch reporter."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from leanfit.train import Callback, EarlyStopping, EpochReporter


class FakeTrainer:
    def __init__(self) -> None:
        self.module = nn.Linear(1, 1)
        self.stop_training = False


def _drive(stopper: EarlyStopping, losses: list[float]) -> tuple[FakeTrainer, int]:
    """Feed ``losses`` epoch by epoch; the weight equals the epoch number, to see what is restored."""
    trainer = FakeTrainer()
    stopper.on_train_begin(trainer)  # type: ignore[arg-type]
    last = -1
    for epoch, loss in enumerate(losses):
        with torch.no_grad():
            trainer.module.weight.fill_(epoch)
        stopper.on_epoch_end(trainer, epoch, {"valid_loss": loss})  # type: ignore[arg-type]
        last = epoch
        if trainer.stop_training:
            break
    stopper.on_train_end(trainer)  # type: ignore[arg-type]
    return trainer, last


def test_stops_after_patience_epochs_without_improvement_and_restores_best() -> None:
    stopper = EarlyStopping(patience=3)
    trainer, last = _drive(stopper, [1.0, 0.5, 0.6, 0.55, 0.7, 0.1])
    assert last == 4  # epochs 2, 3, 4 did not beat 0.5
    assert stopper.best_epoch == 1 and stopper.best_score == 0.5 and stopper.stopped_epoch == 4
    assert trainer.module.weight.item() == 1.0


def test_restore_best_false_keeps_the_last_weights() -> None:
    trainer, last = _drive(EarlyStopping(patience=2, restore_best=False), [1.0, 2.0, 3.0])
    assert last == 2 and trainer.module.weight.item() == 2.0


def test_min_delta_and_non_finite_losses() -> None:
    stopper = EarlyStopping(patience=2, min_delta=0.1)
    _, last = _drive(stopper, [1.0, 0.95, 0.92, 0.5])
    assert last == 2 and stopper.best_epoch == 0
    stopper = EarlyStopping(patience=2)
    trainer, last = _drive(stopper, [math.nan, math.inf])
    assert last == 1 and stopper.best_epoch is None
    assert trainer.module.weight.item() == 1.0  # nothing to restore


def test_no_stop_while_improving_and_missing_monitor_is_ignored() -> None:
    stopper = EarlyStopping(patience=1, monitor="valid_loss")
    _, last = _drive(stopper, [5.0, 4.0, 3.0, 2.0])
    assert last == 3 and stopper.stopped_epoch is None
    trainer = FakeTrainer()
    stopper.on_epoch_end(trainer, 0, {"train_loss": 1.0})  # type: ignore[arg-type]
    assert not trainer.stop_training


def test_patience_must_be_positive() -> None:
    with pytest.raises(ValueError, match="patience must be at least 1; got patience=0"):
        EarlyStopping(patience=0)


def test_epoch_reporter_only_with_validation_output() -> None:
    seen: list[tuple[int, Any]] = []
    reporter = EpochReporter(lambda epoch, out: seen.append((epoch, out.shape)))
    reporter.on_epoch_end(FakeTrainer(), 0, {"train_loss": 1.0})  # type: ignore[arg-type]
    reporter.on_epoch_end(FakeTrainer(), 1, {"valid_output": np.zeros((4, 2))})  # type: ignore[arg-type]
    assert seen == [(1, (4, 2))]


def test_base_callback_does_nothing() -> None:
    callback, trainer = Callback(), FakeTrainer()
    callback.on_train_begin(trainer)  # type: ignore[arg-type]
    callback.on_epoch_end(trainer, 0, {})  # type: ignore[arg-type]
    callback.on_train_end(trainer)  # type: ignore[arg-type]
    assert not trainer.stop_training
