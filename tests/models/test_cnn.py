"""The cnn family: image_shape handling, architecture, training through the shared loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leanfit.exceptions import DataError, RecipeError
from leanfit.models import CNNClassifier, get_family
from leanfit.models.cnn import make_cnn


def test_missing_image_shape_message_is_exact() -> None:
    with pytest.raises(RecipeError) as excinfo:
        get_family("cnn").build({}, task="classification", n_features=64, n_classes=10, seed=0)
    assert str(excinfo.value) == "the cnn family needs data.image_shape, e.g. [8, 8] for digits"


def test_image_shape_must_match_the_features() -> None:
    with pytest.raises(RecipeError) as excinfo:
        get_family("cnn").build(
            {}, task="classification", n_features=60, n_classes=10, seed=0, image_shape=(8, 8)
        )
    assert str(excinfo.value) == "data.image_shape [8, 8] has 64 pixels but the data has 60 features."
    with pytest.raises(
        RecipeError, match=r"must be \[height, width\] or \[channels, height, width\]; got \[64\]"
    ):
        get_family("cnn").build(
            {}, task="classification", n_features=64, n_classes=10, seed=0, image_shape=(64,)
        )
    with pytest.raises(DataError, match="image_shape \\[4, 4\\] holds 16 pixels but X has 64 features"):
        CNNClassifier(image_shape=(4, 4), max_epochs=1, device="cpu").fit(
            np.zeros((10, 64)), np.arange(10) % 2
        )


@pytest.mark.parametrize(
    ("shape", "pools", "head_in"),
    [
        ((8, 8), 1, 8 * 2 * 4 * 4),
        ((4, 4), 0, 8 * 2 * 4 * 4),
        ((28, 28), 2, 8 * 2 * 7 * 7),
        ((3, 16, 16), 2, 8 * 2 * 4 * 4),
    ],
)
def test_pooling_only_where_the_image_is_large_enough(
    shape: tuple[int, ...], pools: int, head_in: int
) -> None:
    net = make_cnn(shape, 5, channels=8, dropout=0.0)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net) == pools
    assert net[-1].in_features == head_in
    x = torch.zeros(2, int(np.prod(shape)))  # (B, C*H*W)
    assert net(x).shape == (2, 5)


def test_cnn_learns_digits_and_reports_epochs(digits_data) -> None:
    family = get_family("cnn")
    model = family.build(
        {"channels": 8, "lr": 3e-3, "max_epochs": 5, "patience": 10},
        task="classification",
        n_features=64,
        n_classes=10,
        seed=0,
        image_shape=digits_data.image_shape,
        device="cpu",
    )
    epochs: list[int] = []
    family.fit(
        model,
        digits_data.X_train,
        digits_data.y_train,
        X_valid=digits_data.X_test,
        y_valid=digits_data.y_test,
        on_epoch=lambda epoch, proba: epochs.append(epoch) if proba.shape == (80, 10) else None,
    )
    assert epochs == [0, 1, 2, 3, 4]
    assert model.score(digits_data.X_test, digits_data.y_test) > 0.6
    assert model.image_shape == (8, 8)


def test_cnn_is_seeded(digits_data) -> None:
    def fit() -> np.ndarray:
        clf = CNNClassifier(
            image_shape=(8, 8), channels=4, dropout=0.3, max_epochs=2, device="cpu", random_state=5
        )
        return clf.fit(digits_data.X_train, digits_data.y_train).predict_proba(digits_data.X_test)

    np.testing.assert_array_equal(fit(), fit())
