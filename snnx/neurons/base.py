"""Spiking neurons: state registered and reset per batch, dynamics split into
charge / fire / reset, multi-step over time-folded tensors.

Layout. The converted network runs with time folded into the batch: every
stateless layer sees ``[steps·B, …]`` and only neurons unfold it to
``[steps, B, …]`` and loop over time. A neuron whose input has batch ``B``
(not ``steps·B``) is fed a current that is constant over the chunk (direct
encoding: everything before the first neuron is computed once per image).
Membrane state carries over between chunks until the next batch begins.

The engine drives a neuron only through what :class:`Neuron` declares:
:meth:`~Neuron.start_run` / :meth:`~Neuron.finish_run` around a run,
:meth:`~Neuron.begin_batch` (state reset, pass length T) per batch and pass,
:meth:`~Neuron.begin_chunk` (steps, batch) per chunk, and the class-level
facts ``depends_on_T``, ``presim``, ``unit``, ``encodes_input`` and
``threshold_varies``. Outside
the engine, :meth:`~Neuron.run` simulates one ``[T, B, …]`` input on its own.

Backends. Each neuron has one reference step (:meth:`~Neuron.step`);
``backend="reference"`` runs every chunk through it. ``"fused"`` (default)
runs the neuron's multi-step path where it has one — the fused CPU kernel
(:mod:`snnx.kernels.neuron`) where it applies, else in-place torch loops —
and ``"compile"`` the IF family's per-step update through torch.compile.
All three give the same numbers bit for bit (tests/test_engine.py).

Accounting. When the engine turns ``track_spikes`` on, a neuron may publish
``spike_indicator``: a [steps·B, …] tensor in the output's dtype that is 1
where this chunk's output is a (positive) spike and 0 elsewhere; or, from the
fused kernel, ``spike_counts``. The IF family does (it computes them anyway);
the engine's counters then read spikes and synaptic events from them instead
of scanning the output again. Neurons that leave both ``None`` are counted
from their output.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
from torch import nn

from snnx.kernels.neuron import if_chunk
from snnx.neurons.registry import NEURONS
from snnx.registry import param


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


def device_generator(device: torch.device) -> torch.Generator:
    """A generator for ``torch.rand(..., device=device)``: the device's own, a CPU one for ``meta``.

    The meta device (shapes only, used by the device audit) has no generator, and its draws read
    none; every other device needs its own.
    """
    device = torch.device(device)
    return torch.Generator(device="cpu" if device.type == "meta" else device)


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
                          "backend", "_positive_theta"})

# How a neuron runs its chunks (see the module doc): the reference step, the neuron's fused
# multi-step path, or that path with the IF update compiled by torch.compile (sim.compile).
BACKENDS = ("reference", "fused", "compile")


# sim.compile: one IF step (charge, fire, reset, emit) fused by torch.compile into a single
# pass over memory instead of four. On small layers the compiled call's guard checks cost
# more than the passes saved, so they keep the eager in-place loop (README, "Simulation").
# Results are bit for bit the eager path's: the same float ops in the same order (θ·s is
# exact, s being 0 or 1).
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
    """Base class: subclasses define ``charge``, ``fire``, ``reset`` and ``initial_potential`` (or ``step``).

    ``threshold`` (θ) is a buffer, 0-dim (layer) or [C] (channel-wise). The
    class attributes below, the methods of the "engine contract" section and
    the state set in ``__init__`` (``time_steps``, ``t``, ``v``,
    ``spike_indicator``, ``spike_counts``, read-only outside the neuron) are
    everything the engine, the accounting and the diagnostics use; a subclass
    overrides the ones that differ for it.
    """

    #: The dynamics need the pass length T: the engine then runs one pass per T and
    #: announces T with :meth:`set_horizon` (through :meth:`begin_batch`) before each.
    depends_on_T: bool = False
    #: Input steps the neuron pre-simulates at the start of a batch (offset-spike calibration):
    #: the engine's first chunk holds at least this many steps; 0: none.
    presim: int = 0
    #: The activation one ±1 output spike stands for (the signed all-integer neurons, whose spikes
    #: are plain ±1); None: the output is θ·s, a rate code of the activation (see :attr:`rate_coded`).
    unit: float | None = None
    #: The neuron turns the network's input into spikes itself (scatter-and-gather encoding):
    #: the engine then refuses to rate-code the input on top.
    encodes_input: bool = False
    #: θ changes from step to step (MSAT): spike counts cannot be read off Σ out / θ.
    threshold_varies: bool = False

    def __init__(self, threshold: torch.Tensor, v_init: float = 0.0):
        super().__init__()
        self.register_buffer("threshold", torch.as_tensor(threshold, dtype=torch.float32).clone())
        self.v_init = float(v_init)  # initial membrane potential as a fraction of θ
        self.time_steps = 1  # steps in the current chunk (begin_chunk)
        self.batch_size: int | None = None  # images in the current batch (begin_chunk)
        self.v: torch.Tensor | None = None  # membrane potential; None until a batch's first step
        self.t = 0  # steps simulated since the last reset
        self.track_spikes = False  # publish spike_indicator / spike_counts (start_run)
        self.backend = "fused"  # how chunks run: one of BACKENDS (start_run)
        self.spike_indicator: torch.Tensor | None = None  # this chunk's spikes as 0/1 (see module doc)
        # ... or, from the fused kernel, their counts per (step·row, position): channels summed
        self.spike_counts: torch.Tensor | None = None
        self._positive_theta: bool | None = None  # θ > 0 everywhere (publishes_spikes), once per batch

    def __setattr__(self, name: str, value) -> None:
        # Per-step bookkeeping skips nn.Module's parameter/buffer/submodule checks (hot path).
        if name in _PLAIN_STATE:
            self.__dict__[name] = value
        else:
            super().__setattr__(name, value)

    @property
    def rate_coded(self) -> bool:
        """θ·s neurons (their θ is an activation level); not the ±1 all-integer ones, which carry ``unit``."""
        return self.unit is None

    @property
    def v_start(self) -> float:
        """The start potential as a fraction of θ, plus the charge the neuron adds by itself over a pass."""
        return self.v_init

    # -- engine contract -----------------------------------------------------
    def start_run(self, *, backend: str = "fused", track_spikes: bool = False) -> None:
        """Before a simulation: the backend its chunks run on, and whether to publish spikes for the accounting."""
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        self.track_spikes = bool(track_spikes)

    def finish_run(self) -> None:
        """After a simulation: stop publishing spikes and drop the reusable buffers."""
        self.track_spikes = False
        self.spike_indicator = None
        self.spike_counts = None
        self.release_buffers()

    def set_horizon(self, T: int) -> None:
        """The length T of the coming pass; only neurons that ``depends_on_T`` use it."""

    def begin_batch(self, horizon: int) -> None:
        """A new batch (or a new pass over it): state reset, then the pass length announced."""
        self.reset_state()
        self.set_horizon(horizon)

    def begin_chunk(self, steps: int, batch: int) -> None:
        """The next forward holds ``steps`` time steps of a ``batch`` of images (see :meth:`unfold`)."""
        self.time_steps = int(steps)
        self.batch_size = int(batch)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """Simulate one batch on its own: ``x`` [T, B, …] input currents → outputs [T, B, …].

        Resets the state, announces T as the horizon and runs the reference
        :meth:`step` through time (after :meth:`begin_sequence`); the state it
        ends in stays readable (``v``, ``t`` …).
        """
        steps, batch = x.shape[0], x.shape[1]
        self.begin_batch(steps)
        self.begin_chunk(steps, batch)
        self.begin_sequence(x)
        return self.reference_steps(x)

    # -- state -------------------------------------------------------------
    def reset_state(self) -> None:
        self.v = None
        self.t = 0
        self.spike_indicator = None
        self.spike_counts = None
        self._positive_theta = None

    def publishes_spikes(self) -> bool:
        """Whether this chunk should publish spikes for the accounting: tracking is on and θ > 0 everywhere
        (then a θ·s output is nonzero, and positive, exactly where a spike is); θ checked once per batch."""
        if not self.track_spikes:
            return False
        if self._positive_theta is None:
            self._positive_theta = bool((self.threshold > 0).all())
        return self._positive_theta

    def release_buffers(self) -> None:
        """Drop the reusable output/spike buffers (the engine calls this at the end of a run)."""
        self.__dict__.pop("_out_buffer", None)
        self.__dict__.pop("_spike_buffer", None)

    def initial_potential(self, x_t: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(x_t) * (theta * self.v_init)

    def begin_sequence(self, x_seq: torch.Tensor) -> None:
        """Called with a batch's first chunk [steps, B, …] before its first step; nothing by default (COS: v0)."""

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
        """The reference step: one time step on a [B, …] input; returns the output sent downstream."""
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

    def reference_steps(self, x_seq: torch.Tensor) -> torch.Tensor:
        """[steps, B, …] → [steps, B, …] through :meth:`step`, one step at a time."""
        out = None
        for t in range(x_seq.shape[0]):
            y = self.step(x_seq[t])
            if out is None:
                out = torch.empty_like(x_seq, dtype=y.dtype)
            out[t] = y
        return out

    def fused_steps(self, x_seq: torch.Tensor) -> torch.Tensor:
        """[steps, B, …] → [steps, B, …] by the neuron's multi-step path; the reference steps unless overridden.

        An override performs the same operations in the same order as :meth:`step` (bit for bit)
        and may publish ``spike_indicator`` / ``spike_counts``.
        """
        return self.reference_steps(x_seq)

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_seq = self.unfold(x)
        if self.v is None:
            self.begin_sequence(x_seq)
        if self.backend == "reference":
            self.spike_indicator = self.spike_counts = None
            return self.reference_steps(x_seq).flatten(0, 1)
        return self.fused_steps(x_seq).flatten(0, 1)

    def extra_repr(self) -> str:
        shape = "layer" if self.threshold.dim() == 0 else f"{self.threshold.numel()} channels"
        return f"threshold={shape}, v_init={self.v_init}"


@dataclass(kw_only=True)
class IFNeuronParams:
    name: str = param("if", "the neuron")
    threshold: torch.Tensor = param(doc="θ: one value (layer-wise) or one per channel [C]", required=True)
    v_init: float = param(0.0, "initial membrane potential as a fraction of θ")


@NEURONS.register("if", params=IFNeuronParams, doc="integrate-and-fire, reset by subtraction, output θ·s",
                  depends_on_T=False, signed=False, rate_coded=True, fused=True)
class IFNeuron(Neuron):
    """Integrate-and-fire with soft reset (reset by subtraction): v ← v + z; s = [v ≥ θ]; v ← v − θ·s."""

    def _has_fast_path(self) -> bool:
        cls = type(self)
        return (cls.step is Neuron.step and cls.fire is Neuron.fire and cls.reset is Neuron.reset
                and cls.emit is Neuron.emit and cls.charge in _FAST_CHARGES)

    def charge_bias(self, theta: torch.Tensor) -> torch.Tensor | None:
        """A current added at every step after the input (None: none), for the in-place path."""
        return None

    def fused_steps(self, x_seq: torch.Tensor) -> torch.Tensor:
        # Subclasses that change the dynamics go through the generic charge/fire/reset steps.
        if not self._has_fast_path():
            return self.reference_steps(x_seq)
        return self._forward_inplace(x_seq)

    def _forward_inplace(self, x_seq: torch.Tensor) -> torch.Tensor:
        """The charge/fire/reset dynamics with in-place updates, bit for bit the generic path's.

        Per step: v += z (+ bias); s = [v ≥ θ] written as 0/1 in v's dtype
        (``torch.ge`` into a float tensor: one vectorised pass, no bool
        tensor); out = θ·s; v −= out. The emitted θ·s is what the reset
        subtracts, as in the generic ``reset``.
        """
        steps = x_seq.shape[0]
        theta = broadcast_channels(self.threshold, x_seq[0])
        if self.v is None:
            self.v = self.initial_potential(x_seq[0], theta)
        bias = self.charge_bias(theta)
        v = self.v
        # Output and spike buffers keep the input's memory layout (channels-last stays
        # channels-last) and are reused from chunk to chunk (no fresh pages to fault in).
        flat_shape = (steps * x_seq.shape[1], *x_seq.shape[2:])
        fmt = memory_format_of(x_seq[0])
        out_flat = self._buffer("_out_buffer", flat_shape, x_seq, fmt, guard=True)
        out = out_flat.view(x_seq.shape)
        track = self.publishes_spikes()  # s is then the spike indicator
        compiled = self.backend == "compile" and v.numel() >= COMPILE_MIN_NUMEL
        if not compiled:  # the whole chunk in one fused pass (snnx.kernels.neuron), where it applies
            counts = if_chunk(x_seq, v, self.threshold, bias, out, track)
            if counts is not False:
                self.t += steps
                self.spike_indicator = None
                self.spike_counts = counts
                return out
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
        return out

@dataclass(kw_only=True)
class ShiftedIFNeuronParams(IFNeuronParams):
    name: str = param("shifted_if", "the neuron")
    horizon: int | None = param(None, "the T of the θ/(2T) shift for every pass; null: each pass's own T",
                                ge=1, integer=True)


@NEURONS.register("shifted_if", params=ShiftedIFNeuronParams, doc="IF neuron with Deng & Gu's θ/(2T) input shift",
                  depends_on_T=True, signed=False, rate_coded=True, fused=True)
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

    @property
    def v_start(self) -> float:
        # θ/(2T) at each of the T steps: θ/2 in all, as if v had started θ/2 higher.
        return self.v_init + 0.5

    def set_horizon(self, T: int) -> None:
        if not self.fixed_horizon:
            self.horizon = int(T)

    def charge(self, v: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        theta = broadcast_channels(self.threshold, x_t)
        return v + x_t + theta / (2 * self.horizon)

    def charge_bias(self, theta: torch.Tensor) -> torch.Tensor:
        # The same value, added after the input like ``charge`` does: (v + z) + θ/(2T).
        return theta / (2 * self.horizon)


@dataclass(kw_only=True)
class OffsetCalibratedIFNeuronParams(IFNeuronParams):
    name: str = param("cos_if", "the neuron")
    v_init: float = param(0.5, "initial membrane potential as a fraction of θ, before the calibration")
    presim: int = param(4, "ρ: input steps pre-simulated to correct v0 by ±θ", ge=1, integer=True)


@NEURONS.register("cos_if", params=OffsetCalibratedIFNeuronParams,
                  doc="IF neuron with offset-spike calibration of its start potential (COS, Hao et al. 2023)",
                  depends_on_T=False, signed=False, rate_coded=True, fused=True, presimulates=True)
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

    def begin_sequence(self, x_seq: torch.Tensor) -> None:
        # From the calibrated v0 on, the steps are plain IF dynamics (reference or fused).
        if x_seq.shape[0] < self.presim:
            raise RuntimeError(f"COS needs the first {self.presim} steps in one chunk, got {x_seq.shape[0]}")
        self.v = self.calibrated_potential(x_seq, broadcast_channels(self.threshold, x_seq[0]))


# Charges the in-place IF path reproduces: v + z, and v + z + θ/(2T) (via ``charge_bias``).
_FAST_CHARGES = (Neuron.charge, ShiftedIFNeuron.charge)
