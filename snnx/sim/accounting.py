"""Operation and spike accounting, and per-layer conversion diagnostics.

SOPs (synaptic operations, accumulate-only) are counted at the consumer: a
conv/linear fed by spikes does one addition per nonzero input element per
output it reaches (its fan-out, exact for kernels, stride and padding,
including borders). Layers fed by real values (the first layer under direct
encoding) cost multiply-accumulates, counted once per image because the
engine computes them once. Energy: E_AC = 0.9 pJ, E_MAC = 4.6 pJ (45 nm).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

E_AC_PJ = 0.9
E_MAC_PJ = 4.6


def energy_mj(sops: float, macs: float) -> float:
    return (E_AC_PJ * sops + E_MAC_PJ * macs) * 1e-9


def fanout_map(layer: nn.Module, input_shape: Sequence[int], dtype=torch.float64) -> torch.Tensor:
    """How many outputs each input element of one sample reaches (d Σ out / d in with unit weights)."""
    with torch.enable_grad():  # the simulator runs under no_grad
        return _fanout_map(layer, input_shape, dtype)


def _fanout_map(layer: nn.Module, input_shape: Sequence[int], dtype) -> torch.Tensor:
    x = torch.ones(1, *input_shape, dtype=dtype, requires_grad=True)
    if isinstance(layer, nn.Conv2d):
        weight = torch.ones_like(layer.weight, dtype=dtype)
        out = F.conv2d(x, weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)
    elif isinstance(layer, nn.Linear):
        out = F.linear(x, torch.ones_like(layer.weight, dtype=dtype))
    else:
        raise TypeError(type(layer))
    out.sum().backward()
    return x.grad[0].detach()


def ann_macs(model: nn.Module, sample: torch.Tensor) -> float:
    """MACs of one ANN forward on one image (torch.utils.flop_counter; 2 FLOPs per MAC)."""
    model = model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(sample[:1])
    return counter.get_total_flops() / 2.0


class SynapseCounter:
    """Forward pre-hook on a conv/linear layer: per-step SOPs (spike-fed) or MACs (real-fed)."""

    def __init__(self, layer: nn.Module, spike_fed: bool):
        self.layer = layer
        self.spike_fed = spike_fed
        self.fanout: torch.Tensor | None = None
        self.steps = 1
        self.per_step: list[torch.Tensor] = []  # SOPs summed over the batch, one entry per step
        self.macs_per_image = 0.0
        self.handle = layer.register_forward_pre_hook(self)

    def __call__(self, _module, inputs):
        x = inputs[0]
        if self.fanout is None or self.fanout.shape != x.shape[1:]:
            self.fanout = fanout_map(self.layer, x.shape[1:]).to(x.device, x.dtype)
        if not self.spike_fed:
            self.macs_per_image = float(self.fanout.sum())
            return
        # Downstream of a neuron every tensor is time-folded: [steps·B, …].
        events = (x != 0).to(x.dtype) * self.fanout
        self.per_step.append(events.reshape(self.steps, -1).sum(1))

    def remove(self):
        self.handle.remove()


class SpikeCounter:
    """Forward hook on a neuron: spikes per step (positive and negative), summed over the batch."""

    def __init__(self, name: str, neuron: nn.Module):
        self.name = name
        self.neuron = neuron
        self.positive: list[torch.Tensor] = []
        self.negative: list[torch.Tensor] = []
        self.neurons_per_sample = 0
        self.handle = neuron.register_forward_hook(self)

    def __call__(self, module, _inputs, out):
        steps = module.time_steps
        seq = out.reshape(steps, -1)
        self.neurons_per_sample = out[0].numel()
        self.positive.append((seq > 0).sum(1))
        self.negative.append((seq < 0).sum(1))

    def remove(self):
        self.handle.remove()


class LayerProbe:
    """Per-layer conversion diagnostics at the read-out steps (ALGORITHMS.md, layers.csv).

    Keeps, per image and neuron, the summed input current, the summed output,
    and whether it has spiked; at each read-out T it adds to running sums the
    firing rate, clipping and flooring errors, the SIN ratio against the ANN's
    pre-activation and the error against the ANN's activation.
    """

    def __init__(self, name: str, neuron: nn.Module):
        self.name = name
        self.neuron = neuron
        self.reads: list[int] = []
        self.ann_pre: torch.Tensor | None = None
        self.ann_out: torch.Tensor | None = None
        self.sums: dict[int, dict[str, float]] = {}
        self._reset_batch()
        self.handle = neuron.register_forward_hook(self)

    def _reset_batch(self):
        self.t = 0
        self.in_sum = self.out_sum = self.spiked = None
        self.spike_count = None

    def start_batch(self, reads: list[int], ann_pre: torch.Tensor, ann_out: torch.Tensor):
        self.reads = reads
        self.ann_pre, self.ann_out = ann_pre, ann_out
        self._reset_batch()

    def __call__(self, module, inputs, out):
        x_seq = module.unfold(inputs[0])
        o_seq = out.view(x_seq.shape)
        if self.in_sum is None:
            self.in_sum = torch.zeros_like(x_seq[0])
            self.out_sum = torch.zeros_like(x_seq[0])
            self.spiked = torch.zeros_like(x_seq[0], dtype=torch.bool)
            self.spike_count = torch.zeros((), dtype=torch.float64, device=x_seq.device)
        for s in range(x_seq.shape[0]):
            self.in_sum += x_seq[s].to(self.in_sum.dtype)
            self.out_sum += o_seq[s]
            fired = o_seq[s] != 0
            self.spiked |= fired
            self.spike_count += fired.sum()
            self.t += 1
            if self.t in self.reads:
                self._record(self.t, module)

    def _record(self, T: int, module):
        from snnx.neurons import broadcast_channels

        theta = broadcast_channels(module.threshold, self.in_sum)
        # Signed all-integer neurons emit ±1 standing for `unit` (2^−k) of activation.
        z_bar = self.in_sum / T
        phi = self.out_sum * getattr(module, "unit", 1.0) / T
        rate_coded = not hasattr(module, "unit")  # θ·s neurons: clip/floor errors are defined
        inside = (z_bar > 0) & (z_bar <= theta)
        silent = self.ann_pre <= 0
        acc = self.sums.setdefault(T, {k: 0.0 for k in (
            "spikes", "neurons", "clip_sum", "floor_sum", "floor_n", "sin_spiked", "sin_n", "err_sum")})
        acc["spikes"] += float(self.spike_count)
        acc["neurons"] += self.in_sum.numel()
        if rate_coded:
            acc["clip_sum"] += float((z_bar - theta).clamp_min(0).sum())
            acc["floor_sum"] += float(((z_bar - phi).abs() * inside).sum())
            acc["floor_n"] += float(inside.sum())
        else:
            acc["clip_sum"] = acc["floor_sum"] = float("nan")
        acc["sin_spiked"] += float((self.spiked & silent).sum())
        acc["sin_n"] += float(silent.sum())
        acc["err_sum"] += float((phi - self.ann_out).abs().sum())

    def rows(self) -> list[dict]:
        out = []
        for T, a in sorted(self.sums.items()):
            n = max(a["neurons"], 1)
            out.append({"T": T, "layer": self.name, "firing_rate": a["spikes"] / (n * T),
                        "sin_ratio": a["sin_spiked"] / a["sin_n"] if a["sin_n"] else float("nan"),
                        "clip_error": a["clip_sum"] / n,
                        "floor_error": a["floor_sum"] / a["floor_n"] if a["floor_n"] else a["floor_sum"] * 0.0,
                        "ann_error": a["err_sum"] / n})
        return out

    def remove(self):
        self.handle.remove()
