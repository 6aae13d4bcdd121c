"""The numba kernels of the QCFS-family quantiser against the torch code (snnx/kernels/quantiser.py).

Forward and ∂L/∂x must be bit for bit the torch code's (same ops, same order,
same dtype); ∂L/∂λ is the same sum in another order. Each case also checks
that the kernel ran, so a silent fallback cannot pass for agreement.
"""

from __future__ import annotations

import pytest
import torch

from snnx import kernels
from snnx.activations import CSQCFS, QCFS
from snnx.kernels import probe, quantiser
from snnx.activations.functional import _QuantisedClipFn, grad_window_bounds

pytestmark = pytest.mark.skipif(not kernels.enabled(), reason="numba not importable")


def _inputs(shape, dtype, lam, L, phi, layout):
    """Random x with λ's step boundaries (x/λ·L + φ integer), 0, −0, λ, each ± an ulp, planted in channel 0."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=dtype) * 3
    l0 = float(lam.reshape(-1)[0])
    h = l0 * phi / L  # the shifted window's ends −φλ/L and λ − φλ/L, in float64 and as the code rounds them
    lo, hi = [float(t) for t in grad_window_bounds(lam.reshape(-1)[:1], L, phi)]
    special = torch.tensor([0.0, -0.0, l0, l0 * 1.5, -l0, lo, hi, -h, l0 - h]
                           + [l0 * (n - phi) / L for n in range(1, L + 1)], dtype=dtype)
    special = torch.cat([special, torch.nextafter(special, special + 1), torch.nextafter(special, special - 1)])
    channel0 = x[:, 0] if lam.dim() > 0 else x
    values = channel0.reshape(-1).clone()
    k = min(len(special), values.numel())
    values[:k] = special[:k]
    channel0.copy_(values.reshape(channel0.shape))
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _run(x, lam, L, phi, clip_after, grad, window="clip"):
    xr = x.clone().requires_grad_()
    lr = lam.clone().requires_grad_()
    y = _QuantisedClipFn.apply(xr, lr, L, phi, clip_after, window)
    y.backward(grad)
    return y.detach(), xr.grad, lr.grad


def _count_calls(monkeypatch):
    calls = []
    table = quantiser._kernels()
    for name in list(table):
        if name.startswith(("forward_", "backward_")):
            fn = table[name]
            monkeypatch.setitem(table, name, lambda *a, _fn=fn, _n=name: (calls.append(_n), _fn(*a))[1])
    return calls


CASES = [  # shape, channel-wise λ, layout
    ((6, 5, 7, 3), True, "nchw"),
    ((6, 5, 7, 3), True, "channels_last"),
    ((6, 5, 7, 3), False, "nchw"),
    ((6, 5, 7, 3), False, "channels_last"),
    ((40, 9), True, "rows"),
    ((40, 9), False, "rows"),
    ((6, 4, 11), True, "nchw"),
    ((33,), False, "flat"),
]


@pytest.mark.parametrize("window", ["clip", "shifted"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("L,phi", [(4, 0.5), (3, 0.3), (8, 0.0), (1, 0.5)])
@pytest.mark.parametrize("clip_after", [False, True])
@pytest.mark.parametrize("shape,channelwise,layout", CASES)
def test_kernels_equal_the_torch_code(monkeypatch, dtype, L, phi, clip_after, shape, channelwise, layout, window):
    g = torch.Generator().manual_seed(1)
    if channelwise:
        lam = (torch.rand(shape[1], generator=g, dtype=dtype) * 3 + 0.2).reshape((1, -1) + (1,) * (len(shape) - 2))
    else:
        lam = torch.tensor(2.3, dtype=dtype)
    x = _inputs(shape, dtype, lam, L, phi, layout)
    grad = torch.randn(shape, generator=g, dtype=dtype)
    if layout == "channels_last":
        grad = grad.contiguous(memory_format=torch.channels_last)
    calls = _count_calls(monkeypatch)
    fused = _run(x, lam, L, phi, clip_after, grad, window)
    assert len(calls) == 2, calls  # the forward and the backward kernel ran
    monkeypatch.setenv("SNNX_NUMBA", "0")
    plain = _run(x, lam, L, phi, clip_after, grad, window)
    assert len(calls) == 2
    assert torch.equal(fused[0], plain[0]) and fused[0].stride() == plain[0].stride()
    assert torch.equal(fused[1], plain[1])
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(fused[2], plain[2], rtol=tol, atol=tol * shape[0])


def _sequential_grad_lam(x, lam, y, grad, L, phi, window, layout):
    """∂L/∂λ as the kernels add it, one scalar at a time in numpy: per (image, channel) over positions
    ("ncm"), or per block of rows and channel over rows ("rc", min(rows, 64) blocks); then torch's sum."""
    import numpy as np

    t = np.float32 if x.dtype == torch.float32 else np.float64
    C = lam.numel()
    lam_c = lam.reshape(-1)
    if window == "shifted":
        lo, hi = (b.numpy() for b in grad_window_bounds(lam_c, L, phi))
    else:
        lo = hi = lam_c.numpy()
    lam_n = lam_c.numpy()
    if layout == "rows":
        xs, ys, gs = (v.numpy() for v in (x, y, grad))  # [R, C]
        blocks = min(xs.shape[0], 64)
        parts = np.zeros((blocks, C), t)
        for b in range(blocks):
            for i in range(b * xs.shape[0] // blocks, (b + 1) * xs.shape[0] // blocks):
                for c in range(C):
                    parts[b, c] = parts[b, c] + _dlam_term(xs[i, c], ys[i, c], gs[i, c], lam_n[c], lo[c], hi[c],
                                                           window, t)
    else:
        xs, ys, gs = (v.reshape(x.shape[0], C, -1).numpy() for v in (x, y, grad))
        parts = np.zeros((x.shape[0], C), t)
        for n in range(xs.shape[0]):
            for c in range(C):
                acc = t(0)
                for m in range(xs.shape[2]):
                    acc = acc + _dlam_term(xs[n, c, m], ys[n, c, m], gs[n, c, m], lam_n[c], lo[c], hi[c], window, t)
                parts[n, c] = acc
    return torch.from_numpy(parts).sum(0).reshape(lam.shape)


def _dlam_term(xv, yv, gv, th, lo, hi, window, t):
    """One element's grad_y·∂y/∂λ: (y − x)·(1/λ) inside the window, 1 above it, 0 below."""
    if window == "shifted":
        inside, above = lo <= xv < hi, xv >= hi
    else:
        inside, above = 0 <= xv <= th, xv > th
    return gv * ((yv - xv) * (t(1) / th) if inside else t(1) if above else t(0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("window,clip_after", [("shifted", True), ("clip", False)])
@pytest.mark.parametrize("shape,layout", [((3, 19, 5, 4), "nchw"), ((2, 8, 3, 3), "nchw"), ((3, 5, 6), "nchw"),
                                          ((70, 11), "rows")])
def test_kernel_threshold_gradient_adds_in_its_documented_order(monkeypatch, dtype, window, clip_after, shape,
                                                                layout):
    """The fused ∂L/∂λ bit for bit: each partial sum added one term at a time in its fixed order (so
    training results do not depend on how the kernel schedules the adds), then torch's sum of the parts."""
    g = torch.Generator().manual_seed(2)
    lam = (torch.rand(shape[1], generator=g, dtype=dtype) * 3 + 0.2).reshape((1, -1) + (1,) * (len(shape) - 2))
    x = _inputs(shape, dtype, lam, 4, 0.5, layout)
    grad = torch.randn(shape, generator=g, dtype=dtype)
    calls = _count_calls(monkeypatch)
    y, _, grad_lam = _run(x, lam, 4, 0.5, clip_after, grad, window)
    assert len(calls) == 2, calls
    assert torch.equal(grad_lam, _sequential_grad_lam(x, lam, y, grad, 4, 0.5, window, layout))


def test_layouts_the_kernels_do_not_take_use_the_torch_code(monkeypatch):
    calls = _count_calls(monkeypatch)
    lam = torch.tensor(2.0, requires_grad=True)
    x = torch.randn(4, 6, requires_grad=True)
    # An expanded gradient (sum().backward()) is not in x's layout: torch backward, same values.
    y = _QuantisedClipFn.apply(x, lam, 4, 0.5, True, "clip")
    y.sum().backward()
    assert calls == ["forward_ncm"]
    assert torch.equal(x.grad, ((x >= 0) & (x <= 2.0)).float())
    x.grad = None
    _QuantisedClipFn.apply(x, lam, 4, 0.5, True, "shifted").sum().backward()  # Eq. 19: (−λ/2L, λ − λ/2L)
    assert calls == ["forward_ncm"] * 2
    assert torch.equal(x.grad, ((x > -0.25) & (x < 1.75)).float())
    # A transposed input and a float16 input: no kernel.
    for t in (torch.randn(6, 4).t(), torch.randn(4, 6).half()):
        _QuantisedClipFn.apply(t, lam.detach().to(t.dtype), 4, 0.5, True)
    assert calls == ["forward_ncm"] * 2


def test_training_step_is_the_same_with_and_without_kernels(monkeypatch):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), CSQCFS(4, 4, 1.5), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 6 * 6, 5), QCFS(4, 2.0), QCFS(4, 2.5, grad_window="shifted"))
    x = torch.randn(8, 1, 8, 8)
    results = []
    for flag in ("1", "0"):
        monkeypatch.setenv("SNNX_NUMBA", flag)
        model = __import__("copy").deepcopy(net)
        out = model(x)
        out.square().sum().backward()
        results.append((out.detach(), [p.grad for p in model.parameters()]))
    assert torch.equal(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- the IF neuron kernel
def _neuron(kind, dtype):
    from snnx.neurons import IFNeuron, OffsetCalibratedIFNeuron, ShiftedIFNeuron

    theta = torch.tensor([0.6, 1.0, 1.7, 0.9])
    made = {
        "if-layer": lambda: IFNeuron(torch.tensor(0.8), 0.5),
        "if-channel": lambda: IFNeuron(theta, 0.25),
        "shifted-if": lambda: ShiftedIFNeuron(theta, 0.0),
        "cos": lambda: OffsetCalibratedIFNeuron(theta, 0.5, presim=3),
    }[kind]().to(dtype)
    if kind == "shifted-if":
        made.set_horizon(7)
    return made


def _chunks(neuron, x, steps_per_chunk, batch, track, backend="fused"):
    """Outputs, final v and per-chunk spike counts (kernel) or indicators (torch) of a chunked run."""
    neuron.reset_state()
    neuron.start_run(backend=backend, track_spikes=track)
    outs, counts = [], []
    for steps, part in steps_per_chunk(x):
        neuron.begin_chunk(steps, batch)
        out = neuron(part)
        outs.append(out.clone())
        counts.append(neuron.spike_counts.clone() if neuron.spike_counts is not None else
                      None if neuron.spike_indicator is None else neuron.spike_indicator.clone())
    return torch.cat(outs), neuron.v.clone(), counts


def _channel_sums(indicator, shape):
    """What the kernel counts, from a 0/1 indicator: spikes per (row, position), channels summed."""
    if len(shape) == 2:
        return indicator.sum(1)
    return indicator.sum(1) if len(shape) == 4 else indicator.sum(1).reshape(indicator.shape[0], -1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["if-layer", "if-channel", "shifted-if", "cos"])
@pytest.mark.parametrize("layout", ["channels_last", "nchw", "rows", "ncl", "constant"])
@pytest.mark.parametrize("track", [False, True])
def test_if_kernel_equals_the_torch_path(monkeypatch, dtype, kind, layout, track):
    from snnx.kernels import neuron as neuron_kernels

    batch, steps = 3, 9
    shape = {"rows": (batch, 4), "ncl": (batch, 4, 5)}.get(layout, (batch, 4, 5, 3))
    g = torch.Generator().manual_seed(2)
    if layout == "constant":  # direct encoding: one [B, …] current for the whole chunk
        z = (torch.randn(shape, generator=g, dtype=dtype) * 0.8 + 0.3).contiguous(memory_format=torch.channels_last)

        def chunks(_):
            return [(4, z), (5, z)]
    else:
        x = torch.randn((steps * batch, *shape[1:]), generator=g, dtype=dtype) * 0.8 + 0.3
        if layout == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)

        def chunks(x):
            return [(4, x[:4 * batch]), (5, x[4 * batch:])]
    calls = []
    fn = neuron_kernels._kernels()
    for name in list(fn):
        monkeypatch.setitem(fn, name, lambda *a, _f=fn[name], _n=name: (calls.append(_n), _f(*a))[1])
    fused = _chunks(_neuron(kind, dtype), None if layout == "constant" else x, chunks, batch, track)
    assert len(calls) == 2, calls  # both chunks ran in the kernel
    monkeypatch.setenv("SNNX_NUMBA", "0")
    plain = _chunks(_neuron(kind, dtype), None if layout == "constant" else x, chunks, batch, track)
    assert len(calls) == 2
    assert torch.equal(fused[0], plain[0]) and fused[0].stride() == plain[0].stride()
    assert torch.equal(fused[1], plain[1])
    reference = _chunks(_neuron(kind, dtype), None if layout == "constant" else x, chunks, batch, track, "reference")
    assert torch.equal(fused[0], reference[0]) and torch.equal(fused[1], reference[1])  # the reference step's bits
    assert all(c is None for c in reference[2])  # it publishes nothing: the accounting reads its output
    for counts, indicator in zip(fused[2], plain[2]):
        if not track:
            assert counts is None and indicator is None
        else:
            assert torch.equal(counts, _channel_sums(indicator, shape))


def test_simulation_results_are_the_same_with_and_without_the_neuron_kernel(monkeypatch):
    from snnx.convert import convert
    from snnx.models import create_model
    from snnx.activations import make_act_factory
    from snnx.sim import Simulator

    torch.manual_seed(0)
    ann = create_model("lenet", in_channels=1, image_size=28, num_classes=10,
                       act_factory=make_act_factory("qcfs", L=4, init_threshold=2.0)).eval()
    snn, _ = convert(ann, method="qcfs", stats=None, convert={"name": "qcfs", "v_init": 0.5})
    images, labels = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    from snnx.kernels import neuron as neuron_kernels

    calls = []
    fn = neuron_kernels._kernels()
    for name in list(fn):
        monkeypatch.setitem(fn, name, lambda *a, _f=fn[name], _n=name: (calls.append(_n), _f(*a))[1])
    results = []
    for flag in ("1", "0"):
        monkeypatch.setenv("SNNX_NUMBA", flag)
        sim = Simulator(__import__("copy").deepcopy(snn), device=torch.device("cpu"), chunk=3)
        r = sim.run([(images, labels)], [1, 4, 8])
        results.append((r.correct, r.spikes, r.sops))
    assert results[0] == results[1]
    assert results[0][1][8] > 0
    assert calls and set(calls) <= {"positions", "channels"}  # the flag-1 run went through the kernel


@pytest.mark.parametrize("method", ["qcfs", "allint"])
def test_layer_diagnostics_are_the_same_with_and_without_the_probe_kernels(monkeypatch, method):
    """layers.csv's numbers from the fused accumulate / read-out kernels vs the torch code."""
    import copy

    from snnx.activations import make_act_factory
    from snnx.convert import convert
    from snnx.models import create_model
    from snnx.sim import Simulator

    torch.manual_seed(0)
    act = make_act_factory("qcfs", L=4, init_threshold=2.0) if method == "qcfs" else make_act_factory("quant", k=1)
    ann = create_model("lenet", in_channels=1, image_size=28, num_classes=10, act_factory=act).eval()
    conv = {"name": "qcfs", "v_init": 0.5} if method == "qcfs" else {"name": "allint"}
    snn, _ = convert(ann, method=method, stats=None, convert=conv)
    images, labels = torch.randn(12, 1, 28, 28), torch.randint(0, 10, (12,))
    calls = []
    fn = probe._kernels()
    for name in list(fn):
        monkeypatch.setitem(fn, name, lambda *a, _f=fn[name], _n=name: (calls.append(_n), _f(*a))[1])
    rows = []
    for flag in ("1", "0"):
        monkeypatch.setenv("SNNX_NUMBA", flag)
        sim = Simulator(copy.deepcopy(snn), device=torch.device("cpu"), chunk=3)
        rows.append(sim.run([(images, labels)], [1, 2, 5, 8], ann=ann, record_layers=True).layer_rows)
        if flag == "1":
            assert "read_out" in calls and any(c.startswith("accumulate") for c in calls)
    assert len(rows[0]) == len(rows[1]) > 0
    for fused, plain in zip(*rows):
        assert fused.keys() == plain.keys()
        for key in fused:
            if isinstance(fused[key], float):
                assert fused[key] == pytest.approx(plain[key], rel=1e-9, abs=1e-12, nan_ok=True), key
            else:
                assert fused[key] == plain[key], key


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
@pytest.mark.parametrize("layout", ["channels_last", "nchw", "rows", "constant"])
@pytest.mark.parametrize("fire_on_equal", [True, False])
def test_signed_neuron_kernel_equals_step_by_step(monkeypatch, dtype, layout, fire_on_equal):
    from snnx.kernels import neuron as neuron_kernels
    from snnx.neurons import SignedDualThresholdNeuron

    batch, steps = 3, 9
    shape = (batch, 4) if layout == "rows" else (batch, 4, 5, 3)
    g = torch.Generator().manual_seed(3)
    if dtype == torch.int64:
        theta, delta = torch.tensor([3, 1, -2, 0]), torch.tensor([5, 2, 4, 3])
        draw = lambda s: torch.randint(-4, 7, s, generator=g)  # noqa: E731
    else:
        theta = torch.tensor([0.3, 0.1, -0.2, 0.05], dtype=dtype)
        delta = torch.tensor([0.5, 0.25, 0.4, 0.3], dtype=dtype)
        draw = lambda s: (torch.randn(s, generator=g, dtype=dtype) * 0.8 + 0.1)  # noqa: E731
    if layout == "constant":
        z = draw(shape).contiguous(memory_format=torch.channels_last)
        parts = [(4, z), (5, z)]
        full = z.unsqueeze(0).expand(steps, *shape)
    else:
        x = draw((steps * batch, *shape[1:]))
        if layout == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
        parts = [(4, x[:4 * batch]), (5, x[4 * batch:])]
        full = x.view(steps, *shape)
    calls = []
    fn = neuron_kernels._kernels()
    for name in list(fn):
        monkeypatch.setitem(fn, name, lambda *a, _f=fn[name], _n=name: (calls.append(_n), _f(*a))[1])
    neuron = SignedDualThresholdNeuron(theta, delta, fire_on_equal=fire_on_equal)
    outs = []
    for n, part in parts:
        neuron.begin_chunk(n, batch)
        outs.append(neuron(part).view(n, *shape).clone())
    assert [c for c in calls if c.startswith("signed")] == [calls[0]] * 2  # both chunks ran in the kernel
    reference = SignedDualThresholdNeuron(theta, delta, fire_on_equal=fire_on_equal)
    expected = reference.run(full)
    assert torch.equal(torch.cat(outs), expected)
    assert torch.equal(neuron.v, reference.v) and torch.equal(neuron.count, reference.count)
