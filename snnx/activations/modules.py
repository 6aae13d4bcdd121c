"""The snnx activation modules: Clip, QCFS, CSQCFS, Quant."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Activation
from .functional import clip as _clip
from .functional import csqcfs as _csqcfs
from .functional import qcfs as _qcfs
from .functional import GRAD_WINDOWS
from .functional import quant as _quant


def _check_L(L) -> int:
    if isinstance(L, bool) or int(L) != L or int(L) < 1:
        raise ValueError(f"L must be an integer >= 1, got {L!r}")
    return int(L)


def _check_window(window) -> str:
    if window not in GRAD_WINDOWS:
        raise ValueError(f"grad_window must be one of {', '.join(GRAD_WINDOWS)}, got {window!r}")
    return window


def _check_shift(shift) -> float:
    shift = float(shift)
    if not 0.0 <= shift < 1.0:
        raise ValueError(f"shift must lie in [0, 1), got {shift!r}")
    return shift


class Clip(Activation):
    """Deng & Gu threshold ReLU: ``y = clip(x, 0, y_th)``.

    Gradient 1 on the closed interval ``[0, y_th]``, 0 outside (explicit:
    torch's own ``clamp`` backward excludes both ends). While :attr:`relu_warmup` is
    True (the trainer's ReLU warm-up epochs) the forward is plain ReLU.
    ``conversion_threshold()`` is ``y_th`` as a 0-dim tensor; the converter of
    ``convert=shift`` calibrates its own θ_l (≤ y_th) from data.
    """

    shift = 0.0

    def __init__(self, y_th: float = 1.0):
        super().__init__()
        y_th = float(y_th)
        if not y_th > 0 or math.isinf(y_th):
            raise ValueError(f"y_th must be a finite number > 0, got {y_th!r}")
        self.y_th = y_th
        self.relu_warmup = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.relu_warmup:
            return torch.relu(x)
        return _clip(x, self.y_th)

    def conversion_threshold(self) -> torch.Tensor:
        return torch.tensor(self.y_th)

    def extra_repr(self) -> str:
        return f"y_th={self.y_th}, relu_warmup={self.relu_warmup}"


class QCFS(Activation):
    """QCFS (Bu et al.; Yang et al. 2025, Eq. 11): ``y = λ·floor(clamp(x/λ, 0, 1)·L + φ)/L``.

    λ is one trainable scalar (``nn.Parameter`` ``threshold``, 0-dim). Gradients
    (straight-through floor), ``grad_window="clip"`` (default): on ``[0, λ]``
    ∂y/∂x = 1 and ∂y/∂λ = (y − x)/λ; above λ ∂y/∂x = 0 and ∂y/∂λ = 1; below 0
    both 0. ``grad_window="shifted"``: the same on the window
    ``(−φλ/L, λ − φλ/L)`` of Yang et al. 2025, Eqs. 19–20 (see
    :class:`snnx.activations.functional._QuantisedClipFn`) — the rule of their
    layer-wise stage 1.

    ``num_channels`` is only remembered (for :func:`to_channelwise`).
    """

    def __init__(
        self,
        L: int,
        init_threshold: float = 8.0,
        shift: float = 0.5,
        num_channels: int | None = None,
        grad_window: str = "clip",
    ):
        super().__init__()
        self.L = _check_L(L)
        self.shift = _check_shift(shift)
        self.grad_window = _check_window(grad_window)
        self.num_channels = None if num_channels is None else int(num_channels)
        if not 0 < float(init_threshold) < math.inf:
            raise ValueError(f"init_threshold must be a finite number > 0, got {init_threshold!r}")
        self.threshold = nn.Parameter(torch.tensor(float(init_threshold)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _qcfs(x, self.threshold, self.L, self.shift, self.grad_window)

    def conversion_threshold(self) -> torch.Tensor:
        return self.threshold.detach().clone()

    def extra_repr(self) -> str:
        return f"L={self.L}, shift={self.shift}, num_channels={self.num_channels}, grad_window={self.grad_window}"


def inverse_softplus(lam: torch.Tensor, *, search_ulps: int = 8) -> torch.Tensor:
    """p with ``softplus(p) == lam``, in ``lam``'s dtype and device.

    ``p = log(expm1(λ))`` is evaluated in float64 and rounded to the dtype;
    then the nearest ``search_ulps`` neighbours of p are tried and, per
    element, the one whose ``F.softplus`` reproduces λ exactly (else most
    closely: softplus rounds, so some λ have no exact preimage) is kept — so a swap QCFS → CS-QCFS keeps the
    forward bit for bit wherever such a p exists. Raises ValueError for λ ≤ 0.
    """
    lam = lam.detach()
    if not bool((lam > 0).all()):
        raise ValueError("softplus can only represent thresholds > 0")
    lam64 = lam.to(torch.float64)
    p = (lam64 + torch.log(-torch.expm1(-lam64))).to(lam.dtype)
    cands = [p]
    up = down = p
    for _ in range(search_ulps):
        up = torch.nextafter(up, torch.full_like(up, math.inf))
        down = torch.nextafter(down, torch.full_like(down, -math.inf))
        cands += [up, down]
    cands.append(lam)  # softplus is the identity above its threshold (20): p = λ is exact there
    cand = torch.stack(cands)
    err = (F.softplus(cand) - lam).abs()
    best = err.argmin(dim=0, keepdim=True)
    return cand.gather(0, best).squeeze(0)


class CSQCFS(Activation):
    """CS-QCFS (Yang et al. 2025): ``y = λ_c·clip(floor(x·L/λ_c + φ)/L, 0, 1)``.

    ``threshold_param`` (p) is ``[C]`` when ``channelwise`` else 0-dim; the
    effective threshold is ``λ = softplus(p)`` when ``softplus`` else ``λ = p``.
    p starts so that λ = ``init_threshold`` (a float, or a tensor of shape
    ``[]``/``[C]`` — then p takes its dtype and device).

    Gradients (Yang et al. 2025, Eqs. 19–20; straight-through floor), with
    ``grad_window="shifted"`` (default): on the window ``(−φλ/L, λ − φλ/L)``
    (Eq. 19's ``(−λ/2L, λ − λ/2L)`` at φ = 1/2, open) ∂y/∂x = 1, else 0;
    ∂y/∂λ = (y − x)/λ on ``[−φλ/L, λ − φλ/L)``, 1 at and above its top end,
    0 below. λ here is the effective threshold softplus(p), and autograd
    chains ∂y/∂p = sigmoid(p)·∂y/∂λ (Eq. 20 as printed has z·e^λ for
    z·sigmoid(λ) and 1 for sigmoid(λ) above the window, which is not the
    derivative of Eq. 18; we use the chain rule). ``grad_window="clip"``:
    QCFS's ``[0, λ]`` rule instead.

    Channel-wise λ broadcasts over dim 1 of the input: ``[B, C, H, W]``,
    ``[B, C, L]`` or ``[B, C]``.

    ``cqcfs`` = channelwise, no softplus; ``sqcfs`` = softplus, layer scalar;
    ``csqcfs`` = both.
    """

    def __init__(
        self,
        num_channels: int,
        L: int,
        init_threshold: float | torch.Tensor = 8.0,
        shift: float = 0.5,
        channelwise: bool = True,
        softplus: bool = True,
        grad_window: str = "shifted",
    ):
        super().__init__()
        self.grad_window = _check_window(grad_window)
        if isinstance(num_channels, bool) or int(num_channels) != num_channels or num_channels < 1:
            raise ValueError(f"num_channels must be an integer >= 1, got {num_channels!r}")
        self.num_channels = int(num_channels)
        self.L = _check_L(L)
        self.shift = _check_shift(shift)
        self.channelwise = bool(channelwise)
        self.softplus = bool(softplus)
        shape = (self.num_channels,) if self.channelwise else ()
        if isinstance(init_threshold, torch.Tensor):
            lam = init_threshold.detach().clone()
            if not lam.is_floating_point():
                lam = lam.to(torch.get_default_dtype())
            lam = lam.expand(shape).clone() if lam.dim() == 0 else lam.reshape(shape).clone()
        else:
            lam = torch.full(shape, float(init_threshold))
        if not bool(((lam > 0) & torch.isfinite(lam)).all()):
            raise ValueError("init_threshold must be finite and > 0")
        p = inverse_softplus(lam) if self.softplus else lam
        self.threshold_param = nn.Parameter(p)

    def effective_threshold(self) -> torch.Tensor:
        """λ (with gradient): ``softplus(p)`` or ``p``; 0-dim or ``[C]``."""
        p = self.threshold_param
        return F.softplus(p) if self.softplus else p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lam = self.effective_threshold()
        if self.channelwise:
            if x.dim() < 2 or x.shape[1] != self.num_channels:
                raise ValueError(
                    f"channel-wise CS-QCFS expects input [B, {self.num_channels}, ...], "
                    f"got shape {tuple(x.shape)}"
                )
            lam = lam.reshape((1, self.num_channels) + (1,) * (x.dim() - 2))
        return _csqcfs(x, lam, self.L, self.shift, self.grad_window)

    def conversion_threshold(self) -> torch.Tensor:
        return self.effective_threshold().detach().clone()

    def extra_repr(self) -> str:
        return (
            f"num_channels={self.num_channels}, L={self.L}, shift={self.shift}, "
            f"channelwise={self.channelwise}, softplus={self.softplus}, grad_window={self.grad_window}"
        )


class Quant(Activation):
    """All-integer activation (Zou et al. 2024): ``y = round(ReLU(x)·2^k)/2^k``.

    With ``clip`` set (first activation site only), ReLU is clipped to
    ``[0, clip]`` before rounding. Rounding is half-up; the gradient is that of
    ReLU/the clip (straight-through). No trained threshold
    (``conversion_threshold()`` is None); :attr:`shift` is 0.5 because
    half-up rounding is a floor with φ = 0.5 — the all-integer converter already
    has this half step in θ⁺₀ and must not add it again.
    """

    shift = 0.5

    def __init__(self, k: int, clip: float | None = None):
        super().__init__()
        if isinstance(k, bool) or int(k) != k or k < 0:
            raise ValueError(f"k must be an integer >= 0, got {k!r}")
        self.k = int(k)
        if clip is not None:
            clip = float(clip)
            if not clip > 0:
                raise ValueError(f"clip must be > 0, got {clip!r}")
        self.clip = clip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _quant(x, self.k, self.clip)

    def extra_repr(self) -> str:
        return f"k={self.k}, clip={self.clip}"
