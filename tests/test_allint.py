"""All-integer SNN (Zou et al. 2024): signed dual-threshold neuron, scatter-and-gather encoder,
converter (float and int64 modes), exact integer synapses, final time step."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnx.activations import Quant, apply_ternary, make_act_factory
from snnx.activations.functional import quant
from snnx.convert import convert
from snnx.convert.allint import SpikeConv2d, SpikeLinear, SumPool2d, convert_allint, int_conv2d
from snnx.errors import ConfigError
from snnx.neurons import ScatterGatherEncoder, SignedDualThresholdNeuron, dual_thresholds
from snnx.sim import Simulator
from snnx.tables.pivot import final_time_step

from conftest import run_folded

CPU = torch.device("cpu")


# -- helpers -----------------------------------------------------------------------
def random_bn(channels: int, gen: torch.Generator):
    mean = torch.randn(channels, generator=gen, dtype=torch.float64)
    std = torch.rand(channels, generator=gen, dtype=torch.float64) * 2 + 0.2
    gamma = torch.rand(channels, generator=gen, dtype=torch.float64) * 2 + 0.1
    beta = torch.randn(channels, generator=gen, dtype=torch.float64) * 0.5
    return mean, std, gamma, beta


def ann_level(z, mean, std, gamma, beta, k):
    """The ANN's level n = round_half_up(2^k·ReLU(BN(z))), via the snnx quant activation."""
    y = gamma * (z - mean) / std + beta
    return quant(y, k) * 2 ** k


def readout_of(snn) -> nn.Module:
    return [m for m in snn.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]


def simulate(snn, images, labels, T: int, *, chunk: int = 1, batch: int | None = None, dtype=torch.float32):
    """(SimResult, cumulative readout [T, N, classes]) for one run of the engine."""
    batch = batch or images.shape[0]
    batches = [(images[i:i + batch], labels[i:i + batch]) for i in range(0, images.shape[0], batch)]
    sim = Simulator(snn, device=CPU, chunk=chunk, dtype=dtype)
    chunks: list[torch.Tensor] = []
    handle = readout_of(sim.snn).register_forward_hook(lambda m, i, o: chunks.append(o.detach().clone()))
    try:
        result = sim.run(batches, list(range(1, T + 1)))
    finally:
        handle.remove()
    it, per_batch = iter(chunks), []
    for imgs, _ in batches:
        b, done, steps = imgs.shape[0], 0, []
        while done < T:
            out = next(it)
            steps.append(out.view(out.shape[0] // b, b, -1))
            done += steps[-1].shape[0]
        per_batch.append(torch.cat(steps))
    return result, torch.cat(per_batch, dim=1).cumsum(0)


@pytest.fixture(scope="module")
def digits():
    from snnx.data import build_dataset

    return build_dataset("digits", "train").tensors, build_dataset("digits", "test").tensors


def train_quant_lenet(x, y, *, k: int, ternary: bool = True, epochs: int = 3, seed: int = 0, k_first: int | None = None):
    from snnx.models import create_model

    torch.manual_seed(seed)
    model = create_model("lenet", in_channels=1, image_size=8, num_classes=10,
                         act_factory=make_act_factory("quant", k=k, k_first=k_first), width=0.125, batch_norm=True,
                         pool="avg")
    if ternary:
        apply_ternary(model)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(x.shape[0])
        for i in range(0, x.shape[0], 64):
            idx = perm[i:i + 64]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def quant_lenet(digits):
    (x, y), _ = digits
    return train_quant_lenet(x, y, k=1)


# -- the neuron ----------------------------------------------------------------------
@pytest.mark.parametrize("k", [0, 1, 2])
def test_constant_input_identity(k):
    """Input totalling 2^k·z, all at t = 0: after t steps the net count is min(t, n), n the ANN level."""
    gen = torch.Generator().manual_seed(k)
    mean, std, gamma, beta = random_bn(6, gen)
    theta_plus0, delta = dual_thresholds(k, mean, std, gamma, beta)
    z = torch.randn(50, 6, generator=gen, dtype=torch.float64) * 3
    n = ann_level(z, mean, std, gamma, beta, k)
    assert bool((n > 2).any()) and bool((n == 0).any())
    T = int(n.max()) + 3
    xs = torch.zeros(T, 50, 6, dtype=torch.float64)
    xs[0] = 2 ** k * z
    neuron = SignedDualThresholdNeuron(theta_plus0, delta)
    counts = run_folded(neuron, xs).cumsum(0)
    for t in range(1, T + 1):
        assert torch.equal(counts[t - 1], torch.minimum(n, torch.tensor(float(t))))
    assert torch.equal(neuron.count, n)


@pytest.mark.parametrize("k", [0, 2])
def test_identity_with_input_spread_over_time(k):
    """Signed input currents arriving over several steps: once enough steps have passed the count is the level."""
    gen = torch.Generator().manual_seed(10 + k)
    mean, std, gamma, beta = random_bn(4, gen)
    theta_plus0, delta = dual_thresholds(k, mean, std, gamma, beta)
    parts = torch.randn(6, 80, 4, generator=gen, dtype=torch.float64) * 2
    z = parts.sum(0)
    n = ann_level(z, mean, std, gamma, beta, k)
    T = 6 + 6 * int(parts.abs().sum(0).max() * 2 ** k / float(delta.min())) + 6  # generous: n steps after the last input
    xs = torch.zeros(T, 80, 4, dtype=torch.float64)
    xs[:6] = parts * 2 ** k
    out = run_folded(SignedDualThresholdNeuron(theta_plus0, delta), xs)
    assert bool((out.abs() <= 1).all())
    counts = out.cumsum(0)
    assert bool((counts >= 0).all())  # the clamp ṽ = max(v, θ⁻₀) keeps the count non-negative
    assert torch.equal(counts[-1], n)
    assert bool((out < 0).any())  # over-shooting neurons corrected themselves with −1 spikes


def test_fire_on_equal_decides_ties():
    # γ = σ = 1, μ = β = 0, k = 0: level = round(z); z = j + 0.5 are exact ties.
    one, zero = torch.ones(5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    theta_plus0, delta = dual_thresholds(0, zero, one, one, zero)
    z = torch.tensor([0.5, 1.5, 2.5, 1.2, -0.5], dtype=torch.float64)
    xs = torch.zeros(6, 1, 5, dtype=torch.float64)
    xs[0, 0] = z
    up = run_folded(SignedDualThresholdNeuron(theta_plus0, delta, fire_on_equal=True), xs).sum(0)[0]
    down = run_folded(SignedDualThresholdNeuron(theta_plus0, delta, fire_on_equal=False), xs).sum(0)[0]
    assert up.tolist() == [1, 2, 3, 1, 0]
    assert down.tolist() == [0, 1, 2, 1, 0]


def test_integer_neuron_is_integer_only_and_matches_float():
    gen = torch.Generator().manual_seed(3)
    mean, std, gamma, beta = random_bn(5, gen)
    theta_plus0, delta = dual_thresholds(0, mean, std, gamma, beta)
    ints = torch.randint(-3, 4, (30, 40, 5), generator=gen)
    scale = 10000
    fl = run_folded(SignedDualThresholdNeuron(theta_plus0, delta), ints.double())
    neuron = SignedDualThresholdNeuron(torch.round(theta_plus0 * scale).long(), torch.round(delta * scale).long())
    out = run_folded(neuron, ints * scale)
    assert out.dtype == torch.int64 and neuron.v.dtype == torch.int64 and neuron.count.dtype == torch.int64
    assert all(not b.is_floating_point() for b in neuron.buffers())
    assert torch.equal(out.double(), fl)
    with pytest.raises(TypeError):
        run_folded(neuron, ints.double())


def test_neuron_multistep_equals_step_by_step():
    gen = torch.Generator().manual_seed(4)
    mean, std, gamma, beta = random_bn(3, gen)
    theta_plus0, delta = dual_thresholds(1, mean, std, gamma, beta)
    xs = torch.randint(-2, 3, (19, 6, 3, 2, 2), generator=gen) * 10000
    neuron = SignedDualThresholdNeuron(torch.round(theta_plus0 * 10000).long(), torch.round(delta * 10000).long())
    stepwise = run_folded(neuron, xs, 1)
    for chunk in (4, 19):
        assert torch.equal(run_folded(neuron, xs, chunk), stepwise)


def test_scatter_gather_encoder():
    y = torch.tensor([[-1.0, 0.2, 0.26, 1.74, 3.9, 9.0]])
    for k in (0, 1):
        level = quant(y, k, clip=4.0) * 2 ** k
        for integer in (False, True):
            enc = ScatterGatherEncoder(k, 4.0, integer=integer)
            for chunk in (1, 3, 12):
                enc.reset_state()
                outs = []
                for start in range(0, 12, chunk):
                    enc.time_steps, enc.batch_size = chunk, 1
                    outs.append(enc(y).view(chunk, 1, -1))  # constant [B, …] input, as from the prefix
                out = torch.cat(outs)
                assert out.dtype == (torch.int64 if integer else torch.float32)
                assert torch.equal(out.sum(0).double(), level.double())
                steps = torch.arange(12).view(12, 1, 1)
                assert torch.equal(out.bool(), steps < level.unsqueeze(0))  # n spikes on the first n steps


# -- exact integer synapses ----------------------------------------------------------------
@pytest.mark.parametrize("shape,weight,stride,padding,dilation,groups", [
    ((3, 4, 7, 6), (5, 4, 3, 3), 1, 1, 1, 1),
    ((2, 6, 9, 8), (4, 3, 3, 2), (2, 1), (1, 0), 1, 2),
    ((2, 3, 8, 8), (2, 3, 3, 3), 1, 2, 2, 1),
])
def test_int_conv2d_is_exact(shape, weight, stride, padding, dilation, groups):
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(-1, 2, shape, generator=gen)
    w = torch.randint(-20000, 20001, weight, generator=gen)
    ref = F.conv2d(x.double(), w.double(), None, stride, padding, dilation, groups)  # exact: |values| < 2^53
    out = int_conv2d(x, w, stride, padding, dilation, groups)
    assert out.dtype == torch.int64 and torch.equal(out, ref.long())
    pooled = SumPool2d(2)(x)
    assert pooled.dtype == torch.int64 and torch.equal(pooled, (F.avg_pool2d(x.double(), 2) * 4).long())


# -- the converter -----------------------------------------------------------------------------
def test_converted_structure(quant_lenet):
    snn, label = convert(quant_lenet, method="allint", stats=None, convert={"integer": True})
    mods = dict(snn.named_modules())
    assert isinstance(mods["features.0.act"], ScatterGatherEncoder)
    assert isinstance(mods["features.0.bn"], nn.BatchNorm2d)  # the full-precision input layer keeps its BN
    signed = [m for m in snn.modules() if isinstance(m, SignedDualThresholdNeuron)]
    assert len(signed) == 2 and all(m.integer for m in signed)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in snn.modules()) == 1  # hidden BNs became thresholds
    hidden = [mods["features.2.conv"], mods["classifier.1"]]
    assert all(isinstance(m, (SpikeConv2d, SpikeLinear)) and m.weight.dtype == torch.int64 for m in hidden)
    assert all(bool(torch.isin(m.weight, torch.tensor([-10000, 0, 10000])).all()) for m in hidden)  # ternary × scale
    assert isinstance(mods["features.1"], SumPool2d) and isinstance(mods["features.3"], SumPool2d)
    assert mods["classifier.4"].bias_once is not None and mods["classifier.4"].weight.dtype == torch.int64
    assert "allint k=1" in label and "int64" in label and "ternary" in label
    # the caller's ANN is untouched (ternary parametrization still works)
    quant_lenet(torch.zeros(1, 1, 8, 8))


def test_integer_mode_has_no_float_tensor_after_the_encoder(quant_lenet, digits):
    _, (x, y) = digits
    snn, _ = convert_allint(quant_lenet, convert={"integer": True})
    sim = Simulator(snn, device=CPU, chunk=2)
    seen = []
    handles = [m.register_forward_hook(lambda m, i, o, name=name: seen.append((name, i[0].dtype, o.dtype)))
               for name, m in sim.snn.named_modules() if name and not list(m.children())]
    try:
        sim.run([(x[:16], y[:16])], [4])
    finally:
        for h in handles:
            h.remove()
    body = [s for s in seen if not s[0].startswith("features.0.") or s[0] == "features.0.act"]
    assert body and all(out == torch.int64 for _, _, out in body)
    assert all(inp == torch.int64 for name, inp, _ in body if name != "features.0.act")


def test_float_and_integer_predictions_identical(quant_lenet, digits):
    _, (x, y) = digits
    T = 24
    float_snn, _ = convert_allint(quant_lenet, convert={"integer": False})
    int_snn, _ = convert_allint(quant_lenet, convert={"integer": True})
    res_f, logits_f = simulate(float_snn, x, y, T, chunk=4, dtype=torch.float64)
    res_i, logits_i = simulate(int_snn, x, y, T, chunk=4)
    assert logits_i.dtype == torch.int64
    assert torch.equal(logits_f.argmax(-1), logits_i.argmax(-1))  # every image, every T
    assert res_f.correct == res_i.correct
    assert res_f.spikes == res_i.spikes and res_f.negative_spikes == res_i.negative_spikes
    # and the integer readout is the float one × int_scale, up to the full-precision readout weights'
    # rounding: ≤ 0.5/int_scale per weight per input spike
    assert float((logits_i.double() / 10000 - logits_f).abs().max()) < 0.02


def test_integer_mode_says_when_it_rounds_full_precision_weights(quant_lenet, monkeypatch):
    import snnx.console

    from snnx.models import create_model

    said: list[str] = []
    monkeypatch.setattr(snnx.console, "log", said.append)
    convert_allint(quant_lenet, convert={"integer": True})  # ternary: exact, nothing to say
    convert_allint(quant_lenet, convert={"integer": False})
    assert said == []
    torch.manual_seed(0)
    full = create_model("lenet", in_channels=1, image_size=8, num_classes=10, act_factory=make_act_factory("quant", k=0),
                        width=0.125, batch_norm=True, pool="avg").eval()
    convert_allint(full, convert={"integer": True})
    assert len(said) == 1 and "1/10000" in said[0] and "train.weight_quant=ternary" in said[0]
    bound = float(said[0].split("up to ")[1].split(" ")[0])
    # recomputed: the worst row's Σ|round(w·s) − w·s|/s over that channel's δ (k = 0: δ = σ/γ; untrained BN
    # γ = 1, σ = √(1 + ε); the FC site has no BN: δ = 1)
    mods = dict(full.named_modules())
    rows = {"features.2.act": (mods["features.2.conv"].weight, (1 + mods["features.2.bn"].eps) ** 0.5),
            "classifier.2": (mods["classifier.1"].weight, 1.0)}
    ratios = {}
    for site, (weight, delta) in rows.items():
        scaled = weight.detach().double().flatten(1) * 10000
        ratios[site] = float(((scaled.round() - scaled).abs().sum(1) / 10000 / delta).max())
    worst = max(ratios, key=ratios.get)
    assert bound == pytest.approx(ratios[worst], rel=0.05) and f"'{worst}'" in said[0]
    convert_allint(full, convert={"integer": True, "int_scale": 10 ** 9})
    assert float(said[1].split("up to ")[1].split(" ")[0]) < bound / 1000


def test_ternary_build_normalises_hidden_linears_and_stays_exact_in_integer_mode(digits):
    """train.weight_quant=ternary: each hidden Linear gets a BatchNorm1d (its ±1 weights carry no scale);
    the converter turns that BN into thresholds, and integer mode still matches float mode exactly."""
    from snnx.activations.ternary import is_ternary
    from snnx.ann import build

    (x, y), (xt, yt) = digits
    config = {"dataset": {"name": "digits"}, "act": {"name": "quant", "k": 0, "clip_first": 4.0},
              "model": {"name": "lenet", "width": 0.125, "batch_norm": True, "pool": "avg", "dropout": 0.0},
              "train": {"weight_quant": "ternary"}}
    torch.manual_seed(0)
    model = build(config)
    hidden, readout = model.classifier[1], model.classifier[4]
    assert isinstance(hidden, nn.Sequential) and isinstance(hidden[1], nn.BatchNorm1d)
    assert hidden[0].bias is None and is_ternary(hidden[0])
    assert not is_ternary(readout) and readout.bias is not None and not is_ternary(model.features[0].conv)
    untouched = build({**config, "train": {"weight_quant": "none"}})
    assert isinstance(untouched.classifier[1], nn.Linear)  # full-precision weights: the head is unchanged
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    model.train()
    for _ in range(3):
        for i in range(0, x.shape[0], 64):
            loss = F.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    T = 16
    float_snn, _ = convert_allint(model, convert={"integer": False})
    int_snn, label = convert_allint(model, convert={"integer": True})
    assert "ternary" in label
    assert not any(isinstance(m, nn.BatchNorm1d) for m in int_snn.modules())  # the BN became θ⁺₀ and δ
    res_f, logits_f = simulate(float_snn, xt, yt, T, chunk=4, dtype=torch.float64)
    res_i, logits_i = simulate(int_snn, xt, yt, T, chunk=4)
    assert torch.equal(logits_f.argmax(-1), logits_i.argmax(-1)) and res_f.correct == res_i.correct
    with torch.no_grad():
        ann_logits = model(xt)
    # once every spike has arrived the readout is 2^k × the ANN's logits: the SNN settles on the ANN
    assert (logits_f[-1].argmax(-1) == ann_logits.argmax(-1)).double().mean() >= 0.99
    assert final_time_step(res_f.correct) is not None and final_time_step(res_f.correct) < T


def test_snn_reaches_the_ann(quant_lenet, digits):
    _, (x, y) = digits
    with torch.no_grad():
        ann_logits = quant_lenet(x)
    T = 24
    result, logits = simulate(convert_allint(quant_lenet, convert={})[0], x, y, T, chunk=4, dtype=torch.float64)
    # once every spike has arrived, the readout holds 2^k × the ANN's logits
    final = final_time_step(result.correct)
    assert final is not None and final < T
    agree = (logits[-1].argmax(-1) == ann_logits.argmax(-1)).double().mean()
    assert agree >= 0.99
    close = torch.isclose(logits[-1], 2 * ann_logits.double(), rtol=1e-4, atol=1e-3).all(-1).double().mean()
    assert close >= 0.99
    ann_acc = 100.0 * float((ann_logits.argmax(-1) == y).double().mean())
    assert abs(result.accuracy(T) - ann_acc) <= 1.0
    at_end = result.per_image(T)
    assert 0 < at_end["negative_spikes_per_neuron"] < at_end["spikes_per_neuron"]


def test_simulator_chunks_and_batches_equal_step_by_step(quant_lenet, digits):
    _, (x, y) = digits
    x, y = x[:60], y[:60]
    snn, _ = convert_allint(quant_lenet, convert={"integer": True})
    _, stepwise = simulate(snn, x, y, 14, chunk=1)
    for chunk, batch in ((5, None), (14, 25)):
        _, other = simulate(snn, x, y, 14, chunk=chunk, batch=batch)
        assert torch.equal(other, stepwise)


def test_negative_gamma_and_bias_without_bn():
    """A channel with γ < 0 (weights flipped) and a linear layer with bias and no BN still match the ANN."""
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv0 = nn.Conv2d(1, 3, 3, padding=1, bias=False)
            self.bn0 = nn.BatchNorm2d(3)
            self.act0 = Quant(1, clip=4.0)
            self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(4)
            self.act1 = Quant(1)
            self.fc = nn.Linear(4 * 16, 8)
            self.act2 = Quant(1)
            self.out = nn.Linear(8, 3)

        def forward(self, x):
            x = self.act1(self.bn1(self.conv1(self.act0(self.bn0(self.conv0(x))))))
            return self.out(self.act2(self.fc(x.flatten(1))))

    net = Net()
    with torch.no_grad():
        net.conv1.weight.copy_(torch.randint(-1, 2, net.conv1.weight.shape).float())
        net.bn1.weight.copy_(torch.tensor([1.5, -0.7, 0.9, -2.0]))
        net.bn1.bias.copy_(torch.tensor([0.3, 0.6, -0.2, 1.0]))
        net.bn1.running_mean.copy_(torch.randn(4))
        net.bn1.running_var.copy_(torch.rand(4) * 3 + 0.5)
        net.fc.bias.copy_(torch.randn(8))
    net.eval()
    images = torch.randn(40, 1, 4, 4)
    with torch.no_grad():
        ann = net(images).double()
    for integer in (False, True):
        snn, _ = convert_allint(net, convert={"integer": integer})
        _, logits = simulate(snn, images, torch.zeros(40, dtype=torch.long), 60, chunk=10, dtype=torch.float64)
        got = logits[-1].double() / (10000 if integer else 1)
        torch.testing.assert_close(got, 2 * ann, rtol=1e-3, atol=5e-3)


def test_config_errors(digits):
    from snnx.models import create_model

    relu = create_model("lenet", in_channels=1, image_size=8, num_classes=10, act_factory=make_act_factory("relu"),
                        width=0.125, batch_norm=True, pool="avg").eval()
    with pytest.raises(ConfigError, match="quant"):
        convert(relu, method="allint", stats=None, convert={})
    q = create_model("lenet", in_channels=1, image_size=8, num_classes=10, act_factory=make_act_factory("quant", k=0),
                     width=0.125, batch_norm=True, pool="avg").eval()
    for bad in ({"int_scale": 0}, {"integer": "yes"}, {"fire_on_equal": 1}):
        with pytest.raises(ConfigError):
            convert(q, method="allint", stats=None, convert=bad)


def test_preset_composes():
    from hydra import compose, initialize_config_dir

    from snnx.composition import register_configs

    register_configs()
    conf = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "conf"))
    with initialize_config_dir(config_dir=conf, version_base=None):
        cfg = compose("config", overrides=["convert=allint", "convert.integer=true"])
    assert cfg.convert.name == "allint" and cfg.convert.integer and cfg.convert.int_scale == 10000
    assert cfg.convert.fire_on_equal


def _vgg_allint_with_odd_bn_stats(x, *, k: int, pool: str) -> nn.Module:
    """A tiny ``vgg11_allint`` (ternary weights) whose BNs have running statistics far from the batch ones.

    Running stats are first measured on 256 digits, then shifted/rescaled, γ drawn in ±[0.5, 1.5] (some
    negative) and β random: eval-mode and train-mode outputs differ a lot, as after a short training run.
    """
    from snnx.models import create_model

    torch.manual_seed(0)
    model = create_model("vgg11_allint", in_channels=1, image_size=8, num_classes=10,
                         act_factory=make_act_factory("quant", k=k, k_first=None), width=0.0625, batch_norm=True, pool=pool)
    apply_ternary(model)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = None  # cumulative average: the running stats are those of this one batch
    model.train()
    with torch.no_grad():
        model(x[:256])
        gen = torch.Generator().manual_seed(1)
        for bn in bns:
            c = bn.num_features
            bn.running_mean += 0.3 * torch.randn(c, generator=gen) * bn.running_var.sqrt()
            bn.running_var *= torch.rand(c, generator=gen) * 1.5 + 0.5
            sign = torch.where(torch.rand(c, generator=gen) < 0.15, -1.0, 1.0)
            bn.weight.copy_((torch.rand(c, generator=gen) + 0.5) * sign)
            bn.bias.copy_(torch.randn(c, generator=gen) * 0.3)
    return model.eval().double()


@pytest.mark.parametrize("k,T", [(0, 48), (1, 128)])
def test_vgg_allint_avg_pool_snn_equals_its_ann(digits, k, T):
    """Regression (the avg-pool "SNN above its ANN" report): at large T the converted vgg11_allint computes its
    eval-mode ANN (running BN statistics, ternary weights) with average pooling (float: window mean of unit
    spikes; integer: window sum, pool area folded into the thresholds).

    Float mode is exact: every neuron's net spike count equals the ANN's level round(2^k·ReLU(BN(z))) and the
    readout holds 2^k × the ANN's logits. Integer mode rounds θ⁺₀ and δ to integers (× int_scale·gain), so
    θ⁺ + m·δ is off by ≤ (1 + m)/2 integer units: a neuron whose 2^k·y lies within (1 + m)/(2·δ_int) of a
    rounding tie may settle one level away (and that propagates); anything else is exact. T must exceed the
    largest level (~110 here for k = 1; necessary, not sufficient — deeper layers settle later): read earlier,
    the SNN's counts are capped by the steps it has had, and it is not yet the ANN.
    """
    import copy

    from snnx.neurons import Neuron

    (x, _), _ = digits
    model = _vgg_allint_with_odd_bn_stats(x, k=k, pool="avg")
    images = x[300:316].double()
    pre, levels = {}, {}

    def record(name, i, o):
        pre[name], levels[name] = i[0], o * 2 ** k

    handles = [m.register_forward_hook(lambda m, i, o, n=name: record(n, i, o))
               for name, m in model.named_modules() if isinstance(m, Quant)]
    with torch.no_grad():
        ann = model(images)
    for h in handles:
        h.remove()
    with torch.no_grad():
        batch_stats = copy.deepcopy(model).train()(images)
    assert float((batch_stats - ann).abs().max()) > 1.0  # the running stats matter
    assert max(int(v.max()) for v in levels.values()) < T  # every level is reachable within T
    for integer in (False, True):
        snn, _ = convert_allint(model, convert={"integer": integer})
        neurons = {name: m for name, m in snn.named_modules() if isinstance(m, Neuron)}
        counts: dict[str, torch.Tensor] = {}

        def count(m, _i, o, name):
            counts[name] = counts.get(name, 0) + o.view(m.time_steps, -1, *o.shape[1:]).double().sum(0)

        for name, m in neurons.items():
            m.register_forward_hook(lambda m, i, o, n=name: count(m, i, o, n))
        _, logits = simulate(snn, images, torch.zeros(len(images), dtype=torch.long), T, chunk=16,
                             dtype=torch.float64)
        assert list(counts) == list(levels)
        if not integer:
            for name, level in levels.items():
                assert torch.equal(counts[name], level), name
            torch.testing.assert_close(logits[-1], 2 ** k * ann, rtol=1e-9, atol=1e-9)
            continue
        wrong = {name: counts[name] != level for name, level in levels.items()}
        first = next((name for name in levels if wrong[name].any()), None)
        if first is not None:  # its inputs are exact: only rounding ties may flip
            bad = wrong[first]
            channel = bad.nonzero()[:, 1]
            delta = neurons[first].delta[channel].double()
            m = torch.maximum(levels[first][bad], counts[first][bad]) + 1
            y = pre[first][bad] * 2 ** k
            tie = torch.floor(y) + 0.5
            assert bool(((y - tie).abs() <= (1 + m) / (2 * delta)).all()), first
        hidden = sum(int(w.sum()) for w in wrong.values()) / sum(w.numel() for w in wrong.values())
        assert hidden < 0.01
        assert torch.equal(logits[-1].argmax(-1), ann.argmax(-1))


def test_layer_diagnostics_read_signed_spike_counts_as_levels(digits):
    """layers.csv for allint: a net spike count stands for count·2^−k of activation (not a rate), so once the
    SNN equals its ANN (float mode, large T) every layer's error vs the ANN is zero."""
    from snnx.sim import Simulator

    (x, _), _ = digits
    model = _vgg_allint_with_odd_bn_stats(x, k=0, pool="avg")
    images = x[300:316].double()
    snn, _ = convert_allint(model, convert={"integer": False})
    sim = Simulator(snn, device=torch.device("cpu"), chunk=16, dtype=torch.float64)
    result = sim.run([(images, torch.zeros(len(images), dtype=torch.long))], [4, 48], ann=model,
                     record_layers=True)
    late = [r for r in result.layer_rows if r["T"] == 48]
    assert late and all(r["ann_error"] < 1e-9 for r in late), late
    assert any(r["ann_error"] > 0.01 for r in result.layer_rows if r["T"] == 4)  # not settled at T = 4


# -- §3.1: the encoding layer's own level (act.k_first) -------------------------------------------
def test_thresholds_for_input_spikes_of_another_level():
    """dual_thresholds(k, …, k_in) is Eqs. 5–7 (δ = 2^−k·σ/γ, θ⁺₀ = (2^−(k+1) − β)σ/γ + μ) times 2^k_in,
    written here in plain float64 Python."""
    gen = torch.Generator().manual_seed(7)
    mean, std, gamma, beta = random_bn(5, gen)
    for k, k_in in ((2, 0), (1, 0), (0, 2), (1, 1)):
        theta_plus0, delta = dual_thresholds(k, mean, std, gamma, beta, k_in=k_in)
        for c in range(5):
            m, s_, g, b = (float(t[c]) for t in (mean, std, gamma, beta))
            assert float(delta[c]) == pytest.approx(2 ** k_in * (2 ** -k) * s_ / g, rel=1e-14)
            assert float(theta_plus0[c]) == pytest.approx(2 ** k_in * ((2 ** -(k + 1) - b) * s_ / g + m), rel=1e-12)
    same = dual_thresholds(2, mean, std, gamma, beta, k_in=2)
    assert all(torch.equal(a, b) for a, b in zip(same, dual_thresholds(2, mean, std, gamma, beta)))


@pytest.mark.parametrize("k", [0, 2])
def test_neuron_fed_by_integer_levels_reaches_its_own_level(k):
    """Input spikes of level 0 (one spike = 1.0) into a level-k neuron: the count settles to round(2^k·ReLU(y))."""
    gen = torch.Generator().manual_seed(20 + k)
    mean, std, gamma, beta = random_bn(6, gen)
    theta_plus0, delta = dual_thresholds(k, mean, std, gamma, beta, k_in=0)
    z = torch.randn(60, 6, generator=gen, dtype=torch.float64) * 3
    n = ann_level(z, mean, std, gamma, beta, k)
    xs = torch.zeros(int(n.max()) + 2, 60, 6, dtype=torch.float64)
    xs[0] = z  # 2^0·z
    assert torch.equal(run_folded(SignedDualThresholdNeuron(theta_plus0, delta), xs).sum(0), n)


@pytest.fixture(scope="module")
def paper_lenet(digits):
    """k = 2 hidden layers, the paper's 4-step input layer (k_first = 0)."""
    (x, y), _ = digits
    return train_quant_lenet(x, y, k=2, k_first=0)


def test_paper_input_layer_takes_at_most_four_steps(paper_lenet, digits):
    """§3.1: the first layer is "discretized into a spike sequence with only 4 time steps" whatever k."""
    _, (x, y) = digits
    first = paper_lenet.features[0].act
    assert first.k == 0 and first.clip == 4.0 and paper_lenet.features[2].act.k == 2
    snn, label = convert_allint(paper_lenet, convert={"integer": True})
    assert "allint k=2" in label and "input k=0" in label
    encoder = dict(snn.named_modules())["features.0.act"]
    assert isinstance(encoder, ScatterGatherEncoder) and encoder.k == 0
    sim = Simulator(snn, device=CPU, chunk=3)
    emitted = []
    handle = sim.snn.get_submodule("features.0.act").register_forward_hook(lambda m, i, o: emitted.append(o.clone()))
    try:
        sim.run([(x[:32], y[:32])], [12])
    finally:
        handle.remove()
    spikes = torch.cat([o.view(-1, 32, *o.shape[1:]) for o in emitted])  # [12, B, C, H, W]
    per_step = spikes.flatten(1).sum(1)
    assert bool(per_step[:4].gt(0).any()) and bool((per_step[4:] == 0).all())
    with torch.no_grad():
        level = quant(paper_lenet.features[0].bn(paper_lenet.features[0].conv(x[:32])), 0, clip=4.0)
    assert torch.equal(spikes.sum(0).double(), level.double())  # integers 0…4, one spike each


def test_paper_input_layer_snn_matches_ann_and_integer_mode(paper_lenet, digits):
    _, (x, y) = digits
    T = 100  # level-2 hidden neurons take a while to settle
    with torch.no_grad():
        ann_logits = paper_lenet(x)
    res_f, logits_f = simulate(convert_allint(paper_lenet, convert={})[0], x, y, T, chunk=4, dtype=torch.float64)
    res_i, logits_i = simulate(convert_allint(paper_lenet, convert={"integer": True})[0], x, y, T, chunk=4)
    # every hidden neuron fires exactly as in float mode (ternary weights and integer levels scale exactly) …
    assert res_f.spikes == res_i.spikes and res_f.negative_spikes == res_i.negative_spikes
    # … and only the full-precision readout's weights are rounded to 1/int_scale: near-ties may flip
    assert float((logits_i.double() / 10000 - logits_f).abs().max()) < 0.02
    assert (logits_f.argmax(-1) == logits_i.argmax(-1)).double().mean() >= 0.99
    # the readout reads level-2 spikes: 2^2 × the ANN's logits once every spike has arrived
    close = torch.isclose(logits_f[-1], 4 * ann_logits.double(), rtol=1e-4, atol=1e-3).all(-1).double().mean()
    assert close >= 0.99
    assert final_time_step(res_f.correct) < T


def test_k_first_reaches_the_built_ann_and_is_checked():
    from snnx.ann import build

    config = {"dataset": {"name": "digits"}, "act": {"name": "quant", "k": 1, "clip_first": 4.0, "k_first": 0},
              "model": {"name": "lenet", "width": 0.125, "batch_norm": True, "pool": "avg", "dropout": 0.0},
              "train": {"weight_quant": "ternary", "ternary_ste": "identity"}}
    model = build(config)
    assert model.features[0].act.k == 0 and model.features[2].act.k == 1
    assert model.features[2].conv.parametrizations["weight"][0].ste == "identity"
    follow = build({**config, "act": {**config["act"], "k_first": None}})
    assert follow.features[0].act.k == 1  # null: the input layer at act.k
    with pytest.raises(ConfigError) as err:
        make_act_factory("quant", k=1, k_first=-1)
    assert err.value.key == "act.k_first"


# -- §4.4: spikes without the input and output layers, ops with 1 MAC = 4 SOPs ----------------------
def test_hidden_activity_against_a_hand_count():
    from snnx.sim.accounting import SOPS_PER_MAC, ann_macs, hidden_activity

    torch.manual_seed(3)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv0 = nn.Conv2d(1, 2, 3, padding=1)
            self.act0 = Quant(0, clip=4.0)
            self.fc1 = nn.Linear(2 * 16, 12, bias=False)
            self.bn1 = nn.BatchNorm1d(12)
            self.act1 = Quant(1)
            self.out = nn.Linear(12, 3)

        def forward(self, x):
            return self.out(self.act1(self.bn1(self.fc1(self.act0(self.conv0(x)).flatten(1)))))

    net = Net()
    with torch.no_grad():
        net.conv0.weight.mul_(4)
        net.fc1.weight.copy_(torch.randint(-1, 2, net.fc1.weight.shape).float())
        net.bn1.running_var.fill_(4.0)
    net.eval()
    images, T = torch.randn(10, 1, 4, 4), 20
    snn, _ = convert_allint(net, convert={})
    sim = Simulator(snn, device=CPU, chunk=1)
    outs = {"act0": [], "act1": []}
    hooks = [sim.snn.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: outs[n].append(o.clone()))
             for n in outs]
    try:
        result = sim.run([(images, torch.zeros(10, dtype=torch.long))], [T])
    finally:
        for h in hooks:
            h.remove()
    enc, hid = torch.stack(outs["act0"]), torch.stack(outs["act1"])  # [T, 10, …]
    pos, neg = float((hid > 0).sum()) / 10, float((hid < 0).sum()) / 10
    assert neg > 0 and float(enc.sum()) > 0
    # conv0, the SNN's only MACs, counted tap by tap inside the image: 2+3+3+2 taps per row and column, 2 channels
    macs_first = (2 + 3 + 3 + 2) ** 2 * 2
    sops = (float((enc != 0).sum()) * 12 + float((hid != 0).sum()) * 3) / 10  # events × fan-out
    macs_ann = 4 * 4 * 2 * 9 + 32 * 12 + 12 * 3  # torch's flop counter counts the padded taps too
    assert ann_macs(net, images[:1]) == macs_ann
    got = hidden_activity(result, T, macs_ann)
    assert got["hidden_neurons"] == 12  # act1 only: the input layer (32 encoder neurons) is left out
    assert got["hidden_spikes"] == pos + neg and got["hidden_negative_ratio"] == pytest.approx(neg / pos)
    assert got["ops_ratio"] == pytest.approx(SOPS_PER_MAC * macs_ann / (sops + SOPS_PER_MAC * macs_first))


def test_ann_key_changes_exactly_with_the_new_options():
    """act.k_first, train.ternary_ste and dataset.crop enter the ANN key only where they change the trained ANN."""
    from snnx.artifacts import ann_key, ann_key_payload

    base = {"dataset": {"name": "cifar10", "crop": None}, "seed": 0,
            "model": {"name": "vgg11_allint", "width": 1.0, "batch_norm": True, "pool": "conv"},
            "act": {"name": "quant", "k": 0, "clip_first": 4.0, "k_first": 0},
            "train": {"lr": 0.01, "weight_quant": "ternary", "ternary_ste": "identity"}}
    older = {**base, "dataset": {"name": "cifar10"}, "act": {"name": "quant", "k": 0, "clip_first": 4.0},
             "train": {"lr": 0.01, "weight_quant": "ternary"}}
    assert ann_key(base) == ann_key(older)  # k_first = k, the released estimator, no crop: the ANN of before

    def varied(section, **values):
        return {**base, section: {**base[section], **values}}

    assert ann_key(varied("act", k_first=None)) == ann_key(base)  # null: act.k, here 0
    assert ann_key(varied("act", k=2)) != ann_key(varied("act", k=2, k_first=None))  # a 4-step vs a 16-step input
    assert ann_key(varied("train", ternary_ste="clipped")) != ann_key(base)  # Eq. 9 trains differently
    no_ternary = varied("train", weight_quant="none")
    assert ann_key({**no_ternary, "train": {**no_ternary["train"], "ternary_ste": "clipped"}}) == ann_key(no_ternary)
    assert ann_key(varied("dataset", crop=24)) != ann_key(base)
    relu = {**base, "act": {"name": "relu", "k_first": 0}}
    assert "k_first" not in ann_key_payload(relu)["act"]


# -- the paper's networks: LeNet (§4.1), VGG-Net (§4.2), MobileNet-V1 (§4.3) -------------------------
def _hidden_neurons(snn, shape) -> int:
    """§4.4's count from one short simulation: neurons without the input layer (accounting.hidden_activity)."""
    from snnx.sim.accounting import hidden_activity

    result = Simulator(snn, device=CPU, chunk=1).run([(torch.zeros(1, *shape), torch.zeros(1, dtype=torch.long))], [1])
    return hidden_activity(result, 1, 1.0)["hidden_neurons"]


def _paper_config(name: str, data: str, **extra) -> dict:
    return {"dataset": {"name": data, **extra.pop("dataset", {})},
            "act": {"name": "quant", "k": 0, "clip_first": 4.0, "k_first": 0},
            "model": {"name": name, "width": 1.0, "batch_norm": True, "pool": "conv",
                      "dropout": {"conv": 0.0, "fc": 0.0}, **extra.pop("model", {})},
            "train": {"weight_quant": "ternary"}, **extra}


def test_lenet_allint_is_the_papers_lenet():
    """Zou et al. 2024, §4.1: "6-layer" 32C5-2P2-64C5-2P2-1000FC-10FC; §4.4: 10,728 hidden neurons on MNIST."""
    from snnx.activations.ternary import is_ternary
    from snnx.ann import build

    torch.manual_seed(0)
    model = build(_paper_config("lenet_allint", "mnist")).eval()
    weights = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weights) == 6  # conv, P, conv, P, FC, FC: every "layer" of the six has weights
    geometry = [(m.out_channels, m.kernel_size, m.stride, m.padding) if isinstance(m, nn.Conv2d) else m.out_features
                for m in weights]
    assert geometry == [(32, (5, 5), (1, 1), (0, 0)), (32, (2, 2), (2, 2), (0, 0)), (64, (5, 5), (1, 1), (0, 0)),
                        (64, (2, 2), (2, 2), (0, 0)), 1000, 10]
    assert [is_ternary(m) for m in weights] == [False, True, True, True, True, False]  # input, output layers: fp
    assert sum(isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) for m in model.modules()) == 5  # one per neuron layer
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    snn, label = convert_allint(model, convert={"integer": True})
    assert "ternary" in label
    assert sum(isinstance(m, SignedDualThresholdNeuron) for m in snn.modules()) == 4
    paper = 12 * 12 * 32 + 8 * 8 * 64 + 4 * 4 * 64 + 1000
    assert paper == 10728 and _hidden_neurons(snn, (1, 28, 28)) == paper
    with pytest.raises(ConfigError) as err:
        build(_paper_config("lenet_allint", "digits"))  # 8×8: the unpadded convs leave nothing
    assert err.value.key == "model"


def test_lenet_allint_width_batch_norm_and_pools():
    from snnx.ann import build

    half = build(_paper_config("lenet_allint", "mnist", model={"width": 0.5}))
    assert half.features[0].conv.out_channels == 16 and half.classifier[1][0].out_features == 500
    plain = build(_paper_config("lenet_allint", "mnist", model={"batch_norm": False},
                                train={"weight_quant": "none"}))
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) for m in plain.modules())
    assert isinstance(plain.classifier[1], nn.Linear) and plain.classifier[1].bias is not None
    fp = build(_paper_config("lenet_allint", "mnist", train={"weight_quant": "none"}))
    assert isinstance(fp.classifier[1][1], nn.BatchNorm1d)  # the 1000FC has its BN without ternary weights too
    avg = build(_paper_config("lenet_allint", "mnist", model={"pool": "avg"}))
    assert [type(m) for m in avg.features] == [type(avg.features[0]), nn.AvgPool2d, type(avg.features[0]), nn.AvgPool2d]
    assert avg.eval()(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


@pytest.fixture(scope="module")
def mnist5k():
    from snnx.data import build_dataset

    return build_dataset("mnist5k", "train").tensors, build_dataset("mnist5k", "test").tensors


def test_lenet_allint_integer_mode_equals_float_mode(mnist5k):
    """Ternary hidden weights (the 2P2 convs included) scale exactly: every hidden neuron of the int64 SNN fires as
    in float mode, and the readout is int_scale × float mode's up to its full-precision weights' rounding."""
    from snnx.ann import build

    (x, y), (xt, yt) = mnist5k
    torch.manual_seed(0)
    model = build(_paper_config("lenet_allint", "mnist5k", model={"width": 0.125}))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    model.train()
    for i in range(0, 2048, 64):
        loss = F.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    xt, yt, T = xt[:200], yt[:200], 24
    res_f, logits_f = simulate(convert_allint(model, convert={})[0], xt, yt, T, chunk=4, dtype=torch.float64)
    res_i, logits_i = simulate(convert_allint(model, convert={"integer": True})[0], xt, yt, T, chunk=4)
    assert res_f.spikes == res_i.spikes and res_f.negative_spikes == res_i.negative_spikes
    assert torch.equal(logits_f.argmax(-1), logits_i.argmax(-1)) and res_f.correct == res_i.correct
    assert float((logits_i.double() / 10000 - logits_f).abs().max()) < 0.05
    with torch.no_grad():
        ann = model(xt).double()
    assert res_f.correct[T] > 0.5 * len(yt)  # it learnt something: the comparison is not between two blanks
    torch.testing.assert_close(logits_f[-1], ann, rtol=1e-6, atol=1e-6)  # k = 0: settled on 2^0 × the ANN


def test_vgg11_allint_last_conv_is_unpadded_where_the_paper_counts_it():
    """§4.4: 280,832 hidden neurons for the VGG-Net on 24×24 CIFAR: the last 1024C3 takes 3×3 → 1×1."""
    from snnx.artifacts import ann_key_payload
    from snnx.ann import build
    from snnx.models.vgg_allint import last_conv_padding

    config = _paper_config("vgg11_allint", "cifar10", dataset={"crop": 24}, seed=0)
    model = build(config).eval()
    assert model.features[8].conv.padding == (0, 0) and model.classifier[1][0].in_features == 1024
    snn, _ = convert_allint(model, convert={})
    paper = (24 * 24 * 256 + 12 * 12 * 256 + 12 * 12 * 384 + 6 * 6 * 384 + 6 * 6 * 384 + 6 * 6 * 256 + 3 * 3 * 256
             + 1 * 1 * 1024 + 1024)
    assert paper == 280832 and _hidden_neurons(snn, (3, 24, 24)) == paper
    # 8×8 digits (the embedded preset): a 1×1 map, the padded conv of before, and the cache key of before
    digits = {**config, "dataset": {"name": "digits"}, "model": {**config["model"], "pool": "avg", "width": 0.25}}
    small = build(digits)
    assert small.features[8].conv.padding == (1, 1) and small(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert "vgg11_allint_last_conv_padding" not in ann_key_payload({**digits, "seed": 0})
    # the key changes exactly where the net does
    for dataset in ({"name": "digits"}, {"name": "mnist"}, {"name": "cifar10", "crop": None},
                    {"name": "cifar10", "crop": 24}, {"name": "cifar100", "crop": 16}):
        cfg = {**config, "dataset": dataset}
        side = dataset_info_side(dataset)
        built = build(cfg)
        unpadded = built.features[8].conv.padding == (0, 0)
        assert unpadded == (last_conv_padding(side) == 0) == (side // 8 >= 3)
        assert ("vgg11_allint_last_conv_padding" in ann_key_payload(cfg)) == unpadded, dataset


def dataset_info_side(dataset: dict) -> int:
    from snnx.data import dataset_info

    return dataset_info(dataset["name"], dataset.get("crop")).image_size


def _random_bn_mobilenet(*, image_size: int, width: float) -> nn.Module:
    """A tiny ternary ``act=quant`` MobileNet with random BN affines (γ of either sign, β > 0 on average) and
    running statistics measured on 64 random images with them (so that 27 layers deep the levels stay small)."""
    from snnx.models import create_model

    torch.manual_seed(0)
    model = create_model("mobilenet", in_channels=3, image_size=image_size, num_classes=10,
                         act_factory=make_act_factory("quant", k=0), width=width)
    apply_ternary(model)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for bn in bns:
            c = bn.num_features
            bn.momentum = None  # cumulative average: the running stats are those of this one batch
            sign = torch.where(torch.rand(c, generator=gen) < 0.15, -1.0, 1.0)
            bn.weight.copy_((torch.rand(c, generator=gen) + 0.5) * sign)
            bn.bias.copy_(torch.randn(c, generator=gen) * 0.3 + 0.5)
        model.train()
        model(torch.randn(64, 3, image_size, image_size, generator=gen))
    return model.eval().double()


def test_mobilenet_converts_depthwise_and_global_pool():
    """§4.3's MobileNet-V1 through convert=allint: depthwise convs are ordinary dual-threshold sites, the global
    average pooling stays (float: the readout reads the mean of the spikes) or becomes a global sum (integer:
    its area multiplies the readout's once-added bias). Float mode settles exactly on the ANN (k = 0)."""
    from snnx.activations.ternary import is_ternary
    from snnx.convert.allint import GlobalSumPool2d

    model = _random_bn_mobilenet(image_size=16, width=1 / 16)
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 13 and all(is_ternary(m) for m in depthwise)
    images = torch.randn(12, 3, 16, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        ann = model(images)
    float_snn, _ = convert_allint(model, convert={})
    int_snn, label = convert_allint(model, convert={"integer": True})
    assert "ternary" in label
    assert sum(isinstance(m, SignedDualThresholdNeuron) for m in float_snn.modules()) == 26  # 27 convs − the stem
    assert any(isinstance(m, nn.AdaptiveAvgPool2d) for m in float_snn.modules())
    assert sum(isinstance(m, GlobalSumPool2d) for m in int_snn.modules()) == 1
    labels, T = torch.zeros(12, dtype=torch.long), 160
    res_f, logits_f = simulate(float_snn, images, labels, T, chunk=16, dtype=torch.float64)
    res_i, logits_i = simulate(int_snn, images, labels, T, chunk=16)
    torch.testing.assert_close(logits_f[-1], ann, rtol=1e-9, atol=1e-9)
    assert final_time_step(res_f.correct) is not None
    assert logits_i.dtype == torch.int64
    # the final map is 1×1 at 16 px (CIFAR stem, four stride-2 blocks): area 1; integer = float × int_scale,
    # up to the rounding of θ (near-ties may flip a spike) and of the full-precision readout weights
    assert torch.equal(logits_i[-1].argmax(-1), logits_f[-1].argmax(-1))
    assert float((logits_i[-1].double() / 10000 - logits_f[-1]).abs().max()) < 0.05 * float(ann.abs().max())


def test_mobilenet_imagenet_stem_global_sum_scales_the_bias():
    """224 px (the ImageNet stem, stride 2): a 7×7 final map. Integer mode's global sum is 49 × the mean, and
    the readout's once-added bias is multiplied by that area: integer logits = 49·int_scale × float logits."""
    model = _random_bn_mobilenet(image_size=224, width=1 / 32)
    assert model.stem.conv.stride == (2, 2)
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    labels, T = torch.zeros(2, dtype=torch.long), 4
    _, logits_f = simulate(convert_allint(model, convert={})[0], images, labels, T, chunk=4, dtype=torch.float64)
    int_snn, _ = convert_allint(model, convert={"integer": True})
    _, logits_i = simulate(int_snn, images, labels, T, chunk=4)
    pool = next(m for m in int_snn.modules() if type(m).__name__ == "GlobalSumPool2d")
    assert pool.area == 49
    scale = 49 * 10000
    assert float((logits_i.double() / scale - logits_f).abs().max()) < 0.05 * max(float(logits_f.abs().max()), 1.0)


def test_int_conv2d_depthwise_is_exact():
    gen = torch.Generator().manual_seed(4)
    x = torch.randint(-1, 2, (2, 5, 9, 7), generator=gen)
    w = torch.randint(-20000, 20001, (5, 1, 3, 3), generator=gen)
    for stride, padding in ((1, 1), (2, 1), (2, 0)):
        ref = F.conv2d(x.double(), w.double(), None, stride, padding, 1, 5)
        out = int_conv2d(x, w, stride, padding, 1, 5)
        assert out.dtype == torch.int64 and torch.equal(out, ref.long())


def test_cli_lenet_allint_tiny_run(tmp_path):
    import csv

    from conftest import snnx

    done = snnx("run", "dataset=mnist5k", "dataset.limit_train=512", "dataset.limit_test=100", "model=lenet_allint",
                "model.width=0.25", "act=quant", "act.k=0", "convert=allint", "train=smoke", "sim.T=[1,2,4]",
                f"paths.root={tmp_path}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = tmp_path.glob("runs/*/*/results.csv")
    rows = list(csv.DictReader(path.open()))
    assert [r["T"] for r in rows] == ["1", "2", "4"] and {r["model"] for r in rows} == {"lenet_allint"}
    # width 0.25: 12·12·8 + 8·8·16 + 4·4·16 + 250 hidden neurons
    assert {int(float(r["hidden_neurons"])) for r in rows} == {12 * 12 * 8 + 8 * 8 * 16 + 4 * 4 * 16 + 250}
