"""Stages: ``run(cfg) -> dict`` functions, one per CLI stage word.

Each stage turns the composed Hydra config into a plain dict and calls
``snnx.pipeline``; nothing below this package reads Hydra or a global config.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from hydra import compose as hydra_compose
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from snnx.composition import compose_checked
from snnx.errors import ConfigError
from snnx.tables.layout import rounded
from snnx.validate import validate

# The stages that build, train or simulate networks need torch, and each imports the snnx modules that load it
# (snnx.pipeline, snnx.artifacts, snnx.distributed, snnx.seeding) inside the function that uses them: `snnx table`
# runs through this package and never loads torch.


def plain_config(cfg: DictConfig) -> dict:
    """The composed config as plain data, with train.init_from=experiment:<preset> composed (resolve_init_from)."""
    return resolve_init_from(OmegaConf.to_container(cfg, resolve=True), _task_overrides())


def _task_overrides() -> list[str]:
    """The running Hydra job's command-line overrides (none when called from Python)."""
    try:
        return list(HydraConfig.get().overrides.task)
    except (ValueError, AttributeError):
        return []


# Overrides a train.init_from source does not inherit from the run that names it: the run's own preset and
# dataset (the source preset picks its own), the reference itself, and what only concerns the run.
_NOT_CARRIED = ("experiment", "dataset", "dataset.name", "train.init_from", "stage", "ckpt", "hparams_search")


def resolve_init_from(config: dict, overrides: list[str] | None = None, _chain: tuple[str, ...] = ()) -> dict:
    """Compose the preset that ``train.init_from=experiment:<preset>`` names into ``config["_init_from"]``.

    The source is that preset with the run's other command-line ``overrides`` (model.width, act=relu,
    dataset.limit_train, train.epochs …: the same net at the same scale) and the run's paths and device;
    its own train.init_from is resolved in turn. Returns ``config`` (changed in place).
    """
    # snnx.artifacts loads torch: `snnx table` imports this package and must not wait for it
    from snnx.artifacts import INIT_FROM_EXPERIMENT, INIT_SOURCE_KEY

    ref = str((config.get("train") or {}).get("init_from") or "")
    if not ref.startswith(INIT_FROM_EXPERIMENT) or isinstance(config.get(INIT_SOURCE_KEY), dict):
        return config
    name = ref[len(INIT_FROM_EXPERIMENT):].strip()
    if name in _chain:
        raise ConfigError(f"the presets start from each other in a circle: {' → '.join([*_chain, name])}.",
                          key="train.init_from", fix="Let one of them start from its own initialisation "
                          "(train.init_from=null) or from a checkpoint file.")
    carried = [o for o in (overrides or []) if o.split("=", 1)[0].lstrip("+~") not in _NOT_CARRIED
               and not o.lstrip("+~").startswith("hydra")]
    source = _compose_source(name, carried)
    source["paths"] = dict(config["paths"])
    source["device"] = config["device"]
    config[INIT_SOURCE_KEY] = resolve_init_from(source, overrides, (*_chain, name))
    return config


def _compose_source(name: str, overrides: list[str]) -> dict:
    job = [f"experiment={name}", *overrides]
    if GlobalHydra.instance().is_initialized():  # inside the running app (or a test's Hydra context)
        cfg = hydra_compose(config_name="config", overrides=["stage=train", *job])
    else:
        cfg = compose_checked("train", job)
    # As for the run itself: validate resolves train.weight_quant=auto, which the ANN key sees.
    return OmegaConf.to_container(validate(cfg, check_paths=False, note=None), resolve=True)


def run_dir(cfg: DictConfig) -> Path:
    """The Hydra run directory, or a fresh one under paths.root when called from Python."""
    try:
        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:
        stamp = dt.datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f")
        path = Path(cfg.paths.root) / "runs" / f"{stamp}_{cfg.stage}"
        path.mkdir(parents=True, exist_ok=True)
        return path


def prepare_snn(config: dict, upstream: dict | None, device) -> tuple:
    """``(ann, stats, snn, method)``: the upstream stage's ANN and statistics when it passed them on, else the
    cached (or newly trained / calibrated) ones; stats is None for methods that need none."""
    # snnx.pipeline loads torch: `snnx table` imports this package and must not wait for it
    from snnx.pipeline import build_snn, ensure_ann, ensure_stats, needs_stats

    ann = upstream["ann"] if upstream else ensure_ann(config, device)
    stats = None
    if needs_stats(config):
        stats = upstream.get("stats") if upstream else None
        stats = stats if stats is not None else ensure_stats(config, ann, device)
    snn, method = build_snn(config, ann, stats)
    return ann, stats, snn, method


def run_stage(cfg: DictConfig) -> dict:
    # torchrun sets WORLD_SIZE; validate() has made sure train.distributed=true then (but for `table`).
    if os.environ.get("WORLD_SIZE", "1") not in ("", "1") and distributed_training(cfg):
        return {}
    if cfg.stage == "table":
        # The stage modules import this package's helpers (a cycle at the top); `table` alone, because the
        # others load torch and a table must come up in well under two seconds without it.
        from snnx.stages import table

        return table.run(cfg)
    # The stage modules import this package's helpers (plain_config, run_dir): at the top this would be a cycle.
    from snnx.stages import calibrate, convert, doctor, export, run, simulate, train

    stages = {"train": train.run, "calibrate": calibrate.run, "convert": convert.run,
              "simulate": simulate.run, "run": run.run, "doctor": doctor.run, "export": export.run}
    return stages[cfg.stage](cfg)


def distributed_training(cfg: DictConfig) -> bool:
    """Under torchrun: every rank trains the ANN together (DDP), then rank 0 alone runs the stage.

    Returns True in the processes other than rank 0, which then have nothing left to do.
    """
    # snnx.distributed, snnx.pipeline and snnx.seeding load torch: `snnx table` must not wait for them
    from snnx import distributed
    from snnx.pipeline import ensure_ann
    from snnx.seeding import resolve_device

    config = plain_config(cfg)
    if cfg.stage != "table" and config["train"]["distributed"]:
        device = resolve_device(config["device"])
        distributed.setup(device)
        try:
            if not config.get("ckpt"):
                ensure_ann(config, device)  # collective: rank 0 writes the cache entry, every rank waits for it
        finally:
            distributed.teardown()
    # The process group is gone: rank 0's stage finds the ANN in the cache and goes on alone.
    return distributed.is_helper_process()


def objective_value(cfg: DictConfig, result: dict) -> float | None:
    """``objective.metric`` of a finished stage (at ``objective.T``), for a sweeper that optimises; rounded as
    the tables print it (Optuna prints and records the number it is given)."""
    metric = cfg.objective.metric
    if metric is None or not result:
        return None
    if metric == "ann_acc":
        return rounded(result["ann_acc"] if "ann_acc" in result else result["metrics"]["test_acc"], metric)
    frame = result["results"]
    T = cfg.objective.T if cfg.objective.T is not None else int(frame["T"].max())
    return rounded(frame.loc[frame["T"] == T, metric].iloc[0], metric)
