"""The mlp family and its estimators: structure, per-epoch reports, pruning, seeds, optimizers."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch
from sklearn.base import clone
from torch import nn

from leanfit.exceptions import DataError, RecipeError
from leanfit.models import MLPClassifier, MLPRegressor, get_family
from leanfit.models.mlp import make_mlp

FAST = {"hidden": 16, "depth": 1, "max_epochs": 8, "batch_size": 32, "device": "cpu"}


def test_module_is_a_plain_sequential(classification_data) -> None:
    clf = MLPClassifier(hidden=16, depth=3, dropout=0.2, max_epochs=1, device="cpu")
    clf.fit(classification_data.X_train, classification_data.y_train)
    module = clf.module_
    assert type(module) is nn.Sequential
    assert [type(m).__name__ for m in module] == ["Linear", "ReLU", "Dropout"] * 3 + ["Linear"]
    assert module[0].in_features == 8 and module[-1].out_features == 3
    assert [type(m).__name__ for m in make_mlp(4, 1, hidden=8, depth=2, dropout=0.0)] == [
        "Linear",
        "ReLU",
        "Linear",
        "ReLU",
        "Linear",
    ]


def test_learned_state_and_sklearn_contract(classification_data) -> None:
    clf = MLPClassifier(**FAST)
    assert not hasattr(clf, "module_")
    assert clf.fit(classification_data.X_train, classification_data.y_train) is clf
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.n_features_in_ == 8 and clf.device_ == "cpu"
    assert len(clf.history_) <= 8 and {"epoch", "train_loss", "valid_loss", "lr"} <= set(clf.history_[0])
    assert clone(clf).get_params() == clf.get_params()
    assert not hasattr(clone(clf), "module_")
    assert 0.0 <= clf.score(classification_data.X_test, classification_data.y_test) <= 1.0


def test_on_epoch_gets_every_epoch_with_validation_output(classification_data, regression_data) -> None:
    family = get_family("mlp")
    for task, data, shape in [
        ("classification", classification_data, (60, 3)),
        ("regression", regression_data, (60,)),
    ]:
        calls: list[tuple[int, tuple[int, ...]]] = []
        model = family.build(
            {"hidden": 16, "max_epochs": 6, "patience": 20},
            task=task,
            n_features=data.n_features,
            n_classes=3,
            seed=0,
            device="cpu",
        )
        family.fit(
            model,
            data.X_train,
            data.y_train,
            X_valid=data.X_test,
            y_valid=data.y_test,
            on_epoch=lambda epoch, out, calls=calls: calls.append((epoch, out.shape)),
        )
        assert calls == [(epoch, shape) for epoch in range(6)]


def test_on_epoch_output_is_what_predict_output_gives(classification_data) -> None:
    outputs: list[np.ndarray] = []
    clf = MLPClassifier(**{**FAST, "patience": None})
    clf.fit(
        classification_data.X_train,
        classification_data.y_train,
        X_valid=classification_data.X_test,
        y_valid=classification_data.y_test,
        on_epoch=lambda epoch, out: outputs.append(out),
    )
    final = get_family("mlp").predict_output(clf, classification_data.X_test)
    np.testing.assert_allclose(outputs[-1], final, atol=1e-6)


def test_trial_pruned_propagates(classification_data) -> None:
    def prune_at_two(epoch: int, output: np.ndarray) -> None:
        if epoch == 2:
            raise optuna.TrialPruned()

    clf = MLPClassifier(**FAST)
    with pytest.raises(optuna.TrialPruned):
        clf.fit(
            classification_data.X_train,
            classification_data.y_train,
            X_valid=classification_data.X_test,
            y_valid=classification_data.y_test,
            on_epoch=prune_at_two,
        )


def test_a_real_pruner_stops_trials(classification_data) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    family = get_family("mlp")
    data = classification_data
    epochs_run: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        model = family.build(
            {"hidden": 16, "max_epochs": 10}, task="classification", n_features=8, n_classes=3, seed=0
        )

        def report(epoch: int, proba: np.ndarray) -> None:
            epochs_run.append(epoch)
            accuracy = float(np.mean(proba.argmax(axis=1) == data.y_test))
            trial.report(accuracy, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        family.fit(
            model, data.X_train, data.y_train, X_valid=data.X_test, y_valid=data.y_test, on_epoch=report
        )
        return 0.0

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.01))
    study.optimize(objective, n_trials=2)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    assert epochs_run == [0, 0]


def test_early_stopping_restores_the_best_epoch(classification_data) -> None:
    clf = MLPClassifier(hidden=64, depth=2, lr=0.05, max_epochs=60, patience=3, device="cpu")
    clf.fit(
        classification_data.X_train,
        classification_data.y_train,
        X_valid=classification_data.X_test,
        y_valid=classification_data.y_test,
    )
    losses = [h["valid_loss"] for h in clf.history_]
    assert len(losses) < 60  # stopped early
    assert len(losses) - 1 - clf.best_epoch_ == 3
    assert clf.best_epoch_ == int(np.argmin(losses))
    proba = clf.predict_proba(classification_data.X_test)
    restored = torch.nn.functional.nll_loss(
        torch.log(torch.from_numpy(proba)), torch.from_numpy(classification_data.y_test)
    ).item()
    assert restored == pytest.approx(min(losses), rel=1e-4)


def test_internal_holdout_when_no_validation_data(classification_data) -> None:
    clf = MLPClassifier(**FAST, validation_fraction=0.2)
    clf.fit(classification_data.X_train, classification_data.y_train)
    assert "valid_loss" in clf.history_[0]
    no_valid = MLPClassifier(**FAST, validation_fraction=0.0).fit(
        classification_data.X_train, classification_data.y_train
    )
    assert "valid_loss" not in no_valid.history_[0] and len(no_valid.history_) == 8
    # Too few held-out rows to stratify over 3 classes: a plain random split instead.
    small = MLPClassifier(**FAST).fit(classification_data.X_train[:25], classification_data.y_train[:25])
    assert "valid_loss" in small.history_[0]


def test_same_seed_same_weights_and_predictions(regression_data) -> None:
    def fit(seed: int) -> MLPRegressor:
        return MLPRegressor(**FAST, dropout=0.2, random_state=seed).fit(
            regression_data.X_train, regression_data.y_train
        )

    a, b, c = fit(1), fit(1), fit(2)
    for (name, wa), wb in zip(a.module_.state_dict().items(), b.module_.state_dict().values(), strict=True):
        assert torch.equal(wa, wb), name
    np.testing.assert_array_equal(a.predict(regression_data.X_test), b.predict(regression_data.X_test))
    assert not np.array_equal(a.predict(regression_data.X_test), c.predict(regression_data.X_test))


def test_training_leaves_the_global_rng_alone(regression_data) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    MLPRegressor(**FAST).fit(regression_data.X_train, regression_data.y_train)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
@pytest.mark.parametrize("lr_schedule", ["none", "cosine", "plateau"])
def test_every_optimizer_and_schedule_learns(optimizer: str, lr_schedule: str, binary_data) -> None:
    lr = 0.05 if optimizer == "sgd" else 3e-3
    clf = MLPClassifier(
        hidden=16,
        depth=1,
        optimizer=optimizer,
        lr=lr,
        nesterov=optimizer == "sgd",
        lr_schedule=lr_schedule,
        max_epochs=10,
        patience=None,
        device="cpu",
    )
    clf.fit(binary_data.X_train, binary_data.y_train)
    losses = [h["train_loss"] for h in clf.history_]
    assert losses[-1] < losses[0]
    assert clf.score(binary_data.X_test, binary_data.y_test) > 0.7
    if lr_schedule == "cosine":
        assert clf.history_[-1]["lr"] < clf.history_[0]["lr"]


def test_regressor_module_predicts_in_target_units(regression_data) -> None:
    reg = MLPRegressor(**FAST, lr=1e-2, validation_fraction=0.0)
    reg.fit(regression_data.X_train, regression_data.y_train)
    with torch.no_grad():
        raw = reg.module_(torch.from_numpy(regression_data.X_test))[:, 0].numpy()
    np.testing.assert_allclose(raw, reg.predict(regression_data.X_test), rtol=1e-6)
    assert abs(reg.target_mean_ - regression_data.y_train.mean()) < 1e-9
    assert reg.score(regression_data.X_test, regression_data.y_test) > 0.8


def test_input_errors(classification_data) -> None:
    X = classification_data.X_train.copy()
    X[0, 2] = np.nan
    with pytest.raises(DataError, match=r"X has NaN or infinite values in feature columns \[2\]"):
        MLPClassifier(**FAST).fit(X, classification_data.y_train)
    with pytest.raises(DataError, match="classification targets must be int64 class codes"):
        MLPClassifier(**FAST).fit(classification_data.X_train, classification_data.y_train + 0.5)
    clf = MLPClassifier(**FAST).fit(classification_data.X_train, classification_data.y_train)
    with pytest.raises(DataError, match="X has 7 features, but the model was fitted with 8"):
        clf.predict(classification_data.X_test[:, :7])


def test_bad_options_are_recipe_errors(classification_data) -> None:
    data = classification_data
    with pytest.raises(RecipeError, match="optimizer must be one of sgd, adam, adamw, rmsprop; got 'adm'"):
        MLPClassifier(**{**FAST, "optimizer": "adm"}).fit(data.X_train, data.y_train)
    with pytest.raises(RecipeError, match="activation must be one of relu; got 'gelu'"):
        MLPClassifier(**FAST, activation="gelu").fit(data.X_train, data.y_train)
    with pytest.raises(RecipeError, match="lr_schedule must be one of none, cosine, plateau; got 'step'"):
        MLPClassifier(**FAST, lr_schedule="step").fit(data.X_train, data.y_train)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error(classification_data) -> None:
    with pytest.raises(
        RecipeError, match="device 'cuda' was asked for but torch.cuda.is_available\\(\\) is False"
    ):
        MLPClassifier(**{**FAST, "device": "cuda"}).fit(
            classification_data.X_train, classification_data.y_train
        )


def test_auto_device_resolves(classification_data) -> None:
    clf = MLPClassifier(**{**FAST, "device": "auto", "max_epochs": 1})
    clf.fit(classification_data.X_train, classification_data.y_train)
    assert clf.device_ == ("cuda" if torch.cuda.is_available() else "cpu")


def test_on_epoch_needs_validation_data(classification_data) -> None:
    with pytest.raises(
        ValueError, match="on_epoch reports outputs on X_valid, so fit needs X_valid and y_valid"
    ):
        MLPClassifier(**FAST).fit(
            classification_data.X_train, classification_data.y_train, on_epoch=lambda epoch, out: None
        )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_trains_on_cuda_and_exports_from_cpu(classification_data) -> None:
    import onnxruntime as ort

    data = classification_data
    family = get_family("mlp")
    clf = family.build(
        {"hidden": 32, "max_epochs": 5}, task="classification", n_features=8, n_classes=3, seed=0
    )
    family.fit(clf, data.X_train, data.y_train, X_valid=data.X_test, y_valid=data.y_test)
    assert clf.device_ == "cuda" and next(clf.module_.parameters()).is_cuda
    session = ort.InferenceSession(
        family.to_onnx(clf, 8).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    label, proba = session.run(None, {"features": data.X_test})
    np.testing.assert_allclose(proba, clf.predict_proba(data.X_test), atol=1e-4)
    assert next(clf.module_.parameters()).is_cuda  # export copied the module, it did not move it
