"""Samplers and pruners by name, as the recipe spells them."""

from __future__ import annotations

import warnings

import optuna

from ..exceptions import RecipeError

__all__ = ["PRUNERS", "SAMPLERS", "make_pruner", "make_sampler"]

SAMPLERS = ("grid", "random", "tpe", "gp", "cmaes")
PRUNERS = ("none", "median", "hyperband")


def make_sampler(name: str, *, seed: int | None = 0) -> optuna.samplers.BaseSampler:
    """Build an Optuna sampler from its recipe name.

    ``grid`` returns a seeded random sampler: leanfit enqueues each family's grid
    as fixed trials (conditional spaces do not fit Optuna's ``GridSampler``), and
    the random sampler only fills in anything left.

    Example:
        >>> type(make_sampler("tpe")).__name__
        'TPESampler'
    """
    if name == "tpe":
        with warnings.catch_warnings():  # multivariate/group TPE is marked experimental; we opt in knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, n_startup_trials=8, constant_liar=True
            )
    if name in ("random", "grid"):
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=8)
    if name == "cmaes":
        try:
            import cmaes  # noqa: F401
        except ImportError as exc:
            raise RecipeError("search.sampler 'cmaes' needs the cmaes package: pip install cmaes") from exc
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=5, warn_independent_sampling=False)
    raise RecipeError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """Build an Optuna pruner from its recipe name (``none`` is Optuna's ``NopPruner``).

    Example:
        >>> type(make_pruner("hyperband")).__name__
        'HyperbandPruner'
    """
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto", reduction_factor=3)
    raise RecipeError(f"unknown pruner {name!r}; expected one of {', '.join(PRUNERS)}")
