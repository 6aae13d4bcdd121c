"""layers.csv's SIN ratio, SIN share and firing rate on a net small enough to count its spikes by hand.

He et al. (MSAT), §3.3: SIN are the neurons R = {j | Σ_{t≤T} Θ_{t,j} > 0, a_j < 0} that spike although their
ANN pre-activation is negative; Figs. 2/4 plot the "SIN ratio" per layer, Fig. 5 the firing rate per layer.

The net (θ = 1 everywhere, soft reset, V(0) = 0, direct input, one image):

    layer "1" = IF(x), x = (1.0, 0.5, −0.5):
        a: z = 1.0 every step → V = 1 ≥ θ: spikes at every step                 (a = 1.0, active)
        b: z = 0.5 → V = 0.5, 1.0: spikes at t = 2, 4, 6, …                     (a = 0.5, active)
        f: z = −0.5 → never reaches θ                                           (a = −0.5, inactivated, silent)
    layer "3" = IF(W·s¹) with rows c = (1.2, −3, 0), d = (−1, 0, 0), e = (0.5, 0, 0):
        ANN pre-activations c = 1.2 − 3·0.5 = −0.3, d = −1.0, e = 0.5
        c: t = 1 only a has spiked: z = 1.2 → V = 1.2 ≥ θ: one spike (V → 0.2); from t = 2 on the
           inputs alternate −1.8, +1.2, so V falls by 0.6 every two steps and never reaches θ again
           → c is a SIN neuron from T = 1 on, with exactly one spike;
        d: z = −1 every step, never spikes (inactivated, silent);
        e: z = 0.5 every step, spikes at t = 2, 4, … (active).

So at every T: layer "1": sin_ratio = 0/1, sin_share = 0/3, spikes T + ⌊T/2⌋;
layer "3": sin_ratio = 1/2 (c of {c, d}), sin_share = 1/3, spikes 1 + ⌊T/2⌋.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from snnx.convert.graph import set_submodule, trace
from snnx.kernels import probe
from snnx.neurons import IFNeuron, MSATNeuron
from snnx.sim import Simulator

X = [1.0, 0.5, -0.5]
W2 = [[1.2, -3.0, 0.0], [-1.0, 0.0, 0.0], [0.5, 0.0, 0.0]]
T_READS = [1, 2, 3, 5, 8]


def _linear(weight: list[list[float]]) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight), bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight, dtype=torch.float64))
    return layer


def _neuron(kind: str):
    theta = torch.tensor(1.0, dtype=torch.float64)
    if kind == "msat":  # MSAT's neuron with both threshold terms off is the IF neuron with θ = θ_max
        # (§4.2); its output θ(t)·s publishes no spike indicator, so the probe counts spikes itself.
        return MSATNeuron(theta, 0.0, use_dtt=False, use_det=False, confidence=1.0)
    return IFNeuron(theta, 0.0)


def _nets(kind: str = "if"):
    eye = [[1.0 if i == j else 0.0 for j in range(3)] for i in range(3)]
    readout = [[1.0, 1.0, 1.0], [1.0, -1.0, 0.0]]
    ann = nn.Sequential(_linear(eye), nn.ReLU(), _linear(W2), nn.ReLU(), _linear(readout)).eval()
    snn = trace(copy.deepcopy(ann))  # as the converters do: the ReLUs stay graph nodes, then become neurons
    for name in ("1", "3"):  # the neurons keep the ReLUs' names, which the probe pairs with the ANN's
        set_submodule(snn, name, _neuron(kind))
    return ann, snn


def _if_trace(currents, steps):
    """Plain-Python IF neurons (Eq. 2–3: V += z; spike when V ≥ θ; V −= θ·spike), θ = 1: spike trains."""
    v = [0.0] * len(currents(0, None))
    trains = []
    for t in range(steps):
        z = currents(t, trains)
        s = []
        for i in range(len(v)):
            v[i] += z[i]
            s.append(1 if v[i] >= 1.0 else 0)
            v[i] -= s[i]
        trains.append(s)
    return trains


def _reference(T):
    """The paper's quantities per layer, from a float64 step-by-step simulation written out here."""
    first = _if_trace(lambda t, _: X, T)
    second = _if_trace(lambda t, _: [sum(w * s for w, s in zip(row, first[t])) for row in W2], T)
    pre = {"1": X, "3": [sum(w * max(x, 0.0) for w, x in zip(row, X)) for row in W2]}
    out = {}
    for name, trains in (("1", first), ("3", second)):
        spiked = [any(step[j] for step in trains) for j in range(3)]
        inactive = [a <= 0 for a in pre[name]]
        sin = sum(s and i for s, i in zip(spiked, inactive))
        out[name] = {"sin_ratio": sin / sum(inactive), "sin_share": sin / 3,
                     "firing_rate": sum(map(sum, trains)) / (3 * T)}
    return out


def _rows(ann, snn, chunk):
    images = torch.tensor([X], dtype=torch.float64)
    sim = Simulator(snn, device=torch.device("cpu"), chunk=chunk, dtype=torch.float64)
    rows = sim.run([(images, torch.tensor([0]))], T_READS, ann=ann, record_layers=True).layer_rows
    return {(r["layer"], r["T"]): r for r in rows}


def test_hand_counted_net_is_what_the_docstring_says():
    """The independent reference reproduces the counts worked out by hand above."""
    for T in T_READS:
        ref = _reference(T)
        assert ref["1"] == {"sin_ratio": 0.0, "sin_share": 0.0, "firing_rate": (T + T // 2) / (3 * T)}
        assert ref["3"] == {"sin_ratio": 0.5, "sin_share": 1 / 3, "firing_rate": (1 + T // 2) / (3 * T)}


@pytest.mark.parametrize("kind", ["if", "msat"])
@pytest.mark.parametrize("numba", ["1", "0"])  # the fused probe kernels and the torch read-out
@pytest.mark.parametrize("chunk", [1, 3])
def test_layers_csv_sin_and_rate_match_the_hand_count(monkeypatch, kind, numba, chunk):
    monkeypatch.setenv("SNNX_NUMBA", numba)
    calls = []
    fn = probe._kernels()
    if fn is not None:
        for name in list(fn):
            monkeypatch.setitem(fn, name, lambda *a, _f=fn[name], _n=name: (calls.append(_n), _f(*a))[1])
    ann, snn = _nets(kind)
    rows = _rows(ann, snn, chunk)
    if numba == "1" and fn is not None:
        assert "read_out" in calls  # the fused read-out produced these rows
    assert set(rows) == {(name, T) for name in ("1", "3") for T in T_READS}
    for T in T_READS:
        ref = _reference(T)
        for name in ("1", "3"):
            row = rows[(name, T)]
            for key in ("sin_ratio", "sin_share", "firing_rate"):
                assert math.isclose(row[key], ref[name][key], rel_tol=0, abs_tol=1e-12), (name, T, key, row[key])


def test_sin_ratio_pools_images_and_is_nan_without_inactivated_neurons(monkeypatch):
    """Two images: counts are summed over the batch before dividing (not a mean of per-image ratios);
    a layer with no neuron at a ≤ 0 has no SIN ratio (NaN), while its SIN share is 0."""
    monkeypatch.setenv("SNNX_NUMBA", "0")
    ann, snn = _nets()
    # Image 2: every input positive, so layer "1" has no inactivated neuron on it; layer "3" gets
    # c = 1.2 − 3·0.5 + 0 = −0.3 again (same a, b), d = −1, e = 0.5.
    images = torch.tensor([X, [1.0, 0.5, 0.25]], dtype=torch.float64)
    sim = Simulator(snn, device=torch.device("cpu"), chunk=2, dtype=torch.float64)
    rows = {(r["layer"], r["T"]): r for r in
            sim.run([(images, torch.tensor([0, 1]))], [4], ann=ann, record_layers=True).layer_rows}
    # layer "1": f (image 1) is the only inactivated neuron and stays silent; image 2's 0.25 input
    # spikes at t = 4 (V = 1.0): spikes (4 + 2 + 0) + (4 + 2 + 1) over 6 neurons · 4 steps.
    assert rows[("1", 4)]["sin_ratio"] == 0.0 and rows[("1", 4)]["sin_share"] == 0.0
    assert rows[("1", 4)]["firing_rate"] == pytest.approx(13 / 24, abs=1e-12)
    # layer "3": c spikes once on both images (SIN), d silent on both: 2 of 4 inactivated, 2 of 6 neurons.
    assert rows[("3", 4)]["sin_ratio"] == pytest.approx(0.5, abs=1e-12)
    assert rows[("3", 4)]["sin_share"] == pytest.approx(2 / 6, abs=1e-12)
    only_positive = torch.tensor([[1.0, 0.5, 0.25]], dtype=torch.float64)
    one = {(r["layer"], r["T"]): r for r in
           Simulator(_nets()[1], device=torch.device("cpu"), chunk=2, dtype=torch.float64)
           .run([(only_positive, torch.tensor([0]))], [4], ann=ann, record_layers=True).layer_rows}
    assert math.isnan(one[("1", 4)]["sin_ratio"]) and one[("1", 4)]["sin_share"] == 0.0
