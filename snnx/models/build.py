"""Build a model from a (resolved, plain) snnx config: the checkpoint contract."""

from __future__ import annotations

from typing import Mapping

from torch import nn

from snnx.models.registry import check_image_size, create_model, list_models
from snnx.errors import ConfigError


def act_params(act: Mapping) -> dict:
    return {k: v for k, v in act.items() if k != "name" and v is not None}


def build(config: Mapping) -> nn.Module:
    """The ANN described by ``config`` (dataset shape, model, injected activation)."""
    from snnx.activations import apply_ternary, make_act_factory
    from snnx.data import dataset_info

    info = dataset_info(config["dataset"]["name"])
    model_cfg = config["model"]
    act = config["act"]
    factory = make_act_factory(act["name"], **act_params(act))
    model = create_model(model_cfg["name"], in_channels=info.in_channels, image_size=info.image_size,
                         num_classes=info.num_classes, act_factory=factory, width=model_cfg["width"],
                         batch_norm=model_cfg["batch_norm"], pool=model_cfg["pool"], dropout=model_cfg["dropout"])
    if config.get("train", {}).get("weight_quant", "none") == "ternary":
        apply_ternary(model)
    return model


def check_compatible(name: str, info) -> None:
    """Fail early (before any data is loaded) for a model/dataset mismatch."""
    if name not in list_models():
        raise ConfigError(f"unknown model {name!r}.", key="model", fix=f"Use one of: {', '.join(list_models())}.")
    try:
        check_image_size(name, info.image_size)
    except ConfigError as exc:
        raise ConfigError(f"{exc.problem} (dataset={info.name})", key=exc.key, fix=exc.fix) from None
