"""The per-layer diagnostics' big reductions in one pass each (numba; see :mod:`snnx.kernels`).

:class:`snnx.sim.accounting.LayerProbe` keeps, per image and neuron, the summed
input current and output in float64 and, at every read-out T, reduces them
against the ANN to seven numbers (clipping and flooring error, SIN counts,
error vs the ANN, spikes). In torch that is two accumulations per chunk and
about fifteen full-size passes per read-out, most of a simulation's time when
layers are recorded (``sim.record_layers``, on by default). Here:

- :func:`accumulate`: Σ_t of a chunk's inputs and outputs added to both sums in
  one pass (the steps summed in float64 first, as torch's ``sum(0, dtype=float64)``
  does; sums of a few float32 values are exact in float64, so the order does not
  show);
- :func:`record_sums`: the seven read-out sums in one pass, per image then over
  the batch (sums in another order than torch's: equal up to float64 rounding).

Both work on the tensors' memory directly, so they need every operand in one
dense layout (the probe lays the ANN's activations out like its sums).
"""

from __future__ import annotations

import torch

from snnx import kernels as _common


def _build():
    # numba is optional (snnx.kernels.load falls back to torch without it) and compiles on first use.
    import numpy as np
    from numba import njit, prange

    @njit(parallel=True, cache=True, error_model="numpy")
    def accumulate_steps(x, o, acc_x, acc_o):  # x, o: [S, N] (any dtype); acc_x, acc_o: [N] float64
        for i in prange(acc_x.shape[0]):
            sx = 0.0
            so = 0.0
            for t in range(x.shape[0]):
                sx += x[t, i]
                so += o[t, i]
            acc_x[i] += sx
            acc_o[i] += so

    # Flat arrays [B, N] (per image); θ per channel with channel = (i // inner) % C.
    # sums[b]: clip_sum, floor_sum, floor_n, sin_spiked, sin_n, err_sum, spike_count.
    @njit(parallel=True, cache=True, error_model="numpy")
    def read_out(in_sum, out_sum, ann_pre, ann_out, spiked, use_spiked, theta, inner, T, rate_coded, unit,
                 count_spikes, sums):
        channels = theta.shape[0]
        for b in prange(in_sum.shape[0]):
            clip = 0.0
            floor = 0.0
            floor_n = 0.0
            sin_spiked = 0.0
            sin_n = 0.0
            err = 0.0
            count = 0.0
            for i in range(in_sum.shape[1]):
                th = theta[(i // inner) % channels]
                z = in_sum[b, i] / T
                o = out_sum[b, i]
                phi = o / T if rate_coded else o * unit
                if rate_coded:
                    if z > th:
                        clip += z - th
                    if z > 0.0 and z <= th:
                        floor += abs(z - phi)
                        floor_n += 1.0
                if ann_pre[b, i] <= 0:
                    sin_n += 1.0
                    if (spiked[b, i] if use_spiked else o > 0.0):
                        sin_spiked += 1.0
                err += abs(phi - ann_out[b, i])
                if count_spikes:
                    count += np.rint(o / th)
            sums[b, 0] = clip
            sums[b, 1] = floor
            sums[b, 2] = floor_n
            sums[b, 3] = sin_spiked
            sums[b, 4] = sin_n
            sums[b, 5] = err
            sums[b, 6] = count

    @njit(parallel=True, cache=True, error_model="numpy")
    def accumulate_one(o, acc_o):  # o: [S, N]; acc_o: [N] float64
        for i in prange(acc_o.shape[0]):
            so = 0.0
            for t in range(o.shape[0]):
                so += o[t, i]
            acc_o[i] += so

    return {"accumulate_steps": accumulate_steps, "accumulate_one": accumulate_one, "read_out": read_out}


def _kernels() -> dict | None:
    return _common.load(__name__, _build)


def _dense(t: torch.Tensor) -> bool:
    return t.is_contiguous() or (t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last))


def _memory(t: torch.Tensor, rows: int = 1) -> torch.Tensor:
    """A dense tensor's elements in memory order, as [rows, numel/rows] (a view, no copy)."""
    return t.as_strided((rows, t.numel() // rows), (t.numel() // rows, 1), t.storage_offset())


def _steps(seq: torch.Tensor, start: int, end: int, n: int) -> torch.Tensor:
    return seq.as_strided((end - start, n), (seq.stride(0), 1), seq[start].storage_offset())


def accumulate(acc_x: torch.Tensor | None, acc_o: torch.Tensor, x_seq: torch.Tensor | None, o_seq: torch.Tensor,
               start: int, end: int) -> bool:
    """acc_o += Σ_{t∈[start,end)} o_seq[t] (and acc_x from x_seq unless None) in one pass; False: not applicable.

    Each step's tensor must have the accumulator's dense layout.
    """
    pairs = [(acc_o, o_seq)] + ([(acc_x, x_seq)] if acc_x is not None else [])
    layout = acc_o.stride()
    if (_kernels() is None or torch.compiler.is_compiling() or not _dense(acc_o)
            or any(acc.dtype != torch.float64 or acc.device.type != "cpu" or acc.stride() != layout
                   or seq.device.type != "cpu" or seq.dtype not in _common.DTYPES or seq.stride(0) == 0
                   or seq[start].stride() != layout for acc, seq in pairs)):
        return False
    n = acc_o.numel()
    _common.sync_threads()
    if acc_x is None:
        _kernels()["accumulate_one"](_steps(o_seq, start, end, n).numpy(), _memory(acc_o)[0].numpy())
    else:
        _kernels()["accumulate_steps"](_steps(x_seq, start, end, n).numpy(), _steps(o_seq, start, end, n).numpy(),
                                       _memory(acc_x)[0].numpy(), _memory(acc_o)[0].numpy())
    return True


def like(t: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
    """``t`` copied into ``layout``'s memory layout (itself when it already has it)."""
    if t.stride() == layout.stride():
        return t
    out = torch.empty_like(layout, dtype=t.dtype)
    out.copy_(t)
    return out


def record_sums(in_sum: torch.Tensor, out_sum: torch.Tensor, ann_pre: torch.Tensor, ann_out: torch.Tensor,
                spiked: torch.Tensor | None, threshold: torch.Tensor, T: int, *, rate_coded: bool, unit: float,
                count_spikes: bool) -> list[float] | None:
    """The read-out sums (see the module doc) over the batch, or None where the kernel does not apply.

    ``ann_pre`` / ``ann_out`` / ``spiked`` must already be laid out like ``in_sum``
    (:func:`like`); ``spiked`` None: "has spiked" is ``out_sum > 0``.
    """
    operands = [in_sum, out_sum, ann_pre, ann_out] + ([spiked] if spiked is not None else [])
    if (_kernels() is None or in_sum.dim() < 2 or not _dense(in_sum)
            or any(t.device.type != "cpu" or t.stride() != in_sum.stride() or t.shape != in_sum.shape
                   for t in operands)
            or in_sum.dtype != torch.float64 or out_sum.dtype != torch.float64
            or ann_pre.dtype not in _common.DTYPES or ann_out.dtype not in _common.DTYPES
            or threshold.numel() not in (1, in_sum.shape[1]) or torch.compiler.is_compiling()):
        return None
    channels = threshold.numel()
    if channels == 1 or in_sum.dim() == 2 or (in_sum.dim() == 4 and not in_sum.is_contiguous()):
        inner = 1  # one θ, [B, F] rows, or channels innermost (channels-last)
    else:
        inner = in_sum[0, 0].numel()  # NCHW-like: a channel's positions are contiguous
    if in_sum.dim() == 4 and not in_sum.is_contiguous() and in_sum.stride(0) != in_sum[0].numel():
        return None
    batch = in_sum.shape[0]
    theta = threshold.detach().to(torch.float64).reshape(-1).contiguous()
    flag = spiked if spiked is not None else torch.zeros((1, 1), dtype=torch.bool)
    sums = torch.empty((batch, 7), dtype=torch.float64)
    _common.sync_threads()
    _kernels()["read_out"](_memory(in_sum, batch).numpy(), _memory(out_sum, batch).numpy(),
                           _memory(ann_pre, batch).numpy(), _memory(ann_out, batch).numpy(),
                           (_memory(flag, batch) if spiked is not None else flag).numpy(), spiked is not None,
                           theta.numpy(), inner, float(T), bool(rate_coded), float(unit), bool(count_spikes),
                           sums.numpy())
    return sums.sum(0).tolist()


__all__ = ["accumulate", "like", "record_sums"]
