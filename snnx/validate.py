"""Semantic config checks, run before any data is loaded.

Types and unknown keys are caught by the structured-config schema at
composition; this module checks ranges and combinations. Every failure is a
ConfigError naming the key, the bad value and the fix.
"""

from __future__ import annotations

import os

from omegaconf import DictConfig, open_dict

from snnx.errors import CheckpointError, ConfigError

QCFS_FAMILY = ("qcfs", "cqcfs", "sqcfs", "csqcfs")
# Which ANN activations each conversion can take.
CONVERT_NEEDS_ACT = {
    "qcfs": QCFS_FAMILY,
    "cos": QCFS_FAMILY,
    "allint": ("quant",),
}
CHOICES = {
    "device": ("auto", "cpu", "cuda"),
    "model.pool": ("avg", "max"),
    "train.optimizer": ("sgd", "adam"),
    "train.schedule": ("cosine", "step", "none"),
    "train.weight_quant": ("none", "ternary"),
    "convert.maxpool": ("error", "avg"),
    "convert.variant": ("T", "S", "TS"),
    "convert.base": ("maxnorm", "pnorm"),
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


def check_time_steps(cfg: DictConfig) -> None:
    steps = list(cfg.sim.T)
    if not steps:
        raise ConfigError("the list of time steps is empty.", key="sim.T", fix="Give at least one, e.g. 'sim.T=[1,2,4,8]'.")
    for t in steps:
        _positive_int(t, "sim.T", "Every time step must be a positive integer, e.g. 'sim.T=[1,2,4,8,16,32]'.")
    tidy = sorted(set(steps))
    if tidy != steps:
        with open_dict(cfg):
            cfg.sim.T = tidy
        print(f"snnx: note: sim.T sorted and de-duplicated to {tidy}")


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
    if act.name == "clip":
        _positive(act.y_th, "act.y_th", "Set a positive ceiling, e.g. act.y_th=1.")
        _positive_int(act.warmup_epochs, "act.warmup_epochs", "Use 0 for no ReLU warm-up.", minimum=0)
    if act.name == "quant":
        if act.k is None:
            raise ConfigError("act=quant needs the quantisation level.", key="act.k", fix="Set act.k=0, 1 or 2.")
        _positive_int(act.k, "act.k", "Set act.k to an integer ≥ 0.", minimum=0)
        _positive(act.clip_first, "act.clip_first", "Set a positive first-layer clip, e.g. act.clip_first=4.")


def check_train(cfg: DictConfig) -> None:
    tr = cfg.train
    _positive_int(tr.epochs, "train.epochs", "Train for at least one epoch, e.g. train.epochs=10.")
    _positive(tr.lr, "train.lr", "Use a positive learning rate, e.g. train.lr=0.05.")
    _positive_int(tr.batch_size, "train.batch_size", "Use a batch size ≥ 1, e.g. train.batch_size=64.")
    if tr.weight_decay < 0:
        raise ConfigError(f"must be ≥ 0, got {tr.weight_decay}.", key="train.weight_decay", fix="Use e.g. 5e-4.")
    if tr.two_stage:
        _positive_int(tr.finetune_epochs, "train.finetune_epochs", "Two-stage training needs stage-2 epochs, e.g. train.finetune_epochs=4.")
        _positive(tr.finetune_lr_scale, "train.finetune_lr_scale", "Use e.g. 0.1.")
        if cfg.act.name not in ("qcfs", "csqcfs", "cqcfs", "sqcfs"):
            raise ConfigError(f"two-stage training starts from layer-wise QCFS, but act={cfg.act.name}.",
                              key="train.two_stage", fix="Use act=csqcfs (or cqcfs/sqcfs) with train=two_stage.")


def check_convert(cfg: DictConfig) -> None:
    conv = cfg.convert
    if not 0 < conv.percentile <= 100:
        raise ConfigError(f"must lie in (0, 100], got {conv.percentile}.", key="convert.percentile", fix="Use e.g. convert.percentile=99.99.")
    _positive_int(conv.calib_size, "convert.calib_size", "Use e.g. convert.calib_size=1000.")
    _positive_int(conv.calib_batch_size, "convert.calib_batch_size", "Use e.g. 256.")
    _positive_int(conv.presim, "convert.presim", "Use e.g. convert.presim=4.")
    if conv.shift_T is not None:
        _positive_int(conv.shift_T, "convert.shift_T", "Use a positive T or null for per-T passes.")
    needs = CONVERT_NEEDS_ACT.get(conv.name)
    if needs and cfg.act.name not in needs:
        raise ConfigError(
            f"convert={conv.name} needs an ANN trained with act in ({', '.join(needs)}), but act={cfg.act.name}.",
            key="convert / act",
            fix=f"Use act={needs[0]} with convert={conv.name}, or a threshold-calibrating conversion such as convert=maxnorm for act={cfg.act.name}.")
    if conv.name == "shift" and conv.variant in ("T", "TS") and cfg.act.name not in ("clip",):
        raise ConfigError(f"convert=shift variant {conv.variant} uses a threshold-ReLU ANN, but act={cfg.act.name}.",
                          key="convert.variant / act", fix="Use act=clip, or convert.variant=S for a ReLU ANN.")
    confidence = conv.confidence
    values = list(confidence) if not isinstance(confidence, (int, float)) else [confidence]
    for p in values:
        if not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
            raise ConfigError(f"spike-confidence probabilities must lie in [0, 1], got {p!r}.", key="convert.confidence", fix="Use e.g. convert.confidence=1.0 (off) or a list such as [0.9,0.95,1.0].")
    if conv.v_init is not None and not isinstance(conv.v_init, (int, float)):
        raise ConfigError(f"must be a number (a fraction of θ) or null, got {conv.v_init!r}.", key="convert.v_init", fix="Use e.g. convert.v_init=0.5.")


def check_sim(cfg: DictConfig) -> None:
    check_time_steps(cfg)
    chunk = cfg.sim.chunk
    if chunk != "auto":
        _positive_int(chunk, "sim.chunk", "Use sim.chunk=auto or an integer ≥ 1.")
    _positive_int(cfg.sim.batch_size, "sim.batch_size", "Use e.g. sim.batch_size=250.")


def check_device(cfg: DictConfig) -> None:
    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("CUDA was asked for but this machine has no usable CUDA device.", key="device", fix="Use device=auto (CUDA when present, else CPU) or device=cpu.")


def check_model_dataset(cfg: DictConfig) -> None:
    from snnx.data import DATASETS, dataset_info
    from snnx.models import check_compatible

    if cfg.dataset.name not in DATASETS:
        raise ConfigError(f"unknown dataset {cfg.dataset.name!r}.", key="dataset.name", fix=f"Use one of: {', '.join(DATASETS)}.")
    check_compatible(cfg.model.name, dataset_info(cfg.dataset.name))


def check_ckpt(cfg: DictConfig) -> None:
    if cfg.ckpt is not None and not os.path.isfile(str(cfg.ckpt)):
        raise CheckpointError(f"no file at {cfg.ckpt!r}.", key="ckpt", fix="Give the path of a snnx checkpoint (model.pt in outputs/cache/ann/<key>/) or leave ckpt unset to train.")


def validate(cfg: DictConfig, *, check_paths: bool = True) -> DictConfig:
    check_choices(cfg)
    check_device(cfg)
    check_act(cfg)
    check_train(cfg)
    check_convert(cfg)
    check_sim(cfg)
    check_model_dataset(cfg)
    if check_paths:
        check_ckpt(cfg)
    return cfg
