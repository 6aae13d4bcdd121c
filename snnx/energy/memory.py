"""``energy=memory``: operations plus memory accesses, per layer, for the SNN, the ANN and the equal-bit QANN.

An analytical model in the style of Lemaire et al. 2022 ("An analytical estimation of spiking neural
networks energy efficiency", ICONIP): besides the arithmetic, every value read or written is priced by
the size of the buffer it lives in. Each layer keeps its own buffers (weights, activations or membrane
potentials, spikes), sized by what they hold; an access of one 32-bit word costs ``access_pj`` by the
first ``buffer_bytes`` tier the buffer fits in, ``dram_pj`` beyond the last. A value of w bits costs
w/32 of a word access (narrow values are packed): a spike 1/32, an 8-bit weight 1/4.

Per image, with a = activation bits (the ANN's ``ann_bits``; the QANN's b), w = weight bits, p =
potential bits, add/mult the precision's costs:

* ANN or QANN, each conv/linear layer (MACs as torch's flop counter counts them): MACs·(add + mult·min(1, a/w)) for the arithmetic (a narrower
  activation scales the multiply, as in ``horowitz45``); MACs·(w/32·E(weights) + a/32·E(inputs)) for
  reading a weight and an input per MAC (no reuse assumed, as for the SNN's weight reads); outputs·a/32
  ·E(outputs) for writing the layer's activations. The QANN's layers that read the real-valued input
  (the first) read and multiply it at the ANN's width, and write b-bit activations.
* SNN, a layer fed by spikes: SOPs·add; per SOP a weight read and a read and write of the potential it
  updates, SOPs·(w/32·E(weights) + 2·p/32·E(potentials)); each input spike read once as an event,
  events·1/32·E(spikes) (events = SOPs / mean fan-out).
* SNN, direct encoding's real-valued first layer: its ANN price once per image (real input), then at
  every step each output's stored current is read and added, outputs·T·(add + p/32·E(currents)). Under
  Poisson encoding a layer fed by real values costs its ANN price at every step.
* SNN, each neuron layer, every step: a read and write of every potential (threshold check and reset),
  T·neurons·(add + 2·p/32·E(potentials)), plus one add per spike (the reset's subtraction) and
  spikes·1/32·E(spikes) for writing the spike.

Pooling, flattening and residual sums are not priced (they are small next to the synapses in both
networks). Constants, 45 nm (Horowitz, ISSCC 2014, Fig. 1.1.9): 32-bit float add 0.9 pJ / multiply
3.7 pJ, 16-bit float 0.4 / 1.1 pJ, 8-bit integer 0.03 / 0.2 pJ; on-chip SRAM 10 / 20 / 100 pJ for
8 KB / 32 KB / 1 MB (Horowitz gives them per 64-bit read: per 32-bit word they overstate the cost by at
most 2×, the same for every network here); DRAM 1.3–2.6 nJ (the lower end is used).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from snnx.energy import ENERGY
from snnx.energy.counts import NetworkCounts, Priced
from snnx.errors import ConfigError
from snnx.registry import param

PRECISIONS = ("fp32", "fp16", "int8")
BITS = {"fp32": 32, "fp16": 16, "int8": 8}
WORD_BITS = 32


@dataclass
class MemoryParams:
    name: str = param("memory", "the energy model")
    precision: str = param("fp32", "weights, potentials and accumulation: fp32 | fp16 | int8", choices=PRECISIONS)
    ann_bits: int = param(32, "the ANN's activation width in bits", ge=1, le=32, integer=True)
    potential_bits: Optional[int] = param(None, "bits of a membrane potential; null: the precision's", ge=1, le=32,
                                          integer=True)
    fp32_add_pj: float = param(0.9, "32-bit float add, 45 nm (Horowitz 2014)", ge=0)
    fp32_mult_pj: float = param(3.7, "32-bit float multiply, 45 nm (Horowitz 2014)", ge=0)
    fp16_add_pj: float = param(0.4, "16-bit float add, 45 nm (Horowitz 2014)", ge=0)
    fp16_mult_pj: float = param(1.1, "16-bit float multiply, 45 nm (Horowitz 2014)", ge=0)
    int8_add_pj: float = param(0.03, "8-bit integer add, 45 nm (Horowitz 2014)", ge=0)
    int8_mult_pj: float = param(0.2, "8-bit integer multiply, 45 nm (Horowitz 2014)", ge=0)
    buffer_bytes: list = param(doc="SRAM tiers: a buffer goes in the first it fits (bytes; Horowitz 2014: 8 KB, "
                               "32 KB, 1 MB)", default_factory=lambda: [8192, 32768, 1048576])
    access_pj: list = param(doc="one 32-bit word access per tier (Horowitz 2014: 10, 20, 100 pJ per 64-bit read)",
                            default_factory=lambda: [10.0, 20.0, 100.0])
    dram_pj: float = param(1300.0, "a word access beyond the last tier: DRAM, 1.3–2.6 nJ (Horowitz 2014)", ge=0)


def check(values: dict, prefix: str) -> None:
    sizes, costs = values["buffer_bytes"], values["access_pj"]
    ok = (isinstance(sizes, (list, tuple)) and isinstance(costs, (list, tuple)) and len(sizes) == len(costs) > 0
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in [*sizes, *costs])
          and list(sizes) == sorted(sizes))
    if not ok:
        raise ConfigError(f"must be as many increasing buffer sizes as access costs (all > 0), got "
                          f"{list(sizes) if isinstance(sizes, (list, tuple)) else sizes!r} and "
                          f"{list(costs) if isinstance(costs, (list, tuple)) else costs!r}.",
                          key=f"{prefix}.buffer_bytes",
                          fix=f"Use e.g. '{prefix}.buffer_bytes=[8192,32768,1048576]' '{prefix}.access_pj=[10,20,100]'.")


@ENERGY.register("memory", params=MemoryParams, check=check,
                 doc="operations and memory accesses per layer, priced by buffer size (Lemaire et al. 2022 style)")
class Memory:
    def __init__(self, *, precision: str, ann_bits: int, potential_bits: int | None, fp32_add_pj: float,
                 fp32_mult_pj: float, fp16_add_pj: float, fp16_mult_pj: float, int8_add_pj: float,
                 int8_mult_pj: float, buffer_bytes: list, access_pj: list, dram_pj: float):
        costs = {"fp32": (fp32_add_pj, fp32_mult_pj), "fp16": (fp16_add_pj, fp16_mult_pj),
                 "int8": (int8_add_pj, int8_mult_pj)}
        self.add, self.mult = (float(v) for v in costs[precision])
        self.w = BITS[precision]
        self.p = int(potential_bits) if potential_bits is not None else self.w
        self.ann_bits = int(ann_bits)
        self.tiers = list(zip([float(b) for b in buffer_bytes], [float(c) for c in access_pj]))
        self.dram = float(dram_pj)

    def access(self, values: float, bits: int) -> float:
        """pJ of one access (read or write) to a value in a buffer of ``values`` values of ``bits`` bits."""
        size = values * bits / 8
        per_word = next((cost for limit, cost in self.tiers if size <= limit), self.dram)
        return per_word * bits / WORD_BITS

    def dense_layer(self, s, a_in: int, a_out: int, macs: float | None = None) -> float:
        """One dense pass of a conv/linear layer reading a_in-bit and writing a_out-bit activations (``macs``:
        the ANN's count, zero padding included, unless given)."""
        macs = s.dense_macs if macs is None else macs
        ops = macs * (self.add + self.mult * min(1.0, a_in / self.w))
        reads = macs * (self.access(s.weights, self.w) + self.access(s.inputs, a_in))
        return ops + reads + s.outputs * self.access(s.outputs, a_out)

    def price(self, counts: NetworkCounts, T: int, qann_bits: int) -> Priced:
        rows = []
        p = self.p
        for s in counts.synapses:
            # The QANN's layers fed by the (real) input read it at the ANN's width and write b-bit activations.
            real_in = s.mode != "sop"
            ann = self.dense_layer(s, self.ann_bits, self.ann_bits)
            qann = self.dense_layer(s, self.ann_bits if real_in else qann_bits, qann_bits)
            if s.mode == "sop":
                sops = s.sops.get(T, 0.0)
                snn = (sops * (self.add + self.access(s.weights, self.w) + 2 * self.access(s.outputs, p))
                       + s.events(T) * self.access(s.inputs, 1))
            else:  # the SNN's real-valued layers: its MACs (real inputs only), at the ANN's width
                dense = self.dense_layer(s, self.ann_bits, self.ann_bits, s.macs)
                snn = dense + s.outputs * T * (self.add + self.access(s.outputs, p)) if s.mode == "mac" else dense * T
            rows.append({"layer": s.name, "kind": "synapse", "snn_pj": snn, "ann_pj": ann, "qann_pj": qann})
        for n in counts.neurons:
            spikes = n.spikes.get(T, 0.0)
            snn = (T * n.neurons * (self.add + 2 * self.access(n.neurons, p))
                   + spikes * (self.add + self.access(n.neurons, 1)))
            rows.append({"layer": n.name, "kind": "neuron", "snn_pj": snn, "ann_pj": 0.0, "qann_pj": 0.0})
        return Priced(snn_pj=sum(r["snn_pj"] for r in rows), ann_pj=sum(r["ann_pj"] for r in rows),
                      qann_pj=sum(r["qann_pj"] for r in rows), rows=rows)
