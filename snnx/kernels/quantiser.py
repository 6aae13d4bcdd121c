"""The QCFS-family quantiser's forward and backward, one pass each (numba; see :mod:`snnx.kernels`).

Eager torch spends one memory pass per elementwise op; the quantiser's forward is
seven of them and its backward about ten, against one each for ReLU. Here each
direction is one pass, parallel over the batch:

- forward: the same operations in the same order and dtype as the torch
  forward in :mod:`snnx.activations.functional`, so ``y`` is bit for bit the
  same (the tests check it on step boundaries);
- backward: ∂L/∂x is bit for bit the same (a mask on ``x`` against λ, or against the
  shifted window's ends, which torch computes for both paths); ∂L/∂λ
  is the same sum added in a different order (per image, then over the
  batch), so it may differ in the last bits.

Taken when the tensor is in NCHW (or channels_last) or [B, C] layout and λ is
a scalar or one value per channel (:func:`plan`); otherwise the torch code runs.
"""

from __future__ import annotations

import torch

from snnx import kernels as _common


def _build():
    # numba is optional (snnx.kernels.load falls back to torch without it) and compiles on first use.
    import numpy as np
    from numba import njit, prange

    # The forward: y = λ·level/L with level = floor(clamp(x/λ, 0, 1)·L + φ)
    # (QCFS) or clamp(floor(x/λ·L + φ), 0, L) (CS-QCFS). L, φ, zero come in
    # x's dtype so every op runs in that dtype, like the torch code. ``inv_L``
    # is 1/L where L is a power of two (then ·1/L is exactly /L), else 0. The two layouts repeat
    # the per-element lines: a kernel that calls another jitted closure is not loaded from numba's
    # disk cache, so it would recompile in every process.
    @njit(parallel=True, cache=True, error_model="numpy")
    def forward_ncm(x, lam, L, inv_L, phi, zero, one, clip_after, y):  # x, y: [N, C, M]; lam: [C]
        for n in prange(x.shape[0]):
            for c in range(x.shape[1]):
                th = lam[c]
                xs = x[n, c]
                ys = y[n, c]
                for m in range(x.shape[2]):
                    r = xs[m] / th
                    if clip_after:
                        r = np.floor(r * L + phi)
                        r = min(max(r, zero), L)
                    else:
                        r = np.floor(min(max(r, zero), one) * L + phi)
                    ys[m] = r * th * inv_L if inv_L != zero else r * th / L

    @njit(parallel=True, cache=True, error_model="numpy")
    def forward_rc(x, lam, L, inv_L, phi, zero, one, clip_after, y):  # x, y: [R, C]; lam: [C]
        for i in prange(x.shape[0]):
            xs = x[i]
            ys = y[i]
            for c in range(x.shape[1]):
                th = lam[c]
                r = xs[c] / th
                if clip_after:
                    r = np.floor(r * L + phi)
                    r = min(max(r, zero), L)
                else:
                    r = np.floor(min(max(r, zero), one) * L + phi)
                ys[c] = r * th * inv_L if inv_L != zero else r * th / L

    # The backward (straight-through floor), on x against λ, as in snnx.activations.functional:
    #   clip window:    0 ≤ x ≤ λ: ∂y/∂x = 1, ∂y/∂λ = (y − x)/λ;  x > λ: 0 and 1;  x < 0 (or NaN): 0 and 0.
    #   shifted window (Yang et al. 2025, Eqs. 19–20), ends lo/hi per channel computed by torch:
    #     lo < x < hi: ∂y/∂x = 1;  lo ≤ x < hi: ∂y/∂λ = (y − x)/λ;  x ≥ hi: 0 and 1;  x < lo (or NaN): 0 and 0.
    # (y − x)·(1/λ) is within an ulp of (y − x)/λ, and ∂L/∂λ is a sum in another order than
    # torch's anyway — but always the same order: no "reassoc", because with it the order of the
    # per-(image, channel) sum depended on which compiled variant numba's dispatcher picked from its
    # on-disk cache (one built for other array layouts serves C-contiguous arrays too), so the same
    # config trained other bits after other programs had filled the cache. lo/hi come in
    # precomputed, so no fast-math rewrite can move the window ends. y is recomputed from x with
    # the forward's own lines (one array less to read; "nsz" cannot change it: the level's zero
    # is +0 once φ ≥ 0 is added, so λ·level/L is the forward's bits).
    # backward_ncm keeps each (image, channel) sum sequential over m, which no SIMD add can do
    # along m; so it writes the products of 8 channels to a small buffer (a vectorised pass per
    # channel) and then adds those 8 sums side by side, one independent chain each: the same adds
    # in the same order, several times faster than one chain waiting on each add. CS-QCFS's form and
    # QCFS's have their own copies of the per-element lines with the flags' branches taken out: LLVM
    # did not hoist them out of the loop, which then ran at about half the speed (README, Benchmark). Their
    # ``λ·level·mul_L/div_L`` is the forward's ``λ·level·(1/L)`` (÷1 is exact) or ``λ·level/L`` (×1 is).
    @njit(parallel=True, cache=True, fastmath={"nsz"}, error_model="numpy")
    def backward_ncm(x, lam, L, inv_L, phi, clip_after, g, zero, one, shifted, lo, hi, gx, parts):  # parts: [N, C]
        mul_L = inv_L if inv_L != zero else one  # λ·level·mul_L/div_L ≡ λ·level·(1/L), or λ·level/L
        div_L = one if inv_L != zero else L
        for n in prange(x.shape[0]):
            prods = np.empty((8, x.shape[2]), x.dtype)
            for c0 in range(0, x.shape[1], 8):
                block = min(8, x.shape[1] - c0)
                for k in range(block):
                    c = c0 + k
                    th = lam[c]
                    inv_th = one / th
                    lo_c = lo[c]
                    hi_c = hi[c]
                    xs = x[n, c]
                    gs = g[n, c]
                    gxs = gx[n, c]
                    ps = prods[k]
                    if clip_after and shifted:  # CS-QCFS's own form (Eqs. 18–20), with no branch left inside
                        for m in range(x.shape[2]):
                            xv = xs[m]
                            gv = gs[m]
                            r = np.floor(xv / th * L + phi)
                            r = min(max(r, zero), L)
                            yv = r * th * mul_L / div_L
                            gxs[m] = gv if (xv > lo_c) & (xv < hi_c) else zero
                            d = (yv - xv) * inv_th
                            ps[m] = gv * (d if (xv >= lo_c) & (xv < hi_c) else (one if xv >= hi_c else zero))
                        continue
                    if not clip_after and not shifted:  # QCFS's own form (Eq. 11) and its [0, λ] window
                        for m in range(x.shape[2]):
                            xv = xs[m]
                            gv = gs[m]
                            r = np.floor(min(max(xv / th, zero), one) * L + phi)
                            yv = r * th * mul_L / div_L
                            inside = (xv >= zero) & (xv <= th)
                            gxs[m] = gv if inside else zero
                            d = (yv - xv) * inv_th
                            ps[m] = gv * (d if inside else (one if xv > th else zero))
                        continue
                    for m in range(x.shape[2]):
                        xv = xs[m]
                        gv = gs[m]
                        r = xv / th
                        if clip_after:
                            r = np.floor(r * L + phi)
                            r = min(max(r, zero), L)
                        else:
                            r = np.floor(min(max(r, zero), one) * L + phi)
                        yv = r * th * inv_L if inv_L != zero else r * th / L
                        if shifted:
                            passes = (xv > lo_c) & (xv < hi_c)
                            inside = (xv >= lo_c) & (xv < hi_c)
                            above = one if xv >= hi_c else zero
                        else:
                            passes = inside = (xv >= zero) & (xv <= th)
                            above = one if xv > th else zero
                        gxs[m] = gv if passes else zero
                        d = (yv - xv) * inv_th  # two flat selects vectorise better than nested ones
                        ps[m] = gv * (d if inside else above)
                if block == 8:  # eight scalars, not an array: they stay in registers
                    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = zero
                    for m in range(x.shape[2]):
                        a0 += prods[0, m]
                        a1 += prods[1, m]
                        a2 += prods[2, m]
                        a3 += prods[3, m]
                        a4 += prods[4, m]
                        a5 += prods[5, m]
                        a6 += prods[6, m]
                        a7 += prods[7, m]
                    parts[n, c0] = a0
                    parts[n, c0 + 1] = a1
                    parts[n, c0 + 2] = a2
                    parts[n, c0 + 3] = a3
                    parts[n, c0 + 4] = a4
                    parts[n, c0 + 5] = a5
                    parts[n, c0 + 6] = a6
                    parts[n, c0 + 7] = a7
                else:
                    for k in range(block):
                        acc = zero
                        for m in range(x.shape[2]):
                            acc += prods[k, m]
                        parts[n, c0 + k] = acc

    @njit(parallel=True, cache=True, fastmath={"nsz"}, error_model="numpy")
    def backward_rc(x, lam, L, inv_L, phi, clip_after, g, zero, one, shifted, lo, hi, gx, parts):  # x: [R, C]; parts: [B, C], rows in B blocks
        rows = x.shape[0]
        blocks = parts.shape[0]
        inv_th = one / lam
        for b in prange(blocks):
            acc = parts[b]
            acc[:] = zero
            for i in range(b * rows // blocks, (b + 1) * rows // blocks):
                xs = x[i]
                gs = g[i]
                gxs = gx[i]
                for c in range(x.shape[1]):
                    th = lam[c]
                    xv = xs[c]
                    gv = gs[c]
                    r = xv / th
                    if clip_after:
                        r = np.floor(r * L + phi)
                        r = min(max(r, zero), L)
                    else:
                        r = np.floor(min(max(r, zero), one) * L + phi)
                    yv = r * th * inv_L if inv_L != zero else r * th / L
                    if shifted:
                        passes = (xv > lo[c]) & (xv < hi[c])
                        inside = (xv >= lo[c]) & (xv < hi[c])
                        above = one if xv >= hi[c] else zero
                    else:
                        passes = inside = (xv >= zero) & (xv <= th)
                        above = one if xv > th else zero
                    gxs[c] = gv if passes else zero
                    d = (yv - xv) * inv_th[c]
                    acc[c] += gv * (d if inside else above)

    return {"forward_ncm": forward_ncm, "forward_rc": forward_rc,
            "backward_ncm": backward_ncm, "backward_rc": backward_rc}


def plan(x: torch.Tensor, lam: torch.Tensor):
    """How the kernels read ``x`` against ``λ``: ``(kind, channels_last, view shape, λ as [C], λ as numpy,
    the kernel table)``, or None.

    None where they do not apply: not a float32/float64 CPU tensor, numba off
    or missing, torch tracing/compiling, or a layout they do not take. λ must
    be 0-dim (one threshold: one channel over everything) or ``[1, C, 1, …]``
    against ``x`` ``[N, C, …]``. NCHW-contiguous x is read as [N, C, H·W]
    ("ncm"); channels_last as [N·H·W, C] ("rc"); [B, C] as rows ("rc").
    The forward and the backward take λ's numpy view and the kernels from here, so
    each call converts and looks them up once (the activation runs at every layer
    and batch: per-call Python costs add up against ReLU's single op).
    """
    if x.dim() == 0 or x.numel() == 0 or not _common.applies(x, lam):
        return None
    table = _kernels()
    if table is None:
        return None
    cl = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    if not (cl or x.is_contiguous()):
        return None
    if lam.dim() == 0:
        kind, shape, channels = "ncm", (x.shape[0], 1, -1), lam.reshape(1)
    elif lam.dim() != x.dim() or lam.shape[1] != x.shape[1] or lam.numel() != x.shape[1]:
        return None
    else:
        channels = lam.reshape(-1)
        if cl:
            kind, shape = "rc", (-1, x.shape[1])
        elif x.dim() == 2:
            kind, shape = "rc", tuple(x.shape)
        else:
            kind, shape = "ncm", (x.shape[0], x.shape[1], -1)
    return kind, cl, shape, channels, channels.detach().contiguous().numpy(), table


def _kernels() -> dict | None:
    return _common.load(__name__, _build)


def _view(t: torch.Tensor, how):
    """``t`` (laid out like the planned x) as the kernel's numpy array."""
    if how[1]:
        t = t.permute(0, 2, 3, 1)
    return t.detach().reshape(how[2]).numpy()


def _constants(dtype: torch.dtype, L: int, phi: float, clip_after: bool) -> tuple:
    """The forward's arguments after λ: L, 1/L (0 unless L is a power of two), φ, 0, 1 in ``dtype``, clip_after."""
    key = (dtype, L, phi, clip_after)
    if key not in _CONSTANTS:
        power_of_two = L & (L - 1) == 0
        _CONSTANTS[key] = _common.scalars(dtype, L, 1 / L if power_of_two else 0, phi, 0, 1) + (bool(clip_after),)
    return _CONSTANTS[key]


_CONSTANTS: dict[tuple, tuple] = {}


def forward(x: torch.Tensor, how, L: int, phi: float, clip_after: bool) -> torch.Tensor:
    """The quantiser's forward in one pass (``how`` from :func:`plan`)."""
    _common.sync_threads()
    y = torch.empty_like(x)  # x's memory format, so the same view applies
    how[5]["forward_" + how[0]](_view(x, how), how[4], *_constants(x.dtype, L, phi, clip_after), _view(y, how))
    return y


def backward(x: torch.Tensor, lam_shape, how, grad_y: torch.Tensor, L: int, phi: float, clip_after: bool,
             bounds=None):
    """(∂L/∂x, ∂L/∂λ summed to ``lam_shape``) in one pass, or None if ``grad_y`` is laid out otherwise.

    ``L``, ``phi``, ``clip_after``: the forward's (the kernel recomputes y from x).
    ``bounds``: None for the clip window [0, λ]; ``(lo, hi)`` as ``[C]`` tensors (like ``how[3]``) for
    the shifted window.
    """
    if grad_y.dtype != x.dtype or grad_y.shape != x.shape or grad_y.stride() != x.stride():
        return None  # e.g. an expanded grad_y, or another memory layout: torch handles it
    _common.sync_threads()
    grad_x = torch.empty_like(x)
    xv = _view(x, how)
    if how[0] == "ncm":
        parts = torch.empty(xv.shape[0], xv.shape[1], dtype=x.dtype)
    else:  # rows in up to 64 blocks, one partial sum per block and channel
        parts = torch.empty(min(xv.shape[0], 64), xv.shape[1], dtype=x.dtype)
    Lt, inv_L, phit, zero, one, clip = _constants(x.dtype, L, phi, clip_after)
    lam = how[4]
    lo, hi = (lam, lam) if bounds is None else (t.contiguous().numpy() for t in bounds)
    how[5]["backward_" + how[0]](xv, lam, Lt, inv_L, phit, clip, _view(grad_y, how), zero, one, bounds is not None,
                                 lo, hi, _view(grad_x, how), parts.numpy())
    return grad_x, parts.sum(0).reshape(lam_shape)


__all__ = ["backward", "forward", "plan"]
