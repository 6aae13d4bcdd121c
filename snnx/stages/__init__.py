"""Stages: ``run(cfg) -> dict`` functions, one per CLI stage word.

Each stage turns the composed Hydra config into a plain dict and calls
``snnx.pipeline``; nothing below this package reads Hydra or a global config.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def plain_config(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def run_dir(cfg: DictConfig) -> Path:
    """The Hydra run directory, or a fresh one under paths.root when called from Python."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except (ValueError, ImportError):
        stamp = dt.datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f")
        path = Path(cfg.paths.root) / "runs" / f"{stamp}_{cfg.stage}"
        path.mkdir(parents=True, exist_ok=True)
        return path


def run_stage(cfg: DictConfig) -> dict:
    from snnx.stages import calibrate, convert, doctor, run, simulate, table, train

    stages = {"train": train.run, "calibrate": calibrate.run, "convert": convert.run,
              "simulate": simulate.run, "run": run.run, "table": table.run, "doctor": doctor.run}
    return stages[cfg.stage](cfg)
