"""The MSAT neuron over a time chunk in one pass (numba; see :mod:`snnx.kernels`).

The reference step (:meth:`snnx.neurons.MSATNeuron.step`) makes some sixty
elementwise passes over memory per step, most of them the threshold's
softplus, exponentials and sigmoid. Here each neuron's potential and running
sum stay in registers for the chunk; θ(t) is computed by the operations of
:mod:`snnx.kernels.elementary` in the same order as the reference step, so
outputs, potentials and running sums are bit for bit the same
(tests/test_kernels.py). Spike-confidence draws come from the neuron's own
torch generator, drawn for the chunk's confidence steps at once: the same
numbers, in the same order, as one draw per step.

Layouts as for the IF kernel (:mod:`snnx.kernels.neuron`).
"""

from __future__ import annotations

import math

import torch

from snnx import kernels as _common
from snnx.kernels import elementary
from snnx.kernels.neuron import _checked_layout, _layout, _per_channel, count_buffer, counts_per_row


def _build():
    from snnx.kernels import msat_jit  # numba is optional: imported only here

    return {"positions": msat_jit.msat_positions, "channels": msat_jit.msat_channels}


def _kernels() -> dict | None:
    return _common.load(__name__, _build)


def _tables(dtype: torch.dtype):
    import numpy as np  # with numba only

    c = elementary.constants(dtype)
    t = np.float32 if dtype == torch.float32 else np.float64
    return (tuple(t(v) for v in (c.lo, c.hi, c.log2e, c.shifter, c.ln2_hi, c.ln2_lo, 0.0, math.inf)),
            tuple(t(v) for v in c.exp_coefficients), tuple(t(v) for v in c.log_coefficients), t)


_table_cache: dict = {}
# Elements per block of the positions layout's loop (see snnx.kernels.msat_jit.msat_positions).
POSITION_BLOCK = 1024


def msat_chunk(neuron, x_seq: torch.Tensor, v: torch.Tensor, vsum: torch.Tensor | None, mask: torch.Tensor | None,
               out_seq: torch.Tensor, track: bool):
    """A function that runs ``neuron``'s chunk in place (``v``, ``vsum``, ``out_seq``); None: the kernel does not apply.

    ``vsum`` is the running sum of post-reset potentials (written when the
    neuron tracks it, else None); ``mask`` the kept-spike indicators of the
    chunk's first steps, [K, B, …] in ``out_seq``'s layout, or None; it is read
    when the returned function runs (the caller fills it after this check).
    The function returns the positive outputs per (step·row, position) as
    :func:`snnx.kernels.neuron.if_chunk` does when ``track``, else None.
    """
    channels = v.shape[1] if v.dim() >= 2 else 0
    tensors = [x_seq, v, out_seq] + [t for t in (vsum, mask) if t is not None]
    if (channels == 0 or v.numel() == 0 or not _common.applies(*tensors)
            or out_seq.shape[1:] != v.shape or x_seq.shape[1:] != v.shape or _kernels() is None):
        return None
    theta_max = _per_channel(neuron.threshold, channels, v)
    fixed = neuron.threshold * neuron.fixed_fraction if neuron.fixed_fraction is not None else neuron.threshold
    theta_const = _per_channel(fixed, channels, v)
    layout = _checked_layout(x_seq, v, out_seq)
    if theta_max is None or theta_const is None or layout is None:
        return None
    kind, x, v_view, out, const = layout
    vsum_view = mask_view = None
    if vsum is not None:  # the state's layout, viewed as v is
        view = _layout(x_seq, vsum, out_seq)
        if view is None or view[0] != kind or view[2].stride() != v_view.stride():
            return None
        vsum_view = view[2]
    if mask is not None:  # [K, B, …]: viewed as the input is
        view = _layout(mask, v, mask)
        if view is None or view[0] != kind or view[1].stride()[1:] != v_view.stride():
            return None
        mask_view = view[1]
    import numpy as np  # with numba only

    dtype = v.dtype
    if dtype not in _table_cache:
        _table_cache[dtype] = _tables(dtype)
    k, ec, lc, scalar = _table_cache[dtype]
    # Not tracked: scratch the kernel writes and nothing reads back, but its own memory (were it v, the compiler
    # could not rule out aliasing and would not vectorise the loop).
    vsum_np = vsum_view.numpy() if vsum_view is not None else np.empty_like(v_view.numpy())
    n_mask = 0 if mask is None else mask.shape[0]
    mask_np = mask_view.numpy() if mask_view is not None else np.zeros((1,) * x.dim(), dtype=scalar)
    steps = out_seq.shape[0]
    tvals = np.arange(neuron.t, neuron.t + steps, dtype=np.float64).astype(scalar)
    tau_det = neuron.tau_rd * neuron.tau_rd if neuron.det_tau == "squared" else neuron.tau_rd
    normalised = neuron.units != "raw"
    p = tuple(scalar(v) for v in (neuron.alpha, neuron.k_a, neuron.k_i, neuron.C, neuron.tau_mp, tau_det,
                                  -1.0 if neuron.v_t is None else neuron.v_t, 0.0, 1.0, 2.0))
    flags = (bool(neuron.adaptive), bool(neuron.use_dtt), bool(neuron.use_det), normalised,
             neuron.v_t is None and not normalised, bool(neuron.confidence_reset), bool(neuron.softplus_folds))
    counts = count_buffer(kind, steps, v_view, track)
    if kind == "positions":  # flattened to P·C elements per step, theta tiled over a block of positions
        block = max(1, POSITION_BLOCK // channels)
        try:  # torch views (never copies): the kernel writes v, the running sum and out in place
            x_np, out_np = (t.view(t.shape[0], -1).numpy() for t in (x, out))
            v_np = v_view.view(-1).numpy()
            vsum_np = vsum_view.view(-1).numpy() if vsum_view is not None else np.empty_like(v_np)
            mask_np = mask_view.view(mask_view.shape[0], -1).numpy() if mask_view is not None else \
                np.zeros((1, 1), dtype=scalar)
        except RuntimeError:  # not expressible as flat views: the reference steps run
            return None
        tiled = [np.tile(t.numpy(), block) for t in (theta_max, theta_const)]
        ones = np.ones(block * channels, dtype=scalar)
        args = (x_np, const, v_np, vsum_np, tiled[0], tiled[1], mask_np, n_mask, ones, tvals, neuron.t, p,
                flags, k, ec, lc, out_np, bool(track), counts.numpy(), channels, block)
    else:
        ones = np.ones(v_view.shape[2], dtype=scalar)
        args = (x.numpy(), const, v_view.numpy(), vsum_np, theta_max.numpy(), theta_const.numpy(), mask_np,
                n_mask, ones, tvals, neuron.t, p, flags, k, ec, lc, out.numpy(), bool(track), counts.numpy())

    def run() -> torch.Tensor | None:
        _common.sync_threads()
        _kernels()[kind](*args)
        return counts_per_row(counts, steps, v) if track else None

    return run


__all__ = ["msat_chunk"]
