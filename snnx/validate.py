"""Semantic config checks, run before any data is loaded.

Types and unknown keys are caught by the structured-config schema at
composition; this module checks ranges and combinations. Every failure is a
ConfigError naming the key, the bad value and the fix.
"""

from __future__ import annotations

import difflib
import math
import os
from typing import Callable

from omegaconf import DictConfig, OmegaConf, open_dict

from snnx.errors import CheckpointError, ConfigError, DataError, SnnxError

QCFS_FAMILY = ("qcfs", "cqcfs", "sqcfs", "csqcfs")
# Which ANN activations each conversion can take.
CONVERT_NEEDS_ACT = {
    "qcfs": QCFS_FAMILY,
    "cos": QCFS_FAMILY,
    "allint": ("quant",),
}
# Stages that build an SNN, for which act and convert must fit together.
CONVERTING_STAGES = ("convert", "simulate", "run", "doctor")
CHOICES = {
    "device": ("auto", "cpu", "cuda"),
    "model.pool": ("avg", "max", "conv"),
    "model.init": ("default", "denggu"),
    "train.optimizer": ("sgd", "adam"),
    "train.schedule": ("cosine", "step", "none"),
    "train.weight_quant": ("auto", "none", "ternary"),
    "train.ternary_ste": ("clipped", "identity"),
    "convert.maxpool": ("error", "avg"),
    "convert.variant": ("T", "S", "TS"),
    "convert.base": ("maxnorm", "pnorm"),
    "convert.units": ("raw", "normalised"),
    "convert.det_tau": ("squared", "once"),
    "sim.encoding": ("direct", "poisson"),
    "sim.dtype": ("float32", "float64"),
}


def _get(cfg: DictConfig, dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def _positive_int(value, key: str, fix: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"must be an integer ≥ {minimum}, got {value!r}.", key=key, fix=fix)


def _positive(value, key: str, fix: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ConfigError(f"must be a number > 0, got {value!r}.", key=key, fix=fix)


def _print_note(text: str) -> None:
    print(f"snnx: note: {text}")


def check_time_steps(cfg: DictConfig, note: Callable[[str], None] | None = _print_note) -> None:
    steps = list(cfg.sim.T)
    if not steps:
        raise ConfigError("the list of time steps is empty.", key="sim.T", fix="Give at least one, e.g. 'sim.T=[1,2,4,8]'.")
    for t in steps:
        _positive_int(t, "sim.T", "Every time step must be a positive integer, e.g. 'sim.T=[1,2,4,8,16,32]'.")
    tidy = sorted(set(steps))
    if tidy != steps:
        with open_dict(cfg):
            cfg.sim.T = tidy
        if note is not None:
            note(f"sim.T sorted and de-duplicated to {tidy}")


def check_choices(cfg: DictConfig) -> None:
    for key, allowed in CHOICES.items():
        value = _get(cfg, key)
        if value not in allowed:
            raise ConfigError(f"unknown value {value!r}.", key=key, fix=f"Use one of: {', '.join(allowed)}.")


def check_act(cfg: DictConfig) -> None:
    act = cfg.act
    if act.name in QCFS_FAMILY:
        if act.L is None:
            raise ConfigError(f"act={act.name} needs the number of quantisation steps.", key="act.L", fix="Set act.L=4 (or another integer ≥ 1).")
        _positive_int(act.L, "act.L", "Set act.L to an integer ≥ 1, e.g. act.L=4.")
        _positive(act.init_threshold, "act.init_threshold", "Set a positive initial λ, e.g. act.init_threshold=8.")
        if not 0.0 <= act.shift <= 1.0:
            raise ConfigError(f"must lie in [0, 1], got {act.shift}.", key="act.shift", fix="Use act.shift=0.5 (QCFS) or 0.")
        from snnx.activations.factory import resolve_grad_window
        from snnx.activations.functional import GRAD_WINDOWS

        if act.grad_window not in GRAD_WINDOWS + ("auto",):
            raise ConfigError(f"unknown gradient window {act.grad_window!r}.", key="act.grad_window",
                              fix="Use act.grad_window=shifted (Yang et al. 2025, Eq. 19), clip ([0, λ]) or auto.")
        act.grad_window = resolve_grad_window(act.name, act.grad_window)
    elif act.grad_window != "auto":
        raise ConfigError(f"does not apply to act={act.name} (only the QCFS family has a gradient window).",
                          key="act.grad_window", fix="Drop act.grad_window, or use act=qcfs/cqcfs/sqcfs/csqcfs.")
    if act.name == "clip":
        _positive(act.y_th, "act.y_th", "Set a positive ceiling, e.g. act.y_th=1.")
        _positive_int(act.warmup_epochs, "act.warmup_epochs", "Use 0 for no ReLU warm-up.", minimum=0)
    if act.name == "quant":
        if act.k is None:
            raise ConfigError("act=quant needs the quantisation level.", key="act.k", fix="Set act.k=0, 1 or 2.")
        _positive_int(act.k, "act.k", "Set act.k to an integer ≥ 0, e.g. act.k=0.", minimum=0)
        _positive(act.clip_first, "act.clip_first", "Set a positive first-layer clip, e.g. act.clip_first=4.")
        if act.k_first is not None:
            _positive_int(act.k_first, "act.k_first", "Set act.k_first=0 (the paper's 4-step input layer, Zou et al. "
                          "2024, §3.1) or null (the same level as act.k).", minimum=0)


def resolve_weight_quant(act_name: str, weight_quant: str) -> str:
    """train.weight_quant=auto → ternary for act=quant (the all-integer method's ANN), none otherwise."""
    if weight_quant != "auto":
        return weight_quant
    return "ternary" if act_name == "quant" else "none"


def check_train(cfg: DictConfig) -> None:
    tr = cfg.train
    tr.weight_quant = resolve_weight_quant(cfg.act.name, tr.weight_quant)
    _positive_int(tr.epochs, "train.epochs", "Train for at least one epoch, e.g. train.epochs=10.")
    _positive(tr.lr, "train.lr", "Use a positive learning rate, e.g. train.lr=0.05.")
    _positive_int(tr.batch_size, "train.batch_size", "Use a batch size ≥ 1, e.g. train.batch_size=64.")
    if tr.weight_decay < 0:
        raise ConfigError(f"must be ≥ 0, got {tr.weight_decay}.", key="train.weight_decay", fix="Use e.g. 5e-4.")
    if tr.momentum < 0:
        raise ConfigError(f"must be ≥ 0, got {tr.momentum}.", key="train.momentum", fix="Use e.g. train.momentum=0.9.")
    _positive(tr.gamma, "train.gamma", "Use e.g. train.gamma=0.1 (the step schedule multiplies lr by it).")
    if not 0.0 <= tr.label_smoothing < 1.0:
        raise ConfigError(f"must lie in [0, 1), got {tr.label_smoothing}.", key="train.label_smoothing",
                          fix="Use train.label_smoothing=0 (off) or e.g. 0.1.")
    _positive(tr.threshold_lr_scale, "train.threshold_lr_scale",
              "Use 1 (one learning rate for weights and thresholds, as in the papers) or e.g. 10.")
    for milestone in tr.milestones:
        _positive_int(milestone, "train.milestones", "List the epochs where lr drops, e.g. 'train.milestones=[30,60]'.")
    if cfg.act.name == "clip" and cfg.act.warmup_epochs and cfg.act.warmup_epochs >= tr.epochs:
        raise ConfigError(f"act.warmup_epochs={cfg.act.warmup_epochs} plain-ReLU epochs leave none of the "
                          f"train.epochs={tr.epochs} for the threshold ReLU, so the saved ANN (which clips at "
                          "act.y_th) would not be the network that was trained.", key="act.warmup_epochs",
                          fix=f"Use act.warmup_epochs < {tr.epochs} (0: no warm-up), or more train.epochs.")
    check_init_from(cfg)
    if tr.two_stage:
        _positive_int(tr.finetune_epochs, "train.finetune_epochs", "Two-stage training needs stage-2 epochs, e.g. train.finetune_epochs=4.")
        _positive(tr.finetune_lr_scale, "train.finetune_lr_scale", "Use e.g. 0.1.")
        if cfg.act.name not in QCFS_FAMILY:
            raise ConfigError(f"two-stage training fine-tunes a layer-wise QCFS (stage 1) as act={cfg.act.name} "
                              f"(stage 2), which only the QCFS family has.",
                              key="train.two_stage", fix="Use act=csqcfs (or cqcfs/sqcfs, or qcfs: no swap) with "
                              "train=two_stage, or train.two_stage=false.")


def check_init_from(cfg: DictConfig) -> None:
    """train.init_from: a preset reference (experiment:<name>) must name a preset; a path is checked on disk
    by check_init_from_file (check_paths)."""
    ref = cfg.train.init_from
    if ref is None:
        return
    from snnx.artifacts import INIT_FROM_EXPERIMENT

    ref = str(ref).strip()
    if not ref:
        raise ConfigError("is empty.", key="train.init_from",
                          fix="Use train.init_from=null (the model's own initialisation), a checkpoint path, or "
                              "experiment:<preset>.")
    if ref.startswith(INIT_FROM_EXPERIMENT):
        from snnx.cli import config_dir

        name = ref[len(INIT_FROM_EXPERIMENT):].strip()
        presets = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))
        if name not in presets:
            close = difflib.get_close_matches(name, presets, n=1)
            hint = f"Did you mean experiment:{close[0]}? " if close else ""
            raise ConfigError(f"names no preset: {name!r}.", key="train.init_from",
                              fix=f"{hint}Use experiment:<preset> with one of: {', '.join(presets)}.")


def check_init_from_file(cfg: DictConfig) -> None:
    from snnx.artifacts import INIT_FROM_EXPERIMENT

    ref = cfg.train.init_from
    if ref is None or str(ref).startswith(INIT_FROM_EXPERIMENT) or cfg.ckpt is not None:
        return
    if not os.path.isfile(str(ref)):
        problem = f"{ref!r} is a folder, not a checkpoint file." if os.path.isdir(str(ref)) else \
            f"there is no file at {ref!r}."
        raise CheckpointError(problem, key="train.init_from",
                              fix="Give the path of an ANN checkpoint (outputs/cache/ann/<key>/model.pt), "
                                  "experiment:<preset> for that preset's ANN, or train.init_from=null.")


def check_distributed(cfg: DictConfig, note: Callable[[str], None] | None = _print_note) -> None:
    """train.distributed against how the process was started (torchrun sets WORLD_SIZE)."""
    from snnx.distributed import env_world_size

    world = env_world_size()
    if cfg.stage == "table":
        return
    if world > 1 and not cfg.train.distributed:
        raise ConfigError(f"torchrun started {world} processes but train.distributed=false, so each would train "
                          "and write the same run on its own.", key="train.distributed",
                          fix="Add train.distributed=true to train data-parallel, or run snnx without torchrun.")
    if world > 1 and cfg.train.batch_size < world:
        raise ConfigError(f"the global batch of {cfg.train.batch_size} cannot be shared by {world} processes "
                          "(train.batch_size is the global batch, split across the processes).",
                          key="train.batch_size", fix=f"Use train.batch_size ≥ {world}.")
    if world <= 1 and cfg.train.distributed and note is not None:
        note("train.distributed=true but snnx was not started by torchrun: training runs in this one process "
             "(launch with `torchrun --nproc_per_node=N -m snnx.cli train … train.distributed=true`).")


# objective.metric: results.csv columns read at T = objective.T, and the ANN's test accuracy.
OBJECTIVE_METRICS = ("acc", "conversion_loss", "spikes_per_neuron", "sops", "energy_mj", "ann_acc")
_METRIC_ALIASES = {"snn_acc": "acc", "accuracy": "acc", "loss": "conversion_loss", "energy": "energy_mj"}


def check_objective(cfg: DictConfig) -> None:
    obj = cfg.objective
    if obj.metric is None:
        if obj.T is not None:
            raise ConfigError(f"objective.T={obj.T} is set but there is no metric to read at it.",
                              key="objective.metric", fix="Set objective.metric=acc (or another metric), or drop objective.T.")
        return
    if obj.metric not in OBJECTIVE_METRICS:
        close = _METRIC_ALIASES.get(str(obj.metric)) or next(iter(
            difflib.get_close_matches(str(obj.metric), OBJECTIVE_METRICS, n=1)), None)
        hint = f"Did you mean objective.metric={close}? " if close else ""
        raise ConfigError(f"unknown metric {obj.metric!r}.", key="objective.metric",
                          fix=f"{hint}Use one of: {', '.join(OBJECTIVE_METRICS)} (the results.csv columns at "
                              "objective.T, or the ANN's test accuracy).")
    stages = ("train", "run", "simulate") if obj.metric == "ann_acc" else ("run", "simulate")
    if cfg.stage not in stages:
        raise ConfigError(f"`snnx {cfg.stage}` computes no {obj.metric}, so it cannot return it to a sweeper.",
                          key="objective.metric", fix=f"Use `snnx {' or snnx '.join(stages)}`, or objective.metric=null.")
    if obj.metric != "ann_acc" and obj.T is not None and obj.T not in list(cfg.sim.T):
        raise ConfigError(f"T={obj.T} is not simulated: sim.T is {list(cfg.sim.T)}.", key="objective.T",
                          fix="Pick one of sim.T, add it to sim.T, or set objective.T=null (the largest T).")


def _msat_sites(cfg: DictConfig) -> int | None:
    """The number of activation sites (MSAT neurons) the converted net will have; None if it cannot be built."""
    try:
        import torch

        from snnx.convert.graph import activation_sites
        from snnx.models import build

        with torch.device("meta"):
            model = build(OmegaConf.to_container(cfg, resolve=True))
        return len(activation_sites(model))
    except Exception:  # noqa: BLE001 — any other problem is reported by its own check or at conversion
        return None


def check_msat_confidence(cfg: DictConfig) -> None:
    """convert.confidence (a probability or a per-layer list) and convert.confidence_last, each in [0, 1].

    For convert=msat in a converting stage, a list's length is checked against the model's activation
    layers now, before any training, not only at conversion.
    """
    from snnx.convert.msat import confidences

    conv = cfg.convert
    value = conv.confidence
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, dict):
        raise ConfigError(f"must be a probability or a list of them, got the mapping {value!r}.",
                          key="convert.confidence",
                          fix="Use e.g. convert.confidence=1.0 with convert.confidence_last=0.683, or a per-layer list.")
    probs = value if isinstance(value, list) else [value]
    confidences(probs, len(probs))  # each a probability in [0, 1]
    if conv.confidence_last is not None:
        confidences(1.0, 1, conv.confidence_last)
    if not isinstance(value, list):
        return
    confidences(value, len(value), conv.confidence_last)  # a list and confidence_last: one of the two
    if conv.name != "msat" or cfg.stage not in CONVERTING_STAGES:
        return
    sites = _msat_sites(cfg)
    if sites is not None:
        confidences(value, sites)


def check_convert(cfg: DictConfig) -> None:
    conv = cfg.convert
    if not 0 < conv.percentile <= 100:
        raise ConfigError(f"must lie in (0, 100], got {conv.percentile}.", key="convert.percentile", fix="Use e.g. convert.percentile=99.99.")
    _positive_int(conv.calib_size, "convert.calib_size", "Use e.g. convert.calib_size=1000.")
    _positive_int(conv.calib_batch_size, "convert.calib_batch_size", "Use e.g. 256.")
    _positive_int(conv.presim, "convert.presim", "Use e.g. convert.presim=4.")
    if conv.shift_T is not None:
        _positive_int(conv.shift_T, "convert.shift_T", "Use a positive T or null for per-T passes.")
        if conv.name != "shift" or conv.variant == "T":
            # Only a shifted conversion has a shift whose horizon shift_T would fix (Deng & Gu 2021, Eq. 15).
            what = f"convert={conv.name}" if conv.name != "shift" else "convert.variant=T (threshold only)"
            raise ConfigError(f"{what} has no shift, so convert.shift_T={conv.shift_T} does not apply.",
                              key="convert.shift_T",
                              fix="Drop convert.shift_T (null), or use convert=shift with convert.variant=S or TS.")
    check_msat_confidence(cfg)
    _positive_int(conv.confidence_steps, "convert.confidence_steps", "Use e.g. convert.confidence_steps=16.", minimum=0)
    if conv.v_t is not None and not math.isfinite(conv.v_t):
        raise ConfigError(f"must be a finite number or null, got {conv.v_t!r}.", key="convert.v_t",
                          fix="Use convert.v_t=null (−θ_max in raw units, −1 normalised) or a finite number.")
    if conv.v_init is not None and not isinstance(conv.v_init, (int, float)):
        raise ConfigError(f"must be a number (a fraction of θ) or null, got {conv.v_init!r}.", key="convert.v_init", fix="Use e.g. convert.v_init=0.5.")
    if cfg.stage not in CONVERTING_STAGES:
        return  # `snnx train act=relu` trains a ReLU ANN whatever convert says
    needs = CONVERT_NEEDS_ACT.get(conv.name)
    if needs and cfg.act.name not in needs:
        raise ConfigError(
            f"convert={conv.name} needs an ANN trained with act in ({', '.join(needs)}), but act={cfg.act.name}.",
            key="convert / act",
            fix=f"Use act={needs[0]} with convert={conv.name}, or a threshold-calibrating conversion such as convert=maxnorm for act={cfg.act.name}.")
    if conv.name == "shift" and conv.variant in ("T", "TS") and cfg.act.name not in ("clip",):
        raise ConfigError(f"convert=shift variant {conv.variant} uses a threshold-ReLU ANN, but act={cfg.act.name}.",
                          key="convert.variant / act", fix="Use act=clip, or convert.variant=S for a ReLU ANN.")


def check_sim(cfg: DictConfig, note: Callable[[str], None] | None = _print_note) -> None:
    check_time_steps(cfg, note)
    chunk = cfg.sim.chunk
    if chunk != "auto":
        _positive_int(chunk, "sim.chunk", "Use sim.chunk=auto or an integer ≥ 1.")
    _positive_int(cfg.sim.batch_size, "sim.batch_size", "Use e.g. sim.batch_size=250.")
    if cfg.sim.encoding == "poisson" and cfg.convert.name == "allint" and cfg.stage in CONVERTING_STAGES:
        raise ConfigError("convert=allint encodes its own input (the scatter-and-gather first layer), so "
                          "sim.encoding=poisson cannot apply to it.", key="sim.encoding / convert",
                          fix="Use sim.encoding=direct with convert=allint.")


def check_device(cfg: DictConfig) -> None:
    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("CUDA was asked for but this machine has no usable CUDA device.", key="device", fix="Use device=auto (CUDA when present, else CPU) or device=cpu.")


def check_model_dataset(cfg: DictConfig) -> None:
    from snnx.data import DATASETS, dataset_info
    from snnx.models import check_image_size, list_models

    if cfg.dataset.name not in DATASETS:
        raise ConfigError(f"unknown dataset {cfg.dataset.name!r}.", key="dataset.name", fix=f"Use one of: {', '.join(DATASETS)}.")
    if cfg.model.name not in list_models():
        raise ConfigError(f"unknown model {cfg.model.name!r}.", key="model.name", fix=f"Use one of: {', '.join(list_models())}.")
    from snnx.models import check_model_options

    # Dropout ranges and sites, init, votes: the registry knows which model has which (snnx.models.registry).
    check_model_options(cfg.model.name, width=cfg.model.width, batch_norm=cfg.model.batch_norm, pool=cfg.model.pool,
                        dropout_conv=cfg.model.dropout.conv, dropout_fc=cfg.model.dropout.fc, init=cfg.model.init,
                        votes=cfg.model.votes)
    from snnx.data.info import check_crop

    check_crop(cfg.dataset.name, cfg.dataset.get("crop"))  # dataset.crop: its own key in the error
    try:
        check_image_size(cfg.model.name, dataset_info(cfg.dataset.name, cfg.dataset.get("crop")).image_size)
    except ConfigError as exc:
        problem = exc.problem.replace("but the dataset has", f"but dataset={cfg.dataset.name} has")
        raise ConfigError(problem, key="model / dataset", fix=exc.fix) from None


def check_stage(cfg: DictConfig) -> None:
    from snnx.cli import STAGES

    if cfg.stage not in STAGES:
        raise ConfigError(f"unknown stage {cfg.stage!r}.", key="stage",
                          fix=f"Name the stage as the first word instead: snnx <stage> …, with <stage> one of {', '.join(STAGES)}.")


_SCHEMA = None


def _schema() -> DictConfig:
    global _SCHEMA
    if _SCHEMA is None:
        from snnx.config import SnnxConfig

        _SCHEMA = OmegaConf.structured(SnnxConfig)
    return _SCHEMA


def _unknown_key_error(key: str, known: list[str], prefix: str) -> ConfigError:
    leaf = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, known, n=1)
    hint = f"Did you mean {prefix}{close[0]}? " if close else ""
    parent = key.rpartition(".")[0] or "the config"
    return ConfigError("unknown key: the config has no such setting.", key=key,
                       fix=f"{hint}The keys of {parent} are: {', '.join(known)}.")


def check_known_keys(cfg: DictConfig) -> None:
    """Keys added with +key=… (which Hydra lets past the schema) must still be known ones."""
    schema = _schema()
    top = list(schema.keys())
    for name in cfg.keys():
        if name not in top:
            raise _unknown_key_error(str(name), top, "")
        node = schema._get_node(name)
        if OmegaConf.is_dict(node) and OmegaConf.get_type(node) is not dict:  # a structured group, not a free dict
            known = list(node.keys())
            for sub in cfg[name].keys():
                if sub not in known:
                    raise _unknown_key_error(f"{name}.{sub}", known, f"{name}.")


def check_missing(cfg: DictConfig) -> None:
    from snnx.config import GROUPS

    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        key = missing[0]
        group = key.split(".")[0]
        fix = (f"Choose an option with {group}=<option> (`snnx --help` lists them)." if group in GROUPS
               else f"Set {key}=<value>.")
        raise ConfigError("has no value.", key=key, fix=fix)


def check_data_options(cfg: DictConfig) -> None:
    ds, model = cfg.dataset, cfg.model
    for key in ("limit_train", "limit_test"):
        value = ds[key]
        if value is not None:
            _positive_int(value, f"dataset.{key}", f"Use dataset.{key}=null for the whole split, or e.g. dataset.{key}=256.")
    _positive_int(ds.cutout, "dataset.cutout", "Use dataset.cutout=0 (off) or the side of the erased square, e.g. 16.", minimum=0)
    _positive_int(ds.num_workers, "dataset.num_workers", "Use dataset.num_workers=0 (load in the main process) or more.", minimum=0)
    _positive(model.width, "model.width", "Use e.g. model.width=1.0 (full size) or 0.5 (half the channels).")


def _data_needed(cfg: DictConfig) -> bool:
    """Whether this stage will read dataset files (train with a cached ANN or a ckpt does not)."""
    if cfg.stage == "table":
        return False
    if cfg.stage == "train":
        if cfg.ckpt is not None:
            return False
        from snnx.artifacts import INIT_FROM_EXPERIMENT, ann_dir, ann_key

        if str(cfg.train.init_from or "").startswith(INIT_FROM_EXPERIMENT):
            return True  # its key needs the source preset composed, which the stage does
        plain = OmegaConf.to_container(cfg, resolve=True)
        if (ann_dir(cfg.paths.root, ann_key(plain)) / "model.pt").is_file():
            return False
    return True


def check_dataset_present(cfg: DictConfig) -> None:
    """The files of a file-backed dataset are there (presence only: nothing is read)."""
    from snnx.data import vision

    name = cfg.dataset.name
    if name not in vision.VISION or cfg.dataset.download or not _data_needed(cfg):
        return
    root = str(cfg.dataset.root)
    if name == "imagenet":
        base = os.path.join(os.path.abspath(os.path.expanduser(root)), "imagenet")
        absent = [os.path.join(base, sub) for sub in ("train", "val") if not os.path.isdir(os.path.join(base, sub))]
        if absent:
            raise DataError(
                f"cannot find the ImageNet folder{'s' if len(absent) > 1 else ''} {' and '.join(absent)}: expected "
                f"{base}/train/<class>/<image> and {base}/val/<class>/<image>.",
                key="dataset.root",
                fix="Put the images there, or set dataset.root=<folder> (or SNNX_DATA) to the folder that contains imagenet/.")
        return
    files = vision.expected_files(name, root)
    missing = [f for f in files if not os.path.isfile(f)]
    if name == "mnist" and missing:
        processed = os.path.join(os.path.abspath(os.path.expanduser(root)), "MNIST", "processed")
        if all(os.path.isfile(os.path.join(processed, f)) for f in ("training.pt", "test.pt")):
            missing = []  # torchvision's legacy layout, which the loader also reads
    if not missing:
        return
    explain = getattr(vision, "_missing_error", None)
    if explain is not None:
        raise explain(name, root, missing, False)
    raise DataError(f"cannot find the {name} files under {root}: missing {', '.join(missing)}.", key="dataset.root",
                    fix="Put them there, set dataset.root (or SNNX_DATA) to the folder that holds them, or pass "
                        "dataset.download=true on a machine with internet.")


# Checkpoints already checked in this process (a multirun checks each job): path -> (mtime, size).
_CHECKED_CKPTS: dict[str, tuple[int, int, dict]] = {}


def _load_ckpt(path: str) -> dict:
    from snnx.artifacts import load_checkpoint

    stat = os.stat(path)
    cached = _CHECKED_CKPTS.get(path)
    if cached is not None and cached[:2] == (stat.st_mtime_ns, stat.st_size):
        return cached[2]
    data = load_checkpoint(path, key="ckpt")
    config = data["config"]
    fix = "Use a model.pt written by `snnx train` (outputs/cache/ann/<key>/model.pt)."
    missing = [g for g in ("dataset", "model", "act")
               if not (isinstance(config, dict) and isinstance(config.get(g), dict) and "name" in config[g])]
    if missing:
        raise CheckpointError(f"{path!r} is not a snnx checkpoint: its config has no {' / '.join(missing)} section.",
                              key="ckpt", fix=fix)
    try:
        from snnx.models import build

        model = build(config)
        model.load_state_dict(data["state_dict"])
    except SnnxError as exc:
        raise CheckpointError(f"{path!r} has a config that cannot build its model ({exc}).", key="ckpt", fix=fix) from exc
    except Exception as exc:  # a config or state_dict that does not fit the model it names
        detail = " ".join(str(exc).split())[:200].rstrip(" .")
        raise CheckpointError(f"{path!r} does not fit the model its config describes ({type(exc).__name__}: {detail}).",
                              key="ckpt", fix=fix + " A checkpoint from another snnx version may need retraining.") from exc
    _CHECKED_CKPTS[path] = (stat.st_mtime_ns, stat.st_size, config)
    return config


def check_ckpt_exists(cfg: DictConfig) -> None:
    if cfg.ckpt is None:
        return
    path = str(cfg.ckpt)
    if not os.path.isfile(path):
        problem = f"{path!r} is a folder, not a checkpoint file." if os.path.isdir(path) else f"there is no file at {path!r}."
        raise CheckpointError(problem, key="ckpt",
                              fix="Give the path of a snnx checkpoint (outputs/cache/ann/<key>/model.pt), or leave ckpt unset to train.")


def check_ckpt(cfg: DictConfig) -> None:
    """ckpt= is a readable snnx checkpoint for this dataset/model/act (loaded weights-only, nothing executed)."""
    if cfg.ckpt is None:
        return
    path = str(cfg.ckpt)
    check_ckpt_exists(cfg)
    config = _load_ckpt(path)
    for group in ("dataset", "model", "act"):
        mine, theirs = cfg[group].name, config[group]["name"]
        if mine != theirs:
            raise ConfigError(f"the checkpoint was trained with {group}={theirs} but this run asks for {group}={mine}.",
                              key=f"ckpt / {group}",
                              fix=f"Add {group}={theirs} to the command, or use a checkpoint trained with {group}={mine}.")


def validate(cfg: DictConfig, *, check_paths: bool = True, note: Callable[[str], None] | None = _print_note) -> DictConfig:
    """Check a composed config before any data is loaded; raise a SnnxError naming the key and the fix.

    ``check_paths`` also checks what is on disk: the dataset files and ``ckpt``.
    ``note`` receives the remarks on silently tidied values (sim.T sorted …).
    """
    check_known_keys(cfg)
    check_missing(cfg)
    check_stage(cfg)
    check_choices(cfg)
    check_device(cfg)
    check_act(cfg)
    check_train(cfg)
    check_distributed(cfg, note)
    check_objective(cfg)
    check_convert(cfg)
    check_sim(cfg, note)
    check_data_options(cfg)
    if check_paths:
        check_ckpt_exists(cfg)  # cheap checks first: the ones below import torch
        check_init_from_file(cfg)
    check_model_dataset(cfg)
    if check_paths:
        check_ckpt(cfg)
        check_dataset_present(cfg)
    return cfg
