"""Ternary weights (TWN) for the all-integer method (Zou et al. 2024).

``w_t = sign(w)·[|w| > Δ]`` with ``Δ = 0.7·mean|w|`` per tensor, values in
{−1, 0, +1}, no scale, straight-through gradient. Applied as a
``torch.nn.utils.parametrize`` parametrization, so the float weight stays the
trained parameter (``module.parametrizations.weight.original``) and
``module.weight`` reads the ternary tensor.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from .functional import ternary as _ternary

#: Δ = TWN_RATIO · mean|W|
TWN_RATIO = 0.7


def ternary_weight(w: torch.Tensor) -> torch.Tensor:
    """``sign(w)·[|w| > 0.7·mean|w|]`` ∈ {−1, 0, 1}, straight-through (identity) gradient."""
    return _ternary(w, TWN_RATIO)


class Ternary(nn.Module):
    """Parametrization module: ``weight ↦ ternary_weight(weight)``."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return ternary_weight(w)


def is_ternary(module: nn.Module) -> bool:
    """True if ``module.weight`` is parametrized by :class:`Ternary`."""
    if not parametrize.is_parametrized(module, "weight"):
        return False
    return any(isinstance(p, Ternary) for p in module.parametrizations["weight"])


def apply_ternary(model: nn.Module) -> nn.Module:
    """Ternarize the weight of every Conv2d/Linear except the first Conv2d and the last Linear.

    "First" and "last" follow module registration order
    (``model.modules()``); they stay full precision (the input conv and the
    output layer). Biases are untouched. In place, idempotent; returns
    ``model``.
    """
    mods = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    convs = [m for m in mods if isinstance(m, nn.Conv2d)]
    linears = [m for m in mods if isinstance(m, nn.Linear)]
    keep = set()
    if convs:
        keep.add(id(convs[0]))
    if linears:
        keep.add(id(linears[-1]))
    for m in mods:
        if id(m) in keep or is_ternary(m):
            continue
        parametrize.register_parametrization(m, "weight", Ternary())
    return model


#: Alias of :func:`apply_ternary` (in-place, trailing underscore by torch convention).
ternarize_ = apply_ternary
