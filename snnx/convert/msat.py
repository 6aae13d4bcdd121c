"""``convert=msat``: MSAT neurons (He et al.) on a calibrated ANN, usually ``act=relu``.

θ_max per layer comes from the calibration statistics named by
``convert.base`` (``maxnorm`` → the layer max, ``pnorm`` → the
``convert.percentile``-th percentile) over the first ``convert.calib_size``
training images (He et al. Alg. 1 l. 1–7: V_th^l ← max over the samples of
the layer's activations; the authors' released code takes it over one batch
of training images). The graph is prepared as for every calibrated method (BN
folded, MaxPool by ``convert.maxpool``). Each activation site gets an
:class:`~snnx.neurons.MSATNeuron` with the ``convert.*`` hyperparameters; its
spike-confidence RNG is seeded from ``convert.seed`` (the run's seed, when the
pipeline passes it; else 0) and the site's index in forward order:
``seed·10007 + index``.

``convert.confidence`` (Eq. 18, Alg. 1 "spike confidence list C") is one
probability for every site, or a list with one per site in forward order;
``convert.confidence_last`` (null: as the others) overrides the last
activation site's (the one before the readout) whatever the network's depth.

Config keys read: base, percentile, v_init, use_dtt, use_det, alpha, k_a, k_i,
C, tau_mp, tau_rd, v_t, units, det_tau, confidence, confidence_last,
confidence_steps, confidence_reset, fixed_fraction (optional; the "fixed f·θ_max" ablation),
seed (optional).
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


CONFIDENCE_FIX = ("Give one probability for every layer (e.g. convert.confidence=1.0: off), optionally with "
                  "convert.confidence_last for the last one, or a list with one probability per activation layer.")


def _probability(v, key: str = "convert.confidence") -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
        example = "convert.confidence=1.0 (every spike kept: off)" if key == "convert.confidence" else \
            "convert.confidence_last=0.683, or null (as convert.confidence)"
        raise ConfigError(f"spike-confidence probabilities must lie in [0, 1], got {v!r}.", key=key,
                          fix=f"Use probabilities in [0, 1], e.g. {example}.")
    return float(v)


def confidences(value, num_sites: int, last=None) -> list[float]:
    """Per-site keep probabilities: one value (``last``, if given, for the last site) or a per-site list."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        out = [_probability(value)] * num_sites
        if last is not None and num_sites:
            out[-1] = _probability(last, "convert.confidence_last")
        return out
    values = list(value)
    if last is not None:
        raise ConfigError("is set, but convert.confidence is already a per-layer list (which names the last layer too).",
                          key="convert.confidence_last",
                          fix="Use convert.confidence_last=null with a list, or one convert.confidence value.")
    if len(values) != num_sites:
        raise ConfigError(f"has {len(values)} entries but the network has {num_sites} activation layers.",
                          key="convert.confidence", fix=CONFIDENCE_FIX)
    return [_probability(v) for v in values]


def _compact(probs: list[float]) -> str:
    """Run-length form of the per-site probabilities for the label: 1×14/0.683."""
    runs: list[list] = []
    for p in probs:
        if runs and runs[-1][0] == p:
            runs[-1][1] += 1
        else:
            runs.append([p, 1])
    return "/".join(f"{p:g}×{n}" if n > 1 else f"{p:g}" for p, n in runs)


def msat_settings(convert: Mapping) -> dict:
    """The validated MSATNeuron keyword arguments shared by every site (not θ_max, confidence, seed)."""
    fixed = convert.get("fixed_fraction")
    if fixed is not None:
        fixed = _number(convert, "fixed_fraction", None, positive=True)
    steps = convert.get("confidence_steps", 16)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ConfigError(f"must be an integer ≥ 0, got {steps!r}.", key="convert.confidence_steps",
                          fix="Set convert.confidence_steps=16 (paper).")
    units = convert.get("units", "normalised")
    if units not in MSATNeuron.UNITS:
        raise ConfigError(f"unknown value {units!r}.", key="convert.units",
                          fix="Use convert.units=normalised (u and z divided by θ_max: He et al. Table 1, the "
                              "authors' released code) or raw (§3.1, threshold balancing).")
    det_tau = convert.get("det_tau", "squared")
    if det_tau not in MSATNeuron.DET_TAU:
        raise ConfigError(f"unknown value {det_tau!r}.", key="convert.det_tau",
                          fix="Use convert.det_tau=squared (Eq. 15 × Eq. 17) or once (τ_rd·exp(−z/C)).")
    v_t = convert.get("v_t")
    return {"use_dtt": _flag(convert, "use_dtt", True), "use_det": _flag(convert, "use_det", True),
            "alpha": _number(convert, "alpha", 0.03), "k_a": _number(convert, "k_a", 1.0),
            "k_i": _number(convert, "k_i", 1.0, nonzero=True), "C": _number(convert, "C", 5.0, nonzero=True),
            "tau_mp": _number(convert, "tau_mp", 1.0), "tau_rd": _number(convert, "tau_rd", 1.0),
            "v_t": None if v_t is None else _number(convert, "v_t", None), "units": units, "det_tau": det_tau,
            "fixed_fraction": fixed, "confidence_steps": steps,
            "confidence_reset": _flag(convert, "confidence_reset", False)}


def msat_label(convert: Mapping, settings: dict, probs: list[float]) -> str:
    base = convert.get("base", "maxnorm")
    base = f"pnorm p={convert.get('percentile')}" if base == "pnorm" else base
    if settings["fixed_fraction"] is not None:
        terms = f"fixed {settings['fixed_fraction']:g}·θ_max"
    elif settings["use_dtt"] or settings["use_det"]:
        terms = "+".join(t for t, on in (("DTT", settings["use_dtt"]), ("DET", settings["use_det"])) if on)
        v_t = settings["v_t"]
        v_t = ("−θ_max" if settings["units"] == "raw" else "−1") if v_t is None else f"{v_t:g}"
        tau_rd = f"τ_rd={settings['tau_rd']:g}" + ("²" if settings["det_tau"] == "squared" else "")
        terms += (f" α={settings['alpha']:g} k_a={settings['k_a']:g} k_i={settings['k_i']:g} C={settings['C']:g} "
                  f"τ_mp={settings['tau_mp']:g} {tau_rd} V_T={v_t} {settings['units']}")
    else:
        terms = "no adaptation (θ=θ_max)"
    sc = "SC off" if all(p == 1.0 for p in probs) else \
        f"SC c={_compact(probs)} t<{settings['confidence_steps']}" + \
        (" reset-then-drop" if settings["confidence_reset"] else "")
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
    probs = confidences(convert.get("confidence", 1.0), len(sites), convert.get("confidence_last"))
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
