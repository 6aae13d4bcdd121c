"""``convert=channelnorm``: θ per channel = the channel's maximum activation (Kim et al. 2020)."""

from __future__ import annotations

from dataclasses import dataclass

from snnx.convert.methods import METHODS, IFParams, any_act
from snnx.convert.methods.maxnorm import if_neurons
from snnx.registry import param


@dataclass
class ChannelNormParams(IFParams):
    name: str = param("channelnorm", "the conversion method")


@METHODS.register("channelnorm", params=ChannelNormParams, doc="θ per channel = the channel's maximum activation",
                  needs_stats=True, accepts=any_act, accepts_doc="any ANN")
def build(ann, *, stats, params):
    return if_neurons(ann, stats, params, "channel_max", "channelnorm")
