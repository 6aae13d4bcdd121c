"""Stage `convert`: the SNN (neurons in place of activations, BN folded)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig

from snnx.artifacts import write_csv
from snnx.console import log
from snnx.neurons import Neuron
from snnx.snn_file import estimated_bytes, save
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
    saved = save_snn(snn, out / "snn.pt", config["sim"].get("save_snn", "auto"), ann.path)
    log(f"converted with {method}: {len(table)} spiking layers" + (f" → {saved}" if saved else ""))
    return {"ann": ann, "stats": stats, "snn": snn, "method": method}


# sim.save_snn=auto writes snn.pt below this size (bytes, estimated before writing).
AUTO_SAVE_LIMIT = 20_000_000


def save_snn(snn, path: Path, setting, ann_path: Path) -> Path | None:
    """The SNN as plain data (snnx simulate snn=<this file>, snnx.api.load_snn), as sim.save_snn says: true,
    false, or auto — only when it would be under AUTO_SAVE_LIMIT, since a full-size network's file (a VGG-16's
    is over 100 MB) is rebuilt from the cached ANN and calibration in seconds. The path written, or None."""
    if setting is False:
        return None
    if setting == "auto":
        size = estimated_bytes(snn)
        if size >= AUTO_SAVE_LIMIT:
            log(f"snn.pt not written: it would take {size / 1e6:.0f} MB (sim.save_snn=auto writes it only under "
                f"{AUTO_SAVE_LIMIT / 1e6:.0f} MB). The SNN is rebuilt from the cached ANN and calibration in "
                f"seconds: rerun the same command (with sim.save_snn=true it writes the file), or in Python "
                f"snnx.api.convert(*snnx.api.load_ann('{ann_path}')).")
            return None
    return save(snn, path)
