"""The ANN activations, by name (``act=<name>``): entries in :mod:`snnx.activations.kinds`, one module each.

An entry's builder makes the module for one activation site:
``build(params, num_channels, *, first) -> nn.Module`` (``first``: the network's first site, the
encoding layer). Its traits say what the rest of snnx may do with the trained ANN:

* ``trains_threshold`` — the activation has a trained threshold λ (the QCFS family): convert=qcfs/cos
  read it, train.threshold_lr_scale scales its learning rate, and two-stage training applies.
* ``grad_window`` — the STE window ``act.grad_window=auto`` stands for.
* ``ceiling`` — a fixed ceiling y_th (the threshold ReLU) that Deng & Gu's T/TS conversion takes as θ.
* ``integer_levels`` — a quantiser on a 2^−k grid (the all-integer method's ANN), trained with ternary
  weights when train.weight_quant=auto.
* ``channelwise`` — (channelwise, softplus) of the stage-2 swap of two-stage training, or None: no swap.
"""

from __future__ import annotations

from snnx.registry import Registry

ACTIVATIONS = Registry("activation", group="act", package="snnx.activations.kinds")

# The STE gradient windows of the QCFS family (Yang et al. 2025, Eqs. 19–20: shifted; QCFS's [0, λ]: clip).
GRAD_WINDOWS = ("shifted", "clip")


def resolve_weight_quant(act_name: str, weight_quant: str) -> str:
    """train.weight_quant=auto → ternary for an activation with integer levels (the all-integer method's ANN,
    Zou et al. 2024, §3.2), none otherwise."""
    if weight_quant != "auto":
        return weight_quant
    return "ternary" if ACTIVATIONS.get(act_name).trait("integer_levels") else "none"
