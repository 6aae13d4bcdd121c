"""The numba code of :mod:`snnx.kernels.msat` (imported by it on first use; numba required here).

The helpers are module-level jitted functions, not closures, so the kernels
that call them load from numba's disk cache. Every constant arrives as an
tuple of scalars of the state's dtype (tuples,
not arrays: their length and values are known to the compiler, which unrolls
the polynomials and keeps the values in registers): a Python float literal would promote a
float32 expression to float64 and change its rounding.
"""

from __future__ import annotations

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
def softplus_(x, k, ec, lc, zero, two):
    y = exp_(-abs(x), k, ec)
    s = y / (y + two)
    s2 = s * s
    q = lc[0] * s2 + lc[1]
    for a in lc[2:]:
        q = q * s2 + a
    return max(x, zero) + (s * q) * two


# p: the neuron's scalars in the state's dtype: alpha, k_a, k_i, C, tau_mp, tau_det, v_t (used if not vt_neg_theta),
# zero, one, two. flags: adaptive, use_dtt, use_det, normalised, vt_neg_theta, confidence_reset.
@njit(cache=True, inline="always", error_model="numpy")
def threshold_(vv, vsum, x, th, tf, p, flags, k, ec, lc):
    """θ(t) for t ≥ 1 of an adaptive neuron (MSATNeuron.threshold_at, the same operations)."""
    arg = p[7]
    if flags[1]:
        u = vv - vsum / tf
        if flags[3]:
            u = u / th
        sp = softplus_(u / p[2], k, ec, lc, p[7], p[9])
        vt = -th if flags[4] else p[6]
        arg = arg + p[4] * ((p[0] * u + vt) + p[1] * sp)
    if flags[2]:
        z = x / th if flags[3] else x
        arg = arg + p[5] * exp_((-z) / p[3], k, ec)
    return sigmoid_(arg, k, ec, p[8]) * th


# The positions layout, [P, C] per step with channels fastest, flattened to N = P·C elements: x: [S, N] (or
# [1, N] when ``const``); v, vsum: [N]; out: [S, N]; mask: [K, N], the kept-spike draws of the chunk's first K steps
# (K = 0: none); counts: [S, P] positive outputs per (step, position), if ``track``. Work goes in blocks of
# ``block`` positions, each one loop over its block·C elements (a loop over C alone is too short to vectorise
# when C is small); theta_max, theta_const: the per-channel values tiled to block·C. tvals: [S] the steps'
# indices t as floats; t0: the index of the chunk's first step.
@njit(parallel=True, cache=True, error_model="numpy")
def msat_positions(x, const, v, vsum, theta_max, theta_const, mask, n_mask, tvals, t0, p, flags,
                   k, ec, lc, out, track, counts, channels, block):
    steps = out.shape[0]
    zero, one = p[7], p[8]
    n_el = v.shape[0]
    n_blocks = (n_el // channels + block - 1) // block
    for bi in prange(n_blocks):
        j0 = bi * block * channels
        j1 = min(n_el, j0 + block * channels)
        # Slices indexed from 0 (the compiler then knows no index is negative, and vectorises).
        vs = v[j0:j1]
        ss = vsum[j0:j1]
        for t in range(steps):
            xs = x[0, j0:j1] if const else x[t, j0:j1]
            os = out[t, j0:j1]
            use_mask = t < n_mask
            ms = mask[t, j0:j1] if use_mask else mask[0]
            adaptive_step = flags[0] and t0 + t > 0
            tf = tvals[t]
            for i in range(j1 - j0):
                vv = vs[i]
                xc = xs[i]
                if adaptive_step:
                    th = threshold_(vv, ss[i], xc, theta_max[i], tf, p, flags, k, ec, lc)
                else:
                    th = theta_const[i]
                vn = vv + xc
                fired = one if vn >= th else zero
                s = fired * ms[i] if use_mask else fired
                vp = vn - th * (fired if flags[5] else s)
                os[i] = s * th
                vs[i] = vp
                if flags[0] and flags[1]:
                    ss[i] = vp if t0 + t == 0 else ss[i] + vp
            if track:
                for q in range((j1 - j0) // channels):
                    n = 0
                    for c in range(channels):
                        n += 1 if os[q * channels + c] > zero else 0
                    counts[t, j0 // channels + q] = n


# x: [S, B, C, M] (or [1, B, C, M]); v, vsum: [B, C, M]; mask: [K, B, C, M]; out: [S, B, C, M];
# counts: [S, B, M] (channels summed per position).
@njit(parallel=True, cache=True, error_model="numpy")
def msat_channels(x, const, v, vsum, theta_max, theta_const, mask, n_mask, tvals, t0, p, flags,
                  k, ec, lc, out, track, counts):
    steps = out.shape[0]
    zero, one = p[7], p[8]
    for b in prange(v.shape[0]):
        if track:
            for t in range(steps):
                counts[t, b, :] = zero
        for c in range(v.shape[1]):
            tm = theta_max[c]
            tc = theta_const[c]
            vs = v[b, c]
            ss = vsum[b, c]
            for t in range(steps):
                xs = x[0, b, c] if const else x[t, b, c]
                os = out[t, b, c]
                ns = counts[t, b]
                adaptive_step = flags[0] and t0 + t > 0
                for m in range(v.shape[2]):
                    vv = vs[m]
                    xc = xs[m]
                    if adaptive_step:
                        th = threshold_(vv, ss[m], xc, tm, tvals[t], p, flags, k, ec, lc)
                    else:
                        th = tc
                    vn = vv + xc
                    fired = one if vn >= th else zero
                    s = fired * mask[t, b, c, m] if t < n_mask else fired
                    vp = vn - th * (fired if flags[5] else s)
                    o = s * th
                    os[m] = o
                    vs[m] = vp
                    if track:
                        ns[m] += one if o > zero else zero
                    if flags[0] and flags[1]:
                        ss[m] = vp if t0 + t == 0 else ss[m] + vp
