"""MSAT neuron (He et al.): IF neuron with a multi-stage adaptive threshold.

Per neuron and step t (0-based), He et al. Eq. 15–17 and Alg. 1::

    u(t)   = V(t−1) − V_m(t−1),  V_m(t−1) = mean_{s<t} V(s)   (V: the post-reset potential)
    DTT(t) = τ_mp·(α·u + V_T + k_a·ln(1 + exp(u/k_i)))            (Eq. 15, 16)
    DET(t) = τ_rd^n·exp(−z(t)/C)                                   (Eq. 15, 17; z(t) = V̄(t) − V(t−1),
                                                                    the input current)
    θ(t)   = sigmoid(DTT + DET)·θ_max                              (§4.2; t = 0: θ = θ_max)
    v ← v + z(t);  s = [v ≥ θ(t)];  v ← v − θ(t)·s;  output θ(t)·s  (Eq. 12, soft reset)

Where τ_mp·k_a = 1 (Table 1's VGG16 values, the embedded presets) θ(t) is evaluated without the
logarithm: θ_max·(1 + y)/((1 + y) + e^−(a + max(w, 0))), w = u/k_i, y = e^−|w|, a = τ_mp·(α·u + V_T) + DET,
the same number as sigmoid(DTT + DET)·θ_max (see :meth:`MSATNeuron.threshold_at`).

ln(1 + e^x), exp and sigmoid are :mod:`snnx.kernels.elementary`'s: built from
basic float operations (within a few units in the last place of the exact
values), so an element's θ(t) does not depend on where it sits in memory and
the fused kernel (:mod:`snnx.kernels.msat`, ``fused_steps``) gives this
step's bits.

Units (``units``). ``units="normalised"`` (default) divides u and z by θ_max
before DTT/DET, with V_T = −1 unless ``v_t`` is given: Table 1 gives α, k_a,
k_i and C as one number per network, for layers whose θ_max differ, which is
only scale-free in units of each layer's threshold; the paper holds weight
normalisation (θ = 1) and threshold balancing to be equivalent (§3.1); and it
is the neuron of the authors' released code, which scales a layer's input by
1/θ_max, runs a neuron of maximum threshold 1 with V_T = −1, and scales its
output by θ_max. ``units="raw"`` reads Eq. 16–17 on the potential as threshold
balancing leaves it (§3.1, "We use threshold balancing in rest of paper"),
with V_T = −θ_max of the layer. The two agree exactly when θ_max = 1; for
θ_max ≫ 1 raw units pull sigmoid(DTT + DET) toward 0 in the first steps. In both, the
membrane potential stays in input units (no division rounds it), so where
θ(t) = θ_max the neuron performs exactly the operations of
:class:`~snnx.neurons.IFNeuron`.

τ_rd (``det_tau``). Eq. 15 weighs DET by τ_rd and Eq. 17 defines DET as
τ_rd·exp(−z/C): read together, literally, τ_rd² (``"squared"``, default);
``"once"`` is τ_rd·exp(−z/C), the released code's. With τ_rd = 1 (Table 1,
VGG16) they coincide.

Choices where the spec is open (all recorded in the converter's label):

* Both terms off (``use_dtt = use_det = False``): θ(t) = θ_max — the neuron
  *is* the IF neuron with θ_max. (Taking the formula literally, sigmoid(0)·θ_max
  = θ_max/2, would make "no adaptation" a halved threshold.)
* ``fixed_fraction`` f (MSAT Fig. 3 "fixed 0.7·θ" ablation): θ(t) = f·θ_max at
  every step, t = 0 included; overrides DTT/DET.
* Spike confidence (Eq. 18, Alg. 1 l. 14–15): for t < ``confidence_steps``
  each spike that passed the threshold is kept with probability c, one draw
  per neuron and step (Eq. 18's c_j). A dropped spike is neither emitted nor
  subtracted (Eq. 18 resets by Θ̃, the kept spike): its charge stays and can
  fire later. ``confidence_reset=True`` subtracts θ(t) for every spike that
  passed, dropped or not — the released code, which resets before it drops.
  Draws come from a ``torch.Generator`` seeded with ``seed``, re-seeded at
  every :meth:`reset_state` (every batch and every pass), so a run is
  reproducible and does not depend on how many batches came before; for
  c = 1 no numbers are drawn.
* All adaptive state (t, running sum of V, last V, θ(t)) is reset per batch
  by :meth:`reset_state`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from snnx.kernels import elementary
from snnx.kernels.msat import msat_chunk
from snnx.neurons.base import Neuron, broadcast_channels, device_generator, memory_format_of
from snnx.neurons.registry import NEURONS
from snnx.registry import param

UNITS = ("raw", "normalised")
DET_TAU = ("squared", "once")


@dataclass(kw_only=True)
class MSATNeuronParams:
    name: str = param("msat", "the neuron")
    threshold: torch.Tensor = param(doc="θ_max: one value (layer-wise) or one per channel [C]", required=True)
    v_init: float = param(0.0, "initial membrane potential as a fraction of θ_max")
    use_dtt: bool = param(True, "DTT, the dynamic tracking threshold term (Eq. 16)")
    use_det: bool = param(True, "DET, the dynamic evoked threshold term (Eq. 17)")
    alpha: float = param(0.03, "α of DTT")
    k_a: float = param(1.0, "k_a of DTT")
    k_i: float = param(1.0, "k_i of DTT (nonzero)")
    C: float = param(5.0, "C of DET (nonzero)")
    tau_mp: float = param(1.0, "τ_mp, the weight of DTT")
    tau_rd: float = param(1.0, "τ_rd, the weight of DET (see det_tau)")
    v_t: float | None = param(None, "V_T of DTT; null: −θ_max (raw units) or −1 (normalised)")
    units: str = param("normalised", "u and z of DTT/DET in units of θ_max (normalised) or as they are (raw)",
                       choices=UNITS)
    det_tau: str = param("squared", "τ_rd in DET: τ_rd² (Eq. 15 × Eq. 17 literally) or once (released code)",
                         choices=DET_TAU)
    fixed_fraction: float | None = param(None, "θ(t) = f·θ_max at every step instead of DTT/DET; null: adaptive",
                                         gt=0)
    confidence: float = param(1.0, "c: probability a spike of the first confidence_steps steps is kept (Eq. 18)",
                              ge=0, le=1)
    confidence_steps: int = param(16, "the steps spike confidence applies to", ge=0, integer=True)
    confidence_reset: bool = param(False, "a dropped spike still resets the potential (released code)")
    seed: int = param(0, "seed of the spike-confidence draws (re-seeded every batch)", integer=True)


@NEURONS.register("msat", params=MSATNeuronParams, doc="IF neuron with MSAT's multi-stage adaptive threshold "
                  "and spike confidence (He et al.)", depends_on_T=False, signed=False, rate_coded=True, fused=True)
class MSATNeuron(Neuron):
    """IF neuron with the MSAT threshold θ(t); ``threshold`` (buffer) is θ_max (0-dim or [C]).

    θ_max is the converter's calibrated layer maximum (see :mod:`snnx.convert.methods.msat`).
    """

    UNITS = UNITS
    DET_TAU = DET_TAU
    threshold_varies = True

    def __init__(self, threshold: torch.Tensor, v_init: float = 0.0, *, use_dtt: bool = True,
                 use_det: bool = True, alpha: float = 0.03, k_a: float = 1.0, k_i: float = 1.0,
                 C: float = 5.0, tau_mp: float = 1.0, tau_rd: float = 1.0, v_t: float | None = None,
                 units: str = "normalised", det_tau: str = "squared", fixed_fraction: float | None = None,
                 confidence: float = 1.0, confidence_steps: int = 16, confidence_reset: bool = False,
                 seed: int = 0):
        super().__init__(threshold, v_init)
        if not 0.0 <= float(confidence) <= 1.0:
            raise ValueError(f"confidence must lie in [0, 1], got {confidence!r}")
        if fixed_fraction is not None and not float(fixed_fraction) > 0:
            raise ValueError(f"fixed_fraction must be > 0, got {fixed_fraction!r}")
        if float(k_i) == 0 or float(C) == 0:
            raise ValueError("k_i and C must be nonzero")
        if units not in self.UNITS:
            raise ValueError(f"units must be one of {self.UNITS}, got {units!r}")
        if det_tau not in self.DET_TAU:
            raise ValueError(f"det_tau must be one of {self.DET_TAU}, got {det_tau!r}")
        self.use_dtt = bool(use_dtt)
        self.use_det = bool(use_det)
        self.alpha = float(alpha)
        self.k_a = float(k_a)
        self.k_i = float(k_i)
        self.C = float(C)
        self.tau_mp = float(tau_mp)
        self.tau_rd = float(tau_rd)
        self.v_t = None if v_t is None else float(v_t)  # None: the units' default (−θ_max raw, −1 normalised)
        self.units = units
        self.det_tau = det_tau
        self.fixed_fraction = None if fixed_fraction is None else float(fixed_fraction)
        self.confidence = float(confidence)
        self.confidence_steps = int(confidence_steps)
        self.confidence_reset = bool(confidence_reset)
        self.seed = int(seed)
        self._clear_adaptive_state()

    # -- state -------------------------------------------------------------
    def _clear_adaptive_state(self) -> None:
        self.v_post_last: torch.Tensor | None = None  # v_post(t−1)
        self.v_post_sum: torch.Tensor | None = None  # Σ_{s<t} v_post(s)
        self.theta_t: torch.Tensor | None = None  # θ(t) of the last reference step (diagnostics)
        self.generator: torch.Generator | None = None  # (re)created, seeded, on the first step

    def reset_state(self) -> None:
        super().reset_state()
        self._clear_adaptive_state()

    @property
    def adaptive(self) -> bool:
        return self.fixed_fraction is None and (self.use_dtt or self.use_det)

    # -- dynamics ----------------------------------------------------------
    def v_t_for(self, theta_max: torch.Tensor) -> torch.Tensor | float:
        """V_T of Eq. 16: ``v_t`` as given, else −θ_max (raw units) or −1 (normalised)."""
        if self.v_t is not None:
            return self.v_t
        return -theta_max if self.units == "raw" else -1.0

    def dtt(self, u: torch.Tensor, v_t: torch.Tensor | float) -> torch.Tensor:
        """τ_mp·(α·u + V_T + k_a·ln(1 + exp(u/k_i))) (Eq. 15–16), u and V_T in the neuron's units."""
        softplus = elementary.softplus(u / self.k_i)  # ln(1 + e^x), overflow-free
        return self.tau_mp * (self.alpha * u + v_t + self.k_a * softplus)

    def det(self, z: torch.Tensor) -> torch.Tensor:
        """τ_rd²·exp(−z/C) (Eq. 15 × Eq. 17; ``det_tau="once"``: τ_rd·exp(−z/C)), z the input current."""
        tau = self.tau_rd * self.tau_rd if self.det_tau == "squared" else self.tau_rd
        return tau * elementary.exp(-z / self.C)

    @property
    def softplus_folds(self) -> bool:
        """τ_mp·k_a = 1 (Table 1's VGG16 values): e^−(DTT's softplus term, Eq. 15–16) is 1/(1 + e^w).

        θ(t) then needs no logarithm (:meth:`threshold_at`)."""
        return self.tau_mp * self.k_a == 1.0

    def threshold_at(self, x_t: torch.Tensor, theta_max: torch.Tensor) -> torch.Tensor:
        """θ(t) for the current step ``self.t`` given this step's input current ``x_t``.

        sigmoid(DTT + DET)·θ_max (§4.2, Alg. 1 l. 13). Where τ_mp·k_a = 1 it is evaluated as
        θ_max·(1 + y) / ((1 + y) + e^−(a + max(w, 0))), with w = u/k_i, y = e^−|w| and
        a = τ_mp·(α·u + V_T) + DET: the same number (sigmoid(a + ln(1 + e^w)) = (1 + e^w) / (1 + e^w + e^−a),
        divided above and below by e^max(w, 0)) with one exponential and the logarithm fewer.
        """
        if self.fixed_fraction is not None:
            return theta_max * self.fixed_fraction
        if self.t == 0 or not self.adaptive:
            return theta_max
        raw = self.units == "raw"
        det = self.det(x_t if raw else x_t / theta_max) if self.use_det else None
        if not self.use_dtt:
            return elementary.sigmoid(det) * theta_max
        u = self.v_post_last - self.v_post_sum / self.t
        if not raw:
            u = u / theta_max
        v_t = self.v_t_for(theta_max)
        if self.softplus_folds:
            w = u / self.k_i
            y1 = 1.0 + elementary.exp(-w.abs())
            a = self.tau_mp * (self.alpha * u + v_t)
            if det is not None:
                a = a + det
            return theta_max * y1 / (y1 + elementary.exp(-a - w.clamp_min(0.0)))
        arg = self.dtt(u, v_t)
        return elementary.sigmoid(arg if det is None else arg + det) * theta_max

    def _confidence_mask(self, spikes: torch.Tensor) -> torch.Tensor:
        """1 where a spike is kept: one draw per element of ``spikes`` (a step, or several steps at once)."""
        if self.generator is None:
            self.generator = device_generator(spikes.device)
            self.generator.manual_seed(self.seed)
        draws = torch.rand(spikes.shape, generator=self.generator, device=spikes.device)
        return (draws < self.confidence).to(spikes.dtype)

    def _confidence_steps_in(self, steps: int) -> int:
        """How many of the next ``steps`` steps draw spike confidence."""
        if self.confidence >= 1.0:
            return 0
        return max(0, min(steps, self.confidence_steps - self.t))

    def step(self, x_t: torch.Tensor) -> torch.Tensor:
        theta_max = broadcast_channels(self.threshold, x_t)
        if self.v is None:
            self.v = self.initial_potential(x_t, theta_max)
        theta = self.threshold_at(x_t, theta_max)
        v = self.charge(self.v, x_t)
        fired = self.fire(v, theta)
        spikes = fired
        if self.confidence < 1.0 and self.t < self.confidence_steps:
            spikes = fired * self._confidence_mask(fired)
        v_post = self.reset(v, fired if self.confidence_reset else spikes, theta)
        self.v = v_post
        if self.use_dtt and self.adaptive:
            self.v_post_last = v_post
            self.v_post_sum = v_post.clone() if self.v_post_sum is None else self.v_post_sum + v_post
        self.theta_t = theta
        self.t += 1
        return self.emit(spikes, theta)

    def fused_steps(self, x_seq: torch.Tensor) -> torch.Tensor:
        """The chunk through :mod:`snnx.kernels.msat` (bit for bit :meth:`step`) where it applies, else step by step.

        The confidence draws of the chunk's first steps are made at once before
        the kernel runs: the generator yields the same numbers in the same order.
        """
        steps = x_seq.shape[0]
        theta_max = broadcast_channels(self.threshold, x_seq[0])
        v = self.v if self.v is not None else self.initial_potential(x_seq[0], theta_max)
        fmt = memory_format_of(x_seq[0])
        out = self._buffer("_out_buffer", (steps * x_seq.shape[1], *x_seq.shape[2:]), v, fmt,
                           guard=True).view(x_seq.shape)
        track_sum = self.use_dtt and self.adaptive
        vsum = self.v_post_sum
        if track_sum and vsum is None:
            vsum = torch.empty_like(v)
        n_mask = self._confidence_steps_in(steps)
        mask = None
        if n_mask:
            mask = torch.empty((n_mask * x_seq.shape[1], *x_seq.shape[2:]), dtype=v.dtype, device=v.device,
                               memory_format=fmt).view(n_mask, *x_seq.shape[1:])
        # θ_max > 0: θ(t) ≥ 0, so the counts of positive outputs are all the spikes the accounting reads.
        track = self.publishes_spikes()
        run = msat_chunk(self, x_seq, v, vsum if track_sum else None, mask, out, track)
        if run is None:
            return self.reference_steps(x_seq)
        if mask is not None:  # drawn only once the kernel is sure to run (the reference steps draw their own)
            mask.copy_(self._confidence_mask(mask))
        self.spike_indicator = None
        self.spike_counts = run()
        self.v = v
        if track_sum:
            self.v_post_sum = vsum
            self.v_post_last = v
        self.theta_t = None
        self.t += steps
        return out

    def extra_repr(self) -> str:
        terms = "fixed {:.3g}·θ_max".format(self.fixed_fraction) if self.fixed_fraction is not None else \
            f"dtt={self.use_dtt}, det={self.use_det}"
        return (f"{super().extra_repr()}, {terms}, alpha={self.alpha}, k_a={self.k_a}, k_i={self.k_i}, "
                f"C={self.C}, tau_mp={self.tau_mp}, tau_rd={self.tau_rd} ({self.det_tau} in DET), "
                f"v_t={'default' if self.v_t is None else self.v_t}, units={self.units}, "
                f"confidence={self.confidence} for t<{self.confidence_steps}"
                f"{' (dropped spikes reset)' if self.confidence_reset else ''}, seed={self.seed}")
