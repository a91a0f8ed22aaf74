"""Structured surgery on ``nn.Sequential`` networks: remove whole neurons or channels exactly.

A unit (a hidden neuron of a ``Linear``, an output channel of a ``Conv2d``) is removed by
zeroing its incoming weights: the *masked* network. Such a unit still emits a constant,
its bias (through ReLU, pooling and flattening), so deleting it outright would change the
network. :func:`shrink` rebuilds a smaller dense network and folds that constant into the
next layer: into its bias when the contribution is the same at every position (always
for ``Linear``), else into an :class:`AddConstant` map after it (a ``Conv2d`` with zero
padding sees a constant channel differently at the border). The rebuilt network computes
what the masked one computes, up to float rounding.

Layouts handled (those of :func:`~leanfit.models.mlp.make_mlp` and
:func:`~leanfit.models.cnn.make_cnn`)::

    Linear ReLU [Dropout] ... Linear
    Unflatten Conv2d ReLU [MaxPool2d] Conv2d ReLU [MaxPool2d] Flatten [Dropout] Linear

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)).eval()
    >>> keep = [torch.tensor([True, False, True, True, False, True])]
    >>> small = shrink(net, keep)
    >>> x = torch.randn(3, 4)
    >>> bool(torch.allclose(small(x), mask(net, keep)(x), atol=1e-6)), count_parameters(small)
    (True, 30)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["AddConstant", "Unit", "count_parameters", "mask", "prunable_units", "shrink"]

_BETWEEN = (nn.ReLU, nn.Dropout, nn.MaxPool2d, nn.Flatten)


class AddConstant(nn.Module):
    """Add a fixed tensor (e.g. a ``(C, H, W)`` map) to every sample: a bias that varies by position."""

    value: torch.Tensor

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("value", value.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.value  # (B, C, H, W) + (C, H, W)


@dataclass(frozen=True)
class Unit:
    """A prunable layer: its index, the index of the layer that consumes it, and its width."""

    index: int
    consumer: int
    width: int


def _weighted(module: nn.Module) -> bool:
    return isinstance(module, (nn.Linear, nn.Conv2d))


def prunable_units(net: nn.Sequential) -> list[Unit]:
    """Every ``Linear``/``Conv2d`` but the last, with the weighted layer that reads it.

    Raises:
        TypeError: a layer between two weighted layers is not ReLU, Dropout, MaxPool2d,
            Flatten or :class:`AddConstant` (surgery would not be exact).
    """
    layers: list[Any] = list(net)
    weighted = [i for i, m in enumerate(layers) if _weighted(m)]
    units = []
    for here, there in zip(weighted, weighted[1:], strict=False):
        for between in layers[here + 1 : there]:
            if not isinstance(between, (*_BETWEEN, AddConstant)):
                raise TypeError(f"cannot prune across a {type(between).__name__} layer")
        if not isinstance(layers[here + 1 + _has_add(layers, here)], nn.ReLU):
            raise TypeError(f"layer {here} is not followed by ReLU; structured pruning needs it")
        module = layers[here]
        width = module.out_features if isinstance(module, nn.Linear) else module.out_channels
        units.append(Unit(here, there, int(width)))
    return units


def _has_add(layers: list[Any], index: int) -> int:
    return int(index + 1 < len(layers) and isinstance(layers[index + 1], AddConstant))


def count_parameters(net: nn.Module) -> int:
    """Trainable parameters (buffers such as :class:`AddConstant` maps are not counted)."""
    return sum(p.numel() for p in net.parameters())


def _shapes(net: nn.Sequential, n_features: int) -> list[torch.Size]:
    """The output shape (one sample) of every layer."""
    shapes = []
    x = torch.zeros(1, n_features)
    with torch.no_grad():
        for layer in net:
            x = layer(x)
            shapes.append(x.shape[1:])
    return shapes


def _in_features(net: nn.Sequential) -> int:
    first: Any = next(m for m in net if _weighted(m))
    if isinstance(first, nn.Linear):
        return int(first.in_features)
    unflatten: Any = net[0]
    if not isinstance(unflatten, nn.Unflatten):
        raise TypeError("a conv network must start with nn.Unflatten (rows of pixels)")
    return int(torch.Size(unflatten.unflattened_size).numel())


def _check_keep(net: nn.Sequential, keep: Sequence[torch.Tensor]) -> list[Unit]:
    units = prunable_units(net)
    if len(keep) != len(units):
        raise ValueError(f"keep has {len(keep)} masks for {len(units)} prunable layers")
    for unit, k in zip(units, keep, strict=True):
        if k.dtype != torch.bool or k.shape != (unit.width,) or not bool(k.any()):
            raise ValueError(f"layer {unit.index}: keep must be a bool mask of {unit.width} with one True")
    return units


def mask(net: nn.Sequential, keep: Sequence[torch.Tensor]) -> nn.Sequential:
    """A copy of ``net`` whose removed units have all-zero incoming weights (biases kept).

    ``keep[i]`` is the bool mask of units to keep in the ``i``-th prunable layer.
    """
    units = _check_keep(net, keep)
    out = copy.deepcopy(net).eval()
    layers: list[Any] = list(out)
    with torch.no_grad():
        for unit, k in zip(units, keep, strict=True):
            layers[unit.index].weight[~k] = 0.0
    return out


def _constant_input(net: nn.Sequential, unit: Unit, removed: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The removed units' pre-activation (their bias, plus any AddConstant map), other units zero."""
    layers: list[Any] = list(net)
    layer = layers[unit.index]
    x = torch.zeros(1, *shape)
    bias = layer.bias if layer.bias is not None else torch.zeros(unit.width)
    view = (1, -1) + (1,) * (len(shape) - 1)
    full = bias.reshape(view).expand(1, *shape).clone()
    if _has_add(layers, unit.index):
        full = full + layers[unit.index + 1].value.unsqueeze(0)
    x[:, removed] = full[:, removed]
    return x


def shrink(net: nn.Sequential, keep: Sequence[torch.Tensor]) -> nn.Sequential:
    """Rebuild ``net`` without the removed units, folding their constant output into the next layer.

    Args:
        net: the network (in eval mode; it is not changed).
        keep: one bool mask per prunable layer (see :func:`prunable_units`): the units to keep.

    Returns:
        A smaller ``nn.Sequential`` equal to ``mask(net, keep)`` on every input.
    """
    units = _check_keep(net, keep)
    net = copy.deepcopy(net).eval()
    layers: list[Any] = list(net)
    shapes = _shapes(net, _in_features(net))
    kept_in: dict[int, torch.Tensor] = {}  # consumer index -> kept input columns/channels
    fold: dict[int, torch.Tensor] = {}  # consumer index -> added pre-activation (one sample)
    with torch.no_grad():
        for unit, k in zip(units, keep, strict=True):
            removed = ~k
            if bool(removed.any()):
                x = _constant_input(net, unit, removed, shapes[unit.index + _has_add(layers, unit.index)])
                for between in layers[unit.index + 1 + _has_add(layers, unit.index) : unit.consumer]:
                    x = between(x)
                consumer = layers[unit.consumer]
                if isinstance(consumer, nn.Linear):
                    fold[unit.consumer] = nn.functional.linear(x, consumer.weight)[0]  # (out,)
                else:
                    fold[unit.consumer] = consumer._conv_forward(x, consumer.weight, None)[0]  # (C, H, W)
            flat_shape = shapes[unit.consumer - 1]
            if isinstance(layers[unit.consumer], nn.Linear) and len(shapes[unit.index]) > 1:
                # A Flatten sits between a conv and this Linear: keep every column of a kept channel.
                channels = shapes[unit.index][0]
                columns = torch.arange(int(flat_shape.numel())).reshape(channels, -1)
                kept_in[unit.consumer] = columns[k].reshape(-1)
            else:
                kept_in[unit.consumer] = torch.nonzero(k).reshape(-1)
        keep_out = {unit.index: torch.nonzero(k).reshape(-1) for unit, k in zip(units, keep, strict=True)}
        rebuilt: list[nn.Module] = []
        for i, layer in enumerate(layers):
            if isinstance(layer, AddConstant):
                continue  # re-added below, after its layer
            if not _weighted(layer):
                rebuilt.append(layer)
                continue
            rows = keep_out.get(i)
            cols = kept_in.get(i)
            new = _slice(layer, rows, cols)
            extra = fold.get(i)
            existing = layers[i + 1].value if _has_add(layers, i) else None
            if rows is not None:
                extra = extra[rows] if extra is not None else None
                existing = existing[rows] if existing is not None else None
            rebuilt.append(new)
            rebuilt.extend(_add_bias(new, extra, existing))
    return nn.Sequential(*rebuilt).eval()


def _slice(layer: Any, rows: torch.Tensor | None, cols: torch.Tensor | None) -> nn.Module:
    weight = layer.weight.detach()
    bias = layer.bias.detach() if layer.bias is not None else None
    if rows is not None:
        weight = weight[rows]
        bias = bias[rows] if bias is not None else None
    if cols is not None:
        weight = weight[:, cols]
    new: Any
    if isinstance(layer, nn.Linear):
        new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    else:
        conv: Any = layer
        new = nn.Conv2d(
            weight.shape[1],
            weight.shape[0],
            kernel_size=conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            bias=bias is not None,
        )
    new.weight.copy_(weight)
    if bias is not None:
        new.bias.copy_(bias)
    return new


def _add_bias(layer: Any, extra: torch.Tensor | None, existing: torch.Tensor | None) -> list[nn.Module]:
    """Fold ``extra`` (plus an existing position map) into ``layer``'s bias, or return an AddConstant."""
    total = extra
    if existing is not None:
        total = existing if total is None else total + existing
    if total is None:
        return []
    if total.dim() == 1:
        layer.bias.add_(total)
        return []
    per_channel = total.mean(dim=tuple(range(1, total.dim())))
    spread = (total - per_channel.reshape(-1, *([1] * (total.dim() - 1)))).abs().max()
    if float(spread) <= 1e-7 * max(1.0, float(total.abs().max())):
        layer.bias.add_(per_channel)
        return []
    return [AddConstant(total)]
