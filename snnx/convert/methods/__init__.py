"""Conversion methods by name (``convert=<name>``): one module each in this package.

A method decides, per activation site of the prepared ANN (BN folded, MaxPool replaced), the
neuron, its threshold θ and its start v0; weights are copied unchanged (the neuron emits θ·s,
"threshold balancing"). Its entry declares:

* ``params`` — the ``convert.*`` keys it takes (a dataclass deriving from :class:`ConvertParams`);
* ``needs_stats`` — whether it reads calibration statistics (the calibrate stage runs first);
* ``accepts`` — ``accepts(act_entry, params) -> bool``: which trained ANNs it converts, with
  ``accepts_doc`` saying so in an error;
* its builder ``build(ann, *, stats, params) -> (snn, label)``: the SNN (a graph module) and the
  label of results.csv's ``method`` column.

Modules here import torch only inside builders (composing a config must stay fast).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from snnx.registry import Registry, param

METHODS = Registry("conversion method", group="convert", package="snnx.convert.methods")


@dataclass
class ConvertParams:
    """The keys every conversion method takes."""

    name: str = param("", "the conversion method")
    calib_size: int = param(1000, "training images the calibration statistics are taken over", ge=1, integer=True,
                            fix="Use e.g. convert.calib_size=1000.")
    calib_batch_size: int = param(256, "batch size of the calibration pass", ge=1, integer=True, runtime=True,
                                  fix="Use e.g. convert.calib_batch_size=256.")
    maxpool: str = param("error", "a MaxPool in the ANN: error, or avg (replaced by average pooling)",
                         choices=("error", "avg"))


@dataclass
class IFParams(ConvertParams):
    """Methods that put IF neurons with a start potential at every site."""

    v_init: Optional[float] = param(None, "initial membrane potential as a fraction of θ; null = the method's own")


def any_act(act, params) -> bool:
    return True
