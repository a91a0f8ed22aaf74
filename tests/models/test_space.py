"""Search spaces: the three types, ``suggest`` on a real in-memory Optuna study, ``check_params``."""

from __future__ import annotations

import optuna
import pytest

from leanfit.exceptions import RecipeError
from leanfit.models import Categorical, Float, Int, active, check_params, get_family, suggest

SPACE = {
    "penalty": Categorical(("l2", "l1", "elasticnet")),
    "C": Float(1e-3, 1e2, log=True),
    "l1_ratio": Float(0.05, 0.95, when=("penalty", "elasticnet")),
    "n": Int(1, 8),
}


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_suggest_honours_when_over_many_trials() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        params = suggest(trial, SPACE, "linear")
        seen.add(params["penalty"])
        assert ("l1_ratio" in params) == (params["penalty"] == "elasticnet")
        # Optuna sees flat prefixed names; values come back without the prefix.
        assert trial.params == {f"linear__{k}": v for k, v in params.items()}
        assert 1e-3 <= params["C"] <= 1e2 and isinstance(params["n"], int)
        study.tell(trial, float(params["C"]))
    assert seen == {"l1", "l2", "elasticnet"}


def test_suggest_with_tpe_and_enqueued_trial() -> None:
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.enqueue_trial({"mlp__penalty": "elasticnet", "mlp__C": 1.0, "mlp__l1_ratio": 0.25, "mlp__n": 3})

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, SPACE, "mlp")
        return float(params["C"])

    study.optimize(objective, n_trials=5)
    assert study.trials[0].params == {
        "mlp__penalty": "elasticnet",
        "mlp__C": 1.0,
        "mlp__l1_ratio": 0.25,
        "mlp__n": 3,
    }


def test_two_families_share_one_study_without_clashing() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    linear = suggest(trial, get_family("linear").space("regression"), "linear")
    hgb = suggest(trial, get_family("hgb").space("regression"), "hgb")
    assert {k.split("__")[0] for k in trial.params} == {"linear", "hgb"}
    assert set(hgb) == set(get_family("hgb").space("regression"))
    assert "alpha" in linear


def test_empty_prefix_suggests_bare_names() -> None:
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    suggest(trial, {"x": Float(0, 1)}, "")
    assert list(trial.params) == ["x"]


def test_when_on_an_unknown_parameter_is_an_error() -> None:
    trial = optuna.create_study().ask()
    with pytest.raises(
        RecipeError, match="parameter 'l1_ratio' depends on 'penaltyy'.*Did you mean 'penalty'"
    ):
        suggest(
            trial,
            {"penalty": Categorical(("l2",)), "l1_ratio": Float(0, 1, when=("penaltyy", "elasticnet"))},
            "x",
        )


def test_nested_conditions_follow_their_parent() -> None:
    space = {
        "optimizer": Categorical(("sgd", "adam")),
        "momentum": Float(0.5, 0.9, when=("optimizer", "sgd")),
    }
    assert list(active(space, {"optimizer": "adam"})) == ["optimizer"]
    assert list(active(space, {"optimizer": "sgd"})) == ["optimizer", "momentum"]


@pytest.mark.parametrize(
    ("dist", "inside", "outside"),
    [
        (Float(0.1, 1.0), [0.1, 0.5, 1, 1.0], [0.0, 2.0, "0.5", float("nan"), True]),
        (Int(1, 3, log=True), [1, 2, 3], [0, 4, 2.0, True]),
        (Categorical((1, "a", None, False)), [1, "a", None, False], [2, "b", True, 1.0]),
    ],
)
def test_contains(dist: Float | Int | Categorical, inside: list[object], outside: list[object]) -> None:
    assert all(dist.contains(v) for v in inside)
    assert not any(dist.contains(v) for v in outside)


def test_invalid_distributions() -> None:
    with pytest.raises(RecipeError, match="a range needs low <= high; got low=2, high=1."):
        Int(2, 1)
    with pytest.raises(RecipeError, match="a log-scaled range needs low > 0; got low=0.0."):
        Float(0.0, 1.0, log=True)
    with pytest.raises(RecipeError, match="Categorical choices must be a non-empty tuple"):
        Categorical(["a", "b"])  # type: ignore[arg-type]
    with pytest.raises(
        RecipeError, match=r"Categorical choices must be None, bool, int, float or str; got \[\(1, 2\)\]"
    ):
        Categorical(((1, 2),))


def test_check_params_messages() -> None:
    check_params(SPACE, {"penalty": "l1", "C": 0.5})
    with pytest.raises(RecipeError) as excinfo:
        check_params(SPACE, {"penalty": "l3"})
    assert str(excinfo.value) == (
        "parameter 'penalty' must lie in Categorical(choices=('l2', 'l1', 'elasticnet'), when=None); "
        "got 'l3'."
    )
    with pytest.raises(RecipeError) as excinfo:
        check_params(SPACE, {"l1ratio": 0.5})
    assert str(excinfo.value) == (
        "unknown parameter 'l1ratio'; expected one of penalty, C, l1_ratio, n. Did you mean 'l1_ratio'?"
    )
    check_params(SPACE, {"C": 1e6}, ranges=False)
    check_params(SPACE, {"max_iter": 10}, extra=("max_iter",))
