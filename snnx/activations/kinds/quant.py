"""``act=quant``: the all-integer method's quantiser y = round(x·2^k)/2^k (Zou et al. 2024, §3.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from snnx.activations.registry import ACTIVATIONS
from snnx.registry import param


@dataclass
class QuantParams:
    name: str = param("quant", "the activation")
    k: Optional[int] = param(0, "level: the activation step is 2^−k", ge=0, integer=True, required=True,
                             fix="Set act.k to the quantisation level, e.g. act.k=0.")
    clip_first: float = param(4.0, "the first (encoding) layer's clip B", gt=0, allow_inf=True,
                              fix="Set act.clip_first to the first layer's clip B, e.g. 4.0.")
    k_first: Optional[int] = param(0, "the first layer's level; 0 = integers 0…B (§3.1: 4 spikes in 4 steps), "
                                   "null = act.k", ge=0, integer=True,
                                   fix="Set act.k_first=0 (the paper's 4-step input layer) or null (the same level "
                                       "as act.k).")


@ACTIVATIONS.register("quant", params=QuantParams, doc="all-integer quantiser (Zou et al. 2024)",
                      integer_levels=True)
def build(params, num_channels: int, *, first: bool):
    # torch loads only when a model is built: the activation registry is read while composing a config
    from snnx.activations.modules import Quant

    if first:  # the encoding layer: its own level (Zou et al. 2024, §3.1), clipped at B
        return Quant(params["k"] if params["k_first"] is None else params["k_first"], clip=params["clip_first"])
    return Quant(params["k"])
