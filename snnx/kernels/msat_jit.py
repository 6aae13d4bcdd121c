"""The numba code of :mod:`snnx.kernels.msat` (imported by it on first use; numba required here).

The helpers are module-level jitted functions, not closures, so the kernels
that call them load from numba's disk cache. Every constant arrives as an
tuple of scalars of the state's dtype (tuples,
not arrays: their length and values are known to the compiler, which unrolls
the polynomials and keeps the values in registers): a Python float literal would promote a
float32 expression to float64 and change its rounding.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

# k: the exp constants of snnx.kernels.elementary in the state's dtype: lo, hi, log2e, shifter, ln2_hi, ln2_lo,
# 0 and ∞.


@intrinsic
def pow2_(typingctx, n):
    """2^n for a float n holding an integer in the normal exponent range: its bits built directly (vectorises)."""
    if n not in (types.float32, types.float64):
        return None

    def codegen(context, builder, signature, args):
        ft = args[0].type
        bits, bias, mantissa = (32, 127, 23) if ft == ir.FloatType() else (64, 1023, 52)
        it = ir.IntType(bits)
        i = builder.add(builder.fptosi(args[0], it), ir.Constant(it, bias))
        return builder.bitcast(builder.shl(i, ir.Constant(it, mantissa)), ft)

    return n(n), codegen


@njit(cache=True, inline="always", error_model="numpy")
def exp_(x, k, ec):
    xc = min(max(x, k[0]), k[1])
    n = (xc * k[2] + k[3]) - k[3]
    r = (xc - n * k[4]) - n * k[5]
    p = ec[0] * r + ec[1]
    for a in ec[2:]:
        p = p * r + a
    y = p * pow2_(n)
    y = k[6] if x < k[0] else y
    return k[7] if x > k[1] else y


@njit(cache=True, inline="always", error_model="numpy")
def sigmoid_(a, k, ec, one):
    return one / (exp_(-a, k, ec) + one)


@njit(cache=True, inline="always", error_model="numpy")
def softplus_tail_(x, y, lc, zero, two):
    """ln(1 + e^x) given y = e^−|x|: max(x, 0) + log1p(y) (elementary.softplus, the same operations)."""
    s = y / (y + two)
    s2 = s * s
    q = lc[0] * s2 + lc[1]
    for a in lc[2:]:
        q = q * s2 + a
    return max(x, zero) + (s * q) * two


@njit(cache=True, inline="always", error_model="numpy")
def fire_(vv, xc, th, keep, reset_fired, zero, one):
    """Charge, fire, keep (``keep`` 1 or 0: the spike-confidence draw) and reset: (output, post-reset potential).

    Without spike confidence ``keep`` is 1: fired·1 is fired, the reference step's bits.
    """
    vn = vv + xc
    fired = one if vn >= th else zero
    s = fired * keep
    return s * th, vn - th * (fired if reset_fired else s)


# How the kernels are laid out, and why (README, Benchmark).
# * No loop over elements branches on the chunk's options or reads or writes memory conditionally: the compiler
#   vectorises a conditional load or store by masked moves, which cost some machines more than the threshold's
#   arithmetic. So an all-ones row stands in for the confidence draws after the first K steps; the running sum
#   is written whether or not it is tracked (untracked, it is scratch memory of its own); counts are a pass of
#   their own.
# * θ(t) of an adaptive step is computed in tiles of TILE elements, a few loops each with one exponential: fused,
#   the threshold is one long chain of dependent operations per element that leaves a core waiting on it.
# * With one input current for every step (direct encoding, ``const``), DET is the same at every step: computed
#   once a chunk.
TILE = 256


# p: the neuron's scalars in the state's dtype: alpha, k_a, k_i, C, tau_mp, tau_det, v_t (used if not vt_neg_theta),
# zero, one, two. flags: adaptive, use_dtt, use_det, normalised, vt_neg_theta, confidence_reset, softplus_folds.
# The passes below compute θ(t) for t ≥ 1 of n ≤ TILE elements (MSATNeuron.threshold_at: the same operations in
# the same order) from their potentials vs, running sums ss, θ_max ts and DET dets (read if use_det); tf: t as a
# float. buf: scratch [3, TILE] (u; w = u/k_i, or row 0 itself when k_i is 1; e^−|w|). theta: [TILE], the result
# (the sigmoid's argument until the last pass). unit_ki and det are passed as constants: the compiler drops what
# they turn off (u/1 is u).
@njit(cache=True, inline="always", error_model="numpy")
def dtt_inputs_(vs, ss, ts, n, tf, p, flags, k, ec, buf, unit_ki):
    """buf ← u = V(t−1) − mean_{s<t} V(s) (in units of θ_max if normalised), w = u/k_i, e^−|w|."""
    for i in range(n):
        u = vs[i] - ss[i] / tf
        u = u / ts[i] if flags[3] else u
        w = u if unit_ki else u / p[2]
        buf[0, i] = u
        if not unit_ki:  # else w is u, buf[0]
            buf[1, i] = w
        buf[2, i] = exp_(-abs(w), k, ec)


@njit(cache=True, inline="always", error_model="numpy")
def det_(xs_i, ts_i, p, flags, k, ec):
    """DET (Eq. 17) of the input current."""
    z = xs_i / ts_i if flags[3] else xs_i
    return p[5] * exp_((-z) / p[3], k, ec)


@njit(cache=True, inline="always", error_model="numpy")
def folded_threshold_(ts, dets, n, p, flags, k, ec, buf, w_row, theta, det):
    """theta ← θ_max·(1 + y)/((1 + y) + e^−(a + max(w, 0))), y = e^−|w|, a = τ_mp·(α·u + V_T) + DET."""
    zero, one = p[7], p[8]
    for i in range(n):
        vt = -ts[i] if flags[4] else p[6]
        a = p[4] * (p[0] * buf[0, i] + vt)
        a = a + dets[i] if det else a
        y1 = one + buf[2, i]
        theta[i] = ts[i] * y1 / (y1 + exp_(-a - max(buf[w_row, i], zero), k, ec))


@njit(cache=True, inline="always", error_model="numpy")
def dtt_argument_(ts, n, p, flags, lc, buf, w_row, theta):
    """theta ← DTT (Eq. 16)."""
    zero, two = p[7], p[9]
    for i in range(n):
        vt = -ts[i] if flags[4] else p[6]
        sp = softplus_tail_(buf[w_row, i], buf[2, i], lc, zero, two)
        theta[i] = p[4] * ((p[0] * buf[0, i] + vt) + p[1] * sp)


@njit(cache=True, inline="always", error_model="numpy")
def adaptive_threshold_(vs, ss, ts, dets, n, tf, p, flags, k, ec, lc, buf, theta):
    one = p[8]
    if flags[1]:
        w_row = 0 if p[2] == one else 1
        if w_row == 0:
            dtt_inputs_(vs, ss, ts, n, tf, p, flags, k, ec, buf, True)
        else:
            dtt_inputs_(vs, ss, ts, n, tf, p, flags, k, ec, buf, False)
        if flags[6]:
            if flags[2]:
                folded_threshold_(ts, dets, n, p, flags, k, ec, buf, w_row, theta, True)
            else:
                folded_threshold_(ts, dets, n, p, flags, k, ec, buf, w_row, theta, False)
            return
        dtt_argument_(ts, n, p, flags, lc, buf, w_row, theta)
        if flags[2]:
            for i in range(n):
                theta[i] = theta[i] + dets[i]
    else:
        for i in range(n):
            theta[i] = dets[i]
    for i in range(n):
        theta[i] = sigmoid_(theta[i], k, ec, one) * ts[i]


@njit(cache=True, inline="always", error_model="numpy")
def adaptive_steps_(vs, ss, xs, ts, dets, cached, ms, os, n, tf, p, flags, k, ec, lc, buf, theta):
    """One adaptive step (t ≥ 1) of n elements, in tiles of TILE; dets: their DET, if ``cached``, else scratch."""
    zero, one = p[7], p[8]
    for j0 in range(0, n, TILE):
        nt = min(TILE, n - j0)
        v_t, s_t, x_t, th_t = vs[j0:j0 + nt], ss[j0:j0 + nt], xs[j0:j0 + nt], ts[j0:j0 + nt]
        m_t, o_t, d_t = ms[j0:j0 + nt], os[j0:j0 + nt], dets[j0:j0 + nt]
        if flags[2] and not cached:  # a pass of its own: one exponential a loop
            for i in range(nt):
                d_t[i] = det_(x_t[i], th_t[i], p, flags, k, ec)
        adaptive_threshold_(v_t, s_t, th_t, d_t, nt, tf, p, flags, k, ec, lc, buf, theta)
        for i in range(nt):
            o, vp = fire_(v_t[i], x_t[i], theta[i], m_t[i], flags[5], zero, one)
            o_t[i] = o
            v_t[i] = vp
            s_t[i] = s_t[i] + vp


@njit(cache=True, inline="always", error_model="numpy")
def constant_steps_(vs, ss, xs, ts, ms, os, n, first, p, flags):
    """One step of n elements at θ(t) = ts (t = 0, or a neuron that does not adapt)."""
    zero, one = p[7], p[8]
    for i in range(n):
        o, vp = fire_(vs[i], xs[i], ts[i], ms[i], flags[5], zero, one)
        os[i] = o
        vs[i] = vp
        ss[i] = vp if first else ss[i] + vp


@njit(cache=True, inline="always", error_model="numpy")
def step_(vs, ss, xs, ts, tcs, dets, cached, ms, os, n, t, t0, tf, p, flags, k, ec, lc, buf, theta):
    """Step t of the chunk (t0 + t of the run): adaptive, or at θ(t) = tcs (t0 + t = 0, or no adaptation)."""
    if flags[0] and t0 + t > 0:
        adaptive_steps_(vs, ss, xs, ts, dets, cached, ms, os, n, tf, p, flags, k, ec, lc, buf, theta)
    else:
        constant_steps_(vs, ss, xs, tcs, ms, os, n, t0 + t == 0, p, flags)


# The positions layout, [P, C] per step with channels fastest, flattened to N = P·C elements: x: [S, N] (or
# [1, N] when ``const``); v, vsum: [N]; out: [S, N]; mask: [K, N], the kept-spike draws of the chunk's first K steps
# (K = 0: none); ones: [block·C] all one; counts: [S, P] positive outputs per (step, position), if ``track``. Work
# goes in blocks of ``block`` positions (a loop over C alone is too short to vectorise when C is small);
# theta_max, theta_const: the per-channel values tiled to block·C. tvals: [S] the steps' indices t as floats;
# t0: the index of the chunk's first step.
@njit(parallel=True, cache=True, error_model="numpy")
def msat_positions(x, const, v, vsum, theta_max, theta_const, mask, n_mask, ones, tvals, t0, p, flags,
                   k, ec, lc, out, track, counts, channels, block):
    steps = out.shape[0]
    zero = p[7]
    n_el = v.shape[0]
    n_blocks = (n_el // channels + block - 1) // block
    for bi in prange(n_blocks):
        buf = np.empty((3, TILE), v.dtype)
        theta = np.empty(TILE, v.dtype)
        j0 = bi * block * channels
        j1 = min(n_el, j0 + block * channels)
        n = j1 - j0
        # Slices indexed from 0 (the compiler then knows no index is negative, and vectorises).
        vs = v[j0:j1]
        ss = vsum[j0:j1]
        dets = np.empty(n, v.dtype)
        cached = const and flags[0] and flags[2]
        if cached:  # one input current for every step: DET too, computed once for the chunk
            xs = x[0, j0:j1]
            for i in range(n):
                dets[i] = det_(xs[i], theta_max[i], p, flags, k, ec)
        for t in range(steps):
            xs = x[0, j0:j1] if const else x[t, j0:j1]
            os = out[t, j0:j1]
            ms = mask[t, j0:j1] if t < n_mask else ones[:n]
            step_(vs, ss, xs, theta_max, theta_const, dets, cached, ms, os, n, t, t0, tvals[t], p, flags, k, ec, lc,
                  buf, theta)
            if track:
                for q in range(n // channels):
                    spiked = 0
                    for c in range(channels):
                        spiked += 1 if os[q * channels + c] > zero else 0
                    counts[t, j0 // channels + q] = spiked


# x: [S, B, C, M] (or [1, B, C, M]); v, vsum: [B, C, M]; mask: [K, B, C, M]; ones: [M] all one; out: [S, B, C, M];
# counts: [S, B, M] (channels summed per position).
@njit(parallel=True, cache=True, error_model="numpy")
def msat_channels(x, const, v, vsum, theta_max, theta_const, mask, n_mask, ones, tvals, t0, p, flags,
                  k, ec, lc, out, track, counts):
    steps = out.shape[0]
    zero, one = p[7], p[8]
    n = v.shape[2]
    for b in prange(v.shape[0]):
        buf = np.empty((3, TILE), v.dtype)
        theta = np.empty(TILE, v.dtype)
        tm = np.empty(n, v.dtype)
        tc = np.empty(n, v.dtype)
        dets = np.empty(n, v.dtype)
        cached = const and flags[0] and flags[2]
        for c in range(v.shape[1]):
            tm[:] = theta_max[c]
            tc[:] = theta_const[c]
            vs = v[b, c]
            ss = vsum[b, c]
            if cached:  # one input current for every step: DET too, computed once for the chunk
                xs = x[0, b, c]
                for i in range(n):
                    dets[i] = det_(xs[i], tm[i], p, flags, k, ec)
            for t in range(steps):
                xs = x[0, b, c] if const else x[t, b, c]
                os = out[t, b, c]
                ms = mask[t, b, c] if t < n_mask else ones
                step_(vs, ss, xs, tm, tc, dets, cached, ms, os, n, t, t0, tvals[t], p, flags, k, ec, lc, buf, theta)
        if track:
            for t in range(steps):
                ns = counts[t, b]
                ns[:] = zero
                for c in range(v.shape[1]):
                    os = out[t, b, c]
                    for m in range(n):
                        ns[m] += one if os[m] > zero else zero
