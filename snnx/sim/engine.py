"""The simulation engine: multi-step, one pass per sweep, bounded memory.

Time is processed in chunks of ``chunk`` steps. Within a chunk, stateless
layers see time folded into the batch ([chunk·B, …]) and neurons loop over
the chunk's steps; membrane state carries over between chunks, so peak memory
depends on the chunk, not on T. With direct encoding the time-invariant
prefix (layers before the first neuron) runs once per batch. The network's
output is accumulated over time and read at every T of the sweep in one pass
(one pass per T only for neurons whose dynamics depend on T).

Poisson (rate) encoding, ``encoding="poisson"``: at every step each input
pixel spikes with probability equal to its intensity in [0, 1] (the dataset
normalisation is undone with ``mean``/``std``, then the 0/1 spike image is
normalised again the same way, so its expectation is the image the ANN was
trained on). The first layer is then no longer time-invariant: the whole
graph runs on time-folded inputs, and the first layer's synapses cost SOPs
(one per input spike and output reached), not MACs. Draws come from a
generator seeded per (seed, batch index, step): a run is reproducible, and
the same whatever the chunk size or the sweep.

Accounting (spikes, SOPs, MACs) is always on: users pay for it, so it is
written to cost a few vectorised passes per layer and chunk (see
``accounting``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch
from torch import fx, nn

from snnx.energy.counts import NetworkCounts, NeuronCounts, SynapseCounts
from snnx.finite import check_batch
from snnx.neurons import BACKENDS, Neuron
from snnx.neurons import base as neuron_base
from snnx.neurons.base import memory_format_of
from snnx.sim.accounting import LayerProbe, SpikeCounter, SynapseCounter, energy_mj
from snnx.sim.graph_split import INPUT, spike_fed_layers, split_time_invariant, synapse_sources

ENCODINGS = ("direct", "poisson")


def auto_chunk(device: torch.device, threads: int | None = None) -> int:
    """Time steps per chunk for ``sim.chunk=auto``.

    GPU: 16 (folding time into the batch fills the device). CPU: small chunks,
    because the folded tensors soon outgrow the caches; with several threads
    every elementwise op also pays a fork/join, which a larger chunk spreads
    over more steps. Hence 2 for one thread, 4 for more (README, "Simulation").
    """
    if device.type != "cpu":
        return 16
    threads = torch.get_num_threads() if threads is None else threads
    return 2 if threads <= 1 else 4


@dataclass
class SimResult:
    time_steps: list[int]
    correct: dict[int, int]
    total: int
    spikes: dict[int, float]  # spikes summed over images and layers, up to T
    negative_spikes: dict[int, float]
    sops: dict[int, float]  # synaptic operations summed over images, up to T
    macs_per_image: float  # MACs computed once per image (real-valued first layer, direct encoding)
    neurons_per_image: int
    passes: str
    layer_rows: list[dict] = field(default_factory=list)
    encoding: str = "direct"
    macs_per_step: float = 0.0  # MACs per image and step (real-valued layers that run every step)
    # The first neuron layer's share of spikes / negative_spikes / neurons_per_image (the input layer, which
    # Zou et al. 2024, §4.4 leaves out of its spike counts; snnx.sim.accounting.hidden_activity)
    input_spikes: dict[int, float] = field(default_factory=dict)
    input_negative_spikes: dict[int, float] = field(default_factory=dict)
    input_neurons_per_image: int = 0
    # keep_outputs=True: the network's output accumulated up to T, divided by T, per image ([N, …], CPU)
    outputs: dict[int, torch.Tensor] = field(default_factory=dict)
    # Per layer, per image: what an energy model prices (snnx.energy.counts.NetworkCounts; None without
    # accounting)
    layer_counts: object = None

    def accuracy(self, T: int) -> float:
        return 100.0 * self.correct[T] / max(self.total, 1)

    def macs(self, T: int) -> float:
        return self.macs_per_image + self.macs_per_step * T

    def per_image(self, T: int) -> dict:
        n = max(self.total, 1)
        sops = self.sops[T] / n
        macs = self.macs(T)
        return {"acc": self.accuracy(T),
                "spikes_per_neuron": self.spikes[T] / n / max(self.neurons_per_image, 1),
                "negative_spikes_per_neuron": self.negative_spikes[T] / n / max(self.neurons_per_image, 1),
                "sops": sops, "macs": macs,
                "energy_mj": energy_mj(sops, macs)}


class PoissonEncoder:
    """Rate coding of one batch: 0/1 spike images, normalised like the data set.

    ``images`` are normalised with ``mean``/``std`` (per channel; None: the
    images already are intensities in [0, 1]). Step t's spikes are
    ``rand < intensity`` with a generator seeded from (seed, batch, t).
    """

    def __init__(self, images: torch.Tensor, *, mean: Sequence[float] | None, std: Sequence[float] | None,
                 seed: int, batch_index: int):
        if (mean is None) != (std is None):
            raise ValueError("Poisson encoding needs both mean and std (or neither, for images in [0, 1])")
        shape = (1, -1) + (1,) * (images.dim() - 2)
        if mean is not None:
            self.mean = torch.as_tensor(mean, dtype=images.dtype, device=images.device).view(shape)
            self.std = torch.as_tensor(std, dtype=images.dtype, device=images.device).view(shape)
            rates = images * self.std + self.mean
        else:
            self.mean = self.std = None
            rates = images
        self.rates = rates.clamp(0, 1)
        self.seed = int(seed)
        self.batch_index = int(batch_index)
        self.generator = neuron_base.device_generator(images.device)

    def _step_seed(self, t: int) -> int:
        return (((self.seed * 1_000_003) ^ (self.batch_index * 7_919)) * 1_000_033 + t) % (2**63 - 1)

    def chunk(self, t0: int, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(network input [steps·B, …], spike indicator [steps·B, …]) for steps t0 … t0+steps−1."""
        rates = self.rates
        spikes = torch.empty((steps * rates.shape[0], *rates.shape[1:]), dtype=rates.dtype, device=rates.device,
                             memory_format=memory_format_of(rates)).view(steps, *rates.shape)
        for s in range(steps):
            self.generator.manual_seed(self._step_seed(t0 + s))
            draws = torch.rand(rates.shape, generator=self.generator, dtype=rates.dtype, device=rates.device)
            torch.lt(draws, rates, out=spikes[s])
        spikes = spikes.flatten(0, 1)
        if self.mean is None:
            return spikes, spikes
        return (spikes - self.mean) / self.std, spikes


def auto_memory_format(snn: nn.Module, device: torch.device, dtype: torch.dtype) -> torch.memory_format:
    # oneDNN's float32 convs and average pooling are faster on channels-last tensors, and the neuron
    # updates do not care about the layout; float64 convs have no channels-last kernel.
    has_conv = any(isinstance(m, nn.Conv2d) for m in snn.modules())
    if device.type == "cpu" and dtype in (torch.float32, torch.bfloat16) and has_conv:
        return torch.channels_last
    return torch.contiguous_format


def check_compile_works(device: torch.device, dtype: torch.dtype) -> None:
    """Compile the fused IF step once on a tiny input; raise ValueError if torch.compile cannot run here."""
    v = torch.zeros(4, 3, device=device, dtype=dtype)
    out = torch.empty_like(v)
    try:
        neuron_base.fused_if_step(v, torch.ones_like(v), torch.tensor(0.5, device=device, dtype=dtype), None, None, out)
    except Exception as err:  # inductor needs a working C++ (CPU) or Triton (CUDA) toolchain
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ValueError(f"torch.compile does not work on this machine ({type(err).__name__}: {first})") from None


class Simulator:
    """Simulates a converted network (see the module doc).

    ``backend``: how the neurons run their chunks (:data:`snnx.neurons.BACKENDS`):
    ``"fused"`` (default: fused kernels and in-place multi-step updates where a
    neuron has them), ``"reference"`` (every neuron's reference step, one step
    at a time) or ``"compile"`` (the IF family's per-step updates through
    torch.compile, for layers of at least ``COMPILE_MIN_NUMEL`` neurons). All
    give the same results bit for bit. ``compile=True`` is ``backend="compile"``.

    ``memory_format``: "auto" (channels-last for float32 conv nets on CPU),
    "channels_last" or "contiguous"; it changes the speed, not the maths
    (though a different conv kernel can round the last bit differently).
    """

    def __init__(self, snn: fx.GraphModule, *, device: torch.device, chunk: int | str = "auto",
                 dtype: torch.dtype = torch.float32, encoding: str = "direct", seed: int = 0,
                 memory_format: str = "auto", compile: bool = False, backend: str = "fused"):
        self.device = device
        self.dtype = dtype
        self.snn = snn.to(device=device, dtype=dtype).eval()
        formats = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
        if memory_format == "auto":
            self.memory_format = auto_memory_format(self.snn, device, dtype)
        elif memory_format in formats:
            self.memory_format = formats[memory_format]
        else:
            raise ValueError(f"memory_format must be auto, channels_last or contiguous, got {memory_format!r}")
        if self.memory_format == torch.channels_last:
            self.snn = self.snn.to(memory_format=torch.channels_last)
        self.chunk = auto_chunk(device) if chunk == "auto" else int(chunk)
        if self.chunk < 1:
            raise ValueError(f"chunk must be >= 1 or 'auto', got {chunk!r}")
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.encoding = encoding
        self.seed = int(seed)
        self.prefix, self.body = split_time_invariant(self.snn)
        self.neurons = [(name, m) for name, m in self.snn.named_modules() if isinstance(m, Neuron)]
        if not self.neurons:
            raise ValueError("the network has no spiking neurons")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if compile and backend == "reference":
            raise ValueError("compile=True runs the compiled backend, not backend='reference'")
        self.backend = "compile" if compile else backend
        self.compile = self.backend == "compile"
        if self.compile:
            check_compile_works(device, dtype)
        self.spike_fed, self.real_fed = spike_fed_layers(self.snn)
        self.sources = synapse_sources(self.snn)
        self._fanouts: dict = {}  # fan-outs per (layer, input shape), kept across runs

    @property
    def per_T(self) -> bool:
        """Whether some neuron's dynamics depend on T, so that a sweep runs one pass per T."""
        return any(n.depends_on_T for _, n in self.neurons)

    def _set_steps(self, steps: int, batch: int, t0: int, counters: Iterable) -> None:
        for _, neuron in self.neurons:
            neuron.begin_chunk(steps, batch)
        for counter in counters:
            counter.steps = steps
            counter.t0 = t0

    def _synapse_counters(self, poisson: bool, spike_counters: list[SpikeCounter]) -> list[SynapseCounter]:
        modules = dict(self.snn.named_modules())
        by_name = {c.name: c for c in spike_counters}
        counters = []
        for name in self.spike_fed + self.real_fed:
            source = self.sources.get(name)
            if name in self.spike_fed:
                mode = "sop"
            elif poisson and source == INPUT:
                mode = "sop"  # reads the input spikes
            else:
                mode = "mac" if not poisson else "mac_step"
            counters.append(SynapseCounter(modules[name], mode, source=by_name.get(source, source),
                                           fanouts=self._fanouts, name=name))
        return counters

    @torch.no_grad()
    def run(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], time_steps: Sequence[int], *,
            ann: nn.Module | None = None, record_layers: bool = False, encoding: str | None = None,
            mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
            seed: int | None = None, accounting: bool = True, keep_outputs: bool = False,
            resume: dict | None = None, on_batch: Callable[[dict], None] | None = None) -> SimResult:
        """Simulate every batch to max(time_steps) and read the accumulated output at each T.

        ``encoding`` (default: the simulator's) is "direct" or "poisson";
        for Poisson, ``mean``/``std`` are the per-channel normalisation of
        the images (to be undone; None: images are intensities in [0, 1])
        and ``seed`` (default: the simulator's) seeds the draws.
        ``accounting=False`` skips the spike/SOP counters (the result then
        reports zero spikes and SOPs) — for measuring their cost only.
        ``keep_outputs=True`` keeps every image's mean output up to each T (``SimResult.outputs``), the
        SNN's estimate of the ANN's output.

        Resuming: ``on_batch(state)`` is called after every batch with what the run has summed so far
        (a :func:`run_state` dict of plain numbers and CPU tensors, for ``torch.save``). A later run given
        it as ``resume`` (same network and arguments) goes on from there: ``batches`` must then hold only
        the batches after the ``state["batches"]`` it covers, whose indices continue from there (Poisson
        draws are seeded by batch index), and the result is the one an uninterrupted run gives.
        """
        encoding = self.encoding if encoding is None else encoding
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        poisson = encoding == "poisson"
        seed = self.seed if seed is None else int(seed)
        if poisson and any(n.encodes_input for _, n in self.neurons):
            raise ValueError("this network encodes its own input (scatter-and-gather); use encoding=direct")
        time_steps = sorted(set(int(t) for t in time_steps))
        if not time_steps or time_steps[0] < 1:
            raise ValueError(f"time steps must be >= 1, got {time_steps}")
        per_T = self.per_T
        passes = [(T, [T]) for T in time_steps] if per_T else [(time_steps[-1], time_steps)]
        # Offset-spike calibration pre-simulates its first `presim` input steps:
        # the first chunk must hold them (even when T is smaller; reads stay at T).
        presim = max(n.presim for _, n in self.neurons)

        spikes = [SpikeCounter(name, n) for name, n in self.neurons] if accounting else []
        synapses = self._synapse_counters(poisson, spikes) if accounting else []
        input_fed = [c for c in synapses if c.source == INPUT]
        counters = [*synapses, *spikes]
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
        layer_sops = {c.name: {T: 0.0 for T in time_steps} for c in synapses}
        layer_spikes = {c.name: {T: 0.0 for T in time_steps} for c in spikes}
        in_tot = {T: 0.0 for T in time_steps}
        in_neg_tot = {T: 0.0 for T in time_steps}
        kept: dict[int, list[torch.Tensor]] = {T: [] for T in time_steps}
        total = 0
        first_batch = 0
        sums = {"correct": correct, "spikes": spike_tot, "negative_spikes": neg_tot, "sops": sop_tot,
                "input_spikes": in_tot, "input_negative_spikes": in_neg_tot, "layer_sops": layer_sops,
                "layer_spikes": layer_spikes}
        settings = {"time_steps": time_steps, "encoding": encoding, "seed": seed if poisson else None,
                    "probes": [p.name for p in probes], "keep_outputs": bool(keep_outputs)}
        if resume is not None:
            first_batch, total = _load_state(resume, settings, sums, kept, probes, synapses, spikes)
        for _, neuron in self.neurons:
            neuron.start_run(backend=self.backend, track_spikes=accounting)
        try:
            for batch_index, (images, labels) in enumerate(batches, start=first_batch):
                check_batch(images, batch_index, "the simulated images")
                images = images.to(self.device, self.dtype)
                if images.dim() == 4:
                    images = images.contiguous(memory_format=self.memory_format)
                labels = labels.to(self.device)
                batch = images.shape[0]
                if probes:
                    ann_values = _ann_activations(ann, ann_sites, images)
                encoder = PoissonEncoder(images, mean=mean, std=std, seed=seed, batch_index=batch_index) \
                    if poisson else None
                for horizon, reads in passes:
                    for _, neuron in self.neurons:
                        neuron.begin_batch(horizon)
                    for probe in probes:
                        pre, out = ann_values.get(probe.name, (None, None))
                        probe.start_batch(reads, pre, out)
                    steps_to_run = max(horizon, presim)
                    for counter in counters:
                        counter.start(steps_to_run, self.device)
                    if not poisson:
                        self._set_steps(1, batch, 0, counters)
                        invariant = self.prefix(images)
                    accumulated = None
                    outputs = []
                    t = 0
                    while t < steps_to_run:
                        steps = min(max(self.chunk, presim) if t == 0 else self.chunk, steps_to_run - t)
                        self._set_steps(steps, batch, t, counters)
                        if poisson:
                            x, indicator = encoder.chunk(t, steps)
                            for counter in input_fed:
                                counter.input_indicator = indicator
                            out = self.snn(x)
                        else:
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
                        if keep_outputs:
                            kept[T].append((logits / T).cpu())
                    pos = _cumulative([c.positive for c in spikes], steps_to_run)
                    neg = _cumulative([c.negative for c in spikes], steps_to_run)
                    in_pos = _cumulative([c.positive for c in spikes[:1]], steps_to_run)
                    in_neg = _cumulative([c.negative for c in spikes[:1]], steps_to_run)
                    # Per layer (for an energy model); the network's SOPs are their sum.
                    sop = torch.zeros(steps_to_run, dtype=torch.float64)
                    for c in synapses:
                        if c.mode == "sop":
                            per_layer = _cumulative([c.totals], steps_to_run)
                            sop += per_layer
                            for T in reads:
                                layer_sops[c.name][T] += float(per_layer[T - 1])
                    for c in spikes:
                        per_layer = _cumulative([c.positive, c.negative], steps_to_run)
                        for T in reads:
                            layer_spikes[c.name][T] += float(per_layer[T - 1])
                    for T in reads:
                        spike_tot[T] += float(pos[T - 1])
                        neg_tot[T] += float(neg[T - 1])
                        sop_tot[T] += float(sop[T - 1])
                        in_tot[T] += float(in_pos[T - 1])
                        in_neg_tot[T] += float(in_neg[T - 1])
                total += batch
                if on_batch is not None:
                    on_batch(run_state(batch_index + 1, total, settings, sums, kept, probes, synapses, spikes))
        finally:
            for hook in [*counters, *probes]:
                hook.remove()
            for _, neuron in self.neurons:
                neuron.finish_run()
            for counter in input_fed:
                counter.input_indicator = None
        macs = sum(c.macs_per_sample for c in synapses if c.mode == "mac")
        macs_per_step = sum(c.macs_per_sample for c in synapses if c.mode == "mac_step")
        neurons_per_image = sum(c.neurons_per_sample for c in spikes)
        layer_rows = [row for probe in probes for row in probe.rows()]
        order = {name: i for i, (name, _) in enumerate(self.snn.named_modules())}
        counts = _network_counts(sorted(synapses, key=lambda c: order.get(c.name, len(order))), spikes, layer_sops,
                                 layer_spikes, total) if accounting else None
        return SimResult(time_steps=time_steps, correct=correct, total=total, spikes=spike_tot,
                         negative_spikes=neg_tot, sops=sop_tot, macs_per_image=macs,
                         neurons_per_image=neurons_per_image,
                         passes="one pass per T" if per_T else "one pass for the sweep",
                         layer_rows=layer_rows, encoding=encoding, macs_per_step=macs_per_step,
                         input_spikes=in_tot, input_negative_spikes=in_neg_tot,
                         input_neurons_per_image=spikes[0].neurons_per_sample if spikes else 0,
                         outputs={T: torch.cat(rows) for T, rows in kept.items() if rows},
                         layer_counts=counts)


# The layout of :func:`run_state`'s dict; a state of another layout is refused by :func:`_load_state`.
STATE_FORMAT = 1


def run_state(batches: int, total: int, settings: dict, sums: dict, kept: dict, probes, synapses, spikes) -> dict:
    """A copy of what a run has summed over its first ``batches`` batches (see :meth:`Simulator.run`'s
    ``resume``): the per-T sums, the kept outputs, the layer probes' sums and the counters' per-image figures."""
    return {"format": STATE_FORMAT, "batches": int(batches), "total": int(total), **settings,
            "sums": {name: ({layer: dict(per_T) for layer, per_T in value.items()}
                            if name.startswith("layer_") else dict(value)) for name, value in sums.items()},
            "outputs": {T: list(rows) for T, rows in kept.items()},
            "probe_sums": {p.name: {T: dict(a) for T, a in p.sums.items()} for p in probes},
            "synapse_figures": {c.name: [float(c.macs_per_sample), list(getattr(c, "_shape", None) or [])]
                                for c in synapses},
            "neuron_figures": {c.name: int(c.neurons_per_sample) for c in spikes}}


def _load_state(state: dict, settings: dict, sums: dict, kept: dict, probes, synapses, spikes) -> tuple[int, int]:
    """Put a :func:`run_state` into this run's sums and hooks; (batches it covers, images it covers)."""
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"the resume state is not a simulation state of format {STATE_FORMAT}")
    differ = [k for k, v in settings.items() if state.get(k) != v]
    names = {"layer_sops": [c.name for c in synapses], "layer_spikes": [c.name for c in spikes]}
    if any(sorted(state["sums"][k]) != sorted(v) for k, v in names.items()):
        differ.append("layers")
    if differ:
        raise ValueError(f"the resume state was saved by another simulation (its {', '.join(differ)} differ)")
    for name, target in sums.items():
        saved = state["sums"][name]
        if name.startswith("layer_"):
            for layer, per_T in saved.items():
                target[layer].update(per_T)
        else:
            target.update(saved)
    for T, rows in state["outputs"].items():
        kept[T].extend(rows)
    for probe in probes:
        probe.sums = {T: dict(a) for T, a in state["probe_sums"][probe.name].items()}
    for c in synapses:
        macs, shape = state["synapse_figures"][c.name]
        c.macs_per_sample = macs
        if shape:
            c._shape = tuple(shape)
    for c in spikes:
        c.neurons_per_sample = state["neuron_figures"][c.name]
    return int(state["batches"]), int(state["total"])


def _network_counts(synapses, spikes, layer_sops: dict, layer_spikes: dict, images: int):
    """Per-layer, per-image counts for an energy model (:mod:`snnx.energy.counts`), layers in module order."""
    n = max(images, 1)
    rows = []
    for c in synapses:
        shape = getattr(c, "_shape", None) or ()
        inputs = 1
        for d in shape:
            inputs *= int(d)
        weight = getattr(c.layer, "weight", None)
        rows.append(SynapseCounts(
            name=c.name, mode=c.mode, macs=float(c.macs_per_sample), weights=0 if weight is None else weight.numel(),
            inputs=inputs, outputs=_output_elements(c.layer, shape),
            sops={T: v / n for T, v in layer_sops[c.name].items()} if c.mode == "sop" else {},
            ann_macs=_dense_macs(c.layer, shape)))
    neurons = [NeuronCounts(name=c.name, neurons=int(c.neurons_per_sample),
                            spikes={T: v / n for T, v in layer_spikes[c.name].items()}) for c in spikes]
    return NetworkCounts(synapses=rows, neurons=neurons)


def _dense_macs(layer: nn.Module, input_shape) -> float | None:
    """The layer's MACs as torch's flop counter counts them: outputs × weights per output (padding included)."""
    weight = getattr(layer, "weight", None)
    if weight is None or not input_shape:
        return None
    return float(_output_elements(layer, input_shape) * weight[0].numel())


def _output_elements(layer: nn.Module, input_shape) -> int:
    """Output elements of one sample of a conv/linear layer, from its input shape (by the layer's arithmetic:
    the layer itself may take only the simulator's dtype, e.g. int64 in integer mode)."""
    if not input_shape:
        return 0
    if isinstance(layer, nn.Linear):
        return int(layer.out_features) * max(1, int(torch.Size(input_shape[:-1]).numel()))
    if isinstance(layer, nn.Conv2d) and isinstance(layer.padding, tuple) and len(input_shape) == 3:
        spatial = 1
        for n, k, s, p, d in zip(input_shape[1:], layer.kernel_size, layer.stride, layer.padding, layer.dilation):
            spatial *= max(0, (int(n) + 2 * p - d * (k - 1) - 1) // s + 1)
        return int(layer.out_channels) * spatial
    param = next(layer.parameters(), None)
    probe = torch.zeros((1, *input_shape), dtype=param.dtype if param is not None else torch.float32,
                        device=param.device if param is not None else "cpu")
    try:
        return int(layer(probe).numel())
    except (RuntimeError, TypeError):  # a layer that takes other inputs: its outputs are not priced
        return 0


def _cumulative(rows: list[torch.Tensor], steps: int) -> torch.Tensor:
    """Running total over steps of the sum of per-step float64 rows (zeros when there are none)."""
    if not rows:
        return torch.zeros(steps, dtype=torch.float64)
    return torch.stack(rows).sum(0).cumsum(0).cpu()


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
