"""The ``cnn`` family: a small convolutional network for image-shaped rows (e.g. 8x8 digits).

Each row of ``X`` holds the pixels of one image, ``prod(image_shape)`` features. The
network reshapes them itself, so its ONNX graph still takes ``features [N, H*W]``::

    Unflatten -> (B, C, H, W)
    Conv3x3(C -> c) ReLU [MaxPool2]        # pooling only while the image is at least 8 pixels a side
    Conv3x3(c -> 2c) ReLU [MaxPool2]
    Flatten [Dropout] Linear(-> K)

Training options are the mlp's (the same :class:`~leanfit.train.Trainer`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from sklearn.base import ClassifierMixin, RegressorMixin
from torch import nn

from ..exceptions import DataError, RecipeError
from ._base import check_shape_args
from ._space import Dist, Float, Int
from ._torch import TorchClassifierMixin, TorchEstimator, TorchFamily, TorchRegressorMixin

__all__ = ["CNNClassifier", "CNNFamily", "CNNRegressor", "make_cnn"]

_MIN_SIDE_TO_POOL = 8
_MISSING_SHAPE = "the cnn family needs data.image_shape, e.g. [8, 8] for digits"


def _chw(image_shape: Sequence[int] | None) -> tuple[int, int, int]:
    """``(H, W)`` or ``(C, H, W)`` as ``(C, H, W)``."""
    if image_shape is None:
        raise RecipeError(_MISSING_SHAPE)
    shape = tuple(int(s) for s in image_shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise RecipeError(
            f"data.image_shape must be [height, width] or [channels, height, width]; got {list(shape)}."
        )
    c, h, w = shape if len(shape) == 3 else (1, *shape)
    return c, h, w


def make_cnn(image_shape: Sequence[int], n_outputs: int, *, channels: int, dropout: float) -> nn.Sequential:
    """Two conv blocks (``channels``, then twice as many) and a linear head.

    Example:
        >>> net = make_cnn((8, 8), 10, channels=4, dropout=0.0)
        >>> [type(m).__name__ for m in net]
        ['Unflatten', 'Conv2d', 'ReLU', 'MaxPool2d', 'Conv2d', 'ReLU', 'Flatten', 'Linear']
    """
    if channels < 1:
        raise RecipeError(f"channels must be at least 1; got {channels=}.")
    if not 0.0 <= dropout < 1.0:
        raise RecipeError(f"dropout must lie in [0, 1); got {dropout=}.")
    c, h, w = _chw(image_shape)
    layers: list[nn.Module] = [nn.Unflatten(1, (c, h, w))]  # (B, C*H*W) -> (B, C, H, W)
    width = c
    for out in (channels, 2 * channels):
        layers += [nn.Conv2d(width, out, kernel_size=3, padding=1), nn.ReLU()]  # (B, out, H, W)
        if min(h, w) >= _MIN_SIDE_TO_POOL:
            layers.append(nn.MaxPool2d(2))  # (B, out, H/2, W/2)
            h, w = h // 2, w // 2
        width = out
    layers.append(nn.Flatten())  # (B, out*H*W)
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(width * h * w, n_outputs))  # (B, K)
    return nn.Sequential(*layers)


class _CNN(TorchEstimator):
    """The CNN's keyword arguments; see :class:`~leanfit.models._torch.TorchEstimator` for training ones.

    Args:
        image_shape: ``(H, W)`` or ``(C, H, W)``; ``prod(image_shape)`` must equal the number of features.
        channels: channels of the first conv block (the second has twice as many).
        dropout: dropout before the linear head (0 leaves it out).
    """

    def __init__(
        self,
        *,
        image_shape: Sequence[int] | None = None,
        channels: int = 16,
        dropout: float = 0.1,
        optimizer: str = "adamw",
        lr: float = 1e-3,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        max_epochs: int = 100,
        patience: int | None = 10,
        lr_schedule: str = "none",
        validation_fraction: float = 0.1,
        device: str = "auto",
        num_threads: int | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.image_shape = image_shape
        self.channels = channels
        self.dropout = dropout
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.lr_schedule = lr_schedule
        self.validation_fraction = validation_fraction
        self.device = device
        self.num_threads = num_threads
        self.random_state = random_state

    def _make_module(self, n_features: int, n_outputs: int) -> nn.Sequential:
        c, h, w = _chw(self.image_shape)
        if c * h * w != n_features:
            raise DataError(
                f"image_shape {list(self.image_shape or ())} holds {c * h * w} pixels "
                f"but X has {n_features} features."
            )
        return make_cnn((c, h, w), n_outputs, channels=int(self.channels), dropout=float(self.dropout))


class CNNClassifier(TorchClassifierMixin, ClassifierMixin, _CNN):
    """A small CNN classifier on image rows.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).random((40, 16), dtype=np.float32)
        >>> y = np.arange(40) % 2
        >>> clf = CNNClassifier(image_shape=(4, 4), channels=2, max_epochs=2, device="cpu").fit(X, y)
        >>> clf.predict_proba(X).shape
        (40, 2)
    """


class CNNRegressor(TorchRegressorMixin, RegressorMixin, _CNN):
    """A small CNN regressor on image rows; ``module_`` predicts in target units."""


class CNNFamily(TorchFamily):
    """The ``cnn`` family: ``channels`` and ``dropout`` plus the shared training options.

    Example:
        >>> CNNFamily().build({}, task="classification", n_features=64, n_classes=10, seed=0)
        Traceback (most recent call last):
        ...
        leanfit.exceptions.RecipeError: the cnn family needs data.image_shape, e.g. [8, 8] for digits
    """

    name: ClassVar[str] = "cnn"
    estimator_classes = (CNNClassifier, CNNRegressor)

    def architecture_space(self, task: str) -> dict[str, Dist]:
        return {"channels": Int(8, 64, log=True), "dropout": Float(0.0, 0.5)}

    def architecture_defaults(self, task: str) -> dict[str, object]:
        return {"channels": 16, "dropout": 0.1}

    def grid(self, task: str) -> list[dict[str, object]]:
        base = self.defaults(task)
        return [
            {**base, "channels": channels, "dropout": dropout, "lr": lr}
            for channels in (16, 32)
            for dropout in (0.0, 0.2)
            for lr in (1e-3, 3e-3)
        ]

    def build(
        self,
        params: Mapping[str, object],
        *,
        task: str,
        n_features: int,
        n_classes: int,
        seed: int,
        image_shape: tuple[int, ...] | None = None,
        device: str = "auto",
    ) -> Any:
        p = self.resolve(params, task)
        check_shape_args(n_features, n_classes, task)
        c, h, w = _chw(image_shape)
        if c * h * w != n_features:
            raise RecipeError(
                f"data.image_shape {list(image_shape or ())} has {c * h * w} pixels "
                f"but the data has {n_features} features."
            )
        return self._estimator(p, task, seed, device, image_shape=tuple(int(s) for s in image_shape or ()))
