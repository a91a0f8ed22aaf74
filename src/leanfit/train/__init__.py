"""The PyTorch training loop used by the ``mlp`` and ``cnn`` families.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from leanfit.train import EarlyStopping, Trainer
    >>> X, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    >>> trainer = Trainer(nn.Linear(4, 2), nn.CrossEntropyLoss(), max_epochs=2, device="cpu",
    ...                   callbacks=[EarlyStopping(patience=3)])
    >>> len(trainer.fit(X, y, X, y))
    2
"""

from __future__ import annotations

from .callbacks import Callback, EarlyStopping, EpochReporter
from .dist import is_main_process, rank, world_size
from .loop import (
    OPTIMIZERS,
    SCHEDULES,
    Trainer,
    make_optimizer,
    make_scheduler,
    minibatches,
    resolve_device,
    seeded,
    torch_threads,
)

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "Callback",
    "EarlyStopping",
    "EpochReporter",
    "Trainer",
    "is_main_process",
    "make_optimizer",
    "make_scheduler",
    "minibatches",
    "rank",
    "resolve_device",
    "seeded",
    "torch_threads",
    "world_size",
]
