"""Tests for snnx.models: shapes, fx tracing, activation sites, options, errors."""

from __future__ import annotations

import pytest
import torch
from torch import fx, nn

import snnx.models as models
from snnx.errors import ConfigError
from snnx.models import create_model, list_models, register_model
from snnx.models import registry

WIDTH = 0.125
BATCH = 2

# Smallest image side each model accepts (documented in the model modules).
MIN_IMAGE_SIZE = {
    "lenet": 4,
    "cifarnet": 4,
    "resnet20": 4,
    "resnet18": 8,
    "resnet34": 8,
    "resnet50": 8,
    "resnet101": 8,
    "mobilenet": 16,
    "vgg11": 32,
    "vgg16": 32,
    "vgg11_allint": 8,
}

# name: (in_channels, image_size, num_classes)
DATASETS = {
    "digits": (1, 8, 10),
    "mnist": (1, 28, 10),
    "cifar10": (3, 32, 10),
    "cifar100": (3, 32, 100),
    "imagenet": (3, 224, 1000),
}
# ImageNet-sized forward passes are only run where they are cheap at WIDTH.
IMAGENET_MODELS = ("resnet18", "resnet50", "mobilenet", "vgg11")
# Models with local (non-global) pooling layers at CIFAR size.
POOLING_MODELS = ("lenet", "cifarnet", "vgg11", "vgg16")


def relu(channels: int) -> nn.Module:
    return nn.ReLU()


def build(name: str, dataset: str = "cifar10", **options) -> nn.Module:
    in_channels, image_size, num_classes = DATASETS[dataset]
    options.setdefault("width", WIDTH)
    options.setdefault("act_factory", relu)
    return create_model(name, in_channels=in_channels, image_size=image_size,
                        num_classes=num_classes, **options)


def batch(dataset: str) -> torch.Tensor:
    in_channels, image_size, _ = DATASETS[dataset]
    return torch.randn(BATCH, in_channels, image_size, image_size)


def supported_cases() -> list[tuple[str, str]]:
    cases = []
    for name, min_size in MIN_IMAGE_SIZE.items():
        for dataset, (_, size, _) in DATASETS.items():
            if size < min_size:
                continue
            if dataset == "imagenet" and name not in IMAGENET_MODELS:
                continue
            cases.append((name, dataset))
    return cases


class Probe(nn.Module):
    """Identity activation that knows its creation index and channel count."""

    def __init__(self, index: int, channels: int):
        super().__init__()
        self.index = index
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1] == self.channels, (
            f"site {self.index} was built for {self.channels} channels, got {tuple(x.shape)}")
        return x


class RecordingFactory:
    def __init__(self):
        self.created: list[Probe] = []

    def __call__(self, channels: int) -> nn.Module:
        assert isinstance(channels, int) and channels >= 1
        probe = Probe(len(self.created), channels)
        self.created.append(probe)
        return probe


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_model_under_test():
    assert list_models() == sorted(MIN_IMAGE_SIZE, key=registry._natural_key)
    assert {"create_model", "list_models", "register_model", "build", "check_compatible"} <= set(models.__all__)


@pytest.mark.parametrize("name", list(MIN_IMAGE_SIZE))
def test_min_image_size_boundary(name):
    min_size = MIN_IMAGE_SIZE[name]
    model = create_model(name, in_channels=1, image_size=min_size, num_classes=3,
                         act_factory=relu, width=WIDTH)
    assert model(torch.randn(BATCH, 1, min_size, min_size)).shape == (BATCH, 3)
    if min_size > 1:
        with pytest.raises(ConfigError) as info:
            create_model(name, in_channels=1, image_size=min_size - 1, num_classes=3,
                         act_factory=relu, width=WIDTH)
        assert info.value.key == "model"
        assert f"model={name}" in str(info.value)
        assert str(min_size) in str(info.value)


def test_too_small_image_names_model_and_suggests_fitting_ones():
    with pytest.raises(ConfigError) as info:
        build("vgg16", "digits")
    err = info.value
    assert err.key == "model"
    message = str(err)
    assert "vgg16" in message and "32" in message and "8×8" in message
    fitting = [n for n, s in MIN_IMAGE_SIZE.items() if s <= 8]
    for name in fitting:
        assert name in err.fix
    suggested = err.fix.split("(model=")[1].split(")")[0].split(" / ")
    assert "vgg11" not in suggested and "mobilenet" not in suggested


def test_unknown_model_lists_registered_names():
    with pytest.raises(ConfigError) as info:
        build("resnet19")
    err = info.value
    assert err.key == "model"
    assert "resnet19" in err.problem
    for name in list_models():
        assert name in err.fix
    assert "Did you mean resnet18" in err.fix


@pytest.mark.parametrize("option, value, key", [
    ("pool", "median", "model.pool"),
    ("width", 0, "model.width"),
    ("width", -0.5, "model.width"),
    ("width", float("nan"), "model.width"),
    ("dropout", 1.0, "model.dropout"),
    ("dropout", -0.1, "model.dropout"),
    ("batch_norm", "yes", "model.batch_norm"),
])
def test_bad_options_raise_config_error(option, value, key):
    with pytest.raises(ConfigError) as info:
        build("lenet", **{option: value})
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")


def test_register_model(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    seen = {}

    @register_model("tiny", min_image_size=10)
    def tiny(**kwargs):
        seen.update(kwargs)
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(kwargs["num_classes"]))

    assert "tiny" in list_models()
    build("tiny", "mnist", pool="max", dropout=0.25)
    assert seen["image_size"] == 28 and seen["pool"] == "max" and seen["dropout"] == 0.25
    assert seen["batch_norm"] is True and seen["width"] == WIDTH
    with pytest.raises(ConfigError, match="tiny"):
        build("tiny", "digits")
    with pytest.raises(ValueError, match="already registered"):
        register_model("lenet")(tiny)


def test_factory_must_build_a_new_module_per_site():
    shared = nn.ReLU()
    with pytest.raises(ValueError, match="same module"):
        build("lenet", act_factory=lambda c: shared)
    with pytest.raises(TypeError, match="nn.Module"):
        build("lenet", act_factory=lambda c: torch.relu)


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("name, dataset", supported_cases())
def test_forward_shape(name, dataset):
    model = build(name, dataset).eval()
    with torch.no_grad():
        out = model(batch(dataset))
    assert out.shape == (BATCH, DATASETS[dataset][2])
    assert torch.isfinite(out).all()


# --------------------------------------------------------------------------- fx


TRACE_CASES = [(name, "cifar10") for name in MIN_IMAGE_SIZE] + [
    ("resnet18", "imagenet"), ("mobilenet", "imagenet"), ("lenet", "digits")]


@pytest.mark.parametrize("name, dataset", TRACE_CASES)
def test_fx_trace_matches(name, dataset):
    model = build(name, dataset, pool="max").eval()
    traced = fx.symbolic_trace(model)
    x = batch(dataset)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x))
    # Every activation site is a leaf call in the graph, exactly once.
    relus = {n for n, m in model.named_modules() if isinstance(m, nn.ReLU)}
    called = [n.target for n in traced.graph.nodes
              if n.op == "call_module" and n.target in relus]
    assert sorted(called) == sorted(relus)
    assert all(n.op != "call_function" or "max_pool" not in str(n.target)
               for n in traced.graph.nodes)


# --------------------------------------------------------------------------- activation sites


SITE_CASES = [(name, "cifar10") for name in MIN_IMAGE_SIZE] + [
    ("resnet18", "imagenet"), ("mobilenet", "imagenet"), ("lenet", "digits")]


@pytest.mark.parametrize("name, dataset", SITE_CASES)
def test_factory_called_once_per_site_in_forward_order(name, dataset):
    factory = RecordingFactory()
    model = build(name, dataset, act_factory=factory).eval()
    assert factory.created, "model built no activation sites"
    probes = [m for m in model.modules() if isinstance(m, Probe)]
    # One distinct registered module per factory call.
    assert len({id(p) for p in probes}) == len(probes) == len(factory.created)

    calls: list[int] = []
    for probe in probes:
        probe.register_forward_hook(lambda mod, inp, out: calls.append(mod.index))
    with torch.no_grad():
        model(batch(dataset))
    assert calls == list(range(len(factory.created)))


@pytest.mark.parametrize("name, dataset", SITE_CASES)
def test_last_layer_is_plain_linear(name, dataset):
    model = build(name, dataset, act_factory=RecordingFactory()).eval()
    order: list[tuple[nn.Module, torch.Tensor]] = []
    for module in model.modules():
        if not list(module.children()):
            module.register_forward_hook(lambda mod, inp, out: order.append((mod, out)))
    with torch.no_grad():
        out = model(batch(dataset))
    last, last_out = order[-1]
    assert isinstance(last, nn.Linear)
    assert last.out_features == DATASETS[dataset][2]
    assert last_out is out  # nothing (no activation) runs after the last Linear


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("name", list(MIN_IMAGE_SIZE))
def test_batch_norm_flag(name):
    plain = build(name, batch_norm=False)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in plain.modules())
    assert all(m.bias is not None for m in plain.modules() if isinstance(m, nn.Conv2d))

    with_bn = build(name, batch_norm=True)
    bns = [m for m in with_bn.modules() if isinstance(m, nn.BatchNorm2d)]
    convs = [m for m in with_bn.modules() if isinstance(m, nn.Conv2d)]
    assert len(bns) == len(convs)  # every conv is followed by its own BN
    assert all(m.bias is None for m in convs)
    assert all(torch.all(bn.weight == 1) and torch.all(bn.bias == 0) for bn in bns)


def test_batch_norm_follows_each_conv_in_graph():
    traced = fx.symbolic_trace(build("resnet18"))
    modules = dict(traced.named_modules())
    for node in traced.graph.nodes:
        if node.op == "call_module" and isinstance(modules[node.target], nn.BatchNorm2d):
            (arg,) = node.args
            assert arg.op == "call_module" and isinstance(modules[arg.target], nn.Conv2d)


@pytest.mark.parametrize("name", list(MIN_IMAGE_SIZE))
def test_avg_pool_has_no_max_pool(name):
    model = build(name, pool="avg")
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)) for m in model.modules())
    if name in POOLING_MODELS:
        assert any(isinstance(m, nn.AvgPool2d) for m in model.modules())


@pytest.mark.parametrize("name, dataset", [(n, "cifar10") for n in POOLING_MODELS]
                         + [("resnet18", "imagenet"), ("resnet101", "imagenet")])
def test_max_pool_option(name, dataset):
    model = build(name, dataset, pool="max")
    maxpools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    avgpools = [m for m in model.modules() if isinstance(m, nn.AvgPool2d)]
    assert maxpools and not avgpools
    # Swapping MaxPool2d for AvgPool2d of the same geometry (the converter's job) still runs.
    avg = build(name, dataset, pool="avg")
    assert [(m.kernel_size, m.stride, m.padding) for m in maxpools] == [
        (m.kernel_size, m.stride, m.padding)
        for m in avg.modules() if isinstance(m, nn.AvgPool2d)]


def test_global_pool_is_adaptive_avg_module():
    for name in ("resnet18", "resnet20", "resnet50", "mobilenet"):
        pools = [m for m in build(name).modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
        assert len(pools) == 1 and pools[0].output_size == 1


def test_vgg_classifier_input():
    # CIFAR: 512·1·1 features; ImageNet 224: 512·7·7 (no adaptive pool needed).
    cifar = build("vgg16", width=1.0 / 8)
    assert cifar.classifier[1].in_features == 64
    imagenet = build("vgg11", "imagenet")
    assert imagenet.classifier[1].in_features == 64 * 7 * 7
    big = create_model("vgg11", in_channels=3, image_size=256, num_classes=5,
                       act_factory=relu, width=WIDTH)
    assert isinstance(big.avgpool, nn.AdaptiveAvgPool2d)
    assert big.classifier[1].in_features == 64 * 7 * 7


@pytest.mark.parametrize("name", ["lenet", "cifarnet", "vgg11", "resnet18", "mobilenet"])
def test_dropout_before_each_linear(name):
    model = build(name, dropout=0.3)
    leaves = [m for m in model.modules() if not list(m.children())]
    linears = [i for i, m in enumerate(leaves) if isinstance(m, nn.Linear)]
    assert linears
    for i in linears:
        assert isinstance(leaves[i - 1], nn.Dropout) and leaves[i - 1].p == 0.3
    model.train()
    assert model(batch("cifar10")).shape == (BATCH, 10)


def test_width_scales_channels():
    def first_conv(model):
        return next(m for m in model.modules() if isinstance(m, nn.Conv2d))

    assert first_conv(build("lenet", width=1.0)).out_channels == 32
    assert first_conv(build("lenet", width=0.5)).out_channels == 16
    assert first_conv(build("lenet", width=2)).out_channels == 64
    assert first_conv(build("resnet20", width=1.0)).out_channels == 16
    assert build("resnet50", width=1.0).fc.in_features == 2048
    assert build("mobilenet", width=1.0).fc.in_features == 1024
    tiny = build("resnet18", width=0.001)  # max(1, round(c * width)) == 1 everywhere
    assert all(m.out_channels == 1 for m in tiny.modules() if isinstance(m, nn.Conv2d))
    assert tiny(batch("cifar10")).shape == (BATCH, 10)


def test_stem_depends_on_image_size():
    small = build("resnet18", "cifar10")
    assert small.stem.conv.kernel_size == (3, 3) and small.stem.conv.stride == (1, 1)
    large = build("resnet18", "imagenet")
    assert large.stem[0].conv.kernel_size == (7, 7) and large.stem[0].conv.stride == (2, 2)
    assert build("mobilenet", "cifar10").stem.conv.stride == (1, 1)
    assert build("mobilenet", "imagenet").stem.conv.stride == (2, 2)


def test_conv_init_is_kaiming_normal():
    torch.manual_seed(0)
    conv = build("lenet", width=1.0).features[2].conv  # 32→64, 5×5
    expected_std = (2.0 / (conv.out_channels * 25)) ** 0.5
    assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.05)


@pytest.mark.parametrize("name, dataset", [("resnet18", "cifar10"), ("resnet20", "cifar10"),
                                           ("resnet50", "imagenet")])
def test_residual_activation_comes_after_addition(name, dataset):
    model = build(name, dataset)
    traced = fx.symbolic_trace(model)
    modules = dict(traced.named_modules())
    adds = [n for n in traced.graph.nodes
            if n.op == "call_function" and getattr(n.target, "__name__", "") in ("add", "iadd")]
    blocks = [m for m in model.modules() if type(m).__name__ in ("BasicBlock", "Bottleneck")]
    assert len(adds) == len(blocks) > 0
    for add in adds:
        (user,) = add.users
        assert user.op == "call_module" and isinstance(modules[user.target], nn.ReLU)
