"""snnx.activations against their papers' closed forms, written out here in plain Python floats (float64)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnx.activations import (
    CSQCFS,
    QCFS,
    Activation,
    Clip,
    Quant,
    apply_ternary,
    inverse_softplus,
    is_ternary,
    make_act_factory,
    ternarize_,
    ternary_weight,
    to_channelwise,
)
from snnx.activations.registry import ACTIVATIONS
from snnx.config import config_dir
from snnx.errors import ConfigError

F64 = torch.float64


# ---------------------------------------------------------------- closed forms
def ref_y(x: float, lam: float, L: int, phi: float) -> float:
    """y = λ·floor(clamp(x/λ, 0, 1)·L + φ)/L, in plain Python floats."""
    return lam * math.floor(min(max(x / lam, 0.0), 1.0) * L + phi) / L


def ref_dx(x: float, lam: float, L: int = 1, phi: float = 0.5, window: str = "clip") -> float:
    """clip: 1 on [0, λ]. shifted (Yang et al. 2025, Eq. 19 at φ = 1/2): 1 on the open (−φλ/L, λ − φλ/L)."""
    if window == "shifted":
        return 1.0 if -(lam * phi / L) < x < lam - lam * phi / L else 0.0
    return 1.0 if 0.0 <= x <= lam else 0.0


def ref_dlam(x: float, lam: float, L: int, phi: float, window: str = "clip") -> float:
    """clip: (y − x)/λ on [0, λ], 1 above. shifted (Eq. 20): (y − x)/λ on [lo, hi), 1 from hi on, 0 below lo."""
    if window == "shifted":
        lo, hi = -(lam * phi / L), lam - lam * phi / L
        if lo <= x < hi:
            return (ref_y(x, lam, L, phi) - x) / lam
        return 1.0 if x >= hi else 0.0
    if 0.0 <= x <= lam:
        return (ref_y(x, lam, L, phi) - x) / lam
    return 1.0 if x > lam else 0.0


def boundary_inputs(lam: float, L: int, phi: float) -> list[float]:
    """Below 0, just below/at 0, every step boundary (x/λ·L + φ integer) ± a bit, λ ± a bit, far above."""
    xs = [-2 * lam, -lam / (4 * L), -1e-9, 0.0]
    for n in range(1, L + 1):
        b = lam * (n - phi) / L
        if 0 <= b <= lam:
            xs += [b - lam * 1e-6, b, b + lam * 1e-6]
    xs += [lam * 0.37, lam - 1e-9, lam, lam + 1e-9, lam + lam / (4 * L), 3 * lam]
    for end in (-(lam * phi / L), lam - lam * phi / L):  # the shifted window's ends, each ± an ulp
        xs += [math.nextafter(end, -math.inf), end, math.nextafter(end, math.inf)]
    return xs


def per_element_grads(y: torch.Tensor, x: torch.Tensor, lam_param: torch.Tensor):
    """(∂y_i/∂x_i, ∂y_i/∂λ) for each element i; λ scalar."""
    dx, dlam = [], []
    flat = y.reshape(-1)
    for i in range(flat.numel()):
        gx, gl = torch.autograd.grad(flat[i], [x, lam_param], retain_graph=True)
        dx.append(gx.reshape(-1)[i].item())
        dlam.append(gl.item())
    return dx, dlam


# ---------------------------------------------------------------- QCFS
@pytest.mark.parametrize("window", ["clip", "shifted"])
@pytest.mark.parametrize("lam,L,phi", [(8.0, 4, 0.5), (2.5, 3, 0.5), (4.0, 8, 0.0), (1.0, 1, 0.5), (2.25, 3, 0.3)])
def test_qcfs_forward_and_gradients_match_closed_form(lam, L, phi, window):
    act = QCFS(L, init_threshold=lam, shift=phi, grad_window=window).double()
    xs = boundary_inputs(lam, L, phi)
    x = torch.tensor(xs, dtype=F64, requires_grad=True)
    y = act(x)
    assert y.dtype == F64
    expected = [ref_y(v, lam, L, phi) for v in xs]
    assert y.tolist() == expected  # bit for bit
    dx, dlam = per_element_grads(y, x, act.threshold)
    assert dx == [ref_dx(v, lam, L, phi, window) for v in xs]
    assert dlam == pytest.approx([ref_dlam(v, lam, L, phi, window) for v in xs], abs=1e-12)


def test_qcfs_known_values_and_regions():
    # λ=8, L=4, φ=0.5: boundaries at x = 1, 3, 5, 7; levels of 2.
    act = QCFS(4, 8.0, 0.5).double()
    x = torch.tensor([-1.0, 0.0, 0.99, 1.0, 2.99, 3.0, 6.99, 7.0, 8.0, 9.0], dtype=F64, requires_grad=True)
    y = act(x)
    assert y.tolist() == [0, 0, 0, 2, 2, 4, 6, 8, 8, 8]
    y.backward(torch.ones_like(y))
    assert x.grad.tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    # Σ ∂y/∂λ: inside (y−x)/λ, above 1, below 0
    inside = [(0 - 0) / 8, (0 - 0.99) / 8, (2 - 1) / 8, (2 - 2.99) / 8, (4 - 3) / 8, (6 - 6.99) / 8, (8 - 7) / 8, 0.0]
    assert act.threshold.grad.item() == pytest.approx(sum(inside) + 1.0, abs=1e-12)


def test_qcfs_threshold_parameter_and_conversion_threshold():
    act = QCFS(4, init_threshold=3.5, shift=0.5, num_channels=7)
    assert isinstance(act, Activation)
    assert isinstance(act.threshold, nn.Parameter) and act.threshold.dim() == 0
    assert [n for n, _ in act.named_parameters()] == ["threshold"]
    theta = act.conversion_threshold()
    assert theta.dim() == 0 and theta.item() == 3.5 and not theta.requires_grad
    assert act.shift == 0.5 and act.num_channels == 7


# ---------------------------------------------------------------- CS-QCFS
@pytest.mark.parametrize("window", ["clip", "shifted"])
@pytest.mark.parametrize("phi", [0.5, 0.0, 0.25])
@pytest.mark.parametrize("L", [1, 3, 4])
def test_clip_after_floor_form_equals_qcfs_form(L, phi, window):
    lam = 2.5
    q = QCFS(L, lam, phi, grad_window=window).double()
    c = CSQCFS(1, L, lam, phi, channelwise=False, softplus=False, grad_window=window).double()
    xs = boundary_inputs(lam, L, phi) + torch.linspace(-3, 6, 301, dtype=F64).tolist()
    x1 = torch.tensor(xs, dtype=F64, requires_grad=True)
    x2 = torch.tensor(xs, dtype=F64, requires_grad=True)
    y1, y2 = q(x1), c(x2)
    assert torch.equal(y1, y2)
    g = torch.randn_like(y1)
    y1.backward(g)
    y2.backward(g)
    assert torch.equal(x1.grad, x2.grad)
    assert q.threshold.grad.item() == pytest.approx(c.threshold_param.grad.item(), rel=1e-12, abs=1e-12)


def test_clip_window_is_0_to_lambda_not_the_floored_level():
    # Naive autograd of λ·clip(floor(x·L/λ+φ)/L, 0, 1) would pass ∂y/∂x = 1 for
    # x ∈ [−λ/2L, 0) and (λ, λ+λ/2L); the [0, λ] window gives 0 there.
    lam, L = 8.0, 4
    c = CSQCFS(1, L, lam, 0.5, channelwise=False, softplus=False, grad_window="clip").double()
    x = torch.tensor([-0.9, -0.1, 8.1, 8.9], dtype=F64, requires_grad=True)
    y = c(x)
    assert y.tolist() == [0.0, 0.0, 8.0, 8.0]
    y.backward(torch.ones_like(y))
    assert x.grad.tolist() == [0.0, 0.0, 0.0, 0.0]
    assert c.threshold_param.grad.item() == 2.0  # only the two above-λ inputs, 1 each


def test_csqcfs_input_gradient_at_the_issue_points():
    # Yang et al. 2025, Eq. 19 with λ = 4, L = 4: ∂y/∂x = 1 on (−0.5, 3.5), 0 elsewhere.
    for dtype in (torch.float32, F64):
        act = CSQCFS(3, 4, torch.tensor(4.0, dtype=dtype))  # the defaults: channel-wise, softplus, shifted window
        assert act.grad_window == "shifted" and torch.equal(act.conversion_threshold(), torch.full((3,), 4.0, dtype=dtype))
        x = torch.tensor([[-0.375, 3.8, 1.0]] * 2, dtype=dtype).reshape(2, 3).requires_grad_(True)
        act(x).sum().backward()
        assert x.grad[:, 0].tolist() == [1.0, 1.0] and x.grad[:, 1].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_shifted_window_ends_follow_eqs_19_and_20(dtype):
    # λ = 4, L = 4, φ = 1/2: the ends −λ/2L = −0.5 and λ − λ/2L = 3.5 are exact in both dtypes.
    act = CSQCFS(1, 4, 4.0, 0.5, channelwise=False, softplus=False).to(dtype)
    up = lambda v: torch.nextafter(torch.tensor(v, dtype=dtype), torch.tensor(math.inf, dtype=dtype)).item()
    down = lambda v: torch.nextafter(torch.tensor(v, dtype=dtype), torch.tensor(-math.inf, dtype=dtype)).item()
    xs = [down(-0.5), -0.5, up(-0.5), down(3.5), 3.5, up(3.5), -0.375, 3.8, 0.0, 4.0]
    x = torch.tensor(xs, dtype=dtype, requires_grad=True)
    y = act(x)
    dx, dlam = per_element_grads(y, x, act.threshold_param)
    assert dx == [0, 0, 1, 1, 0, 0, 1, 0, 1, 0]  # Eq. 19: open at both ends
    # Eq. 20: (y − x)/λ on [−λ/2L, λ − λ/2L), 1 from λ − λ/2L on, 0 below −λ/2L
    expected = [ref_dlam(v, 4.0, 4, 0.5, "shifted") for v in xs]
    assert expected[:2] == [0.0, 0.125] and expected[4:6] == [1.0, 1.0]
    tol = 1e-6 if dtype == torch.float32 else 1e-15
    assert dlam == pytest.approx(expected, abs=tol)


def test_shifted_window_is_not_autograd_of_the_clip_after_floor_form():
    # Autograd with a straight-through floor would pass ∂y/∂x = 1 on [−λ/2L, λ + λ/2L) (the clip sees the
    # floored level); Eq. 19 stops at λ − λ/2L and excludes −λ/2L.
    lam, L = 8.0, 4
    c = CSQCFS(1, L, lam, 0.5, channelwise=False, softplus=False).double()
    x = torch.tensor([-1.0, -0.9, 7.5, 8.1, 8.9], dtype=F64, requires_grad=True)
    c(x).backward(torch.ones(5, dtype=F64))
    assert x.grad.tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    # ∂y/∂λ: (y − x)/λ at x = −1 (Eq. 20's window is closed below) and −0.9; 1 for the three from 7 on
    assert c.threshold_param.grad.item() == pytest.approx((0 + 1.0) / 8 + (0 + 0.9) / 8 + 3.0, abs=1e-15)


def _channel_refs(x: torch.Tensor, lams: list[float], L: int, phi: float, g: torch.Tensor, window: str = "clip"):
    """Expected y, ∂(g·y)/∂x and Σ g·∂y/∂λ_c per channel (channel = dim 1)."""
    y = torch.empty_like(x)
    gx = torch.empty_like(x)
    glam = []
    for c, lam in enumerate(lams):
        xc, gc = x[:, c].reshape(-1).tolist(), g[:, c].reshape(-1).tolist()
        y[:, c] = torch.tensor([ref_y(v, lam, L, phi) for v in xc], dtype=F64).reshape(x[:, c].shape)
        gx[:, c] = torch.tensor([gi * ref_dx(v, lam, L, phi, window) for v, gi in zip(xc, gc)],
                                dtype=F64).reshape(x[:, c].shape)
        glam.append(sum(gi * ref_dlam(v, lam, L, phi, window) for v, gi in zip(xc, gc)))
    return y, gx, torch.tensor(glam, dtype=F64)


def _channel_input(shape, lams, L, phi):
    torch.manual_seed(0)
    x = torch.empty(shape, dtype=F64)
    for c, lam in enumerate(lams):
        pool = torch.tensor(boundary_inputs(lam, L, phi), dtype=F64)
        n = x[:, c].numel()
        rnd = (torch.rand(n, dtype=F64) * 1.6 - 0.3) * lam
        vals = torch.cat([pool, rnd])[:n] if n > pool.numel() else pool[:n]
        x[:, c] = vals[torch.randperm(n)].reshape(x[:, c].shape)
    return x


@pytest.mark.parametrize("window", ["shifted", "clip"])
@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (40, 3)])
@pytest.mark.parametrize("softplus", [False, True])
def test_channelwise_forward_and_gradients(shape, softplus, window):
    lams, L, phi = [1.0, 2.5, 8.0], 4, 0.5
    act = CSQCFS(3, L, torch.tensor(lams, dtype=F64), phi, channelwise=True, softplus=softplus, grad_window=window)
    assert act.threshold_param.shape == (3,) and act.threshold_param.dtype == F64
    lam_eff = act.conversion_threshold()
    assert lam_eff.shape == (3,)
    assert lam_eff.tolist() == pytest.approx(lams, rel=1e-15)
    lams = lam_eff.tolist()  # the exact effective λ_c (softplus may be an ulp off)

    x = _channel_input(shape, lams, L, phi).requires_grad_(True)
    y = act(x)
    g = torch.randn_like(y)
    y.backward(g)
    ey, egx, eglam = _channel_refs(x.detach(), lams, L, phi, g, window)
    assert torch.equal(y.detach(), ey)
    assert torch.equal(x.grad, egx)
    p = act.threshold_param.detach()
    dlam_dp = torch.sigmoid(p) if softplus else torch.ones_like(p)
    assert torch.allclose(act.threshold_param.grad, eglam * dlam_dp, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("window", ["shifted", "clip"])
def test_softplus_chain_rule_scalar(window):
    # sqcfs: one softplus λ per layer; dy/dp = dy/dλ · sigmoid(p) (Eq. 20 through Eq. 15's derivative)
    lam, L, phi = 3.0, 4, 0.5
    act = CSQCFS(5, L, torch.tensor(lam, dtype=F64), phi, channelwise=False, softplus=True, grad_window=window)
    p = act.threshold_param
    assert p.dim() == 0
    assert p.item() == pytest.approx(math.log(math.expm1(lam)), rel=1e-14)
    assert F.softplus(p).item() == lam
    xs = boundary_inputs(lam, L, phi)
    x = torch.tensor(xs, dtype=F64).reshape(1, -1).expand(2, -1).contiguous().requires_grad_(True)
    y = act(x)
    assert y[0].tolist() == [ref_y(v, lam, L, phi) for v in xs]
    for i, v in enumerate(xs):
        (gp,) = torch.autograd.grad(y[0, i], [p], retain_graph=True)
        assert gp.item() == pytest.approx(ref_dlam(v, lam, L, phi, window) * torch.sigmoid(p).item(), abs=1e-13)


def test_csqcfs_threshold_shapes_and_checks():
    cs = CSQCFS(6, 4, 4.0)
    assert cs.channelwise and cs.softplus
    assert [n for n, _ in cs.named_parameters()] == ["threshold_param"]
    assert cs.threshold_param.shape == (6,)
    assert torch.equal(cs.conversion_threshold(), torch.full((6,), 4.0))
    assert not cs.conversion_threshold().requires_grad
    raw = CSQCFS(6, 4, 4.0, softplus=False)
    assert torch.equal(raw.threshold_param.detach(), torch.full((6,), 4.0))
    scalar = CSQCFS(6, 4, 4.0, channelwise=False)
    assert scalar.conversion_threshold().dim() == 0
    # a scalar λ works on any shape, a channel-wise one needs dim 1 == C
    assert scalar(torch.randn(7)).shape == (7,)
    with pytest.raises(ValueError, match="expects input"):
        cs(torch.randn(2, 5, 3, 3))


def test_inverse_softplus_round_trip():
    for dt in (torch.float32, F64):
        lam = torch.tensor([0.5, 1.0, 2.0, 4.0, 8.0, 3.3, 16.0, 25.0], dtype=dt)
        p = inverse_softplus(lam)
        assert p.dtype == dt
        assert torch.equal(F.softplus(p), lam)
    with pytest.raises(ValueError):
        inverse_softplus(torch.tensor([1.0, 0.0]))


# ---------------------------------------------------------------- to_channelwise
class _Net(nn.Module):
    def __init__(self, act):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), act(4), nn.Conv2d(4, 3, 3, padding=1), act(3)
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 6))
        self.act_out = act(6)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        return self.fc(self.act_out(self.head(self.features(x))))


@pytest.mark.parametrize("softplus", [True, False])
def test_to_channelwise_keeps_outputs_identical(softplus):
    torch.manual_seed(1)
    net = _Net(make_act_factory("qcfs", L=4, init_threshold=8.0)).double()
    trained = [2.5, 0.75, 3.3]
    qs = [m for m in net.modules() if isinstance(m, QCFS)]
    assert [q.num_channels for q in qs] == [4, 3, 6]
    with torch.no_grad():
        for q, lam in zip(qs, trained):
            q.threshold.fill_(lam)
    x = torch.randn(8, 2, 4, 4, dtype=F64) * 3
    before = net(x)
    out = to_channelwise(net, softplus=softplus)
    assert out is net
    assert not any(isinstance(m, QCFS) for m in net.modules())
    cs = [m for m in net.modules() if isinstance(m, CSQCFS)]
    assert [c.num_channels for c in cs] == [4, 3, 6]
    for c, lam in zip(cs, trained):
        assert c.channelwise and c.softplus == softplus and c.L == 4 and c.shift == 0.5
        assert c.threshold_param.dtype == F64 and c.threshold_param.requires_grad
        assert torch.equal(c.conversion_threshold(), torch.full((c.num_channels,), lam, dtype=F64))
    assert torch.equal(net(x), before)
    # the new thresholds train per channel
    net(x).sum().backward()
    assert all(c.threshold_param.grad is not None and c.threshold_param.grad.shape == (c.num_channels,) for c in cs)


def test_to_channelwise_shared_and_root_and_missing_channels():
    q = QCFS(4, 2.0, num_channels=3)
    seq = nn.Sequential(q, nn.Identity(), q)
    to_channelwise(seq)
    assert isinstance(seq[0], CSQCFS) and seq[0] is seq[2]
    root = to_channelwise(QCFS(4, 2.0, num_channels=2), softplus=False)
    assert isinstance(root, CSQCFS) and root.threshold_param.shape == (2,)
    with pytest.raises(ValueError, match="channel count"):
        to_channelwise(nn.Sequential(QCFS(4, 2.0)))
    neg = QCFS(4, 2.0, num_channels=2)
    with torch.no_grad():
        neg.threshold.fill_(-1.0)
    with pytest.raises(ConfigError) as e:
        to_channelwise(nn.Sequential(neg))
    assert e.value.key == "act.softplus"


# ---------------------------------------------------------------- Clip
def test_clip_values_gradients_warmup():
    act = Clip(2.0)
    assert act.shift == 0.0 and act.conversion_threshold().item() == 2.0
    assert act.conversion_threshold().dim() == 0
    x = torch.tensor([-1.0, -1e-12, 0.0, 0.7, 2.0, 2.0 + 1e-12, 5.0], dtype=F64, requires_grad=True)
    y = act(x)
    assert y.tolist() == [0.0, 0.0, 0.0, 0.7, 2.0, 2.0, 2.0]
    y.backward(torch.ones_like(y))
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0]  # 1 on the closed [0, y_th]
    act.relu_warmup = True
    assert act(x).tolist() == [0.0, 0.0, 0.0, 0.7, 2.0, 2.0 + 1e-12, 5.0]


# ---------------------------------------------------------------- Quant
def test_quant_values_gradient_and_first_site_clip():
    x = torch.tensor([-1.0, 0.0, 0.2, 0.25, 0.3, 0.75, 1.1, 1.25, 5.0], dtype=F64, requires_grad=True)
    y = Quant(1)(x)  # step 1/2, halves rounded up
    assert y.tolist() == [0.0, 0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 1.5, 5.0]
    y.backward(torch.ones_like(y))
    assert x.grad.tolist() == [0.0, 0.0, 1, 1, 1, 1, 1, 1, 1]  # gradient of ReLU
    assert Quant(0)(torch.tensor([0.49, 0.5, 2.5, 3.7], dtype=F64)).tolist() == [0.0, 1.0, 3.0, 4.0]
    assert Quant(2)(torch.tensor([0.125, 0.1249, 0.3], dtype=F64)).tolist() == [0.25, 0.0, 0.25]
    # exact half-up even where floor(v + 0.5) would round up
    v = math.nextafter(0.5, 0.0)
    assert Quant(0)(torch.tensor([v], dtype=F64)).item() == 0.0

    fac = make_act_factory("quant", k=1, clip_first=4.0)
    first, second, third = fac(3), fac(8), fac(8)
    assert first.clip == 4.0 and second.clip is None and third.clip is None
    x = torch.tensor([-1.0, 3.9, 4.0, 4.2, 9.0], dtype=F64, requires_grad=True)
    y = first(x)
    assert y.tolist() == [0.0, 4.0, 4.0, 4.0, 4.0]
    y.backward(torch.ones_like(y))
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]
    assert second(torch.tensor([9.0], dtype=F64)).item() == 9.0
    assert first.conversion_threshold() is None and first.shift == 0.5
    # a new factory starts over
    assert make_act_factory("quant", k=1)(3).clip == 4.0


# ---------------------------------------------------------------- factory
def test_factory_builds_each_activation():
    # Every registered activation is an act= option with its YAML, and every YAML option is registered.
    assert sorted(ACTIVATIONS.names()) == sorted(p.stem for p in (config_dir() / "act").glob("*.yaml"))
    r = make_act_factory("relu")(5)
    assert type(r) is nn.ReLU
    c = make_act_factory("clip", y_th=2.0)(5)
    assert isinstance(c, Clip) and c.y_th == 2.0 and not c.relu_warmup
    q = make_act_factory("qcfs", L=8, init_threshold=4.0, shift=0.25)(5)
    assert isinstance(q, QCFS) and (q.L, q.shift, q.threshold.item(), q.num_channels) == (8, 0.25, 4.0, 5)
    q = make_act_factory("qcfs", L=4, init_threshold=None, shift=None)(5)
    assert q.threshold.item() == 8.0 and q.shift == 0.5
    flags = {}
    for name in ("cqcfs", "sqcfs", "csqcfs"):
        m = make_act_factory(name, L=4, init_threshold=4.0)(6)
        assert isinstance(m, CSQCFS) and m.conversion_threshold().tolist() == pytest.approx(
            [4.0] * 6 if m.channelwise else 4.0, rel=1e-15
        )
        flags[name] = (m.channelwise, m.softplus)
    assert flags == {"cqcfs": (True, False), "sqcfs": (False, True), "csqcfs": (True, True)}
    # config files pass flags that agree with the name; csqcfs honours them as ablations
    m = make_act_factory("cqcfs", L=4, channelwise=True, softplus=False)(6)
    assert (m.channelwise, m.softplus) == (True, False)
    m = make_act_factory("csqcfs", L=4, channelwise=False, softplus=True)(6)
    assert (m.channelwise, m.softplus) == (False, True)
    # a parameter of another activation is an error naming the key and this activation's keys
    with pytest.raises(ConfigError) as e:
        make_act_factory("clip", L=0, warmup_epochs=3)
    assert e.value.key == "act.L" and "y_th, warmup_epochs" in str(e.value)


def test_factory_grad_window_defaults_per_act_and_to_channelwise():
    # auto/None: the CS-QCFS family takes Eqs. 19–20's shifted window, plain QCFS the [0, λ] one.
    for name, want in (("qcfs", "clip"), ("cqcfs", "shifted"), ("sqcfs", "shifted"), ("csqcfs", "shifted")):
        for value in (None, "auto"):
            assert make_act_factory(name, L=4, grad_window=value)(3).grad_window == want
        other = "clip" if want == "shifted" else "shifted"
        assert make_act_factory(name, L=4, grad_window=other)(3).grad_window == other
    net = nn.Sequential(QCFS(4, 2.0, num_channels=3, grad_window="shifted"), QCFS(4, 2.0, num_channels=3))
    to_channelwise(net)
    assert [m.grad_window for m in net] == ["shifted", "clip"]  # each keeps its own by default
    to_channelwise(net := nn.Sequential(QCFS(4, 2.0, num_channels=3)), grad_window="shifted")
    assert net[0].grad_window == "shifted"
    with pytest.raises(ValueError, match="grad_window"):
        CSQCFS(3, 4, 2.0, grad_window="wide")


def test_factory_returns_a_new_callable_each_time():
    a, b = make_act_factory("qcfs", L=4), make_act_factory("qcfs", L=4)
    assert a is not b
    m1, m2 = a(3), a(3)
    assert m1 is not m2 and m1.threshold is not m2.threshold


@pytest.mark.parametrize(
    "name,params,key",
    [
        ("sigmoid", {}, "act"),
        ("qcfs", {"L": 0}, "act.L"),
        ("qcfs", {"L": 2.5}, "act.L"),
        ("qcfs", {"L": True}, "act.L"),
        ("qcfs", {"L": None}, "act.L"),
        ("clip", {"L": 4}, "act.L"),
        ("csqcfs", {"L": 4, "init_threshold": 0.0}, "act.init_threshold"),
        ("qcfs", {"L": 4, "init_threshold": -1.0}, "act.init_threshold"),
        ("qcfs", {"L": 4, "shift": 1.0}, "act.shift"),
        ("qcfs", {"L": 4, "shift": -0.1}, "act.shift"),
        ("clip", {"y_th": 0}, "act.y_th"),
        ("clip", {"y_th": -2.0}, "act.y_th"),
        ("quant", {"k": -1}, "act.k"),
        ("quant", {"k": 1.5}, "act.k"),
        ("quant", {"k": None}, "act.k"),
        ("quant", {"k": 1, "clip_first": float("nan")}, "act.clip_first"),
        ("quant", {"k": 1, "clip_first": 0.0}, "act.clip_first"),
        ("qcfs", {"L": 4, "lambda": 3}, "act.lambda"),
        ("cqcfs", {"L": 4, "softplus": True}, "act.softplus"),
        ("sqcfs", {"L": 4, "channelwise": True}, "act.channelwise"),
        ("csqcfs", {"L": 4, "softplus": "yes"}, "act.softplus"),
        ("csqcfs", {"L": 4, "grad_window": "wide"}, "act.grad_window"),
        ("qcfs", {"L": 4, "grad_window": True}, "act.grad_window"),
    ],
)
def test_factory_errors_name_the_key(name, params, key):
    with pytest.raises(ConfigError) as e:
        make_act_factory(name, **params)
    assert e.value.key == key
    assert e.value.fix  # says what to do instead
    assert str(e.value).startswith(f"{key}: ")


def test_unknown_activation_lists_options():
    with pytest.raises(ConfigError) as e:
        make_act_factory("gelu")
    for name in ACTIVATIONS.names():
        assert name in str(e.value)


def test_factory_accepts_integral_float_L():
    assert make_act_factory("qcfs", L=4.0)(2).L == 4


# ---------------------------------------------------------------- ternary
def test_ternary_weight_values_and_straight_through():
    w = torch.tensor([0.1, -0.5, 0.9, -0.05, 0.0, 2.0, -0.42, 0.41], dtype=F64, requires_grad=True)
    delta = 0.7 * w.detach().abs().mean().item()  # 0.7 · 4.38/8 = 0.38325
    assert 0.38 < delta < 0.39
    wt = ternary_weight(w)
    assert wt.tolist() == [0.0, -1.0, 1.0, 0.0, 0.0, 1.0, -1.0, 1.0]
    g = torch.randn(8, dtype=F64)
    wt.backward(g)
    # Zou et al. 2024, Eq. 9: ∂L/∂W^F = ∂L/∂W^T where |W^F| ≤ 1, else 0 (here only the 2.0 entry)
    assert w.grad.tolist() == [gi if abs(wi) <= 1.0 else 0.0 for wi, gi in zip(w.detach().tolist(), g.tolist())]
    assert w.grad[5] == 0.0 and w.grad[2] == g[2]
    w.grad = None
    ternary_weight(w, ste="identity").backward(g)  # the released code's estimator: everywhere
    assert torch.equal(w.grad, g)
    # Δ is per tensor: scaling everything keeps the pattern
    assert torch.equal(ternary_weight(w.detach() * 100), wt.detach())


def test_apply_ternary_skips_first_conv_and_last_linear():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, bias=False),
        nn.Flatten(),
        nn.Linear(4, 8),
        nn.Linear(8, 2),
    )
    originals = [m.weight.detach().clone() for m in (model[0], model[2], model[4], model[5])]
    out = apply_ternary(model)
    assert out is model
    assert not is_ternary(model[0]) and not is_ternary(model[5])
    assert is_ternary(model[2]) and is_ternary(model[4])
    assert torch.equal(model[0].weight, originals[0]) and torch.equal(model[5].weight, originals[3])
    for m, orig in ((model[2], originals[1]), (model[4], originals[2])):
        assert set(m.weight.unique().tolist()) <= {-1.0, 0.0, 1.0}
        assert torch.equal(m.weight, ternary_weight(orig))
        assert torch.equal(m.parametrizations.weight.original, orig)  # float weight is what trains
    ternarize_(model)  # idempotent
    assert len(model[2].parametrizations.weight) == 1
    x = torch.randn(2, 3, 5, 5)
    model(x).sum().backward()
    assert model[2].parametrizations.weight.original.grad is not None


# ---------------------------------------------------------------- fx / dtype
class _LeafTracer(torch.fx.Tracer):
    def is_leaf_module(self, m, qualname):
        return isinstance(m, Activation) or super().is_leaf_module(m, qualname)


@pytest.mark.parametrize("name", ACTIVATIONS.names())
def test_fx_leaf_tracing_and_float64(name):
    torch.manual_seed(0)
    given = {"L": 4, "init_threshold": 2.0, "k": 2, "y_th": 1.5}
    fac = make_act_factory(name, **{k: v for k, v in given.items() if k in ACTIVATIONS.get(name).keys})
    net = nn.Sequential(nn.Conv2d(2, 3, 3), fac(3), nn.Flatten(), nn.Linear(12, 4), fac(4)).double()
    graph = _LeafTracer().trace(net)
    gm = torch.fx.GraphModule(net, graph)
    calls = [n.target for n in graph.nodes if n.op == "call_module"]
    assert calls == ["0", "1", "2", "3", "4"]
    x = torch.randn(2, 2, 4, 4, dtype=F64) * 3
    y = net(x)
    assert y.dtype == F64
    assert torch.equal(gm(x), y)
