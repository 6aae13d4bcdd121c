"""Semantic config checks, run before any data is loaded.

Types and unknown keys are caught by the structured-config schema at
composition; this module checks ranges and combinations. Every failure is a
ConfigError naming the key, the bad value and the fix.
"""

from __future__ import annotations

import difflib
import math
import os
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig, OmegaConf, open_dict

from snnx.activations.registry import ACTIVATIONS, resolve_weight_quant
from snnx.config import (GROUPS, STAGES, ExportConfig, SimConfig, SnnxConfig, TrainConfig, config_dir, registries,
                         runtime_keys)
from snnx.convert.methods import METHODS
from snnx.data import check_dataset_files, dataset_info
from snnx.data.registry import DATASETS
from snnx.errors import CheckpointError, ConfigError, SnnxError
from snnx.models.registry import check_image_size
from snnx.registry import check_value, declared_params

# Stages that build an SNN, for which act and convert must fit together.
CONVERTING_STAGES = ("convert", "simulate", "run", "doctor", "export")
def _get(cfg: DictConfig, dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def _positive_int(value, key: str, fix: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"must be an integer ≥ {minimum}, got {value!r}.", key=key, fix=fix)


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


def check_declared(cfg: DictConfig) -> None:
    """The ranges and choices the schema declares for the top-level, train, sim and export keys (snnx.config)."""
    for prefix, schema in (("", SnnxConfig), ("train", TrainConfig), ("sim", SimConfig), ("export", ExportConfig)):
        node = cfg[prefix] if prefix else cfg
        for p in declared_params(schema):
            if p.metadata and p.name in node:
                check_value(prefix, p, node[p.name])


Explicit = Callable[[str], bool]


def check_component(cfg: DictConfig, group: str, explicit: Explicit | None = None,
                    note: Callable[[str], None] | None = _print_note) -> None:
    """cfg[group] against its registered entry's declared keys, ranges and checks; replaced by the checked,
    typed values (every declared key, nothing else). See snnx.registry.Registry.check for ``explicit``."""
    registry = registries()[group]
    values = OmegaConf.to_container(cfg[group], resolve=True)
    checked = registry.check(values, explicit=explicit, note=note)
    node = OmegaConf.merge(OmegaConf.structured(registry.get(checked["name"]).params), checked)
    with open_dict(cfg):
        cfg[group] = node


def check_train(cfg: DictConfig) -> None:
    tr = cfg.train

    act = ACTIVATIONS.get(cfg.act.name)
    tr.weight_quant = resolve_weight_quant(cfg.act.name, tr.weight_quant)
    for milestone in tr.milestones:
        _positive_int(milestone, "train.milestones", "List the epochs where lr drops, e.g. 'train.milestones=[30,60]'.")
    warmup = cfg.act.get("warmup_epochs") or 0
    if warmup and warmup >= tr.epochs:
        raise ConfigError(f"act.warmup_epochs={cfg.act.warmup_epochs} plain-ReLU epochs leave none of the "
                          f"train.epochs={tr.epochs} for the threshold ReLU, so the saved ANN (which clips at "
                          "act.y_th) would not be the network that was trained.", key="act.warmup_epochs",
                          fix=f"Use act.warmup_epochs < {tr.epochs} (0: no warm-up), or more train.epochs.")
    check_init_from(cfg)
    if tr.two_stage:
        _positive_int(tr.finetune_epochs, "train.finetune_epochs", "Two-stage training needs stage-2 epochs, e.g. train.finetune_epochs=4.")
        if not act.trait("trains_threshold"):
            family = ", ".join(ACTIVATIONS.where(lambda e: e.trait("trains_threshold")))
            raise ConfigError(f"two-stage training fine-tunes a layer-wise QCFS (stage 1) as act={cfg.act.name} "
                              f"(stage 2), which only the QCFS family ({family}) has.",
                              key="train.two_stage", fix="Use act=csqcfs (or cqcfs/sqcfs, or qcfs: no swap) with "
                              "train=two_stage, or train.two_stage=false.")


def check_init_from(cfg: DictConfig) -> None:
    """train.init_from: a preset reference (experiment:<name>) must name a preset; a path is checked on disk
    by check_init_from_file (check_paths)."""
    ref = cfg.train.init_from
    if ref is None:
        return
    # snnx.artifacts loads torch: checking a config must not wait for it
    from snnx.artifacts import INIT_FROM_EXPERIMENT

    ref = str(ref).strip()
    if not ref:
        raise ConfigError("is empty.", key="train.init_from",
                          fix="Use train.init_from=null (the model's own initialisation), a checkpoint path, or "
                              "experiment:<preset>.")
    if ref.startswith(INIT_FROM_EXPERIMENT):
        name = ref[len(INIT_FROM_EXPERIMENT):].strip()
        presets = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))
        if name not in presets:
            close = difflib.get_close_matches(name, presets, n=1)
            hint = f"Did you mean experiment:{close[0]}? " if close else ""
            raise ConfigError(f"names no preset: {name!r}.", key="train.init_from",
                              fix=f"{hint}Use experiment:<preset> with one of: {', '.join(presets)}.")


def check_init_from_file(cfg: DictConfig) -> None:
    # snnx.artifacts loads torch: checking a config must not wait for it
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
    if cfg.stage == "table":  # trains nothing; and `snnx table` must not load torch (below)
        return
    # snnx.distributed loads torch: checking a config must not wait for it
    from snnx.distributed import env_world_size

    world = env_world_size()
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


def _activation_sites(cfg: DictConfig) -> int | None:
    """The number of activation sites (neurons after conversion) of the configured model; None if it cannot be built."""
    try:
        # torch and the model builders load only to count sites: checking a config must not wait for them
        import torch

        from snnx.ann import build
        from snnx.convert.graph import activation_sites

        with torch.device("meta"):
            model = build(OmegaConf.to_container(cfg, resolve=True))
        return len(activation_sites(model))
    except Exception:  # noqa: BLE001 — any other problem is reported by its own check or at conversion
        return None


def check_per_site(cfg: DictConfig) -> None:
    """A method's per-site keys (entry trait ``per_site``, e.g. MSAT's convert.confidence list) given as a list
    have one entry per activation site of the model — checked now, before any training."""
    entry = METHODS.get(cfg.convert.name)
    for key in entry.trait("per_site", ()):
        value = cfg.convert[key]
        if not OmegaConf.is_list(value) or cfg.stage not in CONVERTING_STAGES:
            continue
        sites = _activation_sites(cfg)
        if sites is not None and len(value) != sites:
            raise ConfigError(f"has {len(value)} entries but the network has {sites} activation layers.",
                              key=f"convert.{key}", fix=entry.trait("per_site_fix", "Give one value per activation layer."))


def check_convert(cfg: DictConfig) -> None:
    """The method takes the trained ANN (its entry's ``accepts``), in the stages that build an SNN."""
    if cfg.stage not in CONVERTING_STAGES:
        return  # `snnx train act=relu` trains a ReLU ANN whatever convert says
    method = METHODS.get(cfg.convert.name)
    act = ACTIVATIONS.get(cfg.act.name)
    params = OmegaConf.to_container(cfg.convert, resolve=True)
    if not method.trait("accepts")(act, params):
        fits = ACTIVATIONS.where(lambda e: method.trait("accepts")(e, params))
        variant = f" with convert.variant={params['variant']}" if "variant" in params else ""
        raise ConfigError(
            f"convert={method.name}{variant} needs {method.trait('accepts_doc')}, but act={act.name}.",
            key="convert / act",
            fix=f"Use act={' / '.join(fits) or '?'} with convert={method.name}, or a threshold-calibrating "
                f"conversion such as convert=maxnorm for act={act.name}.")


def check_sim(cfg: DictConfig, note: Callable[[str], None] | None = _print_note) -> None:
    check_time_steps(cfg, note)
    chunk = cfg.sim.chunk
    if chunk != "auto":
        _positive_int(chunk, "sim.chunk", "Use sim.chunk=auto or an integer ≥ 1.")

    method = METHODS.get(cfg.convert.name)
    if cfg.sim.encoding == "poisson" and method.trait("encodes_input") and cfg.stage in CONVERTING_STAGES:
        raise ConfigError(f"convert={method.name} encodes its own input ({method.trait('encodes_input')}), so "
                          "sim.encoding=poisson cannot apply to it.", key="sim.encoding / convert",
                          fix=f"Use sim.encoding=direct with convert={method.name}.")


def check_device(cfg: DictConfig) -> None:
    if cfg.device == "cuda":
        # torch loads only when CUDA is asked for: checking a config must not wait for it
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("CUDA was asked for but this machine has no usable CUDA device.", key="device", fix="Use device=auto (CUDA when present, else CPU) or device=cpu.")


def check_model_dataset(cfg: DictConfig) -> None:
    """The model takes the dataset's images (its entry's smallest side). dataset.name, the keys the dataset
    declares and dataset.crop / dataset.cutout against its image size are check_component(cfg, "dataset")'s."""
    try:
        check_image_size(cfg.model.name, dataset_info(cfg.dataset.name, cfg.dataset.get("crop")).image_size)
    except ConfigError as exc:
        problem = exc.problem.replace("but the dataset has", f"but dataset={cfg.dataset.name} has")
        raise ConfigError(problem, key="model / dataset", fix=exc.fix) from None


def check_stage(cfg: DictConfig) -> None:
    if cfg.stage not in STAGES:
        raise ConfigError(f"unknown stage {cfg.stage!r}.", key="stage",
                          fix=f"Name the stage as the first word instead: snnx <stage> …, with <stage> one of {', '.join(STAGES)}.")


_SCHEMA = None


def _schema() -> DictConfig:
    global _SCHEMA
    if _SCHEMA is None:
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
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        key = missing[0]
        group = key.split(".")[0]
        fix = (f"Choose an option with {group}=<option> (`snnx --help` lists them)." if group in GROUPS
               else f"Set {key}=<value>.")
        raise ConfigError("has no value.", key=key, fix=fix)


def _data_needed(cfg: DictConfig) -> bool:
    """Whether this stage will read dataset files (train with a cached ANN or a ckpt does not)."""
    if cfg.stage == "table":
        return False
    if cfg.stage == "train":
        if cfg.ckpt is not None:
            return False
        # snnx.artifacts loads torch: only a train stage without ckpt needs it here
        from snnx.artifacts import INIT_FROM_EXPERIMENT, ann_dir, ann_key

        if str(cfg.train.init_from or "").startswith(INIT_FROM_EXPERIMENT):
            return True  # its key needs the source preset composed, which the stage does
        plain = OmegaConf.to_container(cfg, resolve=True)
        if (ann_dir(cfg.paths.root, ann_key(plain)) / "model.pt").is_file():
            return False
    return True


def check_dataset_present(cfg: DictConfig) -> None:
    """The files of a file-backed dataset are there (presence only: nothing is read)."""
    if DATASETS.get(cfg.dataset.name).trait("check_present") is None or cfg.dataset.download:
        return  # an embedded set, or torchvision fetches the files
    if _data_needed(cfg):
        check_dataset_files(cfg.dataset)


# Checkpoints already checked in this process (a multirun checks each job): path -> (mtime, size).
_CHECKED_CKPTS: dict[str, tuple[int, int, dict]] = {}


def _load_ckpt(path: str) -> dict:
    # torch loads only when a checkpoint is read (check_paths): checking a config must not wait for it
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
        # the model builders load torch: only a checkpoint being checked needs them
        from snnx.ann import build

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


# What a saved SNN fixes: the sections that made it (snn=<file>).
SNN_SECTIONS = ("dataset", "model", "act", "train", "convert", "seed")


def apply_saved_snn(cfg: DictConfig, explicit: Explicit | None) -> None:
    """``snn=<file>``: the file's dataset, model, act, train, convert and seed replace the composed ones.

    A command-line key of those sections is an error (the SNN is simulated as it was converted), but for
    the keys that only say where or how (dataset.root, dataset.num_workers …), which are kept.
    """
    if cfg.get("snn") is None:
        return
    path = str(cfg.snn)
    if cfg.stage not in ("simulate", "export"):
        raise ConfigError(f"snn= is read by `snnx simulate` and `snnx export`, not by `snnx {cfg.stage}`.", key="snn",
                          fix=f"Run `snnx simulate snn={path}`, or drop snn=.")
    # torch loads only when a saved SNN is read: checking a config must not wait for it
    from snnx.snn_file import read

    saved = read(path, key="snn")
    config = saved.get("config")
    if not isinstance(config, dict):
        raise ConfigError(f"{path!r} was converted from your own model with snnx.api: its architecture is not "
                          "in the file.", key="snn", fix="Simulate it from Python: snnx.api.load_snn(path, "
                          "model=<an instance of your model>) and snnx.api.simulate.")
    runtime = runtime_keys(config)
    if explicit is not None:
        clash = sorted(k for k in [*SNN_SECTIONS, *_set_keys(cfg)] if k.split(".")[0] in SNN_SECTIONS
                       and explicit(k) and k not in runtime)
        if clash:
            raise ConfigError(f"snn= simulates the saved SNN as it was converted, so {clash[0]} cannot be set "
                              "on the command line.", key=clash[0],
                              fix=f"Drop {clash[0]}=… (the file fixes dataset, model, act, train, convert and "
                                  "seed), or convert again with it (snnx convert …).")
    kept = {k: OmegaConf.select(cfg, k) for k in runtime
            if k.split(".")[0] in SNN_SECTIONS and explicit is not None and explicit(k)}
    with open_dict(cfg):
        for section in SNN_SECTIONS:
            if section in config:
                # train has a fixed schema (merge into it); the other sections are the chosen option's params
                typed = section == "train"
                cfg[section] = OmegaConf.merge(cfg[section], config[section]) if typed else config[section]
        for key, value in kept.items():
            OmegaConf.update(cfg, key, value, merge=False)


def _set_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Every dotted key of ``cfg`` (the leaves)."""
    out = []
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        out += _set_keys(value, dotted + ".") if isinstance(value, DictConfig) else [dotted]
    return out


def check_ckpt_exists(cfg: DictConfig) -> None:
    if cfg.ckpt is None:
        return
    path = str(cfg.ckpt)
    if not os.path.isfile(path):
        problem = f"{path!r} is a folder, not a checkpoint file." if os.path.isdir(path) else f"there is no file at {path!r}."
        raise CheckpointError(problem, key="ckpt",
                              fix="Give the path of a snnx checkpoint (outputs/cache/ann/<key>/model.pt), or leave ckpt unset to train.")


# What a checkpoint fixes: the options its ANN was trained with (ckpt=<file>).
CKPT_SECTIONS = ("dataset", "model", "act")


def ckpt_mismatch_error(mismatches: list[tuple[str, str, str]], taken_if_left_out: bool = True) -> ConfigError:
    """One error for every (group, checkpoint's option, run's option) that differs."""
    theirs = " ".join(f"{g}={t}" for g, t, _ in mismatches)
    mine = " ".join(f"{g}={m}" for g, _, m in mismatches)
    left_out = " (or leave them out: the checkpoint's are used)" if taken_if_left_out else ""
    return ConfigError(f"the checkpoint was trained with {theirs} but this run asks for {mine}.",
                       key="ckpt / " + " / ".join(g for g, _, _ in mismatches),
                       fix=f"Add {theirs} to the command{left_out}, or use a checkpoint trained with {mine}.")


def apply_ckpt(cfg: DictConfig, explicit: Explicit | None, note: Callable[[str], None] | None = _print_note) -> None:
    """``ckpt=<file>``: the dataset, model and act the checkpoint was trained with.

    An option the command line did not choose is taken from the checkpoint (with the keys of that section the
    command line set, and this run's runtime keys); one it chose differently is an error, every such one named in one message.
    Without ``explicit`` (no command line known) every option counts as chosen.
    """
    if cfg.get("ckpt") is None:
        return
    check_ckpt_exists(cfg)
    config = _load_ckpt(str(cfg.ckpt))
    differ = [(g, str(config[g]["name"]), str(cfg[g].name)) for g in CKPT_SECTIONS if cfg[g].name != config[g]["name"]]
    chosen = [d for d in differ if explicit is None or explicit(d[0])]
    if chosen:
        raise ckpt_mismatch_error(chosen)
    if not differ:
        return
    # Where and how this run reads (dataset.root, num_workers …) stay this run's, as the command-line keys do.
    runtime = runtime_keys(config)
    with open_dict(cfg):
        for group, _, _ in differ:
            own = {k: OmegaConf.select(cfg, k) for k in _set_keys(cfg[group], f"{group}.")
                   if explicit(k) or k in runtime}
            cfg[group] = OmegaConf.create(config[group])
            for key, value in own.items():
                OmegaConf.update(cfg, key, value, merge=False)
    if note is not None:
        note(f"ckpt: {' '.join(f'{g}={t}' for g, t, _ in differ)} taken from the checkpoint "
             f"(the command line chose no {' / '.join(g for g, _, _ in differ)})")


def check_ckpt(cfg: DictConfig) -> None:
    """ckpt= is a readable snnx checkpoint for this dataset/model/act (loaded weights-only, nothing executed)."""
    if cfg.ckpt is None:
        return
    check_ckpt_exists(cfg)
    config = _load_ckpt(str(cfg.ckpt))
    differ = [(g, str(config[g]["name"]), str(cfg[g].name)) for g in CKPT_SECTIONS if cfg[g].name != config[g]["name"]]
    if differ:
        raise ckpt_mismatch_error(differ)


def check_sweep_dir(cfg: DictConfig) -> None:
    """table.sweep_dir, for `snnx table`: a folder that holds results.csv files."""
    if cfg.stage != "table" or not cfg.table.get("sweep_dir"):
        return
    path = str(cfg.table.sweep_dir)
    fix = ("Point it at a sweep's directory (a multirun prints it when it ends: `snnx table "
           "table.sweep_dir=<dir>`) or at any folder above runs, or drop it to read every run under paths.root.")
    if not os.path.isdir(path):
        problem = f"{path!r} is a file, not a folder" if os.path.exists(path) else f"there is no folder {path!r}"
        raise ConfigError(f"{problem}, so there are no results to tabulate.", key="table.sweep_dir", fix=fix)
    if next(iter(Path(path).rglob("results.csv")), None) is None:
        raise ConfigError(f"there is no results.csv under {path!r}, so there is nothing to tabulate.",
                          key="table.sweep_dir", fix=fix)


def validate(cfg: DictConfig, *, check_paths: bool = True, note: Callable[[str], None] | None = _print_note,
             explicit: Explicit | None = None) -> DictConfig:
    """Check a composed config before any data is loaded; raise a SnnxError naming the key and the fix.

    ``check_paths`` also checks what is on disk: the dataset files and ``ckpt``.
    ``note`` receives the remarks on silently tidied values (sim.T sorted …).
    ``explicit(key)`` says whether the user set ``key`` (on the command line); None: every key is the
    user's. A key a preset set for a group option the user then replaced is dropped, with a note.
    """
    check_known_keys(cfg)
    if check_paths:
        apply_saved_snn(cfg, explicit)
    check_missing(cfg)
    if check_paths:
        apply_ckpt(cfg, explicit, note)  # before the checks of the sections it may replace
    check_stage(cfg)
    check_declared(cfg)
    check_device(cfg)
    for group in ("dataset", "model", "act", "convert", "energy"):
        check_component(cfg, group, explicit, note)
    check_train(cfg)
    check_distributed(cfg, note)
    check_objective(cfg)
    check_convert(cfg)
    check_sim(cfg, note)
    if check_paths:
        check_ckpt_exists(cfg)  # cheap checks first: the ones below import torch
        check_init_from_file(cfg)
        check_sweep_dir(cfg)
    check_model_dataset(cfg)
    check_per_site(cfg)
    if check_paths:
        check_ckpt(cfg)
        check_dataset_present(cfg)
    return cfg
