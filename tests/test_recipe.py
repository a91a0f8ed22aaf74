from __future__ import annotations

from pathlib import Path

import pytest

from leanfit.exceptions import RecipeError
from leanfit.recipe import Recipe, apply_overrides, default_recipe_path, load_recipe


def test_defaults_fill_everything_but_the_source() -> None:
    recipe = load_recipe({"data": {"source": "sklearn:wine"}})
    assert recipe.name == "wine"
    assert recipe.search.sampler == "tpe"
    assert recipe.search.families == ["linear", "hgb", "knn", "mlp"]
    assert recipe.data.cv == "auto"


def test_names_from_files_and_synthetic_sources() -> None:
    assert load_recipe({"data": {"source": "data/churn.csv"}}).name == "churn"
    assert (
        load_recipe({"data": {"source": "synthetic:classification?rows=50"}}).name
        == "synthetic-classification"
    )


def test_bundled_demo_recipe_is_valid() -> None:
    recipe = load_recipe(None)
    assert default_recipe_path().is_file()
    assert recipe.data.source == "sklearn:digits"
    assert recipe.data.image_shape == [8, 8]


def test_misspelt_top_level_key_suggests_the_right_one() -> None:
    with pytest.raises(RecipeError) as err:
        load_recipe({"data": {"source": "x.csv"}, "serch": {}})
    assert "serch: unknown key. Did you mean 'search'?" in str(err.value)


def test_misspelt_nested_key_names_the_field_path() -> None:
    with pytest.raises(RecipeError) as err:
        load_recipe({"data": {"source": "x.csv", "targte": "y"}})
    assert "data.targte: unknown key. Did you mean 'data.target'?" in str(err.value)


def test_unknown_family_and_sampler() -> None:
    with pytest.raises(RecipeError) as err:
        load_recipe({"data": {"source": "x.csv"}, "search": {"families": ["mpl"], "sampler": "tpee"}})
    text = str(err.value)
    assert (
        "search.families: unknown model family 'mpl'; expected one of linear, hgb, rf, knn, mlp, cnn. Did you mean 'mlp'?"
        in text
    )
    assert (
        "search.sampler: unknown sampler 'tpee'; expected one of grid, random, tpe, gp, cmaes. Did you mean 'tpe'?"
        in text
    )


def test_missing_source_and_wrong_type() -> None:
    with pytest.raises(RecipeError, match=r"data: required, but missing"):
        load_recipe({})
    with pytest.raises(RecipeError, match=r"search.trials: Input should be a valid integer.*\(got 'many'\)"):
        load_recipe({"data": {"source": "x.csv"}, "search": {"trials": "many"}})


def test_no_budget_is_refused() -> None:
    with pytest.raises(RecipeError, match="set search.trials, search.timeout or both"):
        load_recipe({"data": {"source": "x.csv"}, "search": {"trials": None, "timeout": None}})


def test_overrides_are_yaml_and_validated() -> None:
    recipe = load_recipe(
        {"data": {"source": "x.csv"}}, ["search.trials=7", "search.families=[knn]", "seed=3"]
    )
    assert (recipe.search.trials, recipe.search.families, recipe.seed) == (7, ["knn"], 3)
    with pytest.raises(RecipeError, match="search.pruner: unknown pruner 'medain'"):
        load_recipe({"data": {"source": "x.csv"}}, ["search.pruner=medain"])
    with pytest.raises(RecipeError, match="is not KEY=VALUE"):
        apply_overrides({}, ["search.trials"])


def test_yaml_file_errors_name_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text("data:\n  source: [unclosed\n", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"r.yaml:\d+: not valid YAML"):
        load_recipe(bad)
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")
    empty = tmp_path / "e.yaml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(RecipeError, match="the recipe is empty"):
        load_recipe(empty)


def test_round_trip_through_model_dump() -> None:
    recipe = load_recipe({"data": {"source": "sklearn:iris"}, "search": {"trials": 3}})
    assert Recipe.model_validate(recipe.model_dump(mode="json")) == recipe
