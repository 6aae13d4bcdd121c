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
