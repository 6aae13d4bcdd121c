"""``act=qcfs``: the quantisation-clip-floor-shift activation with one trained λ per layer (Bu et al.)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from snnx.activations.registry import ACTIVATIONS, GRAD_WINDOWS
from snnx.errors import ConfigError
from snnx.registry import param


@dataclass
class QCFSParams:
    name: str = param("qcfs", "the activation")
    L: Optional[int] = param(4, "quantisation steps", ge=1, integer=True, required=True,
                             fix="Set act.L to the number of quantisation steps, e.g. act.L=4.")
    init_threshold: float = param(8.0, "initial λ", gt=0, fix="Set act.init_threshold to the initial λ, e.g. 8.0.")
    shift: float = param(0.5, "the shift φ: output floor(x·L/λ + φ)·λ/L", ge=0, lt=1,
                         fix="Set act.shift=0.5 (QCFS) or 0 (plain floor).")
    grad_window: str = param("auto", "STE window: shifted (Yang et al. 2025, Eqs. 19–20: (−φλ/L, λ − φλ/L)), "
                             "clip ([0, λ]), auto (the activation's own)", choices=("auto",) + GRAD_WINDOWS)


def resolve_window(values: dict, prefix: str) -> None:
    """act.grad_window=auto → the entry's own window (in place)."""
    if values.get("grad_window") in (None, "auto"):
        values["grad_window"] = ACTIVATIONS.get(values["name"]).trait("grad_window")


# QCFS's reference code clamps before the floor: the [0, λ] window, which the other papers compare against.
@ACTIVATIONS.register("qcfs", params=QCFSParams, doc="QCFS, one trained threshold λ per layer",
                      check=resolve_window, trains_threshold=True, grad_window="clip", channelwise=None)
def build(params, num_channels: int, *, first: bool):
    # torch loads only when a model is built: the activation registry is read while composing a config
    from snnx.activations.modules import QCFS

    return QCFS(params["L"], params["init_threshold"], params["shift"], num_channels=num_channels,
                grad_window=params["grad_window"])


def check_flags(values: dict, prefix: str) -> None:
    """cqcfs / sqcfs fix (channelwise, softplus); csqcfs takes both flags."""
    resolve_window(values, prefix)
    entry = ACTIVATIONS.get(values["name"])
    fixed = entry.trait("channelwise")
    if entry.trait("flags_fixed"):
        for key, want in zip(("channelwise", "softplus"), fixed):
            if values[key] != want:
                raise ConfigError(f"act={entry.name} means {key}={str(want).lower()}, got {str(values[key]).lower()}.",
                                  key=f"{prefix}.{key}", fix=f"Drop act.{key}, or use act=csqcfs with "
                                  "act.channelwise/act.softplus for other ablations.")
