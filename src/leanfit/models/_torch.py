"""What the torch families (``mlp``, ``cnn``) share: the estimator base, the training space,
the family base and the ONNX export.

:class:`TorchEstimator` follows the scikit-learn contract: ``__init__`` stores keyword
arguments only, :meth:`TorchEstimator.fit` validates, trains with
:class:`leanfit.train.Trainer` and returns ``self``; learned state ends in ``_``
(``module_``, ``classes_``, ``n_features_in_``, ``history_``, ``best_epoch_``,
``device_``). A subclass only says how to build its ``nn.Sequential``.

Regression trains on the standardized target; afterwards the scale is folded into the
last ``nn.Linear`` so that ``module_`` predicts in target units on its own.
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import onnx
import torch
from sklearn.base import BaseEstimator
from torch import nn

from .._logging import get_logger
from ..exceptions import DataError, RecipeError
from ..train import (
    OPTIMIZERS,
    SCHEDULES,
    Callback,
    EarlyStopping,
    EpochReporter,
    Trainer,
    resolve_device,
    seeded,
    torch_threads,
)
from ..train._choices import check_choice
from ._base import Family, check_shape_args, is_classifier
from ._onnx import BATCH_DIM, INPUT_NAME, finish, quiet_torch_export
from ._space import Categorical, Dist, Float, Int

__all__ = ["TRAINING_DEFAULTS", "TRAINING_SPACE", "TorchEstimator", "TorchFamily", "torch_to_onnx"]

logger = get_logger(__name__)

#: Searched training options, shared by the torch families (``momentum`` and ``nesterov`` only for SGD).
TRAINING_SPACE: dict[str, Dist] = {
    "optimizer": Categorical(("adamw", "adam", "sgd", "rmsprop")),
    "lr": Float(1e-4, 1e-1, log=True),
    "momentum": Float(0.5, 0.99, when=("optimizer", "sgd")),
    "nesterov": Categorical((False, True), when=("optimizer", "sgd")),
    "weight_decay": Float(1e-6, 1e-2, log=True),
    "batch_size": Categorical((32, 64, 128, 256)),
    "max_epochs": Int(20, 200, log=True),
    "patience": Int(3, 20),
    "lr_schedule": Categorical(("none", "cosine", "plateau")),
}

TRAINING_DEFAULTS: dict[str, object] = {
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "batch_size": 64,
    "max_epochs": 100,
    "patience": 10,
    "lr_schedule": "none",
}


def _as_features(X: Any, what: str = "X") -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise DataError(f"{what} must be a 2-D matrix (rows, features); got shape {X.shape}.")
    if not np.isfinite(X).all():
        columns = np.flatnonzero(~np.isfinite(X).all(axis=0))[:10].tolist()
        raise DataError(
            f"{what} has NaN or infinite values in feature columns {columns}; the torch families need "
            "finite inputs. Impute them in the preprocessor."
        )
    return X


class TorchEstimator(BaseEstimator, abc.ABC):
    """Base of the torch estimators; subclasses add the architecture's keyword arguments.

    Training keyword arguments (all stored as given):
        optimizer: ``sgd``, ``adam``, ``adamw`` or ``rmsprop``.
        lr, weight_decay: optimizer settings.
        momentum, nesterov: SGD only.
        batch_size: rows per step.
        max_epochs: upper bound on epochs.
        patience: epochs without a better validation loss before stopping (best weights are restored);
            ``None`` or 0 trains ``max_epochs`` epochs.
        lr_schedule: ``none``, ``cosine`` or ``plateau``.
        validation_fraction: share of the training rows held out for early stopping when
            :meth:`fit` gets no validation data (0 disables it).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``...
        num_threads: CPU threads while training and predicting; ``None`` keeps torch's setting.
        random_state: seeds the weights, dropout, the mini-batch order and the held-out split.
    """

    _classifier: ClassVar[bool]

    optimizer: str
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int | None
    lr_schedule: str
    validation_fraction: float
    device: str
    num_threads: int | None
    random_state: int | None

    # -- architecture ---------------------------------------------------------------------------
    @abc.abstractmethod
    def _make_module(self, n_features: int, n_outputs: int) -> nn.Sequential:
        """The untrained network mapping ``(B, n_features)`` to ``(B, n_outputs)``."""

    def _check_params(self) -> None:
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("lr_schedule", self.lr_schedule, SCHEDULES)
        if not 0.0 <= self.validation_fraction < 1.0:
            raise RecipeError(f"validation_fraction must lie in [0, 1); got {self.validation_fraction!r}.")
        for name in ("batch_size", "max_epochs"):
            if int(getattr(self, name)) < 1:
                raise RecipeError(f"{name} must be at least 1; got {getattr(self, name)!r}.")

    def _make_trainer(self, module: nn.Module, loss_fn: Any, **kwargs: Any) -> Trainer:
        """The trainer; override to use a :class:`Trainer` subclass with custom steps."""
        return Trainer(module, loss_fn, **kwargs)

    # -- fit ------------------------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        y: Any,
        *,
        X_valid: Any = None,
        y_valid: Any = None,
        on_epoch: Callable[[int, np.ndarray], None] | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> TorchEstimator:
        """Train on ``(X, y)``; early-stop on ``(X_valid, y_valid)`` (or a held-out share of ``X``).

        ``on_epoch(epoch, valid_output)`` is called after each epoch with the validation
        probabilities ``(n, C)`` or predictions ``(n,)``; it may raise ``optuna.TrialPruned``.
        """
        self._check_params()
        if on_epoch is not None and (X_valid is None or y_valid is None):
            raise ValueError("on_epoch reports outputs on X_valid, so fit needs X_valid and y_valid with it.")
        X = _as_features(X)
        y = np.asarray(y)
        if len(y) != len(X):
            raise DataError(f"X has {len(X)} rows but y has {len(y)}.")
        seed = 0 if self.random_state is None else int(self.random_state)
        if X_valid is None and self.validation_fraction > 0 and self.patience and len(X) >= 20:
            X, y, X_valid, y_valid = self._holdout(X, y, seed)
        has_valid = X_valid is not None and y_valid is not None
        device = resolve_device(self.device)

        y_t = self._encode_target(y, fit=True)
        if has_valid:
            X_valid = _as_features(X_valid, "X_valid")
            valid = (torch.from_numpy(X_valid), self._encode_target(np.asarray(y_valid), fit=False))
        n_outputs = len(self.classes_) if self._classifier else 1
        with seeded(seed, device):
            module = self._make_module(X.shape[1], n_outputs)
        callbacks = list(callbacks)
        stopper = None
        if has_valid and self.patience:
            stopper = EarlyStopping(int(self.patience), restore_best=True)
            callbacks.insert(0, stopper)
        if on_epoch is not None:
            callbacks.append(EpochReporter(on_epoch))
        trainer = self._make_trainer(
            module,
            nn.CrossEntropyLoss() if self._classifier else nn.MSELoss(),
            optimizer=self.optimizer,
            lr=float(self.lr),
            weight_decay=float(self.weight_decay),
            momentum=float(self.momentum),
            nesterov=bool(self.nesterov),
            lr_schedule=self.lr_schedule,
            batch_size=int(self.batch_size),
            max_epochs=int(self.max_epochs),
            device=device,
            seed=seed,
            callbacks=callbacks,
            output_fn=self._output_fn,
            patience=int(self.patience or 10),
            num_threads=self.num_threads,
        )
        history = trainer.fit(torch.from_numpy(X), y_t, *(valid if has_valid else (None, None)))
        module.eval()
        if not self._classifier:
            self._fold_target_scale(module)
        self.module_ = module
        self.history_ = history
        self.best_epoch_ = stopper.best_epoch if stopper is not None else len(history) - 1
        self.n_features_in_ = X.shape[1]
        self.device_ = str(device)
        return self

    def _holdout(self, X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
        from sklearn.model_selection import train_test_split

        stratify = None
        if self._classifier:
            _, counts = np.unique(y, return_counts=True)
            n_valid = int(np.ceil(self.validation_fraction * len(y)))
            if counts.min() >= 2 and n_valid >= len(counts):
                stratify = y
        X_train, X_valid, y_train, y_valid = train_test_split(
            X, y, test_size=self.validation_fraction, random_state=seed, stratify=stratify
        )
        return X_train, y_train, X_valid, y_valid

    def _encode_target(self, y: np.ndarray, *, fit: bool) -> torch.Tensor:
        if self._classifier:
            if y.dtype.kind not in "iub":
                if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0):
                    y = y.astype(np.int64)
                else:
                    raise DataError(
                        f"classification targets must be int64 class codes 0..C-1; got dtype {y.dtype}."
                    )
            if fit:
                self.classes_ = np.unique(y)
            codes = np.searchsorted(self.classes_, y)
            known = (codes < len(self.classes_)) & (
                self.classes_[np.minimum(codes, len(self.classes_) - 1)] == y
            )
            if not known.all():
                raise DataError(
                    f"validation targets hold classes not seen in training: {np.unique(y[~known])[:5]}."
                )
            return torch.from_numpy(codes.astype(np.int64))  # (N,)
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise DataError("regression targets must be finite numbers.")
        if fit:
            self.target_mean_ = float(y.mean())
            std = float(y.std())
            self.target_scale_ = std if std > 0 else 1.0
        return torch.from_numpy(
            ((y - self.target_mean_) / self.target_scale_).astype(np.float32)[:, None]
        )  # (N, 1)

    def _output_fn(self, output: torch.Tensor) -> torch.Tensor:
        """Raw network output during training -> what ``on_epoch`` sees."""
        if self._classifier:
            return torch.softmax(output, dim=1)  # (N, C)
        return output[:, 0] * self.target_scale_ + self.target_mean_  # (N,)

    def _fold_target_scale(self, module: nn.Sequential) -> None:
        last = module[-1]
        if not isinstance(last, nn.Linear):
            raise TypeError(
                f"the last layer must be nn.Linear to fold the target scale; got {type(last).__name__}."
            )
        with torch.no_grad():
            last.weight.mul_(self.target_scale_)
            last.bias.mul_(self.target_scale_).add_(self.target_mean_)

    # -- predict --------------------------------------------------------------------------------
    def _forward(self, X: Any) -> np.ndarray:
        if not hasattr(self, "module_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first.")
        X = _as_features(X)
        if X.shape[1] != self.n_features_in_:
            raise DataError(
                f"X has {X.shape[1]} features, but the model was fitted with {self.n_features_in_}."
            )
        device = next(self.module_.parameters()).device
        self.module_.eval()
        outputs = []
        with torch.no_grad(), torch_threads(self.num_threads):
            for start in range(0, len(X), 4096):
                xb = torch.from_numpy(X[start : start + 4096]).to(device)  # (B, F)
                outputs.append(self.module_(xb).cpu())  # (B, K)
        if not outputs:
            return np.zeros((0, len(self.classes_) if self._classifier else 1), dtype=np.float32)
        return torch.cat(outputs).numpy()


class TorchClassifierMixin:
    """``predict_proba`` / ``predict`` for torch classifiers."""

    _classifier: ClassVar[bool] = True

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n, C)``, columns in ``classes_`` order."""
        logits = torch.from_numpy(self._forward(X))  # type: ignore[attr-defined]
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class code for each row."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]  # type: ignore[attr-defined,no-any-return]


class TorchRegressorMixin:
    """``predict`` for torch regressors."""

    _classifier: ClassVar[bool] = False

    def predict(self, X: Any) -> np.ndarray:
        """Predictions in target units, shape ``(n,)``."""
        return self._forward(X)[:, 0]  # type: ignore[attr-defined,no-any-return]


# -- ONNX -------------------------------------------------------------------------------------------
class _ClassifierGraph(nn.Module):
    classes: torch.Tensor

    def __init__(self, module: nn.Module, classes: np.ndarray) -> None:
        super().__init__()
        self.module = module
        self.identity = bool(np.array_equal(classes, np.arange(len(classes))))
        self.register_buffer("classes", torch.as_tensor(classes, dtype=torch.int64))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probabilities = torch.softmax(self.module(features), dim=1)  # (N, C)
        index = torch.argmax(probabilities, dim=1)  # (N,)
        label = index if self.identity else self.classes[index]
        return label, probabilities


class _RegressorGraph(nn.Module):
    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.module(features).reshape(-1)  # (N, 1) -> (N,)


def torch_to_onnx(estimator: TorchEstimator, n_features: int) -> onnx.ModelProto:
    """Export a fitted torch estimator with ``torch.onnx.export(dynamo=True)`` to the ONNX contract."""
    module = copy.deepcopy(estimator.module_).cpu().eval()
    classifier = is_classifier(estimator)
    wrapper: nn.Module
    if classifier:
        wrapper, outputs = _ClassifierGraph(module, estimator.classes_), ["label", "probabilities"]
    else:
        wrapper, outputs = _RegressorGraph(module), ["prediction"]
    example = torch.zeros(2, n_features)  # (N, F); N=2 keeps the batch dimension symbolic
    with quiet_torch_export():
        program = torch.onnx.export(
            wrapper.eval(),
            (example,),
            input_names=[INPUT_NAME],
            output_names=outputs,
            dynamic_shapes=({0: torch.export.Dim(BATCH_DIM)},),
            dynamo=True,
            opset_version=18,
            verbose=False,
        )
    if program is None:  # only the legacy exporter returns None
        raise RuntimeError("torch.onnx.export returned no program")
    model = program.model_proto
    return finish(model, classifier=classifier)


class TorchFamily(Family):
    """Base of the torch families: shared training space, fit with validation, ONNX export."""

    scale: ClassVar[bool] = True
    iterative: ClassVar[bool] = True
    extra_params: ClassVar[tuple[str, ...]] = ("validation_fraction", "num_threads")
    estimator_classes: ClassVar[tuple[type[TorchEstimator], type[TorchEstimator]]]  # classifier, regressor

    @abc.abstractmethod
    def architecture_space(self, task: str) -> dict[str, Dist]:
        """The searched architecture parameters."""

    @abc.abstractmethod
    def architecture_defaults(self, task: str) -> dict[str, object]:
        """Good architecture parameters."""

    def space(self, task: str) -> dict[str, Dist]:
        return {**self.architecture_space(task), **TRAINING_SPACE}

    def defaults(self, task: str) -> dict[str, object]:
        return {**self.architecture_defaults(task), **TRAINING_DEFAULTS}

    def _estimator(
        self, params: Mapping[str, object], task: str, seed: int, device: str, **fixed: Any
    ) -> TorchEstimator:
        classifier_cls, regressor_cls = self.estimator_classes
        cls = classifier_cls if task == "classification" else regressor_cls
        return cls(**{**params, **fixed}, random_state=seed, device=device)

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
        return self._estimator(p, task, seed, device)

    def fit(
        self,
        estimator: Any,
        X: np.ndarray,
        y: np.ndarray,
        *,
        X_valid: np.ndarray | None = None,
        y_valid: np.ndarray | None = None,
        on_epoch: Callable[[int, np.ndarray], None] | None = None,
    ) -> Any:
        return estimator.fit(X, y, X_valid=X_valid, y_valid=y_valid, on_epoch=on_epoch)

    def to_onnx(self, estimator: Any, n_features: int) -> onnx.ModelProto:
        return torch_to_onnx(estimator, n_features)
