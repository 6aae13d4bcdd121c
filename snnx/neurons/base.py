"""Spiking neurons: state registered and reset per batch, dynamics split into
charge / fire / reset, multi-step over time-folded tensors.

Layout. The converted network runs with time folded into the batch: every
stateless layer sees ``[steps·B, …]`` and only neurons unfold it to
``[steps, B, …]`` and loop over time. A neuron whose input has batch ``B``
(not ``steps·B``) is fed a current that is constant over the chunk (direct
encoding: everything before the first neuron is computed once per image).
The engine sets ``time_steps`` (steps in this chunk) and ``batch_size``
before each chunk; membrane state carries over between chunks until
``reset_state()``.

Accounting. When the engine sets ``track_spikes``, a neuron may publish
``spike_indicator``: a [steps·B, …] tensor in the output's dtype that is 1
where this chunk's output is a (positive) spike and 0 elsewhere. The IF
family does (it computes it anyway); the engine's counters then read spikes
and synaptic events from it instead of scanning the output again. Neurons
that leave it ``None`` are counted from their output.
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from snnx.kernels.neuron import if_chunk


def broadcast_channels(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Shape a 0-dim or per-channel [C] tensor to broadcast over [B, C, …]."""
    if value.dim() == 0:
        return value
    return value.view(-1, *([1] * (like.dim() - 2)))


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """channels_last for a 4-D tensor stored that way (and not also contiguous), else contiguous."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _is_shared(buf: torch.Tensor) -> bool:
    """Whether a tensor other than ``buf`` itself (a view, or another reference to it) is alive."""
    # References: the module's dict, the caller's local, this function's argument, getrefcount's.
    if sys.getrefcount(buf) > 4:
        return True
    try:  # tensors on the storage: buf, and the temporary storage object
        return torch._C._storage_Use_Count(buf.untyped_storage()._cdata) > 2
    except (AttributeError, RuntimeError):
        return True


# Plain per-chunk state of every neuron (never parameters, buffers or modules).
_PLAIN_STATE = frozenset({"v", "t", "time_steps", "batch_size", "track_spikes", "spike_indicator", "spike_counts",
                          "compiled"})

# sim.compile: one IF step (charge, fire, reset, emit) fused by torch.compile into a single
# pass over memory instead of four. Measured on the 2-core CPU (scripts/bench_sim.py
# --compile): about 2× faster per step for a 64×16×32×32 layer, but slower below ~10⁵
# neurons per step, where the compiled call's guard checks cost more than the passes saved;
# smaller layers keep the eager in-place loop. Results are bit for bit the eager path's: the
# same float ops in the same order (θ·s is exact, s being 0 or 1).
COMPILE_MIN_NUMEL = 1 << 16


def _if_step(v, x_t, theta, bias, spikes_t, out_t):
    v.add_(x_t)
    if bias is not None:
        v.add_(bias)
    spikes = (v >= theta).to(v.dtype)
    if spikes_t is not None:
        spikes_t.copy_(spikes)
    out_t.copy_(spikes * theta)
    v.sub_(out_t)


_compiled_if_step = None


def fused_if_step(v, x_t, theta, bias, spikes_t, out_t) -> None:
    """One in-place IF step through torch.compile (compiled once per process, shapes dynamic)."""
    global _compiled_if_step
    if _compiled_if_step is None:
        _compiled_if_step = torch.compile(_if_step, dynamic=True)
    _compiled_if_step(v, x_t, theta, bias, spikes_t, out_t)


class Neuron(nn.Module):
    """Base class: subclasses define ``charge``, ``fire``, ``reset`` and ``initial_potential``.

    ``threshold`` (θ) is a buffer, 0-dim (layer) or [C] (channel-wise).
    ``depends_on_T`` is true for neurons whose dynamics need the total number
    of steps (the engine then runs one pass per T and calls ``set_horizon``).
    """

    depends_on_T = False

    def __init__(self, threshold: torch.Tensor, v_init: float = 0.0):
        super().__init__()
        self.register_buffer("threshold", torch.as_tensor(threshold, dtype=torch.float32).clone())
        self.v_init = float(v_init)  # initial membrane potential as a fraction of θ
        self.time_steps = 1
        self.batch_size: int | None = None
        self.v: torch.Tensor | None = None
        self.t = 0  # steps simulated since the last reset
        self.track_spikes = False  # set by the engine's accounting
        self.compiled = False  # set by the engine for sim.compile (IF family: fused steps)
        self.spike_indicator: torch.Tensor | None = None  # this chunk's spikes as 0/1 (see module doc)
        # ... or, from the fused kernel, their counts per (step·row, position): channels summed
        self.spike_counts: torch.Tensor | None = None

    def __setattr__(self, name: str, value) -> None:
        # Per-step bookkeeping skips nn.Module's parameter/buffer/submodule checks (hot path).
        if name in _PLAIN_STATE:
            self.__dict__[name] = value
        else:
            super().__setattr__(name, value)

    # -- state -------------------------------------------------------------
    def reset_state(self) -> None:
        self.v = None
        self.t = 0
        self.spike_indicator = None
        self.spike_counts = None

    def release_buffers(self) -> None:
        """Drop the reusable output/spike buffers (the engine calls this at the end of a run)."""
        self.__dict__.pop("_out_buffer", None)
        self.__dict__.pop("_spike_buffer", None)

    def initial_potential(self, x_t: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(x_t) * (theta * self.v_init)

    # -- dynamics ----------------------------------------------------------
    def charge(self, v: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        return v + x_t

    def fire(self, v: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return (v >= theta).to(v.dtype)

    def reset(self, v: torch.Tensor, spikes: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return v - theta * spikes

    def emit(self, spikes: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        # Threshold balancing: the next layer receives θ·s, so weights stay unchanged.
        return spikes * theta

    def step(self, x_t: torch.Tensor) -> torch.Tensor:
        """One time step on a [B, …] input; returns the output sent downstream."""
        theta = broadcast_channels(self.threshold, x_t)
        if self.v is None:
            self.v = self.initial_potential(x_t, theta)
        v = self.charge(self.v, x_t)
        spikes = self.fire(v, theta)
        self.v = self.reset(v, spikes, theta)
        self.t += 1
        return self.emit(spikes, theta)

    # -- multi-step --------------------------------------------------------
    def unfold(self, x: torch.Tensor) -> torch.Tensor:
        """[steps·B, …] → [steps, B, …]; a [B, …] input is constant over the chunk."""
        steps = self.time_steps
        if steps > 1 and x.shape[0] == self.batch_size:
            return x.unsqueeze(0).expand(steps, *x.shape)
        return x.view(steps, x.shape[0] // steps, *x.shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_seq = self.unfold(x)
        out = torch.empty_like(x_seq)
        for t in range(x_seq.shape[0]):
            out[t] = self.step(x_seq[t])
        return out.flatten(0, 1)

    def extra_repr(self) -> str:
        shape = "layer" if self.threshold.dim() == 0 else f"{self.threshold.numel()} channels"
        return f"threshold={shape}, v_init={self.v_init}"


class IFNeuron(Neuron):
    """Integrate-and-fire with soft reset (reset by subtraction): v ← v + z; s = [v ≥ θ]; v ← v − θ·s."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Subclasses that change the dynamics go through the generic charge/fire/reset loop.
        if not self._has_fast_path():
            return super().forward(x)
        return self._forward_inplace(x)

    def _has_fast_path(self) -> bool:
        cls = type(self)
        return (cls.step is Neuron.step and cls.fire is Neuron.fire and cls.reset is Neuron.reset
                and cls.emit is Neuron.emit and cls.charge in _FAST_CHARGES)

    def charge_bias(self, theta: torch.Tensor) -> torch.Tensor | None:
        """A current added at every step after the input (None: none), for the in-place path."""
        return None

    def _forward_inplace(self, x: torch.Tensor) -> torch.Tensor:
        """The charge/fire/reset dynamics with in-place updates, bit for bit the generic path's.

        Per step: v += z (+ bias); s = [v ≥ θ] written as 0/1 in v's dtype
        (``torch.ge`` into a float tensor: one vectorised pass, no bool
        tensor); out = θ·s; v −= out. The emitted θ·s is what the reset
        subtracts, as in the generic ``reset``.
        """
        x_seq = self.unfold(x)
        steps = x_seq.shape[0]
        theta = broadcast_channels(self.threshold, x_seq[0])
        if self.v is None:
            self.v = self.initial_potential(x_seq[0], theta)
            self._positive_theta = bool((self.threshold > 0).all())
        bias = self.charge_bias(theta)
        v = self.v
        # Output and spike buffers keep the input's memory layout (channels-last stays
        # channels-last) and are reused from chunk to chunk (no fresh pages to fault in).
        flat_shape = (steps * x_seq.shape[1], *x_seq.shape[2:])
        fmt = memory_format_of(x_seq[0])
        out_flat = self._buffer("_out_buffer", flat_shape, x_seq, fmt, guard=True)
        out = out_flat.view(x_seq.shape)
        # With θ > 0 the output is nonzero exactly where s = 1: s is the spike indicator.
        if self.track_spikes and not hasattr(self, "_positive_theta"):
            self._positive_theta = bool((self.threshold > 0).all())
        track = self.track_spikes and self._positive_theta
        compiled = self.__dict__.get("compiled", False) and v.numel() >= COMPILE_MIN_NUMEL
        if not compiled:  # the whole chunk in one fused pass (snnx.kernels.neuron), where it applies
            counts = if_chunk(x_seq, v, self.threshold, bias, out, track)
            if counts is not False:
                self.t += steps
                self.spike_indicator = None
                self.spike_counts = counts
                return out_flat
        self.spike_counts = None
        spikes_flat = self._buffer("_spike_buffer", flat_shape, x_seq, fmt, guard=False) if track else out_flat
        spikes = spikes_flat.view(x_seq.shape)
        for t in range(steps):
            if compiled:
                fused_if_step(v, x_seq[t], theta, bias, spikes[t] if track else None, out[t])
                continue
            v.add_(x_seq[t])
            if bias is not None:
                v.add_(bias)
            torch.ge(v, theta, out=spikes[t])
            if track:
                torch.mul(spikes[t], theta, out=out[t])
            else:
                out[t].mul_(theta)
            v.sub_(out[t])
        self.t += steps
        self.spike_indicator = spikes_flat if track else None
        return out_flat

    def _buffer(self, name: str, shape: tuple, like: torch.Tensor, fmt: torch.memory_format, *,
                guard: bool) -> torch.Tensor:
        """A [steps·B, …] buffer kept on the module; with ``guard``, reused only if nothing else holds it.

        The output buffer is what the next layer reads: it is reused only
        when no tensor (view or reference) from the previous chunk is alive
        — a hook that kept an output keeps its values. The spike buffer is
        only read within the chunk (``spike_indicator``).
        """
        buf = self.__dict__.get(name)
        if (buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device
                or memory_format_of(buf) != fmt or (guard and _is_shared(buf))):
            buf = torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=fmt)
            self.__dict__[name] = buf
        return buf


class ShiftedIFNeuron(IFNeuron):
    """Deng & Gu 2021 shift: θ/(2T) added to the input current at every step.

    The shift depends on the simulation length T, so the engine runs one pass
    per T (or uses one fixed ``horizon`` for the whole sweep).
    """

    def __init__(self, threshold: torch.Tensor, v_init: float = 0.0, horizon: int | None = None):
        super().__init__(threshold, v_init)
        self.horizon = horizon
        # A horizon given at conversion (convert.shift_T) holds for the whole sweep.
        self.fixed_horizon = horizon is not None

    @property
    def depends_on_T(self) -> bool:
        return not self.fixed_horizon

    def set_horizon(self, T: int) -> None:
        if not self.fixed_horizon:
            self.horizon = int(T)

    def charge(self, v: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        theta = broadcast_channels(self.threshold, x_t)
        return v + x_t + theta / (2 * self.horizon)

    def charge_bias(self, theta: torch.Tensor) -> torch.Tensor:
        # The same value, added after the input like ``charge`` does: (v + z) + θ/(2T).
        return theta / (2 * self.horizon)


class OffsetCalibratedIFNeuron(IFNeuron):
    """IF neuron with offset-spike calibration, COS (Hao et al. 2023).

    Before simulating, the neuron runs its first ``presim`` input steps from
    v0 = v_init·θ. A neuron that ends them with v < 0 after having fired sent
    one spike too many: its v0 is lowered by θ; one that ends with v ≥ θ sent
    one too few: its v0 is raised by θ. The T steps are then simulated from
    the corrected v0 on the same inputs. The engine guarantees that the first
    chunk holds at least ``presim`` steps (the extra latency is reported).
    """

    def __init__(self, threshold: torch.Tensor, v_init: float = 0.5, presim: int = 4):
        super().__init__(threshold, v_init)
        self.presim = int(presim)

    def calibrated_potential(self, x_seq: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        v0 = self.initial_potential(x_seq[0], theta)
        v = v0
        fired = torch.zeros_like(v0, dtype=torch.bool)
        for t in range(self.presim):
            v = self.charge(v, x_seq[t])
            spikes = self.fire(v, theta)
            fired |= spikes.bool()
            v = self.reset(v, spikes, theta)
        too_many = (v < 0) & fired
        too_few = v >= theta
        return v0 - theta * too_many.to(v0.dtype) + theta * too_few.to(v0.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_seq = self.unfold(x)
        if self.v is None:
            if x_seq.shape[0] < self.presim:
                raise RuntimeError(f"COS needs the first {self.presim} steps in one chunk, got {x_seq.shape[0]}")
            self.v = self.calibrated_potential(x_seq, broadcast_channels(self.threshold, x_seq[0]))
            self._positive_theta = bool((self.threshold > 0).all())
        if self._has_fast_path():
            return self._forward_inplace(x)  # from the calibrated v0 on: plain IF dynamics
        out = torch.empty_like(x_seq)
        for t in range(x_seq.shape[0]):
            out[t] = self.step(x_seq[t])
        return out.flatten(0, 1)


# Charges the in-place IF path reproduces: v + z, and v + z + θ/(2T) (via ``charge_bias``).
_FAST_CHARGES = (Neuron.charge, ShiftedIFNeuron.charge)
