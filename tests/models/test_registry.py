"""The family registry: lookup, did-you-mean errors, plug-ins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import leanfit.models as models
from leanfit.exceptions import LeanfitError, RecipeError
from leanfit.models import FAMILIES, Family, LinearFamily, get_family, register_family


def test_builtin_families() -> None:
    assert sorted(FAMILIES) == ["cnn", "hgb", "knn", "linear", "mlp", "rf"]
    for name, cls in FAMILIES.items():
        family = get_family(name)
        assert isinstance(family, cls) and isinstance(family, Family)
        assert family.name == name


def test_unknown_family_message_is_exact() -> None:
    with pytest.raises(RecipeError) as excinfo:
        get_family("mpl")
    assert str(excinfo.value) == (
        "unknown model family 'mpl'; expected one of cnn, hgb, knn, linear, mlp, rf. Did you mean 'mlp'?"
    )
    assert isinstance(excinfo.value, ValueError) and isinstance(excinfo.value, LeanfitError)


def test_unknown_family_without_a_close_match() -> None:
    with pytest.raises(RecipeError) as excinfo:
        get_family("xgboost")
    assert (
        str(excinfo.value)
        == "unknown model family 'xgboost'; expected one of cnn, hgb, knn, linear, mlp, rf."
    )


@pytest.fixture
def clean_registry() -> Iterator[None]:
    before = dict(FAMILIES)
    yield
    FAMILIES.clear()
    FAMILIES.update(before)


@pytest.mark.usefixtures("clean_registry")
def test_register_a_plugin_family() -> None:
    @register_family
    class Ridge2(LinearFamily):
        name = "ridge2"

    assert isinstance(get_family("ridge2"), Ridge2)
    with pytest.raises(RecipeError, match="Did you mean 'ridge2'"):
        get_family("ridge3")


@pytest.mark.usefixtures("clean_registry")
def test_register_refuses_clashes_and_non_families() -> None:
    class Other(LinearFamily):
        name = "linear"

    with pytest.raises(ValueError, match="model family 'linear' is already registered \\(LinearFamily\\)"):
        register_family(Other)
    register_family(Other, replace=True)
    assert isinstance(get_family("linear"), Other)
    with pytest.raises(TypeError, match="register_family expects a Family subclass"):
        register_family(int)  # type: ignore[arg-type]

    class Half(Family):
        name = "half"

    with pytest.raises(TypeError, match="Half does not implement build, defaults, grid, space"):
        register_family(Half)


def test_everything_in_all_is_importable() -> None:
    for name in models.__all__:
        assert hasattr(models, name)
