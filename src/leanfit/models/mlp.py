"""The ``mlp`` family: a multi-layer perceptron in PyTorch behind the scikit-learn API.

The network is a plain ``nn.Sequential`` of ``Linear``, ``ReLU`` and ``Dropout`` layers
(``Dropout`` only when ``dropout > 0``), so the compression step can prune it by
rewriting layers in place::

    Linear(F, H) ReLU [Dropout]  ... depth times ...  Linear(H, K)
"""

from __future__ import annotations

from typing import ClassVar

from sklearn.base import ClassifierMixin, RegressorMixin
from torch import nn

from ..exceptions import RecipeError
from ..train._choices import check_choice
from ._space import Dist, Float, Int
from ._torch import TorchClassifierMixin, TorchEstimator, TorchFamily, TorchRegressorMixin

__all__ = ["MLPClassifier", "MLPFamily", "MLPRegressor", "make_mlp"]

ACTIVATIONS = ("relu",)


def make_mlp(n_features: int, n_outputs: int, *, hidden: int, depth: int, dropout: float) -> nn.Sequential:
    """``depth`` hidden layers of width ``hidden`` with ReLU (and dropout), then a linear head.

    Example:
        >>> make_mlp(4, 3, hidden=8, depth=1, dropout=0.0)
        Sequential(
          (0): Linear(in_features=4, out_features=8, bias=True)
          (1): ReLU()
          (2): Linear(in_features=8, out_features=3, bias=True)
        )
    """
    if depth < 1 or hidden < 1:
        raise RecipeError(f"an mlp needs depth >= 1 and hidden >= 1; got {depth=}, {hidden=}.")
    if not 0.0 <= dropout < 1.0:
        raise RecipeError(f"dropout must lie in [0, 1); got {dropout=}.")
    layers: list[nn.Module] = []
    width = n_features
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]  # (B, width) -> (B, hidden)
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = hidden
    layers.append(nn.Linear(width, n_outputs))  # (B, hidden) -> (B, K)
    return nn.Sequential(*layers)


class _MLP(TorchEstimator):
    """The MLP's keyword arguments; see :class:`~leanfit.models._torch.TorchEstimator` for training ones.

    Args:
        hidden: width of every hidden layer.
        depth: number of hidden layers.
        dropout: dropout after each hidden ReLU (0 leaves it out).
        activation: ``relu`` (the only one, kept explicit for the recipe).
    """

    def __init__(
        self,
        *,
        hidden: int = 128,
        depth: int = 2,
        dropout: float = 0.1,
        activation: str = "relu",
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
        self.hidden = hidden
        self.depth = depth
        self.dropout = dropout
        self.activation = activation
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
        check_choice("activation", self.activation, ACTIVATIONS)
        return make_mlp(
            n_features, n_outputs, hidden=int(self.hidden), depth=int(self.depth), dropout=float(self.dropout)
        )


class MLPClassifier(TorchClassifierMixin, ClassifierMixin, _MLP):
    """An MLP classifier trained with :class:`leanfit.train.Trainer`.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
        >>> y = (X[:, 0] > 0).astype(np.int64)
        >>> clf = MLPClassifier(hidden=8, depth=1, max_epochs=3, device="cpu").fit(X, y)
        >>> clf.predict_proba(X).shape, len(clf.history_)
        ((60, 2), 3)
    """


class MLPRegressor(TorchRegressorMixin, RegressorMixin, _MLP):
    """An MLP regressor; ``module_`` predicts in target units (the target scale is folded in).

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
        >>> reg = MLPRegressor(hidden=8, depth=1, max_epochs=3, device="cpu").fit(X, 10 * X[:, 0])
        >>> reg.predict(X).shape
        (60,)
    """


class MLPFamily(TorchFamily):
    """The ``mlp`` family: width, depth and dropout plus the shared training options.

    Example:
        >>> sorted(MLPFamily().architecture_space("classification"))
        ['depth', 'dropout', 'hidden']
    """

    name: ClassVar[str] = "mlp"
    extra_params: ClassVar[tuple[str, ...]] = ("validation_fraction", "num_threads", "activation")
    estimator_classes = (MLPClassifier, MLPRegressor)

    def architecture_space(self, task: str) -> dict[str, Dist]:
        return {"hidden": Int(32, 512, log=True), "depth": Int(1, 3), "dropout": Float(0.0, 0.5)}

    def architecture_defaults(self, task: str) -> dict[str, object]:
        return {"hidden": 128, "depth": 2, "dropout": 0.1}

    def grid(self, task: str) -> list[dict[str, object]]:
        base = self.defaults(task)
        return [
            {**base, "hidden": hidden, "depth": depth, "lr": lr}
            for hidden in (64, 256)
            for depth in (1, 2)
            for lr in (1e-3, 3e-3)
        ] + [
            {
                **base,
                "optimizer": "sgd",
                "lr": 0.01,
                "momentum": 0.9,
                "nesterov": True,
                "lr_schedule": "cosine",
            }
        ]
