"""Declarative search spaces: three tiny types that become Optuna ``suggest_*`` calls.

A family's space is a ``dict`` from parameter name to :data:`Dist`. ``when=("penalty",
"elasticnet")`` makes a parameter conditional: it is suggested only when the parameter
``penalty`` of the same space took the value ``"elasticnet"`` (the condition must come
earlier in the dict). Names are suggested as flat ``prefix__key`` keys (skorch and
scikit-learn style), so several families share one study without clashing.

Example:
    >>> import optuna
    >>> space = {"penalty": Categorical(("l2", "elasticnet")),
    ...          "l1_ratio": Float(0.1, 0.9, when=("penalty", "elasticnet"))}
    >>> study = optuna.create_study()
    >>> study.enqueue_trial({"linear__penalty": "elasticnet", "linear__l1_ratio": 0.5})
    >>> suggest(study.ask(), space, "linear")
    {'penalty': 'elasticnet', 'l1_ratio': 0.5}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..exceptions import RecipeError
from ..train._choices import did_you_mean

if TYPE_CHECKING:
    import optuna

__all__ = ["Categorical", "Dist", "Float", "Int", "active", "check_params", "suggest"]

When = tuple[str, object] | None
_CATEGORY_TYPES = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Float:
    """A float in ``[low, high]``, sampled log-uniformly when ``log``.

    Example:
        >>> Float(1e-3, 1e2, log=True).contains(0.5)
        True
    """

    low: float
    high: float
    log: bool = False
    when: When = None

    def __post_init__(self) -> None:
        _check_range(self.low, self.high, self.log)

    def contains(self, value: object) -> bool:
        """Whether ``value`` is a number inside the range."""
        return (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and self.low <= value <= self.high
        )


@dataclass(frozen=True)
class Int:
    """An integer in ``[low, high]`` (both included), sampled log-uniformly when ``log``.

    Example:
        >>> Int(1, 3).contains(2), Int(1, 3).contains(2.5)
        (True, False)
    """

    low: int
    high: int
    log: bool = False
    when: When = None

    def __post_init__(self) -> None:
        _check_range(self.low, self.high, self.log)

    def contains(self, value: object) -> bool:
        """Whether ``value`` is an integer inside the range."""
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high


@dataclass(frozen=True)
class Categorical:
    """One of ``choices`` (``None``, ``bool``, ``int``, ``float`` or ``str``, as Optuna allows).

    Example:
        >>> Categorical(("l1", "l2")).contains("l1")
        True
    """

    choices: tuple[object, ...]
    when: When = None

    def __post_init__(self) -> None:
        if not isinstance(self.choices, tuple) or not self.choices:
            raise RecipeError(f"Categorical choices must be a non-empty tuple; got {self.choices!r}.")
        bad = [c for c in self.choices if not isinstance(c, _CATEGORY_TYPES)]
        if bad:
            raise RecipeError(f"Categorical choices must be None, bool, int, float or str; got {bad!r}.")

    def contains(self, value: object) -> bool:
        """Whether ``value`` is one of the choices (``True`` does not count as ``1``)."""
        return any(value == c and type(value) is type(c) for c in self.choices)


Dist = Float | Int | Categorical


def _check_range(low: float, high: float, log: bool) -> None:
    if not low <= high:
        raise RecipeError(f"a range needs low <= high; got {low=}, {high=}.")
    if log and low <= 0:
        raise RecipeError(f"a log-scaled range needs low > 0; got {low=}.")


def _condition_met(key: str, dist: Dist, values: Mapping[str, object], space: Mapping[str, Dist]) -> bool:
    if dist.when is None:
        return True
    parent, wanted = dist.when
    if parent not in space:
        raise RecipeError(
            f"parameter {key!r} depends on {parent!r}, which is not in the space "
            f"({', '.join(space)}).{did_you_mean(parent, space)}"
        )
    return parent in values and values[parent] == wanted


def suggest(trial: optuna.Trial, space: Mapping[str, Dist], prefix: str) -> dict[str, object]:
    """Suggest every active parameter of ``space`` as ``f"{prefix}__{key}"``; return ``{key: value}``.

    Parameters whose ``when`` condition is not met are skipped (left out of the result).

    Example:
        >>> import optuna
        >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        >>> params = suggest(study.ask(), {"alpha": Float(0.1, 1.0)}, "ridge")
        >>> sorted(params)
        ['alpha']
    """
    values: dict[str, object] = {}
    for key, dist in space.items():
        if not _condition_met(key, dist, values, space):
            continue
        name = f"{prefix}__{key}" if prefix else key
        if isinstance(dist, Float):
            values[key] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
        elif isinstance(dist, Int):
            values[key] = trial.suggest_int(name, dist.low, dist.high, log=dist.log)
        elif isinstance(dist, Categorical):
            values[key] = trial.suggest_categorical(name, dist.choices)  # type: ignore[arg-type]
        else:
            raise RecipeError(f"space entry {key!r} must be Float, Int or Categorical; got {dist!r}.")
    return values


def active(space: Mapping[str, Dist], params: Mapping[str, object]) -> dict[str, Dist]:
    """The sub-space of parameters whose ``when`` condition holds for ``params``.

    Example:
        >>> space = {"kind": Categorical(("a", "b")), "x": Float(0, 1, when=("kind", "b"))}
        >>> list(active(space, {"kind": "a"}))
        ['kind']
    """
    return {key: dist for key, dist in space.items() if _condition_met(key, dist, params, space)}


def check_params(
    space: Mapping[str, Dist],
    params: Mapping[str, object],
    *,
    extra: tuple[str, ...] = (),
    ranges: bool = True,
) -> None:
    """Raise :class:`RecipeError` unless every key of ``params`` is in ``space`` (or ``extra``) and,
    with ``ranges``, every value lies inside its distribution.

    A family's space is its default *search* range, not the set of valid values, so
    :meth:`Family.build` checks names only (``ranges=False``): a fixed ``max_epochs: 5`` is fine.

    Example:
        >>> check_params({"C": Float(0.1, 1.0)}, {"c": 0.5})
        Traceback (most recent call last):
        ...
        leanfit.exceptions.RecipeError: unknown parameter 'c'; expected one of C. Did you mean 'C'?
    """
    for key, value in params.items():
        if key in space:
            if ranges and not space[key].contains(value):
                raise RecipeError(f"parameter {key!r} must lie in {space[key]!r}; got {value!r}.")
        elif key not in extra:
            known = [*space, *extra]
            raise RecipeError(
                f"unknown parameter {key!r}; expected one of {', '.join(known)}.{did_you_mean(key, known)}"
            )
