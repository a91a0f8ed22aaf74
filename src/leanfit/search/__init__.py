"""Hyper-parameter search on Optuna: samplers, pruners, resumable studies, the objective.

Example:
    >>> from leanfit.search import Search
    >>> Search(sampler="random").run(lambda t: t.suggest_float("x", 0, 1), n_trials=2).best_value <= 1
    True
"""

from __future__ import annotations

from .samplers import PRUNERS, SAMPLERS, make_pruner, make_sampler
from .study import FINISHED, Search, finished_count, leaderboard

__all__ = [
    "FINISHED",
    "PRUNERS",
    "SAMPLERS",
    "Search",
    "finished_count",
    "leaderboard",
    "make_pruner",
    "make_sampler",
]
