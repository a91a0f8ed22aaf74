"""Knowledge distillation into a small MLP student, from any teacher.

The teacher is any callable from the feature matrix to outputs (class probabilities
``(n, C)`` or predictions ``(n,)``): an in-memory estimator of any family, or an ONNX graph
(:func:`onnx_teacher`). The student is a plain :func:`~leanfit.models.mlp.make_mlp`
network, trained with :class:`leanfit.train.Trainer` on

* classification: ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, y)``
  with both distributions softened by the temperature ``T``;
* regression: the mix ``alpha * teacher + (1 - alpha) * y`` (squared error, standardized);

over the training rows plus augmented rows that only the teacher labels: Gaussian noise
scaled per feature and mixup between random pairs, clipped to each feature's training
range (0/1 columns such as one-hot levels are never noised, and mixup picks one parent's
value for them). ``alpha=0`` and ``augment=0`` is plain training of the same student: the
control every distilled student must beat.

Example:
    >>> d = Distiller(hidden=32, depth=1, temperature=2.0, alpha=0.5)
    >>> d.fit(teacher_fn, X, y, task="classification", n_classes=3)   # doctest: +SKIP
    >>> d.student_.predict_proba(X[:2]).shape                         # doctest: +SKIP
    (2, 3)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from ..models.fitting import early_stopping_split
from ..models.mlp import MLPClassifier, MLPRegressor, make_mlp
from ..train import EarlyStopping, Trainer, seeded
from .graphs import run_graph, session

__all__ = ["Distiller", "Teacher", "augment", "onnx_teacher"]

Teacher = Callable[[np.ndarray], np.ndarray]


def onnx_teacher(model: onnx.ModelProto, output: str) -> Teacher:
    """A teacher that runs a model graph (input ``features``) with ONNX Runtime.

    Example:
        >>> teacher = onnx_teacher(net_graph, "probabilities")   # doctest: +SKIP
    """
    sess = session(model)
    name = model.graph.input[0].name

    def predict(X: np.ndarray) -> np.ndarray:
        return run_graph(sess, {name: np.asarray(X, dtype=np.float32)}, output)

    return predict


def augment(X: np.ndarray, n: int, *, noise: float = 0.1, mixup: float = 0.5, seed: int = 0) -> np.ndarray:
    """``n`` new rows near the training rows: half mixup of random pairs, half per-feature Gaussian noise.

    Example:
        >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]], dtype=np.float32)
        >>> A = augment(X, 100, seed=0)
        >>> A.shape, bool(A.min() >= 0 and A.max() <= 2), set(np.unique(A[:, 1])) <= {0.0, 1.0}
        ((100, 2), True, True)
    """
    rng = np.random.default_rng(seed)
    X = np.asarray(X, dtype=np.float32)
    if n <= 0 or len(X) == 0:
        return np.zeros((0, X.shape[1]), dtype=np.float32)
    low, high = X.min(axis=0), X.max(axis=0)
    binary = np.array([np.isin(np.unique(col), (0.0, 1.0)).all() for col in X.T])
    out = X[rng.integers(len(X), size=n)].copy()
    n_mix = int(round(n * mixup))
    if n_mix:
        partner = X[rng.integers(len(X), size=n_mix)]
        lam = rng.beta(0.4, 0.4, size=(n_mix, 1)).astype(np.float32)
        mixed = lam * out[:n_mix] + (1 - lam) * partner
        pick = np.where(lam >= 0.5, out[:n_mix], partner)
        out[:n_mix] = np.where(binary, pick, mixed)
    scale = (noise * X.std(axis=0) * ~binary).astype(np.float32)
    out[n_mix:] += rng.normal(size=(n - n_mix, X.shape[1])).astype(np.float32) * scale
    return np.clip(out, low, high).astype(np.float32)


class Distiller:
    """Train a small MLP student on a teacher's soft targets (and the labels).

    Args:
        hidden, depth: the student's width and number of hidden layers.
        temperature: softens teacher and student distributions (classification).
        alpha: weight of the teacher (0 = plain training on the labels).
        augment: augmented rows per training row (0 = none); only the teacher labels them.
        noise: Gaussian noise as a share of each feature's standard deviation.
        mixup: share of augmented rows made by mixup (the rest by noise).
        lr, weight_decay, batch_size, max_epochs, patience: AdamW training with early
            stopping on the training loss over a seeded 15% of the real rows (held out).
        max_rows: cap on real plus augmented rows per epoch.
        seed: seeds weights, batches and augmentation.

    Example:
        >>> Distiller(alpha=0.0, augment=0.0).is_plain
        True
    """

    def __init__(
        self,
        *,
        hidden: int = 64,
        depth: int = 1,
        temperature: float = 2.0,
        alpha: float = 0.5,
        augment: float = 2.0,
        noise: float = 0.1,
        mixup: float = 0.5,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 128,
        max_epochs: int = 80,
        patience: int = 8,
        max_rows: int = 120_000,
        seed: int = 0,
    ) -> None:
        self.hidden = hidden
        self.depth = depth
        self.temperature = temperature
        self.alpha = alpha
        self.augment = augment
        self.noise = noise
        self.mixup = mixup
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.max_rows = max_rows
        self.seed = seed

    @property
    def is_plain(self) -> bool:
        """No teacher involved: the control."""
        return self.alpha == 0 and self.augment == 0

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (what a report records)."""
        return {k: getattr(self, k) for k in ("hidden", "depth", "temperature", "alpha", "augment")}

    def fit(
        self, teacher: Teacher | None, X: np.ndarray, y: np.ndarray, *, task: str, n_classes: int = 0
    ) -> Distiller:
        """Train the student; ``student_`` is an :class:`~leanfit.models.MLPClassifier`/``MLPRegressor``."""
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must lie in [0, 1]; got {self.alpha}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0; got {self.temperature}")
        if teacher is None and not self.is_plain:
            raise ValueError("distillation needs a teacher; pass alpha=0 and augment=0 for plain training")
        X = np.asarray(X, dtype=np.float32)
        classifier = task == "classification"
        fit_rows, stop_rows = early_stopping_split(len(X), seed=self.seed)
        X_fit, y_fit = X[fit_rows], np.asarray(y)[fit_rows]
        n_aug = int(min(self.augment * len(X_fit), max(self.max_rows - len(X_fit), 0)))
        X_aug = augment(X_fit, n_aug, noise=self.noise, mixup=self.mixup, seed=self.seed)
        X_all = np.concatenate([X_fit, X_aug])
        y_all = np.concatenate([y_fit, np.zeros(len(X_aug), dtype=y_fit.dtype)])
        labelled = np.concatenate([np.ones(len(X_fit)), np.zeros(len(X_aug))]).astype(np.float32)
        X_stop, y_stop = X[stop_rows], np.asarray(y)[stop_rows]
        soft = soft_stop = None
        if teacher is not None:
            soft = np.asarray(teacher(X_all), dtype=np.float64)
            soft_stop = np.asarray(teacher(X_stop), dtype=np.float64) if len(X_stop) else None
        if not classifier:
            self.mean_, self.scale_ = float(np.mean(y_fit)), float(np.std(y_fit) or 1.0)
        target = self._targets(soft, y_all, labelled, classifier, n_classes)
        valid_y = self._targets(soft_stop, y_stop, np.ones(len(X_stop), np.float32), classifier, n_classes)
        n_out = n_classes if classifier else 1
        with seeded(self.seed):
            module = make_mlp(X.shape[1], n_out, hidden=int(self.hidden), depth=int(self.depth), dropout=0.0)
        trainer = Trainer(
            module,
            self._loss(n_classes if classifier else 0),
            optimizer="adamw",
            lr=self.lr,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            device="cpu",
            seed=self.seed,
            callbacks=[EarlyStopping(self.patience, restore_best=True)] if len(stop_rows) else [],
        )
        valid = (torch.from_numpy(X_stop), torch.from_numpy(valid_y)) if len(stop_rows) else (None, None)
        self.history_ = trainer.fit(torch.from_numpy(X_all), torch.from_numpy(target), *valid)
        self.rows_ = {"real": int(len(X_fit)), "augmented": int(len(X_aug))}
        self.student_ = self._wrap(module.eval(), X.shape[1], classifier, n_classes)
        return self

    def _targets(
        self, soft: np.ndarray | None, y: np.ndarray, labelled: np.ndarray, classifier: bool, n_classes: int
    ) -> np.ndarray:
        """Pack what the loss needs per row: soft targets, the label and whether the row has one."""
        n = len(labelled)
        if not classifier:
            value = np.asarray(y, dtype=np.float64)
            if soft is not None:
                value = np.where(labelled > 0, self.alpha * soft + (1 - self.alpha) * value, soft)
            return np.stack([(value - self.mean_) / self.scale_, labelled], axis=1).astype(np.float32)
        target = np.zeros((n, n_classes + 2), dtype=np.float32)
        if soft is not None:
            logp = np.log(np.clip(soft, 1e-7, 1.0)) / self.temperature
            logp -= logp.max(axis=1, keepdims=True)
            p = np.exp(logp)
            target[:, :n_classes] = p / p.sum(axis=1, keepdims=True)
        target[:, n_classes] = y
        target[:, n_classes + 1] = labelled
        return target

    def _loss(self, n_classes: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        T, alpha = float(self.temperature), float(self.alpha)

        def classification(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            soft, hard, has = target[:, :n_classes], target[:, n_classes].long(), target[:, n_classes + 1]
            ce = nn.functional.cross_entropy(output, hard, reduction="none")  # (B,)
            if alpha == 0:
                return (ce * has).sum() / has.sum().clamp_min(1.0)
            log_student = nn.functional.log_softmax(output / T, dim=1)  # (B, C)
            kl = (soft * (torch.log(soft.clamp_min(1e-12)) - log_student)).sum(dim=1)  # (B,)
            w_soft = torch.where(has > 0, torch.full_like(has, alpha), torch.ones_like(has))
            return (w_soft * T * T * kl + (1 - alpha) * has * ce).mean()

        def regression(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return nn.functional.mse_loss(output[:, 0], target[:, 0])

        return classification if n_classes else regression

    def _wrap(self, module: nn.Sequential, n_features: int, classifier: bool, n_classes: int) -> Any:
        est: Any
        common: dict[str, Any] = {
            "hidden": int(self.hidden),
            "depth": int(self.depth),
            "dropout": 0.0,
            "device": "cpu",
        }
        if classifier:
            est = MLPClassifier(**common, random_state=self.seed)
            est.classes_ = np.arange(n_classes)
        else:
            est = MLPRegressor(**common, random_state=self.seed)
            est.target_mean_, est.target_scale_ = self.mean_, self.scale_
            est._fold_target_scale(module)
        est.module_ = module
        est.n_features_in_ = n_features
        est.history_ = self.history_
        est.best_epoch_ = int(np.argmin([h.get("valid_loss", np.inf) for h in self.history_] or [0]))
        est.device_ = "cpu"
        return est
