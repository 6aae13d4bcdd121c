"""``convert=pnorm``: θ_l = the p-th percentile of the layer's activations (Rueckauer et al. 2017)."""

from __future__ import annotations

from dataclasses import dataclass

from snnx.convert.methods import METHODS, IFParams, any_act
from snnx.convert.methods.maxnorm import if_neurons
from snnx.registry import param


@dataclass
class PNormParams(IFParams):
    name: str = param("pnorm", "the conversion method")
    percentile: float = param(99.99, "p: θ is this percentile of the layer's activations", gt=0, le=100,
                              fix="Use e.g. convert.percentile=99.99.")


@METHODS.register("pnorm", params=PNormParams, doc="θ = the p-th percentile of the layer's activations",
                  needs_stats=True, accepts=any_act, accepts_doc="any ANN")
def build(ann, *, stats, params):
    return if_neurons(ann, stats, params, "percentile", f"pnorm p={params['percentile']}")
