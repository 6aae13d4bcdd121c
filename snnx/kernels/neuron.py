"""The IF neuron over a time chunk in one pass (numba; see :mod:`snnx.kernels`).

The torch in-place path (:meth:`snnx.neurons.IFNeuron._forward_inplace`) makes
four passes over memory per step — ``v += z``, ``s = [v ≥ θ]``, ``out = θ·s``,
``v −= out`` — and the accounting two more per chunk (channel sums of the
spikes). Here each neuron's v stays in a register for the whole chunk: the
input currents are read once, the outputs written once, and the per-position
spike counts the accounting needs (:class:`snnx.sim.accounting.SpikeCounter`)
come out of the same loop. The float operations and their order are those of
the torch path (``(v + z) + bias``, ``s·θ``, ``v − s·θ``), so outputs and
membrane potentials are bit for bit the same (tests/test_kernels.py).

Layouts: per step ``[B, C, H, W]`` channels-last (read as positions × channels),
``[B, F]`` (rows × features), or contiguous ``[B, C, …]`` (batch × channel ×
positions); θ and the optional per-step bias are one value or one per channel.
"""

from __future__ import annotations

import torch

from snnx import kernels as _common


def _build():
    # numba is optional (snnx.kernels.load falls back to torch without it) and compiles on first use.
    from numba import njit, prange

    # x: [S, P, C] (or [1, P, C] when ``const``: the same input every step); v: [P, C];
    # theta, bias: [C]; out: [S, P, C]; counts: [S, P] spikes per (step, position), if ``track``.
    @njit(parallel=True, cache=True)
    def if_positions(x, const, v, theta, bias, has_bias, zero, one, out, track, counts):
        steps = out.shape[0]
        for p in prange(v.shape[0]):
            vs = v[p]
            for t in range(steps):
                xs = x[0, p] if const else x[t, p]
                os = out[t, p]
                n = 0  # an integer: a float sum across the loop would keep the compiler from vectorising it
                for c in range(v.shape[1]):
                    vv = vs[c] + xs[c]
                    if has_bias:
                        vv = vv + bias[c]
                    th = theta[c]
                    fired = vv >= th
                    s = one if fired else zero
                    o = s * th
                    os[c] = o
                    vs[c] = vv - o
                    n += 1 if fired else 0
                if track:
                    counts[t, p] = n

    # x: [S, B, C, M] (or [1, B, C, M]); v: [B, C, M]; out: [S, B, C, M]; counts: [S, B, M]
    # (channels summed per position).
    @njit(parallel=True, cache=True)
    def if_channels(x, const, v, theta, bias, has_bias, zero, one, out, track, counts):
        steps = out.shape[0]
        for b in prange(v.shape[0]):
            if track:
                for t in range(steps):
                    counts[t, b, :] = zero
            for c in range(v.shape[1]):
                th = theta[c]
                bi = bias[c]
                vs = v[b, c]
                for t in range(steps):
                    xs = x[0, b, c] if const else x[t, b, c]
                    os = out[t, b, c]
                    ns = counts[t, b]
                    for m in range(v.shape[2]):
                        vv = vs[m] + xs[m]
                        if has_bias:
                            vv = vv + bi
                        s = one if vv >= th else zero
                        o = s * th
                        os[m] = o
                        vs[m] = vv - o
                        if track:
                            ns[m] += s

    # The all-integer signed neuron (snnx.neurons.signed), same layouts; m: net spike count per neuron.
    # Its thresholds θ⁺₀, θ⁻₀, δ come per channel in the state's dtype (int64 in integer mode):
    # ṽ = max(v, θ⁻₀); +1 if ṽ ≥ θ⁺₀ + m·δ, −1 if ṽ < θ⁻₀ + m·δ (">" and "≤ with m > 0" otherwise).
    # The per-element lines repeat in both layouts: a kernel calling another jitted closure is not
    # loaded from numba's disk cache.
    @njit(parallel=True, cache=True)
    def signed_positions(x, const, v, m, tp0, tm0, dl, fire_on_equal, zero, one, out):
        steps = out.shape[0]
        for p in prange(v.shape[0]):
            vs = v[p]
            ms = m[p]
            for t in range(steps):
                xs = x[0, p] if const else x[t, p]
                os = out[t, p]
                for c in range(v.shape[1]):
                    vv = vs[c] + xs[c]
                    net = ms[c]
                    v_tilde = max(vv, tm0[c])
                    shift = net * dl[c]
                    if fire_on_equal:
                        s = (one if v_tilde >= tp0[c] + shift else zero) - (one if v_tilde < tm0[c] + shift else zero)
                    else:
                        s = (one if v_tilde > tp0[c] + shift else zero) - \
                            (one if (v_tilde <= tm0[c] + shift and net > zero) else zero)
                    ms[c] = net + s
                    vs[c] = vv
                    os[c] = s

    @njit(parallel=True, cache=True)
    def signed_channels(x, const, v, m, tp0, tm0, dl, fire_on_equal, zero, one, out):
        steps = out.shape[0]
        for b in prange(v.shape[0]):
            for c in range(v.shape[1]):
                tp, tm, dl_c = tp0[c], tm0[c], dl[c]
                vs = v[b, c]
                ms = m[b, c]
                for t in range(steps):
                    xs = x[0, b, c] if const else x[t, b, c]
                    os = out[t, b, c]
                    for k in range(v.shape[2]):
                        vv = vs[k] + xs[k]
                        net = ms[k]
                        v_tilde = max(vv, tm)
                        shift = net * dl_c
                        if fire_on_equal:
                            s = (one if v_tilde >= tp + shift else zero) - (one if v_tilde < tm + shift else zero)
                        else:
                            s = (one if v_tilde > tp + shift else zero) - \
                                (one if (v_tilde <= tm + shift and net > zero) else zero)
                        ms[k] = net + s
                        vs[k] = vv
                        os[k] = s

    return {"positions": if_positions, "channels": if_channels,
            "signed_positions": signed_positions, "signed_channels": signed_channels}


def _kernels() -> dict | None:
    return _common.load(__name__, _build)


def _per_channel(value: torch.Tensor, channels: int, like: torch.Tensor) -> torch.Tensor | None:
    """A 0-dim / broadcastable per-channel tensor as a contiguous [C] array, or None if it is not one."""
    if value.numel() not in (1, channels) or value.device.type != "cpu":
        return None
    # Same dtype, or float32 values against float64 state: torch promotes those exactly, as .to does.
    if not (value.dtype == like.dtype or (value.dtype == torch.float32 and like.dtype == torch.float64)):
        return None
    return value.detach().to(like.dtype).reshape(-1).expand(channels).contiguous()


def _layout(seq: torch.Tensor, v: torch.Tensor, out: torch.Tensor):
    """(kind, x view, v view, out view, const) of [S, B, …] input/output and [B, …] state, or None.

    The views must not copy (``view``, not ``reshape``): the kernel writes v and out in place.
    """
    const = seq.shape[0] > 1 and seq.stride(0) == 0
    x = seq[:1] if const else seq
    steps = out.shape[0]
    try:
        if v.dim() == 4 and v.is_contiguous(memory_format=torch.channels_last) and not v.is_contiguous():
            c = v.shape[1]
            return ("positions", x.permute(0, 1, 3, 4, 2).view(x.shape[0], -1, c),
                    v.permute(0, 2, 3, 1).view(-1, c), out.permute(0, 1, 3, 4, 2).view(steps, -1, c), const)
        if v.dim() == 2 and v.is_contiguous():
            return "positions", x.view(x.shape[0], v.shape[0], v.shape[1]), v, out, const
        if v.dim() >= 3 and v.is_contiguous():
            b, c = v.shape[:2]
            return ("channels", x.view(x.shape[0], b, c, -1), v.view(b, c, -1), out.view(steps, b, c, -1), const)
    except RuntimeError:  # not expressible as a view (an unusual stride): the torch code runs
        return None
    return None


def _checked_layout(seq: torch.Tensor, v: torch.Tensor, out: torch.Tensor):
    """:func:`_layout`, and None unless the input's and output's per-step layout is the state's."""
    layout = _layout(seq, v, out)
    if layout is None or layout[1].stride()[1:] != layout[2].stride() or layout[3].stride()[1:] != layout[2].stride():
        return None
    return layout


def count_buffer(kind: str, steps: int, v_view: torch.Tensor, track: bool) -> torch.Tensor:
    """The kernels' spike counts per (step, position) of a ``kind`` layout (a placeholder when not ``track``)."""
    if kind == "positions":
        shape = (steps, v_view.shape[0]) if track else (1, 1)
    else:
        shape = (steps, v_view.shape[0], v_view.shape[2]) if track else (1, 1, 1)
    return torch.empty(shape, dtype=v_view.dtype)


def counts_per_row(counts: torch.Tensor, steps: int, v: torch.Tensor) -> torch.Tensor:
    """:func:`count_buffer`'s counts as ``Neuron.spike_counts``: [S·B, H, W], [S·B] or [S·B, M]."""
    rows = steps * v.shape[0]
    if v.dim() == 4:
        return counts.view(rows, v.shape[2], v.shape[3])
    return counts.view(rows) if v.dim() == 2 else counts.view(rows, -1)


def if_chunk(x_seq: torch.Tensor, v: torch.Tensor, threshold: torch.Tensor, bias: torch.Tensor | None,
             out_seq: torch.Tensor, track: bool) -> torch.Tensor | None | bool:
    """Run the IF dynamics over the chunk in place (``v``, ``out_seq``).

    Returns the spike counts per (step·row, position) — ``[S·B, H, W]`` for a
    4-d layer, ``[S·B]`` for ``[B, F]``, ``[S·B, M]`` otherwise — when
    ``track``, None when not, and False when the kernel does not apply (the
    caller then runs the torch code; nothing was written).
    """
    channels = v.shape[1] if v.dim() >= 2 else 0
    if (channels == 0 or v.numel() == 0 or not _common.applies(x_seq, v, out_seq)
            or out_seq.shape[1:] != v.shape or x_seq.shape[1:] != v.shape or _kernels() is None):
        return False
    theta = _per_channel(threshold, channels, v)
    extra = None if bias is None else _per_channel(bias, channels, v)
    if theta is None or (bias is not None and extra is None):
        return False
    layout = _checked_layout(x_seq, v, out_seq)
    if layout is None:
        return False
    kind, x, v_view, out, const = layout
    steps = out_seq.shape[0]
    counts = count_buffer(kind, steps, v_view, track)
    zero, one = _common.scalars(v.dtype, 0, 1)
    _common.sync_threads()
    _kernels()[kind](x.numpy(), const, v_view.numpy(), theta.numpy(),
                     (extra if extra is not None else theta).numpy(), extra is not None, zero, one,
                     out.numpy(), bool(track), counts.numpy())
    return counts_per_row(counts, steps, v) if track else None


def signed_chunk(x_seq: torch.Tensor, v: torch.Tensor, count: torch.Tensor, theta_plus0: torch.Tensor,
                 theta_minus0: torch.Tensor, delta: torch.Tensor, fire_on_equal: bool, out_seq: torch.Tensor) -> bool:
    """The signed dual-threshold neuron over the chunk in place (``v``, ``count``, ``out_seq``); False: not run.

    The same operations in the same dtype as :meth:`SignedDualThresholdNeuron.step`
    (float32 thresholds stay float32, as the simulator leaves them; int64 in integer mode).
    """
    dtypes = (*_common.DTYPES, torch.int64)
    channels = v.shape[1] if v.dim() >= 2 else 0
    tensors = (x_seq, v, count, out_seq, theta_plus0, theta_minus0, delta)
    if (channels == 0 or v.numel() == 0 or v.dtype not in dtypes
            or any(t.dtype != v.dtype or t.device.type != "cpu" for t in tensors)
            or torch.compiler.is_compiling() or count.stride() != v.stride()
            or out_seq.shape[1:] != v.shape or x_seq.shape[1:] != v.shape or _kernels() is None):
        return False
    per_channel = [_per_channel(t, channels, v) for t in (theta_plus0, theta_minus0, delta)]
    layout = None if any(t is None for t in per_channel) else _checked_layout(x_seq, v, out_seq)
    if layout is None:
        return False
    kind, x, v_view, out, const = layout
    m_view = _layout(x_seq, count, out_seq)[2]
    if v.dtype == torch.int64:
        zero, one = 0, 1
    else:
        zero, one = _common.scalars(v.dtype, 0, 1)
    _common.sync_threads()
    _kernels()["signed_" + kind](x.numpy(), const, v_view.numpy(), m_view.numpy(),
                                 *(t.numpy() for t in per_channel), bool(fire_on_equal), zero, one, out.numpy())
    return True


__all__ = ["if_chunk", "signed_chunk"]
