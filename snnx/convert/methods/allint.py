"""``convert=allint``: the all-integer SNN (Zou et al. 2024): dual-threshold signed neurons whose
thresholds absorb BatchNorm, a scatter-and-gather first layer, ternary weights. Its own graph
surgery is in :mod:`snnx.convert.allint`."""

from __future__ import annotations

from dataclasses import dataclass

from snnx.convert.methods import METHODS, ConvertParams
from snnx.registry import param


@dataclass
class AllIntParams(ConvertParams):
    name: str = param("allint", "the conversion method")
    integer: bool = param(False, "simulate with integers only (weights and thresholds scaled by int_scale)")
    int_scale: int = param(10000, "integer mode: the scale of full-precision values", ge=1, integer=True,
                           fix="Set convert.int_scale=10000.")
    fire_on_equal: bool = param(True, "+1 spike on v ≥ θ⁺ (paper) vs v > θ⁺ (reference code)")


def quantised(act, params) -> bool:
    return bool(act.trait("integer_levels"))


@METHODS.register("allint", params=AllIntParams, doc="all-integer SNN with dual-threshold signed neurons "
                  "(Zou et al. 2024)", needs_stats=False, accepts=quantised,
                  accepts_doc="an ANN trained with the all-integer quantiser (act=quant)",
                  encodes_input="the scatter-and-gather first layer")
def build(ann, *, stats, params):
    # torch loads only when the SNN is built: the method registry is read while composing a config
    from snnx.convert.allint import convert_allint

    return convert_allint(ann, convert=params)
