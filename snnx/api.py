"""Python API for notebooks: the pipeline's pieces without the CLI.

    from snnx import api
    model, config = api.load_ann("outputs/cache/ann/<key>/model.pt")
    test = api.build_dataset(config, split="test")
    snn = api.convert(model, config, method="qcfs")
    api.simulate(snn, test, time_steps=[1, 2, 4, 8, 16, 32])   # {T: accuracy %}
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, Dataset

from snnx import pipeline
from snnx.calibration import calibrate
from snnx.composition import compose as compose_cfg
from snnx.convert import convert as convert_model
from snnx.convert.methods import METHODS
from snnx.convert.run import method_params
from snnx.seeding import resolve_device
from snnx.sim import Simulator
from snnx.validate import validate


def compose(*overrides: str, stage: str = "run") -> dict:
    """The resolved config for these overrides, as a plain dict (same composition as the CLI)."""
    cfg = compose_cfg(stage, list(overrides))
    validate(cfg)
    return OmegaConf.to_container(cfg, resolve=True)


def load_ann(path: str) -> tuple[nn.Module, dict]:
    """The trained ANN of a snnx checkpoint and the config that built it."""
    model, data = pipeline.load_ann(path, key="path")
    return model, data["config"]


def build_dataset(config: Mapping, split: str = "test") -> Dataset:
    return pipeline.dataset(config, split, augment=False if split == "test" else None)


def convert(model: nn.Module, config: Mapping, *, method: str | None = None, stats: dict | None = None,
            calibration_data: Dataset | None = None, **convert_overrides) -> nn.Module:
    """Convert ``model`` with ``method`` (default: config's convert.name).

    Methods that read calibration statistics (maxnorm, pnorm, channelnorm, shift, msat) compute them
    on ``calibration_data`` (default: the config's training set) unless
    ``stats`` is given.
    """
    method = method or config["convert"]["name"]
    base = config["convert"] if config["convert"]["name"] == method else METHODS.declared(method, config["convert"])
    conv = method_params(method, {**base, **convert_overrides, "name": method})
    if METHODS.get(method).trait("needs_stats") and stats is None:
        data = calibration_data or pipeline.dataset(config, "train", augment=False, limit=conv["calib_size"])
        batches = DataLoader(data, batch_size=conv["calib_batch_size"])
        stats = calibrate(model, (x for x, _ in batches), percentile=conv.get("percentile", pipeline.default_percentile()),
                          num_batches=len(batches), device=torch.device("cpu"))
    snn, _label = convert_model(model, method=method, stats=stats, convert=conv)
    return snn


def simulate(snn: nn.Module, data: Dataset, time_steps: Sequence[int] = (1, 2, 4, 8, 16, 32, 64), *,
             batch_size: int = 250, device: str = "auto", chunk: int | str = "auto",
             dtype: torch.dtype = torch.float32, encoding: str = "direct", seed: int = 0,
             mean=None, std=None, compile: bool = False) -> dict[int, float]:
    """Accuracy (%) at every T of ``time_steps``, simulated in one pass.

    ``encoding="poisson"`` rate-codes the images (``mean``/``std``: their
    normalisation, to be undone; None: intensities in [0, 1]), seeded by ``seed``.
    """
    simulator = Simulator(snn, device=resolve_device(device), chunk=chunk, dtype=dtype, encoding=encoding,
                          seed=seed, compile=compile)
    result = simulator.run(DataLoader(data, batch_size=batch_size), time_steps, mean=mean, std=std)
    return {T: result.accuracy(T) for T in result.time_steps}
