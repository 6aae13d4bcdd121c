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
"""

from __future__ import annotations

import torch
from torch import nn


def broadcast_channels(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Shape a 0-dim or per-channel [C] tensor to broadcast over [B, C, …]."""
    if value.dim() == 0:
        return value
    return value.view(-1, *([1] * (like.dim() - 2)))


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

    # -- state -------------------------------------------------------------
    def reset_state(self) -> None:
        self.v = None
        self.t = 0

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
        if type(self).step is not Neuron.step or type(self).charge is not Neuron.charge:
            return super().forward(x)
        return self._forward_inplace(x)

    def _forward_inplace(self, x: torch.Tensor) -> torch.Tensor:
        """The same dynamics with in-place updates: the emitted θ·s is also what the reset subtracts."""
        x_seq = self.unfold(x)
        theta = broadcast_channels(self.threshold, x_seq[0])
        if self.v is None:
            self.v = self.initial_potential(x_seq[0], theta)
        v = self.v
        out = torch.empty_like(x_seq)
        for t in range(x_seq.shape[0]):
            v.add_(x_seq[t])
            torch.mul(v >= theta, theta, out=out[t])
            v.sub_(out[t])
        self.t += x_seq.shape[0]
        return out.flatten(0, 1)


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
        out = torch.empty_like(x_seq)
        for t in range(x_seq.shape[0]):
            out[t] = self.step(x_seq[t])
        return out.flatten(0, 1)
