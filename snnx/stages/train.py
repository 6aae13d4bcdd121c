"""Stage `train`: the ANN for dataset/model/act/train/seed (cached by content)."""

from __future__ import annotations

from omegaconf import DictConfig

from snnx.console import log
from snnx.pipeline import ensure_ann
from snnx.stages import plain_config
from snnx.seeding import resolve_device


def run(cfg: DictConfig) -> dict:
    config = plain_config(cfg)
    ann = ensure_ann(config, resolve_device(config["device"]))
    log(f"ANN test accuracy {ann.metrics.get('test_acc', float('nan')):.2f}% — checkpoint {ann.path}")
    return {"ann": ann, "ann_key": ann.key, "checkpoint": str(ann.path), "metrics": ann.metrics}
