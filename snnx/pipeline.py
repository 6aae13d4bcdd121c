"""The work behind the stages, on plain config dicts (no Hydra here).

train → calibrate → convert → simulate; each step finds its input in the
artifact cache or builds it, so any stage can be run on its own and a sweep
over conversion or simulation settings trains the ANN once.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Subset

from snnx import distributed
from snnx.activations import to_channelwise
from snnx.activations.factory import resolve_grad_window
from snnx.ann import build
from snnx.artifacts import (INIT_FROM_EXPERIMENT, ann_dir, ann_key, ann_key_payload, artifact_lock, atomic_save,
                            atomic_write_text, init_source_config, load_checkpoint, set_aside, stable_hash,
                            checksum_path, plain_tree as _plain,
                            sync_directory,
                            write_csv)
from snnx.calibration import calibrate
from snnx.console import log
from snnx.convert.methods import METHODS
from snnx.data import build_dataset
from snnx.data.info import dataset_info
from snnx.data.order import shuffled_loader
from snnx.distributed import current, main_lock
from snnx.energy.rows import DEFAULT as DEFAULT_ENERGY, energy_rows, price_run
from snnx.errors import CheckpointError, ConfigError
from snnx.progress import track
from snnx.seeding import seed_everything
from snnx.sim import Simulator
from snnx.snn_file import convert_recorded
from snnx.sim.accounting import E_MAC_PJ, ann_macs, hidden_activity
from snnx.sim.qann import qann_accuracy, site_thresholds
from snnx.sim_state import ResumePoint, resume_point, sim_state_dir
from snnx.trainer import evaluate, train_epochs

RESULT_COLUMNS = ["run_id", "dataset", "model", "act", "L", "convert", "method", "T", "acc", "ann_acc",
                  "conversion_loss", "spikes_per_neuron", "sops", "macs", "energy_mj", "seed", "ann_key",
                  "config_hash", "created"]
EXTRA_COLUMNS = ["negative_spikes_per_neuron", "ann_macs", "ann_energy_mj", "passes", "time_steps_simulated",
                 "hidden_spikes", "hidden_negative_ratio", "hidden_neurons", "ops_ratio",
                 # the energy model the energy columns are priced with, and the equal-bit quantised ANN
                 "energy_model", "qann_bits", "qann_acc", "qann_energy_mj", "energy_ratio"]


# -- data ---------------------------------------------------------------------
def dataset(config: Mapping, split: str, *, augment: bool | None = None, limit: int | None = None):
    """The ``split`` of the config's dataset; ``augment``/``limit`` None: the dataset section's own."""
    return build_dataset(config["dataset"], split, augment=augment, limit=limit)


def loader(data, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None,
           num_workers: int = 0) -> DataLoader:
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=num_workers, drop_last=False)


# -- model --------------------------------------------------------------------
def build_model(config: Mapping) -> nn.Module:
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
            try:
                model, data = load_ann(final, key=str(final))
            except CheckpointError as exc:
                if ctx.enabled:  # every rank would have to agree: say so and stop
                    raise
                # A bad cache entry (truncated, or bytes that no longer match its checksum) is set aside and rebuilt.
                moved = set_aside(final)
                log(f"ANN {key}: the cached {final} is unusable ({exc.problem}) → moved to {moved.name}; "
                    "training it again")
            else:
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
            if config["train"].get("init_from"):
                init_from_source(model, config, device)
            train_cfg = config["train"]
            metrics = _train(config, model, directory, device, lr=train_cfg["lr"], epochs=train_cfg["epochs"],
                             stage_name="train")
        model = model.cpu().eval()
        if ctx.is_main:
            _save_final(model, config, key, metrics["epochs"], metrics, final)
            log(f"ANN {key}: saved {final}")
            drop_resume_checkpoints(directory, final)
        if ctx.enabled:
            # Every rank goes on with the saved ANN: rank 0's BatchNorm buffers, plain BatchNorm layers.
            ctx.barrier()
            model, _ = load_ann(final, key=str(final))
        return TrainedANN(model, dict(config), key, final, {k: v for k, v in metrics.items() if k != "rows"})


# The per-epoch resume checkpoints snnx.trainer writes (<stage>_last.pt): one stage's training, or two-stage's
# fine-tuning (its stage 1 is an ANN of its own, with its own directory).
RESUME_CHECKPOINTS = ("train_last.pt", "finetune_last.pt")


def drop_resume_checkpoints(directory: Path, final: Path) -> list[Path]:
    """Remove ``directory``'s resume checkpoints once ``final`` (its model.pt) is on disk; the removed files.

    Called under the cache lock right after model.pt is written, so no job is training from them; a
    resume checkpoint is as big as the model and its optimizer state (two to three times model.pt) and
    nothing reads it once the finished ANN exists. The directory is flushed first, so that a power cut
    can leave model.pt, or the checkpoint to resume from, never neither.
    """
    if not final.is_file():
        return []
    sync_directory(directory)
    removed = []
    for name in RESUME_CHECKPOINTS:
        path = directory / name
        if path.is_file():
            path.unlink()
            removed.append(path)
        checksum_path(path).unlink(missing_ok=True)
    return removed


# -- train.init_from ------------------------------------------------------------
def output_layer(model: nn.Module) -> str:
    """The name of the layer that produces the logits: the last Linear or Conv module with weights
    (modules register in forward order in every snnx model)."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            last = name
    if last is None:
        raise ConfigError("the model has no Linear or Conv layer to leave out.", key="train.init_from",
                          fix="Use train.init_from=null for this model.")
    return last


def _load_source_state(path: str) -> dict:
    """A checkpoint's state_dict, loaded weights-only (nothing is executed): a snnx checkpoint, a dict with
    a 'state_dict', or a bare state_dict."""
    if not Path(path).is_file():
        raise CheckpointError(f"no checkpoint file at {path!r}.", key="train.init_from",
                              fix="Give the path of an ANN checkpoint (outputs/cache/ann/<key>/model.pt), or "
                                  "experiment:<preset> for that preset's ANN.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any library error while reading user input is the user's file
        raise CheckpointError(f"{path!r} is not a readable torch checkpoint of tensors and plain containers "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}).",
                              key="train.init_from",
                              fix="Point to an intact checkpoint (a snnx model.pt or a saved state_dict).") from exc
    state = data.get("state_dict", data) if isinstance(data, dict) else None
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path!r} holds no state_dict (a mapping of parameter names to tensors).",
                              key="train.init_from", fix="Use a snnx model.pt or a file written by "
                              "torch.save(model.state_dict(), path).")
    return dict(state)


def init_source_state(config: Mapping, device: torch.device) -> tuple[dict, str]:
    """(state_dict, what it is) of train.init_from: a checkpoint file, or the referenced preset's ANN, found in
    the cache or trained now (its composed config is ``config["_init_from"]``, put there by the stage)."""
    ref = str(config["train"]["init_from"])
    if ref.startswith(INIT_FROM_EXPERIMENT):
        ann = ensure_ann(init_source_config(config), device)
        return {k: v.detach().cpu() for k, v in ann.model.state_dict().items()}, f"ANN {ann.key} ({ref})"
    return _load_source_state(ref), ref


def init_from_source(model: nn.Module, config: Mapping, device: torch.device) -> str:
    """Copy every tensor of train.init_from's state_dict into ``model`` but the output layer's (Deng & Gu 2021,
    App. A.1: the CIFAR-100 net starts from the CIFAR-10 weights except the output layer). Everything else must
    match in name and shape. Returns the output layer's name."""
    state, what = init_source_state(config, device)
    skip = output_layer(model)
    own = model.state_dict()
    mine = {k for k in own if not k.startswith(skip + ".")}
    theirs = {k for k in state if not k.startswith(skip + ".")}
    problems = [f"{k} is missing" for k in sorted(mine - theirs)]
    problems += [f"{k} is not in this model" for k in sorted(theirs - mine)]
    problems += [f"{k} is {tuple(state[k].shape)}, this model's is {tuple(own[k].shape)}"
                 for k in sorted(mine & theirs) if state[k].shape != own[k].shape]
    if problems:
        shown = "; ".join(problems[:3]) + (f"; … ({len(problems) - 3} more)" if len(problems) > 3 else "")
        raise ConfigError(f"{what} does not fit this {config['model']['name']} outside its output layer "
                          f"({skip}): {shown}.", key="train.init_from",
                          fix="Start from an ANN of the same architecture: the same model, model.width, "
                              "model.batch_norm and input size (only the number of classes may differ), "
                              "or set train.init_from=null.")
    with torch.no_grad():
        for name in mine:
            own[name].copy_(state[name])
    log(f"initialised every layer but the output layer ({skip}) from {what}")
    return skip


def _train(config: Mapping, model: nn.Module, directory: Path, device: torch.device, *, lr: float, epochs: int,
           stage_name: str) -> dict:
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
        train_loader = shuffled_loader(train_set, train_cfg["batch_size"], generator, workers)
    test_loader = loader(test_set, 500, num_workers=workers)
    where = f"{device}" if not ctx.enabled else f"{ctx.world_size} processes (DDP) on {device.type}"
    log(f"ANN {directory.name}: {stage_name} {config['model']['name']} with act={config['act']['name']} on "
        f"{config['dataset']['name']} ({len(train_set)} train / {len(test_set)} test images) on {where}")
    return train_epochs(model, train_loader=train_loader, test_loader=test_loader, loader_generator=generator,
                        train=train_cfg, lr=lr, epochs=epochs, out_dir=directory, config=config, device=device,
                        log=log, stage_name=stage_name, before_epoch=_epoch_hooks(config), ctx=ctx)


def stage_one_config(config: Mapping) -> dict:
    """Two-stage stage 1 (Yang et al. 2025, Alg. 1, l. 1–6): the same run with a layer-wise QCFS, cached on its own.

    Stage 1 keeps the run's gradient window (csqcfs: Eqs. 19–20's shifted one, the derivation rule
    the paper builds on QCFS's), so a CS-QCFS run and an act=qcfs act.grad_window=shifted two-stage
    run (Table 4's layer-wise row) share one stage-1 ANN.
    """
    stage_one = copy.deepcopy(dict(config))
    act = config["act"]
    stage_one["act"] = {**act, "name": "qcfs", "channelwise": False, "softplus": False,
                        "grad_window": resolve_grad_window(act["name"], act.get("grad_window"))}
    stage_one["train"] = {**config["train"], "two_stage": False, "finetune_epochs": 0, "name": "two_stage:stage1"}
    return stage_one


def _finetune_channelwise(config: Mapping, directory: Path, device: torch.device):
    """Stage 2 (Alg. 1, l. 7–12): fine-tune the stage-1 ANN at lr × finetune_lr_scale, all parameters.

    act=csqcfs/cqcfs/sqcfs: each layer λ first becomes λ_c (softplus(p_c) = λ, Eq. 18). act=qcfs: no
    swap — the layer-wise QCFS is fine-tuned as it is (Table 4, "layer-level two-stage training").
    """
    stage_one = ensure_ann(stage_one_config(config), device)
    model = copy.deepcopy(stage_one.model)
    act = config["act"]
    if act["name"] != "qcfs":
        to_channelwise(model, softplus=bool(act["softplus"]), channelwise=bool(act["channelwise"]),
                       grad_window=resolve_grad_window(act["name"], act.get("grad_window")))
    train_cfg = config["train"]
    seed_everything(config["seed"] + 1)
    metrics = _train(config, model, directory, device, lr=train_cfg["lr"] * train_cfg["finetune_lr_scale"],
                     epochs=train_cfg["finetune_epochs"], stage_name="finetune")
    metrics["stage1_key"] = stage_one.key
    metrics["stage1_test_acc"] = stage_one.metrics.get("test_acc")
    return model, metrics


def _epoch_hooks(config: Mapping):
    warmup = config["act"].get("warmup_epochs", 0)
    if not warmup:
        return None

    def before_epoch(model: nn.Module, epoch: int) -> None:
        for module in model.modules():
            if hasattr(module, "relu_warmup"):
                module.relu_warmup = epoch < warmup
    return before_epoch


def _key_json(config: Mapping) -> str:
    return json.dumps(ann_key_payload(config), indent=2, sort_keys=True, default=str) + "\n"


def _check_ckpt_matches(config: Mapping, ckpt_config: Mapping) -> None:
    """Every option of dataset / model / act that differs from the checkpoint's, named in one error."""
    differ = [(g, ckpt_config[g]["name"], config[g]["name"]) for g in ("dataset", "model", "act")
              if config[g]["name"] != ckpt_config[g]["name"]]
    if differ:
        theirs, mine = (" ".join(f"{g}={d[i]}" for g, *d in differ) for i in (0, 1))
        raise ConfigError(f"the checkpoint was trained with {theirs} but this run asks for {mine}.",
                          key="ckpt / " + " / ".join(g for g, *_ in differ),
                          fix=f"Add {theirs} to the command, or use a checkpoint trained with {mine}.")


# -- calibration --------------------------------------------------------------
def ensure_stats(config: Mapping, ann: TrainedANN, device: torch.device) -> dict:
    conv = config["convert"]
    # One pass records every statistic (max, percentile, channel max); a method without a percentile of its own
    # records the default one, under the key calibrations had before each method had its own keys.
    percentile = conv.get("percentile", default_percentile())
    settings = {"ann": ann.key, "percentile": percentile, "calib_size": conv["calib_size"],
                "seed": config["seed"]}
    directory = Path(config["paths"]["root"]) / "cache" / "calib" / stable_hash(settings)
    path = directory / "stats.pt"
    with artifact_lock(directory):
        if path.exists():
            return load_checkpoint(path, key=str(path))["state_dict"]
        data = dataset(config, "train", augment=False, limit=conv["calib_size"])
        batches = loader(data, conv["calib_batch_size"])
        log(f"calibrating on {len(data)} training images (p={percentile})")
        stats = calibrate(ann.model, (images for images, _ in batches), percentile=percentile,
                          num_batches=len(batches), device=device, seed=config["seed"],
                          progress=config.get("progress", True))
        ann.model.cpu()
        atomic_save({"config": settings, "state_dict": stats}, path)
        return stats


# -- conversion and simulation --------------------------------------------------
def default_percentile() -> float:
    """The percentile a calibration records for a method that has none of its own: convert=pnorm's default p."""
    return METHODS.get("pnorm").defaults()["percentile"]


def build_snn(config: Mapping, ann: TrainedANN, stats: dict | None):
    # The run seed drives MSAT's spike-confidence RNG.
    return convert_recorded(ann.model, method=config["convert"]["name"], stats=stats, params=config["convert"],
                            seed=config["seed"], config=_plain(config), ann_key=ann.key)


def needs_stats(config: Mapping) -> bool:
    return bool(METHODS.get(config["convert"]["name"]).trait("needs_stats"))


def make_simulator(config: Mapping, snn, device: torch.device, dtype: torch.dtype, *, chunk=None):
    """The Simulator for ``config["sim"]`` (encoding seeded by the run seed; compile checked here)."""
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
    sim = config["sim"]
    dtype = torch.float64 if sim["dtype"] == "float64" else torch.float32
    test_set = dataset(config, "test", augment=False)
    test_loader = loader(test_set, sim["batch_size"])
    # Keyed before the simulator moves the SNN to the device and dtype.
    every = int(sim.get("checkpoint_every") or 0)
    state_dir = sim_state_dir(config, ann, snn) if every > 0 else None
    simulator = make_simulator(config, snn, device, dtype)
    encoding = "" if sim["encoding"] == "direct" else f", {sim['encoding']} encoding"
    log(f"simulating {len(test_set)} test images for T up to {max(sim['T'])} "
        f"(chunk {simulator.chunk}, {device}, {sim['dtype']}{encoding}{', compiled' if simulator.compile else ''})")
    with resume_point(state_dir, len(test_loader), every) as point:
        return _simulate(config, ann, simulator, method, device, run_dir, test_set, test_loader, point)


def _simulate(config: Mapping, ann: TrainedANN, simulator, method: str, device: torch.device, run_dir: Path,
              test_set, test_loader, point: "ResumePoint") -> dict:
    sim = config["sim"]
    dtype = simulator.dtype
    saved = point.load()
    first = 0 if saved is None else saved["batches"]
    # A resumed run's results say when the run started, as the uninterrupted run's would.
    created = dt.datetime.now().isoformat(timespec="seconds") if saved is None else saved["created"]
    batches = test_loader
    if first:
        log(f"simulate: resuming after batch {first} of {point.batches} from {point.path}")
        # The test loader is unshuffled: the batches after `first` are those of the images after it.
        batches = loader(Subset(test_set, range(first * sim["batch_size"], len(test_set))), sim["batch_size"])

    ann_model = copy.deepcopy(ann.model).to(device, dtype)
    ann_acc = evaluate(ann_model, test_loader, device).acc if dtype == torch.float32 else \
        _evaluate_dtype(ann_model, test_loader, device, dtype)
    info = dataset_info(config["dataset"]["name"])
    progress = track(batches, total=len(test_loader), completed=first, description="simulate",
                     enabled=config.get("progress", True))
    with point.watch(created) as on_batch:
        result = simulator.run(progress, sim["T"], ann=ann_model, record_layers=sim["record_layers"],
                               mean=info.mean, std=info.std, resume=None if saved is None else saved["engine"],
                               on_batch=on_batch)
    macs_ann = ann_macs(copy.deepcopy(ann.model).float().cpu(), test_set[0][0].unsqueeze(0))
    energy = equal_bit_baseline(config, ann_model, simulator.snn, result, test_loader, device, ann_acc)
    # run_id: <sweep or date directory>/<job or run directory>, so multirun jobs 0, 1, … of two sweeps differ.
    labels = {"run_id": f"{run_dir.parent.name}/{run_dir.name}", "dataset": config["dataset"]["name"],
              "model": config["model"]["name"],
              "act": config["act"]["name"], "L": config["act"].get("L"), "convert": config["convert"]["name"],
              "seed": config["seed"], "ann_key": ann.key, "config_hash": stable_hash(config), "created": created}
    frame = result_frame(result, method, labels, ann_acc=ann_acc, macs_ann=macs_ann, energy=energy)
    hydra_config = run_dir / ".hydra" / "config.yaml"
    if not hydra_config.exists():
        # Runs made from Python have no Hydra record; `snnx table` reads the config from here.
        atomic_write_text(hydra_config, yaml.safe_dump(_plain(config), sort_keys=False, allow_unicode=True))
    write_csv(rounded_results(frame), run_dir / "results.csv")
    if result.layer_rows:
        write_csv(rounded_layers(pd.DataFrame(result.layer_rows)), run_dir / "layers.csv")
    layer_energy = []
    if energy is not None:
        layer_energy = energy_rows(energy["priced"], result.layer_counts, energy["model"])
        write_csv(rounded_energy(pd.DataFrame(layer_energy)), run_dir / "energy.csv")
    point.remove()
    return {"results": frame, "ann_acc": ann_acc, "layers": result.layer_rows, "sim": result,
            "energy": layer_energy}


def equal_bit_baseline(config: Mapping, ann_model, snn, result, batches, device, ann_acc: float) -> dict | None:
    """The run's energy under ``config["energy"]`` per T, with its equal-bit QANN: bits and accuracy per T.

    The QANN's bits are the ANN's own (⌈log2(L+1)⌉ for an act with L levels, whose accuracy is the ANN's)
    or ⌈log2(T+1)⌉; then its accuracy is measured (snnx.sim.qann) where every spiking site is a θ·s
    neuron of an ANN module, else it is left empty. None without the simulation's counts."""
    if result.layer_counts is None:
        return None
    levels = config["act"].get("L")
    priced = price_run(config.get("energy"), result.layer_counts, result.time_steps, levels)
    bits = {T: b for T, (_, b) in priced.items()}
    if levels is not None:
        acc = {T: ann_acc for T in bits}
    elif ann_model is None:
        acc = {T: float("nan") for T in bits}
    else:
        thresholds = site_thresholds(ann_model, snn)
        by_bits = qann_accuracy(ann_model, thresholds, bits.values(), batches, device) if thresholds else {}
        acc = {T: by_bits.get(b, float("nan")) for T, b in bits.items()}
    return {"model": (config.get("energy") or DEFAULT_ENERGY)["name"], "priced": priced, "bits": bits,
            "acc": acc}


def result_frame(result, method: str, labels: Mapping, *, ann_acc: float | None, macs_ann: float | None,
                 energy: Mapping | None = None) -> pd.DataFrame:
    """results.csv's rows, one per T of ``result`` (a SimResult); ``labels``: the run's columns that say what
    was run (run_id, dataset, model, act, L, convert, seed, ann_key, config_hash, created; absent ones are
    left empty). Without the ANN's accuracy or MACs, the columns computed from them are empty. ``energy``
    (:func:`equal_bit_baseline`): the energy columns under its model, with the QANN's; None: horowitz45's
    totals, no QANN."""
    # The method column is the method and a non-default encoding; how it was simulated (one pass or one per T)
    # is the passes column's.
    method_label = "; ".join([method] + ([f"{result.encoding} encoding"] if result.encoding != "direct" else []))
    nan = float("nan")
    rows = []
    for T in result.time_steps:
        stats = result.per_image(T)
        rows.append({**labels, "method": method_label, "T": T, "acc": stats["acc"],
                     "ann_acc": nan if ann_acc is None else ann_acc,
                     "conversion_loss": nan if ann_acc is None else ann_acc - stats["acc"],
                     "spikes_per_neuron": stats["spikes_per_neuron"], "sops": stats["sops"], "macs": stats["macs"],
                     "energy_mj": stats["energy_mj"] if energy is None else energy["priced"][T][0].snn_pj * 1e-9,
                     "negative_spikes_per_neuron": stats["negative_spikes_per_neuron"],
                     "ann_macs": nan if macs_ann is None else macs_ann,
                     "ann_energy_mj": (nan if macs_ann is None else E_MAC_PJ * macs_ann * 1e-9) if energy is None
                     else energy["priced"][T][0].ann_pj * 1e-9,
                     **_qann_columns(energy, T),
                     "passes": result.passes, "time_steps_simulated": T,
                     **hidden_activity(result, T, nan if macs_ann is None else macs_ann)})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS + EXTRA_COLUMNS)


def _qann_columns(energy: Mapping | None, T: int) -> dict:
    nan = float("nan")
    if energy is None:
        return {"energy_model": DEFAULT_ENERGY["name"], "qann_bits": nan, "qann_acc": nan, "qann_energy_mj": nan,
                "energy_ratio": nan}
    priced = energy["priced"][T][0]
    return {"energy_model": energy["model"], "qann_bits": energy["bits"][T], "qann_acc": energy["acc"][T],
            "qann_energy_mj": priced.qann_pj * 1e-9,
            "energy_ratio": priced.snn_pj / priced.qann_pj if priced.qann_pj > 0 else nan}


# How results.csv writes its numbers (the frames in memory, and snnx.api's to_pandas, keep full precision):
# accuracies in % to 2 decimals; per-image means of operation or spike counts to 1 decimal (a count that is
# whole stays exact, float noise goes); whole counts as integers; rates, ratios and energies to 4 significant
# digits.
_DECIMALS = {"acc": 2, "ann_acc": 2, "qann_acc": 2, "sops": 1, "macs": 1, "hidden_spikes": 1}
_INTEGERS = ("ann_macs", "hidden_neurons", "qann_bits")
_SIGNIFICANT = {"spikes_per_neuron": 4, "negative_spikes_per_neuron": 4, "energy_mj": 4, "ann_energy_mj": 4,
                "qann_energy_mj": 4, "energy_ratio": 4, "hidden_negative_ratio": 4, "ops_ratio": 4}
# layers.csv: every per-layer statistic (rates, ratios, errors) to 4 significant digits.
_LAYER_SIGNIFICANT = 4


def significant(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` significant digits (NaN and ±inf unchanged)."""
    return float(f"{value:.{digits}g}")


def rounded_results(frame: pd.DataFrame) -> pd.DataFrame:
    """results.csv's rows as written: see _DECIMALS. conversion_loss is the written ann_acc − acc, so the
    file's columns agree with each other."""
    out = frame.copy()
    for column, decimals in _DECIMALS.items():
        out[column] = out[column].astype(float).round(decimals)
    out["conversion_loss"] = (out["ann_acc"] - out["acc"]).round(2)
    for column in _INTEGERS:
        out[column] = out[column].astype(float).round().astype("Int64")
    for column, digits in _SIGNIFICANT.items():
        out[column] = out[column].astype(float).map(lambda v, d=digits: significant(v, d))
    return out


def rounded_energy(frame: pd.DataFrame) -> pd.DataFrame:
    """energy.csv's rows as written: energies and spikes per synapse to 4 significant digits, SOPs and spikes
    per image to 1 decimal, MACs as integers."""
    out = frame.copy()
    for column in ("energy_mj", "ann_energy_mj", "qann_energy_mj", "spikes_per_synapse"):
        out[column] = out[column].astype(float).map(lambda v: significant(v, 4))
    for column in ("sops", "spikes"):
        out[column] = out[column].astype(float).round(1)
    out["macs"] = out["macs"].astype(float).round().astype("Int64")
    return out


def rounded_layers(frame: pd.DataFrame) -> pd.DataFrame:
    """layers.csv's rows as written: each float column (the statistics; T and the layer name are not) to
    _LAYER_SIGNIFICANT significant digits."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = out[column].map(lambda v: significant(v, _LAYER_SIGNIFICANT))
    return out


def _evaluate_dtype(model, test_loader, device, dtype) -> float:
    correct = total = 0
    with torch.no_grad():
        for images, labels in test_loader:
            logits = model(images.to(device, dtype))
            correct += int((logits.argmax(1).cpu() == labels).sum())
            total += labels.numel()
    return 100.0 * correct / max(total, 1)
