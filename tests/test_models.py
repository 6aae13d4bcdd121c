"""Tests for snnx.models: shapes, fx tracing, activation sites, options, errors."""

from __future__ import annotations

import pytest
import torch
from torch import fx, nn

import snnx.models as models
from snnx.errors import ConfigError
from snnx.models import create_model, list_models, register_model
from snnx.models import registry
from snnx.models.layers import Voting

WIDTH = 0.125
BATCH = 2

# Smallest image side each model accepts (documented in the model modules).
MIN_IMAGE_SIZE = {
    "lenet": 4,
    "lenet_allint": 16,
    "cifarnet": 4,
    "resnet20": 4,
    "resnet18": 8,
    "resnet34": 8,
    "resnet50": 8,
    "resnet101": 8,
    "mobilenet": 16,
    "vgg11": 32,
    "vgg16": 32,
    "vgg16_rathi": 16,
    "vgg11_allint": 8,
    "resnet20_sengupta": 2,
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
POOLING_MODELS = ("lenet", "cifarnet", "vgg11", "vgg16", "vgg16_rathi", "resnet20_sengupta")


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
    assert {"create_model", "list_models", "register_model"} <= set(models.__all__)


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
    assert "Did you mean model=resnet18" in err.fix


@pytest.mark.parametrize("option, value, key", [
    ("pool", "median", "model.pool"),
    ("width", 0, "model.width"),
    ("width", -0.5, "model.width"),
    ("width", float("nan"), "model.width"),
    ("dropout_fc", 1.0, "model.dropout.fc"),
    ("dropout_fc", -0.1, "model.dropout.fc"),
    ("dropout_conv", -0.1, "model.dropout.conv"),
    ("dropout_conv", 0.2, "model.dropout.conv"),  # lenet: every conv is followed by pooling
    ("init", "kaiming", "model.init"),
    ("votes", 10, "model.votes"),  # lenet has no voting layer
    ("batch_norm", "yes", "model.batch_norm"),
])
def test_bad_options_raise_config_error(option, value, key):
    with pytest.raises(ConfigError) as info:
        build("lenet", **{option: value})
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")


def test_register_model():
    seen = {}

    @register_model("tiny", min_image_size=10)
    def tiny(**kwargs):
        seen.update(kwargs)
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(kwargs["num_classes"]))

    try:
        assert "tiny" in list_models()
        build("tiny", "mnist", pool="max", dropout_fc=0.25)
        assert seen["image_size"] == 28 and seen["pool"] == "max" and seen["dropout_fc"] == 0.25
        assert seen["dropout_conv"] == 0.0 and "votes" not in seen
        assert seen["batch_norm"] is True and seen["width"] == WIDTH
        with pytest.raises(ConfigError, match="tiny"):
            build("tiny", "digits")
        with pytest.raises(ValueError, match="already registered"):
            register_model("lenet")(tiny)
    finally:
        registry.MODELS.unregister("tiny")
    assert "tiny" not in list_models()


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
    classes = DATASETS[dataset][2]
    if isinstance(last, Voting):  # CIFARNet: only the per-class average follows the last Linear
        (last, linear_out), voted = order[-2], last_out
        assert voted is out
        torch.testing.assert_close(out, linear_out.view(BATCH, classes, -1).mean(-1))
        last_out = linear_out
        assert last.out_features == classes * registry.MODELS.get(name).trait("votes")
    else:
        assert last.out_features == classes
        assert last_out is out  # nothing (no activation) runs after the last Linear
    assert isinstance(last, nn.Linear)


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("name", list_models())
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
                                           ("resnet50", "imagenet"), ("resnet20_sengupta", "cifar10")])
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


# --------------------------------------------------------------------------- Deng & Gu 2021 options (App. A.1)


def test_no_batch_norm_in_ternary_build_either():
    from snnx.ann import build as build_from_config

    config = {"dataset": {"name": "digits"}, "act": {"name": "quant", "k": 0, "clip_first": 4.0},
              "model": {"name": "lenet", "width": 0.125, "batch_norm": False, "pool": "avg",
                        "dropout": {"conv": 0.0, "fc": 0.0}, "init": "default", "votes": None},
              "train": {"weight_quant": "ternary"}}
    model = build_from_config(config)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert all(m.bias is not None for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def _weight_kind(module: nn.Module) -> str | None:
    return "conv" if isinstance(module, nn.Conv2d) else "fc" if isinstance(module, nn.Linear) else None


def _dropout_junctions(model: nn.Module) -> list[tuple[str, str, float]]:
    """For each Dropout in the traced graph: (kind of the layer before its activation, kind of the layer after, p).

    Looks back through the activation (and a BN) to the weight layer that produced the value, and forward to
    every user; asserts nothing but an activation precedes the dropout and that all its users are weight layers.
    """
    traced = fx.symbolic_trace(model)
    modules = dict(traced.named_modules())
    found = []
    for node in traced.graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], nn.Dropout):
            continue
        (act,) = node.args
        assert act.op == "call_module" and isinstance(modules[act.target], nn.ReLU), node.target
        before = act.args[0]
        while isinstance(modules.get(before.target), (nn.BatchNorm2d, nn.Identity)):  # BN, or its no-BN stand-in
            before = before.args[0]
        after = {_weight_kind(modules[user.target]) if user.op == "call_module" else None for user in node.users}
        assert len(after) == 1 and None not in after, f"{node.target} feeds {after}"
        found.append((_weight_kind(modules[before.target]), after.pop(), modules[node.target].p))
    return found


@pytest.mark.parametrize("name", list_models())
def test_dropout_sits_between_layers_of_its_kind(name):
    sites = registry.MODELS.get(name).trait("dropout")
    options = {"dropout_conv": 0.2 if "conv" in sites else 0.0, "dropout_fc": 0.5 if "fc" in sites else 0.0}
    junctions = _dropout_junctions(build(name, batch_norm=False, **options).eval())
    # Every declared site exists, every dropout sits conv→conv with 0.2 or fc→fc with 0.5.
    assert {kind for kind, _, _ in junctions} == set(sites)
    assert all((before, after, p) in {("conv", "conv", 0.2), ("fc", "fc", 0.5)} for before, after, p in junctions)


@pytest.mark.parametrize("name, conv_drops, fc_drops", [
    # VGG-16: 13 convs in 5 blocks, each block ends in a pooling: 1+1+2+2+2 convs feed a conv; FC-FC-FC: 2.
    ("vgg16", 8, 2),
    # Rathi's VGG-16: the fifth block has no pooling, but its last conv feeds the first Linear: 8 again.
    ("vgg16_rathi", 8, 2),
    # CIFARNet 128C3-256C3-AP2-512C3-AP2-1024C3-512C3-1024FC-512FC-Voting: 128→256 and 1024→512; 3 Linears.
    ("cifarnet", 2, 2),
    # Sengupta ResNet-20: pre-processing conv 1 and 2 (conv 3 is pooled), one per BasicBlock (8).
    ("resnet20_sengupta", 10, 0),
])
def test_dropout_counts(name, conv_drops, fc_drops):
    model = build(name, dropout_conv=0.2, dropout_fc=0.5 if fc_drops else 0.0)
    ps = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    assert ps.count(0.2) == conv_drops and ps.count(0.5) == fc_drops and len(ps) == conv_drops + fc_drops
    off = build(name)
    assert not any(isinstance(m, nn.Dropout) for m in off.modules())
    # Same parameter names with and without dropout: checkpoints do not depend on it.
    assert list(off.state_dict()) == list(model.state_dict())


@pytest.mark.parametrize("name", ["vgg16", "vgg16_rathi", "cifarnet", "resnet20_sengupta"])
def test_dropout_is_a_no_op_in_eval_and_conversion(name):
    from snnx.convert import prepare

    torch.manual_seed(0)
    model = build(name, batch_norm=False, dropout_conv=0.2, dropout_fc=0.5 if name != "resnet20_sengupta" else 0.0)
    x = batch("cifar10")
    model.train()
    assert not torch.equal(model(x), model(x))  # active in training
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(prepare(model)(x), model(x), rtol=0, atol=0)


def test_dropout_site_errors_name_the_key_and_models():
    with pytest.raises(ConfigError) as info:
        build("resnet18", dropout_fc=0.5)
    assert info.value.key == "model.dropout.fc" and "resnet18" in str(info.value)
    assert "cifarnet" in info.value.fix and "vgg16" in info.value.fix
    with pytest.raises(ConfigError) as info:
        build("lenet", "digits", dropout_conv=0.2)
    assert info.value.key == "model.dropout.conv" and "resnet20_sengupta" in info.value.fix


def _denggu_sigma(k: int, n: int, residual: bool) -> float:
    # Deng & Gu 2021, App. A.1, as printed: √(2/(k²n)) non-residual, √2/(k²n) residual (n = output channels).
    return (2.0 ** 0.5) / (k * k * n) if residual else (2.0 / (k * k * n)) ** 0.5


def _empirical_std(weight: torch.Tensor) -> float:
    """The sample standard deviation (n − 1), written out in float64."""
    values = weight.detach().double().flatten()
    return float(((values - values.mean()) ** 2).sum() / (values.numel() - 1)) ** 0.5


def test_denggu_init_std_matches_the_formula():
    torch.manual_seed(0)
    model = build("resnet20_sengupta", width=1.0, init="denggu")
    cases = [
        (model.pre_process[1].conv, 3, 64, False),          # pre-processing conv
        (model.stages[0][0].conv1, 3, 64, True),            # residual branch
        (model.stages[2][1].conv2, 3, 256, True),
        (model.stages[1][0].shortcut[0], 1, 128, False),    # 1×1 projection shortcut
    ]
    for conv, k, n, residual in cases:
        assert conv.kernel_size == (k, k) and conv.out_channels == n
        assert _empirical_std(conv.weight) == pytest.approx(_denggu_sigma(k, n, residual), rel=0.03)
        assert conv.bias is None or torch.all(conv.bias == 0)
    vgg = build("vgg16", width=0.5, init="denggu")  # a plain net: every conv non-residual
    for conv in [m for m in vgg.modules() if isinstance(m, nn.Conv2d)][1:]:
        assert _empirical_std(conv.weight) == pytest.approx(_denggu_sigma(3, conv.out_channels, False), rel=0.06)


def test_default_init_is_unchanged_by_the_new_options():
    # init=default, dropout off, no votes: the same draws as before the options existed (bit for bit).
    torch.manual_seed(3)
    plain = build("resnet18")
    torch.manual_seed(3)
    explicit = build("resnet18", init="default", dropout_conv=0.0, dropout_fc=0.0)
    for (name, a), (_, b) in zip(plain.state_dict().items(), explicit.state_dict().items()):
        assert torch.equal(a, b), name


def test_ann_key_of_default_model_options_is_the_old_one():
    from snnx.artifacts import ann_key_payload

    def config(**model):
        return {"dataset": {"name": "digits"}, "model": {"name": "lenet", "width": 0.25, "batch_norm": True,
                                                            "pool": "avg", **model},
                "act": {"name": "relu"}, "train": {"epochs": 1}, "seed": 0}

    new = ann_key_payload(config(dropout={"conv": 0.0, "fc": 0.0}, init="default", votes=None))["model"]
    assert new == ann_key_payload(config(dropout=0.0))["model"]  # the flat key older caches were built with
    changed = [config(dropout={"conv": 0.0, "fc": 0.5}, init="default", votes=None),
               config(dropout={"conv": 0.2, "fc": 0.0}, init="default", votes=None),
               config(dropout={"conv": 0.0, "fc": 0.0}, init="denggu", votes=None),
               config(dropout={"conv": 0.0, "fc": 0.0}, init="default", votes=10)]
    payloads = [ann_key_payload(c)["model"] for c in changed]
    assert all(p != new for p in payloads) and len({repr(p) for p in payloads}) == len(payloads)


def test_cifarnet_structure():
    model = build("cifarnet", width=1.0)
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (3, 128, (3, 3), (1, 1)), (128, 256, (3, 3), (1, 1)), (256, 512, (3, 3), (1, 1)),
        (512, 1024, (3, 3), (1, 1)), (1024, 512, (3, 3), (1, 1))]
    # 128C3-256C3-AP2-512C3-AP2-1024C3-512C3: the poolings sit after the 2nd and the 3rd conv.
    kinds = ["P" if isinstance(m, nn.AvgPool2d) else "C" for m in model.features]
    assert kinds == ["C", "C", "P", "C", "P", "C", "C"]
    linears = [m for m in model.classifier.modules() if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(512 * 8 * 8, 1024), (1024, 512), (512, 10 * 10)]
    x = batch("cifar10")
    with torch.no_grad():
        out = model.eval()(x)
        scores = model.classifier(torch.flatten(model.features(x), 1))
    assert out.shape == (BATCH, 10)
    # The voting layer: class c's output is the mean of Linear outputs 10c … 10c+9 (float64, by hand).
    for b in range(BATCH):
        for c in range(10):
            group = [float(v) for v in scores[b, 10 * c:10 * c + 10].double()]
            assert float(out[b, c]) == pytest.approx(sum(group) / 10, rel=1e-5, abs=1e-7)
    plain = build("cifarnet", width=1.0, votes=1)  # the other reading: a plain output layer
    assert plain.classifier[-1].out_features == 10 and not any(isinstance(m, Voting) for m in plain.modules())


def test_resnet20_sengupta_structure():
    model = build("resnet20_sengupta", width=1.0)
    pre = [m.conv for m in model.pre_process if isinstance(m, models.layers.ConvBNAct)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in pre] == [(3, 64, (3, 3)), (64, 64, (3, 3)),
                                                                             (64, 64, (3, 3))]
    assert isinstance(model.pre_process[3], nn.AvgPool2d)  # "All the pooling layers use average pooling"
    blocks = [m for m in model.stages.modules() if isinstance(m, models.resnet.BasicBlock)]
    assert [(b.conv1.in_channels, b.conv1.out_channels, b.conv1.stride[0]) for b in blocks] == [
        (64, 64, 1), (64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2),
        (512, 512, 1)]
    # ResNet-18 (1 stem conv + 16 block convs + FC) with two pre-processing convs more: 20 weight layers.
    weight_layers = [m for n, m in model.named_modules()
                     if isinstance(m, (nn.Conv2d, nn.Linear)) and "shortcut" not in n]
    assert len(weight_layers) == 20
    assert not any(isinstance(m, (nn.AdaptiveAvgPool2d, nn.MaxPool2d)) for m in model.modules())
    assert model.fc.in_features == 512 * 2 * 2  # the 2×2 map flattened, no global pooling
    with torch.no_grad():
        assert model.eval()(batch("cifar10")).shape == (BATCH, 10)
        assert build("resnet20_sengupta", "digits").eval()(batch("digits")).shape == (BATCH, 10)
    acts = RecordingFactory()
    build("resnet20_sengupta", act_factory=acts)
    assert len(acts.created) == 3 + 2 * 8  # an activation after each pre-processing conv and two per block


def test_vgg16_rathi_structure():
    """Rathi et al. 2019's CIFAR VGG-16 (Deng & Gu 2021, App. A.1): 13 3×3 convs, 4 average poolings (none after
    the fifth block), Linear(512·2·2, 4096) → Linear(4096, 4096) → Linear(4096, classes)."""
    model = build("vgg16_rathi", width=1.0, batch_norm=False, dropout_conv=0.2, dropout_fc=0.5)
    layers = list(model.features)
    convs = [m.conv for m in layers if isinstance(m, models.layers.ConvBNAct)]
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    assert [(c.in_channels, c.out_channels) for c in convs] == list(zip([3, *widths[:-1]], widths))
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.bias is not None for c in convs)
    pools = [i for i, m in enumerate(layers) if isinstance(m, nn.AvgPool2d)]
    assert pools == [2, 5, 9, 13] and isinstance(layers[-1], models.layers.ConvBNAct)  # no pooling at the end
    assert all(m.kernel_size == 2 and m.stride == 2 for m in layers if isinstance(m, nn.AvgPool2d))
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512 * 2 * 2, 4096), (4096, 4096), (4096, 10)]
    kinds = [type(m).__name__ for m in model.classifier]
    assert kinds == ["Identity", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d)) for m in model.modules())
    acts = RecordingFactory()
    build("vgg16_rathi", act_factory=acts)
    assert len(acts.created) == 13 + 2
    with torch.no_grad():
        assert model.eval()(batch("cifar10")).shape == (BATCH, 10)
        assert build("vgg16_rathi", "mnist").eval()(batch("mnist")).shape == (BATCH, 10)  # 28 → 1×1 map
    # batch_norm=true: a BN after each conv and bias-free convs, as every snnx model.
    bn = build("vgg16_rathi")
    assert sum(isinstance(m, nn.BatchNorm2d) for m in bn.modules()) == 13
    assert all(m.bias is None for m in bn.modules() if isinstance(m, nn.Conv2d))
    # vgg16 itself is unchanged: 5 poolings, 512·1·1 → 4096 at 32×32.
    plain = build("vgg16", width=1.0)
    assert sum(isinstance(m, nn.AvgPool2d) for m in plain.modules()) == 5
    assert plain.classifier[1].in_features == 512


# --------------------------------------------------------------------------- CLI: no-BN residual nets convert


_CLI_TINY = ["dataset=digits", "dataset.limit_train=256", "dataset.limit_test=120", "model.width=0.125", "train=smoke",
             "sim.T=[1,4]", "convert.calib_size=120", "sim.batch_size=120"]


def _results(root) -> list[dict]:
    import csv

    (path,) = sorted(root.glob("runs/*/*/results.csv"))[-1:]
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow  # long end to end (make test-full)
def test_cli_no_bn_resnet_converts(tmp_path):
    from conftest import snnx

    done = snnx("run", *_CLI_TINY, "model=resnet20", "model.batch_norm=false", "model.dropout.conv=0.2", "act=relu",
                "convert=maxnorm", f"paths.root={tmp_path}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _results(tmp_path)
    assert [int(r["T"]) for r in rows] == [1, 4] and all(0 <= float(r["acc"]) <= 100 for r in rows)
    assert {r["model"] for r in rows} == {"resnet20"}


@pytest.mark.slow  # long end to end (make test-full)
def test_cli_resnet20_sengupta_converts_with_maxnorm_and_shift(tmp_path):
    from conftest import cache_dirs, snnx

    ann = [*_CLI_TINY, "model=resnet20_sengupta", "model.batch_norm=false", "model.dropout.conv=0.2",
           "model.init=denggu", "act=clip", f"paths.root={tmp_path}"]
    for method in ("maxnorm", "shift"):
        done = snnx("run", *ann, f"convert={method}", cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        rows = _results(tmp_path)
        assert [int(r["T"]) for r in rows] == [1, 4] and {r["convert"] for r in rows} == {method}
        assert all(0 <= float(r["acc"]) <= 100 for r in rows)
    assert len(cache_dirs(tmp_path)) == 1  # one ANN, trained once, converted twice


def test_cli_model_options_show_in_cfg_job_and_bad_ones_exit_2(tmp_path):
    from conftest import snnx

    done = snnx("run", "model=cifarnet", "model.dropout.conv=0.2", "model.dropout.fc=0.5", "model.init=denggu",
                "--cfg", "job", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for line in ("conv: 0.2", "fc: 0.5", "init: denggu", "votes: 10"):
        assert line in done.stdout
    done = snnx("run", "dataset=digits", "model=lenet", "model.dropout.conv=0.2", f"paths.root={tmp_path}",
                cwd=tmp_path)
    assert done.returncode == 2 and "model.dropout.conv" in done.stderr


@pytest.mark.slow  # long end to end (make test-full)
def test_cli_vgg16_rathi_converts_with_the_shift(tmp_path):
    from conftest import snnx

    tiny = [w for w in _CLI_TINY if not w.startswith("dataset=")]
    done = snnx("run", "dataset=mnist5k", *tiny, "model=vgg16_rathi", "model.batch_norm=false", "model.dropout.conv=0.2",
                "model.dropout.fc=0.5", "model.init=denggu", "act=clip", "convert=shift", f"paths.root={tmp_path}",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _results(tmp_path)
    assert [int(r["T"]) for r in rows] == [1, 4] and {(r["model"], r["convert"]) for r in rows} == {("vgg16_rathi", "shift")}
    assert all(0 <= float(r["acc"]) <= 100 for r in rows)
