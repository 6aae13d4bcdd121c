"""``convert=maxnorm``: θ_l = the layer's maximum activation over the calibration images (data-based
normalisation, Diehl et al. 2015), IF neurons with reset by subtraction, v0 = 0."""

from __future__ import annotations

from dataclasses import dataclass

from snnx.convert.methods import METHODS, IFParams, any_act
from snnx.convert.methods._build import require_stats, start, stat_threshold, swap
from snnx.registry import param


@dataclass
class MaxNormParams(IFParams):
    name: str = param("maxnorm", "the conversion method")


def if_neurons(ann, stats, params, which: str, label: str):
    """IF neurons with θ from statistic ``which`` at every site (the calibrated methods' conversion)."""
    # torch loads only when the SNN is built: the method registry is read while composing a config
    from snnx.neurons import IFNeuron

    stats = require_stats(stats, params["name"])
    v0 = start(params, 0.0)
    return swap(ann, params, lambda name, act: IFNeuron(stat_threshold(stats, name, which), v0)), label


@METHODS.register("maxnorm", params=MaxNormParams, doc="θ = the layer's maximum activation", needs_stats=True,
                  accepts=any_act, accepts_doc="any ANN")
def build(ann, *, stats, params):
    return if_neurons(ann, stats, params, "max", "maxnorm")
