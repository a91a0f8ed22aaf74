"""Accuracy-aware selection of a deployment candidate: tolerance, budget, Pareto front.

The rule, for candidates scored on the validation split and benchmarked at the target:

1. A candidate qualifies when its metric drop against its reference (the original, or for
   retrained candidates the original's configuration fitted on the same rows) is within the
   tolerance, and it is neither slower at the target (batch size, threads) nor larger on
   disk than the original, and it is deployable (reference fits and controls are not).
2. It must also win: at least ``min_gain`` (5%) better than the original on the objective
   (latency or size lower, throughput higher); a smaller gain is measurement noise.
3. Without a budget the best on the objective wins; candidates within ``min_gain`` of the
   best count as tied and the most accurate of them wins. With a budget the most accurate
   qualifying candidate that fits it wins (the original too, if it fits and is the most
   accurate).
4. If nothing qualifies the original is kept, and every candidate's reason says which rule
   it missed and by how much.

Example:
    >>> rows = [Scored("original", 0.95, 0.95, 100.0, 1e4, 4000), Scored("q", 0.949, 0.95, 40.0, 2.5e4, 1000)]
    >>> select(rows, tolerance=0.01).chosen
    'q'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Scored", "Selection", "pareto_front", "resolve_tolerance", "select"]

MIN_GAIN = 0.05
_EPS = 1e-12


@dataclass
class Scored:
    """What selection needs to know of one candidate.

    Attributes:
        name: the candidate's name; ``"original"`` is the fp32 model.
        score: validation metric.
        reference: validation metric of the model the drop is measured against.
        latency_us: p50 latency at the target batch size and threads.
        throughput: rows/s at the target.
        size_bytes: graph size on disk.
        eligible: False for references and controls (reported, never deployed).
        why_not: a reason fixed before selection (e.g. "distillation did not beat plain training").
    """

    name: str
    score: float
    reference: float
    latency_us: float
    throughput: float
    size_bytes: int
    eligible: bool = True
    why_not: str = ""


@dataclass
class Selection:
    """The outcome: the chosen name, each candidate's status and reason, and the Pareto front."""

    chosen: str
    status: dict[str, str] = field(default_factory=dict)
    reason: dict[str, str] = field(default_factory=dict)
    drop: dict[str, float] = field(default_factory=dict)
    pareto: set[str] = field(default_factory=set)
    tolerance: float = 0.0


def resolve_tolerance(tolerance: float | str, reference: float) -> float:
    """An absolute allowed drop from ``0.01`` or ``"1%"`` (of the reference metric's magnitude).

    Example:
        >>> resolve_tolerance("2%", 0.5), resolve_tolerance(0.01, 0.5)
        (0.01, 0.01)
    """
    if isinstance(tolerance, str):
        match = re.fullmatch(r"\s*([0-9.]+)\s*%\s*", tolerance)
        if match is None:
            raise ValueError(f"tolerance {tolerance!r} is neither a number nor a percentage like '1%'")
        return float(match.group(1)) / 100.0 * abs(reference)
    return float(tolerance)


def _drop(row: Scored, maximize: bool) -> float:
    return (row.reference - row.score) if maximize else (row.score - row.reference)


def _objective_value(row: Scored, objective: str) -> float:
    """Lower is better for every objective (throughput is negated)."""
    if objective == "latency":
        return row.latency_us
    if objective == "size":
        return float(row.size_bytes)
    if objective == "throughput":
        return -row.throughput
    raise ValueError(f"objective must be latency, size or throughput; got {objective!r}")


def pareto_front(rows: Sequence[Scored], *, maximize: bool = True) -> set[str]:
    """Names of the rows no other row beats on metric, latency and size at once.

    Example:
        >>> a, b = Scored("a", 0.9, 0.9, 10.0, 1.0, 100), Scored("b", 0.8, 0.9, 20.0, 1.0, 200)
        >>> pareto_front([a, b])
        {'a'}
    """

    def key(r: Scored) -> tuple[float, float, float]:
        return (-r.score if maximize else r.score, r.latency_us, float(r.size_bytes))

    front = set()
    for r in rows:
        kr = key(r)
        dominated = any(
            all(a <= b for a, b in zip(key(o), kr, strict=True)) and key(o) != kr for o in rows if o is not r
        )
        if not dominated:
            front.add(r.name)
    return front


def select(
    rows: Sequence[Scored],
    *,
    tolerance: float,
    objective: str = "latency",
    budget: Mapping[str, float] | None = None,
    maximize: bool = True,
    original: str = "original",
    min_gain: float = MIN_GAIN,
) -> Selection:
    """Choose the deployment candidate (see the module docstring for the rule).

    Args:
        rows: every candidate, the original included.
        tolerance: the largest allowed drop (absolute; see :func:`resolve_tolerance`).
        objective: ``latency``, ``size`` or ``throughput`` at the target.
        budget: optional ``latency_us`` and/or ``size_kb`` limits.
        maximize: whether a larger metric is better.
        original: the original's name.
        min_gain: the smallest relative gain on the objective that counts.
    """
    by_name = {r.name: r for r in rows}
    if original not in by_name:
        raise ValueError(f"the candidates must include the original {original!r}")
    base = by_name[original]
    budget = dict(budget or {})
    out = Selection(chosen=original, tolerance=tolerance)
    out.pareto = pareto_front([r for r in rows if r.eligible], maximize=maximize)
    qualified: list[Scored] = []
    for r in rows:
        out.drop[r.name] = round(_drop(r, maximize), 6)
        if r.name == original:
            continue
        reasons = _misses(r, base, tolerance, objective, 0.0 if budget else min_gain, maximize)
        if reasons:
            out.status[r.name] = (
                "rejected" if r.eligible else ("reference" if "reference" in r.why_not else "control")
            )
            out.reason[r.name] = "; ".join(reasons)
        else:
            qualified.append(r)
    if budget:
        fits = []
        for r in [base, *qualified]:
            miss = _over_budget(r, budget)
            if miss:
                out.status[r.name], out.reason[r.name] = "rejected", miss
            else:
                fits.append(r)
        # The most accurate that fits; equal scores go to the better objective.
        winner = min(
            fits, key=lambda r: (-_signed(r.score, maximize), _objective_value(r, objective)), default=base
        )
    elif qualified:
        best = min(_objective_value(r, objective) for r in qualified)
        band = [r for r in qualified if _objective_value(r, objective) <= best + abs(best) * min_gain]
        winner = max(band, key=lambda r: (_signed(r.score, maximize), -_objective_value(r, objective)))
    else:
        winner = base
    out.chosen = winner.name
    for r in qualified:
        if r.name != winner.name and r.name not in out.reason:
            out.status[r.name] = "kept"
            out.reason[r.name] = _runner_up(r, winner, objective, maximize)
    out.status[winner.name] = "chosen"
    if winner.name != original:
        out.reason[winner.name] = _why_chosen(winner, base, objective, budget)
        over = _over_budget(base, budget) if budget else ""
        out.status[original] = "kept"
        out.reason[original] = f"{winner.name} wins" + (
            " within the budget" if budget else f" on {objective}"
        )
        out.reason[original] += f"; the original is {over}" if over else ""
    else:
        over = _over_budget(base, budget) if budget else ""
        out.reason[original] = (
            "no candidate qualified; the original is kept"
            + (f" although it misses the budget ({over})" if over else "")
            if not qualified or over
            else "the most accurate within the budget"
        )
    return out


def _signed(score: float, maximize: bool) -> float:
    return score if maximize else -score


def _misses(
    r: Scored, base: Scored, tolerance: float, objective: str, min_gain: float, maximize: bool
) -> list[str]:
    reasons = []
    if not r.eligible:
        reasons.append(r.why_not or "not deployable")
        return reasons
    if r.why_not:
        reasons.append(r.why_not)
    drop = _drop(r, maximize)
    if not math.isfinite(drop) or not math.isfinite(r.latency_us):
        reasons.append("not measured (no validation score or no latency)")
        return reasons
    if drop > tolerance + _EPS:
        reasons.append(
            f"metric drop {drop:.4f} > tolerance {tolerance:.4f} (missed by {drop - tolerance:.4f})"
        )
    if r.latency_us > base.latency_us:
        reasons.append(
            f"slower than the original at the target: {r.latency_us:,.1f} µs vs {base.latency_us:,.1f} µs "
            f"(+{(r.latency_us / base.latency_us - 1) * 100:.0f}%)"
        )
    if r.size_bytes > base.size_bytes:
        reasons.append(
            f"larger than the original: {r.size_bytes / 1024:,.1f} KiB vs {base.size_bytes / 1024:,.1f} KiB"
        )
    mine, theirs = _objective_value(r, objective), _objective_value(base, objective)
    if not reasons and mine > theirs - abs(theirs) * min_gain:
        gain = (theirs - mine) / abs(theirs) * 100 if theirs else 0.0
        reasons.append(
            f"{objective} gain {gain:.1f}% is below the {min_gain * 100:.0f}% that counts as a win"
        )
    return reasons


def _over_budget(r: Scored, budget: Mapping[str, float]) -> str:
    misses = []
    if "latency_us" in budget and r.latency_us > budget["latency_us"]:
        misses.append(
            f"over the latency budget: {r.latency_us:,.1f} µs > {budget['latency_us']:,.1f} µs "
            f"(by {r.latency_us - budget['latency_us']:,.1f} µs)"
        )
    if "size_kb" in budget and r.size_bytes / 1024 > budget["size_kb"]:
        misses.append(
            f"over the size budget: {r.size_bytes / 1024:,.1f} KiB > {budget['size_kb']:,.1f} KiB "
            f"(by {r.size_bytes / 1024 - budget['size_kb']:,.1f} KiB)"
        )
    return "; ".join(misses)


def _runner_up(r: Scored, winner: Scored, objective: str, maximize: bool) -> str:
    return (
        f"qualified, but {winner.name} is better "
        f"({objective} {abs(_objective_value(r, objective)):,.1f} vs {abs(_objective_value(winner, objective)):,.1f}, "
        f"metric {r.score:.4f} vs {winner.score:.4f})"
    )


def _why_chosen(r: Scored, base: Scored, objective: str, budget: Mapping[str, float]) -> str:
    ratio = {
        "latency": base.latency_us / max(r.latency_us, _EPS),
        "size": base.size_bytes / max(r.size_bytes, 1),
        "throughput": r.throughput / max(base.throughput, _EPS),
    }
    text = (
        f"{ratio[objective]:.2f}x better {objective} than the original "
        f"({base.latency_us / max(r.latency_us, _EPS):.2f}x latency, {base.size_bytes / max(r.size_bytes, 1):.2f}x smaller)"
    )
    return text + (", the most accurate that fits the budget" if budget else "")
