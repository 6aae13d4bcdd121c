"""``convert=msat``: IF neurons with MSAT's multi-stage adaptive threshold and spike confidence
(He et al., §4.2–4.3, Eqs. 15–18) on a calibrated ANN, usually ``act=relu``.

θ_max per layer comes from the calibration statistics named by ``convert.base`` (``maxnorm`` → the layer
max, ``pnorm`` → the ``convert.percentile``-th percentile) over the first ``convert.calib_size`` training
images (He et al. Alg. 1 l. 1–7: V_th^l ← max over the samples of the layer's activations; the authors'
released code takes it over one batch of training images). The graph is prepared as for every calibrated
method (BN folded, MaxPool by ``convert.maxpool``). Each activation site gets an
:class:`~snnx.neurons.MSATNeuron` with the ``convert.*`` hyperparameters; its spike-confidence RNG is seeded
from the run's seed and the site's index in forward order: ``seed·10007 + index``.

``convert.confidence`` (Eq. 18, Alg. 1 "spike confidence list C") is one probability for every site, or a
list with one per site in forward order; ``convert.confidence_last`` (null: as the others) overrides the last
activation site's (the one before the readout) whatever the network's depth.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

from snnx.convert.methods import METHODS, IFParams, any_act
from snnx.convert.methods._build import require_stats, start, stat_threshold, swap
from snnx.errors import ConfigError
from snnx.registry import param


# θ_max of each base: the calibration statistic it reads.
BASES = {"maxnorm": "max", "pnorm": "percentile"}


@dataclass
class MSATParams(IFParams):
    name: str = param("msat", "the conversion method")
    base: str = param("maxnorm", "θ_max from the layer maximum (maxnorm) or the convert.percentile-th percentile "
                      "(pnorm), over convert.calib_size training images", choices=tuple(BASES))
    percentile: float = param(99.99, "p of base=pnorm", gt=0, le=100, fix="Use e.g. convert.percentile=99.99.")
    use_dtt: bool = param(True, "the dynamic tracking threshold term (Eq. 16)")
    use_det: bool = param(True, "the dynamic evoked threshold term (Eq. 17)")
    alpha: float = param(0.03, "α of Eq. 16 (Table 1, VGG16: 0.03)")
    k_a: float = param(1.0, "k_a of Eq. 16 (Table 1)")
    k_i: float = param(1.0, "k_i of Eq. 16 (Table 1), nonzero")
    C: float = param(5.0, "C of Eq. 17 (Table 1), nonzero")
    tau_mp: float = param(1.0, "τ_mp: DTT weight of Eq. 15 (Table 1)")
    tau_rd: float = param(1.0, "τ_rd: DET weight of Eqs. 15 and 17 (Table 1)")
    v_t: Optional[float] = param(None, "V_T of Eq. 16; null = the units' default: −θ_max raw, −1 normalised")
    units: str = param("normalised", "normalised: u and z divided by θ_max, V_T = −1 (Table 1, released code) | "
                       "raw: as threshold balancing leaves them (§3.1)", choices=("normalised", "raw"))
    det_tau: str = param("squared", "DET weight: squared (τ_rd of Eq. 15 × τ_rd of Eq. 17) | once",
                         choices=("squared", "once"))
    fixed_fraction: Optional[float] = param(None, "ablation: θ = f·θ_max at every step (Fig. 3's 0.7·θ); null = off",
                                            gt=0, fix="Use e.g. convert.fixed_fraction=0.7, or null.")
    confidence: Any = param(1.0, "spike confidence (Eq. 18): the keep probability, one value or a per-layer list")
    confidence_last: Optional[float] = param(None, "the last IF layer's keep probability; null = as confidence",
                                             ge=0, le=1, fix="Use e.g. convert.confidence_last=0.683, or null.")
    confidence_steps: int = param(16, "spike confidence applies for t < this (Alg. 1 'early timestep'; 16: "
                                  "released code)", ge=0, integer=True, fix="Use e.g. convert.confidence_steps=16.")
    confidence_reset: bool = param(False, "a dropped spike still resets (released code) vs not (Eq. 18)")


def check(values: dict, prefix: str) -> None:
    for key in ("alpha", "k_a", "k_i", "C", "tau_mp", "tau_rd", "v_t"):
        value = values[key]
        if value is None and key == "v_t":
            continue
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(float(value))
        if ok and key in ("k_i", "C"):
            ok = float(value) != 0
        if not ok:
            what = "a nonzero finite number" if key in ("k_i", "C") else "a finite number"
            raise ConfigError(f"must be {what}, got {value!r}.", key=f"{prefix}.{key}", fix=f"Set {prefix}.{key} to {what}.")
    check_confidence(values["confidence"], values["confidence_last"])


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


def check_confidence(value, last) -> None:
    """convert.confidence (a probability or a per-layer list) and convert.confidence_last, each in [0, 1];
    a list already names the last layer, so it takes no confidence_last. Its length is checked against the
    network's activation layers where the network is known (validate, conversion)."""
    if isinstance(value, Mapping):
        raise ConfigError(f"must be a probability or a list of them, got the mapping {dict(value)!r}.",
                          key="convert.confidence",
                          fix="Use e.g. convert.confidence=1.0 with convert.confidence_last=0.683, or a per-layer list.")
    probs = list(value) if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) else [value]
    confidences(probs, len(probs))
    if last is not None:
        confidences(1.0, 1, last)
    if probs is not None and isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        confidences(value, len(value), last)


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
    """The MSATNeuron keyword arguments shared by every site (not θ_max, confidence, seed), from checked params."""
    keys = ("use_dtt", "use_det", "alpha", "k_a", "k_i", "C", "tau_mp", "tau_rd", "v_t", "units", "det_tau",
            "fixed_fraction", "confidence_steps", "confidence_reset")
    settings = {key: convert[key] for key in keys}
    for key in ("alpha", "k_a", "k_i", "C", "tau_mp", "tau_rd"):
        settings[key] = float(settings[key])
    for key in ("v_t", "fixed_fraction"):
        settings[key] = None if settings[key] is None else float(settings[key])
    return settings


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
    stats = require_stats(stats, "msat")
    base = convert["base"]
    settings = msat_settings(convert)
    sites = list(stats)  # calibration records the sites in forward order
    probs = confidences(convert.get("confidence", 1.0), len(sites), convert.get("confidence_last"))
    seed = convert.get("seed")
    seed = 0 if seed is None else int(seed)
    v_init = start(convert, 0.0)

    from snnx.neurons import MSATNeuron  # torch loads when the SNN is built

    def make(name: str, act) -> MSATNeuron:
        theta = stat_threshold(stats, name, BASES[base])
        index = sites.index(name)
        return MSATNeuron(theta, v_init, confidence=probs[index], seed=seed * 10007 + index, **settings)

    return make, msat_label(convert, settings, probs)


@METHODS.register("msat", params=MSATParams, doc="MSAT: multi-stage adaptive thresholds + spike confidence (He et al.)",
                  check=check, needs_stats=True, accepts=any_act, accepts_doc="any ANN",
                  per_site=("confidence",), per_site_fix=CONFIDENCE_FIX)
def build(ann, *, stats, params):
    make, label = msat_neuron_factory(stats=stats, convert=params)
    return swap(ann, params, make), label
