"""The ``compress`` section of a recipe: defaults, shorthands, and errors that say how to fix them."""

from __future__ import annotations

import pytest

from leanfit import RecipeError, load_recipe
from leanfit.recipe import CompressConfig

BASE = {"data": {"source": "sklearn:iris"}}


def test_defaults_fill_target_and_leave_budget_empty() -> None:
    assert load_recipe(BASE).compress is None
    cfg = load_recipe({**BASE, "compress": {}}).compress
    assert cfg == CompressConfig()
    assert cfg.methods is None and cfg.tolerance == 0.01
    assert cfg.target == {"batch_size": 1, "threads": 1, "objective": "latency"}
    assert cfg.budget == {}


def test_overrides_reach_nested_keys() -> None:
    cfg = load_recipe(
        BASE, ["compress.tolerance=1.5%", "compress.target.threads=all", "compress.budget.size_kb=300"]
    ).compress
    assert cfg is not None
    assert cfg.tolerance == "1.5%" and cfg.target["threads"] == "all" and cfg.budget == {"size_kb": 300.0}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"methods": ["prun"]},
            "unknown compression method 'prun'; expected one of quantize, prune, distill, magnitude. Did you mean 'prune'?",
        ),
        ({"methods": []}, "name at least one method"),
        (
            {"tolerance": "one percent"},
            "tolerance must be an absolute drop like 0.01 or a relative one like '1%'",
        ),
        ({"tolerance": -0.1}, "tolerance must be a finite number >= 0"),
        (
            {"target": {"batch": 4}},
            "unknown compress.target key 'batch'; expected one of batch_size, threads, objective",
        ),
        (
            {"target": {"objective": "speed"}},
            "unknown target.objective 'speed'; expected one of latency, size, throughput",
        ),
        ({"target": {"threads": 0}}, "target.threads must be a whole number >= 1 or 'all'"),
        ({"target": {"batch_size": 0}}, "target.batch_size must be a whole number >= 1"),
        (
            {"budget": {"latency": 50}},
            "unknown compress.budget key 'latency'; expected one of latency_us, size_kb. Did you mean 'latency_us'?",
        ),
        ({"budget": {"size_kb": -1}}, "budget.size_kb must be a number > 0"),
        ({"tolerence": 0.01}, "unknown key 'compress.tolerence'. Did you mean 'compress.tolerance'?"),
    ],
)
def test_errors_name_the_field_and_the_fix(section: dict, message: str) -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe({**BASE, "compress": section})
    assert message in str(info.value)
