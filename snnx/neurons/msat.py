"""MSAT neuron (He et al.): IF neuron with a multi-stage adaptive threshold.

Per neuron and step t (0-based; ALGORITHMS.md, section MSAT)::

    u(t)   = v_post(t−1) − mean_{s<t} v_post(s)
    DTT(t) = τ_mp·(α·u + V_T + k_a·ln(1 + exp(u/k_i)))
    DET(t) = τ_rd·exp(−z(t)/C)
    θ(t)   = sigmoid(DTT + DET)·θ_max            (t = 0: θ = θ_max)
    v ← v + z(t);  s = [v ≥ θ(t)];  v_post = v − θ(t)·s;  output θ(t)·s

Units. The paper's neuron works in units normalised by θ_max (input z/θ_max,
output ×θ_max). The dynamics are scale-equivariant, so here the membrane
potential stays in input units and only the quantities that enter the
nonlinearities are normalised: u and z are divided by θ_max before DTT/DET.
That is the same neuron, and where θ(t) = θ_max it performs exactly the
operations of :class:`~snnx.neurons.IFNeuron` (bit for bit, no division by
θ_max rounding the potential).

Choices where the spec is open (all recorded in the converter's label):

* Both terms off (``use_dtt = use_det = False``): θ(t) = θ_max — the neuron
  *is* the IF neuron with θ_max. (Taking the formula literally, sigmoid(0)·θ_max
  = θ_max/2, would make "no adaptation" a halved threshold.)
* ``fixed_fraction`` f (MSAT Fig. 3 "fixed 0.7·θ" ablation): θ(t) = f·θ_max at
  every step, t = 0 included; overrides DTT/DET.
* Spike confidence: for t < ``confidence_steps`` a spike that passed the
  threshold is kept with probability c; a dropped spike is not emitted and
  the neuron is not reset (its charge stays and can fire later). Draws come
  from a ``torch.Generator`` seeded with ``seed``, re-seeded at every
  :meth:`reset_state` (every batch and every pass), so a run is reproducible
  and does not depend on how many batches came before; for c = 1 no numbers
  are drawn.
* All adaptive state (t, running sum of v_post, last v_post, θ(t)) is reset
  per batch by :meth:`reset_state` (the reference code does not reset it).
"""

from __future__ import annotations

import torch

from snnx.neurons.base import Neuron, broadcast_channels


class MSATNeuron(Neuron):
    """IF neuron with the MSAT threshold θ(t); ``threshold`` (buffer) is θ_max (0-dim or [C])."""

    def __init__(self, threshold: torch.Tensor, v_init: float = 0.0, *, use_dtt: bool = True,
                 use_det: bool = True, alpha: float = 0.03, k_a: float = 1.0, k_i: float = 1.0,
                 C: float = 5.0, tau_mp: float = 1.0, tau_rd: float = 1.0, v_t: float = -1.0,
                 fixed_fraction: float | None = None, confidence: float = 1.0,
                 confidence_steps: int = 16, seed: int = 0):
        super().__init__(threshold, v_init)
        if not 0.0 <= float(confidence) <= 1.0:
            raise ValueError(f"confidence must lie in [0, 1], got {confidence!r}")
        if fixed_fraction is not None and not float(fixed_fraction) > 0:
            raise ValueError(f"fixed_fraction must be > 0, got {fixed_fraction!r}")
        if float(k_i) == 0 or float(C) == 0:
            raise ValueError("k_i and C must be nonzero")
        self.use_dtt = bool(use_dtt)
        self.use_det = bool(use_det)
        self.alpha = float(alpha)
        self.k_a = float(k_a)
        self.k_i = float(k_i)
        self.C = float(C)
        self.tau_mp = float(tau_mp)
        self.tau_rd = float(tau_rd)
        self.v_t = float(v_t)
        self.fixed_fraction = None if fixed_fraction is None else float(fixed_fraction)
        self.confidence = float(confidence)
        self.confidence_steps = int(confidence_steps)
        self.seed = int(seed)
        self._clear_adaptive_state()

    # -- state -------------------------------------------------------------
    def _clear_adaptive_state(self) -> None:
        self.v_post_last: torch.Tensor | None = None  # v_post(t−1)
        self.v_post_sum: torch.Tensor | None = None  # Σ_{s<t} v_post(s)
        self.theta_t: torch.Tensor | None = None  # θ(t) of the last step (diagnostics)
        self.generator: torch.Generator | None = None  # (re)created, seeded, on the first step

    def reset_state(self) -> None:
        super().reset_state()
        self._clear_adaptive_state()

    @property
    def adaptive(self) -> bool:
        return self.fixed_fraction is None and (self.use_dtt or self.use_det)

    # -- dynamics ----------------------------------------------------------
    def dtt(self, u: torch.Tensor) -> torch.Tensor:
        """τ_mp·(α·u + V_T + k_a·ln(1 + exp(u/k_i))), u in units of θ_max."""
        x = u / self.k_i
        softplus = torch.logaddexp(torch.zeros_like(x), x)  # ln(1 + e^x), exact and overflow-free
        return self.tau_mp * (self.alpha * u + self.v_t + self.k_a * softplus)

    def det(self, z: torch.Tensor) -> torch.Tensor:
        """τ_rd·exp(−z/C), z the input current in units of θ_max."""
        return self.tau_rd * torch.exp(-z / self.C)

    def threshold_at(self, x_t: torch.Tensor, theta_max: torch.Tensor) -> torch.Tensor:
        """θ(t) for the current step ``self.t`` given this step's input current ``x_t``."""
        if self.fixed_fraction is not None:
            return theta_max * self.fixed_fraction
        if self.t == 0 or not self.adaptive:
            return theta_max
        arg = torch.zeros_like(x_t)
        if self.use_dtt:
            u = (self.v_post_last - self.v_post_sum / self.t) / theta_max
            arg = arg + self.dtt(u)
        if self.use_det:
            arg = arg + self.det(x_t / theta_max)
        return torch.sigmoid(arg) * theta_max

    def _confidence_mask(self, spikes: torch.Tensor) -> torch.Tensor:
        if self.generator is None:
            self.generator = torch.Generator(device=spikes.device)
            self.generator.manual_seed(self.seed)
        draws = torch.rand(spikes.shape, generator=self.generator, device=spikes.device)
        return (draws < self.confidence).to(spikes.dtype)

    def step(self, x_t: torch.Tensor) -> torch.Tensor:
        theta_max = broadcast_channels(self.threshold, x_t)
        if self.v is None:
            self.v = self.initial_potential(x_t, theta_max)
        theta = self.threshold_at(x_t, theta_max)
        v = self.charge(self.v, x_t)
        spikes = self.fire(v, theta)
        if self.confidence < 1.0 and self.t < self.confidence_steps:
            spikes = spikes * self._confidence_mask(spikes)
        v_post = self.reset(v, spikes, theta)
        self.v = v_post
        if self.use_dtt and self.adaptive:
            self.v_post_last = v_post
            self.v_post_sum = v_post.clone() if self.v_post_sum is None else self.v_post_sum + v_post
        self.theta_t = theta
        self.t += 1
        return self.emit(spikes, theta)

    def extra_repr(self) -> str:
        terms = "fixed {:.3g}·θ_max".format(self.fixed_fraction) if self.fixed_fraction is not None else \
            f"dtt={self.use_dtt}, det={self.use_det}"
        return (f"{super().extra_repr()}, {terms}, alpha={self.alpha}, k_a={self.k_a}, k_i={self.k_i}, "
                f"C={self.C}, tau_mp={self.tau_mp}, tau_rd={self.tau_rd}, v_t={self.v_t}, "
                f"confidence={self.confidence} for t<{self.confidence_steps}, seed={self.seed}")
