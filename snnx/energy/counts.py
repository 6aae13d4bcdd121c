"""What an energy model prices: the per-image operation and spike counts of one simulated network, per layer.

The engine measures them (:class:`snnx.sim.engine.SimResult`'s ``layer_counts``); an energy model
(:mod:`snnx.energy`) turns them into picojoules for the SNN, for the ANN it came from (one dense pass) and
for the equal-bit quantised ANN. Plain data, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: How a synaptic layer is fed: real values once per image (direct encoding's first layer), real values at
#: every step (a layer fed by real values under Poisson encoding), or spikes (accumulate-only events).
MODES = ("mac", "mac_step", "sop")


@dataclass
class SynapseCounts:
    """One conv/linear layer, per image."""

    name: str
    mode: str  # one of MODES
    macs: float  # MACs of one dense pass over the real inputs: each input times each output it reaches
    weights: int  # parameters of the weight tensor
    inputs: int  # input elements of one image
    outputs: int  # output elements of one image
    sops: dict[int, float] = field(default_factory=dict)  # synaptic events up to T ("sop" layers)
    # The ANN layer's MACs as torch's flop counter counts them (outputs × weights per output, zero padding
    # included): what the ANN's and QANN's energy is priced on, as results.csv's ann_macs always was.
    ann_macs: float | None = None

    @property
    def dense_macs(self) -> float:
        return self.macs if self.ann_macs is None else self.ann_macs

    def events(self, T: int) -> float:
        """Input spikes read up to T: SOPs over the mean fan-out (MACs / inputs)."""
        return self.sops.get(T, 0.0) * self.inputs / self.macs if self.macs else 0.0


@dataclass
class NeuronCounts:
    """One layer of spiking neurons, per image."""

    name: str
    neurons: int
    spikes: dict[int, float] = field(default_factory=dict)  # spikes (positive and negative) up to T


@dataclass
class NetworkCounts:
    synapses: list[SynapseCounts]
    neurons: list[NeuronCounts]


@dataclass
class Priced:
    """Energy per image (pJ) of the SNN up to T, of the ANN (one pass) and of the equal-bit QANN, with the
    per-layer rows they are sums of (``layer``, ``kind`` synapse/neuron, ``snn_pj``, ``ann_pj``, ``qann_pj``)."""

    snn_pj: float
    ann_pj: float
    qann_pj: float
    rows: list[dict]
