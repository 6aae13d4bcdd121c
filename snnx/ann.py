"""The ANN a config describes: its dataset's input shape, its model, its activation, its weight quantiser.

The checkpoint contract: ``build(checkpoint["config"])`` rebuilds the module whose ``state_dict`` the
checkpoint holds.
"""

from __future__ import annotations

from typing import Mapping

from torch import nn

from snnx.activations import apply_ternary, make_act_factory
from snnx.activations.factory import activation_params
from snnx.activations.registry import resolve_weight_quant
from snnx.data import dataset_info
from snnx.models.create import create_model
from snnx.models.layers import normalise_hidden_linears


def build(config: Mapping) -> nn.Module:
    """The ANN described by ``config`` (a resolved, plain config: dataset shape, model, injected activation)."""
    info = dataset_info(config["dataset"]["name"], config["dataset"].get("crop"))  # crop: the model's input side
    model_cfg = config["model"]
    act = config["act"]
    factory = make_act_factory(act["name"], **activation_params(act))
    dropout = model_cfg.get("dropout")
    if not isinstance(dropout, Mapping):
        # An older checkpoint's flat model.dropout: Dropout holds no weights, so the module rebuilt
        # without it loads the same state_dict (and evaluates the same).
        dropout = {}
    model = create_model(model_cfg["name"], in_channels=info.in_channels, image_size=info.image_size,
                         num_classes=info.num_classes, act_factory=factory, width=model_cfg["width"],
                         batch_norm=model_cfg["batch_norm"], pool=model_cfg["pool"],
                         dropout_conv=dropout.get("conv", 0.0), dropout_fc=dropout.get("fc", 0.0),
                         init=model_cfg.get("init", "default"), votes=model_cfg.get("votes"))
    if resolve_weight_quant(act["name"], config.get("train", {}).get("weight_quant", "none")) == "ternary":
        if model_cfg["batch_norm"]:
            normalise_hidden_linears(model)
        apply_ternary(model, ste=config.get("train", {}).get("ternary_ste", "clipped"))
    return model
