"""Converting a user's own torch.fx-traceable ANN: functional ReLUs, reused activation modules, the
linear-op check, MaxPool, BatchNorm after residual adds, and torchvision's resnet18 / vgg16_bn."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnx.calibration import calibrate
from snnx.convert import convert
from snnx.convert.graph import activation_sites, prepare, trace
from snnx.errors import ConfigError
from snnx.neurons import IFNeuron, Neuron
from snnx.sim import Simulator

CPU = torch.device("cpu")


# --------------------------------------------------------------------------- helpers
def stats_of(model, images):
    return calibrate(model, [images], percentile=99.9, num_batches=1, device=CPU)


def maxnorm(model, stats, **convert_options):
    snn, _ = convert(model, method="maxnorm", stats=stats, convert={"name": "maxnorm", **convert_options})
    return snn


def simulate(snn, images, labels, time_steps, **options):
    return Simulator(snn, device=CPU, dtype=images.dtype, **options).run([(images, labels)], time_steps)


def neurons_of(snn):
    return [m for m in snn.modules() if isinstance(m, Neuron)]


def relative_error(estimate, reference):
    return float((estimate - reference).norm() / reference.norm())


# --------------------------------------------------------------------------- functional ReLU spellings
def _relu_then_keep_input(x):
    x.relu_()  # the result is dropped: later code reads the tensor it changed in place
    return x


SPELLINGS = {
    "torch.relu": torch.relu,
    "torch.relu_": torch.relu_,
    "F.relu": F.relu,
    "F.relu(inplace=True)": lambda x: F.relu(x, inplace=True),
    "F.relu_": F.relu_,
    "Tensor.relu": lambda x: x.relu(),
    "Tensor.relu_": lambda x: x.relu_(),
    "x.relu_() then x": _relu_then_keep_input,
    "x.clamp(min=0)": lambda x: x.clamp(min=0),
    "x.clamp(0)": lambda x: x.clamp(0),
    "x.clamp(0, None)": lambda x: x.clamp(0, None),
    "torch.clamp(x, min=0)": lambda x: torch.clamp(x, min=0),
    "torch.clamp(x, 0.0)": lambda x: torch.clamp(x, 0.0),
    "x.clamp_min(0)": lambda x: x.clamp_min(0),
    "torch.clamp_min(x, 0)": lambda x: torch.clamp_min(x, 0),
    "torch.clip(x, 0)": lambda x: torch.clip(x, 0),
    "x.clip(min=0)": lambda x: x.clip(min=0),
    "x.clamp_(min=0)": lambda x: x.clamp_(min=0),
    "x.clip_(0)": lambda x: x.clip_(0),
    "x.clamp_min_(0)": lambda x: x.clamp_min_(0),
}


class FunctionalNet(nn.Module):
    """conv → relu → avg pool → conv → relu → flatten → fc → relu → fc, the relu spelled ``relu``."""

    def __init__(self, relu=None):
        super().__init__()
        self.relu = relu
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.fc1 = nn.Linear(6 * 4 * 4, 16)
        self.fc2 = nn.Linear(16, 3)

    def act(self, x, i):
        return self.relu(x)

    def forward(self, x):
        x = self.act(self.conv1(x), 1)
        x = self.act(self.conv2(F.avg_pool2d(x, 2)), 2)
        return self.fc2(self.act(self.fc1(torch.flatten(x, 1)), 3))


class ModuleNet(FunctionalNet):
    """The same network with one nn.ReLU module per site (the form the converter always took)."""

    def __init__(self):
        super().__init__()
        self.act1, self.act2, self.act3 = nn.ReLU(), nn.ReLU(), nn.ReLU()

    def act(self, x, i):
        return getattr(self, f"act{i}")(x)


def twins(relu, seed=0):
    torch.manual_seed(seed)
    functional = FunctionalNet(relu).double().eval()
    module = ModuleNet().double().eval()
    module.load_state_dict(functional.state_dict())
    return functional, module


def images_and_labels(model, n=12, seed=1):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 1, 8, 8, dtype=torch.float64, generator=generator)
    with torch.no_grad():
        labels = model(images).argmax(1)
    return images, labels


@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_functional_relu_converts_like_relu_modules(spelling):
    functional, module = twins(SPELLINGS[spelling])
    images, labels = images_and_labels(module)
    with torch.no_grad():
        reference = module(images)
        # The normalised trace computes what the model computes, exactly.
        assert torch.equal(trace(functional)(images), functional(images))
        assert torch.equal(functional(images), reference)
    assert len(activation_sites(functional)) == len(activation_sites(module)) == 3
    assert all(isinstance(m, nn.ReLU) for _, m in activation_sites(functional))

    stats_f, stats_m = stats_of(functional, images), stats_of(module, images)
    assert [s["max"] for s in stats_f.values()] == [s["max"] for s in stats_m.values()]
    snn_f, snn_m = maxnorm(functional, stats_f), maxnorm(module, stats_m)
    # Every site became a neuron: no ReLU (module or function) is left in the SNN.
    assert len(neurons_of(snn_f)) == 3 and not any(isinstance(m, nn.ReLU) for m in snn_f.modules())
    assert all(n.op not in ("call_function", "call_method") or "relu" not in str(n.target)
               and "clamp" not in str(n.target) and "clip" not in str(n.target) for n in snn_f.graph.nodes)
    thresholds = sorted(float(n.threshold) for n in neurons_of(snn_f))
    assert thresholds == sorted(s["max"] for s in stats_m.values())

    result_f = simulate(snn_f, images, labels, [1, 4, 8])
    result_m = simulate(snn_m, images, labels, [1, 4, 8])
    assert result_f.correct == result_m.correct and result_f.spikes == result_m.spikes
    assert result_f.spikes[8] > 0


@pytest.mark.parametrize("bounded", [lambda x: x.clamp(0, 6), lambda x: x.clamp(min=0.5), lambda x: torch.clip(x, -1)])
def test_a_clamp_with_other_bounds_is_not_a_relu(bounded):
    functional, _ = twins(bounded)
    assert activation_sites(functional) == []
    with pytest.raises(ConfigError) as info:
        prepare(functional)
    assert "node 'cla" in str(info.value) or "node 'clip" in str(info.value)


def test_trace_does_not_change_the_model():
    functional, _ = twins(F.relu)
    before = [name for name, _ in functional.named_modules()]
    gm = trace(functional)
    assert [name for name, _ in functional.named_modules()] == before
    assert [name for name, _ in activation_sites(functional)] == [name for name, m in gm.named_modules()
                                                                  if isinstance(m, nn.ReLU)]


# --------------------------------------------------------------------------- a module called at two sites
class ReusedReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 3)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.fc(torch.flatten(self.relu(self.conv2(self.relu(self.conv1(x)))), 1))


def test_a_reused_activation_module_gets_one_neuron_and_one_statistic_per_site():
    torch.manual_seed(0)
    model = ReusedReLU().double().eval()
    with torch.no_grad():
        model.conv2.weight.mul_(3.0)  # the second site sees larger inputs than the first
    images, labels = images_and_labels(model)
    sites = activation_sites(model)
    assert [name for name, _ in sites] == ["relu", "relu_1"] and sites[0][1] is not sites[1][1]
    assert sites[0][1] is model.relu  # the first call keeps the model's module and name

    stats = stats_of(model, images)
    assert list(stats) == ["relu", "relu_1"]
    # Independent path: each site's maximum from the model's own layers.
    with torch.no_grad():
        first = torch.relu(model.conv1(images))
        second = torch.relu(model.conv2(first))
    # (calibration keeps its statistics in float32)
    assert stats["relu"]["max"] == float(first.float().max()) and stats["relu_1"]["max"] == float(second.float().max())
    assert stats["relu"]["max"] != stats["relu_1"]["max"]

    snn = maxnorm(model, stats)
    neurons = dict((name, m) for name, m in snn.named_modules() if isinstance(m, Neuron))
    assert list(neurons) == ["relu", "relu_1"] and neurons["relu"] is not neurons["relu_1"]
    assert float(neurons["relu"].threshold) == stats["relu"]["max"]
    assert float(neurons["relu_1"].threshold) == stats["relu_1"]["max"]
    assert isinstance(model.relu, nn.ReLU)  # the caller's ANN is untouched
    assert simulate(snn, images, labels, [8]).spikes[8] > 0


def test_torchvision_basic_block_calls_its_relu_twice():
    from torchvision.models.resnet import BasicBlock

    block = BasicBlock(4, 4).eval()
    assert [name for name, _ in activation_sites(block)] == ["relu", "relu_1"]
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(prepare(block)(x), block(x))


# --------------------------------------------------------------------------- the linear-op check
class Head(nn.Module):
    """conv → relu → ``op`` → flatten → fc; ``op`` takes the feature map."""

    def __init__(self, op, module: nn.Module | None = None):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.extra = module
        self.op = op
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        x = self.op(self, torch.relu(self.conv(x)))
        return self.fc(x.reshape(x.shape[0], -1))


UNSUPPORTED = {
    # name: (op, module, what the message names)
    "sigmoid": (lambda self, x: torch.sigmoid(x), None, "node 'sigmoid' (call_function torch.sigmoid)"),
    "softmax": (lambda self, x: F.softmax(x, dim=1), None, "node 'softmax' (call_function F.softmax)"),
    "product": (lambda self, x: x * x, None, "node 'mul' (call_function operator.mul) cannot be converted"),
    "max": (lambda self, x: torch.maximum(x, 1 - x), None, "node 'maximum' (call_function torch.maximum)"),
    "amax": (lambda self, x: x.amax(1, keepdim=True).expand_as(x), None, "node 'amax' (call_method .amax())"),
    "module": (lambda self, x: self.extra(x), nn.Sigmoid(), "node 'extra' (call_module extra: Sigmoid)"),
    "relu6": (lambda self, x: self.extra(x), nn.ReLU6(), "node 'extra' (call_module extra: ReLU6)"),
    "divide by input": (lambda self, x: x / (x.sum((1, 2, 3), keepdim=True) + 1), None,
                        "node 'truediv' (call_function operator.truediv) cannot be converted: its divisor"),
    "mean over all": (lambda self, x: x - x.mean(), None, "node 'mean' (call_method .mean()) cannot be converted"),
    "mean over batch": (lambda self, x: x - x.mean(0), None, "over dim 0, the batch"),
    "flatten batch": (lambda self, x: torch.flatten(x).view_as(x), None, "node 'flatten' (call_function "
                      "torch.flatten) cannot be converted: it flattens along dim 0"),
    "dropout in training": (lambda self, x: F.dropout(x, 0.5), None, "training=True"),
    "batch statistics": (lambda self, x: self.extra(x), nn.BatchNorm2d(4, track_running_stats=False),
                         "node 'extra' (call_module extra: BatchNorm2d) cannot be converted: it has no running"),
}


@pytest.mark.parametrize("name", list(UNSUPPORTED))
def test_an_unsupported_op_is_an_error_naming_the_node(name):
    op, module, named = UNSUPPORTED[name]
    model = Head(op, module).eval()
    with pytest.raises(ConfigError) as info:
        convert(model, method="maxnorm", stats={"relu": {"max": 1.0}}, convert={"name": "maxnorm"})
    message = str(info.value)
    assert named in message, message
    assert info.value.key == "model" and "leave it out of the model passed to convert" in info.value.fix


class LinearOps(nn.Module):
    """Every kind of linear plumbing the check lets through, between two neuron layers."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.scale = nn.Parameter(torch.tensor(0.5))
        self.fc = nn.Linear(4 + 4 * 4 * 4, 3)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        a = torch.relu(self.conv1(x))
        b = torch.cat([a * 2.0, a / 4 - 0.1], dim=1)
        b = self.drop(torch.relu(self.bn(self.conv2(b)) * self.scale))
        pooled = F.adaptive_avg_pool2d(b, 4).permute(0, 2, 3, 1).contiguous()
        flat = pooled.view(pooled.size(0), -1)
        feats = torch.cat([b.mean((2, 3)), flat], 1)
        return self.fc(F.dropout(feats, 0.5, training=self.training))


def test_linear_ops_pass_the_check_and_the_snn_tends_to_the_ann():
    torch.manual_seed(0)
    model = LinearOps().double().eval()
    images, labels = images_and_labels(model, n=16)
    with torch.no_grad():
        reference = model(images)
        torch.testing.assert_close(prepare(model)(images), reference, rtol=1e-12, atol=1e-12)
    stats = stats_of(model, images)
    snn = maxnorm(model, stats)
    assert len(neurons_of(snn)) == 2
    result = Simulator(snn, device=CPU, dtype=torch.float64).run([(images, labels)], [16, 256], keep_outputs=True)
    # Independent path: maxnorm's SNN output is the ANN's output in the limit of many steps.
    error_16, error_256 = (relative_error(result.outputs[T], reference) for T in (16, 256))
    assert error_256 < error_16 and error_256 < 0.05, (error_16, error_256)


# --------------------------------------------------------------------------- MaxPool
class Pooled(nn.Module):
    def __init__(self, pool):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = pool
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv(x)))
        return self.fc(torch.flatten(x, 1))


class FunctionalPool(Pooled):
    def __init__(self):
        super().__init__(None)
        self.pool = lambda x: F.max_pool2d(x, 2)


POOLS = {
    "nn.MaxPool2d": (lambda: Pooled(nn.MaxPool2d(2)), "MaxPool layer 'pool' (MaxPool2d)", lambda: nn.AvgPool2d(2)),
    "F.max_pool2d": (FunctionalPool, "max-pooling node 'max_pool2d' (call_function F.max_pool2d)",
                     lambda: nn.AvgPool2d(2)),
    "nn.AdaptiveMaxPool2d": (lambda: Pooled(nn.AdaptiveMaxPool2d(4)), "MaxPool layer 'pool' (AdaptiveMaxPool2d)",
                             lambda: nn.AdaptiveAvgPool2d(4)),
    "F.adaptive_max_pool2d": (lambda: Pooled(lambda x: F.adaptive_max_pool2d(x, 4)),
                              "max-pooling node 'adaptive_max_pool2d' (call_function F.adaptive_max_pool2d)",
                              lambda: nn.AdaptiveAvgPool2d(4)),
}


@pytest.mark.parametrize("kind", list(POOLS))
def test_maxpool_is_an_error_naming_it_and_avg_replaces_it(kind):
    build, named, average = POOLS[kind]
    torch.manual_seed(0)
    model = build().double().eval()
    images, labels = images_and_labels(model)
    stats = stats_of(model, images)
    with pytest.raises(ConfigError) as info:
        maxnorm(model, stats)
    assert named in str(info.value) and info.value.key == "convert.maxpool"
    assert "nn.AvgPool2d / F.avg_pool2d" in info.value.fix and "convert.maxpool=avg" in info.value.fix
    assert 'maxpool="avg" in snnx.api.convert' in info.value.fix

    # Independent path: the same network built with average pooling.
    twin = Pooled(average()).double().eval()
    twin.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(prepare(model, maxpool="avg")(images), twin(images))
    snn = maxnorm(model, stats, maxpool="avg")
    twin_snn = maxnorm(twin, stats_of(twin, images))
    assert simulate(snn, images, labels, [4, 8]).spikes == simulate(twin_snn, images, labels, [4, 8]).spikes


def test_a_dilated_maxpool_has_no_average_counterpart():
    model = Pooled(nn.MaxPool2d(2, dilation=2)).eval()
    with pytest.raises(ConfigError, match="'pool' .*dilated"):
        prepare(model, maxpool="avg")


# --------------------------------------------------------------------------- BatchNorm after residual adds
class SumThenBN(nn.Module):
    def __init__(self, terms: int, linear: bool = False):
        super().__init__()
        make = (lambda: nn.Linear(6, 5)) if linear else (lambda: nn.Conv2d(3, 5, 3, padding=1, bias=False))
        self.branches = nn.ModuleList(make() for _ in range(terms))
        self.bn = nn.BatchNorm1d(5) if linear else nn.BatchNorm2d(5)
        self.linear = linear
        self.fc = nn.Linear(5 if linear else 5 * 4 * 4, 2)

    def forward(self, x):
        total = self.branches[0](x)
        for branch in self.branches[1:]:
            total = total + branch(x)
        y = torch.relu(self.bn(total))
        return self.fc(y if self.linear else torch.flatten(y, 1))


def _randomise_bn(bn):
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(-1.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)


@pytest.mark.parametrize("terms, linear", [(2, False), (3, False), (2, True)])
def test_batchnorm_after_a_sum_of_layers_is_folded(terms, linear):
    torch.manual_seed(0)
    model = SumThenBN(terms, linear).double().eval()
    _randomise_bn(model.bn)
    x = torch.randn(4, 6, dtype=torch.float64) if linear else torch.randn(4, 3, 4, 4, dtype=torch.float64)
    gm = prepare(model)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in gm.modules())
    with torch.no_grad():
        torch.testing.assert_close(gm(x), model(x), rtol=1e-10, atol=1e-12)
    # The caller's layers keep their weights.
    assert all(not torch.equal(b.weight, gm.get_submodule(f"branches.{i}").weight)
               for i, b in enumerate(model.branches))


class ShortcutThenBN(nn.Module):
    """BN(conv(x) + x): the identity term has no layer to scale, so the BN stays."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3 * 4 * 4, 2)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.bn(self.conv(x) + x)), 1))


def test_a_batchnorm_that_cannot_be_folded_stays_as_an_affine_map():
    torch.manual_seed(0)
    model = ShortcutThenBN().double().eval()
    _randomise_bn(model.bn)
    x = torch.randn(4, 3, 4, 4, dtype=torch.float64)
    gm = prepare(model)
    assert any(isinstance(m, nn.BatchNorm2d) for m in gm.modules())
    with torch.no_grad():
        assert torch.equal(gm(x), model(x))


# --------------------------------------------------------------------------- torchvision models
def _torchvision(name):
    import torchvision

    torch.manual_seed(0)
    return getattr(torchvision.models, name)(weights=None, num_classes=10).eval()


def _with_avg_pools(model):
    """Independent path: the model with every nn.MaxPool2d swapped by hand for nn.AvgPool2d."""
    model = copy.deepcopy(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.MaxPool2d):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child,
                    nn.AvgPool2d(module.kernel_size, module.stride, module.padding, ceil_mode=module.ceil_mode))
    return model


def _maxpool_error(model) -> str:
    with pytest.raises(ConfigError) as info:
        prepare(model)
    assert info.value.key == "convert.maxpool" and "convert.maxpool=avg" in info.value.fix
    return str(info.value)


def _convert_torchvision(name, maxpool_layer, sites, batch, time_steps):
    model = _torchvision(name)
    images = torch.randn(batch + 4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    calibration, test = images[:4], images[4:]
    assert f"MaxPool layer '{maxpool_layer}' (MaxPool2d)" in _maxpool_error(model)

    reference = _with_avg_pools(model)
    with torch.no_grad():
        logits = reference(test)
        torch.testing.assert_close(prepare(model, maxpool="avg")(test), logits, rtol=1e-4, atol=1e-5)
    stats = stats_of(model, calibration)
    assert len(stats) == sites
    snn = maxnorm(model, stats, maxpool="avg")
    assert len(neurons_of(snn)) == sites and all(isinstance(n, IFNeuron) for n in neurons_of(snn))
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.MaxPool2d, nn.ReLU)) for m in snn.modules())
    result = Simulator(snn, device=CPU).run([(test, logits.argmax(1))], time_steps, keep_outputs=True)
    assert result.total == batch
    assert all(result.spikes[a] < result.spikes[b] for a, b in zip(time_steps, time_steps[1:]))
    return logits, result


def test_torchvision_resnet18_converts():
    logits, result = _convert_torchvision("resnet18", "maxpool", sites=17, batch=2, time_steps=[2, 8])
    assert all(torch.isfinite(result.outputs[T]).all() for T in (2, 8))


@pytest.mark.slow
def test_torchvision_vgg16_bn_converts():
    logits, result = _convert_torchvision("vgg16_bn", "features.6", sites=15, batch=2, time_steps=[4, 8])
    assert all(torch.isfinite(result.outputs[T]).all() for T in (4, 8))


def test_torchvision_vgg16_bn_maxpool_error_names_its_first_maxpool():
    assert "MaxPool layer 'features.6' (MaxPool2d)" in _maxpool_error(_torchvision("vgg16_bn"))


def test_torchvision_vgg_bn_structure_converts():
    """vgg16_bn's structure (conv-BN-ReLU stacks, MaxPool, adaptive pooling, a dropout classifier) at a cost
    the fast suite affords: torchvision's VGG class with a short feature config."""
    import torchvision
    from torchvision.models.vgg import make_layers

    torch.manual_seed(0)
    model = torchvision.models.VGG(make_layers([8, "M", 16, "M"], batch_norm=True), num_classes=10)
    model.avgpool = nn.AdaptiveAvgPool2d((2, 2))
    model.classifier = nn.Sequential(nn.Linear(16 * 2 * 2, 32), nn.ReLU(True), nn.Dropout(), nn.Linear(32, 10))
    model.eval()
    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ConfigError, match="MaxPool layer 'features.3' \\(MaxPool2d\\)"):
        prepare(model)
    with torch.no_grad():
        logits = _with_avg_pools(model)(images)
        torch.testing.assert_close(prepare(model, maxpool="avg")(images), logits, rtol=1e-5, atol=1e-6)
    snn = maxnorm(model, stats_of(model, images), maxpool="avg")
    assert len(neurons_of(snn)) == 3
    assert simulate(snn, images, logits.argmax(1), [16]).spikes[16] > 0
