"""Structured-config schema: one dataclass per config group.

Hydra merges every YAML option of a group into its dataclass, so a key that is
not declared here, or a value of the wrong type, fails at composition with the
key named. Semantic checks (ranges, compatibility) live in ``snnx.validate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class DatasetConfig:
    name: str = MISSING
    # Where the torchvision datasets live; env SNNX_DATA overrides the default.
    root: str = "${oc.env:SNNX_DATA,data}"
    download: bool = False
    augment: bool = True
    autoaugment: bool = False
    cutout: int = 0  # side of the erased square in pixels; 0 = off
    # CIFAR only: side of a crop of the 32×32 images, random (train) / central (test), no padding; the model
    # is built for crop×crop inputs. null = the pad-4 random crop at 32 (Zou et al. 2024, §4.2: 24).
    crop: Optional[int] = None
    # The RandomHorizontalFlip of the CIFAR / ImageNet train augmentation (with augment). false: crop only, as
    # Yang et al. 2025, §5.1 name it (random crop, Cutout, AutoAugment). MNIST and the embedded sets flip nothing.
    flip: bool = True
    limit_train: Optional[int] = None  # first N training items only (smoke runs, tests)
    limit_test: Optional[int] = None
    num_workers: int = 0


@dataclass
class DropoutConfig:
    conv: float = 0.0  # p after the act of each conv that feeds a conv (Deng & Gu 2021, App. A.1: 0.2)
    fc: float = 0.0  # p after the act of each Linear that feeds a Linear (Deng & Gu 2021, App. A.1: 0.5)


@dataclass
class ModelConfig:
    name: str = MISSING
    width: float = 1.0
    batch_norm: bool = True  # false: no BatchNorm anywhere, convs and Linears get a bias instead
    pool: str = "avg"  # avg | max (max must be replaced for conversion: convert.maxpool=avg)
    dropout: DropoutConfig = field(default_factory=DropoutConfig)
    # default: Kaiming-normal (fan_out) convs | denggu: N(0, √(2/(k²n))), residual-branch convs √2/(k²n)
    # (Deng & Gu 2021, App. A.1); Linear layers keep PyTorch's default either way.
    init: str = "default"
    votes: Optional[int] = None  # cifarnet: outputs per class of the voting layer, averaged (1 = plain Linear)


@dataclass
class ActConfig:
    name: str = MISSING  # relu | clip | qcfs | cqcfs | sqcfs | csqcfs | quant
    L: Optional[int] = None  # quantisation steps (QCFS family)
    init_threshold: float = 8.0  # initial λ (QCFS family)
    shift: float = 0.5  # φ (QCFS family)
    y_th: float = 1.0  # clip: threshold-ReLU ceiling
    warmup_epochs: int = 0  # clip: epochs of plain ReLU before clipping
    channelwise: bool = False  # csqcfs family: one λ per channel
    softplus: bool = False  # csqcfs family: λ = softplus(p)
    # QCFS family: STE gradient window. shifted = Yang et al. 2025, Eqs. 19-20's (−φλ/L, λ − φλ/L);
    # clip = QCFS's [0, λ]; auto = shifted for cqcfs/sqcfs/csqcfs, clip for qcfs (resolved by validate).
    grad_window: str = "auto"
    k: Optional[int] = None  # quant: level, y = round(x·2^k)/2^k
    clip_first: float = 4.0  # quant: first-layer clip B
    # quant: the first (encoding) layer's level; 0 = integers 0…B, B = 4 spikes in "only 4 time steps"
    # whatever k (Zou et al. 2024, §3.1); null = act.k (a 2^−k grid: up to 4·2^k input steps).
    k_first: Optional[int] = 0


@dataclass
class TrainConfig:
    name: str = "default"
    epochs: int = 10
    lr: float = 0.1
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd | adam
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # cosine | step | none
    milestones: List[int] = field(default_factory=list)  # step schedule: epochs where lr *= gamma
    gamma: float = 0.1
    label_smoothing: float = 0.0
    # Start from another ANN: a checkpoint path, or experiment:<preset> (that preset's cached ANN, trained if
    # absent). Every layer but the output layer is copied before training (Deng & Gu 2021, App. A.1: CIFAR-100
    # starts from the CIFAR-10 weights). null = the model's own initialisation.
    init_from: Optional[str] = None
    # Learning-rate multiplier for the trained activation thresholds (QCFS λ, CS-QCFS p_c). 1 = the papers
    # (one learning rate for all); train=default / two_stage / smoke set 20: see conf/train/default.yaml.
    threshold_lr_scale: float = 1.0
    # Two-stage training (Yang et al. 2025, Alg. 1): stage 1 layer-wise QCFS for `epochs` at `lr`, stage 2
    # fine-tunes `finetune_epochs` at lr·finetune_lr_scale — as act=csqcfs/cqcfs/sqcfs (λ_l → λ_c swap) or,
    # for act=qcfs, the same layer-wise QCFS (Table 4's "layer-wise" row).
    two_stage: bool = False
    finetune_epochs: int = 0
    finetune_lr_scale: float = 0.1
    # auto | none | ternary. auto: ternary for act=quant (the all-integer method's ANN, Zou et al. 2024,
    # §3.2: ternary weights; first conv and output layer full precision), none for every other act. Resolved by validate.
    weight_quant: str = "auto"
    # Ternary weights' backward: clipped = Zou et al. 2024, Eq. 9 (∂L/∂W^F = ∂L/∂W^T where |W^F| ≤ 1, else 0);
    # identity = everywhere (the authors' released code).
    ternary_ste: str = "clipped"
    distributed: bool = False
    # Training forward (and its backward) through torch.compile; evaluation and checkpoints use the
    # plain module. Not part of the ANN cache key (like distributed): it changes speed, not what is learnt.
    compile: bool = False


@dataclass
class ConvertConfig:
    name: str = MISSING  # maxnorm | pnorm | channelnorm | shift | qcfs | cos | msat | allint
    percentile: float = 99.99  # pnorm
    calib_size: int = 1000  # training images used for calibration
    calib_batch_size: int = 256
    maxpool: str = "error"  # error | avg: what to do with a MaxPool in the ANN
    v_init: Optional[float] = None  # initial membrane potential as a fraction of θ; null = method default
    variant: str = "TS"  # shift: T | S | TS
    shift_T: Optional[int] = None  # shift: one T for the whole sweep instead of per-T passes
    presim: int = 4  # cos: ρ pre-simulation steps
    base: str = "maxnorm"  # msat: θ_max from maxnorm | pnorm (max over calib_size training images)
    use_dtt: bool = True  # msat: dynamic tracking threshold term (He et al. Eq. 16)
    use_det: bool = True  # msat: dynamic evoked threshold term (Eq. 17)
    alpha: float = 0.03  # msat α, k_a, k_i, C, τ_mp, τ_rd: Table 1 (VGG16 column)
    k_a: float = 1.0
    k_i: float = 1.0
    C: float = 5.0
    tau_mp: float = 1.0
    tau_rd: float = 1.0
    v_t: Optional[float] = None  # msat V_T (Eq. 16); null = the units' default: −θ_max raw, −1 normalised
    units: str = "normalised"  # msat: normalised (u, z ÷ θ_max, V_T = −1; Table 1, released code) | raw (§3.1)
    det_tau: str = "squared"  # msat DET weight: squared (τ_rd of Eq. 15 × τ_rd of Eq. 17) | once
    fixed_fraction: Optional[float] = None  # msat ablation: θ = f·θ_max at every step (Fig. 3's 0.7·θ)
    confidence: Any = 1.0  # msat spike confidence (Eq. 18): one probability or a per-layer list
    confidence_last: Optional[float] = None  # msat: the last IF layer's probability; null = as confidence
    confidence_steps: int = 16  # msat: spike confidence for t < this (Alg. 1 "early timestep"; 16: released code)
    confidence_reset: bool = False  # msat: a dropped spike still resets (released code) vs not (Eq. 18)
    integer: bool = False  # allint: integer-only simulation
    int_scale: int = 10000
    fire_on_equal: bool = True  # allint: +1 spike on v ≥ θ⁺ (paper) vs v > θ⁺ (reference code)


@dataclass
class SimConfig:
    name: str = "default"
    T: List[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64])
    chunk: Any = "auto"  # time steps folded into the batch at once; int or auto
    encoding: str = "direct"  # direct | poisson
    batch_size: int = 250
    record_layers: bool = True  # per-layer diagnostics into layers.csv
    compile: bool = False
    dtype: str = "float32"  # float32 | float64


@dataclass
class TableConfig:
    """A table layout (conf/table/*.yaml); the format is described in snnx/tables/layout.py."""

    @staticmethod
    def _open_dict(content: dict):
        """A dict node that takes new keys even though Hydra makes the rest of the config strict."""
        from omegaconf import OmegaConf

        return OmegaConf.create(content, flags={"struct": False})

    name: str = "summary"
    paper: Optional[str] = None  # csqcfs | denggu | msat | allint: where the reported rows come from
    paper_tables: List[str] = field(default_factory=list)  # which of its tables, as printed ("Table 1")
    title: str = "snnx results"
    kind: str = "accuracy"  # accuracy (value vs T) | layers (layers.csv statistic per layer vs T)
    layout: str = "wide"  # wide: one column per T | long: T is a row key, columns are metrics
    sweep_dir: Optional[str] = None  # where to look for results.csv; default paths.root
    rows: List[str] = field(default_factory=lambda: ["dataset", "model", "act", "convert"])
    columns: List[str] = field(default_factory=lambda: ["ANN", "T"])  # ANN, T, SNN best, loss, final acc, final T, MaxDiff, AvgDiff
    T: List[Any] = field(default_factory=list)  # columns; int, ">=N" or "A-B"; empty = every T found
    value: str = "acc"  # the results.csv metric in the T columns
    # On runs: results.csv columns or dotted config keys → value(s); an open dict, so that
    # table.filters.L=4 adds a filter from the command line (and table.filters.dataset=null drops one).
    filters: Any = field(default_factory=lambda: TableConfig._open_dict({}))
    methods: List[Any] = field(default_factory=list)  # rows: {label, paper: {match}, snnx: {match}, note}
    reported_rest: bool = True  # paper rows no `methods` entry claims become reported-only rows
    embedded: bool = False  # snnx rows from embedded-scale runs beside the paper's rows, labelled as what they are
    # With embedded=true these replace filters' dataset/model for snnx rows (…dataset=null: any dataset).
    embedded_filters: Any = field(default_factory=lambda: TableConfig._open_dict({"dataset": ["digits", "mnist5k"]}))
    # Row key → {run's value: the paper's name}: snnx rows join the paper's group (e.g. model vgg16_rathi → vgg16),
    # the run's own value shown in `setting`.
    aliases: Any = field(default_factory=lambda: TableConfig._open_dict({}))
    panels: Optional[List[str]] = None  # row keys that split the plot into panels; default: rows but the label
    layer_metric: str = "sin_ratio"  # kind=layers: sin_ratio | sin_share | firing_rate | clip_error | floor_error | ann_error
    layer_axis: str = "T"  # kind=layers: x axis T (one line per layer) | layer (one line per T)
    plot: bool = True


@dataclass
class ObjectiveConfig:
    """The number a job returns to a sweeper that optimises (hydra-optuna-sweeper); see validate.OBJECTIVE_METRICS."""

    metric: Optional[str] = None  # null: return nothing | acc | conversion_loss | spikes_per_neuron | sops | energy_mj | ann_acc
    T: Optional[int] = None  # which row of results.csv: one of sim.T; null = the largest


@dataclass
class PathsConfig:
    root: str = "outputs"


@dataclass
class SnnxConfig:
    stage: str = "run"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    debug: bool = False
    ckpt: Optional[str] = None  # use this ANN checkpoint instead of training
    paths: PathsConfig = field(default_factory=PathsConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    act: ActConfig = field(default_factory=ActConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    convert: ConvertConfig = field(default_factory=ConvertConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    table: TableConfig = field(default_factory=TableConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)


GROUPS = ("dataset", "model", "act", "train", "convert", "sim", "table", "experiment", "hparams_search")


def register_configs() -> None:
    """Store the schema so config.yaml's defaults list can start from it."""
    cs = ConfigStore.instance()
    cs.store(name="snnx_schema", node=SnnxConfig)
