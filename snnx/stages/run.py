"""Stage `run`: train → calibrate → convert → simulate in one process."""

from __future__ import annotations

from omegaconf import DictConfig

from snnx.pipeline import needs_stats
from snnx.stages import calibrate, convert, plain_config, simulate, train


def run(cfg: DictConfig) -> dict:
    result = train.run(cfg)
    if needs_stats(plain_config(cfg)):
        result = calibrate.run(cfg, result)
    result = convert.run(cfg, result)
    return simulate.run(cfg, result)
