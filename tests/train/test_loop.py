"""The training loop: steps, callbacks, early stopping end to end, factories, device, seeding."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from leanfit.exceptions import RecipeError
from leanfit.train import (
    Callback,
    EarlyStopping,
    Trainer,
    make_optimizer,
    make_scheduler,
    minibatches,
    resolve_device,
    seeded,
    torch_threads,
)


def _net() -> nn.Sequential:
    with seeded(0):
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.weights: list[torch.Tensor] = []

    def on_train_begin(self, trainer: Trainer) -> None:
        self.events.append("begin")

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        self.events.append(epoch)
        self.weights.append(trainer.module[0].weight.detach().clone())

    def on_train_end(self, trainer: Trainer) -> None:
        self.events.append("end")


def test_hooks_history_and_valid_output(blobs) -> None:
    X, y = blobs
    recorder = Recorder()
    outputs: list[np.ndarray] = []

    class Grab(Callback):
        def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
            outputs.append(logs["valid_output"])

    trainer = Trainer(
        _net(),
        nn.CrossEntropyLoss(),
        lr=1e-2,
        max_epochs=4,
        device="cpu",
        callbacks=[recorder, Grab()],
        output_fn=lambda out: torch.softmax(out, dim=1),
    )
    history = trainer.fit(X, y, X[:50], y[:50])
    assert recorder.events == ["begin", 0, 1, 2, 3, "end"]
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]
    assert set(history[0]) == {"epoch", "lr", "train_loss", "valid_loss"}
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert outputs[0].shape == (50, 2) and outputs[0].dtype == np.float64
    np.testing.assert_allclose(outputs[0].sum(axis=1), 1.0, rtol=1e-6)


def test_early_stopping_end_to_end_restores_best_weights(blobs) -> None:
    """Validation losses are scripted, so the best epoch is known: 2 of 0..5, then patience 3 runs out."""
    X, y = blobs
    scripted = iter([0.9, 0.8, 0.3, 0.5, 0.6, 0.7, 0.1, 0.1])

    class Scripted(Trainer):
        def validate(self, X: torch.Tensor, y: torch.Tensor) -> tuple[float, np.ndarray]:
            super().validate(X, y)
            return next(scripted), np.zeros(len(X))

    recorder = Recorder()
    stopper = EarlyStopping(patience=3)
    trainer = Scripted(
        _net(), nn.CrossEntropyLoss(), lr=0.1, max_epochs=20, device="cpu", callbacks=[recorder, stopper]
    )
    history = trainer.fit(X, y, X, y)
    assert len(history) == 6 and stopper.best_epoch == 2
    assert torch.equal(trainer.module[0].weight, recorder.weights[2])
    assert not torch.equal(recorder.weights[-1], recorder.weights[2])


def test_train_step_can_be_overridden(blobs) -> None:
    X, y = blobs
    seen: list[int] = []

    class Counting(Trainer):
        def train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
            seen.append(len(xb))  # (B, F)
            return super().train_step(xb, yb)

    Counting(_net(), nn.CrossEntropyLoss(), batch_size=64, max_epochs=1, device="cpu").fit(X, y)
    assert seen == [64, 64, 64, 8]


def test_a_callback_can_stop_training(blobs) -> None:
    X, y = blobs

    class StopAtOne(Callback):
        def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
            trainer.stop_training = epoch == 1

    history = Trainer(
        _net(), nn.CrossEntropyLoss(), max_epochs=10, device="cpu", callbacks=[StopAtOne()]
    ).fit(X, y)
    assert len(history) == 2


def test_a_diverging_loss_stops_training(blobs) -> None:
    X, y = blobs
    X = X * 1e30  # overflows in the first step
    trainer = Trainer(_net(), nn.CrossEntropyLoss(), optimizer="sgd", lr=1e10, max_epochs=10, device="cpu")
    history = trainer.fit(X, y)
    assert len(history) < 10 and not np.isfinite(history[-1]["train_loss"])


def test_an_exception_in_a_callback_propagates(blobs) -> None:
    X, y = blobs

    class Boom(Callback):
        def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(_net(), nn.CrossEntropyLoss(), max_epochs=3, device="cpu", callbacks=[Boom()]).fit(X, y)


def test_seeded_training_is_reproducible(blobs) -> None:
    X, y = blobs

    def train() -> dict[str, torch.Tensor]:
        net = nn.Sequential(*_net()[:2], nn.Dropout(0.5), _net()[2])
        Trainer(net, nn.CrossEntropyLoss(), max_epochs=3, batch_size=16, device="cpu", seed=7).fit(X, y)
        return net.state_dict()

    a, b = train(), train()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_minibatches_cover_everything_and_are_seeded() -> None:
    batches = list(minibatches(10, 3, generator=torch.Generator().manual_seed(1)))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    again = list(minibatches(10, 3, generator=torch.Generator().manual_seed(1)))
    assert all(torch.equal(p, q) for p, q in zip(batches, again, strict=True))
    with pytest.raises(RecipeError, match="batch_size must be at least 1; got batch_size=0"):
        list(minibatches(10, 0))


@pytest.mark.parametrize(
    ("name", "cls"), [("sgd", "SGD"), ("adam", "Adam"), ("adamw", "AdamW"), ("rmsprop", "RMSprop")]
)
def test_make_optimizer(name: str, cls: str) -> None:
    optimizer = make_optimizer(name, nn.Linear(2, 1).parameters(), lr=0.01, weight_decay=1e-3, momentum=0.8)
    assert type(optimizer).__name__ == cls
    assert optimizer.defaults["lr"] == 0.01 and optimizer.defaults["weight_decay"] == 1e-3
    if name == "sgd":
        assert optimizer.defaults["momentum"] == 0.8


def test_make_optimizer_errors() -> None:
    with pytest.raises(RecipeError) as excinfo:
        make_optimizer("adamm", nn.Linear(2, 1).parameters(), lr=0.1)
    assert (
        str(excinfo.value)
        == "optimizer must be one of sgd, adam, adamw, rmsprop; got 'adamm'. Did you mean 'adam'?"
    )
    with pytest.raises(RecipeError, match="nesterov SGD needs momentum > 0; got momentum=0.0"):
        make_optimizer("sgd", nn.Linear(2, 1).parameters(), lr=0.1, momentum=0.0, nesterov=True)


def test_schedulers() -> None:
    def optimizer() -> torch.optim.Optimizer:
        return make_optimizer("sgd", nn.Linear(2, 1).parameters(), lr=1.0)

    assert make_scheduler("none", optimizer(), max_epochs=5) is None
    opt = optimizer()
    cosine = make_scheduler("cosine", opt, max_epochs=4)
    lrs = []
    for _ in range(4):
        opt.step()
        cosine.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] == pytest.approx(0.0, abs=1e-12)
    opt = optimizer()
    plateau = make_scheduler("plateau", opt, max_epochs=10, patience=6)
    for _ in range(5):
        plateau.step(1.0)
    assert opt.param_groups[0]["lr"] == 0.5
    with pytest.raises(RecipeError, match="lr_schedule must be one of none, cosine, plateau; got 'cosin'"):
        make_scheduler("cosin", optimizer(), max_epochs=5)


def test_plateau_schedule_in_the_loop(blobs) -> None:
    X, y = blobs
    trainer = Trainer(
        _net(), nn.CrossEntropyLoss(), lr=1e-6, lr_schedule="plateau", patience=3, max_epochs=12, device="cpu"
    )
    history = trainer.fit(X, y, X, y)
    assert history[-1]["lr"] < history[0]["lr"]


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(
        RecipeError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>'; got 'gpu0'"
    ):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(RecipeError, match="use device 'auto' or 'cpu'"):
            resolve_device("cuda:0")


def test_seeded_restores_the_global_rng() -> None:
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    with seeded(123):
        inside = torch.rand(2)
    assert torch.equal(torch.rand(2), expected)
    with seeded(123):
        assert torch.equal(torch.rand(2), inside)


def test_torch_threads_restores_the_count() -> None:
    before = torch.get_num_threads()
    with torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(RecipeError, match="num_threads must be at least 1; got 0"), torch_threads(0):
        pass
