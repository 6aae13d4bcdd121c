"""``energy=horowitz45`` (default): the field's convention, operations only, 45 nm (Horowitz, ISSCC 2014).

E_SNN = E_AC·SOPs + E_MAC·MACs (the real-valued layers' MACs: direct encoding's first layer once per
image, every layer fed by real values at every step under Poisson encoding; SOPs and MACs of real
inputs only); E_ANN = E_MAC per MAC of one dense pass as torch's flop counter counts it (zero padding
included). E_AC = 0.9 pJ is a 32-bit float add, E_MAC = 4.6 pJ a 32-bit float multiply (3.7 pJ)
plus add (0.9 pJ), Horowitz 2014, Fig. 1.1.9; CS-QCFS (Yang et al. 2025, §5.7: "E_MAC = 4.6 pJ and
E_AC = 0.9 pJ … we do not consider the memory access energy") and MSAT (He et al., §6.3) price their
SNNs so.

The equal-bit QANN's MAC multiplies a b-bit activation by the weight (in the layers the SNN feeds with
spikes; the first layer reads the real-valued image in both): priced as the add plus the 32-bit
multiply scaled by b/32 — an array multiplier's energy grows with the product of its operands' widths
(Horowitz's 8- and 32-bit integer multiplies: 0.2 vs 3.1 pJ, close to (8/32)²), so narrowing one operand
scales it by that operand's share. Memory traffic is not priced here (``energy=memory`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

from snnx.energy import ENERGY
from snnx.energy.counts import NetworkCounts, Priced
from snnx.registry import param


@dataclass
class Horowitz45Params:
    name: str = param("horowitz45", "the energy model")
    e_ac_pj: float = param(0.9, "one accumulate (SOP): a 32-bit float add, 45 nm (Horowitz 2014)", ge=0)
    e_mac_pj: float = param(4.6, "one MAC: a 32-bit float multiply 3.7 pJ + add 0.9 pJ, 45 nm (Horowitz 2014)", ge=0)
    e_mult_pj: float = param(3.7, "the multiply inside e_mac_pj (scaled by b/32 for a b-bit QANN activation)", ge=0)
    ann_bits: int = param(32, "the ANN's activation width (its MACs cost e_mac_pj)", ge=1, integer=True)


@ENERGY.register("horowitz45", params=Horowitz45Params,
                 doc="operations only: 0.9 pJ per SOP, 4.6 pJ per MAC (45 nm, Horowitz 2014)")
class Horowitz45:
    def __init__(self, *, e_ac_pj: float, e_mac_pj: float, e_mult_pj: float, ann_bits: int):
        self.e_ac, self.e_mac, self.e_mult, self.ann_bits = float(e_ac_pj), float(e_mac_pj), float(e_mult_pj), int(ann_bits)

    def qann_mac_pj(self, bits: int) -> float:
        return self.e_mac - self.e_mult + self.e_mult * min(1.0, bits / self.ann_bits)

    def price(self, counts: NetworkCounts, T: int, qann_bits: int) -> Priced:
        rows = []
        q_mac = self.qann_mac_pj(qann_bits)
        for s in counts.synapses:
            if s.mode == "sop":
                snn = self.e_ac * s.sops.get(T, 0.0)
            else:
                snn = self.e_mac * s.macs * (T if s.mode == "mac_step" else 1)
            # A layer fed by the real-valued input multiplies it at full width in the QANN too.
            rows.append({"layer": s.name, "kind": "synapse", "snn_pj": snn, "ann_pj": self.e_mac * s.dense_macs,
                         "qann_pj": (q_mac if s.mode == "sop" else self.e_mac) * s.dense_macs})
        for n in counts.neurons:  # the threshold compare is not priced in this convention
            rows.append({"layer": n.name, "kind": "neuron", "snn_pj": 0.0, "ann_pj": 0.0, "qann_pj": 0.0})
        return Priced(snn_pj=sum(r["snn_pj"] for r in rows), ann_pj=sum(r["ann_pj"] for r in rows),
                      qann_pj=sum(r["qann_pj"] for r in rows), rows=rows)

