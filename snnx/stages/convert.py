"""Stage `convert`: the SNN (neurons in place of activations, BN folded)."""

from __future__ import annotations

import pandas as pd
import torch
from omegaconf import DictConfig

from snnx.artifacts import write_csv
from snnx.console import log
from snnx.neurons import Neuron
from snnx.snn_file import save
from snnx.stages import plain_config, prepare_snn, run_dir
from snnx.seeding import resolve_device


def neuron_table(snn):
    rows = []
    for name, m in snn.named_modules():
        if isinstance(m, Neuron):
            th = m.threshold.detach().float()
            rows.append({"layer": name, "neuron": type(m).__name__, "threshold_min": float(th.min()),
                         "threshold_max": float(th.max()), "channels": th.numel(), "v_init": m.v_init})
    return pd.DataFrame(rows)


def run(cfg: DictConfig, upstream: dict | None = None) -> dict:
    config = plain_config(cfg)
    ann, stats, snn, method = prepare_snn(config, upstream, resolve_device(config["device"]))
    out = run_dir(cfg)
    table = neuron_table(snn)
    write_csv(table, out / "neurons.csv")
    # The SNN as plain data (snnx simulate snn=<this file>, snnx.api.load_snn).
    save(snn, out / "snn.pt")
    log(f"converted with {method}: {len(table)} spiking layers → {out / 'snn.pt'}")
    return {"ann": ann, "stats": stats, "snn": snn, "method": method}
