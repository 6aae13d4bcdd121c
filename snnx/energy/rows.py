"""An energy model applied to a run: the network's energy per T (results.csv's columns) and per layer
(energy.csv's rows). Plain data, no torch."""

from __future__ import annotations

from typing import Mapping, Sequence

from snnx.energy import build, qann_bits
from snnx.energy.counts import NetworkCounts, Priced

DEFAULT = {"name": "horowitz45"}


def price_run(params: Mapping | None, counts: NetworkCounts, time_steps: Sequence[int],
              levels: int | None = None) -> dict[int, tuple[Priced, int]]:
    """T → (the priced network, the QANN's activation bits) under the energy model ``params``
    (``{"name": …, <keys>}``; None: ``horowitz45``); ``levels``: the ANN's own quantisation steps (QCFS's L),
    which fix the QANN's bits at every T."""
    model = build(dict(params or DEFAULT))
    out = {}
    for T in time_steps:
        bits = qann_bits(T, levels)
        out[int(T)] = (model.price(counts, int(T), bits), bits)
    return out


def energy_rows(priced: Mapping[int, tuple[Priced, int]], counts: NetworkCounts, model: str) -> list[dict]:
    """energy.csv: one row per (T, layer): the SNN's, ANN's and QANN's energy per image (mJ), the layer's SOPs,
    dense MACs and spikes per image, and its spikes per synapse (SOPs / MACs: synaptic events per connection
    and inference, the quantity Lemaire et al. 2022 and Dampfhoffer et al. 2023 compare with their break-even
    points)."""
    synapses = {s.name: s for s in counts.synapses}
    neurons = {n.name: n for n in counts.neurons}
    rows = []
    for T, (p, bits) in sorted(priced.items()):
        for r in p.rows:
            s, n = synapses.get(r["layer"]), neurons.get(r["layer"])
            sops = s.sops.get(T, 0.0) if s is not None and s.mode == "sop" else float("nan")
            macs = s.macs if s is not None else float("nan")
            rows.append({"T": T, "layer": r["layer"], "kind": r["kind"], "energy_model": model,
                         "energy_mj": r["snn_pj"] * 1e-9, "ann_energy_mj": r["ann_pj"] * 1e-9,
                         "qann_energy_mj": r["qann_pj"] * 1e-9, "qann_bits": bits, "sops": sops, "macs": macs,
                         "spikes": n.spikes.get(T, 0.0) if n is not None else float("nan"),
                         "spikes_per_synapse": sops / macs if s is not None and s.mode == "sop" and macs else
                         float("nan")})
    return rows
