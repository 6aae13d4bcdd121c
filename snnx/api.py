"""Python API: convert your own model (or a snnx one), simulate it, keep the results.

    import snnx.api as api
    snn = api.convert(model, method="maxnorm", calibration=train_set)   # any torch.fx-traceable ANN
    result = api.simulate(snn, test_set, time_steps=[8, 16, 32, 64])
    print(result.to_pandas())                                           # results.csv's columns
    api.save_snn(snn, "snn.pt")
    snn = api.load_snn("snn.pt", model=MyNet())                         # the same network back

A method's keys (``snnx help convert=<method>``) are keyword arguments of :func:`convert`; what is
not given takes the method's default. snnx's own checkpoints and configs work too:
``model, config = api.load_ann(".../model.pt")``, then ``api.convert(model, config)``.
Every misuse raises :class:`snnx.errors.SnnxError` with one paragraph naming the argument and the fix.
"""

from __future__ import annotations

import copy
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import pandas as pd
import torch
from omegaconf import OmegaConf
from torch import fx, nn
from torch.utils.data import DataLoader, Dataset, Subset

from snnx import pipeline, snn_file
from snnx.export import nir as nir_export
from snnx.activations.factory import make_act_factory
from snnx.calibration import calibrate as calibrate_model
from snnx.composition import compose_checked
from snnx.convert.methods import METHODS
from snnx.convert.run import method_params
from snnx.energy import ENERGY
from snnx.errors import ConfigError, SnnxError
from snnx.neurons import Neuron
from snnx.seeding import resolve_device
from snnx.sim import Simulator
from snnx.sim.engine import ENCODINGS
from snnx.sim.accounting import ann_macs
from snnx.validate import validate

__all__ = ["compose", "load_ann", "build_dataset", "activation", "calibrate", "convert", "simulate",
           "SimulationResult", "save_snn", "load_snn", "export_nir", "methods"]


# -- errors ---------------------------------------------------------------------------
@contextmanager
def _arguments_of(function: str) -> Iterator[None]:
    """Errors about ``convert.<key>`` are about ``function``'s keyword argument ``<key>``."""
    try:
        yield
    except SnnxError as exc:
        if not (exc.key or "").startswith("convert."):
            raise
        key = exc.key[len("convert."):]
        # A fix that already says how to pass it to the API stays as it is.
        fix = exc.fix or ""
        fix = fix if "snnx.api" in fix else re.sub(r"\bconvert\.(\w+)=", r"\1=", fix)
        problem = re.sub(r"\bconvert\.(\w+)=", r"\1=", exc.problem)
        raise type(exc)(problem, key=f"snnx.api.{function}({key}=…)", fix=fix or None) from None


@contextmanager
def _activations_of_model(own_model: bool) -> Iterator[None]:
    """For one's own model, an error about the ANN (``model``) or its activations (``act``) is about the
    ``model`` argument; for the activations, say how to build the one the method needs."""
    try:
        yield
    except SnnxError as exc:
        key = (exc.key or "").replace("convert / ", "")
        if not own_model or not (key == "model" or key.startswith("act")):
            raise
        fix = (exc.fix or "") + (" In your own model, use snnx.api.activation(<that name>, …) modules."
                                 if key.startswith("act") else "")
        raise type(exc)(exc.problem, key="snnx.api.convert(model=…)", fix=fix.strip()) from None


def _argument_error(function: str, argument: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(problem, key=f"snnx.api.{function}({argument}=…)", fix=fix)


def _require_module(function: str, argument: str, value: Any) -> None:
    if not isinstance(value, nn.Module):
        raise _argument_error(function, argument, f"must be a torch.nn.Module, got {type(value).__name__}.",
                              "Pass the network itself (an nn.Module instance).")


# -- configs and snnx's own artifacts ----------------------------------------------------
def compose(*overrides: str, stage: str = "run") -> dict:
    """The resolved config for these overrides, as a plain dict (the same composition and checks as the CLI)."""
    bad = [o for o in overrides if not isinstance(o, str)]
    if bad:
        raise _argument_error("compose", "overrides", f"every override must be a string key=value, got {bad[0]!r}.",
                              "Write them as the command line does, e.g. api.compose('act=relu', 'train.epochs=5').")
    cfg = compose_checked(stage, list(overrides))
    validate(cfg)
    return OmegaConf.to_container(cfg, resolve=True)


def load_ann(path: str) -> tuple[nn.Module, dict]:
    """The trained ANN of a snnx checkpoint and the config that built it."""
    model, data = pipeline.load_ann(path, key="path")
    return model, data["config"]


def build_dataset(config: Mapping, split: str = "test") -> Dataset:
    """The ``split`` ("train" or "test") of a snnx config's dataset."""
    if not isinstance(config, Mapping) or "dataset" not in config:
        raise _argument_error("build_dataset", "config", "must be a snnx config (a mapping with a dataset section).",
                              "Pass api.compose(...) or the config api.load_ann returned.")
    if split not in ("train", "test"):
        raise _argument_error("build_dataset", "split", f"must be 'train' or 'test', got {split!r}.",
                              "Use split='train' or split='test'.")
    return pipeline.dataset(config, split, augment=False if split == "test" else None)


def methods() -> dict[str, str]:
    """The conversion methods: name → what it does (``snnx help convert=<name>`` lists its keys)."""
    return {entry.name: entry.doc for entry in METHODS}


def activation(name: str, num_channels: int = 1, *, first: bool = False, **params) -> nn.Module:
    """One snnx activation module (``act=<name>`` with its ``act.*`` keys as keyword arguments), to build
    your own ANN with: e.g. ``api.activation("qcfs", L=8)`` for convert=qcfs/cos, ``"clip"`` for Deng & Gu's
    threshold ReLU, ``"quant"`` for the all-integer SNN. ``num_channels``: for per-channel activations;
    ``first``: the network's first (encoding) site, which some treat apart (act=quant's own level)."""
    factory = make_act_factory(name, **params)
    if isinstance(num_channels, bool) or not isinstance(num_channels, int) or num_channels < 1:
        raise _argument_error("activation", "num_channels", f"must be an integer ≥ 1, got {num_channels!r}.",
                              "Pass the number of channels of the layer it follows (1 for a per-layer one).")
    return factory.entry.build(factory.params, num_channels, first=bool(first))


# -- calibration --------------------------------------------------------------------------
def _image_batches(data: Any, *, limit: int, batch_size: int, function: str, argument: str) -> list[torch.Tensor]:
    """At most ``limit`` images of ``data`` (a Dataset, a DataLoader, a tensor or an iterable of image
    batches or (images, labels) pairs), as a list of batches."""
    if isinstance(data, torch.Tensor):
        source: Iterable = data[:limit].split(batch_size)
    elif isinstance(data, Dataset) and not isinstance(data, torch.utils.data.IterableDataset) \
            and hasattr(data, "__len__"):
        source = DataLoader(Subset(data, range(min(limit, len(data)))), batch_size=batch_size)
    elif isinstance(data, (DataLoader, Iterable)) and not isinstance(data, (str, bytes, Mapping)):
        source = data
    else:
        raise _argument_error(function, argument, f"cannot be read as images: got {type(data).__name__}.",
                              "Pass a Dataset of (image, label) pairs, a DataLoader, a tensor of images "
                              "[N, C, H, W] or an iterable of image batches.")
    batches, seen = [], 0
    for item in source:
        images = item[0] if isinstance(item, (tuple, list)) and item else item
        if not isinstance(images, torch.Tensor):
            raise _argument_error(function, argument, f"yielded a {type(images).__name__}, not a tensor of images.",
                                  "Each item must be an image batch or an (images, labels) pair of tensors.")
        if images.dim() < 2:
            raise _argument_error(function, argument, f"yielded a batch of shape {tuple(images.shape)}, not "
                                  "[batch, …] images.", "Give image batches [N, C, H, W] (a DataLoader does that).")
        batches.append(images[:limit - seen])
        seen += len(batches[-1])
        if seen >= limit:
            break
    if not seen:
        raise _argument_error(function, argument, "holds no images.", "Pass at least one image batch.")
    return batches


def calibrate(model: nn.Module, data: Any, *, percentile: float | None = None, size: int = 1000,
              batch_size: int = 256, device: str = "cpu", seed: int = 0) -> dict:
    """The activation statistics every calibrated method reads (layer max, percentile, channel max), over
    at most ``size`` images of ``data``; pass them to :func:`convert` as ``stats=`` to convert one
    calibration with several methods. ``percentile``: None = convert=pnorm's default p."""
    _require_module("calibrate", "model", model)
    return _calibrate(model, data, percentile=percentile, size=size, batch_size=batch_size, device=device,
                      seed=seed, function="calibrate", argument="data")


def _calibrate(model, data, *, percentile, size, batch_size, device, seed, function, argument) -> dict:
    percentile = pipeline.default_percentile() if percentile is None else percentile
    batches = _image_batches(data, limit=size, batch_size=batch_size, function=function, argument=argument)
    try:
        return calibrate_model(model, batches, percentile=percentile, num_batches=len(batches),
                               device=resolve_device(device), seed=seed)
    except RuntimeError as exc:  # the model cannot run on these images (a shape mismatch)
        raise _argument_error(function, argument, f"the model cannot run on its images of shape "
                              f"{tuple(batches[0].shape)} ({str(exc).splitlines()[0][:200]}).",
                              "Pass images of the size and channels the model takes.") from exc


# -- conversion --------------------------------------------------------------------------
def convert(model: nn.Module, config: Mapping | None = None, *, method: str | None = None,
            calibration: Any = None, stats: dict | None = None, seed: int = 0, device: str = "cpu",
            calibration_data: Any = None, **params) -> nn.Module:
    """The SNN of ``model`` by conversion ``method`` (see :func:`methods`), with ``params`` (the method's
    ``convert.*`` keys: ``api.convert(model, method="pnorm", calibration=data, percentile=99.9)``).

    ``model``: any torch.fx-traceable ANN. ``nn.ReLU``, ``F.relu``, ``torch.relu``, ``Tensor.relu`` and
    ``clamp(min=0)`` become neurons, and so do snnx activations (:func:`activation`); BatchNorm is folded.
    ``calibration``: images the thresholds are taken from (a Dataset, a DataLoader, an image tensor or an
    iterable of batches; ``calib_size`` of them), needed by the calibrated methods unless ``stats``
    (:func:`calibrate`) is given. ``config``: a snnx config (api.compose / api.load_ann) whose convert
    section gives the defaults and whose training set calibrates when ``calibration`` is None.
    ``seed`` drives stochastic neurons (MSAT's spike confidence).
    """
    _require_module("convert", "model", model)
    if calibration is not None and calibration_data is not None:
        raise _argument_error("convert", "calibration_data", "is the old name of calibration=; both were given.",
                              "Pass the calibration images once, as calibration=.")
    calibration = calibration if calibration is not None else calibration_data
    if config is not None and not (isinstance(config, Mapping) and isinstance(config.get("convert"), Mapping)):
        raise _argument_error("convert", "config", f"must be a snnx config with a convert section, got "
                              f"{type(config).__name__ if not isinstance(config, Mapping) else 'a mapping without one'}.",
                              "Leave config out to convert your own model, or pass api.compose(...) / the config "
                              "api.load_ann returned.")
    if method is None:
        if config is None:
            raise _argument_error("convert", "method", "is needed when no config is given.",
                                  f"Name one of: {', '.join(METHODS.names())} (e.g. method='maxnorm').")
        method = config["convert"]["name"]
    if not isinstance(method, str) or method not in METHODS:
        raise _argument_error("convert", "method", f"unknown conversion method {method!r}.",
                              f"Choose one of: {', '.join(METHODS.names())}.")
    base = {} if config is None else (config["convert"] if config["convert"].get("name") == method
                                      else METHODS.declared(method, config["convert"]))
    with _arguments_of("convert"):
        conv = method_params(method, {**base, **params, "name": method})
    entry = METHODS.get(method)
    if entry.trait("needs_stats") and stats is None:
        if calibration is None and config is None:
            raise _argument_error("convert", "calibration", f"method={method!r} sets its thresholds from "
                                  "activation statistics, and no calibration images were given.",
                                  "Pass calibration=<a Dataset, DataLoader or image batches from the training "
                                  "set>, or stats=api.calibrate(model, data).")
        data = calibration if calibration is not None else \
            pipeline.dataset(config, "train", augment=False, limit=conv["calib_size"])
        stats = _calibrate(model, data, percentile=conv.get("percentile"), size=conv["calib_size"],
                           batch_size=conv["calib_batch_size"], device=device, seed=seed, function="convert",
                           argument="calibration")
    elif stats is not None and not isinstance(stats, Mapping):
        raise _argument_error("convert", "stats", f"must be the dict api.calibrate returns, got "
                              f"{type(stats).__name__}.", "Pass stats=api.calibrate(model, data), or leave it out.")
    with _arguments_of("convert"), _activations_of_model(config is None):
        snn, _label = snn_file.convert_recorded(model.cpu(), method=method, stats=stats, params=conv, seed=seed,
                                                config=None if config is None else dict(config),
                                                ann_key=None if config is None else config.get("ann_key"))
    if not any(isinstance(m, Neuron) for m in snn.modules()):
        raise _argument_error("convert", "model", f"this {type(model).__name__} has no activation to become a "
                              "spiking neuron.", "Use nn.ReLU, F.relu, torch.relu, clamp(min=0) or snnx activations "
                              "(snnx.api.activation) between its layers.")
    return snn


# -- simulation -----------------------------------------------------------------------------
@dataclass
class SimulationResult:
    """What :func:`simulate` measured, per T: accuracy, spikes per neuron, SOPs, MACs, energy.

    ``frame``: one row per T in results.csv's columns (:meth:`to_pandas`); ``outputs`` (with
    ``keep_outputs=True``): each image's mean output up to T, ``{T: tensor [N, classes]}``.
    """

    frame: pd.DataFrame
    outputs: dict[int, torch.Tensor]

    @property
    def time_steps(self) -> list[int]:
        return [int(t) for t in self.frame["T"]]

    def _column(self, name: str) -> dict[int, float]:
        return {int(t): float(v) for t, v in zip(self.frame["T"], self.frame[name])}

    @property
    def accuracy(self) -> dict[int, float]:
        """Accuracy (%) at every T."""
        return self._column("acc")

    @property
    def spikes_per_neuron(self) -> dict[int, float]:
        return self._column("spikes_per_neuron")

    @property
    def sops(self) -> dict[int, float]:
        """Synaptic operations per image up to T."""
        return self._column("sops")

    @property
    def macs(self) -> dict[int, float]:
        """Multiply-accumulates per image up to T (the real-valued first layer)."""
        return self._column("macs")

    @property
    def energy_mj(self) -> dict[int, float]:
        """Energy per image up to T (mJ; 0.9 pJ per SOP, 4.6 pJ per MAC)."""
        return self._column("energy_mj")

    def to_pandas(self) -> pd.DataFrame:
        return self.frame.copy()

    def __repr__(self) -> str:
        shown = self.frame[["T", "acc", "spikes_per_neuron", "sops", "macs", "energy_mj"]]
        return f"SimulationResult(\n{shown.to_string(index=False)}\n)"


def _labelled_batches(data: Any, batch_size: int, function: str = "simulate") -> Iterable:
    """``data`` (a Dataset, a DataLoader, an (images, labels) pair of tensors or an iterable of such
    pairs) as an iterable of (images, labels) batches."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return DataLoader(torch.utils.data.TensorDataset(*data), batch_size=batch_size)
    if isinstance(data, Dataset) and not isinstance(data, torch.utils.data.IterableDataset):
        return DataLoader(data, batch_size=batch_size)
    if isinstance(data, (DataLoader, Iterable)) and not isinstance(data, (str, bytes, Mapping, torch.Tensor)):
        return data
    raise _argument_error(function, "data", f"cannot be read as labelled images: got {type(data).__name__}.",
                          "Pass a Dataset of (image, label) pairs, a DataLoader of them, or (images, labels) tensors.")


def _checked_pairs(batches: Iterable, function: str = "simulate") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for item in batches:
        if not (isinstance(item, (tuple, list)) and len(item) >= 2 and isinstance(item[0], torch.Tensor)
                and isinstance(item[1], torch.Tensor)):
            raise _argument_error(function, "data", f"yielded a {type(item).__name__}, not an (images, labels) "
                                  "pair of tensors.", "Each batch must be (images, labels), as a DataLoader over "
                                  "a labelled Dataset gives.")
        yield item[0], item[1]


def simulate(snn: nn.Module, data: Any, time_steps: Sequence[int] = (1, 2, 4, 8, 16, 32, 64), *,
             ann: nn.Module | None = None, batch_size: int = 250, device: str = "auto", chunk: int | str = "auto",
             dtype: torch.dtype = torch.float32, encoding: str = "direct", seed: int = 0,
             mean=None, std=None, compile: bool = False, keep_outputs: bool = False,
             energy: str = "horowitz45", **energy_params) -> SimulationResult:
    """Simulate ``snn`` on ``data`` to every T of ``time_steps`` in one pass (one per T for neurons whose
    dynamics depend on T); a :class:`SimulationResult`.

    ``ann``: the model it was converted from, for the ANN's accuracy, MACs and energy columns, and the
    equal-bit QANN's accuracy. ``energy``: the energy model (a name of ``snnx.energy.ENERGY``), its keys as
    further keyword arguments (``precision="fp16"`` …, as ``energy.<key>`` of the CLI).
    ``encoding="poisson"`` rate-codes the images (``mean``/``std``: their normalisation, to be undone;
    None: intensities in [0, 1]), seeded by ``seed``.
    """
    _require_module("simulate", "snn", snn)
    if not isinstance(snn, fx.GraphModule) or not any(isinstance(m, Neuron) for m in snn.modules()):
        raise _argument_error("simulate", "snn", f"this {type(snn).__name__} has no spiking neurons: it is not a "
                              "converted network.", "Pass the network api.convert (or api.load_snn) returned; "
                              "the ANN goes to ann=.")
    if ann is not None:
        _require_module("simulate", "ann", ann)
    if isinstance(time_steps, (int, str)) or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 1
                                                     for t in time_steps) or not list(time_steps):
        raise _argument_error("simulate", "time_steps", f"must be a list of positive integers, got {time_steps!r}.",
                              "Pass e.g. time_steps=[1, 2, 4, 8, 16, 32].")
    if encoding not in ENCODINGS:
        raise _argument_error("simulate", "encoding", f"must be one of {', '.join(ENCODINGS)}, got {encoding!r}.",
                              "Use encoding='direct' (the image as a constant current) or 'poisson'.")
    if chunk != "auto" and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise _argument_error("simulate", "chunk", f"must be 'auto' or an integer ≥ 1, got {chunk!r}.",
                              "Leave chunk='auto', or give the time steps folded into one batch, e.g. chunk=4.")
    energy_config = _energy_config(energy, energy_params)
    batches = _labelled_batches(data, batch_size)
    try:
        simulator = Simulator(snn, device=resolve_device(device), chunk=chunk, dtype=dtype, encoding=encoding,
                              seed=seed, compile=compile)
        result = simulator.run(_checked_pairs(batches), time_steps, mean=mean, std=std, keep_outputs=keep_outputs)
    except ValueError as exc:  # what is left: compile cannot run here, or a network that encodes its own input
        argument = "compile" if "compile" in str(exc) else "encoding"
        raise _argument_error("simulate", argument, f"{exc}.", f"Simulate without it ({argument}=… as documented "
                              "in snnx.api.simulate).") from None
    ann_acc = macs_ann = None
    if ann is not None:
        ann_acc, macs_ann = _ann_figures(ann, _checked_pairs(_labelled_batches(data, batch_size)),
                                                 simulator.device, dtype)
    conversion = snn_file.conversion_of(snn)
    method = conversion.label if conversion is not None else type(snn).__name__
    config = (conversion.config if conversion is not None else None) or {}
    labels = {**{k: config[k]["name"] for k in ("dataset", "model", "act") if k in config},
              "model": config["model"]["name"] if "model" in config else
              (conversion.ann_class if conversion is not None else None),
              "L": config.get("act", {}).get("L"), "ann_key": conversion.ann_key if conversion is not None else None,
              "convert": conversion.method if conversion is not None else None,
              "seed": conversion.seed if conversion is not None else seed,
              "created": pd.Timestamp.now().isoformat(timespec="seconds")}
    ann_model = None if ann is None else copy.deepcopy(ann).to(simulator.device, dtype).eval()
    baseline = pipeline.equal_bit_baseline(
        {"energy": energy_config, "act": {"L": config.get("act", {}).get("L")}}, ann_model, simulator.snn, result,
        _checked_pairs(_labelled_batches(data, batch_size)), simulator.device, ann_acc)
    frame = pipeline.result_frame(result, method, labels, ann_acc=ann_acc, macs_ann=macs_ann, energy=baseline)
    return SimulationResult(frame, result.outputs)


def _energy_config(name: Any, params: dict) -> dict:
    """energy= and its keys, checked like the CLI's energy group."""
    if not isinstance(name, str):
        raise _argument_error("simulate", "energy", f"must be an energy model's name, got {name!r}.",
                              f"Use one of: {', '.join(ENERGY.names())}.")
    try:
        return ENERGY.check({"name": name, **params})
    except ConfigError as exc:
        key = exc.key.split(".", 1)[1] if exc.key and "." in exc.key else "energy"
        raise _argument_error("simulate", key, exc.problem, exc.fix or "") from None


@torch.no_grad()
def _ann_figures(ann: nn.Module, batches: Iterable, device: torch.device, dtype: torch.dtype):
    """(accuracy %, MACs per image) of the ANN (a copy: the caller's model stays where it is)."""
    model = copy.deepcopy(ann).to(device, dtype).eval()
    correct = total = 0
    sample = None
    for images, labels in batches:
        images = images.to(device, dtype)
        sample = images[:1] if sample is None else sample
        correct += int((model(images).argmax(1).cpu() == labels.cpu()).sum())
        total += labels.numel()
    return 100.0 * correct / max(total, 1), ann_macs(model.float().cpu(), sample.float().cpu())


# -- keeping an SNN -------------------------------------------------------------------------
def save_snn(snn: nn.Module, path: str | Path) -> Path:
    """Write ``snn`` (from :func:`convert` or :func:`load_snn`) to ``path``: its ANN's weights, the conversion
    (method, keys, calibration statistics, seed) and its own state, as plain data (no pickled objects)."""
    _require_module("save_snn", "snn", snn)
    if not isinstance(path, (str, Path)):
        raise _argument_error("save_snn", "path", f"must be a file path, got {type(path).__name__}.",
                              "Pass e.g. 'snn.pt'.")
    return snn_file.save(snn, path)


def load_snn(path: str | Path, model: nn.Module | None = None) -> nn.Module:
    """The SNN saved at ``path`` (by :func:`save_snn`, or a run's snn.pt), loaded weights-only and rebuilt.

    ``model``: for a network converted from your own model, an instance of that architecture (its weights
    are not used). A snnx run's snn.pt rebuilds its model from the config inside.
    """
    if not isinstance(path, (str, Path)):
        raise _argument_error("load_snn", "path", f"must be a file path, got {type(path).__name__}.",
                              "Pass the path api.save_snn wrote.")
    return snn_file.load(path, model=model, key="path").snn


# -- other formats ----------------------------------------------------------------------------
def export_nir(snn: nn.Module, path: str | Path, *, input_shape: Sequence[int] | None = None, lossy: bool = False,
               data: Any = None, time_steps: int = 32, batch_size: int = 250, device: str = "cpu",
               fold_thresholds: bool = True) -> nir_export.NIRExport:
    """Write ``snn`` (from :func:`convert` or :func:`load_snn`) to ``path`` as a NIR graph (needs
    ``pip install 'snnx[nir]'``); returns a :class:`snnx.export.nir.NIRExport` (the graph, the path, what was
    approximated and, for a lossy export, the accuracies measured).

    Conv2d, Linear, average/sum pooling, flatten and IF neurons (θ per neuron; θ folded into the next layer's
    weights, since a NIR IF sends unit spikes; ``fold_thresholds=False``: a Scale node by θ after each IF node
    instead, for readers that have one — snnTorch 1.0.0 does not). The conventions NIR's IF node leaves open
    (reset by subtraction, spike on v ≥ θ, discrete steps, direct encoding, summed readout) are in the graph's
    metadata.
    ``input_shape``: [C, H, W] of one image; None: the dataset of the config the SNN was converted with.
    What NIR cannot express (a start potential, MSAT, COS, the θ/(2T) shift; signed neurons never) is an error,
    or with ``lossy=True`` an approximation: a :class:`snnx.export.nir.LossyExportWarning` then gives the accuracy
    of the file read back and run for ``time_steps`` steps on ``data`` (labelled test images; None: the config's
    test set), beside snnx's own.
    """
    function = "export_nir"
    _require_module(function, "snn", snn)
    if not isinstance(snn, fx.GraphModule) or not any(isinstance(m, Neuron) for m in snn.modules()):
        raise _argument_error(function, "snn", f"this {type(snn).__name__} has no spiking neurons: it is not a "
                              "converted network.", "Pass the network api.convert (or api.load_snn) returned.")
    if not isinstance(path, (str, Path)):
        raise _argument_error(function, "path", f"must be a file path, got {type(path).__name__}.",
                              "Pass e.g. 'snn.nir'.")
    if not isinstance(lossy, bool):
        raise _argument_error(function, "lossy", f"must be True or False, got {lossy!r}.",
                              "Pass lossy=True to approximate what NIR cannot express, else leave it out.")
    if not isinstance(fold_thresholds, bool):
        raise _argument_error(function, "fold_thresholds", f"must be True or False, got {fold_thresholds!r}.",
                              "Leave it out (θ folded into the next layer's weights), or pass False for Scale nodes.")
    if isinstance(time_steps, bool) or not isinstance(time_steps, int) or time_steps < 1:
        raise _argument_error(function, "time_steps", f"must be an integer ≥ 1, got {time_steps!r}.",
                              "Pass e.g. time_steps=32 (the steps a lossy export's accuracy is measured at).")
    conversion = snn_file.conversion_of(snn)
    if input_shape is None:
        input_shape = nir_export.input_shape_of(conversion)
        if input_shape is None:
            raise _argument_error(function, "input_shape", "is needed: this network was converted from your own "
                                  "model, so nothing records the size of its images.",
                                  "Pass input_shape=(channels, height, width) of one image, e.g. (1, 28, 28).")
    elif isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence) or not input_shape or \
            not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in input_shape):
        raise _argument_error(function, "input_shape", f"must be the positive sizes of one image, got "
                              f"{input_shape!r}.", "Pass input_shape=(channels, height, width), e.g. (1, 28, 28).")
    nir_export.require_nir(f"snnx.api.{function}")
    made = nir_export.to_nir(snn, tuple(input_shape), lossy=lossy, key=f"snnx.api.{function}(snn=…)",
                             lossy_key="lossy=True", metadata=nir_export.metadata_for(conversion),
                             fold=fold_thresholds)
    made.path = nir_export.write(made.graph, path, key=f"snnx.api.{function}(path=…)")
    if made.approximations:
        config = (conversion.config if conversion is not None else None) or None
        if data is None and config is None:
            raise _argument_error(function, "data", "is needed with lossy=True: the approximation's accuracy is "
                                  "measured on labelled test images, and this network has no config to take them "
                                  "from.", "Pass data=<a labelled test Dataset, a DataLoader or (images, labels)>.")
        source = data if data is not None else pipeline.dataset(config, "test", augment=False)
        T = time_steps
        made.accuracy = nir_export.accuracy(nir_export.read(made.path),
                                            _checked_pairs(_labelled_batches(source, batch_size, function), function),
                                            [T], device=resolve_device(device))
        made.snnx_accuracy = simulate(snn, source, [T], batch_size=batch_size, device=device).accuracy
        warnings.warn(nir_export.LossyExportWarning(
            f"the NIR graph at {str(made.path)!r} approximates what NIR cannot express ({made.summary()}); measured "
            f"at T={T}: {made.accuracy[T]:.2f}% as exported (read back from the file), {made.snnx_accuracy[T]:.2f}% "
            f"in snnx ({made.accuracy[T] - made.snnx_accuracy[T]:+.2f} points)."), stacklevel=2)
    return made
