"""The simulation engine: multi-step, one pass per sweep, bounded memory.

Time is processed in chunks of ``chunk`` steps. Within a chunk, stateless
layers see time folded into the batch ([chunk·B, …]) and neurons loop over
the chunk's steps; membrane state carries over between chunks, so peak memory
depends on the chunk, not on T. With direct encoding the time-invariant
prefix (layers before the first neuron) runs once per batch. The network's
output is accumulated over time and read at every T of the sweep in one pass
(one pass per T only for neurons whose dynamics depend on T).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
from torch import fx, nn

from snnx.neurons import Neuron
from snnx.sim.accounting import LayerProbe, SpikeCounter, SynapseCounter, energy_mj
from snnx.sim.graph_split import spike_fed_layers, split_time_invariant


def auto_chunk(device: torch.device) -> int:
    # Measured (DESIGN.md): on CPU per-step updates beat folding chunks of time
    # into the batch (cache-bound); on GPUs larger chunks fill the device.
    return 1 if device.type == "cpu" else 16


@dataclass
class SimResult:
    time_steps: list[int]
    correct: dict[int, int]
    total: int
    spikes: dict[int, float]  # spikes summed over images and layers, up to T
    negative_spikes: dict[int, float]
    sops: dict[int, float]  # synaptic operations summed over images, up to T
    macs_per_image: float
    neurons_per_image: int
    passes: str
    layer_rows: list[dict] = field(default_factory=list)

    def accuracy(self, T: int) -> float:
        return 100.0 * self.correct[T] / max(self.total, 1)

    def per_image(self, T: int) -> dict:
        n = max(self.total, 1)
        sops = self.sops[T] / n
        return {"acc": self.accuracy(T),
                "spikes_per_neuron": self.spikes[T] / n / max(self.neurons_per_image, 1),
                "negative_spikes_per_neuron": self.negative_spikes[T] / n / max(self.neurons_per_image, 1),
                "sops": sops, "macs": self.macs_per_image,
                "energy_mj": energy_mj(sops, self.macs_per_image)}


class Simulator:
    def __init__(self, snn: fx.GraphModule, *, device: torch.device, chunk: int | str = "auto",
                 dtype: torch.dtype = torch.float32):
        self.device = device
        self.dtype = dtype
        self.snn = snn.to(device=device, dtype=dtype).eval()
        self.chunk = auto_chunk(device) if chunk == "auto" else int(chunk)
        self.prefix, self.body = split_time_invariant(self.snn)
        self.neurons = [(name, m) for name, m in self.snn.named_modules() if isinstance(m, Neuron)]
        if not self.neurons:
            raise ValueError("the network has no spiking neurons")

    def _set_steps(self, steps: int, batch: int, counters: Iterable[SynapseCounter]) -> None:
        for _, neuron in self.neurons:
            neuron.time_steps = steps
            neuron.batch_size = batch
        for counter in counters:
            counter.steps = steps

    def _reset(self) -> None:
        for _, neuron in self.neurons:
            neuron.reset_state()

    @torch.no_grad()
    def run(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], time_steps: Sequence[int], *,
            ann: nn.Module | None = None, record_layers: bool = False) -> SimResult:
        time_steps = sorted(set(int(t) for t in time_steps))
        per_T = any(getattr(n, "depends_on_T", False) for _, n in self.neurons)
        passes = [(T, [T]) for T in time_steps] if per_T else [(time_steps[-1], time_steps)]
        # Offset-spike calibration pre-simulates its first `presim` input steps:
        # the first chunk must hold them (even when T is smaller; reads stay at T).
        presim = max([getattr(n, "presim", 1) for _, n in self.neurons])

        spike_fed, real_fed = spike_fed_layers(self.snn)
        modules = dict(self.snn.named_modules())
        synapses = [SynapseCounter(modules[n], True) for n in spike_fed] + \
                   [SynapseCounter(modules[n], False) for n in real_fed]
        spikes = [SpikeCounter(name, n) for name, n in self.neurons]
        probes = [LayerProbe(name, n) for name, n in self.neurons] if record_layers and ann is not None else []
        ann_sites = {}
        if probes:
            ann = ann.to(self.device, self.dtype).eval()
            ann_modules = dict(ann.named_modules())
            ann_sites = {name: ann_modules[name] for name, _ in self.neurons if name in ann_modules}

        correct = {T: 0 for T in time_steps}
        spike_tot = {T: 0.0 for T in time_steps}
        neg_tot = {T: 0.0 for T in time_steps}
        sop_tot = {T: 0.0 for T in time_steps}
        total = 0
        try:
            for images, labels in batches:
                images = images.to(self.device, self.dtype)
                labels = labels.to(self.device)
                batch = images.shape[0]
                if probes:
                    ann_values = _ann_activations(ann, ann_sites, images)
                for horizon, reads in passes:
                    self._reset()
                    for _, neuron in self.neurons:
                        if hasattr(neuron, "set_horizon"):
                            neuron.set_horizon(horizon)
                    for probe in probes:
                        pre, out = ann_values.get(probe.name, (None, None))
                        if pre is not None:
                            probe.start_batch(reads, pre, out)
                    for counter in spikes:
                        counter.positive.clear(); counter.negative.clear()
                    for counter in synapses:
                        counter.per_step.clear()
                    self._set_steps(1, batch, synapses)
                    invariant = self.prefix(images)
                    accumulated = None
                    outputs = []
                    t = 0
                    steps_to_run = max(horizon, presim)
                    while t < steps_to_run:
                        steps = min(max(self.chunk, presim) if t == 0 else self.chunk, steps_to_run - t)
                        self._set_steps(steps, batch, synapses)
                        out = self.body(*invariant)
                        out = out.view(steps, batch, -1)
                        cumulative = out.cumsum(0) if accumulated is None else accumulated + out.cumsum(0)
                        for s in range(steps):
                            if t + s + 1 in reads:
                                outputs.append((t + s + 1, cumulative[s]))
                        accumulated = cumulative[-1]
                        t += steps
                    for T, logits in outputs:
                        correct[T] += int((logits.argmax(1) == labels).sum())
                    pos = torch.cumsum(torch.stack([torch.cat(c.positive) for c in spikes]).sum(0).double(), 0)
                    neg = torch.cumsum(torch.stack([torch.cat(c.negative) for c in spikes]).sum(0).double(), 0)
                    if any(c.spike_fed for c in synapses):
                        sop = torch.cumsum(torch.stack([torch.cat(c.per_step) for c in synapses if c.spike_fed]).sum(0).double(), 0)
                    else:
                        sop = torch.zeros(steps_to_run, dtype=torch.float64)
                    for T in reads:
                        spike_tot[T] += float(pos[T - 1])
                        neg_tot[T] += float(neg[T - 1])
                        sop_tot[T] += float(sop[T - 1])
                total += batch
        finally:
            for hook in [*synapses, *spikes, *probes]:
                hook.remove()
        macs = sum(c.macs_per_image for c in synapses if not c.spike_fed)
        neurons_per_image = sum(c.neurons_per_sample for c in spikes)
        layer_rows = [row for probe in probes for row in probe.rows()]
        return SimResult(time_steps=time_steps, correct=correct, total=total, spikes=spike_tot,
                         negative_spikes=neg_tot, sops=sop_tot, macs_per_image=macs,
                         neurons_per_image=neurons_per_image,
                         passes="one pass per T" if per_T else "one pass for the sweep",
                         layer_rows=layer_rows)


def _ann_activations(ann: nn.Module, sites: dict[str, nn.Module], images: torch.Tensor) -> dict:
    values = {}

    def hook_for(name):
        def hook(_m, inputs, out):
            values[name] = (inputs[0].detach(), out.detach())
        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in sites.items()]
    try:
        ann(images)
    finally:
        for h in handles:
            h.remove()
    return values
