"""Functional forms of the snnx activations, with the gradients ALGORITHMS.md prescribes.

Straight-through estimators are written as ``q + (s - s.detach())``: the
forward value is exactly the quantised ``q`` (adding an exact zero), the
gradient is that of the surrogate ``s``. The more common
``s + (q - s).detach()`` can be off by one rounding in the last bit.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


class _QuantisedClipFn(torch.autograd.Function):
    """QCFS-family quantiser with an explicit backward.

    Forward (``clip_after=False``, QCFS):   ``y = λ·floor(clamp(x/λ, 0, 1)·L + φ) / L``
    Forward (``clip_after=True``, CS-QCFS): ``y = λ·clip(floor(x/λ·L + φ), 0, L) / L``
    (``clip(floor(·)/L, 0, 1)`` written with the clip on the integer level; the
    two forms give identical values for 0 ≤ φ < 1.)

    Backward, for both forms (straight-through floor):
      0 ≤ x ≤ λ:  ∂y/∂x = 1,  ∂y/∂λ = (y − x)/λ
      x > λ:      ∂y/∂x = 0,  ∂y/∂λ = 1
      x < 0:      ∂y/∂x = 0,  ∂y/∂λ = 0
    The masks are taken on x against λ. (Plain autograd through the
    clip-after-floor form would instead pass ∂y/∂x = 1 on the half step below 0
    and above λ, because its clip sees the floored level.)

    ``lam`` must broadcast against ``x`` (0-dim, or ``[1, C, 1, …]``); its
    gradient is summed back to its shape.
    """

    @staticmethod
    def forward(ctx, x, lam, L: int, phi: float, clip_after: bool):  # type: ignore[override]
        ratio = x / lam
        if clip_after:
            level = torch.floor(ratio * L + phi).clamp_(0, L)
        else:
            level = torch.floor(ratio.clamp(0, 1) * L + phi)
        y = lam * level / L
        ctx.save_for_backward(x, lam, y)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):  # type: ignore[override]
        x, lam, y = ctx.saved_tensors
        grad_x = grad_lam = None
        inside = (x >= 0) & (x <= lam)
        if ctx.needs_input_grad[0]:
            grad_x = torch.where(inside, grad_y, torch.zeros_like(grad_y)).to(x.dtype)
        if ctx.needs_input_grad[1]:
            above = x > lam
            dlam = torch.where(inside, (y - x) / lam, above.to(y.dtype))
            grad_lam = (grad_y * dlam).sum_to_size(lam.shape).to(lam.dtype)
        return grad_x, grad_lam, None, None, None


def qcfs(x: torch.Tensor, lam: torch.Tensor, L: int, phi: float = 0.5) -> torch.Tensor:
    """QCFS: ``λ·floor(clamp(x/λ, 0, 1)·L + φ)/L`` (λ broadcast against x)."""
    return _QuantisedClipFn.apply(x, lam, int(L), float(phi), False)


def csqcfs(x: torch.Tensor, lam: torch.Tensor, L: int, phi: float = 0.5) -> torch.Tensor:
    """CS-QCFS form: ``λ·clip(floor(x·L/λ + φ)/L, 0, 1)`` (λ broadcast against x)."""
    return _QuantisedClipFn.apply(x, lam, int(L), float(phi), True)


def clip(x: torch.Tensor, y_th: float) -> torch.Tensor:
    """``clip(x, 0, y_th)`` with gradient 1 on the closed ``[0, y_th]``, 0 outside.

    (torch's ``clamp(x, min, max)`` backward gives 0 at both ends, so the
    mask is explicit.)
    """
    xd = x.detach()
    inside = ((xd >= 0) & (xd <= y_th)).to(x.dtype)
    s = x * inside
    return xd.clamp(0.0, y_th) + (s - s.detach())


def round_half_up(v: torch.Tensor) -> torch.Tensor:
    """Nearest integer, halves rounded up — exactly, without the ``floor(v + 0.5)`` rounding trap."""
    n = torch.floor(v)
    return n + ((v - n) >= 0.5).to(v.dtype)


def quant(x: torch.Tensor, k: int, clip: float | None = None) -> torch.Tensor:
    """All-integer activation: ``round(ReLU(x)·2^k)/2^k`` (optionally ReLU clipped at ``clip`` first).

    Rounding is half-up (``n = ⌊v⌋ + [v − ⌊v⌋ ≥ 0.5]``), which is the level a
    signed neuron firing on ``ṽ ≥ θ⁺`` reaches. Gradient: that of ReLU (and of
    the clip), i.e. 1 for 0 < x (≤ clip), else 0 — explicit masks, since
    torch's clamp backward is not consistent at the ends.
    """
    xd = x.detach()
    r = torch.relu(xd)
    mask = xd > 0
    if clip is not None:
        r = r.clamp(max=clip)
        mask = mask & (xd <= clip)
    scale = float(2**k)
    q = round_half_up(r * scale) / scale
    s = x * mask.to(x.dtype)
    return q + (s - s.detach())


def ternary(w: torch.Tensor, ratio: float = 0.7) -> torch.Tensor:
    """TWN ternary weights: ``sign(w)·[|w| > Δ]``, ``Δ = ratio·mean|w|`` per tensor, no scale.

    Straight-through: the gradient w.r.t. ``w`` is the identity.
    """
    wd = w.detach()
    delta = ratio * wd.abs().mean()
    wt = torch.sign(wd) * (wd.abs() > delta).to(wd.dtype)
    return wt + (w - wd)
