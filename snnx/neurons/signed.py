"""Neurons of the all-integer SNN (Zou et al. 2024, Eqs. 2–7 and §3.1).

Units. One spike stands for one quantisation step 2^−k of the ANN activation,
and is emitted as the plain number ±1 (not ±2^−k): the next layer's weights
are used unchanged, so its neuron accumulates v = Σ_t W·s_in(t), which, once
all input spikes have arrived, is 2^k_in × the ANN pre-activation z (the input
of the BN), k_in being the level of the layer that sent the spikes (k for a
hidden layer, ``act.k_first`` for the encoding layer). The thresholds live in
these same "2^k_in × z" units::

    BN:  y = γ(z − μ)/σ + β,   σ = sqrt(var + ε)
    δ   = 2^k_in·σ/(γ·2^k)                          (one level 2^−k of y)
    θ⁺₀ = 2^k_in·(μ + (2^−(k+1) − β)·σ/γ),   θ⁻₀ = θ⁺₀ − δ

— Eqs. 5–7 (where σ' + ε is the BN's σ) times 2^k_in — so that the net spike
count n of a neuron whose input totals v = 2^k_in·z settles to
round_half_up(2^k·ReLU(y)): the ANN's level, no upper clip.

Integer mode is the same neuron on int64 tensors (thresholds and δ already
scaled by ``int_scale`` and rounded by the converter): its state update uses
only integer additions, multiplications by the spike count, ``maximum`` and
comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from snnx.kernels.neuron import signed_chunk
from snnx.neurons.base import Neuron, broadcast_channels
from snnx.neurons.registry import NEURONS
from snnx.registry import param


def dual_thresholds(k: int, mean: torch.Tensor, std: torch.Tensor, gamma: torch.Tensor,
                    beta: torch.Tensor, k_in: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(θ⁺₀, δ) in "2^k_in × z" units for ``y = γ(z − μ)/σ + β`` (γ > 0), in float64.

    ``k``: this layer's level (one output spike = 2^−k of y); ``k_in``: the level
    of the spikes it receives (default ``k``). Powers of two scale exactly, so
    k_in = k gives bit for bit δ = σ/γ, θ⁺₀ = 2^k·μ + (2^−(k+1) − β)·2^k·σ/γ.
    """
    mean, std, gamma, beta = (torch.as_tensor(t, dtype=torch.float64) for t in (mean, std, gamma, beta))
    if not bool((gamma > 0).all()):
        raise ValueError("dual_thresholds needs γ > 0 (flip the channel's weights first)")
    k_in = k if k_in is None else int(k_in)
    scale = float(2 ** k_in)
    delta = std / gamma * 2.0 ** (k_in - k)
    theta_plus0 = scale * mean + (2.0 ** -(k + 1) - beta) * scale * std / gamma
    return theta_plus0, delta


@dataclass(kw_only=True)
class SignedDualThresholdNeuronParams:
    name: str = param("signed", "the neuron")
    theta_plus0: torch.Tensor = param(doc="θ⁺₀: one value or one per channel [C] (float, or int64 in integer mode)",
                                      required=True)
    delta: torch.Tensor = param(doc="δ > 0, the thresholds' move per spike, shaped and typed as theta_plus0",
                                required=True)
    fire_on_equal: bool = param(True, "+1 on ṽ ≥ θ⁺ (true) or on ṽ > θ⁺ (false, the reference code)")
    unit: float = param(1.0, "the activation one ±1 spike stands for, 2^−k (diagnostics only)", gt=0)


@NEURONS.register("signed", params=SignedDualThresholdNeuronParams,
                  doc="signed ±1 neuron with two thresholds that move together, no reset (Zou et al. 2024)",
                  depends_on_T=False, signed=True, rate_coded=False, fused=True)
class SignedDualThresholdNeuron(Neuron):
    """Signed neuron with two thresholds that move together, no reset.

    Per step::

        v ← v + x;  ṽ = max(v, θ⁻₀)
        s = +1 if ṽ ≥ θ⁺ (ṽ > θ⁺ when not fire_on_equal);  −1 if ṽ < θ⁻;  else 0
        on ±1: θ⁺, θ⁻ ±= δ

    The moving thresholds are kept as the net spike count m (θ⁺ = θ⁺₀ + m·δ,
    θ⁻ = θ⁻₀ + m·δ): the same values as adding ±δ per spike, but without a
    floating-point drift of θ over many ± moves. With ``fire_on_equal=False``
    (reference code: +1 on ṽ > θ⁺) the −1 test is ṽ ≤ θ⁻ (and m > 0), the
    complementary comparison, so the count still settles to a function of v
    (round half down instead of half up).

    ``theta_plus0`` and ``delta``: 0-dim or per channel [C] (float, or int64
    in integer mode). θ⁻₀ is derived as θ⁺₀ − δ, so the two thresholds stay
    exactly one δ apart also after integer rounding (rounding θ⁻₀ on its own
    could put them δ ± 1 apart and make the neuron oscillate). Buffers:
    ``threshold`` (θ⁺₀), ``theta_minus0``, ``delta``. Output: ±1 spikes in the
    input's dtype. ``unit`` (2^−k) is the activation one spike stands for —
    for diagnostics only (the spikes themselves are ±1).
    """

    def __init__(self, theta_plus0: torch.Tensor, delta: torch.Tensor, *, fire_on_equal: bool = True,
                 unit: float = 1.0):
        theta_plus0 = torch.as_tensor(theta_plus0)
        delta = torch.as_tensor(delta)
        super().__init__(torch.zeros(theta_plus0.shape))
        if theta_plus0.is_floating_point() != delta.is_floating_point():
            raise ValueError("theta_plus0 and delta must both be float or both be integer")
        if not bool((delta > 0).all()):
            raise ValueError("delta must be > 0")
        dtype = theta_plus0.dtype if theta_plus0.is_floating_point() else torch.int64
        self.threshold = theta_plus0.to(dtype).clone()
        self.register_buffer("delta", delta.to(dtype).clone())
        self.register_buffer("theta_minus0", self.threshold - self.delta)
        self.fire_on_equal = bool(fire_on_equal)
        self.unit = float(unit)
        self.count: torch.Tensor | None = None  # net spike count m per neuron

    @property
    def integer(self) -> bool:
        return not self.threshold.is_floating_point()

    def reset_state(self) -> None:
        super().reset_state()
        self.count = None

    def thresholds(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Current (θ⁺, θ⁻) broadcast over ``like``."""
        delta = broadcast_channels(self.delta, like)
        count = self.count if self.count is not None else torch.zeros_like(like)
        return (broadcast_channels(self.threshold, like) + count * delta,
                broadcast_channels(self.theta_minus0, like) + count * delta)

    def step(self, x_t: torch.Tensor) -> torch.Tensor:
        if self.integer and x_t.is_floating_point():
            raise TypeError("an integer-mode SignedDualThresholdNeuron needs integer input currents")
        if self.v is None:
            self.v = torch.zeros_like(x_t)
            self.count = torch.zeros_like(x_t)
        v = self.v + x_t
        theta_plus, theta_minus = self.thresholds(v)
        v_tilde = torch.maximum(v, broadcast_channels(self.theta_minus0, v).to(v.dtype).expand_as(v))
        if self.fire_on_equal:
            pos = v_tilde >= theta_plus
            neg = v_tilde < theta_minus
        else:
            pos = v_tilde > theta_plus
            neg = (v_tilde <= theta_minus) & (self.count > 0)
        spikes = pos.to(v.dtype) - neg.to(v.dtype)
        self.count = self.count + spikes
        self.v = v  # no reset
        self.t += 1
        return spikes

    def fused_steps(self, x_seq: torch.Tensor) -> torch.Tensor:
        # The whole chunk in one fused pass (snnx.kernels.neuron) where it applies; else step by step.
        if self.integer and x_seq.is_floating_point():
            raise TypeError("an integer-mode SignedDualThresholdNeuron needs integer input currents")
        if self.v is None:
            self.v = torch.zeros_like(x_seq[0])
            self.count = torch.zeros_like(x_seq[0])
        out = torch.empty_like(x_seq)
        if signed_chunk(x_seq, self.v, self.count, self.threshold, self.theta_minus0, self.delta,
                        self.fire_on_equal, out):
            self.t += x_seq.shape[0]
            return out
        return self.reference_steps(x_seq)

    def extra_repr(self) -> str:
        shape = "layer" if self.threshold.dim() == 0 else f"{self.threshold.numel()} channels"
        mode = "int64" if self.integer else "float"
        return f"thresholds={shape}, {mode}, fire_on_equal={self.fire_on_equal}"


def quant_level(y: torch.Tensor, k: int, clip: float | None = None) -> torch.Tensor:
    """The ANN quant activation's level n = round_half_up(2^k·ReLU(y)) (ReLU clipped at ``clip``), as floats.

    The same arithmetic as ``snnx.activations.functional.quant`` (times 2^k, exact),
    so the encoder reproduces the ANN's first-layer levels bit for bit.
    """
    r = torch.relu(y)
    if clip is not None:
        r = r.clamp(max=clip)
    scaled = r * float(2 ** k)
    n = torch.floor(scaled)
    return n + ((scaled - n) >= 0.5).to(scaled.dtype)


@dataclass(kw_only=True)
class ScatterGatherEncoderParams:
    name: str = param("scatter_gather", "the neuron")
    k: int = param(doc="level: one spike stands for 2^−k of the activation (act.k_first)", integer=True,
                   required=True)
    clip: float | None = param(None, "B: the activation is clipped to [0, B] first; null: no clip", gt=0,
                               allow_inf=True)
    integer: bool = param(False, "emit int64 spikes (the integer-mode SNN) instead of the input's float dtype")


@NEURONS.register("scatter_gather", params=ScatterGatherEncoderParams,
                  doc="input encoder: the first layer's level n as one spike on each of the first n steps "
                      "(Zou et al. 2024, §3.1)",
                  depends_on_T=False, signed=False, rate_coded=False, fused=True, encodes_input=True)
class ScatterGatherEncoder(Neuron):
    """Scatter-and-gather input encoding of the all-integer SNN (Zou et al. 2024, §3.1).

    Takes the first (full-precision) layer's output y — computed once per
    image by the engine's time-invariant prefix — on the first step of a batch,
    turns it into the ANN's quantised level n = round(2^k·clip(y, 0, B)) and
    emits one unit spike (+1) on each of the first n steps, then nothing: at
    most B·2^k steps, B = 4 steps at the paper's k = 0 ("discretized into a
    spike sequence with only 4 time steps"; ``k`` here is ``act.k_first``).
    Output dtype: int64 when ``integer`` else the input's float dtype.
    ``threshold`` (buffer) is 1 (one spike = one level); ``unit`` = 2^−k.
    """

    encodes_input = True

    def __init__(self, k: int, clip: float | None = None, *, integer: bool = False):
        super().__init__(torch.tensor(1.0))
        self.k = int(k)
        self.clip = None if clip is None else float(clip)
        self.integer = bool(integer)
        self.unit = 2.0 ** -self.k  # activation per spike (diagnostics)
        self.level: torch.Tensor | None = None

    def reset_state(self) -> None:
        super().reset_state()
        self.level = None

    def _emit(self, x_first: torch.Tensor, steps: int) -> torch.Tensor:
        if self.level is None:
            self.level = quant_level(x_first, self.k, self.clip)
        times = torch.arange(self.t, self.t + steps, device=x_first.device, dtype=self.level.dtype)
        fired = times.view(steps, *([1] * self.level.dim())) < self.level.unsqueeze(0)
        self.t += steps
        return fired.to(torch.int64 if self.integer else x_first.dtype)

    def step(self, x_t: torch.Tensor) -> torch.Tensor:
        return self._emit(x_t, 1)[0]

    def fused_steps(self, x_seq: torch.Tensor) -> torch.Tensor:
        # The whole chunk's spikes at once: the level is read off the first step's input.
        return self._emit(x_seq[0], x_seq.shape[0])

    def extra_repr(self) -> str:
        return f"k={self.k}, clip={self.clip}, integer={self.integer}"
