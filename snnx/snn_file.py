"""A converted SNN as a file of plain data (``snn.pt``) and back.

An SNN is a graph module whose structure comes from its ANN, so the file holds what rebuilds it
exactly: the ANN's weights, the conversion (method, its parameters, the calibration statistics, the
seed) and the SNN's own state_dict, which is checked against the rebuilt network. Nothing is pickled:
the file loads with ``torch.load(weights_only=True)``. With a snnx config inside (the ``convert``
stage's files) the ANN is rebuilt from it; a network converted from one's own model is rebuilt on a
model of the same architecture that the caller passes in.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
import torch
from torch import nn

from snnx.ann import build
from snnx.artifacts import atomic_save, load_checkpoint
from snnx.convert import convert
from snnx.errors import CheckpointError, ConfigError

FORMAT = "snnx-snn"
VERSION = 1
# What load_checkpoint says of a file that is not one.
SNN_FILE = ("an SNN file of this snnx version", f"a dict with format '{FORMAT}', the ANN's and the SNN's state_dict "
            "and the conversion", "Convert again (snnx convert writes snn.pt in the run's folder; from Python, "
            "snnx.api.save_snn).")


@dataclass
class Conversion:
    """What a converted SNN was made from; :func:`record` attaches it to the SNN."""

    method: str
    params: dict
    stats: dict | None
    seed: int
    label: str
    ann_state: dict
    config: dict | None = None  # the snnx run's config (None: the user's own model)
    ann_key: str | None = None
    ann_class: str = ""  # the ANN's class name (results' model column for one's own model)


def record(snn: nn.Module, conversion: Conversion) -> nn.Module:
    """``snn`` with ``conversion`` attached (a deep copy of the SNN keeps it: a GraphModule's deep copy is
    rebuilt from its graph and keeps only its ``meta`` of the extra state, so the record goes there too)."""
    snn.snnx_conversion = conversion
    meta = getattr(snn, "meta", None)
    if isinstance(meta, dict):
        meta["snnx_conversion"] = conversion
    return snn


def conversion_of(snn: nn.Module) -> Conversion | None:
    found = getattr(snn, "snnx_conversion", None)
    meta = getattr(snn, "meta", None)
    return found if found is not None else (meta.get("snnx_conversion") if isinstance(meta, dict) else None)


def convert_recorded(ann: nn.Module, *, method: str, stats: dict | None, params: dict, seed: int,
                     config: dict | None = None, ann_key: str | None = None) -> tuple[nn.Module, str]:
    """``snnx.convert.convert`` with the conversion recorded on the SNN, so that :func:`save` can write it."""
    snn, label = convert(ann, method=method, stats=stats, convert=params, seed=seed)
    return record(snn, Conversion(method=method, params=dict(params), stats=stats, seed=int(seed), label=label,
                                  ann_state=ann_state(ann), config=config, ann_key=ann_key,
                                  ann_class=type(ann).__name__)), label


def ann_state(ann: nn.Module) -> dict:
    """A CPU copy of the ANN's weights: the SNN file's, unchanged by later training of ``ann``."""
    return {k: v.detach().cpu().clone() for k, v in ann.state_dict().items()}


def save(snn: nn.Module, path: str | os.PathLike) -> Path:
    conv = conversion_of(snn)
    if conv is None:
        raise ConfigError("this network was not made by snnx's converter, so nothing says how to rebuild it.",
                          key="snn", fix="Save a network returned by snnx.api.convert (or api.load_snn).")
    path = Path(path)
    atomic_save({"format": FORMAT, "version": VERSION, "method": conv.label, "convert_method": conv.method,
                 "convert": conv.params, "stats": conv.stats, "seed": conv.seed, "config": conv.config,
                 "ann_key": conv.ann_key, "ann_class": conv.ann_class, "ann_state_dict": conv.ann_state,
                 "state_dict": {k: v.detach().cpu() for k, v in snn.state_dict().items()}}, path)
    return path


def estimated_bytes(snn: nn.Module) -> int:
    """About what :func:`save` writes for ``snn``: the bytes of every tensor storage the file holds (the ANN's
    weights, the SNN's state, the calibration statistics), each storage once as torch.save writes it; the
    pickled structure around them adds a few kB."""
    conv = conversion_of(snn)
    tensors = list(snn.state_dict().values())
    if conv is not None:
        tensors += list(conv.ann_state.values()) + _tensors_in(conv.stats)
    storages = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        storages[(tensor.device, storage.data_ptr())] = storage.nbytes()
    return sum(storages.values())


def _tensors_in(node) -> list[torch.Tensor]:
    if isinstance(node, torch.Tensor):
        return [node]
    if isinstance(node, dict):
        return [t for value in node.values() for t in _tensors_in(value)]
    if isinstance(node, (list, tuple)):
        return [t for value in node for t in _tensors_in(value)]
    return []


def read(path: str | os.PathLike, *, key: str = "snn") -> dict:
    """The contents of an SNN file, checked to be one (loaded weights-only: nothing is executed)."""
    if not Path(path).is_file():
        raise CheckpointError(f"there is no file at {str(path)!r}.", key=key,
                              fix="Give the path of a saved SNN (snnx.api.save_snn, or the snn.pt of a run's folder).")
    data = load_checkpoint(path, key=key, expected=SNN_FILE, required=("format", "ann_state_dict", "state_dict"))
    if data["format"] != FORMAT:
        raise CheckpointError(f"{str(path)!r} is a '{data['format']}' file, not '{FORMAT}'.", key=key,
                              fix=SNN_FILE[2])
    return data


@dataclass
class LoadedSNN:
    snn: nn.Module
    ann: nn.Module
    conversion: Conversion


def load(path: str | os.PathLike, *, model: nn.Module | None = None, key: str = "snn") -> LoadedSNN:
    """The SNN saved at ``path``, rebuilt and checked against its saved state.

    ``model``: for a network converted from one's own model, an instance of that architecture (its
    weights are not used: a copy receives the saved ones).
    """
    data = read(path, key=key)
    shown = repr(str(path))
    config = data.get("config")
    if model is None and config is None:
        raise ConfigError(f"{shown} was converted from your own model: its architecture is not in the file.",
                          key="model", fix="Pass model=<an instance of that model class> to snnx.api.load_snn "
                          "(its weights are replaced by the saved ones).")
    if model is not None and not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}.", key="model",
                          fix="Pass an instance of the model the SNN was converted from.")
    ann = copy.deepcopy(model) if model is not None else build(config)
    try:
        ann.load_state_dict(data["ann_state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{shown} holds the weights of another architecture than the "
                              f"{'model passed in' if model is not None else 'one its config describes'} "
                              f"({str(exc).splitlines()[0][:200]}).", key="model" if model is not None else key,
                              fix="Pass the model the SNN was converted from." if model is not None else
                              "Use an SNN file written by this version of snnx.") from exc
    ann.eval()
    conv = Conversion(method=data["convert_method"], params=dict(data["convert"]), stats=data.get("stats"),
                      seed=int(data["seed"]), label=data["method"], ann_state=data["ann_state_dict"],
                      config=config, ann_key=data.get("ann_key"), ann_class=str(data.get("ann_class", "")))
    snn, _label = convert(ann, method=conv.method, stats=conv.stats, convert=conv.params, seed=conv.seed)
    try:
        snn.load_state_dict(data["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{shown}: the rebuilt SNN does not match the saved one "
                              f"({str(exc).splitlines()[0][:200]}).", key=key,
                              fix="Use an SNN file written by this version of snnx, or convert again.") from exc
    return LoadedSNN(record(snn, conv), ann, conv)

