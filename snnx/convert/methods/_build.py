"""What the threshold-setting methods share: θ from calibration statistics or from the trained ANN,
and the graph surgery that puts one neuron at each activation site."""

from __future__ import annotations

from typing import Callable, Mapping

from snnx.activations.registry import ACTIVATIONS
from snnx.errors import ConfigError

# Smallest threshold given to a unit that never activated during calibration:
# it then never fires on non-positive input instead of firing every step.
MIN_THRESHOLD = 1e-6


def stat_threshold(stats: Mapping, name: str, which: str):
    """θ of site ``name`` from its calibration statistic ``which`` (max, percentile, channel_max)."""
    # torch loads only when the SNN is built: the method registry is read while composing a config
    import torch

    if name not in stats:
        raise ConfigError(f"no calibration statistics for activation site '{name}'.", key="convert",
                          fix="Recalibrate: the calibration artifact does not match this model.")
    return torch.as_tensor(stats[name][which], dtype=torch.float32).clamp_min(MIN_THRESHOLD)


def trained_threshold(name: str, act):
    """θ of site ``name``: the activation's own trained threshold (λ of the QCFS family)."""
    getter = getattr(act, "conversion_threshold", None)
    theta = getter() if getter is not None else None
    if theta is None:
        raise ConfigError(f"activation site '{name}' ({type(act).__name__}) has no trained threshold.",
                          key="convert / act",
                          fix=f"This conversion needs an ANN with trained thresholds: act="
                              f"{' / '.join(ACTIVATIONS.where(lambda e: bool(e.trait('trains_threshold'))))}.")
    return theta.detach().float().clone()


def require_stats(stats, method: str) -> Mapping:
    if stats is None:
        raise ConfigError(f"convert={method} needs calibration statistics.", key="convert",
                          fix="Run the calibrate stage first (snnx run does it).")
    return stats


def start(params: Mapping, default: float) -> float:
    """v0 as a fraction of θ: convert.v_init, else the method's own."""
    return default if params.get("v_init") is None else float(params["v_init"])


def swap(ann, params: Mapping, make_neuron: Callable):
    """``ann`` prepared (BN folded, MaxPool per convert.maxpool) with ``make_neuron(name, act)`` at each site."""
    # torch loads only when the SNN is built: the method registry is read while composing a config
    from snnx.convert.graph import prepare, swap_activations

    return swap_activations(prepare(ann, maxpool=params.get("maxpool", "error")), make_neuron)
