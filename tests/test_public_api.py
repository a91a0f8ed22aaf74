from __future__ import annotations

import subprocess
import sys

import leanfit


def test_public_api_is_pinned() -> None:
    assert sorted(leanfit.__all__) == sorted(
        [
            "ArtifactError",
            "BackendError",
            "ColumnSpec",
            "DataError",
            "LeanfitError",
            "MissingDependencyError",
            "Predictor",
            "Recipe",
            "RecipeError",
            "RunResult",
            "Search",
            "__version__",
            "load",
            "load_recipe",
            "run",
        ]
    )
    for name in leanfit.__all__:
        assert getattr(leanfit, name) is not None


def test_errors_refine_builtins() -> None:
    assert issubclass(leanfit.RecipeError, ValueError) and issubclass(leanfit.DataError, ValueError)
    assert issubclass(leanfit.ArtifactError, RuntimeError) and issubclass(
        leanfit.MissingDependencyError, ImportError
    )
    assert all(issubclass(e, leanfit.LeanfitError) for e in (leanfit.RecipeError, leanfit.ArtifactError))


def test_import_leanfit_and_load_are_light() -> None:
    code = (
        "import sys, leanfit, leanfit.artifacts\n"
        "heavy = sorted(m for m in ('torch', 'optuna', 'sklearn', 'skl2onnx') if m in sys.modules)\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_unknown_attribute() -> None:
    import pytest

    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        leanfit.nope  # noqa: B018
