"""The MSAT neuron's fused kernel against its reference step, and the elementary functions both use.

The kernel (snnx/kernels/msat.py) must give the reference step's bits — outputs,
membrane potentials, running sums, the generator's state — for every layout,
dtype and option, across chunk boundaries; each case checks that the kernel
ran. The functions of snnx/kernels/elementary.py are checked against torch's
in float64 (accuracy) and on the values where they must be exact.
"""

from __future__ import annotations

import math

import pytest
import torch

from snnx import kernels
from snnx.kernels import elementary
from snnx.neurons import MSATNeuron

needs_numba = pytest.mark.skipif(not kernels.enabled(), reason="numba not importable")

CONFIGS = {
    "default": {},
    "raw": {"units": "raw"},
    "det-only": {"use_dtt": False},
    "dtt-only": {"use_det": False, "alpha": 0.3, "k_a": 0.8, "k_i": 1.5, "tau_mp": 0.5},
    "folded": {"alpha": 0.3, "k_a": 2.0, "k_i": 1.5, "tau_mp": 0.5, "tau_rd": 0.8},  # τ_mp·k_a = 1, none of them 1
    "folded-dtt-only": {"use_det": False, "units": "raw", "k_i": 0.7},
    "fixed": {"fixed_fraction": 0.7},
    "no-adaptation": {"use_dtt": False, "use_det": False},
    "confidence": {"confidence": 0.6, "confidence_steps": 6, "seed": 3},
    "confidence-reset": {"confidence": 0.5, "confidence_reset": True, "units": "raw", "v_t": 0.3,
                         "det_tau": "once", "tau_rd": 1.3, "v_init": 0.25},
}
LAYOUTS = ["channels_last", "nchw", "rows", "ncl", "constant"]


def _input(layout, dtype, steps, batch):
    shape = {"rows": (batch, 6), "ncl": (batch, 5, 7)}.get(layout, (batch, 5, 4, 3))
    g = torch.Generator().manual_seed(4)
    if layout == "constant":  # direct encoding: one [B, …] current for every step
        z = (torch.randn(shape, generator=g, dtype=dtype) * 0.8 + 0.3).contiguous(memory_format=torch.channels_last)
        return shape, None, z
    x = torch.randn((steps * batch, *shape[1:]), generator=g, dtype=dtype) * 0.8 + 0.3
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    return shape, x, None


def _run(neuron, shape, x, z, parts, backend, track):
    """Outputs, final state and per-chunk published counts of a run in chunks of ``parts`` steps."""
    batch = shape[0]
    neuron.start_run(backend=backend, track_spikes=track)
    neuron.begin_batch(sum(parts))
    outs, counts, start = [], [], 0
    for steps in parts:
        neuron.begin_chunk(steps, batch)
        part = z if x is None else x[start * batch:(start + steps) * batch]
        out = neuron(part)
        outs.append(out.clone())
        counts.append(None if neuron.spike_counts is None else neuron.spike_counts.clone())
        start += steps
    state = [neuron.v.clone(), None if neuron.v_post_sum is None else neuron.v_post_sum.clone(),
             None if neuron.generator is None else neuron.generator.get_state(), neuron.t]
    return torch.cat(outs), state, counts


def _equal(a, b) -> bool:
    return (a is None and b is None) or (torch.is_tensor(a) and torch.equal(a, b)) or a == b


@needs_numba
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_msat_kernel_equals_the_reference_step(monkeypatch, dtype, layout, config):
    from snnx.kernels import msat as msat_kernels

    parts = [4, 1, 6]  # chunk boundaries inside and after the confidence steps
    shape, x, z = _input(layout, dtype, sum(parts), 3)
    theta = torch.tensor([0.6, 1.0, 1.7, 0.9, 1.2, 0.8, 1.1][:shape[1]])
    calls = []
    fn = msat_kernels._kernels()
    for name in list(fn):
        monkeypatch.setitem(fn, name, lambda *a, _f=fn[name], _n=name: (calls.append(_n), _f(*a))[1])
    track = config != "raw"  # both with and without the counts
    fused = _run(MSATNeuron(theta, **CONFIGS[config]), shape, x, z, parts, "fused", track)
    assert len(calls) == len(parts), calls  # every chunk ran in the kernel
    reference = _run(MSATNeuron(theta, **CONFIGS[config]), shape, x, z, parts, "reference", track)
    assert torch.equal(fused[0], reference[0]) and fused[0].stride() == reference[0].stride()
    assert all(_equal(a, b) for a, b in zip(fused[1], reference[1]))
    sizes = [0] + list(torch.tensor(parts).cumsum(0) * shape[0])
    for i, counts in enumerate(fused[2]):  # positive outputs per (row, position), channels summed
        if not track:
            assert counts is None
            continue
        spiked = (fused[0][sizes[i]:sizes[i + 1]] > 0).to(dtype)
        per_position = spiked.sum(1)
        assert torch.equal(counts, per_position if len(shape) != 3 else per_position.reshape(per_position.shape[0], -1))
    if config == "default":  # θ really adapts: not θ_max at every step
        assert not torch.equal(fused[0], _run(MSATNeuron(theta, use_dtt=False, use_det=False), shape, x, z, parts,
                                              "reference", False)[0])


@needs_numba
def test_msat_kernel_falls_back_where_it_does_not_apply(monkeypatch):
    """A layout the kernel does not take, or the kernels switched off: the reference steps, the same bits."""
    from snnx.kernels import msat as msat_kernels

    theta = torch.tensor([0.6, 1.0, 1.7])
    x = (torch.randn(4, 3, 3, 5) * 0.8 + 0.3).transpose(2, 3)  # [T·B, C, H, W] with swapped spatial strides
    expected = MSATNeuron(theta).run(x.view(4, 1, 3, 5, 3))
    calls = []
    fn = msat_kernels._kernels()
    for name in list(fn):
        monkeypatch.setitem(fn, name, lambda *a, _f=fn[name], _n=name: (calls.append(_n), _f(*a))[1])
    got = []
    for flag in ("1", "0"):
        monkeypatch.setenv("SNNX_NUMBA", flag)
        neuron = MSATNeuron(theta)
        neuron.start_run(backend="fused")
        neuron.begin_batch(4)
        neuron.begin_chunk(4, 1)
        got.append(neuron(x))
    assert not calls
    assert torch.equal(got[0], got[1]) and torch.equal(got[0].view(expected.shape), expected)


def test_confidence_draws_for_a_chunk_equal_one_draw_per_step():
    """What the fused path relies on: the generator yields the same numbers drawn at once or per step."""
    for shape in [(7,), (3, 17, 5), (16, 6, 12, 12)]:
        g = torch.Generator().manual_seed(3)
        per_step = torch.stack([torch.rand(shape, generator=g) for _ in range(5)])
        g = torch.Generator().manual_seed(3)
        assert torch.equal(per_step, torch.rand((5, *shape), generator=g))


# -- the elementary functions ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_elementary_functions_are_accurate(dtype):
    eps = torch.finfo(dtype).eps
    c = elementary.constants(dtype)
    x = torch.linspace(c.lo, c.hi, 100001, dtype=dtype)
    exact = torch.exp(x.double())
    assert float(((elementary.exp(x).double() - exact) / exact).abs().max()) < 3 * eps
    x = torch.linspace(-60, 60, 100001, dtype=dtype)
    exact = torch.nn.functional.softplus(x.double(), threshold=1e9)
    assert float(((elementary.softplus(x).double() - exact) / exact).abs().max()) < 4 * eps
    exact = torch.sigmoid(x.double())
    assert float(((elementary.sigmoid(x).double() - exact) / exact).abs().max()) < 4 * eps
    y = torch.linspace(0, 1, 10001, dtype=dtype)[1:]
    exact = torch.log1p(y.double())
    assert float(((elementary.log1p_unit(y).double() - exact) / exact).abs().max()) < 4 * eps


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_elementary_functions_at_their_ends(dtype):
    inf, nan = math.inf, math.nan
    x = torch.tensor([0.0, -0.0, 1.0, -1e30, 1e30, inf, -inf, nan], dtype=dtype)
    e = elementary.exp(x)
    assert e[:2].tolist() == [1.0, 1.0] and float(e[2]) == pytest.approx(math.e, rel=4 * torch.finfo(dtype).eps)
    assert e[3:7].tolist() == [0.0, inf, inf, 0.0] and math.isnan(float(e[7]))
    s = elementary.sigmoid(x)
    assert s[:2].tolist() == [0.5, 0.5] and s[3:7].tolist() == [0.0, 1.0, 1.0, 0.0]
    sp = elementary.softplus(x)
    assert float(sp[0]) == pytest.approx(math.log(2), rel=4 * torch.finfo(dtype).eps)
    assert float(sp[3]) == 0.0 and float(sp[4]) == float(torch.tensor(1e30, dtype=dtype))
    assert float(sp[5]) == inf and float(sp[6]) == 0.0
    # 2^n from its bits is exact over the normal range
    n = torch.arange(-100, 101, dtype=dtype)
    assert torch.equal(elementary.pow2(n), torch.tensor([math.ldexp(1.0, int(k)) for k in n], dtype=dtype))


def test_elementary_values_do_not_depend_on_position():
    """The reason they exist: an element's result is the same wherever it sits (torch.exp's is not promised)."""
    x = torch.randn(1037, dtype=torch.float32) * 10
    whole = elementary.sigmoid(x)
    one_by_one = torch.stack([elementary.sigmoid(x[i:i + 1])[0] for i in range(0, 1037, 7)])
    assert torch.equal(whole[::7], one_by_one)


@needs_numba
def test_msat_network_results_and_layer_rows_equal_the_reference_backend():
    """A converted LeNet: accuracy, spikes, SOPs and layers.csv's rows from the kernel equal the reference steps'."""
    import copy

    from snnx.activations import make_act_factory
    from snnx.calibration import calibrate
    from snnx.convert import convert
    from snnx.models import create_model
    from snnx.sim import Simulator

    cpu = torch.device("cpu")
    torch.manual_seed(0)
    ann = create_model("lenet", in_channels=1, image_size=28, num_classes=10, act_factory=make_act_factory("relu"),
                       width=0.25).eval()
    images, labels = torch.randn(12, 1, 28, 28), torch.randint(0, 10, (12,))
    stats = calibrate(ann, [images], percentile=99.9, num_batches=1, device=cpu)
    snn, _ = convert(ann, method="msat", stats=stats, convert={"confidence_last": 0.683})
    runs = []
    for backend in ("fused", "reference"):
        sim = Simulator(copy.deepcopy(snn), device=cpu, chunk=3, backend=backend)
        r = sim.run([(images, labels)], [1, 2, 5, 8], ann=ann, record_layers=True)
        runs.append((r.correct, r.spikes, r.sops, r.layer_rows))
    assert runs[0][:3] == runs[1][:3] and runs[0][1][8] > 0
    for fused, reference in zip(runs[0][3], runs[1][3]):
        assert fused.keys() == reference.keys()
        for key in fused:
            if isinstance(fused[key], float):
                assert fused[key] == pytest.approx(reference[key], rel=1e-9, abs=1e-12, nan_ok=True), key
            else:
                assert fused[key] == reference[key], key
