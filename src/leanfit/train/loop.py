"""The PyTorch training loop shared by the ``mlp`` and ``cnn`` families.

:class:`Trainer` runs mini-batch epochs built from small overridable steps
(:meth:`Trainer.train_step`, :meth:`Trainer.validation_step`) and calls
:class:`~leanfit.train.callbacks.Callback` hooks around them; early stopping and
per-epoch reports are callbacks. Optimizers, learning-rate schedules and the device
are chosen by name through :func:`make_optimizer`, :func:`make_scheduler` and
:func:`resolve_device`, the one place each choice is made.

Everything random is seeded: the weights' initialisation (by the caller), dropout and
the order of mini-batches (a seeded ``torch.Generator``). The global torch RNG is
forked for the duration of :meth:`Trainer.fit` and restored afterwards, so training
leaves no trace in global state.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .._logging import get_logger
from ..exceptions import RecipeError
from ._choices import check_choice
from .callbacks import Callback
from .dist import is_main_process

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "Trainer",
    "make_optimizer",
    "make_scheduler",
    "minibatches",
    "resolve_device",
    "seeded",
    "torch_threads",
]

logger = get_logger(__name__)

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("none", "cosine", "plateau")

Scheduler = Any  # torch's LRScheduler or ReduceLROnPlateau; their common base is private


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` (CUDA when available, else CPU) or a device name into a ``torch.device``.

    Raises:
        RecipeError: the name is not a device, or CUDA was asked for but is not available.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise RecipeError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>'; got {device!r}.") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RecipeError(
            f"device {device!r} was asked for but torch.cuda.is_available() is False; "
            "use device 'auto' or 'cpu'."
        )
    return resolved


def make_optimizer(
    name: str,
    params: Iterable[torch.nn.Parameter],
    *,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
) -> torch.optim.Optimizer:
    """Build an optimizer by name: ``sgd`` (``momentum``, ``nesterov``), ``adam``, ``adamw``, ``rmsprop``.

    Example:
        >>> opt = make_optimizer("sgd", nn.Linear(2, 1).parameters(), lr=0.1, nesterov=True)
        >>> type(opt).__name__, opt.defaults["nesterov"]
        ('SGD', True)
    """
    check_choice("optimizer", name, OPTIMIZERS)
    if name == "sgd":
        if nesterov and momentum <= 0:
            raise RecipeError(f"nesterov SGD needs momentum > 0; got {momentum=}.")
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)


def make_scheduler(
    name: str, optimizer: torch.optim.Optimizer, *, max_epochs: int, patience: int = 10
) -> Scheduler | None:
    """Build a per-epoch learning-rate schedule: ``none``, ``cosine`` (to zero at ``max_epochs``) or
    ``plateau`` (halve the rate when the monitored loss stalls for about a third of ``patience``).

    Example:
        >>> opt = make_optimizer("adam", nn.Linear(2, 1).parameters(), lr=0.1)
        >>> type(make_scheduler("cosine", opt, max_epochs=10)).__name__
        'CosineAnnealingLR'
    """
    check_choice("lr_schedule", name, SCHEDULES)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, max_epochs))
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=0.5, patience=max(1, patience // 3)
        )
    return None


def minibatches(
    n: int, batch_size: int, *, generator: torch.Generator | None = None
) -> Iterator[torch.Tensor]:
    """Yield index tensors covering ``range(n)`` in batches; shuffled when a ``generator`` is given.

    Example:
        >>> [b.tolist() for b in minibatches(5, 2)]
        [[0, 1], [2, 3], [4]]
    """
    if batch_size < 1:
        raise RecipeError(f"batch_size must be at least 1; got {batch_size=}.")
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    yield from order.split(batch_size)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Fork the global torch RNG (CPU, and ``device`` when it is CUDA), seed it, restore it on exit.

    Example:
        >>> with seeded(0):
        ...     a = torch.rand(1)
        >>> with seeded(0):
        ...     b = torch.rand(1)
        >>> bool(a == b)
        True
    """
    devices = []
    if device is not None and device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Use ``n`` intra-op CPU threads inside the block and restore the previous count after.

    ``None`` leaves the setting alone. Small tabular networks often train faster on one
    thread, and parallel search trials should not oversubscribe the cores.

    Example:
        >>> before = torch.get_num_threads()
        >>> with torch_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    if n is None:
        yield
        return
    if n < 1:
        raise RecipeError(f"num_threads must be at least 1; got {n}.")
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class Trainer:
    """Train ``module`` on tensors with mini-batches, an optimizer, a schedule and callbacks.

    Subclasses customise one step by overriding :meth:`train_step` or
    :meth:`validation_step`. ``output_fn`` maps the module's raw output to what callbacks
    see as ``valid_output`` (class probabilities, or predictions in target units).

    Args:
        module: the network; moved to ``device`` by :meth:`fit`.
        loss_fn: ``loss_fn(output, target)`` returning a scalar mean loss.
        optimizer, lr, weight_decay, momentum, nesterov: see :func:`make_optimizer`.
        lr_schedule: see :func:`make_scheduler`; ``plateau`` watches the validation loss
            (the training loss without validation data).
        batch_size: rows per training step.
        max_epochs: upper bound on epochs; a callback may stop earlier.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...; see :func:`resolve_device`.
        seed: seeds dropout and the mini-batch order.
        callbacks: called in order after each epoch.
        output_fn: applied to the concatenated validation outputs.
        patience: used by the ``plateau`` schedule.
        num_threads: CPU threads while training (see :func:`torch_threads`); ``None`` keeps torch's setting.

    Example:
        >>> X = torch.randn(64, 4)  # (N, F)
        >>> y = (X[:, 0] > 0).long()  # (N,)
        >>> trainer = Trainer(nn.Linear(4, 2), nn.CrossEntropyLoss(), max_epochs=3, device="cpu")
        >>> [round(h["epoch"]) for h in trainer.fit(X, y)]
        [0, 1, 2]
    """

    eval_batch_size = 4096

    def __init__(
        self,
        module: nn.Module,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        *,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        nesterov: bool = False,
        lr_schedule: str = "none",
        batch_size: int = 64,
        max_epochs: int = 100,
        device: str | torch.device = "auto",
        seed: int = 0,
        callbacks: Sequence[Callback] = (),
        output_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        patience: int = 10,
        num_threads: int | None = None,
    ) -> None:
        self.module = module
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.nesterov = nesterov
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.device = resolve_device(device)
        self.seed = seed
        self.callbacks = list(callbacks)
        self.output_fn = output_fn
        self.patience = patience
        self.num_threads = num_threads
        self.stop_training = False
        self.history: list[dict[str, float]] = []

    # -- steps ---------------------------------------------------------------------------------
    def train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """One optimisation step on a batch; returns the (detached) batch loss."""
        self.optimizer_.zero_grad(set_to_none=True)
        output = self.module(xb)  # (B, K)
        loss = self.loss_fn(output, yb)
        loss.backward()
        self.optimizer_.step()
        return loss.detach()

    def validation_step(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss and raw output on a validation batch (called under ``torch.no_grad``)."""
        output = self.module(xb)  # (B, K)
        return self.loss_fn(output, yb), output

    # -- epochs --------------------------------------------------------------------------------
    def train_epoch(self, X: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> float:
        """One pass over the training data in shuffled mini-batches; returns the mean loss."""
        self.module.train()
        total = torch.zeros((), device=self.device)
        for idx in minibatches(len(X), self.batch_size, generator=generator):
            idx = idx.to(self.device)
            total += self.train_step(X[idx], y[idx]) * len(idx)
        return float(total.item()) / max(1, len(X))

    @torch.no_grad()
    def validate(self, X: torch.Tensor, y: torch.Tensor) -> tuple[float, np.ndarray]:
        """Mean loss and ``output_fn`` of the outputs over the validation data."""
        self.module.eval()
        total = torch.zeros((), device=self.device)
        outputs = []
        for idx in minibatches(len(X), self.eval_batch_size):
            idx = idx.to(self.device)
            loss, output = self.validation_step(X[idx], y[idx])
            total += loss * len(idx)
            outputs.append(output)
        out = torch.cat(outputs)  # (N, K)
        if self.output_fn is not None:
            out = self.output_fn(out)
        return float(total.item()) / max(1, len(X)), out.detach().cpu().numpy().astype(np.float64)

    def fit(
        self,
        X: torch.Tensor,
        y: torch.Tensor,
        X_valid: torch.Tensor | None = None,
        y_valid: torch.Tensor | None = None,
    ) -> list[dict[str, float]]:
        """Train for up to ``max_epochs`` epochs; returns the history (one dict of floats per epoch)."""
        module, device = self.module.to(self.device), self.device
        self.optimizer_ = make_optimizer(
            self.optimizer,
            module.parameters(),
            lr=self.lr,
            weight_decay=self.weight_decay,
            momentum=self.momentum,
            nesterov=self.nesterov,
        )
        scheduler = make_scheduler(
            self.lr_schedule, self.optimizer_, max_epochs=self.max_epochs, patience=self.patience
        )
        generator = torch.Generator().manual_seed(self.seed)
        X, y = X.to(device), y.to(device)  # (N, F), (N,) or (N, 1)
        has_valid = X_valid is not None and y_valid is not None and len(X_valid) > 0
        if has_valid:
            assert X_valid is not None and y_valid is not None
            X_valid, y_valid = X_valid.to(device), y_valid.to(device)
        self.stop_training, self.history = False, []
        with seeded(self.seed, device), torch_threads(self.num_threads):
            for callback in self.callbacks:
                callback.on_train_begin(self)
            for epoch in range(self.max_epochs):
                logs: dict[str, Any] = {"epoch": epoch, "lr": self.optimizer_.param_groups[0]["lr"]}
                logs["train_loss"] = self.train_epoch(X, y, generator)
                if has_valid:
                    assert X_valid is not None and y_valid is not None
                    logs["valid_loss"], logs["valid_output"] = self.validate(X_valid, y_valid)
                self._step_scheduler(scheduler, logs)
                self.history.append({k: float(v) for k, v in logs.items() if k != "valid_output"})
                if is_main_process():
                    logger.debug(
                        "epoch %d train_loss %.6g valid_loss %s",
                        epoch,
                        logs["train_loss"],
                        logs.get("valid_loss"),
                    )
                for callback in self.callbacks:
                    callback.on_epoch_end(self, epoch, logs)
                if not math.isfinite(logs["train_loss"]):
                    logger.warning("training loss is %s at epoch %d; stopping", logs["train_loss"], epoch)
                    self.stop_training = True
                if self.stop_training:
                    break
            for callback in self.callbacks:
                callback.on_train_end(self)
        return self.history

    def _step_scheduler(self, scheduler: Scheduler | None, logs: dict[str, Any]) -> None:
        if scheduler is None:
            return
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            metric = logs.get("valid_loss", logs["train_loss"])
            if math.isfinite(metric):
                scheduler.step(metric)
        else:
            scheduler.step()
