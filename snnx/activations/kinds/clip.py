"""``act=clip``: the threshold ReLU min(max(x, 0), y_th) (Deng & Gu 2021, Eq. 14)."""

from __future__ import annotations

from dataclasses import dataclass

from snnx.activations.registry import ACTIVATIONS
from snnx.registry import param


@dataclass
class ClipParams:
    name: str = param("clip", "the activation")
    y_th: float = param(1.0, "the ceiling y_th (Deng & Gu 2021, §7.1: 1 for CIFAR-10, 2 for CIFAR-100)", gt=0,
                        fix="Set act.y_th to the clip level, e.g. 1.0 (CIFAR-10) or 2.0.")
    warmup_epochs: int = param(0, "epochs of plain ReLU before the ceiling turns on (App. A.1: 20)", ge=0,
                               integer=True, fix="Use act.warmup_epochs=0 for no ReLU warm-up.")


@ACTIVATIONS.register("clip", params=ClipParams, doc="threshold ReLU (Deng & Gu 2021)", ceiling=True)
def build(params, num_channels: int, *, first: bool):
    # torch loads only when a model is built: the activation registry is read while composing a config
    from snnx.activations.modules import Clip

    return Clip(params["y_th"])
