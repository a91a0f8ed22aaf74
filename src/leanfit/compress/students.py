"""Distilled candidates: a small search over MLP students, each checked against plain training.

Example:
    >>> cands = distilled(ctx, teacher, reference_score=0.95)   # doctest: +SKIP
    >>> [c.name for c in cands][:2]                             # doctest: +SKIP
    ['distill-h32x1', 'plain-h32x1']
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .candidates import Candidate, Context, combos, timed, torch_candidate
from .distill import Distiller
from .surgery import count_parameters

__all__ = ["STUDENTS", "distilled"]

#: Student architectures (hidden width, depth) the distillation search tries.
STUDENTS: tuple[tuple[int, int], ...] = ((16, 1), (32, 1), (64, 1), (128, 1), (64, 2))


def _student_settings(n_rows: int) -> dict[str, Any]:
    """Training settings that keep distillation within minutes on large data."""
    big = n_rows > 10_000
    return {
        "batch_size": 512 if big else 128,
        "max_epochs": 40 if big else 80,
        "patience": 5 if big else 8,
        "max_rows": 60_000,
    }


def distilled(
    ctx: Context,
    teacher: Callable[[np.ndarray], np.ndarray],
    *,
    students: Sequence[tuple[int, int]] = STUDENTS,
    temperature: float = 2.0,
    alpha: float = 0.5,
    reference_score: float,
) -> list[Candidate]:
    """Distill into small MLP students; keep a student only if it beats plain training of itself.

    The search distills every architecture in ``students`` and picks two: the smallest within
    the tolerance of the reference (else the most accurate) and the most accurate. Each pick
    is trained plainly too (the control); both are reported, and the distilled one carries
    the verdict.
    """
    settings = _student_settings(len(ctx.X_train))
    search: list[dict[str, Any]] = []
    fitted: dict[tuple[int, int], tuple[Distiller, float, float]] = {}
    for hidden, depth in students:
        student = Distiller(
            hidden=hidden, depth=depth, temperature=temperature, alpha=alpha, seed=ctx.seed, **settings
        )
        d, seconds = timed(
            functools.partial(
                student.fit, teacher, ctx.X_train, ctx.y_train, task=ctx.task, n_classes=ctx.n_classes
            )
        )
        valid = ctx.score_output(_predict(d.student_, ctx))
        fitted[hidden, depth] = (d, valid, seconds)
        search.append({"hidden": hidden, "depth": depth, "valid": round(valid, 6), "seconds": seconds})
    ctx.notes["distill_search"] = search

    def size(arch: tuple[int, int]) -> int:
        return count_parameters(fitted[arch][0].student_.module_)

    within = [a for a in fitted if ctx.drop(reference_score, fitted[a][1]) <= ctx.tolerance]
    most_accurate = max(fitted, key=lambda a: fitted[a][1] if ctx.maximize else -fitted[a][1])
    picks = list(dict.fromkeys([min(within, key=size) if within else most_accurate, most_accurate]))
    out: list[Candidate] = []
    for arch in picks:
        d, valid, seconds = fitted[arch]
        plain = Distiller(hidden=arch[0], depth=arch[1], alpha=0.0, augment=0.0, seed=ctx.seed, **settings)
        control, c_seconds = timed(
            functools.partial(
                plain.fit, None, ctx.X_train, ctx.y_train, task=ctx.task, n_classes=ctx.n_classes
            )
        )
        c_valid = ctx.score_output(_predict(control.student_, ctx))
        wins = (valid > c_valid) if ctx.maximize else (valid < c_valid)
        name = f"distill-h{arch[0]}x{arch[1]}"
        params = {**d.get_params(), "rows": d.rows_, "control_valid": round(c_valid, 6)}
        verdict = (
            ""
            if wins
            else f"distillation did not beat plain training of the same student ({valid:.4f} vs {c_valid:.4f})"
        )
        cand = torch_candidate(ctx, name, "distill", params, d.student_, seconds, why_not=verdict)
        ctrl = torch_candidate(
            ctx, f"plain-h{arch[0]}x{arch[1]}", "distill", control.get_params(), control.student_, c_seconds
        )
        ctrl.method, ctrl.eligible = "control", False
        ctrl.why_not = f"control: plain training of {name}'s student, no teacher"
        out += [cand, ctrl]
        if wins:
            out += combos(ctx, cand)
    return out


def _predict(estimator: Any, ctx: Context) -> np.ndarray:
    from ..models import get_family

    return np.asarray(get_family("mlp").predict_output(estimator, ctx.X_valid), dtype=np.float64)
