"""Selection on a fake benchmark: tempting candidates beyond tolerance, slower or larger are never chosen."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leanfit.compress.select import Scored, pareto_front, resolve_tolerance, select

ORIGINAL = Scored("original", 0.950, 0.950, latency_us=100.0, throughput=1e4, size_bytes=400_000)


def rows(*extra: Scored) -> list[Scored]:
    return [ORIGINAL, *extra]


def test_the_fastest_candidate_within_tolerance_wins() -> None:
    sel = select(
        rows(
            Scored("fast-but-wrong", 0.900, 0.950, 10.0, 1e5, 100_000),  # 10x faster, 5 points worse
            Scored("faster-but-larger", 0.950, 0.950, 40.0, 2.5e4, 500_000),
            Scored("smaller-but-slower", 0.950, 0.950, 120.0, 8e3, 50_000),
            Scored("good", 0.946, 0.950, 60.0, 1.6e4, 100_000),
            Scored("noise", 0.950, 0.950, 97.0, 1.03e4, 390_000),  # 3% faster: not a win
        ),
        tolerance=0.01,
    )
    assert sel.chosen == "good"
    assert sel.status["fast-but-wrong"] == "rejected"
    assert "missed by 0.0400" in sel.reason["fast-but-wrong"]
    assert "larger than the original" in sel.reason["faster-but-larger"]
    assert "slower than the original" in sel.reason["smaller-but-slower"]
    assert "below the 5% that counts as a win" in sel.reason["noise"]
    assert sel.status["original"] == "kept"


def test_nothing_qualifies_so_the_original_stays_and_says_why() -> None:
    sel = select(rows(Scored("q", 0.92, 0.95, 50.0, 2e4, 100_000)), tolerance=0.01)
    assert sel.chosen == "original"
    assert sel.reason["original"] == "no candidate qualified; the original is kept"
    assert sel.reason["q"] == "metric drop 0.0300 > tolerance 0.0100 (missed by 0.0200)"


def test_budget_picks_the_most_accurate_that_fits() -> None:
    candidates = rows(
        Scored("tiny", 0.944, 0.950, 20.0, 5e4, 30_000),
        Scored("medium", 0.949, 0.950, 45.0, 2.2e4, 90_000),
        Scored("big", 0.951, 0.950, 80.0, 1.2e4, 300_000),
    )
    sel = select(candidates, tolerance=0.01, budget={"latency_us": 50, "size_kb": 200})
    assert sel.chosen == "medium"
    assert "over the latency budget: 80.0 µs > 50.0 µs (by 30.0 µs)" in sel.reason["big"]
    nothing = select(candidates, tolerance=0.01, budget={"latency_us": 5})
    assert nothing.chosen == "original" and "misses the budget" in nothing.reason["original"]


def test_references_and_controls_are_never_deployed() -> None:
    sel = select(
        rows(
            Scored(
                "reference",
                0.95,
                0.95,
                10.0,
                1e5,
                1_000,
                eligible=False,
                why_not="reference: train rows only",
            ),
            Scored("plain-h8x1", 0.95, 0.95, 10.0, 1e5, 1_000, eligible=False, why_not="control: no teacher"),
        ),
        tolerance=0.01,
    )
    assert sel.chosen == "original"
    assert sel.status == {"reference": "reference", "plain-h8x1": "control", "original": "chosen"}


def test_minimised_metrics_and_relative_tolerance() -> None:
    base = Scored("original", 2.0, 2.0, 100.0, 1e4, 1000)  # rmse
    worse = Scored("q", 2.05, 2.0, 50.0, 2e4, 500)  # 2.5% worse
    assert select([base, worse], tolerance=resolve_tolerance("3%", 2.0), maximize=False).chosen == "q"
    assert select([base, worse], tolerance=resolve_tolerance("2%", 2.0), maximize=False).chosen == "original"
    assert resolve_tolerance(0.01, 123.0) == 0.01


def test_size_and_throughput_objectives() -> None:
    small = Scored("small", 0.95, 0.95, 95.0, 1.05e4, 100_000)
    quick = Scored("quick", 0.95, 0.95, 50.0, 2e4, 390_000)
    assert select(rows(small, quick), tolerance=0.01, objective="size").chosen == "small"
    assert select(rows(small, quick), tolerance=0.01, objective="throughput").chosen == "quick"


def test_pareto_front() -> None:
    a = Scored("a", 0.95, 0.95, 10.0, 1.0, 100)
    b = Scored("b", 0.96, 0.95, 20.0, 1.0, 100)  # more accurate, slower: on the front
    c = Scored("c", 0.94, 0.95, 30.0, 1.0, 200)  # beaten by a on everything
    assert pareto_front([a, b, c]) == {"a", "b"}


candidate = st.builds(
    Scored,
    name=st.text("abcdefgh", min_size=3, max_size=6),
    score=st.floats(0.80, 1.0),
    reference=st.just(0.95),
    latency_us=st.floats(1.0, 300.0),
    throughput=st.floats(1e3, 1e6),
    size_bytes=st.integers(1_000, 1_000_000),
    eligible=st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(candidate, max_size=12, unique_by=lambda s: s.name),
    st.sampled_from(["latency", "size", "throughput"]),
)
def test_never_beyond_tolerance_slower_or_larger(cands: list[Scored], objective: str) -> None:
    sel = select([ORIGINAL, *cands], tolerance=0.01, objective=objective)
    chosen = next(c for c in [ORIGINAL, *cands] if c.name == sel.chosen)
    if chosen is not ORIGINAL:
        assert chosen.eligible
        assert ORIGINAL.score - chosen.score <= 0.01 + 1e-9
        assert chosen.latency_us <= ORIGINAL.latency_us and chosen.size_bytes <= ORIGINAL.size_bytes


def test_original_is_required() -> None:
    with pytest.raises(ValueError, match="must include the original"):
        select([Scored("q", 1.0, 1.0, 1.0, 1.0, 1)], tolerance=0.01)
