"""Structured pruning: surgery is exact (rebuilt == masked), the network shrinks, fine-tuning keeps it useful."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from leanfit.compress.prune import MagnitudePruner, StructuredPruner, unit_importance
from leanfit.compress.surgery import AddConstant, count_parameters, mask, prunable_units, shrink
from leanfit.models import MLPRegressor
from leanfit.models.cnn import make_cnn
from leanfit.models.mlp import make_mlp

from .conftest import Tiny


def _noisy(net: nn.Sequential, seed: int) -> nn.Sequential:
    """Random weights with positive biases, so removed units emit a non-zero constant."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
        for m in net:
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.bias.abs_().add_(0.1)
    return net.eval()


def _random_keep(net: nn.Sequential, share: float, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    keep = []
    for unit in prunable_units(net):
        k = torch.rand(unit.width, generator=gen) < share
        k[0] = True
        keep.append(k)
    return keep


NETWORKS = {
    "mlp": (lambda: make_mlp(10, 3, hidden=24, depth=3, dropout=0.2), 10),
    "cnn-pooled": (lambda: make_cnn((8, 8), 4, channels=6, dropout=0.1), 64),
    "cnn-4x4": (lambda: make_cnn((4, 4), 2, channels=4, dropout=0.0), 16),
}


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_rebuilt_network_equals_the_masked_one(kind: str) -> None:
    build, n_features = NETWORKS[kind]
    net = _noisy(build(), seed=1)
    x = torch.randn(16, n_features)
    keep = _random_keep(net, 0.5, seed=2)
    small = shrink(net, keep)
    with torch.no_grad():
        torch.testing.assert_close(small(x), mask(net, keep)(x), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(small(x), net(x), atol=1e-3)  # pruning did change the function
    assert count_parameters(small) < count_parameters(net)
    # A second round on the already-shrunk network (with any AddConstant maps) is exact too.
    keep2 = _random_keep(small, 0.6, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(shrink(small, keep2)(x), mask(small, keep2)(x), atol=1e-5, rtol=1e-5)


def test_conv_with_zero_padding_gets_a_position_bias_map() -> None:
    """A removed channel's constant reaches the next padded conv differently at the border."""
    net = _noisy(make_cnn((4, 4), 2, channels=4, dropout=0.0), seed=0)
    keep = [torch.tensor([True, False, True, False]), torch.ones(8, dtype=torch.bool)]
    small = shrink(net, keep)
    assert any(isinstance(m, AddConstant) for m in small)
    x = torch.randn(4, 16)
    with torch.no_grad():
        torch.testing.assert_close(small(x), mask(net, keep)(x), atol=1e-5, rtol=1e-5)


def test_dropping_a_unit_without_folding_its_bias_would_differ() -> None:
    """Why the fold exists: deleting rows and columns alone changes the outputs."""
    net = _noisy(make_mlp(6, 2, hidden=8, depth=1, dropout=0.0), seed=4)
    keep = [torch.tensor([True, False] * 4)]
    naive = copy.deepcopy(net)
    with torch.no_grad():
        naive[2].weight[:, ~keep[0]] = 0.0  # the unit's output never reaches the head
    x = torch.randn(8, 6)
    with torch.no_grad():
        assert not torch.allclose(naive(x), mask(net, keep)(x), atol=1e-4)
        torch.testing.assert_close(shrink(net, keep)(x), mask(net, keep)(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", ["l1", "l2", "taylor"])
def test_importance_has_one_score_per_unit(method: str, tiny: Tiny) -> None:
    scores = unit_importance(tiny.model, tiny.model.module_, tiny.X, tiny.y, method=method)
    assert [s.shape[0] for s in scores] == [32, 32]
    assert all(bool((s >= 0).all()) for s in scores)


def test_structured_pruning_shrinks_and_stays_accurate(tiny: Tiny) -> None:
    before = count_parameters(tiny.model.module_)
    pruner = StructuredPruner(sparsities=(0.5, 0.75), steps=2, epochs=15, seed=0).fit(
        tiny.model, tiny.X, tiny.y
    )
    assert [s.sparsity for s in pruner.snapshots_] == [0.5, 0.75]
    assert [s.widths for s in pruner.snapshots_] == [[16, 16], [8, 8]]
    assert pruner.snapshots_[0].parameters < before / 2 and pruner.snapshots_[1].parameters < before / 6
    base = np.mean(tiny.model.predict(tiny.X_valid) == tiny.y_valid)
    half = np.mean(pruner.snapshots_[0].estimator.predict(tiny.X_valid) == tiny.y_valid)
    assert half >= base - 0.08
    assert count_parameters(tiny.model.module_) == before  # the original is untouched


def test_pruning_a_regressor_keeps_target_units() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = 100 + 20 * X[:, 0] - 10 * X[:, 1]
    reg = MLPRegressor(hidden=32, depth=1, dropout=0.0, max_epochs=40, device="cpu").fit(X, y)
    pruned = StructuredPruner(sparsities=(0.5,), steps=1, epochs=15).fit(reg, X, y).snapshots_[0].estimator
    r2 = 1 - np.mean((pruned.predict(X) - y) ** 2) / np.var(y)
    assert r2 > 0.9


def test_magnitude_pruning_zeroes_weights_but_stays_dense(tiny: Tiny) -> None:
    pruner = MagnitudePruner(sparsities=(0.8,), epochs=5).fit(tiny.model, tiny.X, tiny.y)
    snap = pruner.snapshots_[0]
    weights = sum(m.weight.numel() for m in snap.estimator.module_ if isinstance(m, nn.Linear))
    zeros = sum(int((m.weight == 0).sum()) for m in snap.estimator.module_ if isinstance(m, nn.Linear))
    assert zeros / weights >= 0.79  # masks held through fine-tuning
    assert snap.parameters == count_parameters(tiny.model.module_)  # nothing removed
