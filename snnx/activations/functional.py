"""Functional forms of the snnx activations, with the gradients their papers prescribe.

Straight-through estimators are written as ``q + (s - s.detach())``: the
forward value is exactly the quantised ``q`` (adding an exact zero), the
gradient is that of the surrogate ``s``. The more common
``s + (q - s).detach()`` can be off by one rounding in the last bit.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from snnx.kernels import quantiser as kernels


from snnx.activations.registry import GRAD_WINDOWS


def grad_window_bounds(lam: torch.Tensor, L: int, phi: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The ends ``(−φλ/L, λ − φλ/L)`` of the shifted gradient window, in λ's dtype and shape.

    The straight-through floor passes the gradient where the clip's argument
    ``x·L/λ + φ`` lies inside ``(0, L)``, i.e. for x in this interval; with
    φ = 1/2 it is Yang et al. 2025, Eq. 19's ``(−λ/2L, λ − λ/2L)``. The torch
    backward and the numba kernel both compare x against these same tensors.
    """
    h = lam.detach() * phi / L
    return -h, lam.detach() - h


class _QuantisedClipFn(torch.autograd.Function):
    """QCFS-family quantiser with an explicit backward.

    Forward (``clip_after=False``, QCFS):   ``y = λ·floor(clamp(x/λ, 0, 1)·L + φ) / L``
    Forward (``clip_after=True``, CS-QCFS): ``y = λ·clip(floor(x/λ·L + φ), 0, L) / L``
    (``clip(floor(·)/L, 0, 1)`` written with the clip on the integer level; the
    two forms give identical values for 0 ≤ φ < 1.)

    Backward (straight-through floor, d⌊u⌋/du = 1), on x against λ; the window
    does not depend on the forward form:

    ``window="shifted"`` — Yang et al. 2025, Eqs. 19–20 (written there for
    φ = 1/2; here ``lo = −φλ/L``, ``hi = λ − φλ/L``):
      lo < x < hi:   ∂y/∂x = 1           (Eq. 19: open at both ends)
      lo ≤ x < hi:   ∂y/∂λ = (y − x)/λ   (Eq. 20: closed below, open above)
      x ≥ hi:        ∂y/∂x = 0,  ∂y/∂λ = 1
      x < lo:        ∂y/∂x = 0,  ∂y/∂λ = 0
    ``window="clip"`` — QCFS's [0, λ] (the clamp of x/λ before the floor):
      0 ≤ x ≤ λ:  ∂y/∂x = 1,  ∂y/∂λ = (y − x)/λ
      x > λ:      ∂y/∂x = 0,  ∂y/∂λ = 1
      x < 0:      ∂y/∂x = 0,  ∂y/∂λ = 0
    (Plain autograd through the clip-after-floor form would give neither: its
    clip sees the floored level, so it passes ∂y/∂x = 1 on [lo, λ + φλ/L).)
    A softplus threshold λ = softplus(p) gets ∂y/∂p = sigmoid(p)·∂y/∂λ from
    autograd outside this function.

    ``lam`` must broadcast against ``x`` (0-dim, or ``[1, C, 1, …]``); its
    gradient is summed back to its shape.
    """

    @staticmethod
    def forward(ctx, x, lam, L: int, phi: float, clip_after: bool, window: str = "clip"):  # type: ignore[override]
        if window not in GRAD_WINDOWS:
            raise ValueError(f"window must be one of {GRAD_WINDOWS}, got {window!r}")
        ctx.window, ctx.L, ctx.phi, ctx.clip_after = window, L, phi, clip_after
        ctx.kernel_plan = how = kernels.plan(x, lam)
        if how is not None:  # one fused pass on CPU, same bits
            y = kernels.forward(x, how, L, phi, clip_after)
            ctx.save_for_backward(x, lam, y)
            return y
        # The same operations, in the same order, as the formulas above; in place on
        # the one fresh tensor (each new full-size tensor costs page faults on CPU).
        r = torch.div(x, lam)
        if clip_after:
            r.mul_(L).add_(phi).floor_().clamp_(0, L)
        else:
            r.clamp_(0, 1).mul_(L).add_(phi).floor_()
        y = r.mul_(lam).div_(L)  # λ·level/L (λ·level = level·λ exactly)
        ctx.save_for_backward(x, lam, y)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):  # type: ignore[override]
        x, lam, y = ctx.saved_tensors
        how = ctx.kernel_plan
        shifted = ctx.window == "shifted"
        fused = None
        if how is not None:
            bounds = grad_window_bounds(how[3], ctx.L, ctx.phi) if shifted else None
            fused = kernels.backward(x, lam.shape, how, grad_y, ctx.L, ctx.phi, ctx.clip_after, bounds)
        if fused is not None:  # one pass on CPU; ∂L/∂λ is summed in another order
            grad_x, grad_lam = fused
            needs = ctx.needs_input_grad
            return (grad_x if needs[0] else None), (grad_lam if needs[1] else None), None, None, None, None
        if not shifted and _lean_backward_applies(x, lam, y, grad_y):
            return _lean_backward(ctx, x, lam, y, grad_y) + (None, None, None, None)
        grad_x = grad_lam = None
        if shifted:
            lo, hi = grad_window_bounds(lam, ctx.L, ctx.phi)
            pass_x = (x > lo) & (x < hi)
            inside = (x >= lo) & (x < hi)
            above = x >= hi
        else:
            pass_x = inside = (x >= 0) & (x <= lam)
            above = x > lam
        if ctx.needs_input_grad[0]:
            grad_x = torch.where(pass_x, grad_y, torch.zeros_like(grad_y)).to(x.dtype)
        if ctx.needs_input_grad[1]:
            dlam = torch.where(inside, (y - x) / lam, above.to(y.dtype))
            grad_lam = (grad_y * dlam).sum_to_size(lam.shape).to(lam.dtype)
        return grad_x, grad_lam, None, None, None, None


def _lean_backward_applies(x, lam, y, grad_y) -> bool:
    """Whether :func:`_lean_backward` gives the general backward's bits here.

    Eager on CPU, one floating dtype, λ > 0 (so not NaN), λ no larger than x,
    and x, y, grad_y in one memory layout (then the product ``grad_y·∂y/∂λ``
    has the general path's layout, and its sum adds in the same order).
    Under torch.compile the general form is traced instead: Inductor fuses it,
    and the data-dependent λ check would break the graph.
    """
    return (not torch.compiler.is_compiling() and x.device.type == "cpu"
            and x.dtype == lam.dtype == y.dtype == grad_y.dtype and x.is_floating_point()
            and x.shape == y.shape == grad_y.shape and _strides(x) == _strides(y) == _strides(grad_y)
            and bool((lam > 0).all()))


def _strides(t: torch.Tensor) -> tuple:
    """The strides that define the memory layout (those of dims of size > 1)."""
    return tuple(st for st, n in zip(t.stride(), t.shape) if n > 1)


def _lean_backward(ctx, x, lam, y, grad_y):
    """The backward of :class:`_QuantisedClipFn` with two full-size temporaries and no ``where``.

    Bit for bit the general backward's result (for λ > 0): the same
    ``(y − x)/λ``, products and sum; only the selections are done by
    vectorised blends on a float region code instead of boolean masks
    (``torch.where``/``masked_fill`` on CPU are an order of magnitude
    slower, and every full-size temporary costs page faults).
    """
    A = torch.ops.aten
    grad_x = grad_lam = None
    # Region code k = −2·[x ≥ 0] + 3·[x > λ]: 0 below 0 (or NaN), −2 inside [0, λ], 1 above λ
    # (λ > 0, so x > λ implies x ≥ 0). The comparisons write 1.0/0.0 straight into float tensors.
    k = torch.ge(x, 0, out=torch.empty_like(x)).mul_(-2)
    t = torch.gt(x, lam, out=torch.empty_like(x))
    k.add_(t, alpha=3)  # small integers: exact
    if ctx.needs_input_grad[1]:
        torch.sub(y, x, out=t).div_(lam)
        # ∂y/∂λ: (y − x)/λ inside (k = −2 ∈ (−3, −1)), +0 elsewhere ...
        A.hardtanh_backward.grad_input(t, k, -3.0, -1.0, grad_input=t)
        # ... then 1 above: max(+0, 1) = 1; below max(+0, 0) = +0; inside max((y − x)/λ, −2) keeps
        # the value, since y ≥ 0 and x ≤ λ there make (y − x)/λ ≥ −1.
        torch.maximum(t, k, out=t)
        grad_lam = t.mul_(grad_y).sum_to_size(lam.shape)
    if ctx.needs_input_grad[0]:
        grad_x = A.hardtanh_backward.grad_input(grad_y, k, -3.0, -1.0, grad_input=k)  # grad_y inside, +0 elsewhere
    return grad_x, grad_lam


def qcfs(x: torch.Tensor, lam: torch.Tensor, L: int, phi: float = 0.5, window: str = "clip") -> torch.Tensor:
    """QCFS: ``λ·floor(clamp(x/λ, 0, 1)·L + φ)/L`` (λ broadcast against x); gradient window ``window``."""
    return _QuantisedClipFn.apply(x, lam, int(L), float(phi), False, window)


def csqcfs(x: torch.Tensor, lam: torch.Tensor, L: int, phi: float = 0.5, window: str = "shifted") -> torch.Tensor:
    """CS-QCFS form: ``λ·clip(floor(x·L/λ + φ)/L, 0, 1)`` (Yang et al. 2025, Eq. 18); gradient window ``window``."""
    return _QuantisedClipFn.apply(x, lam, int(L), float(phi), True, window)


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

