"""The simulation engine: multi-step vs step-by-step, one-pass sweeps, accounting."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from snnx.convert import convert
from snnx.neurons import NEURONS, Neuron
from snnx.sim import Simulator


class TinyNet(nn.Module):
    def __init__(self, act=nn.ReLU):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.act1 = act()
        self.pool = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.act2 = act()
        self.fc1 = nn.Linear(6 * 4 * 4, 12)
        self.act3 = act()
        self.fc2 = nn.Linear(12, 3)

    def forward(self, x):
        x = self.pool(self.act1(self.bn1(self.conv1(x))))
        x = self.act2(self.conv2(x))
        x = self.act3(self.fc1(torch.flatten(x, 1)))
        return self.fc2(x)


def tiny_setup(method="maxnorm", seed=0, **convert_overrides):
    torch.manual_seed(seed)
    ann = TinyNet().double().eval()
    with torch.no_grad():
        ann.bn1.running_mean.uniform_(-0.2, 0.2)
        ann.bn1.running_var.uniform_(0.5, 2.0)
    images = torch.randn(40, 1, 8, 8, dtype=torch.float64)
    labels = torch.randint(0, 3, (40,))
    from snnx.calibration import calibrate

    stats = calibrate(ann, [images], percentile=99.9, num_batches=1, device=torch.device("cpu"))
    conv = {"name": method, "percentile": 99.9, "maxpool": "error", "v_init": None, "variant": "TS",
            "shift_T": None, "presim": 4, **convert_overrides}
    snn, _ = convert(ann, method=method, stats=stats, convert=_own_keys(method, conv))
    return ann, snn, images, labels


def _own_keys(method: str, conv: dict) -> dict:
    """The keys of ``conv`` that ``method`` takes (convert() rejects the others)."""
    from snnx.convert.methods import METHODS

    return {k: v for k, v in conv.items() if k in METHODS.get(method).keys}


def reference_logits(snn, images, T):
    """Independent slow path: the whole graph, one step at a time, no prefix split."""
    neurons = [m for m in snn.modules() if isinstance(m, Neuron)]
    for n in neurons:
        n.begin_batch(T)
        n.begin_chunk(1, images.shape[0])
    total = torch.zeros(images.shape[0], 3, dtype=images.dtype)
    per_step = []
    with torch.no_grad():
        for _ in range(T):
            total = total + snn(images)
            per_step.append(total.clone())
    return per_step


def simulate(snn, images, labels, steps, chunk, **kw):
    sim = Simulator(snn, device=torch.device("cpu"), chunk=chunk, dtype=torch.float64)
    batches = [(images[i:i + 16], labels[i:i + 16]) for i in range(0, len(images), 16)]
    return sim.run(batches, steps, **kw)


@pytest.mark.parametrize("method", ["maxnorm", "channelnorm", "shift", "pnorm"])
@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_chunked_multistep_equals_step_by_step(method, chunk):
    ann, snn, images, labels = tiny_setup(method, variant="S")
    steps = [1, 2, 5, 8]
    result = simulate(snn, images, labels, steps, chunk)
    for T in steps:
        ref = reference_logits(snn, images, T)[T - 1]
        assert result.correct[T] == int((ref.argmax(1) == labels).sum())


def test_one_pass_sweep_equals_separate_runs():
    ann, snn, images, labels = tiny_setup("maxnorm")
    sweep = simulate(snn, images, labels, [1, 3, 8, 13], chunk=4)
    for T in (1, 3, 8, 13):
        single = simulate(snn, images, labels, [T], chunk=4)
        assert single.correct[T] == sweep.correct[T]
        assert single.spikes[T] == sweep.spikes[T]
        assert single.sops[T] == sweep.sops[T]
    assert sweep.passes == "one pass for the sweep"


def test_shift_is_applied_per_T_inside_a_sweep():
    ann, snn_sweep, images, labels = tiny_setup("shift", variant="S")
    sweep = simulate(snn_sweep, images, labels, [2, 4, 16], chunk=2)
    assert sweep.passes == "one pass per T"
    for T in (2, 4, 16):
        _, snn_fixed, _, _ = tiny_setup("shift", variant="S", shift_T=T)
        fixed = simulate(snn_fixed, images, labels, [T], chunk=2)
        assert fixed.correct[T] == sweep.correct[T]
        assert fixed.spikes[T] == sweep.spikes[T]
    # A shift for T=2 differs from one for T=16: the sweep really changed the shift.
    _, snn_two, _, _ = tiny_setup("shift", variant="S", shift_T=2)
    assert simulate(snn_two, images, labels, [16], chunk=2).spikes[16] != sweep.spikes[16]


def test_batch_composition_does_not_change_outputs():
    ann, snn, images, labels = tiny_setup("maxnorm")
    sim = Simulator(snn, device=torch.device("cpu"), chunk=2, dtype=torch.float64)
    a = sim.run([(images, labels)], [7])
    b = sim.run([(images[:5], labels[:5]), (images[5:], labels[5:])], [7])
    assert a.correct == b.correct and a.spikes == b.spikes


class AllSpikingNet(nn.Module):
    """1×4×4 → conv(1→2, 3×3, pad 1) → IF → conv(2→3, 3×3, pad 1) → IF → linear(48→2)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(2, 3, 3, padding=1)
        self.act2 = nn.ReLU()
        self.fc = nn.Linear(48, 2)
        with torch.no_grad():
            for layer in (self.conv1, self.conv2, self.fc):
                layer.weight.fill_(0.01)
                layer.bias.fill_(5.0)  # every neuron's current exceeds θ = 1 at every step

    def forward(self, x):
        x = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.fc(torch.flatten(x, 1))


def test_sops_and_macs_of_a_hand_computable_net():
    ann = AllSpikingNet().double()
    stats = {"act1": {"max": 1.0}, "act2": {"max": 1.0}}
    snn, _ = convert(ann, method="maxnorm", stats=stats, convert={"maxpool": "error", "v_init": None})
    images = torch.rand(3, 1, 4, 4, dtype=torch.float64)
    result = simulate(snn, images, torch.zeros(3, dtype=torch.long), [1, 5], chunk=2)
    # Fan-out of a 4×4 map under a 3×3 pad-1 kernel: 4 corners reach 4 outputs,
    # 8 edge positions 6, 4 interior 9 → 100 per input channel per output channel.
    conv2_per_step = 100 * 2 * 3  # 2 input channels, 3 output channels, all spiking
    fc_per_step = 48 * 2
    for T in (1, 5):
        assert result.per_image(T)["sops"] == (conv2_per_step + fc_per_step) * T
        assert result.per_image(T)["spikes_per_neuron"] == T  # every neuron fires every step
    assert result.macs_per_image == 100 * 1 * 2  # conv1 on the real-valued image, computed once
    assert result.neurons_per_image == 2 * 16 + 3 * 16


def test_cos_first_chunk_holds_the_presimulation_even_for_small_T():
    from snnx.activations import QCFS

    torch.manual_seed(0)
    ann = TinyNet(act=lambda: QCFS(4, init_threshold=1.0)).double().eval()
    images = torch.randn(16, 1, 8, 8, dtype=torch.float64)
    labels = torch.randint(0, 3, (16,))
    conv = {"maxpool": "error", "v_init": None, "presim": 4}
    snn, label = convert(ann, method="cos", stats=None, convert=conv)
    assert "ρ=4" in label
    one = simulate(snn, images, labels, [1, 2, 8], chunk=1)
    wide = simulate(snn, images, labels, [1, 2, 8], chunk=8)
    assert one.correct == wide.correct


def test_layer_diagnostics_are_recorded_per_T():
    ann, snn, images, labels = tiny_setup("maxnorm")
    result = simulate(snn, images, labels, [2, 16], chunk=4, ann=ann, record_layers=True)
    rows = result.layer_rows
    assert {r["T"] for r in rows} == {2, 16}
    assert {r["layer"] for r in rows} == {"act1", "act2", "act3"}
    for r in rows:
        assert 0.0 <= r["firing_rate"] <= 1.0
        assert 0.0 <= r["sin_ratio"] <= 1.0 or r["sin_ratio"] != r["sin_ratio"]
        assert r["clip_error"] >= 0 and r["floor_error"] >= 0
    # maxnorm thresholds are at the layer max: the first layer (constant input) never clips.
    first = [r for r in rows if r["layer"] == "act1"]
    assert all(r["clip_error"] < 1e-9 for r in first)
    # More steps → smaller flooring error in the first layer (constant input).
    assert first[1]["floor_error"] < first[0]["floor_error"]


# -- every neuron type: the multi-step (time-folded) path equals Neuron.run's reference steps ---
def _neurons():
    from snnx.neurons import (IFNeuron, MSATNeuron, OffsetCalibratedIFNeuron, ScatterGatherEncoder, ShiftedIFNeuron,
                              SignedDualThresholdNeuron)

    channel_theta = torch.tensor([0.6, 1.0, 1.7], dtype=torch.float64)
    return {
        "if-layer": lambda: IFNeuron(torch.tensor(0.8, dtype=torch.float64), 0.5),
        "if-channel": lambda: IFNeuron(channel_theta, 0.25),
        "shifted-if": lambda: ShiftedIFNeuron(channel_theta, 0.0),  # horizon: the pass's T
        "shifted-if-fixed": lambda: ShiftedIFNeuron(channel_theta, 0.0, horizon=7),
        "cos": lambda: OffsetCalibratedIFNeuron(channel_theta, 0.5, presim=3),
        "msat": lambda: MSATNeuron(channel_theta, alpha=0.3, k_a=0.8, k_i=1.5, tau_mp=0.5, tau_rd=0.7),
        "msat-confidence": lambda: MSATNeuron(channel_theta, confidence=0.6, confidence_steps=4, seed=3),
        "signed": lambda: SignedDualThresholdNeuron(torch.tensor([0.3, 0.1, -0.2], dtype=torch.float64),
                                                    torch.tensor([0.5, 0.25, 0.4], dtype=torch.float64)),
        "signed-int": lambda: SignedDualThresholdNeuron(torch.tensor([3, 1, -2]), torch.tensor([5, 2, 4])),
        "scatter-gather": lambda: ScatterGatherEncoder(1, 4.0),
        "scatter-gather-int": lambda: ScatterGatherEncoder(0, 4.0, integer=True),
    }


def test_every_registered_neuron_is_exercised():
    assert {type(make()) for make in _neurons().values()} == {entry.build for entry in NEURONS}


def _state(neuron):
    """The state a chunk leaves for the next one (None where a neuron keeps none)."""
    return [neuron.v, getattr(neuron, "count", None), neuron.t]


def _same_state(a: list, b: list) -> bool:
    return all((x is None and y is None) or (torch.is_tensor(x) and torch.equal(x, y)) or x == y for x, y in zip(a, b))


def _folded(neuron, xs, chunk, track, backend="fused"):
    """The engine's protocol: one batch of xs [T, B, …], ``chunk`` steps folded into the batch per forward."""
    neuron.start_run(backend=backend, track_spikes=track)
    neuron.begin_batch(xs.shape[0])
    outs = []
    for start in range(0, xs.shape[0], chunk):
        part = xs[start:start + chunk]
        neuron.begin_chunk(part.shape[0], xs.shape[1])
        out = neuron(part.flatten(0, 1))
        if neuron.spike_indicator is not None:  # published: exactly the output's nonzeros
            assert torch.equal(neuron.spike_indicator, (out != 0).to(out.dtype))
        outs.append(out.view(part.shape).clone())
    return torch.cat(outs)


@pytest.mark.parametrize("kind", list(_neurons()))
@pytest.mark.parametrize("chunk", [3, 4, 11])
@pytest.mark.parametrize("track", [False, True])
@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_every_neuron_type_multistep_equals_step_by_step(kind, chunk, track, backend):
    torch.manual_seed(0)
    steps = 11
    if kind == "signed-int":
        xs = torch.randint(-4, 7, (steps, 5, 3, 2, 2))
    else:
        xs = torch.randn(steps, 5, 3, 2, 2, dtype=torch.float64) * 0.8 + 0.3
    make = _neurons()[kind]
    reference = make()
    expected = reference.run(xs)
    folded = make()
    assert torch.equal(_folded(folded, xs, chunk, track, backend), expected)
    assert _same_state(_state(folded), _state(reference))


@pytest.mark.parametrize("kind", ["if-layer", "if-channel", "shifted-if", "cos"])
def test_constant_input_and_channels_last_equal_step_by_step(kind):
    """Direct encoding feeds the first neuron a [B, …] current (expanded over the chunk), maybe channels-last."""
    torch.manual_seed(1)
    z = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    reference = _neurons()[kind]().run(z.unsqueeze(0).expand(9, *z.shape))
    neuron = _neurons()[kind]()
    neuron.start_run(track_spikes=True)
    neuron.begin_batch(9)
    outs = []
    for steps in (4, 5):  # COS needs its presim steps in the first chunk
        neuron.begin_chunk(steps, z.shape[0])
        out = neuron(z.contiguous(memory_format=torch.channels_last))
        assert out.is_contiguous(memory_format=torch.channels_last)
        outs.append(out.view(steps, *z.shape).clone())
    assert torch.equal(torch.cat(outs), reference)


# -- the backend switch: the reference steps and the fused paths simulate the same bits -----------
class LeafNeurons(torch.fx.Tracer):
    def is_leaf_module(self, m, name):
        return isinstance(m, Neuron) or super().is_leaf_module(m, name)


def _site_neuron(name: str, channels: int, first: bool) -> Neuron:
    """A neuron of registry entry ``name`` for a site of ``channels`` channels (per-channel thresholds)."""
    from snnx.neurons import (IFNeuron, MSATNeuron, OffsetCalibratedIFNeuron, ScatterGatherEncoder, ShiftedIFNeuron,
                              SignedDualThresholdNeuron)

    theta = torch.rand(channels, generator=torch.Generator().manual_seed(channels), dtype=torch.float64) + 0.5
    signed = lambda: SignedDualThresholdNeuron(theta - 0.8, theta * 0.5)  # noqa: E731
    return {
        "if": lambda: IFNeuron(theta, 0.5),
        "shifted_if": lambda: ShiftedIFNeuron(theta),
        "cos_if": lambda: OffsetCalibratedIFNeuron(theta, 0.5, presim=3),
        "msat": lambda: MSATNeuron(theta, confidence=0.7, confidence_steps=3, seed=channels),
        "signed": signed,
        "scatter_gather": lambda: ScatterGatherEncoder(1, 4.0) if first else signed(),  # the input layer only
    }[name]()


def _spiking_tiny_net(ann: nn.Module, name: str, make=_site_neuron) -> torch.fx.GraphModule:
    """TinyNet with ``make(name, channels, first)`` at its activation sites, neurons as graph leaves."""
    snn = copy.deepcopy(ann)
    for site, channels in (("act1", 4), ("act2", 6), ("act3", 12)):
        setattr(snn, site, make(name, channels, site == "act1"))
    return torch.fx.GraphModule(snn, LeafNeurons().trace(snn))


@pytest.mark.parametrize("name", NEURONS.names())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reference_and_fused_backends_simulate_the_same_bits(name, dtype, monkeypatch):
    from snnx import kernels

    calls = []
    real_reference_steps = Neuron.reference_steps
    monkeypatch.setattr(Neuron, "reference_steps", lambda self, x: calls.append(1) or real_reference_steps(self, x))
    torch.manual_seed(0)
    ann = TinyNet().eval()
    with torch.no_grad():
        ann.bn1.running_mean.uniform_(-0.2, 0.2)
    snn = _spiking_tiny_net(ann, name)
    images, labels = torch.randn(20, 1, 8, 8), torch.randint(0, 3, (20,))
    batches = [(images[:12], labels[:12]), (images[12:], labels[12:])]
    runs = {}
    for backend in ("reference", "fused"):
        sim = Simulator(copy.deepcopy(snn), device=torch.device("cpu"), chunk=3, dtype=dtype, backend=backend)
        result = sim.run(batches, [1, 4, 7], ann=ann, record_layers=True)
        runs[backend] = result, [_state(n) for _, n in sim.neurons], len(calls)
        calls.clear()
    (ref, ref_state, ref_calls), (fused, fused_state, fused_calls) = runs["reference"], runs["fused"]
    assert ref_calls > 0  # every chunk of every neuron went through the reference steps
    if NEURONS.get(name).trait("fused") and kernels.enabled():
        assert fused_calls == 0  # ... and none here: the fused paths ran (the kernels, for IF and signed)
    assert ref.correct == fused.correct
    assert ref.spikes == fused.spikes and ref.negative_spikes == fused.negative_spikes and ref.sops == fused.sops
    assert len(ref.layer_rows) == len(fused.layer_rows) > 0
    for r, f in zip(ref.layer_rows, fused.layer_rows):  # the same numbers, NaN where undefined in both
        assert r.keys() == f.keys() and all(r[k] == f[k] or (r[k] != r[k] and f[k] != f[k]) for k in r), (r, f)
    assert all(_same_state(a, b) for a, b in zip(ref_state, fused_state))
    assert fused.spikes[7] > 0


def test_a_neuron_registered_from_a_test_runs_in_the_engine():
    """The contract is all a new neuron needs: its dynamics, its params and one registry entry."""
    from dataclasses import dataclass

    from snnx.registry import declared_params, param

    @dataclass(kw_only=True)
    class LeakyIFParams:
        name: str = param("leaky_if", "the neuron")
        threshold: torch.Tensor = param(doc="θ: one value or one per channel [C]", required=True)
        v_init: float = param(0.0, "initial membrane potential as a fraction of θ")
        leak: float = param(0.9, "the share of v kept from one step to the next", gt=0, le=1)

    class LeakyIFNeuron(Neuron):
        def __init__(self, threshold: torch.Tensor, v_init: float = 0.0, leak: float = 0.9):
            super().__init__(threshold, v_init)
            self.leak = float(leak)

        def charge(self, v, x_t):
            return self.leak * v + x_t

    NEURONS.register("leaky_if", params=LeakyIFParams, doc="leaky integrate-and-fire", depends_on_T=False,
                     signed=False, rate_coded=True, fused=False)(LeakyIFNeuron)
    try:
        entry = NEURONS.get("leaky_if")
        assert any(p.name == "leak" and p.doc for p in declared_params(entry.params))
        torch.manual_seed(0)
        ann = TinyNet().double().eval()
        snn = _spiking_tiny_net(ann, "leaky_if", lambda name, channels, first: NEURONS.get(name).build(
            threshold=torch.full((channels,), 0.7), leak=0.8))
        images, labels = torch.randn(20, 1, 8, 8, dtype=torch.float64), torch.randint(0, 3, (20,))
        for backend in ("fused", "reference"):
            sim = Simulator(copy.deepcopy(snn), device=torch.device("cpu"), chunk=3, dtype=torch.float64,
                            backend=backend)
            result = sim.run([(images, labels)], [2, 7])
            for T in (2, 7):
                logits = reference_logits(snn, images, T)[T - 1]
                assert result.correct[T] == int((logits.argmax(1) == labels).sum())
            assert result.spikes[7] > 0
        assert entry.build is LeakyIFNeuron
    finally:
        NEURONS.unregister("leaky_if")
    assert "leaky_if" not in NEURONS


def test_a_backend_the_simulator_does_not_know_is_an_error():
    ann, snn, _, _ = tiny_setup("maxnorm")
    with pytest.raises(ValueError, match="backend must be one of"):
        Simulator(snn, device=torch.device("cpu"), backend="numba")
    with pytest.raises(ValueError, match="compile=True"):
        Simulator(snn, device=torch.device("cpu"), backend="reference", compile=True)


def test_output_buffer_is_reused_only_when_nothing_holds_it():
    from snnx.neurons import IFNeuron

    neuron = IFNeuron(torch.tensor(1.0), 0.5)
    neuron.begin_chunk(1, 4)
    x = torch.randn(4, 3)
    first = neuron(x).data_ptr()
    assert neuron(x).data_ptr() == first  # nothing kept the last output: reused
    kept = neuron(x)
    values = kept.clone()
    assert neuron(x).data_ptr() != kept.data_ptr() and torch.equal(kept, values)
    view = neuron(x)[1:]
    held = view.clone()
    neuron(x)
    assert torch.equal(view, held)  # a view of an old output is never overwritten


# -- accounting ---------------------------------------------------------------------------
@pytest.mark.parametrize("conv", [
    dict(in_channels=2, out_channels=3, kernel_size=3, padding=1),
    dict(in_channels=2, out_channels=4, kernel_size=3, stride=2, padding=1),
    dict(in_channels=4, out_channels=4, kernel_size=(3, 5), stride=(2, 1), padding=(0, 2), dilation=(1, 2)),
    dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, groups=2),
    dict(in_channels=3, out_channels=5, kernel_size=1, stride=2),
    dict(in_channels=2, out_channels=2, kernel_size=3, padding="same"),
    dict(in_channels=2, out_channels=2, kernel_size=3, padding=1, padding_mode="reflect"),
    dict(in_channels=2, out_channels=3, kernel_size=3, padding=1, padding_mode="circular"),
])
def test_fanout_forms_equal_the_autograd_fanout(conv):
    from snnx.sim.accounting import fanout_map, layer_fanout

    layer = nn.Conv2d(**conv)
    shape = (conv["in_channels"], 7, 9)
    reference = fanout_map(layer, shape)
    # The independent path: the layer itself (its padding mode included) with unit weights and no bias.
    unit = nn.Conv2d(**conv, bias=False).double()
    nn.init.ones_(unit.weight)
    x = torch.ones(1, *shape, dtype=torch.float64, requires_grad=True)
    unit(x).sum().backward()
    assert torch.equal(reference, x.grad[0])
    fan = layer_fanout(layer, shape)
    assert fan.total == float(reference.sum())
    torch.manual_seed(0)
    indicator = (torch.rand(6, *shape) < 0.4).float()  # 3 steps × 2 images
    expected = (indicator.double() * reference).view(3, -1).sum(1)
    assert torch.equal(fan.weighted(indicator, 3), expected)
    cl = indicator.contiguous(memory_format=torch.channels_last)
    assert torch.equal(fan.weighted(cl, 3), expected)


def test_sops_of_pooled_spikes_count_nonzero_pooled_inputs():
    class PoolNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 2, 3, padding=1)
            self.act1 = nn.ReLU()
            self.pool = nn.AvgPool2d(2)
            self.conv2 = nn.Conv2d(2, 3, 3, padding=1)
            self.act2 = nn.ReLU()
            self.fc = nn.Linear(12, 2)

        def forward(self, x):
            return self.fc(torch.flatten(self.act2(self.conv2(self.pool(self.act1(self.conv1(x))))), 1))

    ann = PoolNet().double()
    with torch.no_grad():
        for layer in (ann.conv1, ann.conv2):
            layer.weight.fill_(0.01)
            layer.bias.fill_(5.0)
    snn, _ = convert(ann, method="maxnorm", stats={"act1": {"max": 1.0}, "act2": {"max": 1.0}},
                     convert={"maxpool": "error", "v_init": None})
    result = simulate(snn, torch.rand(2, 1, 4, 4, dtype=torch.float64), torch.zeros(2, dtype=torch.long), [3], 2)
    # Every neuron fires every step: conv2 sees a 2×2×2 map of nonzero pooled spikes
    # (fan-out of a 2×2 map under 3×3 pad 1: 4 per position) × 3 outputs; fc 12 × 2.
    assert result.per_image(3)["sops"] == (2 * 4 * 4 * 3 + 12 * 2) * 3


@pytest.mark.parametrize("memory_format", ["channels_last", "contiguous"])
@pytest.mark.parametrize("chunk", [1, 3])
def test_accounting_is_the_same_whatever_the_layout_and_chunk(memory_format, chunk):
    from snnx.activations import QCFS

    torch.manual_seed(0)
    ann = TinyNet(act=lambda: QCFS(4, init_threshold=1.0)).eval()
    images = torch.randn(16, 1, 8, 8)
    labels = torch.randint(0, 3, (16,))
    snn, _ = convert(ann, method="qcfs", stats=None, convert={"maxpool": "error", "v_init": None})
    sim = Simulator(snn, device=torch.device("cpu"), chunk=chunk, memory_format=memory_format)
    result = sim.run([(images, labels)], [1, 5, 9])
    # The same counts computed the slow way: every spike-fed layer's nonzero inputs × fan-out.
    reference = Simulator(copy.deepcopy(snn), device=torch.device("cpu"), chunk=1, memory_format="contiguous")
    slow = _slow_accounting(reference, images, 9)
    for T in (1, 5, 9):
        assert result.spikes[T] == slow["spikes"][T - 1]
        assert result.sops[T] == slow["sops"][T - 1]
    without = sim.run([(images, labels)], [9], accounting=False)
    assert without.correct == {9: result.correct[9]} and without.sops[9] == 0


def _slow_accounting(sim, images, T):
    """Spikes and SOPs per step from plain hooks: (x != 0) × autograd fan-out, (out != 0)."""
    from snnx.sim.accounting import fanout_map

    modules = dict(sim.snn.named_modules())
    spikes, sops = torch.zeros(T, dtype=torch.float64), torch.zeros(T, dtype=torch.float64)
    step = {"t": 0}

    def count_spikes(_m, _i, out):
        spikes[step["t"]] += float((out != 0).sum())

    def count_sops(layer):
        def hook(_m, inputs):
            x = inputs[0]
            sops[step["t"]] += float(((x != 0).double() * fanout_map(layer, x.shape[1:])).sum())
        return hook

    handles = [m.register_forward_hook(count_spikes) for _, m in sim.neurons]
    handles += [modules[n].register_forward_pre_hook(count_sops(modules[n])) for n in sim.spike_fed]
    try:
        for _, n in sim.neurons:
            n.begin_batch(T)
            n.begin_chunk(1, images.shape[0])
        with torch.no_grad():
            for t in range(T):
                step["t"] = t
                sim.snn(images)
    finally:
        for h in handles:
            h.remove()
    return {"spikes": spikes.cumsum(0), "sops": sops.cumsum(0)}


# -- Poisson encoding ------------------------------------------------------------------------
def test_poisson_first_layer_synapses_are_sops():
    ann = AllSpikingNet().double()
    stats = {"act1": {"max": 1.0}, "act2": {"max": 1.0}}
    snn, _ = convert(ann, method="maxnorm", stats=stats, convert={"maxpool": "error", "v_init": None})
    labels = torch.zeros(3, dtype=torch.long)
    mean, std = (0.25,), (0.5,)
    white = (torch.ones(3, 1, 4, 4, dtype=torch.float64) - mean[0]) / std[0]  # intensity 1: a spike every step
    sim = Simulator(snn, device=torch.device("cpu"), chunk=2, dtype=torch.float64, encoding="poisson", seed=0)
    result = sim.run([(white, labels)], [1, 5], mean=mean, std=std)
    per_step = 100 * 2 + 100 * 2 * 3 + 48 * 2  # conv1 now counts its input spikes; conv2; fc
    for T in (1, 5):
        assert result.per_image(T)["sops"] == per_step * T
        assert result.per_image(T)["macs"] == 0
    black = (torch.zeros(3, 1, 4, 4, dtype=torch.float64) - mean[0]) / std[0]  # intensity 0: never spikes
    result = sim.run([(black, labels)], [5], mean=mean, std=std)
    assert result.per_image(5)["sops"] == (100 * 2 * 3 + 48 * 2) * 5
    assert result.encoding == "poisson"


def test_poisson_real_valued_layer_after_the_first_costs_macs_every_step():
    class TwoConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 2, 3, padding=1)
            self.conv2 = nn.Conv2d(2, 2, 3, padding=1)
            self.act = nn.ReLU()
            self.fc = nn.Linear(32, 2)

        def forward(self, x):
            return self.fc(torch.flatten(self.act(self.conv2(self.conv1(x))), 1))

    snn, _ = convert(TwoConv().double(), method="maxnorm", stats={"act": {"max": 1.0}},
                     convert={"maxpool": "error", "v_init": None})
    images = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    sim = Simulator(snn, device=torch.device("cpu"), chunk=3, dtype=torch.float64)
    direct = sim.run([(images, torch.zeros(2, dtype=torch.long))], [4])
    assert direct.macs_per_image == 100 * 2 + 100 * 2 * 2 and direct.macs(4) == direct.macs_per_image
    poisson = sim.run([(images, torch.zeros(2, dtype=torch.long))], [4], encoding="poisson")
    assert poisson.macs_per_image == 0 and poisson.macs_per_step == 100 * 2 * 2
    assert poisson.per_image(4)["macs"] == 100 * 2 * 2 * 4


@pytest.fixture(scope="module")
def digits_snn():
    from snnx.calibration import calibrate
    from snnx.data import build_dataset, dataset_info

    (x, y), (xt, yt) = build_dataset("digits", "train").tensors, build_dataset("digits", "test").tensors
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                          nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(4):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    stats = calibrate(model, [x[:512]], percentile=99.9, num_batches=1, device=torch.device("cpu"))
    snn, _ = convert(model, method="pnorm", stats=stats, convert={"maxpool": "error", "v_init": None})
    return snn, xt, yt, dataset_info("digits")


def test_poisson_is_reproducible_with_a_seed_and_chunk_invariant(digits_snn):
    snn, x, y, info = digits_snn
    batches = [(x[:100], y[:100]), (x[100:160], y[100:160])]

    def run(seed, chunk, steps=(3, 10)):
        sim = Simulator(copy.deepcopy(snn), device=torch.device("cpu"), chunk=chunk, dtype=torch.float64,
                        encoding="poisson", seed=seed)
        return sim.run(batches, steps, mean=info.mean, std=info.std)

    a, b = run(1, 4), run(1, 4)
    assert a.correct == b.correct and a.spikes == b.spikes and a.sops == b.sops
    c = run(1, 1)  # draws depend on (seed, batch, step) only
    assert c.correct == a.correct and c.spikes == a.spikes and c.sops == a.sops
    single = run(1, 4, steps=(3,))  # the sweep reads the same run
    assert single.spikes[3] == a.spikes[3]
    assert run(2, 4).spikes != a.spikes


def test_poisson_accuracy_converges_to_direct_encoding(digits_snn):
    snn, x, y, info = digits_snn
    steps = [2, 8, 128]
    direct = Simulator(copy.deepcopy(snn), device=torch.device("cpu")).run([(x, y)], steps)
    poisson = Simulator(copy.deepcopy(snn), device=torch.device("cpu"), encoding="poisson", seed=0).run(
        [(x, y)], steps, mean=info.mean, std=info.std)
    assert direct.accuracy(128) > 60  # the tiny net learned something
    assert abs(poisson.accuracy(128) - direct.accuracy(128)) <= 2.5
    assert poisson.accuracy(2) < poisson.accuracy(8) < poisson.accuracy(128) + 1e-9
    assert poisson.accuracy(2) < poisson.accuracy(128) - 20


def test_poisson_rejects_a_network_with_its_own_encoder():
    from snnx.neurons import ScatterGatherEncoder

    class Enc(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)
            self.enc = ScatterGatherEncoder(1)
            self.fc = nn.Linear(32, 2)

        def forward(self, x):
            return self.fc(torch.flatten(self.enc(self.conv(x)), 1))

    root = Enc()
    sim = Simulator(torch.fx.GraphModule(root, LeafNeurons().trace(root)), device=torch.device("cpu"))
    with pytest.raises(ValueError, match="scatter-and-gather"):
        sim.run([(torch.rand(2, 1, 4, 4), torch.zeros(2, dtype=torch.long))], [2], encoding="poisson")


@pytest.mark.parametrize("chunk", [1, 4])
def test_layer_diagnostics_agree_with_the_spike_counters(chunk):
    from snnx.activations import QCFS

    torch.manual_seed(0)
    ann = TinyNet(act=lambda: QCFS(4, init_threshold=1.0)).eval()
    images, labels = torch.randn(24, 1, 8, 8), torch.randint(0, 3, (24,))
    snn, _ = convert(ann, method="qcfs", stats=None, convert={"maxpool": "error", "v_init": None})
    sim = Simulator(snn, device=torch.device("cpu"), chunk=chunk)
    batches = [(images[:16], labels[:16]), (images[16:], labels[16:])]
    result = sim.run(batches, [3, 8], ann=ann, record_layers=True)
    neurons = {"act1": 4 * 8 * 8, "act2": 6 * 4 * 4, "act3": 12}
    for T in (3, 8):
        rows = [r for r in result.layer_rows if r["T"] == T]
        from_rates = sum(r["firing_rate"] * neurons[r["layer"]] * 24 * T for r in rows)
        assert from_rates == pytest.approx(result.spikes[T], rel=1e-9)
    other = Simulator(copy.deepcopy(snn), device=torch.device("cpu"), chunk=5 - chunk, memory_format="contiguous")
    again = other.run(batches, [3, 8], ann=ann, record_layers=True)
    for a, b in zip(result.layer_rows, again.layer_rows):
        assert a["layer"] == b["layer"] and a["T"] == b["T"]
        assert a["firing_rate"] == pytest.approx(b["firing_rate"], abs=1e-3)
        assert a["floor_error"] == pytest.approx(b["floor_error"], abs=1e-3)


class WideNet(nn.Module):
    """Layers wide enough (≥ 2^16 neurons per step at batch 32) for sim.compile's fused steps."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.act1 = nn.ReLU()
        self.pool = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.act2 = nn.ReLU()
        self.fc = nn.Linear(8 * 16 * 16, 3)

    def forward(self, x):
        x = self.act2(self.conv2(self.pool(self.act1(self.conv1(x)))))
        return self.fc(torch.flatten(x, 1))


@pytest.mark.parametrize("method", ["maxnorm", "shift"])
def test_compiled_steps_match_the_eager_path_bit_for_bit(method, monkeypatch):
    import snnx.neurons.base as neuron_base
    from snnx.calibration import calibrate
    from snnx.neurons.base import COMPILE_MIN_NUMEL

    fused_calls = []
    real_fused_step = neuron_base.fused_if_step
    monkeypatch.setattr(neuron_base, "fused_if_step", lambda *a: fused_calls.append(1) or real_fused_step(*a))

    torch.manual_seed(0)
    ann = WideNet().eval()
    images, labels = torch.randn(32, 1, 32, 32), torch.randint(0, 3, (32,))
    stats = calibrate(ann, [images], percentile=99.9, num_batches=1, device=torch.device("cpu"))
    conv = {"name": method, "percentile": 99.9, "maxpool": "error", "v_init": None, "variant": "S",
            "shift_T": None, "presim": 4}
    snn, _ = convert(ann, method=method, stats=stats, convert=_own_keys(method, conv))
    assert 32 * 8 * 16 * 16 >= COMPILE_MIN_NUMEL  # both hidden layers take the compiled path
    for accounting in (True, False):  # spike indicator written, or the output alone
        results, potentials = [], []
        for compiled in (False, True):
            sim = Simulator(copy.deepcopy(snn), device=torch.device("cpu"), chunk=3, compile=compiled)
            results.append(sim.run([(images, labels)], [2, 7], accounting=accounting))
            potentials.append([n.v.clone() for _, n in sim.neurons])
        eager, fused = results
        # The compiled run took the fused path: 1 warm-up call + 2 layers × the steps simulated (one pass to
        # T = 7, or, for the T-dependent shift, passes of 2 and 7 steps); the eager run none.
        assert len(fused_calls) == 1 + 2 * (7 if method == "maxnorm" else 2 + 7)
        fused_calls.clear()
        assert eager.correct == fused.correct and eager.spikes == fused.spikes and eager.sops == fused.sops
        assert all(torch.equal(a, b) for a, b in zip(*potentials))
        if accounting:
            assert eager.spikes[7] > 0
