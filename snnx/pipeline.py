"""The work behind the stages, on plain config dicts (no Hydra here).

train → calibrate → convert → simulate; each step finds its input in the
artifact cache or builds it, so any stage can be run on its own and a sweep
over conversion or simulation settings trains the ANN once.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from snnx.artifacts import (ann_dir, ann_key, artifact_lock, atomic_save, atomic_write_text, load_checkpoint,
                            stable_hash, write_csv)
from snnx.console import log
from snnx.errors import CheckpointError, ConfigError
from snnx.data.info import dataset_info

RESULT_COLUMNS = ["run_id", "dataset", "model", "act", "L", "convert", "method", "T", "acc", "ann_acc",
                  "conversion_loss", "spikes_per_neuron", "sops", "macs", "energy_mj", "seed", "ann_key",
                  "config_hash", "created"]
EXTRA_COLUMNS = ["negative_spikes_per_neuron", "ann_macs", "ann_energy_mj", "passes", "time_steps_simulated"]


# -- data ---------------------------------------------------------------------
def dataset(config: Mapping, split: str, *, augment: bool | None = None, limit: int | None = None):
    from snnx.data import build_dataset

    ds = config["dataset"]
    if limit is None:
        limit = ds["limit_train"] if split == "train" else ds["limit_test"]
    return build_dataset(ds["name"], split, root=ds["root"], download=ds["download"],
                         augment=ds["augment"] if augment is None else augment,
                         autoaugment=ds["autoaugment"], cutout=ds["cutout"], limit=limit, seed=config["seed"])


def loader(data, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None,
           num_workers: int = 0) -> DataLoader:
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=num_workers, drop_last=False)


# -- model --------------------------------------------------------------------
def build_model(config: Mapping) -> nn.Module:
    from snnx.models import build

    return build(config)


def _save_final(model: nn.Module, config: Mapping, key: str, epochs: int, metrics: dict, path: Path) -> None:
    atomic_save({"config": dict(config), "state_dict": model.state_dict(), "epoch": epochs,
                 "metrics": {k: v for k, v in metrics.items() if k != "rows"}, "ann_key": key}, path)


def load_ann(path: str | os.PathLike, *, key: str = "ckpt") -> tuple[nn.Module, dict]:
    """Rebuild a trained ANN from its checkpoint (weights_only: nothing is executed)."""
    data = load_checkpoint(path, key=key)
    config = data["config"]
    try:
        model = build_model(config)
        model.load_state_dict(data["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{str(path)!r} does not match the model its config describes ({str(exc).splitlines()[0][:200]}).",
                              key=key, fix="Use a checkpoint written by this version of snnx.") from exc
    return model.eval(), data


@dataclass
class TrainedANN:
    model: nn.Module
    config: dict
    key: str
    path: Path
    metrics: dict


def ensure_ann(config: Mapping, device: torch.device) -> TrainedANN:
    """The trained ANN for ``config``: an explicit ckpt, the cache, or a new training run.

    In a torchrun process group every rank calls this together: rank 0 holds the
    cache lock and decides (reuse or train), all ranks train, rank 0 writes, and
    then every rank reads the finished ANN from the cache.
    """
    from snnx.distributed import current, main_lock
    from snnx.trainer import seed_everything

    if config.get("ckpt"):
        model, data = load_ann(config["ckpt"], key="ckpt")
        _check_ckpt_matches(config, data["config"])
        return TrainedANN(model, data["config"], data.get("ann_key", ann_key(data["config"])), Path(config["ckpt"]),
                          dict(data.get("metrics", {})))
    key = ann_key(config)
    directory = ann_dir(config["paths"]["root"], key)
    final = directory / "model.pt"
    ctx = current()
    with main_lock(directory, ctx):
        if ctx.broadcast(final.exists()):
            model, data = load_ann(final, key=str(final))
            log(f"ANN {key}: reusing {final} (test acc {data['metrics'].get('test_acc', float('nan')):.2f}%)")
            return TrainedANN(model, data["config"], key, final, dict(data["metrics"]))
        if ctx.is_main:
            directory.mkdir(parents=True, exist_ok=True)
            atomic_write_text(directory / "key.json", _key_json(config))
        if config["train"]["two_stage"]:
            model, metrics = _finetune_channelwise(config, directory, device)
        else:
            seed_everything(config["seed"])
            model = build_model(config)
            train_cfg = config["train"]
            metrics = _train(config, model, directory, device, lr=train_cfg["lr"], epochs=train_cfg["epochs"],
                             stage_name="train")
        model = model.cpu().eval()
        if ctx.is_main:
            _save_final(model, config, key, metrics["epochs"], metrics, final)
            log(f"ANN {key}: saved {final}")
        if ctx.enabled:
            # Every rank goes on with the saved ANN: rank 0's BatchNorm buffers, plain BatchNorm layers.
            ctx.barrier()
            model, _ = load_ann(final, key=str(final))
        return TrainedANN(model, dict(config), key, final, {k: v for k, v in metrics.items() if k != "rows"})


def _train(config: Mapping, model: nn.Module, directory: Path, device: torch.device, *, lr: float, epochs: int,
           stage_name: str) -> dict:
    from snnx import distributed
    from snnx.trainer import train_epochs

    train_cfg = config["train"]
    generator = torch.Generator().manual_seed(config["seed"])
    train_set = dataset(config, "train")
    test_set = dataset(config, "test", augment=False)
    workers = config["dataset"]["num_workers"]
    ctx = distributed.current()
    if ctx.enabled:
        # train.batch_size is the global batch; each rank takes its share of it.
        train_loader = distributed.train_loader(train_set, train_cfg["batch_size"], ctx, generator, workers)
    else:
        train_loader = loader(train_set, train_cfg["batch_size"], shuffle=True, generator=generator,
                              num_workers=workers)
    test_loader = loader(test_set, 500, num_workers=workers)
    where = f"{device}" if not ctx.enabled else f"{ctx.world_size} processes (DDP) on {device.type}"
    log(f"ANN {directory.name}: {stage_name} {config['model']['name']} with act={config['act']['name']} on "
        f"{config['dataset']['name']} ({len(train_set)} train / {len(test_set)} test images) on {where}")
    return train_epochs(model, train_loader=train_loader, test_loader=test_loader, loader_generator=generator,
                        train=train_cfg, lr=lr, epochs=epochs, out_dir=directory, config=config, device=device,
                        log=log, stage_name=stage_name, before_epoch=_epoch_hooks(config), ctx=ctx)


def stage_one_config(config: Mapping) -> dict:
    """CS-QCFS stage 1: the same run with a layer-wise QCFS activation, cached on its own."""
    stage_one = copy.deepcopy(dict(config))
    stage_one["act"] = {**config["act"], "name": "qcfs", "channelwise": False, "softplus": False}
    stage_one["train"] = {**config["train"], "two_stage": False, "finetune_epochs": 0, "name": "two_stage:stage1"}
    return stage_one


def _finetune_channelwise(config: Mapping, directory: Path, device: torch.device):
    """Stage 2: each layer λ becomes channel-wise λ_c (softplus(p_c) = λ), fine-tuned at lr × scale."""
    from snnx.activations import to_channelwise
    from snnx.trainer import seed_everything

    stage_one = ensure_ann(stage_one_config(config), device)
    model = copy.deepcopy(stage_one.model)
    to_channelwise(model, softplus=bool(config["act"]["softplus"]), channelwise=bool(config["act"]["channelwise"]))
    train_cfg = config["train"]
    seed_everything(config["seed"] + 1)
    metrics = _train(config, model, directory, device, lr=train_cfg["lr"] * train_cfg["finetune_lr_scale"],
                     epochs=train_cfg["finetune_epochs"], stage_name="finetune")
    metrics["stage1_key"] = stage_one.key
    metrics["stage1_test_acc"] = stage_one.metrics.get("test_acc")
    return model, metrics


def _epoch_hooks(config: Mapping):
    warmup = config["act"].get("warmup_epochs", 0) if config["act"]["name"] == "clip" else 0
    if not warmup:
        return None

    def before_epoch(model: nn.Module, epoch: int) -> None:
        for module in model.modules():
            if hasattr(module, "relu_warmup"):
                module.relu_warmup = epoch < warmup
    return before_epoch


def _key_json(config: Mapping) -> str:
    import json

    from snnx.artifacts import ann_key_payload

    return json.dumps(ann_key_payload(config), indent=2, sort_keys=True, default=str) + "\n"


def _check_ckpt_matches(config: Mapping, ckpt_config: Mapping) -> None:
    for group in ("dataset", "model", "act"):
        mine, theirs = config[group]["name"], ckpt_config[group]["name"]
        if mine != theirs:
            raise ConfigError(f"the checkpoint was trained with {group}={theirs} but this run asks for {group}={mine}.",
                              key=f"ckpt / {group}", fix=f"Add {group}={theirs} to the command, or use a checkpoint trained for {group}={mine}.")


# -- calibration --------------------------------------------------------------
def ensure_stats(config: Mapping, ann: TrainedANN, device: torch.device) -> dict:
    from snnx.calibration import calibrate

    conv = config["convert"]
    settings = {"ann": ann.key, "percentile": conv["percentile"], "calib_size": conv["calib_size"],
                "seed": config["seed"]}
    directory = Path(config["paths"]["root"]) / "cache" / "calib" / stable_hash(settings)
    path = directory / "stats.pt"
    with artifact_lock(directory):
        if path.exists():
            return load_checkpoint(path, key=str(path))["state_dict"]
        data = dataset(config, "train", augment=False, limit=conv["calib_size"])
        batches = loader(data, conv["calib_batch_size"])
        log(f"calibrating on {len(data)} training images (p={conv['percentile']})")
        stats = calibrate(ann.model, (images for images, _ in batches), percentile=conv["percentile"],
                          num_batches=len(batches), device=device, seed=config["seed"])
        ann.model.cpu()
        atomic_save({"config": settings, "state_dict": stats}, path)
        return stats


# -- conversion and simulation --------------------------------------------------
def build_snn(config: Mapping, ann: TrainedANN, stats: dict | None):
    from snnx.convert import convert

    # The run seed drives MSAT's spike-confidence RNG.
    return convert(ann.model, method=config["convert"]["name"], stats=stats,
                   convert={**config["convert"], "seed": config["seed"]})


def needs_stats(config: Mapping) -> bool:
    from snnx.convert.methods import CALIBRATED

    return config["convert"]["name"] in CALIBRATED or config["convert"]["name"] == "msat"


def make_simulator(config: Mapping, snn, device: torch.device, dtype: torch.dtype, *, chunk=None):
    """The Simulator for ``config["sim"]`` (encoding seeded by the run seed; compile checked here)."""
    from snnx.sim import Simulator

    sim = config["sim"]
    try:
        return Simulator(snn, device=device, chunk=sim["chunk"] if chunk is None else chunk, dtype=dtype,
                         encoding=sim["encoding"], seed=config["seed"], compile=sim["compile"])
    except ValueError as err:
        key = "sim.compile" if sim["compile"] and "torch.compile" in str(err) else "sim.encoding"
        fix = ("Run without it: sim.compile=false." if key == "sim.compile"
               else "Use sim.encoding=direct for this network.")
        raise ConfigError(f"{err}.", key=key, fix=fix) from None


def simulate(config: Mapping, ann: TrainedANN, snn, method: str, device: torch.device, run_dir: Path) -> dict:
    from snnx.sim.accounting import E_MAC_PJ, ann_macs

    sim = config["sim"]
    dtype = torch.float64 if sim["dtype"] == "float64" else torch.float32
    test_set = dataset(config, "test", augment=False)
    test_loader = loader(test_set, sim["batch_size"])
    simulator = make_simulator(config, snn, device, dtype)
    encoding = "" if sim["encoding"] == "direct" else f", {sim['encoding']} encoding"
    log(f"simulating {len(test_set)} test images for T up to {max(sim['T'])} "
        f"(chunk {simulator.chunk}, {device}, {sim['dtype']}{encoding}{', compiled' if simulator.compile else ''})")
    from snnx.trainer import evaluate

    ann_model = copy.deepcopy(ann.model).to(device, dtype)
    ann_acc = evaluate(ann_model, test_loader, device).acc if dtype == torch.float32 else \
        _evaluate_dtype(ann_model, test_loader, device, dtype)
    info = dataset_info(config["dataset"]["name"])
    result = simulator.run(test_loader, sim["T"], ann=ann_model, record_layers=sim["record_layers"],
                           mean=info.mean, std=info.std)
    macs_ann = ann_macs(copy.deepcopy(ann.model).float().cpu(), test_set[0][0].unsqueeze(0))
    created = dt.datetime.now().isoformat(timespec="seconds")
    config_hash = stable_hash(config)
    run_id = run_dir.name
    # The method column says how it was simulated: one pass or one per T, and a non-default encoding.
    method_label = "; ".join([method, result.passes] + ([f"{result.encoding} encoding"]
                                                         if result.encoding != "direct" else []))
    rows = []
    for T in result.time_steps:
        stats = result.per_image(T)
        rows.append({"run_id": run_id, "dataset": config["dataset"]["name"], "model": config["model"]["name"],
                     "act": config["act"]["name"], "L": config["act"].get("L"), "convert": config["convert"]["name"],
                     "method": method_label, "T": T, "acc": stats["acc"], "ann_acc": ann_acc,
                     "conversion_loss": ann_acc - stats["acc"], "spikes_per_neuron": stats["spikes_per_neuron"],
                     "sops": stats["sops"], "macs": stats["macs"], "energy_mj": stats["energy_mj"],
                     "seed": config["seed"], "ann_key": ann.key, "config_hash": config_hash, "created": created,
                     "negative_spikes_per_neuron": stats["negative_spikes_per_neuron"], "ann_macs": macs_ann,
                     "ann_energy_mj": E_MAC_PJ * macs_ann * 1e-9, "passes": result.passes,
                     "time_steps_simulated": T})
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS + EXTRA_COLUMNS)
    hydra_config = run_dir / ".hydra" / "config.yaml"
    if not hydra_config.exists():
        # Runs made from Python have no Hydra record; `snnx table` reads the config from here.
        from omegaconf import OmegaConf

        atomic_write_text(hydra_config, OmegaConf.to_yaml(OmegaConf.create(dict(config))))
    write_csv(frame, run_dir / "results.csv")
    if result.layer_rows:
        write_csv(pd.DataFrame(result.layer_rows), run_dir / "layers.csv")
    return {"results": frame, "ann_acc": ann_acc, "layers": result.layer_rows, "sim": result}


def _evaluate_dtype(model, test_loader, device, dtype) -> float:
    correct = total = 0
    with torch.no_grad():
        for images, labels in test_loader:
            logits = model(images.to(device, dtype))
            correct += int((logits.argmax(1).cpu() == labels).sum())
            total += labels.numel()
    return 100.0 * correct / max(total, 1)
