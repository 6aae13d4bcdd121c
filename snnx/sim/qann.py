"""The equal-bit quantised ANN a rate-coded SNN is compared with, and its accuracy.

A T-step IF neuron of threshold θ passes one of T + 1 spike counts, an activation in {0, θ/T, …, θ}:
the ANN of the same weights whose activations take 2^b levels, b = ⌈log2(T+1)⌉ bits, is the baseline of
equal information (snnx.energy.qann_bits). Its activation at a spiking site is uniform quantisation to
n = 2^b − 1 steps of [0, θ] with θ the site's SNN threshold (per layer or channel), rounded to nearest:
θ/n · clamp(round(x·n/θ), 0, n). ANNs that are quantised already (QCFS's L levels) are their own QANN.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from snnx.neurons import Neuron
from snnx.neurons.base import broadcast_channels


def site_thresholds(ann: nn.Module, snn: nn.Module) -> dict[str, torch.Tensor] | None:
    """ANN activation module → its SNN threshold θ; None unless every spiking site is a rate-coded (θ·s)
    neuron whose name is a module of ``ann`` (snnx's own models; a traced model's functional sites are not)."""
    modules = dict(ann.named_modules())
    out = {}
    for name, neuron in snn.named_modules():
        if isinstance(neuron, Neuron):
            if not neuron.rate_coded or name not in modules:
                return None
            out[name] = neuron.threshold.detach()
    return out or None


def _quantiser(theta: torch.Tensor, steps: int):
    def hook(_module, inputs, _output):
        x = inputs[0]
        th = broadcast_channels(theta.to(x.device, x.dtype), x)
        return torch.clamp(torch.round(x * steps / th), 0, steps) * th / steps
    return hook


@torch.no_grad()
def qann_accuracy(ann: nn.Module, thresholds: dict[str, torch.Tensor], bits: Iterable[int],
                  batches: Iterable, device: torch.device) -> dict[int, float]:
    """Top-1 accuracy (%) of ``ann`` with b-bit activations at the ``thresholds`` sites, for each b
    (``batches`` is iterated once per b: a DataLoader or a list)."""
    modules = dict(ann.named_modules())
    ann = ann.eval()
    out = {}
    for b in sorted(set(int(b) for b in bits)):
        steps = 2 ** b - 1
        handles = [modules[name].register_forward_hook(_quantiser(theta, steps)) for name, theta in thresholds.items()]
        correct = total = 0
        try:
            for images, labels in batches:
                logits = ann(images.to(device))
                correct += int((logits.argmax(1) == labels.to(device)).sum())
                total += int(labels.shape[0])
        finally:
            for h in handles:
                h.remove()
        out[b] = 100.0 * correct / max(total, 1)
    return out
