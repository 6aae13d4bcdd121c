"""Structured-config schema: one dataclass per config group (the registered groups: their entries' params).

Hydra merges every YAML option of a group into its dataclass, so a key that is
not declared here, or a value of the wrong type, fails at composition with the
key named. Semantic checks (ranges, compatibility) live in ``snnx.validate``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

import yaml

from snnx.activations.registry import ACTIVATIONS
from snnx.convert.methods import METHODS
from snnx.data.registry import DATASETS
from snnx.energy import ENERGY
from snnx.models.registry import MODELS
from snnx.registry import declared_params, param

MISSING = "???"  # OmegaConf's marker of a value still to be chosen (a group option)


@dataclass
class TrainConfig:
    name: str = param("default", "the train option")
    epochs: int = param(10, "training epochs", ge=1, integer=True, fix="Train for at least one epoch, e.g. train.epochs=10.")
    lr: float = param(0.1, "learning rate", gt=0, fix="Use a positive learning rate, e.g. train.lr=0.05.")
    batch_size: int = param(128, "the global batch (split across torchrun processes)", ge=1, integer=True,
                            fix="Use a batch size ≥ 1, e.g. train.batch_size=64.")
    optimizer: str = param("sgd", "sgd | adam", choices=("sgd", "adam"))
    momentum: float = param(0.9, "SGD momentum", ge=0, fix="Use e.g. train.momentum=0.9.")
    weight_decay: float = param(5e-4, "L2 weight decay", ge=0, fix="Use e.g. 5e-4.")
    schedule: str = param("cosine", "learning-rate schedule: cosine | step | none", choices=("cosine", "step", "none"))
    milestones: List[int] = param(doc="step schedule: epochs where lr *= gamma", default_factory=list)
    gamma: float = param(0.1, "step schedule: the factor at each milestone", gt=0,
                         fix="Use e.g. train.gamma=0.1 (the step schedule multiplies lr by it).")
    label_smoothing: float = param(0.0, "cross-entropy label smoothing", ge=0, lt=1,
                                   fix="Use train.label_smoothing=0 (off) or e.g. 0.1.")
    init_from: Optional[str] = param(None, "start from another ANN: a checkpoint path or experiment:<preset>; every "
                                     "layer but the output layer is copied (Deng & Gu 2021, App. A.1: CIFAR-100 "
                                     "from CIFAR-10); null = the model's own initialisation")
    threshold_lr_scale: float = param(1.0, "learning-rate multiplier of trained thresholds (QCFS λ, CS-QCFS p_c); "
                                      "1 = the papers; train=default / two_stage / smoke set 20", gt=0,
                                      fix="Use 1 (one learning rate for weights and thresholds, as in the papers) "
                                          "or e.g. 10.")
    two_stage: bool = param(False, "two-stage training (Yang et al. 2025, Alg. 1): layer-wise QCFS for `epochs`, "
                            "then `finetune_epochs` at lr·finetune_lr_scale as the chosen act")
    finetune_epochs: int = param(0, "two-stage: stage-2 epochs", ge=0, integer=True)
    finetune_lr_scale: float = param(0.1, "two-stage: stage-2 learning rate as a fraction of lr", gt=0,
                                     fix="Use e.g. 0.1.")
    weight_quant: str = param("auto", "auto | none | ternary; auto: ternary for an act with integer levels "
                              "(act=quant, Zou et al. 2024, §3.2), none otherwise",
                              choices=("auto", "none", "ternary"))
    ternary_ste: str = param("clipped", "ternary weights' backward: clipped (Zou et al. 2024, Eq. 9) | identity "
                             "(released code)", choices=("clipped", "identity"))
    distributed: bool = param(False, "data-parallel training under torchrun", runtime=True)
    compile: bool = param(False, "the training forward through torch.compile (speed, not what is learnt)",
                          runtime=True)


@dataclass
class SimConfig:
    name: str = param("default", "the sim option")
    T: List[int] = param(doc="time steps read out (one simulation to the largest)",
                         default_factory=lambda: [1, 2, 4, 8, 16, 32, 64])
    chunk: Any = param("auto", "time steps folded into the batch at once: an integer or auto", runtime=True)
    encoding: str = param("direct", "input encoding: direct (real values every step) | poisson (rate-coded)",
                          choices=("direct", "poisson"))
    batch_size: int = param(250, "test images per simulated batch", ge=1, integer=True, runtime=True,
                            fix="Use e.g. sim.batch_size=250.")
    record_layers: bool = param(True, "per-layer diagnostics into layers.csv", runtime=True)
    compile: bool = param(False, "the simulation step through torch.compile", runtime=True)
    dtype: str = param("float32", "float32 | float64", choices=("float32", "float64"))
    save_snn: Any = param("auto", "write the run's snn.pt: auto (only when under 20 MB) | true | false",
                          choices=("auto", True, False), runtime=True,
                          fix="Use sim.save_snn=auto, true or false.")
    checkpoint_every: int = param(20, "batches between saves of the simulation's sums (under paths.root: "
                                  "cache/sim/<key>/state.pt, removed once results.csv is written; also saved on "
                                  "Ctrl-C and on a stop signal): a rerun of the same command resumes from them and "
                                  "writes the uninterrupted run's results; 0 = never", ge=0, integer=True,
                                  runtime=True, fix="Use e.g. sim.checkpoint_every=20, or 0 to keep no resume state.")


def embedded_datasets() -> list[str]:
    """The datasets that ship inside installed packages (their entries' ``embedded`` trait)."""
    return registries()["dataset"].where(lambda entry: bool(entry.trait("embedded")))


@dataclass
class TableConfig:
    """A table layout (conf/table/*.yaml); the format is described in snnx/tables/layout.py."""

    @staticmethod
    def _open_dict(content: dict):
        """A dict node that takes new keys even though Hydra makes the rest of the config strict."""
        # OmegaConf loads only when a table config is made: `snnx` imports this module for its usage text.
        from omegaconf import OmegaConf

        return OmegaConf.create(content, flags={"struct": False})

    name: str = param("summary", "the layout's name: the table's file name under <root>/tables/")
    paper: Optional[str] = param(None, "csqcfs | denggu | msat | allint: where the reported rows come from")
    paper_tables: List[str] = param(doc="which of its tables, as printed (\"Table 1\")", default_factory=list)
    title: str = param("snnx results", "the table's title (left at the default, a renamed table is titled by table.name)")
    kind: str = param("accuracy", "accuracy (value vs T) | layers (layers.csv statistic per layer vs T) | "
                      "efficiency (accuracy vs energy per image)")
    layout: str = param("wide", "wide: one column per T | long: T is a row key, columns are metrics")
    sweep_dir: Optional[str] = param(None, "where to look for results.csv; default paths.root")
    rows: List[str] = param(doc="row keys: results.csv columns or dotted config keys",
                            default_factory=lambda: ["dataset", "model", "act", "convert"])
    columns: List[str] = param(doc="ANN (the ANN's value of table.value; none for spikes, SOPs), T, SNN best, loss, …",
                               default_factory=lambda: ["ANN", "T"])
    T: List[Any] = param(doc="the T columns: int, \">=N\" or \"A-B\"; empty = every T found", default_factory=list)
    value: str = param("acc", "the results.csv metric in the T columns")
    # On runs: results.csv columns or dotted config keys → value(s); an open dict, so that
    # table.filters.L=4 adds a filter from the command line (and table.filters.dataset=null drops one).
    filters: Any = param(doc="key → value(s) a run must have (table.filters.L=4; …=null drops one)",
                         default_factory=lambda: TableConfig._open_dict({}))
    methods: List[Any] = param(doc="rows: {label, paper: {match}, snnx: {match}, note}", default_factory=list)
    reported_rest: bool = param(True, "paper rows no `methods` entry claims become reported-only rows")
    embedded: bool = param(False, "snnx rows from embedded-scale runs beside the paper's rows, labelled as what they are")
    # With embedded=true these replace filters' dataset/model for snnx rows (…dataset=null: any dataset).
    embedded_filters: Any = param(doc="with embedded=true: the filters of snnx rows (default: the embedded datasets)",
                                  default_factory=lambda: TableConfig._open_dict({"dataset": embedded_datasets()}))
    # Row key → {run's value: the paper's name}: snnx rows join the paper's group (e.g. model vgg16_rathi → vgg16),
    # the run's own value shown in `setting`.
    aliases: Any = param(doc="row key → {run's value: the paper's name}",
                         default_factory=lambda: TableConfig._open_dict({}))
    panels: Optional[List[str]] = param(None, "row keys that split the plot into panels; default: rows but the label")
    layer_metric: str = param("sin_ratio", "kind=layers: sin_ratio | sin_share | firing_rate | clip_error | floor_error | ann_error")
    layer_axis: str = param("T", "kind=layers: x axis T (one line per layer) | layer (one line per T)")
    plot: bool = param(True, "also write the table's PNG figure")
    strict: bool = param(False, "a results.csv that cannot be read, or a sweep job without one yet, is an error "
                         "(exit 2, no table written) instead of a note")


@dataclass
class ObjectiveConfig:
    """The number a job returns to a sweeper that optimises (hydra-optuna-sweeper); see validate.OBJECTIVE_METRICS."""

    metric: Optional[str] = param(None, "null: return nothing | acc | conversion_loss | spikes_per_neuron | sops | "
                                  "energy_mj | ann_acc")
    T: Optional[int] = param(None, "which row of results.csv: one of sim.T; null = the largest")


@dataclass
class ExportConfig:
    """`snnx export`: where the file goes and what may be approximated (snnx/export/nir.py)."""

    path: Optional[str] = param(None, "the file written; null: snn.nir in the run's folder", runtime=True)
    lossy: bool = param(False, "write what the format cannot express exactly as an approximation (a warning and "
                        "its measured accuracy) instead of failing", runtime=True)
    T: int = param(32, "time steps of the accuracy measured for a lossy export", ge=1, integer=True, runtime=True,
                   fix="Use e.g. export.T=32.")


@dataclass
class PathsConfig:
    root: str = param("outputs", "where runs, sweeps and the artifact cache go", runtime=True)


# Stage → what it does, and the config groups it reads (``snnx <stage> --help`` lists their keys).
STAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "train": ("train the ANN (or reuse it from the artifact cache)", ("dataset", "model", "act", "train")),
    "calibrate": ("record per-layer / per-channel activation statistics (thresholds)",
                  ("dataset", "model", "act", "train", "convert")),
    "convert": ("build the spiking network from the ANN and thresholds", ("dataset", "model", "act", "train", "convert")),
    "simulate": ("simulate the SNN over sim.T, write results.csv, layers.csv and energy.csv",
                 ("dataset", "model", "act", "train", "convert", "sim", "energy")),
    "run": ("train → calibrate → convert → simulate in one process",
            ("dataset", "model", "act", "train", "convert", "sim", "energy")),
    "table": ("aggregate results.csv files into a paper-style table and plot", ("table",)),
    "doctor": ("say why the SNN falls short, layer by layer (dead layers, θ, BN, chance, energy), write doctor.csv",
               ("dataset", "model", "act", "train", "convert", "sim", "energy")),
    "export": ("write the SNN as a NIR graph (format=nir; snn=<run>/snn.pt or converted here), export.path",
               ("dataset", "model", "act", "train", "convert", "export")),
    "clean": ("free the artifact cache under paths.root (all=true: runs, sweeps and tables too)", ()),
}


@dataclass
class SnnxConfig:
    stage: str = param("run", "the stage (the first word of the command)", choices=tuple(STAGES))
    seed: int = param(0, "seed of training, calibration sampling and stochastic neurons", integer=True)
    device: str = param("auto", "auto (CUDA when present) | cpu | cuda", choices=("auto", "cpu", "cuda"), runtime=True)
    debug: bool = param(False, "print tracebacks with errors", runtime=True)
    progress: bool = param(True, "progress bars over training, calibration and simulation batches (shown only "
                           "on a terminal, and not when the CI environment variable is set)", runtime=True)
    doctor: bool = param(True, "run the doctor's check after simulate / run (doctor.csv and its findings)",
                         runtime=True)
    ckpt: Optional[str] = param(None, "use this ANN checkpoint instead of training")
    snn: Optional[str] = param(None, "snnx simulate: simulate this saved SNN (a run's snn.pt); its dataset, model, "
                               "act, train, convert and seed come from the file (snnx export reads it too)")
    format: str = param("nir", "snnx export: the file format (nir: the Neuromorphic Intermediate Representation)",
                        choices=("nir",), runtime=True)
    paths: PathsConfig = field(default_factory=PathsConfig)
    dataset: Any = MISSING  # the chosen dataset's params (snnx.data.registry)
    model: Any = MISSING  # the chosen model's params (snnx.models.registry)
    act: Any = MISSING  # the chosen activation's params (snnx.activations.registry)
    train: TrainConfig = field(default_factory=TrainConfig)
    convert: Any = MISSING  # the chosen conversion method's params (snnx.convert.methods)
    sim: SimConfig = field(default_factory=SimConfig)
    export: ExportConfig = param(doc="snnx export: the file and what it may approximate", default_factory=ExportConfig,
                                 runtime=True)
    energy: Any = MISSING  # the chosen energy model's params (snnx.energy)
    # Which runs a table gathers and which number a sweeper gets back: not part of what a run computes.
    table: TableConfig = param(doc="the table layout (snnx table)", default_factory=TableConfig, runtime=True)
    objective: ObjectiveConfig = param(doc="the number returned to an optimising sweeper",
                                       default_factory=ObjectiveConfig, runtime=True)


GROUPS = ("dataset", "model", "act", "train", "convert", "sim", "energy", "table", "experiment", "hparams_search")


def config_dir() -> Path:
    """conf/ of a source checkout, else the copy the wheel ships inside the package (snnx/conf)."""
    here = Path(__file__).resolve().parent
    source = here.parent / "conf"
    return source if (source / "config.yaml").is_file() else here / "conf"


def runtime_keys(config=None) -> set[str]:
    """The dotted keys of ``config`` (a plain mapping) that say where or how a run goes, not what it computes:
    the fields declared with ``runtime=True`` in the schema and in the chosen options' params, and ``hydra``.
    Without a config: those of every registered option."""
    out = {"hydra"}

    def walk(prefix: str, schema) -> None:
        for p in declared_params(schema):
            key = f"{prefix}{p.name}"
            if p.metadata.get("runtime"):
                out.add(key)
            elif dataclasses.is_dataclass(p.default):
                walk(f"{key}.", type(p.default))

    walk("", SnnxConfig)
    walk("paths.", PathsConfig)
    walk("train.", TrainConfig)
    walk("sim.", SimConfig)
    for group, registry in registries().items():
        if config is None:
            for entry in registry:
                walk(f"{group}.", entry.params)
            continue
        name = (config.get(group) or {}).get("name") if hasattr(config, "get") else None
        if name in registry:
            walk(f"{group}.", registry.get(name).params)
    return out


def recipe(config) -> dict:
    """``config`` (a plain mapping) as what determines a run's numbers: its runtime keys left out, and each
    registered group reduced to the keys its chosen option declares (a config saved before each option had its
    own keys carries every option's)."""
    skip = runtime_keys(config)
    regs = registries()

    def keep(prefix: str, node):
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if dotted in skip:
                continue
            out[key] = keep(f"{dotted}.", value)
        return out

    out = keep("", dict(config))
    for group, registry in regs.items():
        section = out.get(group)
        if isinstance(section, dict) and section.get("name") in registry:
            declared = set(registry.get(section["name"]).keys)
            out[group] = {k: v for k, v in section.items() if k in declared}
    return out


def registries() -> dict:
    """Config group → the registry whose entries are that group's options."""
    return {registry.group: registry for registry in (DATASETS, MODELS, ACTIVATIONS, METHODS, ENERGY)}


def group_options() -> dict[str, list[str]]:
    """Each config group's options: its YAML files, and the registered entries that have none."""
    root = config_dir()
    registered = {group: registry.names() for group, registry in registries().items()}
    return {group: sorted({p.stem for p in (root / group).glob("*.yaml")} | set(registered.get(group, ())))
            for group in GROUPS}


def option_entry(group: str, option: str | None):
    """The registered entry a group option stands for (its YAML's schema line, followed through the YAML's
    own defaults, e.g. convert=msat_vgg16 → msat); ``option`` None: config.yaml's choice. None if unknown."""
    registry = registries()[group]
    if option is None:
        primary = yaml.safe_load((config_dir() / "config.yaml").read_text()) or {}
        option = next((d[group] for d in primary.get("defaults", []) if isinstance(d, dict) and group in d), None)
    seen = set()
    while option is not None and option not in seen:
        seen.add(option)
        path = config_dir() / group / f"{option}.yaml"
        if not path.is_file():
            return registry.get(option) if option in registry else None
        parents = (yaml.safe_load(path.read_text()) or {}).get("defaults", [])
        schema = next((d[f"/schema/{group}@_here_"] for d in parents
                       if isinstance(d, dict) and f"/schema/{group}@_here_" in d), None)
        if schema is not None:
            return registry.get(schema) if schema in registry else None
        option = next((d for d in parents if isinstance(d, str) and d != "_self_"), None)
    return None
