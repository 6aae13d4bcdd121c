"""``act=relu``: the plain ReLU (``torch.nn.ReLU``), the ANN of threshold-calibrating conversions."""

from __future__ import annotations

from dataclasses import dataclass

from snnx.activations.registry import ACTIVATIONS
from snnx.registry import param


@dataclass
class ReluParams:
    name: str = param("relu", "the activation")


@ACTIVATIONS.register("relu", params=ReluParams, doc="plain ReLU")
def build(params, num_channels: int, *, first: bool):
    # torch loads only when a model is built: the activation registry is read while composing a config
    from torch import nn

    return nn.ReLU()
