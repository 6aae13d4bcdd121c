"""MSAT (He et al.): adaptive-threshold neuron, converter, per-batch reset, seeded spike confidence."""

from __future__ import annotations

import math
import os

import pytest
import torch
from torch import nn

from snnx.calibration import calibrate
from snnx.convert import convert
from snnx.convert.msat import convert_msat
from snnx.errors import ConfigError
from snnx.neurons import IFNeuron, MSATNeuron
from snnx.sim import Simulator

from conftest import run_folded

CPU = torch.device("cpu")
PARAMS = dict(alpha=0.3, k_a=0.8, k_i=1.5, C=5.0, tau_mp=0.5, tau_rd=0.7, v_t=-1.0)


# -- helpers ---------------------------------------------------------------------
def reference_msat(xs: list[float], theta_max: float, *, use_dtt: bool, use_det: bool, alpha: float, k_a: float,
                   k_i: float, C: float, tau_mp: float, tau_rd: float, v_t: float):
    """ALGORITHMS.md's MSAT for one neuron, in the paper's normalised units, as plain Python floats."""
    v, posts, outs, thetas = 0.0, [], [], []
    for t, x in enumerate(xs):
        z = x / theta_max
        if t == 0 or not (use_dtt or use_det):
            th = 1.0
        else:
            arg = 0.0
            if use_dtt:
                u = posts[-1] - sum(posts) / len(posts)
                arg += tau_mp * (alpha * u + v_t + k_a * math.log(1.0 + math.exp(u / k_i)))
            if use_det:
                arg += tau_rd * math.exp(-z / C)
            th = 1.0 / (1.0 + math.exp(-arg))
        v += z
        s = 1.0 if v >= th else 0.0
        v -= th * s
        posts.append(v)
        outs.append(th * s * theta_max)
        thetas.append(th * theta_max)
    return outs, thetas


def run_steps(neuron, xs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Step-by-step (one forward per step); returns outputs [T, …] and θ(t) per step."""
    neuron.reset_state()
    neuron.time_steps, neuron.batch_size = 1, xs.shape[1]
    outs, thetas = [], []
    for t in range(xs.shape[0]):
        outs.append(neuron(xs[t]))
        thetas.append(getattr(neuron, "theta_t", None))
    return torch.stack(outs), thetas


def readout_of(snn) -> nn.Module:
    return [m for m in snn.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]


def simulate_logits(snn, batches, T: int, chunk: int, dtype=torch.float64) -> torch.Tensor:
    """Cumulative network output [T, N, classes] over all images, via a hook on the readout."""
    sim = Simulator(snn, device=CPU, chunk=chunk, dtype=dtype)
    chunks: list[torch.Tensor] = []
    handle = readout_of(sim.snn).register_forward_hook(lambda m, i, o: chunks.append(o.detach().clone()))
    try:
        sim.run(batches, [T])
    finally:
        handle.remove()
    per_batch, it = [], iter(chunks)
    for images, _ in batches:
        b, steps = images.shape[0], []
        done = 0
        while done < T:
            out = next(it)
            s = out.shape[0] // b
            steps.append(out.view(s, b, -1))
            done += s
        per_batch.append(torch.cat(steps))
    return torch.cat(per_batch, dim=1).cumsum(0)


@pytest.fixture(scope="module")
def digits():
    from snnx.data import build_dataset

    train, test = build_dataset("digits", "train"), build_dataset("digits", "test")
    return train.tensors, test.tensors


@pytest.fixture(scope="module")
def relu_lenet(digits):
    from snnx.activations import make_act_factory
    from snnx.models import create_model

    (x, y), _ = digits
    torch.manual_seed(0)
    model = create_model("lenet", in_channels=1, image_size=8, num_classes=10, act_factory=make_act_factory("relu"),
                         width=0.125, batch_norm=True, pool="avg", dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    model.train()
    for i in range(0, 1024, 64):
        loss = nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    stats = calibrate(model, [x[:256]], percentile=99.9, num_batches=1, device=CPU)
    return model, stats


# -- the neuron ----------------------------------------------------------------------
@pytest.mark.parametrize("use_dtt,use_det", [(True, True), (True, False), (False, True)])
def test_dtt_det_match_scalar_reference(use_dtt, use_det):
    torch.manual_seed(1)
    theta_max = 1.5
    xs = torch.randn(9, 40, dtype=torch.float64) * 0.9 + 0.4
    neuron = MSATNeuron(torch.tensor(theta_max), use_dtt=use_dtt, use_det=use_det, **PARAMS).double()
    outs, thetas = run_steps(neuron, xs.unsqueeze(-1))
    for j in range(xs.shape[1]):
        ref_out, ref_theta = reference_msat(xs[:, j].tolist(), theta_max, use_dtt=use_dtt, use_det=use_det, **PARAMS)
        assert outs[:, j, 0].tolist() == pytest.approx(ref_out, rel=1e-12, abs=1e-12)
        assert [float(th[j, 0]) if th.dim() else float(th) for th in thetas] == pytest.approx(ref_theta, rel=1e-12)
    # the thresholds really adapt (after t = 0) and stay inside (0, θ_max)
    later = torch.stack([th.expand(40, 1) for th in thetas[1:]])
    assert bool((later < theta_max).all()) and bool((later > 0).all())
    assert float(thetas[0]) == theta_max


def test_dtt_det_formulas_at_a_point():
    neuron = MSATNeuron(torch.tensor(1.0), **PARAMS).double()
    u = torch.tensor([0.0, 0.5, -2.0], dtype=torch.float64)
    expected = [PARAMS["tau_mp"] * (PARAMS["alpha"] * v + PARAMS["v_t"] + PARAMS["k_a"] * math.log1p(math.exp(v / PARAMS["k_i"])))
                for v in u.tolist()]
    assert neuron.dtt(u).tolist() == pytest.approx(expected, rel=1e-14)
    assert neuron.det(u).tolist() == pytest.approx([PARAMS["tau_rd"] * math.exp(-v / PARAMS["C"]) for v in u.tolist()], rel=1e-14)
    assert math.isfinite(float(neuron.dtt(torch.tensor(900.0, dtype=torch.float64))))  # ln(1+e^x) does not overflow


@pytest.mark.parametrize("threshold", [torch.tensor(0.37), torch.tensor([0.3, 1.1, 2.5])])
def test_flags_off_is_the_if_neuron_bit_for_bit(threshold):
    torch.manual_seed(2)
    xs = torch.randn(24, 5, 3, 4, 4) * 0.8 + 0.2
    msat = MSATNeuron(threshold, use_dtt=False, use_det=False, confidence=1.0, **PARAMS)
    ifn = IFNeuron(threshold)
    for chunk in (1, 5, 24):
        a, b = run_folded(msat, xs, chunk), run_folded(ifn, xs, chunk)
        assert torch.equal(a, b)
        assert torch.equal(msat.v, ifn.v)
    assert bool((run_folded(ifn, xs, 24) != 0).any())


def test_fixed_fraction_is_if_with_scaled_threshold():
    torch.manual_seed(3)
    xs = torch.rand(20, 6, 7)
    fixed = MSATNeuron(torch.tensor(1.3), fixed_fraction=0.7)
    ifn = IFNeuron(torch.tensor(1.3) * 0.7)
    assert torch.equal(run_folded(fixed, xs, 4), run_folded(ifn, xs, 4))


def test_multistep_forward_equals_step_by_step():
    torch.manual_seed(4)
    xs = torch.randn(17, 3, 4, 5, 5, dtype=torch.float64) + 0.3
    neuron = MSATNeuron(torch.tensor(1.2), confidence=0.6, confidence_steps=6, seed=11, **PARAMS).double()
    stepwise, _ = run_steps(neuron, xs)
    for chunk in (3, 8, 17):
        assert torch.equal(run_folded(neuron, xs, chunk), stepwise)


def test_reset_state_clears_adaptive_state():
    neuron = MSATNeuron(torch.tensor(1.0), confidence=0.5)
    neuron.time_steps, neuron.batch_size = 3, 2
    neuron(torch.rand(6, 4) + 0.5)
    assert neuron.t == 3 and neuron.v_post_sum is not None and neuron.generator is not None
    neuron.reset_state()
    assert (neuron.t, neuron.v, neuron.v_post_sum, neuron.v_post_last, neuron.theta_t, neuron.generator) == \
        (0, None, None, None, None, None)


def test_spike_confidence_is_seeded_and_reproducible():
    torch.manual_seed(5)
    xs = torch.rand(20, 8, 30) * 2
    def make(seed, c=0.5):
        return MSATNeuron(torch.tensor(1.0), confidence=c, confidence_steps=10, seed=seed, **PARAMS)
    a1, a2, b = run_folded(make(7), xs, 1), run_folded(make(7), xs, 6), run_folded(make(8), xs, 1)
    assert torch.equal(a1, a2)  # same seed, any chunking: same spikes
    assert not torch.equal(a1, b)  # another seed: other draws
    n = make(7)
    assert torch.equal(run_folded(n, xs, 5), run_folded(n, xs, 5))  # re-seeded on every reset
    silent = run_folded(make(7, c=0.0), xs, 4)
    assert bool((silent[:10] == 0).all()) and bool((silent[10:] != 0).any())  # c = 0 only before t_sc
    full = run_folded(make(7, c=1.0), xs, 4)
    assert bool((full[:10] != 0).any())


# -- the converter -------------------------------------------------------------------
def test_convert_dispatch_thresholds_and_label(relu_lenet):
    model, stats = relu_lenet
    snn, label = convert(model, method="msat", stats=stats,
                         convert={"base": "pnorm", "percentile": 99.9, "confidence": [1.0, 0.9, 0.8], "seed": 3})
    neurons = [(n, m) for n, m in snn.named_modules() if isinstance(m, MSATNeuron)]
    assert [n for n, _ in neurons] == list(stats)
    for index, (name, neuron) in enumerate(neurons):
        assert float(neuron.threshold) == pytest.approx(max(stats[name]["percentile"], 1e-6))
        assert neuron.seed == 3 * 10007 + index
    assert [n.confidence for _, n in neurons] == [1.0, 0.9, 0.8]
    assert "msat" in label and "pnorm" in label and "DTT+DET" in label
    _, label = convert_msat(model, stats=stats, convert={"use_dtt": False, "use_det": False})
    assert "no adaptation" in label


@pytest.mark.parametrize("bad", [{"confidence": 1.2}, {"confidence": [-0.1, 1, 1]}, {"confidence": [1.0, 1.0]},
                                 {"base": "channelnorm"}, {"confidence_steps": -1}, {"C": 0.0}, {"use_dtt": "yes"},
                                 {"fixed_fraction": 0.0}])
def test_config_errors(relu_lenet, bad):
    model, stats = relu_lenet
    with pytest.raises(ConfigError):
        convert(model, method="msat", stats=stats, convert=bad)


def test_same_images_same_outputs_whatever_the_batch(relu_lenet, digits):
    model, stats = relu_lenet
    _, (x, y) = digits
    x, y = x[:48], y[:48]
    snn, _ = convert(model, method="msat", stats=stats, convert={})
    one = simulate_logits(snn, [(x, y)], 12, chunk=1)
    split = simulate_logits(snn, [(x[:7], y[:7]), (x[7:30], y[7:30]), (x[30:], y[30:])], 12, chunk=1)
    reordered = simulate_logits(snn, [(x[30:], y[30:]), (x[:30], y[:30])], 12, chunk=1)
    reordered = torch.cat([reordered[:, 18:], reordered[:, :18]], dim=1)
    torch.testing.assert_close(split, one, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(reordered, one, rtol=1e-12, atol=1e-12)
    assert torch.equal(split.argmax(-1), one.argmax(-1))
    # and the adaptive threshold did act (differs from plain maxnorm)
    maxnorm, _ = convert(model, method="maxnorm", stats=stats, convert={})
    assert not torch.allclose(simulate_logits(maxnorm, [(x, y)], 12, chunk=1), one)


def test_simulator_chunks_equal_step_by_step(relu_lenet, digits):
    model, stats = relu_lenet
    _, (x, y) = digits
    snn, _ = convert(model, method="msat", stats=stats, convert={"confidence": 0.7, "confidence_steps": 5, "seed": 1})
    stepwise = simulate_logits(snn, [(x[:40], y[:40])], 10, chunk=1)
    for chunk in (4, 10):
        torch.testing.assert_close(simulate_logits(snn, [(x[:40], y[:40])], 10, chunk=chunk), stepwise,
                                   rtol=1e-12, atol=1e-12)
    again = simulate_logits(snn, [(x[:40], y[:40])], 10, chunk=1)
    assert torch.equal(again, stepwise)  # seeded confidence: a second run repeats the first


def test_simulator_records_layer_diagnostics(relu_lenet, digits):
    model, stats = relu_lenet
    _, (x, y) = digits
    snn, _ = convert(model, method="msat", stats=stats, convert={})
    result = Simulator(snn, device=CPU, chunk=2).run([(x[:32], y[:32])], [2, 4], ann=model, record_layers=True)
    rows = result.layer_rows
    assert {r["layer"] for r in rows} == set(stats) and {r["T"] for r in rows} == {2, 4}
    assert all(0 <= r["sin_ratio"] <= 1 and r["firing_rate"] >= 0 for r in rows)


@pytest.mark.parametrize("option,expected", [("msat", {"alpha": 0.03, "tau_mp": 1.0, "tau_rd": 1.0}),
                                             ("msat_vgg16", {"alpha": 0.03, "tau_mp": 1.0, "tau_rd": 1.0, "C": 5.0}),
                                             ("msat_resnet20", {"alpha": 0.3, "tau_mp": 0.5, "tau_rd": 0.5, "k_i": 1.0})])
def test_presets_compose(option, expected):
    from hydra import compose, initialize_config_dir

    from snnx.config import register_configs

    register_configs()
    conf = os.path.join(os.path.dirname(__file__), "..", "conf")
    with initialize_config_dir(config_dir=os.path.abspath(conf), version_base=None):
        cfg = compose("config", overrides=[f"convert={option}"])
    assert cfg.convert.name == "msat" and cfg.convert.v_t == -1.0 and cfg.convert.confidence_steps == 16
    for key, value in expected.items():
        assert cfg.convert[key] == value
