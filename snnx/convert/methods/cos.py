"""``convert=cos``: QCFS thresholds with offset-spike calibration (Yang et al. 2025, §4.3, Alg. 2):
ρ pre-simulation steps set each neuron's start potential before the T counted steps."""

from __future__ import annotations

from dataclasses import dataclass

from snnx.convert.methods import METHODS, IFParams
from snnx.convert.methods._build import start, swap, trained_threshold
from snnx.convert.methods.qcfs import trained
from snnx.registry import param


@dataclass
class COSParams(IFParams):
    name: str = param("cos", "the conversion method")
    presim: int = param(4, "ρ: pre-simulation steps of the offset-spike calibration", ge=1, integer=True,
                        fix="Use e.g. convert.presim=4.")


@METHODS.register("cos", params=COSParams, doc="QCFS θ = λ plus offset-spike calibration (ρ pre-steps)",
                  needs_stats=False, accepts=trained, accepts_doc="a QCFS-family ANN (a trained threshold λ)")
def build(ann, *, stats, params):
    # torch loads only when the SNN is built: the method registry is read while composing a config
    from snnx.neurons import OffsetCalibratedIFNeuron

    presim = int(params["presim"])

    def make(name, act):
        return OffsetCalibratedIFNeuron(trained_threshold(name, act), start(params, float(getattr(act, "shift", 0.5))),
                                        presim=presim)

    return swap(ann, params, make), f"qcfs+cos ρ={presim} (T excludes the ρ pre-simulation steps)"
