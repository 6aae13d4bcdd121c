"""The numba kernels of the QCFS-family quantiser against the torch code (snnx/activations/kernels.py).

Forward and ∂L/∂x must be bit for bit the torch code's (same ops, same order,
same dtype); ∂L/∂λ is the same sum in another order. Each case also checks
that the kernel ran, so a silent fallback cannot pass for agreement.
"""

from __future__ import annotations

import pytest
import torch

from snnx.activations import CSQCFS, QCFS, kernels
from snnx.activations.functional import _QuantisedClipFn

pytestmark = pytest.mark.skipif(not kernels.enabled(), reason="numba not importable")


def _inputs(shape, dtype, lam, L, phi, layout):
    """Random x with λ's step boundaries (x/λ·L + φ integer), 0, −0, λ, each ± an ulp, planted in channel 0."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=dtype) * 3
    l0 = float(lam.reshape(-1)[0])
    special = torch.tensor([0.0, -0.0, l0, l0 * 1.5, -l0] + [l0 * (n - phi) / L for n in range(1, L + 1)],
                           dtype=dtype)
    special = torch.cat([special, torch.nextafter(special, special + 1), torch.nextafter(special, special - 1)])
    channel0 = x[:, 0] if lam.dim() > 0 else x
    values = channel0.reshape(-1).clone()
    k = min(len(special), values.numel())
    values[:k] = special[:k]
    channel0.copy_(values.reshape(channel0.shape))
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _run(x, lam, L, phi, clip_after, grad):
    xr = x.clone().requires_grad_()
    lr = lam.clone().requires_grad_()
    y = _QuantisedClipFn.apply(xr, lr, L, phi, clip_after)
    y.backward(grad)
    return y.detach(), xr.grad, lr.grad


def _count_calls(monkeypatch):
    calls = []
    table = kernels._kernels
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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("L,phi", [(4, 0.5), (3, 0.3), (8, 0.0), (1, 0.5)])
@pytest.mark.parametrize("clip_after", [False, True])
@pytest.mark.parametrize("shape,channelwise,layout", CASES)
def test_kernels_equal_the_torch_code(monkeypatch, dtype, L, phi, clip_after, shape, channelwise, layout):
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
    fused = _run(x, lam, L, phi, clip_after, grad)
    assert len(calls) == 2, calls  # the forward and the backward kernel ran
    monkeypatch.setenv("SNNX_NUMBA", "0")
    plain = _run(x, lam, L, phi, clip_after, grad)
    assert len(calls) == 2
    assert torch.equal(fused[0], plain[0]) and fused[0].stride() == plain[0].stride()
    assert torch.equal(fused[1], plain[1])
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(fused[2], plain[2], rtol=tol, atol=tol * shape[0])


def test_layouts_the_kernels_do_not_take_use_the_torch_code(monkeypatch):
    calls = _count_calls(monkeypatch)
    lam = torch.tensor(2.0, requires_grad=True)
    x = torch.randn(4, 6, requires_grad=True)
    # An expanded gradient (sum().backward()) is not in x's layout: torch backward, same values.
    y = _QuantisedClipFn.apply(x, lam, 4, 0.5, True)
    y.sum().backward()
    assert calls == ["forward_ncm"]
    assert torch.equal(x.grad, ((x >= 0) & (x <= 2.0)).float())
    # A transposed input and a float16 input: no kernel.
    for t in (torch.randn(6, 4).t(), torch.randn(4, 6).half()):
        _QuantisedClipFn.apply(t, lam.detach().to(t.dtype), 4, 0.5, True)
    assert calls == ["forward_ncm"]


def test_training_step_is_the_same_with_and_without_kernels(monkeypatch):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), CSQCFS(4, 4, 1.5), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 6 * 6, 5), QCFS(4, 2.0))
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
