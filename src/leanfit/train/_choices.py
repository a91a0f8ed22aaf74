"""Did-you-mean helpers for names picked from a fixed list (optimizers, schedules, families)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from ..exceptions import RecipeError

__all__ = ["check_choice", "did_you_mean"]


def did_you_mean(value: object, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""`` when none is close.

    Example:
        >>> did_you_mean("adma", ["adam", "sgd"])
        " Did you mean 'adam'?"
    """
    by_lower = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(str(value).lower(), list(by_lower), n=1)
    return f" Did you mean {by_lower[close[0]]!r}?" if close else ""


def check_choice(what: str, value: object, choices: Iterable[object]) -> None:
    """Raise :class:`RecipeError` unless ``value`` is one of ``choices``.

    Example:
        >>> check_choice("optimizer", "adam", ["adam", "sgd"])
        >>> check_choice("optimizer", "adma", ["adam", "sgd"])
        Traceback (most recent call last):
        ...
        leanfit.exceptions.RecipeError: optimizer must be one of adam, sgd; got 'adma'. Did you mean 'adam'?
    """
    options = list(choices)
    if value in options:
        return
    names = [str(c) for c in options]
    raise RecipeError(f"{what} must be one of {', '.join(names)}; got {value!r}.{did_you_mean(value, names)}")
