"""Stage `calibrate`: per-layer / per-channel activation statistics of the ANN."""

from __future__ import annotations

import pandas as pd
from omegaconf import DictConfig

from snnx.artifacts import write_csv
from snnx.console import log
from snnx.pipeline import ensure_ann, ensure_stats
from snnx.stages import plain_config, run_dir
from snnx.seeding import resolve_device


def stats_frame(stats: dict):
    return pd.DataFrame([{"layer": name, "max": s["max"], "percentile": s["percentile"],
                          "channel_max_min": float(s["channel_max"].min()),
                          "channel_max_max": float(s["channel_max"].max()),
                          "channels": int(s["channel_max"].numel())} for name, s in stats.items()])


def run(cfg: DictConfig, upstream: dict | None = None) -> dict:
    config = plain_config(cfg)
    device = resolve_device(config["device"])
    ann = upstream["ann"] if upstream else ensure_ann(config, device)
    stats = ensure_stats(config, ann, device)
    frame = stats_frame(stats)
    write_csv(frame, run_dir(cfg) / "thresholds.csv")
    log(f"calibrated {len(stats)} activation sites → {run_dir(cfg) / 'thresholds.csv'}")
    return {"ann": ann, "stats": stats, "thresholds": frame}
