"""``convert=shift``: Deng & Gu 2021 — θ_l = the layer maximum (the threshold ReLU's y_th for a
threshold-ReLU ANN, §5) and the input shifted by θ_l/(2T) (Eq. 15).

``variant``: T (threshold only, no shift), S (shift only, a ReLU ANN), TS (both). The shift
depends on T, so S and TS simulate one pass per T unless ``shift_T`` fixes one T for the sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from snnx.convert.methods import METHODS, IFParams
from snnx.convert.methods._build import require_stats, start, stat_threshold, swap
from snnx.errors import ConfigError
from snnx.registry import param


@dataclass
class ShiftParams(IFParams):
    name: str = param("shift", "the conversion method")
    variant: str = param("TS", "T: threshold only | S: shift only (ReLU ANN) | TS: both", choices=("T", "S", "TS"))
    shift_T: Optional[int] = param(None, "one T for the shift θ/(2T) of the whole sweep; null = per-T passes",
                                   ge=1, integer=True, fix="Use a positive T or null for per-T passes.")


def check(values: dict, prefix: str) -> None:
    if values["shift_T"] is not None and values["variant"] == "T":
        # Only a shifted conversion has a shift whose horizon shift_T would fix (Eq. 15).
        raise ConfigError(f"convert.variant=T (threshold only) has no shift, so convert.shift_T={values['shift_T']} "
                          "does not apply.", key=f"{prefix}.shift_T",
                          fix="Drop convert.shift_T (null), or use convert.variant=S or TS.")


def accepts(act, params) -> bool:
    """T and TS take θ from the threshold ReLU's ceiling; S shifts any ReLU ANN."""
    return params.get("variant") == "S" or bool(act.trait("ceiling"))


@METHODS.register("shift", params=ShiftParams, doc="Deng & Gu 2021: layer-max θ and the θ/(2T) shift",
                  check=check, needs_stats=True, accepts=accepts,
                  accepts_doc="a threshold-ReLU ANN (act=clip) for variant T or TS; any ANN for variant S")
def build(ann, *, stats, params):
    # torch loads only when the SNN is built: the method registry is read while composing a config
    from snnx.neurons import IFNeuron, ShiftedIFNeuron

    stats = require_stats(stats, "shift")
    v0 = start(params, 0.0)
    variant, fixed_T = params["variant"], params.get("shift_T")
    if variant == "T":
        return swap(ann, params, lambda name, act: IFNeuron(stat_threshold(stats, name, "max"), v0)), \
            "shift-T (threshold only)"
    label = f"shift-{variant}" + (f"@T={fixed_T}" if fixed_T else " (shift per T, one pass per T)")
    return swap(ann, params, lambda name, act: ShiftedIFNeuron(stat_threshold(stats, name, "max"), v0,
                                                               horizon=fixed_T)), label
