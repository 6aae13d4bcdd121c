"""MSAT (He et al.): adaptive-threshold neuron, converter, per-batch reset, seeded spike confidence."""

from __future__ import annotations

import math
import os

import pytest
import torch
from torch import nn

from snnx.calibration import calibrate
from snnx.convert import convert
from snnx.errors import ConfigError
from snnx.neurons import IFNeuron, MSATNeuron
from snnx.sim import Simulator

from conftest import run_folded

CPU = torch.device("cpu")
PARAMS = dict(alpha=0.3, k_a=0.8, k_i=1.5, C=5.0, tau_mp=0.5, tau_rd=0.7, v_t=-1.0)
TABLE1_VGG16 = dict(alpha=0.03, k_a=1.0, k_i=1.0, C=5.0, tau_mp=1.0, tau_rd=1.0)  # He et al. Table 1


# -- helpers ---------------------------------------------------------------------
def reference_msat(xs: list[float], theta_max: float, *, use_dtt: bool, use_det: bool, alpha: float, k_a: float,
                   k_i: float, C: float, tau_mp: float, tau_rd: float, v_t: float | None, units: str = "raw",
                   det_tau: str = "squared", keep=None, confidence_reset: bool = False):
    """He et al. Eq. 12, 15–18 for one neuron, as plain Python floats (the membrane in input units).

    ``keep(t)``: the spike-confidence draw of step t (True keeps a spike; None: every spike kept).
    """
    scale = 1.0 if units == "raw" else theta_max  # normalised: u and z divided by θ_max
    vt = (-theta_max if units == "raw" else -1.0) if v_t is None else v_t
    tau_det = tau_rd * tau_rd if det_tau == "squared" else tau_rd
    v, posts, outs, thetas = 0.0, [], [], []
    for t, x in enumerate(xs):
        if t == 0 or not (use_dtt or use_det):
            th = theta_max
        else:
            arg = 0.0
            if use_dtt:
                u = (posts[-1] - sum(posts) / len(posts)) / scale  # V(t−1) − V_m(t−1)
                arg += tau_mp * (alpha * u + vt + k_a * math.log(1.0 + math.exp(u / k_i)))
            if use_det:
                arg += tau_det * math.exp(-(x / scale) / C)
            th = theta_max / (1.0 + math.exp(-arg))
        v += x
        fired = 1.0 if v >= th else 0.0
        s = fired if keep is None or keep(t) else 0.0
        v -= th * (fired if confidence_reset else s)
        posts.append(v)
        outs.append(th * s)
        thetas.append(th)
    return outs, thetas


def run_steps(neuron, xs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Step-by-step (one forward per step, the reference step); returns outputs [T, …] and θ(t) per step."""
    neuron.start_run(backend="reference")
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
                         width=0.125, batch_norm=True, pool="avg")
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
@pytest.mark.parametrize("units,v_t,det_tau", [("raw", None, "squared"), ("raw", -1.0, "once"),
                                               ("normalised", None, "squared"), ("normalised", -0.4, "once")])
@pytest.mark.parametrize("use_dtt,use_det", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("folded", [False, True], ids=["tau_mp*k_a!=1", "tau_mp*k_a=1"])
def test_dtt_det_match_scalar_reference(use_dtt, use_det, units, v_t, det_tau, folded):
    torch.manual_seed(1)
    theta_max = 1.5
    xs = torch.randn(9, 40, dtype=torch.float64) * 0.9 + 0.4
    # τ_mp·k_a = 1: θ(t) without the logarithm (MSATNeuron.threshold_at), the same number
    params = {**PARAMS, "v_t": v_t, **({"k_a": 2.0} if folded else {})}
    neuron = MSATNeuron(torch.tensor(theta_max), use_dtt=use_dtt, use_det=use_det, units=units, det_tau=det_tau,
                        **params).double()
    assert neuron.softplus_folds == folded
    outs, thetas = run_steps(neuron, xs.unsqueeze(-1))
    for j in range(xs.shape[1]):
        ref_out, ref_theta = reference_msat(xs[:, j].tolist(), theta_max, use_dtt=use_dtt, use_det=use_det,
                                            units=units, det_tau=det_tau, **params)
        assert outs[:, j, 0].tolist() == pytest.approx(ref_out, rel=1e-12, abs=1e-12)
        assert [float(th[j, 0]) if th.dim() else float(th) for th in thetas] == pytest.approx(ref_theta, rel=1e-12)
    # the thresholds really adapt (after t = 0) and stay inside (0, θ_max)
    later = torch.stack([th.expand(40, 1) for th in thetas[1:]])
    assert bool((later < theta_max).all()) and bool((later > 0).all())
    assert float(thetas[0]) == theta_max


def test_dtt_det_formulas_at_a_point():
    u = torch.tensor([0.0, 0.5, -2.0], dtype=torch.float64)
    for det_tau, tau in (("squared", PARAMS["tau_rd"] ** 2), ("once", PARAMS["tau_rd"])):
        neuron = MSATNeuron(torch.tensor(1.0), det_tau=det_tau, **PARAMS).double()
        expected = [PARAMS["tau_mp"] * (PARAMS["alpha"] * v + PARAMS["v_t"] + PARAMS["k_a"] * math.log1p(math.exp(v / PARAMS["k_i"])))
                    for v in u.tolist()]
        assert neuron.dtt(u, PARAMS["v_t"]).tolist() == pytest.approx(expected, rel=1e-14)
        assert neuron.det(u).tolist() == pytest.approx([tau * math.exp(-v / PARAMS["C"]) for v in u.tolist()], rel=1e-14)
        # ln(1+e^x) does not overflow
        assert math.isfinite(float(neuron.dtt(torch.tensor(900.0, dtype=torch.float64), PARAMS["v_t"])))
    # V_T's defaults: −θ_max per layer in raw units, −1 normalised; a number is taken as given
    theta = torch.tensor([0.5, 4.0])
    assert MSATNeuron(theta, units="raw").v_t_for(theta).tolist() == [-0.5, -4.0]
    assert MSATNeuron(theta, units="normalised").v_t_for(theta) == -1.0
    assert MSATNeuron(theta, units="raw", v_t=-2.5).v_t_for(theta) == -2.5


def test_first_adaptive_threshold_raw_vs_normalised():
    """θ_max = 4, a constant input 2.5 (no spike at t = 0, so u(1) = 0), Table 1's VGG16 values, by hand:
    raw:        θ(1) = 4·sigmoid(ln 2 − 4 + e^(−2.5/5))   = 0.2518…
    normalised: θ(1) = 4·sigmoid(ln 2 − 1 + e^(−0.625/5)) = 2.5603…
    """
    sig = lambda a: 1.0 / (1.0 + math.exp(-a))  # noqa: E731
    by_hand = {"raw": 4 * sig(math.log(2) - 4 + math.exp(-0.5)),
               "normalised": 4 * sig(math.log(2) - 1 + math.exp(-0.125))}
    assert by_hand["raw"] == pytest.approx(0.2518, abs=1e-4) and by_hand["normalised"] == pytest.approx(2.5603, abs=1e-4)
    for units, expected in by_hand.items():
        neuron = MSATNeuron(torch.tensor(4.0), units=units, **TABLE1_VGG16).double()
        _, thetas = run_steps(neuron, torch.full((2, 1, 1), 2.5, dtype=torch.float64))
        assert float(thetas[0]) == 4.0
        assert float(thetas[1]) == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("det_tau", ["squared", "once"])
def test_raw_and_normalised_agree_when_theta_max_is_one(det_tau):
    torch.manual_seed(6)
    xs = torch.randn(20, 6, 9) * 0.7 + 0.3
    raw = MSATNeuron(torch.tensor(1.0), units="raw", det_tau=det_tau, **{**PARAMS, "v_t": None})
    norm = MSATNeuron(torch.tensor(1.0), units="normalised", det_tau=det_tau, **{**PARAMS, "v_t": None})
    assert torch.equal(run_folded(raw, xs, 5), run_folded(norm, xs, 5))
    two = MSATNeuron(torch.tensor(2.0), units="raw", **{**PARAMS, "v_t": None})
    two_norm = MSATNeuron(torch.tensor(2.0), units="normalised", **{**PARAMS, "v_t": None})
    assert not torch.equal(run_folded(two, xs, 5), run_folded(two_norm, xs, 5))


@pytest.mark.parametrize("confidence_reset,expected", [(False, [0.0, 0.0, 1.0, 1.0, 1.0]),
                                                       (True, [0.0, 0.0, 0.0, 1.0, 1.0])])
def test_dropped_spike_reset_hand_sequence(confidence_reset, expected):
    """θ = θ_max = 1 (no adaptation), input 0.625 per step, every spike dropped for t < 2 (c = 0).
    Eq. 18: the spike dropped at t = 1 (v = 1.25) is not subtracted; v = 1.875 fires at t = 2, then 1.5, 1.125.
    Reset-then-drop (released code): t = 1 subtracts to 0.25 and emits nothing; 0.875 stays silent at t = 2."""
    neuron = MSATNeuron(torch.tensor(1.0), use_dtt=False, use_det=False, confidence=0.0, confidence_steps=2,
                        confidence_reset=confidence_reset).double()
    out = run_folded(neuron, torch.full((5, 1, 1), 0.625, dtype=torch.float64), 1)
    assert out.flatten().tolist() == expected
    assert float(neuron.v) == 0.125
    assert reference_msat([0.625] * 5, 1.0, use_dtt=False, use_det=False, **{**PARAMS, "v_t": None},
                          keep=lambda t: t >= 2, confidence_reset=confidence_reset)[0] == expected


@pytest.mark.parametrize("units", ["raw", "normalised"])
@pytest.mark.parametrize("confidence_reset", [False, True])
def test_spike_confidence_matches_scalar_reference(units, confidence_reset):
    """Adaptive θ(t) with c = 0.6 for t < 5: the neuron against the float64 reference fed the same draws."""
    torch.manual_seed(7)
    theta_max, seed, steps = 1.75, 13, 5
    xs = torch.rand(12, 30, dtype=torch.float64) * 1.4
    neuron = MSATNeuron(torch.tensor(theta_max), units=units, confidence=0.6, confidence_steps=steps, seed=seed,
                        confidence_reset=confidence_reset, **{**PARAMS, "v_t": None}).double()
    outs = run_folded(neuron, xs.unsqueeze(-1), 3)
    gen = torch.Generator().manual_seed(seed)
    draws = [torch.rand((30, 1), generator=gen, dtype=torch.float32) for _ in range(steps)]
    dropped = 0
    for j in range(30):
        ref, _ = reference_msat(xs[:, j].tolist(), theta_max, use_dtt=True, use_det=True, units=units,
                                keep=lambda t: t >= steps or float(draws[t][j, 0]) < 0.6,
                                confidence_reset=confidence_reset, **{**PARAMS, "v_t": None})
        assert outs[:, j, 0].tolist() == pytest.approx(ref, rel=1e-12, abs=1e-12)
        dropped += sum(float(draws[t][j, 0]) >= 0.6 for t in range(steps))
    assert dropped > 0


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


@pytest.mark.parametrize("units,confidence_reset", [("raw", False), ("raw", True), ("normalised", False)])
def test_multistep_forward_equals_step_by_step(units, confidence_reset):
    torch.manual_seed(4)
    xs = torch.randn(17, 3, 4, 5, 5, dtype=torch.float64) + 0.3
    neuron = MSATNeuron(torch.tensor([1.2, 2.5, 0.7, 3.0]), confidence=0.6, confidence_steps=6, seed=11, units=units,
                        confidence_reset=confidence_reset, **{**PARAMS, "v_t": None}).double()
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
                         convert={"base": "pnorm", "percentile": 99.9, "confidence": [1.0, 0.9, 0.8]}, seed=3)
    neurons = [(n, m) for n, m in snn.named_modules() if isinstance(m, MSATNeuron)]
    assert [n for n, _ in neurons] == list(stats)
    for index, (name, neuron) in enumerate(neurons):
        assert float(neuron.threshold) == pytest.approx(max(stats[name]["percentile"], 1e-6))
        assert neuron.seed == 3 * 10007 + index
    assert [n.confidence for _, n in neurons] == [1.0, 0.9, 0.8]
    assert "msat" in label and "pnorm" in label and "DTT+DET" in label
    _, label = convert(model, method="msat", stats=stats, convert={"use_dtt": False, "use_det": False})
    assert "no adaptation" in label


def test_confidence_last_names_the_last_site(relu_lenet):
    model, stats = relu_lenet
    snn, label = convert(model, method="msat", stats=stats, convert={"confidence": 1.0, "confidence_last": 0.683})
    probs = [m.confidence for m in snn.modules() if isinstance(m, MSATNeuron)]
    assert len(probs) == len(stats) >= 2 and probs == [1.0] * (len(stats) - 1) + [0.683]
    assert f"SC c=1×{len(stats) - 1}/0.683 t<16" in label and "normalised" in label and "V_T=−1" in label
    snn, label = convert(model, method="msat", stats=stats, convert={"confidence": 0.9, "units": "raw",
                                                                     "confidence_reset": True})
    assert {m.confidence for m in snn.modules() if isinstance(m, MSATNeuron)} == {0.9}
    assert "reset-then-drop" in label and "raw" in label and "V_T=−θ_max" in label


@pytest.mark.parametrize("bad,key", [({"confidence": 1.2}, "convert.confidence"),
                                     ({"confidence": [-0.1, 1, 1]}, "convert.confidence"),
                                     ({"confidence": [1.0, 1.0]}, "convert.confidence"),
                                     ({"confidence": 1.0, "confidence_last": 1.5}, "convert.confidence_last"),
                                     ({"confidence": [1.0, 1.0], "confidence_last": 0.5}, "convert.confidence_last"),
                                     ({"base": "channelnorm"}, "convert.base"),
                                     ({"confidence_steps": -1}, "convert.confidence_steps"), ({"C": 0.0}, "convert.C"),
                                     ({"use_dtt": "yes"}, "convert.use_dtt"), ({"fixed_fraction": 0.0}, "convert.fixed_fraction"),
                                     ({"units": "norm"}, "convert.units"), ({"det_tau": "twice"}, "convert.det_tau"),
                                     ({"v_t": float("nan")}, "convert.v_t"),
                                     ({"confidence_reset": "yes"}, "convert.confidence_reset")])
def test_config_errors(relu_lenet, bad, key):
    model, stats = relu_lenet
    with pytest.raises(ConfigError) as err:
        convert(model, method="msat", stats=stats, convert=bad)
    assert err.value.key == key


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
    snn, _ = convert(model, method="msat", stats=stats, convert={"confidence": 0.7, "confidence_steps": 5}, seed=1)
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


def _compose(overrides):
    from hydra import compose, initialize_config_dir

    from snnx.composition import register_configs

    register_configs()
    conf = os.path.join(os.path.dirname(__file__), "..", "conf")
    with initialize_config_dir(config_dir=os.path.abspath(conf), version_base=None):
        return compose("config", overrides=overrides)


@pytest.mark.parametrize("option,expected", [("msat", {"alpha": 0.03, "tau_mp": 1.0, "tau_rd": 1.0}),
                                             ("msat_vgg16", {"alpha": 0.03, "tau_mp": 1.0, "tau_rd": 1.0, "C": 5.0}),
                                             ("msat_resnet20", {"alpha": 0.3, "tau_mp": 0.5, "tau_rd": 0.5, "k_i": 1.0})])
def test_presets_compose(option, expected):
    cfg = _compose([f"convert={option}"])
    assert cfg.convert.name == "msat" and cfg.convert.confidence_steps == 16
    assert (cfg.convert.units, cfg.convert.v_t, cfg.convert.det_tau) == ("normalised", None, "squared")
    assert (cfg.convert.confidence, cfg.convert.confidence_last, cfg.convert.confidence_reset) == (1.0, None, False)
    for key, value in expected.items():
        assert cfg.convert[key] == value


@pytest.mark.parametrize("preset,last,sites", [("msat_cifar10_vgg16", 0.683, 15), ("msat_cifar100_vgg16", 0.683, 15),
                                               ("msat_cifar10_resnet20", 0.566, 19),
                                               ("msat_cifar100_resnet20", 0.566, 19),
                                               ("embedded_msat", 0.683, None), ("embedded_msat_resnet20", 0.566, 19)])
def test_table2_presets_normalised_units_and_released_confidences(preset, last, sites):
    """Table 2 is DT+SC: normalised units, V_T = −1, and the released runs' confidence in the last IF layer only."""
    from omegaconf import OmegaConf

    from snnx.convert.graph import activation_sites
    from snnx.ann import build

    cfg = _compose([f"experiment={preset}"])
    conv = cfg.convert
    assert (conv.name, conv.units, conv.v_t, conv.confidence, conv.confidence_last, conv.confidence_steps,
            conv.confidence_reset) == ("msat", "normalised", None, 1.0, last, 16, False)
    if sites is not None:  # our nets' IF layers (the preset comments state them): the released VGG16 has 13
        with torch.device("meta"):
            model = build(OmegaConf.to_container(cfg, resolve=True))
        assert len(activation_sites(model)) == sites


def test_validate_checks_a_confidence_list_against_the_model_before_training():
    from snnx.validate import validate

    cfg = _compose(["stage=run", "dataset=digits", "model=lenet", "convert=msat", "convert.confidence=[1.0,0.5]"])
    with pytest.raises(ConfigError) as err:
        validate(cfg, check_paths=False, note=None)
    assert err.value.key == "convert.confidence" and "activation layers" in str(err.value)
    cfg = _compose(["stage=run", "dataset=digits", "model=lenet", "convert=msat", "convert.confidence=[1.0,0.5]",
                    "convert.confidence_last=0.5"])
    with pytest.raises(ConfigError) as err:
        validate(cfg, check_paths=False, note=None)
    assert err.value.key == "convert.confidence_last"
    validate(_compose(["stage=run", "dataset=digits", "model=lenet", "convert=msat", "convert.confidence=0.9",
                       "convert.confidence_last=0.5"]), check_paths=False, note=None)
