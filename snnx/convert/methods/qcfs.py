"""``convert=qcfs``: θ = the trained λ of a QCFS-family ANN, v0 = φ·θ (Bu et al.; Yang et al. 2025, §4)."""

from __future__ import annotations

from dataclasses import dataclass

from snnx.convert.methods import METHODS, IFParams
from snnx.convert.methods._build import start, swap, trained_threshold
from snnx.registry import param


@dataclass
class QCFSConvertParams(IFParams):
    name: str = param("qcfs", "the conversion method")


def trained(act, params) -> bool:
    return bool(act.trait("trains_threshold"))


@METHODS.register("qcfs", params=QCFSConvertParams, doc="θ = the trained λ, v0 = φ·θ", needs_stats=False,
                  accepts=trained, accepts_doc="a QCFS-family ANN (a trained threshold λ)")
def build(ann, *, stats, params):
    # torch loads only when the SNN is built: the method registry is read while composing a config
    from snnx.neurons import IFNeuron

    def make(name, act):
        return IFNeuron(trained_threshold(name, act), start(params, float(getattr(act, "shift", 0.5))))

    return swap(ann, params, make), "qcfs θ=λ v0=φθ"
