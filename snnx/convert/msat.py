"""``convert=msat``: MSAT neurons (He et al.) on a calibrated ANN, usually ``act=relu``.

θ_max per layer comes from the calibration statistics named by
``convert.base`` (``maxnorm`` → the layer max, ``pnorm`` → the
``convert.percentile``-th percentile); the graph is prepared as for every
calibrated method (BN folded, MaxPool by ``convert.maxpool``). Each
activation site gets an :class:`~snnx.neurons.MSATNeuron` with the
``convert.*`` hyperparameters; its spike-confidence RNG is seeded from
``convert.seed`` (the run's seed, when the pipeline passes it; else 0) and the
site's index in forward order: ``seed·10007 + index``.

Config keys read: base, percentile, v_init, use_dtt, use_det, alpha, k_a, k_i,
C, tau_mp, tau_rd, v_t, confidence, confidence_steps, fixed_fraction
(optional; the "fixed f·θ_max" ablation), seed (optional).
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import torch
from torch import fx, nn

from snnx.convert.graph import prepare, swap_activations
from snnx.errors import ConfigError
from snnx.neurons import MSATNeuron

BASES = {"maxnorm": "max", "pnorm": "percentile"}
MIN_THRESHOLD = 1e-6  # as for the other calibrated methods: a never-active unit never fires


def _number(convert: Mapping, key: str, default, *, positive: bool = False, nonzero: bool = False) -> float:
    value = convert.get(key, default)
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(float(value))
    if ok and positive:
        ok = float(value) > 0
    if ok and nonzero:
        ok = float(value) != 0
    if not ok:
        what = "a finite number > 0" if positive else "a nonzero finite number" if nonzero else "a finite number"
        raise ConfigError(f"must be {what}, got {value!r}.", key=f"convert.{key}", fix=f"Set convert.{key} to {what}.")
    return float(value)


def _flag(convert: Mapping, key: str, default: bool) -> bool:
    value = convert.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"must be true or false, got {value!r}.", key=f"convert.{key}",
                          fix=f"Set convert.{key}=true or false.")
    return value


def confidences(value, num_sites: int) -> list[float]:
    """Per-site keep probabilities from one value or a per-layer list; each must lie in [0, 1]."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        values = [value] * num_sites
    else:
        values = list(value)
        if len(values) != num_sites:
            raise ConfigError(f"has {len(values)} entries but the network has {num_sites} activation layers.",
                              key="convert.confidence", fix=f"Give one probability, or a list of {num_sites}.")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
            raise ConfigError(f"spike-confidence probabilities must lie in [0, 1], got {v!r}.", key="convert.confidence",
                              fix="Use probabilities in [0, 1] (1 keeps every spike: confidence off).")
        out.append(float(v))
    return out


def msat_settings(convert: Mapping) -> dict:
    """The validated MSATNeuron keyword arguments shared by every site (not θ_max, confidence, seed)."""
    fixed = convert.get("fixed_fraction")
    if fixed is not None:
        fixed = _number(convert, "fixed_fraction", None, positive=True)
    steps = convert.get("confidence_steps", 16)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ConfigError(f"must be an integer ≥ 0, got {steps!r}.", key="convert.confidence_steps",
                          fix="Set convert.confidence_steps=16 (paper).")
    return {"use_dtt": _flag(convert, "use_dtt", True), "use_det": _flag(convert, "use_det", True),
            "alpha": _number(convert, "alpha", 0.03), "k_a": _number(convert, "k_a", 1.0),
            "k_i": _number(convert, "k_i", 1.0, nonzero=True), "C": _number(convert, "C", 5.0, nonzero=True),
            "tau_mp": _number(convert, "tau_mp", 1.0), "tau_rd": _number(convert, "tau_rd", 1.0),
            "v_t": _number(convert, "v_t", -1.0), "fixed_fraction": fixed, "confidence_steps": steps}


def msat_label(convert: Mapping, settings: dict, probs: list[float]) -> str:
    base = convert.get("base", "maxnorm")
    base = f"pnorm p={convert.get('percentile')}" if base == "pnorm" else base
    if settings["fixed_fraction"] is not None:
        terms = f"fixed {settings['fixed_fraction']:g}·θ_max"
    elif settings["use_dtt"] or settings["use_det"]:
        terms = "+".join(t for t, on in (("DTT", settings["use_dtt"]), ("DET", settings["use_det"])) if on)
        terms += (f" α={settings['alpha']:g} k_a={settings['k_a']:g} k_i={settings['k_i']:g} C={settings['C']:g} "
                  f"τ_mp={settings['tau_mp']:g} τ_rd={settings['tau_rd']:g} V_T={settings['v_t']:g}")
    else:
        terms = "no adaptation (θ=θ_max)"
    sc = "SC off" if all(p == 1.0 for p in probs) else \
        f"SC c={'/'.join(f'{p:g}' for p in probs)} t<{settings['confidence_steps']}"
    return f"msat θ_max={base} {terms} {sc}"


def msat_neuron_factory(*, stats: Mapping | None, convert: Mapping) -> tuple[Callable, str]:
    """``make_neuron(name, activation)`` for ``convert=msat``, and the ``method`` label."""
    if stats is None:
        raise ConfigError("convert=msat needs calibration statistics.", key="convert",
                          fix="Run the calibrate stage first (snnx run does it).")
    base = convert.get("base", "maxnorm")
    if base not in BASES:
        raise ConfigError(f"unknown θ_max base {base!r}.", key="convert.base", fix="Use maxnorm or pnorm.")
    settings = msat_settings(convert)
    sites = list(stats)  # calibration records the sites in forward order
    probs = confidences(convert.get("confidence", 1.0), len(sites))
    seed = convert.get("seed")
    seed = 0 if seed is None else int(seed)
    v_init = convert.get("v_init")
    v_init = 0.0 if v_init is None else float(v_init)

    def make(name: str, act: nn.Module) -> MSATNeuron:
        if name not in stats:
            raise ConfigError(f"no calibration statistics for activation site '{name}'.", key="convert",
                              fix="Recalibrate: the calibration artifact does not match this model.")
        index = sites.index(name)
        theta = torch.as_tensor(stats[name][BASES[base]], dtype=torch.float32).clamp_min(MIN_THRESHOLD)
        return MSATNeuron(theta, v_init, confidence=probs[index], seed=seed * 10007 + index, **settings)

    return make, msat_label(convert, settings, probs)


def convert_msat(ann: nn.Module, *, stats: Mapping | None, convert: Mapping) -> tuple[fx.GraphModule, str]:
    """The MSAT SNN for ``ann`` (BN folded, MaxPool per ``convert.maxpool``)."""
    make, label = msat_neuron_factory(stats=stats, convert=convert)
    gm = prepare(ann, maxpool=convert.get("maxpool", "error"))
    return swap_activations(gm, make), label
