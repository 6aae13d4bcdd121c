"""Conversion methods: which neuron and which threshold replace each activation.

Every method works on the prepared graph (BN folded, MaxPool replaced) and
only decides, per activation site, the neuron class, θ and v0. Weights are
copied unchanged: the neuron emits θ·s ("threshold balancing").
"""

from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import fx, nn

from snnx.convert.graph import prepare, swap_activations
from snnx.errors import ConfigError
from snnx.neurons import IFNeuron, OffsetCalibratedIFNeuron, ShiftedIFNeuron

# Smallest threshold given to a unit that never activated during calibration:
# it then never fires on non-positive input instead of firing every step.
MIN_THRESHOLD = 1e-6

# Methods whose thresholds come from calibration statistics (and which stat).
CALIBRATED = {"maxnorm": "max", "pnorm": "percentile", "channelnorm": "channel_max", "shift": "max"}
TRAINED = ("qcfs", "cos")
METHODS = tuple(CALIBRATED) + TRAINED + ("msat", "allint")


def _stat_threshold(stats: Mapping, name: str, which: str) -> torch.Tensor:
    if name not in stats:
        raise ConfigError(f"no calibration statistics for activation site '{name}'.", key="convert",
                          fix="Recalibrate: the calibration artifact does not match this model.")
    value = stats[name][which]
    return torch.as_tensor(value, dtype=torch.float32).clamp_min(MIN_THRESHOLD)


def _trained_threshold(name: str, act: nn.Module) -> torch.Tensor:
    getter = getattr(act, "conversion_threshold", None)
    theta = getter() if getter is not None else None
    if theta is None:
        raise ConfigError(f"activation site '{name}' ({type(act).__name__}) has no trained threshold.",
                          key="convert / act", fix="convert=qcfs/cos need a QCFS-family act (act=qcfs, csqcfs, ...).")
    return theta.detach().float().clone()


def neuron_factory(method: str, *, stats: Mapping | None, convert: Mapping) -> tuple[Callable, str]:
    """Return ``make_neuron(name, activation)`` and the label for the ``method`` column."""
    v_init_override = convert.get("v_init")
    if method in CALIBRATED:
        if stats is None:
            raise ConfigError(f"convert={method} needs calibration statistics.", key="convert", fix="Run the calibrate stage first (snnx run does it).")
        which = CALIBRATED[method]
        v_init = 0.0 if v_init_override is None else float(v_init_override)
        if method == "shift":
            variant = convert["variant"]
            fixed_T = convert.get("shift_T")
            label = f"shift-{variant}" + (f"@T={fixed_T}" if fixed_T else " (shift per T, one pass per T)")
            if variant == "T":
                return (lambda name, act: IFNeuron(_stat_threshold(stats, name, which), v_init)), "shift-T (threshold only)"
            return (lambda name, act: ShiftedIFNeuron(_stat_threshold(stats, name, which), v_init, horizon=fixed_T)), label
        label = {"maxnorm": "maxnorm", "pnorm": f"pnorm p={convert.get('percentile')}", "channelnorm": "channelnorm"}[method]
        return (lambda name, act: IFNeuron(_stat_threshold(stats, name, which), v_init)), label
    if method in ("qcfs", "cos"):
        presim = int(convert.get("presim", 4))

        def make(name, act):
            v_init = float(getattr(act, "shift", 0.5)) if v_init_override is None else float(v_init_override)
            if method == "cos":
                return OffsetCalibratedIFNeuron(_trained_threshold(name, act), v_init, presim=presim)
            return IFNeuron(_trained_threshold(name, act), v_init)
        label = "qcfs θ=λ v0=φθ" if method == "qcfs" else f"qcfs+cos ρ={presim} (T excludes the ρ pre-simulation steps)"
        return make, label
    if method == "msat":
        from snnx.convert.msat import msat_neuron_factory

        return msat_neuron_factory(stats=stats, convert=convert)
    raise ConfigError(f"conversion method '{method}' is not available yet.", key="convert",
                      fix=f"Use one of: {', '.join(METHODS)}.")


def convert(ann: nn.Module, *, method: str, stats: Mapping | None, convert: Mapping) -> tuple[fx.GraphModule, str]:
    """The SNN for ``ann``: a graph module with neurons in place of activations."""
    if method == "allint":  # its own graph surgery: BN sets thresholds instead of being folded
        from snnx.convert.allint import convert_allint

        return convert_allint(ann, convert=convert)
    make_neuron, label = neuron_factory(method, stats=stats, convert=convert)
    gm = prepare(ann, maxpool=convert.get("maxpool", "error"))
    return swap_activations(gm, make_neuron), label
