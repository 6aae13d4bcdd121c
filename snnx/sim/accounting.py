"""Operation and spike accounting, and per-layer conversion diagnostics.

SOPs (synaptic operations, accumulate-only) are counted at the consumer: a
conv/linear fed by spikes does one addition per nonzero input element per
output it reaches (its fan-out, exact for kernels, stride and padding,
including borders). Layers fed by real values (the first layer under direct
encoding) cost multiply-accumulates, counted once per image because the
engine computes them once. Under Poisson encoding the layers that read the
input see spikes: their events are the input spikes (SOPs); a layer fed by
another layer's real values then costs its MACs at every step. Energy:
E_AC = 0.9 pJ, E_MAC = 4.6 pJ (45 nm).

Cost. The counters run on every chunk, so they are written as a few
vectorised passes: the nonzero map of a layer's input is the spike
indicator its source neuron already computed (``Neuron.spike_indicator``)
when the layer reads a neuron's output unchanged, else one ``ne`` pass; the
fan-out weighting uses the structure of the fan-out (one number per input
for a linear layer; per spatial position × out-channels per group for a
zero-padded conv, the same for every input channel), so the weighted sum is
one matrix-vector product. Per-step sums are exact: partial sums stay
integers far below 2^24 in the simulation dtype and are totalled in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from snnx.kernels import probe as probe_kernels
from snnx.neurons.base import Neuron, broadcast_channels, memory_format_of

E_AC_PJ = 0.9
E_MAC_PJ = 4.6


def energy_mj(sops: float, macs: float) -> float:
    return (E_AC_PJ * sops + E_MAC_PJ * macs) * 1e-9


#: "we hypothesize that a high-precision MAC is equivalent to 4 low-bit SOPs" (Zou et al. 2024, §4.4)
SOPS_PER_MAC = 4.0


def hidden_activity(result, T: int, ann_macs: float) -> dict:
    """Zou et al. 2024, §4.4's figures for one image at time step ``T``, from a ``SimResult``.

    * ``hidden_spikes``: positive + negative spikes up to T, per image, "except for the first input
      layer and last classification layer" — the first neuron layer is left out (the output layer
      has no neurons in snnx: it accumulates);
    * ``hidden_negative_ratio``: negative / positive spikes of those layers (Fig. 3);
    * ``hidden_neurons``: the neurons they are counted over (10,728 for the paper's LeNet);
    * ``ops_ratio``: how many times fewer operations than the ANN (Fig. 4), with one MAC counted as
      :data:`SOPS_PER_MAC` SOPs: ``4·ann_macs / (sops + 4·macs)``, the SNN's real-valued layers
      (its input layer) costing MACs too.
    """
    n = max(result.total, 1)
    pos = (result.spikes[T] - result.input_spikes.get(T, 0.0)) / n
    neg = (result.negative_spikes[T] - result.input_negative_spikes.get(T, 0.0)) / n
    sops = result.sops[T] / n
    snn_ops = sops + SOPS_PER_MAC * result.macs(T)
    return {"hidden_spikes": pos + neg,
            "hidden_negative_ratio": neg / pos if pos > 0 else float("nan"),
            "hidden_neurons": result.neurons_per_image - result.input_neurons_per_image,
            "ops_ratio": SOPS_PER_MAC * ann_macs / snn_ops if snn_ops > 0 else float("nan")}


def fanout_map(layer: nn.Module, input_shape: Sequence[int], dtype=torch.float64) -> torch.Tensor:
    """How many outputs each input element of one sample reaches (d Σ out / d in with unit weights)."""
    with torch.enable_grad():  # the simulator runs under no_grad
        return _fanout_map(layer, input_shape, dtype)


def _fanout_map(layer: nn.Module, input_shape: Sequence[int], dtype) -> torch.Tensor:
    # On the CPU whatever the layer's device: the map is a table built once per layer and shape
    # (Fanout._as moves it to the device once); only the weights' shape is read.
    x = torch.ones(1, *input_shape, dtype=dtype, requires_grad=True)
    weight = torch.ones(layer.weight.shape, dtype=dtype)
    if isinstance(layer, nn.Conv2d):
        # The layer's own forward with these weights: a reflect/replicate/circular padding reaches other
        # outputs than zeros would (the border inputs feed the padded positions too).
        out = layer._conv_forward(x, weight, None)
    elif isinstance(layer, nn.Linear):
        out = F.linear(x, weight)
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


def _reach_1d(n: int, kernel: int, stride: int, padding: int, dilation: int) -> list[int]:
    """For each of n input positions, how many (output position, kernel tap) pairs read it."""
    n_out = (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    counts = [0] * n
    for o in range(max(n_out, 0)):
        for j in range(kernel):
            i = o * stride - padding + j * dilation
            if 0 <= i < n:
                counts[i] += 1
    return counts


@dataclass
class Fanout:
    """The fan-out of one sample's input elements, kept in the form that is cheapest to apply.

    Exactly one of ``uniform`` (every element reaches that many outputs),
    ``spatial`` ([H·W] per position, times ``factor`` outputs per channel:
    the same for every input channel) and ``full`` ([N] per element) is set.
    ``total`` is the sum over one sample's elements (its MACs when every
    input is used).
    """

    total: float
    uniform: float | None = None
    spatial: torch.Tensor | None = None
    factor: float = 1.0
    full: torch.Tensor | None = None

    def __post_init__(self):
        self._cast: dict = {}

    def _as(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        key = (like.dtype, like.device)
        if key not in self._cast:
            self._cast[key] = t.to(like.device, like.dtype)
        return self._cast[key]

    def weighted(self, indicator: torch.Tensor, steps: int) -> torch.Tensor:
        """Σ indicator × fan-out per step: [steps] float64 for a [steps·B, …] 0/1 indicator.

        ``indicator`` has the layer input's shape (any memory layout); for a
        uniform fan-out only its per-row element count has to match.
        """
        if self.uniform is not None:
            return row_sums(indicator).view(steps, -1).sum(1, dtype=torch.float64) * self.uniform
        rows = indicator.shape[0]
        if self.spatial is not None:
            hw = self.spatial.numel()
            weights = self._as(self.spatial, indicator)
            if indicator.dim() == 4 and memory_format_of(indicator) == torch.channels_last:
                # [rows, H, W, C] in memory: weight positions, then sum channels.
                per_channel = torch.matmul(weights, indicator.permute(0, 2, 3, 1).reshape(rows, hw, -1))
            else:
                per_channel = torch.matmul(indicator.reshape(rows, -1, hw), weights)
            return per_channel.view(steps, -1).sum(1, dtype=torch.float64) * self.factor
        flat = indicator.reshape(rows, -1).to(torch.float64)
        per_row = torch.mv(flat, self._as(self.full, flat))
        return per_row.view(steps, -1).sum(1)


def layer_fanout(layer: nn.Module, input_shape: Sequence[int]) -> Fanout:
    """The :class:`Fanout` of ``layer`` for one sample of shape ``input_shape`` (no batch dim)."""
    input_shape = tuple(int(d) for d in input_shape)
    numel = 1
    for d in input_shape:
        numel *= d
    if isinstance(layer, nn.Linear):
        return Fanout(total=float(numel * layer.out_features), uniform=float(layer.out_features))
    if (isinstance(layer, nn.Conv2d) and len(input_shape) == 3 and not isinstance(layer.padding, str)
            and layer.padding_mode == "zeros"):
        _, h, w = input_shape
        rows = _reach_1d(h, layer.kernel_size[0], layer.stride[0], layer.padding[0], layer.dilation[0])
        cols = _reach_1d(w, layer.kernel_size[1], layer.stride[1], layer.padding[1], layer.dilation[1])
        spatial = torch.outer(torch.tensor(rows, dtype=torch.float64), torch.tensor(cols, dtype=torch.float64))
        factor = float(layer.out_channels // layer.groups)
        return Fanout(total=float(spatial.sum()) * factor * input_shape[0], spatial=spatial.flatten(),
                      factor=factor)
    full = fanout_map(layer, input_shape).flatten()
    return Fanout(total=float(full.sum()), full=full)


INPUT_SOURCE = "<input>"  # a layer that reads the network input (snnx.sim.graph_split.INPUT)


def nonzero_indicator(x: torch.Tensor) -> torch.Tensor:
    """1 where x ≠ 0, else 0, in x's dtype and layout (one vectorised pass; no bool tensor)."""
    return torch.ne(x, 0, out=torch.empty_like(x))


def row_sums(x: torch.Tensor) -> torch.Tensor:
    """Σ over every dim but the first, in x's dtype, whatever the memory layout (no copy)."""
    return x.sum(dim=tuple(range(1, x.dim()))) if x.dim() > 1 else x


def _cheap_channel_sum(x: torch.Tensor) -> bool:
    # Summing channels is one cheap pass unless they are few and innermost in memory
    # (channels-last with C < 32: many short inner reductions, which are slow).
    return memory_format_of(x) != torch.channels_last or x.shape[1] >= 32


def per_step_sum(indicator: torch.Tensor, steps: int) -> torch.Tensor:
    """Σ over everything but time of a [steps·B, …] tensor: [steps] float64 (exact for counts)."""
    return row_sums(indicator).view(steps, -1).sum(1, dtype=torch.float64)


class SynapseCounter:
    """Forward pre-hook on a conv/linear layer: per-step SOPs, or the MACs of one sample.

    ``mode`` "sop": the input is spikes (or pooled spikes): events × fan-out
    are added to ``totals[t0 : t0+steps]`` on every call. "mac": the input is
    real-valued; only ``macs_per_sample`` (the fan-out total) is recorded —
    the engine knows how often the layer runs. ``source`` is what the layer
    reads unchanged: the :class:`SpikeCounter` of a neuron (its per-position
    spike counts of this chunk are reused), the string ``"<input>"`` (the
    engine sets ``input_indicator``) or None (the input's nonzeros are found
    with one ``ne`` pass).
    """

    def __init__(self, layer: nn.Module, spike_fed: bool | str, source=None, fanouts: dict | None = None,
                 name: str = ""):
        self.layer = layer
        self.name = name
        self.mode = spike_fed if isinstance(spike_fed, str) else ("sop" if spike_fed else "mac")
        self.spike_fed = self.mode == "sop"
        self.source = source
        self.fanouts = {} if fanouts is None else fanouts
        self.fanout: Fanout | None = None
        self.steps = 1
        self.t0 = 0
        self.totals: torch.Tensor | None = None
        self.input_indicator: torch.Tensor | None = None
        self.macs_per_sample = 0.0
        self.handle = layer.register_forward_pre_hook(self)

    @property
    def macs_per_image(self) -> float:
        return self.macs_per_sample

    def start(self, steps: int, device: torch.device) -> None:
        self.totals = torch.zeros(steps, dtype=torch.float64, device=device)

    def _fanout_for(self, x: torch.Tensor) -> Fanout:
        shape = tuple(x.shape[1:])
        key = (id(self.layer), shape)
        if self.fanout is None or self._shape != shape:
            if key not in self.fanouts:
                self.fanouts[key] = layer_fanout(self.layer, shape)
            self.fanout, self._shape = self.fanouts[key], shape
        return self.fanout

    def _indicator(self, x: torch.Tensor, fanout: Fanout) -> torch.Tensor:
        if isinstance(self.source, SpikeCounter):
            published = self.source.neuron.spike_indicator
        else:
            published = self.input_indicator if self.source == INPUT_SOURCE else None
        if published is not None and published.dtype == x.dtype:
            if published.shape == x.shape:
                return published
            # A reshape (flatten) between: only the per-row count matters for a uniform fan-out.
            if fanout.uniform is not None and published.shape[0] == x.shape[0] and published.numel() == x.numel():
                return published
        return nonzero_indicator(x)

    def __call__(self, _module, inputs):
        x = inputs[0]
        fanout = self._fanout_for(x)
        self.macs_per_sample = fanout.total
        if self.mode != "sop" or self.totals is None:
            return
        span = slice(self.t0, self.t0 + self.steps)
        if isinstance(self.source, SpikeCounter):
            events = self.source.weighted_events(x, fanout, self.t0, self.steps)
            if events is not None:
                self.totals[span] += events
                return
        self.totals[span] += fanout.weighted(self._indicator(x, fanout), self.steps)

    def remove(self):
        self.handle.remove()


class SpikeCounter:
    """Forward hook on a neuron: spikes per step (positive and negative), summed over the batch.

    Reads the neuron's ``spike_indicator`` when it publishes one (IF family:
    every output spike is positive) and reduces it once per chunk to spike
    counts per (row, position) — summed over channels for a [rows, C, H, W]
    output — which also give the SOPs of the layers that read this output
    unchanged (:meth:`weighted_events`). Otherwise counts the output's signs.
    """

    def __init__(self, name: str, neuron: Neuron):
        self.name = name
        self.neuron = neuron
        self.t0 = 0
        self.positive: torch.Tensor | None = None
        self.negative: torch.Tensor | None = None
        self.neurons_per_sample = 0
        self.hist: torch.Tensor | None = None  # this chunk's spikes per row (and position)
        self.hist_t0 = -1
        self.handle = neuron.register_forward_hook(self)

    def weighted_events(self, x: torch.Tensor, fanout: Fanout, t0: int, steps: int) -> torch.Tensor | None:
        """Σ spikes × fan-out per step for a layer reading this neuron's output ``x`` (None: not derivable)."""
        hist = self.hist
        if hist is None or self.hist_t0 != t0 or hist.shape[0] != x.shape[0]:
            return None
        if fanout.uniform is not None and x.numel() == x.shape[0] * self.neurons_per_sample:
            return hist.reshape(steps, -1).sum(1, dtype=torch.float64) * fanout.uniform
        if fanout.spatial is not None and x.dim() == 4 and hist.dim() == 3 and tuple(hist.shape[1:]) == tuple(x.shape[2:]):
            per_row = torch.mv(hist.reshape(hist.shape[0], -1), fanout._as(fanout.spatial, hist))
            return per_row.view(steps, -1).sum(1, dtype=torch.float64) * fanout.factor
        return None

    def start(self, steps: int, device: torch.device) -> None:
        self.positive = torch.zeros(steps, dtype=torch.float64, device=device)
        self.negative = torch.zeros(steps, dtype=torch.float64, device=device)
        self.hist, self.hist_t0 = None, -1

    def __call__(self, module, _inputs, out):
        steps = module.time_steps
        self.neurons_per_sample = out[0].numel()
        if self.positive is None:
            return
        span = slice(self.t0, self.t0 + steps)
        counts = module.spike_counts
        if counts is not None and counts.shape[0] == out.shape[0]:
            # The fused kernel's spikes per (row, position), channels summed: as the hist below.
            self.hist, self.hist_t0 = counts, self.t0
            self.positive[span] += counts.reshape(steps, -1).sum(1, dtype=torch.float64)
            return
        indicator = module.spike_indicator
        if indicator is not None and indicator.shape == out.shape:
            if indicator.dim() == 4 and _cheap_channel_sum(indicator):
                # One pass: spikes per (row, position), channels summed (exact: at most C per entry);
                # the layers reading this output weight it by position (weighted_events).
                hist = indicator.sum(1)
                self.hist, self.hist_t0 = hist, self.t0
            else:  # spikes per row; readers weight the indicator themselves
                hist = row_sums(indicator)
                self.hist, self.hist_t0 = (hist, self.t0) if indicator.dim() != 4 else (None, -1)
            self.positive[span] += hist.reshape(steps, -1).sum(1, dtype=torch.float64)
            return
        self.hist = None
        buf = torch.empty_like(out)
        self.positive[span] += per_step_sum(torch.gt(out, 0, out=buf), steps)
        self.negative[span] += per_step_sum(torch.lt(out, 0, out=buf), steps)

    def remove(self):
        self.handle.remove()


def _accumulate(acc: torch.Tensor, seq: torch.Tensor, start: int, end: int) -> None:
    """acc (float64) += Σ_{t in [start, end)} seq[t], in one pass."""
    if seq.stride(0) == 0:  # a constant input expanded over the chunk
        acc.add_(seq[start], alpha=end - start)
    elif end - start == 1:
        acc.add_(seq[start])
    else:
        acc.add_(seq[start:end].sum(0, dtype=torch.float64))


class LayerProbe:
    """Per-layer conversion diagnostics at the read-out steps (the rows of layers.csv).

    Keeps, per image and neuron, the summed input current, the summed output
    (both in float64), and whether it has spiked; at each read-out T it adds
    to running sums the firing rate, clipping and flooring errors, the SIN
    counts against the ANN's pre-activation and the error against the ANN's
    activation. The steps of a chunk between two read-outs are summed in one
    pass; for neurons that publish a spike indicator (non-negative output)
    "has spiked" is "summed output > 0" and needs no pass of its own.

    Spikes of inactivated neurons (He et al. (MSAT), §3.3): the set
    R = {j | Σ_{t≤T} Θ_{t,j} > 0, a_j ≤ 0} of neurons that spiked by T although
    their ANN pre-activation a_j is not positive, counted over the images:

    - ``sin_ratio`` = |R| / |{j : a_j ≤ 0}|, the share of the inactivated
      neurons that spiked — the "SIN ratio" per layer of Figs. 2 and 4 (the
      paper names the set, not the denominator; the authors' released code
      plots this share). The paper's R writes a_j < 0; a pre-activation of
      exactly 0 counts here too, as Eq. 1's ReLU gives it 0 and §3.3's
      argument (it should not fire) holds for it; the two differ only on
      exact zeros;
    - ``sin_share`` = |R| / (all the layer's neurons), the other reading of
      "SIN proportion in each layer" (§3.3);
    - ``firing_rate`` = spikes / (neurons · T) (Fig. 5, §6.3).
    """

    def __init__(self, name: str, neuron: Neuron):
        self.name = name
        self.neuron = neuron
        self.reads: list[int] = []
        self.ann_pre: torch.Tensor | None = None
        self.ann_out: torch.Tensor | None = None
        self.sums: dict[int, dict[str, float]] = {}
        self._reset_batch()
        self.handle = neuron.register_forward_hook(self)

    def _reset_batch(self):
        self._ann_laid = None
        self.t = 0
        self.in_sum = self.out_sum = self.spiked = None
        self.spike_count = None

    def start_batch(self, reads: list[int], ann_pre: torch.Tensor, ann_out: torch.Tensor):
        self.reads = reads
        self.ann_pre, self.ann_out = ann_pre, ann_out
        self._reset_batch()

    def __call__(self, module, inputs, out):
        if self.ann_pre is None:
            return
        x_seq = module.unfold(inputs[0])
        steps = x_seq.shape[0]
        o_seq = out.view(x_seq.shape)
        # Outputs that are θ·s with a constant θ > 0 (the neuron published its spikes as a 0/1 indicator
        # or, from the fused kernel, as counts): spikes are then read off Σ out, not tracked step by step.
        indicator = module.spike_indicator
        counts = module.spike_counts
        published = ((indicator is not None and indicator.shape == out.shape)
                     or (counts is not None and counts.shape[0] == out.shape[0])) and not module.threshold_varies
        if self.in_sum is None:
            self.in_sum = torch.zeros_like(x_seq[0], dtype=torch.float64)  # in the input's memory layout
            self.out_sum = torch.zeros_like(self.in_sum)
            self.spiked = torch.zeros_like(self.in_sum, dtype=torch.bool)
            self.spike_count = torch.zeros((), dtype=torch.float64, device=x_seq.device)
            self.nonnegative = published
        cuts = sorted(r - self.t for r in self.reads if self.t < r <= self.t + steps)
        start = 0
        if self.nonnegative and not published:  # from here on, track "has spiked" and the count explicitly
            self.spiked |= self.out_sum > 0
            self.spike_count += self._counted_so_far(module)
            self.nonnegative = False
        for end in cuts + ([steps] if not cuts or cuts[-1] != steps else []):
            # One fused pass where it applies (snnx.kernels.probe); a constant input is one add_.
            constant = x_seq.stride(0) == 0
            if constant:
                _accumulate(self.in_sum, x_seq, start, end)
            if not probe_kernels.accumulate(None if constant else self.in_sum, self.out_sum,
                                            None if constant else x_seq, o_seq, start, end):
                if not constant:
                    _accumulate(self.in_sum, x_seq, start, end)
                _accumulate(self.out_sum, o_seq, start, end)
            if not self.nonnegative:
                fired = o_seq[start:end] != 0
                self.spiked |= fired.any(0)
                self.spike_count += fired.sum()
            self.t += end - start
            start = end
            if self.t in self.reads:
                self._record(self.t, module)

    def _counted_so_far(self, module) -> torch.Tensor:
        """Spikes so far of a θ·s neuron with a constant θ > 0: Σ out / θ, exact once rounded."""
        return (self.out_sum / broadcast_channels(module.threshold, self.out_sum)).round().sum()

    def _ann_laid_out(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The ANN's pre-activation and activation in the sums' memory layout (copied once per batch)."""
        if self._ann_laid is None:
            self._ann_laid = (probe_kernels.like(self.ann_pre, self.in_sum), probe_kernels.like(self.ann_out, self.in_sum))
        return self._ann_laid

    def _record(self, T: int, module):
        rate_coded = module.rate_coded  # θ·s neurons: clip/floor errors are defined
        sums = None
        if self.ann_pre.shape == self.in_sum.shape and self.ann_out.shape == self.in_sum.shape:
            ann_pre, ann_out = self._ann_laid_out()  # one fused pass where it applies (snnx.kernels.probe)
            sums = probe_kernels.record_sums(self.in_sum, self.out_sum, ann_pre, ann_out,
                                             None if self.nonnegative else self.spiked, module.threshold, T,
                                             rate_coded=rate_coded, unit=1.0 if rate_coded else module.unit,
                                             count_spikes=self.nonnegative)
        if sums is None:
            sums = self._torch_sums(T, module, rate_coded)
        clip, floor, floor_n, sin_spiked, sin_n, err, count = sums
        acc = self.sums.setdefault(T, {k: 0.0 for k in (
            "spikes", "neurons", "clip_sum", "floor_sum", "floor_n", "sin_spiked", "sin_n", "err_sum")})
        acc["spikes"] += count if self.nonnegative else float(self.spike_count)
        acc["neurons"] += self.in_sum.numel()
        if rate_coded:
            acc["clip_sum"] += clip
            acc["floor_sum"] += floor
            acc["floor_n"] += floor_n
        else:
            acc["clip_sum"] = acc["floor_sum"] = float("nan")
        acc["sin_spiked"] += sin_spiked
        acc["sin_n"] += sin_n
        acc["err_sum"] += err

    def _torch_sums(self, T: int, module, rate_coded: bool) -> list[float]:
        """The read-out sums of :func:`snnx.kernels.probe.record_sums`, with torch ops."""
        theta = broadcast_channels(module.threshold, self.in_sum)
        z_bar = self.in_sum / T
        # θ·s neurons code the activation as a rate (Σ out / T); the signed all-integer neurons as a
        # count: each net ±1 spike stands for `unit` (2^−k) of activation, whatever T is.
        phi = self.out_sum / T if rate_coded else self.out_sum * module.unit
        inside = (z_bar > 0) & (z_bar <= theta)
        silent = self.ann_pre <= 0
        spiked = self.out_sum > 0 if self.nonnegative else self.spiked
        clip = floor = floor_n = 0.0
        if rate_coded:
            clip = float((z_bar - theta).clamp_min(0).sum())
            floor = float(((z_bar - phi).abs() * inside).sum())
            floor_n = float(inside.sum())
        count = float(self._counted_so_far(module)) if self.nonnegative else 0.0
        return [clip, floor, floor_n, float((spiked & silent).sum()), float(silent.sum()),
                float((phi - self.ann_out).abs().sum()), count]

    def rows(self) -> list[dict]:
        out = []
        for T, a in sorted(self.sums.items()):
            n = max(a["neurons"], 1)
            out.append({"T": T, "layer": self.name, "firing_rate": a["spikes"] / (n * T),
                        "sin_ratio": a["sin_spiked"] / a["sin_n"] if a["sin_n"] else float("nan"),
                        "sin_share": a["sin_spiked"] / n,
                        "clip_error": a["clip_sum"] / n,
                        "floor_error": a["floor_sum"] / a["floor_n"] if a["floor_n"] else a["floor_sum"] * 0.0,
                        "ann_error": a["err_sum"] / n})
        return out

    def remove(self):
        self.handle.remove()
