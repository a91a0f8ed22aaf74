"""Pruning of the torch families: structured (whole neurons/channels, the network shrinks) and
unstructured magnitude pruning (weights zeroed, the network stays dense).

Structured pruning ranks the units of each hidden layer by importance, removes the least
important ones with exact surgery (:func:`~leanfit.compress.surgery.shrink`), and fine-tunes
with :class:`leanfit.train.Trainer`; a gradual schedule repeats prune and fine-tune in
``steps`` rounds up to each target sparsity and keeps a snapshot at every target.

Importance of unit ``r`` (a neuron or channel with pre-activation ``z_r = W_r x + b_r``):

* ``l1`` / ``l2``: the norm of its incoming weights ``W_r``;
* ``taylor``: ``mean_n |sum_pos g_r (z_r - b_r)|`` with ``g`` the loss gradient: the
  first-order change of the loss when the unit is replaced by its constant bias, which is
  exactly what removal does.

Example:
    >>> pruner = StructuredPruner(sparsities=(0.5,), steps=2).fit(estimator, X, y)   # doctest: +SKIP
    >>> [s.sparsity for s in pruner.snapshots_]                                      # doctest: +SKIP
    [0.5]
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .._logging import get_logger
from ..models.fitting import early_stopping_split
from ..train import EarlyStopping, Trainer, seeded
from ..train._choices import check_choice
from .surgery import AddConstant, count_parameters, prunable_units, shrink

__all__ = [
    "IMPORTANCE",
    "MagnitudePruner",
    "Snapshot",
    "StructuredPruner",
    "finetune",
    "unit_importance",
]

logger = get_logger(__name__)

IMPORTANCE = ("l1", "l2", "taylor")
_TAYLOR_ROWS = 2048


@dataclass
class Snapshot:
    """A pruned estimator at one sparsity, after fine-tuning."""

    sparsity: float
    estimator: Any
    parameters: int
    widths: list[int]
    nonzero: int
    history: list[dict[str, float]] = field(default_factory=list, repr=False)


def _targets(estimator: Any, y: np.ndarray) -> torch.Tensor:
    """Training targets in the space ``module_`` is trained in (class index, or standardized value)."""
    if getattr(estimator, "_classifier", False):
        return torch.from_numpy(np.searchsorted(estimator.classes_, y).astype(np.int64))
    scaled = (np.asarray(y, dtype=np.float64) - estimator.target_mean_) / estimator.target_scale_
    return torch.from_numpy(scaled.astype(np.float32)[:, None])


def _loss(estimator: Any) -> nn.Module:
    return nn.CrossEntropyLoss() if getattr(estimator, "_classifier", False) else nn.MSELoss()


def _scale_head(module: nn.Sequential, estimator: Any, *, fold: bool) -> None:
    """Move a regressor's head between target units (``fold``) and standardized units, in place."""
    if getattr(estimator, "_classifier", False):
        return
    head: Any = module[-1]
    mean, scale = float(estimator.target_mean_), float(estimator.target_scale_)
    with torch.no_grad():
        if fold:
            head.weight.mul_(scale)
            head.bias.mul_(scale).add_(mean)
        else:
            head.weight.div_(scale)
            head.bias.sub_(mean).div_(scale)


class _MaskedTrainer(Trainer):
    """A trainer that re-applies fixed weight masks after every step (unstructured pruning)."""

    masks: list[tuple[torch.Tensor, torch.Tensor]] = []

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        loss = super().train_step(xb, yb)
        with torch.no_grad():
            for weight, keep in self.masks:
                weight.mul_(keep)
        return loss


def finetune(
    estimator: Any,
    module: nn.Sequential,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    patience: int,
    seed: int,
    lr: float | None = None,
    masks: Sequence[tuple[torch.Tensor, torch.Tensor]] = (),
) -> tuple[nn.Sequential, list[dict[str, float]]]:
    """Fine-tune ``module`` (in ``estimator``'s output units) with the estimator's optimizer settings.

    A seeded 15% of the rows early-stops training (best weights restored). ``masks``
    (``(weight, 0/1 tensor)`` pairs) are re-applied after every step.

    Returns:
        ``(module, history)``; the module is trained in place and returned.
    """
    fit_rows, stop_rows = early_stopping_split(len(X), seed=seed)
    _scale_head(module, estimator, fold=False)
    targets = _targets(estimator, y)
    trainer_cls = _MaskedTrainer if masks else Trainer
    trainer: Any = trainer_cls(
        module,
        _loss(estimator),
        optimizer=str(estimator.optimizer),
        lr=float(lr if lr is not None else estimator.lr),
        weight_decay=float(estimator.weight_decay),
        momentum=float(estimator.momentum),
        nesterov=bool(estimator.nesterov),
        batch_size=int(estimator.batch_size),
        max_epochs=int(epochs),
        device="cpu",
        seed=seed,
        callbacks=[EarlyStopping(patience, restore_best=True)] if len(stop_rows) else [],
    )
    if masks:
        trainer.masks = list(masks)
    Xt = torch.from_numpy(np.asarray(X, dtype=np.float32))
    valid = (Xt[stop_rows], targets[stop_rows]) if len(stop_rows) else (None, None)
    history = trainer.fit(Xt[fit_rows], targets[fit_rows], *valid)
    module.eval()
    _scale_head(module, estimator, fold=True)
    return module, history


def unit_importance(
    estimator: Any,
    module: nn.Sequential,
    X: np.ndarray,
    y: np.ndarray,
    *,
    method: str = "taylor",
    seed: int = 0,
) -> list[torch.Tensor]:
    """Importance of every unit of every prunable layer (higher = keep), one tensor per layer.

    Example:
        >>> [t.shape for t in unit_importance(est, est.module_, X, y, method="l1")]   # doctest: +SKIP
        [torch.Size([64]), torch.Size([64])]
    """
    check_choice("importance", method, IMPORTANCE)
    units = prunable_units(module)
    layers: list[Any] = list(module)
    if method in ("l1", "l2"):
        p = 1 if method == "l1" else 2
        return [layers[u.index].weight.detach().flatten(1).norm(p=p, dim=1) for u in units]
    rows = np.random.default_rng(seed).permutation(len(X))[:_TAYLOR_ROWS]
    work = copy.deepcopy(module).eval()
    _scale_head(work, estimator, fold=False)
    outputs: dict[int, torch.Tensor] = {}

    def hook(index: int) -> Any:
        def keep(_: nn.Module, __: Any, out: torch.Tensor) -> None:
            out.retain_grad()
            outputs[index] = out

        return keep

    work_layers: list[Any] = list(work)
    handles = [work_layers[u.index].register_forward_hook(hook(u.index)) for u in units]
    try:
        with seeded(seed):
            out = work(torch.from_numpy(np.asarray(X[rows], dtype=np.float32)))
            _loss(estimator)(out, _targets(estimator, y[rows])).backward()
    finally:
        for handle in handles:
            handle.remove()
    scores = []
    for u in units:
        z, layer = outputs[u.index], work_layers[u.index]
        assert z.grad is not None
        bias = layer.bias.detach().reshape(1, -1, *([1] * (z.dim() - 2)))
        contribution = (
            (z.grad * (z.detach() - bias)).flatten(2) if z.dim() > 2 else z.grad * (z.detach() - bias)
        )
        per_sample = contribution.sum(-1) if z.dim() > 2 else contribution  # (N, units)
        scores.append(per_sample.abs().mean(0).detach())
    return scores


def _keep_masks(scores: Sequence[torch.Tensor], widths: Sequence[int]) -> list[torch.Tensor]:
    masks = []
    for score, width in zip(scores, widths, strict=True):
        keep = torch.zeros_like(score, dtype=torch.bool)
        keep[torch.argsort(score, descending=True)[: max(1, int(width))]] = True
        masks.append(keep)
    return masks


def _widths(module: nn.Sequential) -> list[int]:
    return [u.width for u in prunable_units(module)]


def _nonzero(module: nn.Module) -> int:
    return int(sum(int(torch.count_nonzero(p)) for p in module.parameters()))


def _with_module(estimator: Any, module: nn.Sequential) -> Any:
    out = copy.copy(estimator)
    out.module_ = module.eval()
    return out


class StructuredPruner:
    """Gradual structured pruning of a fitted ``mlp``/``cnn`` estimator, with fine-tuning.

    Args:
        sparsities: target shares of units removed from every prunable layer; a snapshot is
            kept at each (e.g. ``(0.5, 0.75)`` keeps half and a quarter of the width).
        steps: prune-and-fine-tune rounds to reach each target from the previous one.
        importance: ``l1``, ``l2`` or ``taylor``.
        epochs, patience: fine-tuning epochs per round and early-stopping patience.
        lr_scale: fine-tuning learning rate as a share of the estimator's.
        seed: seeds the fine-tuning and the Taylor sample.

    Example:
        >>> pruner = StructuredPruner(sparsities=(0.5,), steps=1, importance="l2")
        >>> pruner.sparsities
        (0.5,)
    """

    def __init__(
        self,
        *,
        sparsities: Sequence[float] = (0.5, 0.75),
        steps: int = 2,
        importance: str = "taylor",
        epochs: int = 20,
        patience: int = 4,
        lr_scale: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.sparsities = tuple(sparsities)
        self.steps = steps
        self.importance = importance
        self.epochs = epochs
        self.patience = patience
        self.lr_scale = lr_scale
        self.seed = seed

    def fit(self, estimator: Any, X: np.ndarray, y: np.ndarray) -> StructuredPruner:
        """Prune ``estimator.module_`` (not changed) to every target; snapshots in ``snapshots_``."""
        check_choice("importance", self.importance, IMPORTANCE)
        if not self.sparsities or any(not 0 < s < 1 for s in sorted(self.sparsities)):
            raise ValueError(f"sparsities must lie in (0, 1); got {self.sparsities}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1; got {self.steps}")
        module = copy.deepcopy(estimator.module_).eval()
        original = _widths(module)
        self.snapshots_: list[Snapshot] = []
        level, round_ = 0.0, 0
        for target in sorted(self.sparsities):
            history: list[dict[str, float]] = []
            for step in range(1, self.steps + 1):
                level_now = level + (target - level) * step / self.steps
                widths = [max(1, math.ceil(w * (1 - level_now))) for w in original]
                scores = unit_importance(
                    estimator, module, X, y, method=self.importance, seed=self.seed + round_
                )
                module = shrink(module, _keep_masks(scores, widths))
                module, hist = finetune(
                    estimator,
                    module,
                    X,
                    y,
                    epochs=self.epochs,
                    patience=self.patience,
                    seed=self.seed + round_,
                    lr=float(estimator.lr) * self.lr_scale,
                )
                history.extend(hist)
                round_ += 1
            level = target
            snapshot = copy.deepcopy(module).eval()
            self.snapshots_.append(
                Snapshot(
                    target,
                    _with_module(estimator, snapshot),
                    count_parameters(snapshot),
                    _widths(snapshot),
                    _nonzero(snapshot),
                    history,
                )
            )
            logger.debug("pruned to %s: widths %s", target, _widths(snapshot))
        return self


class MagnitudePruner:
    """Unstructured pruning: zero the smallest weights (globally over all weight tensors), fine-tune with masks.

    The network stays dense: the file shrinks only after compression (zeros compress)
    and nothing runs faster unless a benchmark shows it.

    Example:
        >>> MagnitudePruner(sparsities=(0.8,)).sparsities
        (0.8,)
    """

    def __init__(
        self,
        *,
        sparsities: Sequence[float] = (0.5, 0.8),
        epochs: int = 20,
        patience: int = 4,
        lr_scale: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.sparsities = tuple(sparsities)
        self.epochs = epochs
        self.patience = patience
        self.lr_scale = lr_scale
        self.seed = seed

    def fit(self, estimator: Any, X: np.ndarray, y: np.ndarray) -> MagnitudePruner:
        """Prune copies of ``estimator.module_`` to each sparsity; snapshots in ``snapshots_``."""
        self.snapshots_: list[Snapshot] = []
        for i, target in enumerate(sorted(self.sparsities)):
            if not 0 < target < 1:
                raise ValueError(f"sparsities must lie in (0, 1); got {target}")
            module = copy.deepcopy(estimator.module_).eval()
            weights: list[Any] = [m.weight for m in module if isinstance(m, (nn.Linear, nn.Conv2d))]
            magnitudes = torch.cat([w.detach().abs().flatten() for w in weights])
            threshold = torch.quantile(magnitudes, target) if magnitudes.numel() <= 16_000_000 else None
            if threshold is None:
                threshold = magnitudes.kthvalue(max(1, int(target * magnitudes.numel()))).values
            masks = [(w, (w.detach().abs() > threshold).to(w.dtype)) for w in weights]
            with torch.no_grad():
                for w, keep in masks:
                    w.mul_(keep)
            module, history = finetune(
                estimator,
                module,
                X,
                y,
                epochs=self.epochs,
                patience=self.patience,
                seed=self.seed + i,
                lr=float(estimator.lr) * self.lr_scale,
                masks=masks,
            )
            self.snapshots_.append(
                Snapshot(
                    target,
                    _with_module(estimator, module),
                    count_parameters(module),
                    _widths(module),
                    _nonzero(module),
                    history,
                )
            )
        return self


def has_add_constant(module: nn.Module) -> bool:
    """Whether surgery inserted a position-dependent bias map (a conv network with padding)."""
    return any(isinstance(m, AddConstant) for m in module.modules())
