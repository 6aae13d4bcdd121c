"""The simulation engine: multi-step vs step-by-step, one-pass sweeps, accounting."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from snnx.convert import convert
from snnx.neurons import Neuron
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
    snn, _ = convert(ann, method=method, stats=stats, convert=conv)
    return ann, snn, images, labels


def reference_logits(snn, images, T):
    """Independent slow path: the whole graph, one step at a time, no prefix split."""
    neurons = [m for m in snn.modules() if isinstance(m, Neuron)]
    for n in neurons:
        n.reset_state()
        n.time_steps, n.batch_size = 1, images.shape[0]
        if hasattr(n, "set_horizon"):
            n.set_horizon(T)
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
