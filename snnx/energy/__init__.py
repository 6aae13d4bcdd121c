"""Energy models, by name (``energy=<name>``): each prices a network's measured counts.

An entry's builder takes its declared parameters and returns an object with
``price(counts, T, qann_bits) -> Priced`` (:mod:`snnx.energy.counts`): the SNN's energy per image up to
T, the ANN's (one dense pass, its own activation precision) and the equal-bit quantised ANN's (the
same network with activations of ``qann_bits`` bits), each the sum of per-layer rows. Every constant is
a parameter with its source in its doc and in ``conf/energy/<name>.yaml``. Nothing here imports torch.
"""

from __future__ import annotations

import math

from snnx.registry import Registry

# Every module of snnx.energy is imported when the registry is first read: a new model is one new module.
ENERGY = Registry("energy model", group="energy", package="snnx.energy")


def qann_bits(T: int, levels: int | None = None) -> int:
    """Activation bits of the QANN a T-step rate-coded SNN is compared with: ⌈log2(T+1)⌉ (T + 1 spike
    counts, 0 … T), or those of an ANN that has its own ``levels`` quantisation steps (QCFS's L: ⌈log2(L+1)⌉)."""
    n = int(levels) if levels is not None else int(T)
    return max(1, math.ceil(math.log2(n + 1)))


def build(params: dict):
    """The energy model ``params`` (``{"name": …, <its keys>}``) describe, its undeclared keys at their
    declared defaults (the params dataclass holds every constant once; the builders take them all)."""
    checked = ENERGY.check(params)
    return ENERGY.get(checked["name"]).build(**{k: v for k, v in checked.items() if k != "name"})


__all__ = ["ENERGY", "build", "qann_bits"]
