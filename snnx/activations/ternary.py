"""Ternary weights (TWN) for the all-integer method (Zou et al. 2024, §3.2.1).

Forward (Eq. 8): ``W^T = sign(W^F)·[|W^F| > Δ]`` with ``Δ = 0.7·mean|W^F|`` per
tensor (the equation's "0.7 × |W^F|" read as the TWN threshold over the whole
tensor, since a per-element ``|W^F| > 0.7·|W^F|`` would hold for every nonzero
weight), values in {−1, 0, +1}, no scale.

Backward (Eq. 9), a straight-through estimator on the latent full-precision
weight ``W^F``: ``∂L/∂W^F = ∂L/∂W^T`` where ``|W^F| ≤ 1`` and 0 where
``|W^F| > 1`` (``ste="clipped"``, the default). ``ste="identity"`` passes the
gradient everywhere (what the authors' released code does) and is kept as an
option (``train.ternary_ste``).

Applied as a ``torch.nn.utils.parametrize`` parametrization, so the float weight
stays the trained parameter (``module.parametrizations.weight.original``) and
``module.weight`` reads the ternary tensor.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

#: Δ = TWN_RATIO · mean|W| (Zou et al. 2024, Eq. 8)
TWN_RATIO = 0.7
#: |W^F| above which Eq. 9 stops the gradient
STE_LIMIT = 1.0
#: train.ternary_ste choices: Eq. 9 as printed, or the pass-everywhere estimator of the released code
STE_MODES = ("clipped", "identity")


def ternary_weight(w: torch.Tensor, ste: str = "clipped") -> torch.Tensor:
    """``sign(w)·[|w| > 0.7·mean|w|]`` ∈ {−1, 0, 1} with the straight-through gradient of Eq. 9.

    ``ste="clipped"``: gradient 1 where ``|w| ≤ 1``, 0 elsewhere (Eq. 9);
    ``ste="identity"``: gradient 1 everywhere.
    """
    if ste not in STE_MODES:
        raise ValueError(f"ste must be one of {STE_MODES}, got {ste!r}")
    wd = w.detach()
    delta = TWN_RATIO * wd.abs().mean()
    wt = torch.sign(wd) * (wd.abs() > delta).to(wd.dtype)
    passed = w if ste == "identity" else w * (wd.abs() <= STE_LIMIT).to(w.dtype)
    return wt + (passed - passed.detach())


class Ternary(nn.Module):
    """Parametrization module: ``weight ↦ ternary_weight(weight, ste)``."""

    def __init__(self, ste: str = "clipped"):
        super().__init__()
        if ste not in STE_MODES:
            raise ValueError(f"ste must be one of {STE_MODES}, got {ste!r}")
        self.ste = ste

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return ternary_weight(w, self.ste)

    def extra_repr(self) -> str:
        return f"ste={self.ste}"


def is_ternary(module: nn.Module) -> bool:
    """True if ``module.weight`` is parametrized by :class:`Ternary`."""
    if not parametrize.is_parametrized(module, "weight"):
        return False
    return any(isinstance(p, Ternary) for p in module.parametrizations["weight"])


def apply_ternary(model: nn.Module, ste: str = "clipped") -> nn.Module:
    """Ternarize the weight of every Conv2d/Linear except the first Conv2d and the last Linear.

    "First" and "last" follow module registration order
    (``model.modules()``); they stay full precision (the input conv and the
    output layer: "the input layer and output layer are not quantized",
    Zou et al. 2024, §4.1). Biases are untouched. ``ste``: the backward rule
    (see :func:`ternary_weight`). In place, idempotent; returns ``model``.
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
        parametrize.register_parametrization(m, "weight", Ternary(ste))
    return model


#: Alias of :func:`apply_ternary` (in-place, trailing underscore by torch convention).
ternarize_ = apply_ternary
