"""Graph surgery on an ANN before it becomes an SNN (torch.fx).

:func:`trace` gives every activation site its own module, called at one node:
activation modules stay leaves, each functional spelling of ReLU (``F.relu``,
``torch.relu``, ``x.relu()``, ``x.clamp(min=0)``, …) becomes a fresh
``nn.ReLU`` named after its node, and an activation module called at several
nodes gets a deep copy for every call after the first. Calibration, the site
list and :func:`prepare` all trace with it, so they name the same sites.

:func:`prepare` folds BatchNorm into the conv/linear layers that feed it
(``torch.nn.utils.fusion``; also a BatchNorm after a sum of such layers),
replaces or rejects MaxPool (max over spikes is not max over rates), and
checks that everything between the sites is linear
(:mod:`snnx.convert.linear_ops`).
"""

from __future__ import annotations

import copy
import operator
from collections import Counter

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.utils import parametrize
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights

from snnx.activations import Activation
from snnx.convert.linear_ops import check_linear, describe
from snnx.errors import ConfigError

_BN = nn.modules.batchnorm._BatchNorm


def is_activation(module: nn.Module) -> bool:
    return isinstance(module, (nn.ReLU, Activation))


class _ActivationLeafTracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_activation(m) or super().is_leaf_module(m, module_qualified_name)


# -- functional spellings of ReLU -------------------------------------------------------------------
# Calls that are ReLU: value = whether the call works in place (None: F.relu's `inplace` argument says).
_RELU_FUNCTIONS = {torch.relu: False, torch.relu_: True, F.relu: None, F.relu_: True}
_RELU_METHODS = {"relu": False, "relu_": True}
# Clamps, ReLU when the lower bound is 0 and there is no upper bound: value = (in place, takes an upper bound).
_CLAMP_FUNCTIONS = {torch.clamp: (False, True), torch.clip: (False, True), torch.clamp_min: (False, False),
                    torch.clamp_: (True, True), torch.clip_: (True, True), torch.clamp_min_: (True, False)}
_CLAMP_METHODS = {"clamp": (False, True), "clip": (False, True), "clamp_min": (False, False),
                  "clamp_": (True, True), "clip_": (True, True), "clamp_min_": (True, False)}


def _argument(node: fx.Node, index: int, name: str, default=None):
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _is_zero(value) -> bool:
    return type(value) in (int, float) and value == 0


def _functional_relu(node: fx.Node) -> tuple[fx.Node, bool] | None:
    """``(input, in_place)`` if ``node`` computes ReLU by a function or method call, else None."""
    if node.op == "call_function" and node.target in _RELU_FUNCTIONS:
        inplace = _RELU_FUNCTIONS[node.target]
        if inplace is None:
            inplace = bool(_argument(node, 1, "inplace", False))
    elif node.op == "call_method" and node.target in _RELU_METHODS:
        inplace = _RELU_METHODS[node.target]
    else:
        clamps = _CLAMP_FUNCTIONS if node.op == "call_function" else _CLAMP_METHODS if node.op == "call_method" else {}
        if node.target not in clamps:
            return None
        inplace, bounded_above = clamps[node.target]
        high = _argument(node, 2, "max") if bounded_above else None
        if not _is_zero(_argument(node, 1, "min")) or high is not None:
            return None  # another bound: not a ReLU (the op check rejects it)
    source = node.args[0] if node.args else node.kwargs.get("input")
    return (source, inplace) if isinstance(source, fx.Node) else None


def _free_attribute(gm: fx.GraphModule, base: str) -> str:
    name, i = base, 1
    while hasattr(gm, name):
        name, i = f"{base}_{i}", i + 1
    return name


def _redirect_later_uses(gm: fx.GraphModule, node: fx.Node, source: fx.Node) -> None:
    """Users of ``source`` after the in-place ``node`` read the activated tensor: they now read ``node``.

    (The neuron that replaces an in-place activation does not write into its input.)
    """
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    for user in list(source.users):
        if user is not node and order[user] > order[node]:
            user.replace_input_with(source, node)


def _one_module_per_site(gm: fx.GraphModule) -> None:
    modules = dict(gm.named_modules())
    placed: set[int] = set()  # activation modules already at a site
    for node in list(gm.graph.nodes):
        relu = _functional_relu(node)
        if relu is not None:
            source, inplace = relu
            name = _free_attribute(gm, node.name)
            gm.add_submodule(name, nn.ReLU())
            node.op, node.target, node.args, node.kwargs = "call_module", name, (source,), {}
        elif node.op == "call_module" and is_activation(modules[node.target]):
            module = modules[node.target]
            source = node.args[0] if node.args else None
            inplace = bool(getattr(module, "inplace", False))
            if id(module) in placed:
                node.target = _free_attribute(gm, node.name)
                gm.add_submodule(node.target, copy.deepcopy(module))
            placed.add(id(module))
        else:
            continue
        if inplace and isinstance(source, fx.Node):
            _redirect_later_uses(gm, node, source)


def trace(model: nn.Module) -> fx.GraphModule:
    """``model`` as a graph module with one activation module per site (module doc); ``model`` is not changed."""
    graph = _ActivationLeafTracer().trace(model)
    gm = fx.GraphModule(model, graph, model.__class__.__name__)
    _one_module_per_site(gm)
    gm.graph.lint()
    gm.recompile()
    return gm


def set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def activation_sites(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Activation modules in forward order (the traced graph's order)."""
    return sites_of(trace(model))


def sites_of(gm: fx.GraphModule) -> list[tuple[str, nn.Module]]:
    """The activation sites of a graph from :func:`trace`: ``(module name, module)`` in graph order."""
    modules = dict(gm.named_modules())
    return [(node.target, modules[node.target]) for node in gm.graph.nodes
            if node.op == "call_module" and is_activation(modules[node.target])]


# -- BatchNorm folding -------------------------------------------------------------------------------
# The layer a BatchNorm folds into, by the BatchNorm's kind, and the fusion of their parameters.
_FOLDS = {nn.BatchNorm2d: (nn.Conv2d, fuse_conv_bn_weights), nn.BatchNorm1d: (nn.Linear, fuse_linear_bn_weights)}
_SUMS = {operator.add, torch.add}


def _sum_terms(node: fx.Node) -> list[fx.Node] | None:
    """The terms of ``node`` if it is a sum of tensors (nested sums used only by it included), else None."""
    is_sum = (node.op == "call_function" and node.target in _SUMS or node.op == "call_method" and node.target == "add")
    if not is_sum or len(node.args) != 2 or node.kwargs:
        return None
    terms = []
    for arg in node.args:
        if not isinstance(arg, fx.Node):
            return None  # a constant term would need the shift applied to it as well
        inner = _sum_terms(arg) if len(arg.users) == 1 else None
        terms.extend(inner if inner is not None else [arg])
    return terms


def _fold_after_sum(gm: fx.GraphModule, bn_node: fx.Node, modules: dict, calls: Counter) -> bool:
    """Fold BN(y₁ + … + yₙ), every yᵢ a conv/linear output used only by the sum, into those layers.

    BN(Σ yᵢ) = Σ (γ/σ)·yᵢ + (β − γμ/σ): every layer's weight and bias are scaled by γ/σ, and the
    shift goes into the first one's bias.
    """
    bn = modules[bn_node.target]
    total = bn_node.args[0]
    kind = _FOLDS.get(type(bn))
    if kind is None or bn.running_mean is None or not isinstance(total, fx.Node) or len(total.users) != 1:
        return False
    terms = _sum_terms(total)
    layer_kind, fuse = kind
    if not terms or len({t.target for t in terms}) != len(terms) or not all(
            t.op == "call_module" and type(modules[t.target]) is layer_kind and len(t.users) == 1
            and calls[t.target] == 1 for t in terms):
        return False
    gamma = bn.weight if bn.affine else torch.ones_like(bn.running_mean)
    beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    zeros = torch.zeros_like(bn.running_mean)
    for i, term in enumerate(terms):
        layer = modules[term.target]
        fused = copy.deepcopy(layer)
        with torch.no_grad():
            fused.weight, fused.bias = fuse(layer.weight, layer.bias, bn.running_mean if i == 0 else zeros,
                                            bn.running_var, bn.eps, gamma, beta if i == 0 else zeros)
        set_submodule(gm, term.target, fused)
    bn_node.replace_all_uses_with(total)
    gm.graph.erase_node(bn_node)
    return True


def fold_batchnorm(gm: fx.GraphModule) -> fx.GraphModule:
    """Fold every BatchNorm that directly follows a conv/linear (whose only user it is), or a sum of them.

    A layer called at more than one node is never folded (its other calls would change too); a
    BatchNorm that cannot be folded stays (eval mode: a per-channel affine map).
    """
    modules = dict(gm.named_modules())
    calls = Counter(node.target for node in gm.graph.nodes if node.op == "call_module")
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], _BN):
            continue
        prev = node.args[0]
        if not isinstance(prev, fx.Node) or prev.op != "call_module" or len(prev.users) != 1 \
                or calls[prev.target] != 1:
            _fold_after_sum(gm, node, modules, calls)
            continue
        layer, bn = modules[prev.target], modules[node.target]
        if isinstance(layer, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            fused = fuse_conv_bn_eval(layer.eval(), bn.eval())
        elif isinstance(layer, nn.Linear) and isinstance(bn, nn.BatchNorm1d):
            fused = fuse_linear_bn_eval(layer.eval(), bn.eval())
        else:
            continue
        set_submodule(gm, prev.target, fused)
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    return gm


# -- MaxPool -----------------------------------------------------------------------------------------
# Max pooling and the average pooling of the same geometry that replaces it (convert.maxpool=avg).
_MAXPOOL_MODULES = {nn.MaxPool1d: nn.AvgPool1d, nn.MaxPool2d: nn.AvgPool2d, nn.MaxPool3d: nn.AvgPool3d}
_ADAPTIVE_MAXPOOL_MODULES = {nn.AdaptiveMaxPool1d: nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool2d: nn.AdaptiveAvgPool2d,
                             nn.AdaptiveMaxPool3d: nn.AdaptiveAvgPool3d}
_MAXPOOL_FUNCTIONS = {F.max_pool1d: nn.AvgPool1d, F.max_pool2d: nn.AvgPool2d, F.max_pool3d: nn.AvgPool3d,
                      torch.max_pool1d: nn.AvgPool1d, torch.max_pool2d: nn.AvgPool2d, torch.max_pool3d: nn.AvgPool3d}
_ADAPTIVE_MAXPOOL_FUNCTIONS = {F.adaptive_max_pool1d: nn.AdaptiveAvgPool1d, F.adaptive_max_pool2d: nn.AdaptiveAvgPool2d,
                               F.adaptive_max_pool3d: nn.AdaptiveAvgPool3d}
_POOL_ARGUMENTS = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_ADAPTIVE_ARGUMENTS = ("input", "output_size", "return_indices")

MAXPOOL_FIX = ("Use average pooling in the model (nn.AvgPool2d / F.avg_pool2d), or convert with convert.maxpool=avg "
               "(maxpool=\"avg\" in snnx.api.convert), which replaces it by average pooling of the same shape; "
               "for an snnx model, train with model.pool=avg.")


def _maxpool_settings(node: fx.Node, modules: dict) -> tuple[type, dict] | None:
    """(average pooling class, max pooling settings) if ``node`` max-pools, else None."""
    if node.op == "call_module":
        module = modules[node.target]
        for kinds, names in ((_MAXPOOL_MODULES, _POOL_ARGUMENTS), (_ADAPTIVE_MAXPOOL_MODULES, _ADAPTIVE_ARGUMENTS)):
            if type(module) in kinds:
                return kinds[type(module)], {name: getattr(module, name) for name in names[1:]}
        return None
    if node.op != "call_function":
        return None
    for kinds, names in ((_MAXPOOL_FUNCTIONS, _POOL_ARGUMENTS), (_ADAPTIVE_MAXPOOL_FUNCTIONS, _ADAPTIVE_ARGUMENTS)):
        if node.target in kinds:
            settings = {name: _argument(node, i, name) for i, name in enumerate(names) if i > 0}
            if settings.get("stride") in ([], ()):
                settings["stride"] = None  # torch.max_pool2d's default: the kernel size
            return kinds[node.target], settings
    return None


def _average_pool(avg: type, settings: dict, where: str) -> nn.Module:
    if settings.get("return_indices"):
        raise ConfigError(f"{where} returns the indices of its maxima, which average pooling has no counterpart of.",
                          key="convert.maxpool", fix="Use average pooling in the model (nn.AvgPool2d / F.avg_pool2d).")
    if "output_size" in settings:
        return avg(settings["output_size"])
    dilation = settings.get("dilation") or 1
    if any(d != 1 for d in (dilation if isinstance(dilation, (tuple, list)) else (dilation,))):
        raise ConfigError(f"{where} is dilated ({dilation}); average pooling has no dilation.", key="convert.maxpool",
                          fix="Use average pooling in the model (nn.AvgPool2d / F.avg_pool2d).")
    return avg(settings["kernel_size"], settings.get("stride"), settings.get("padding") or 0,
               ceil_mode=bool(settings.get("ceil_mode")))


def replace_maxpool(gm: fx.GraphModule, policy: str) -> fx.GraphModule:
    """Every max pooling (module or function) → an error naming it, or (``policy="avg"``) average pooling."""
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        found = _maxpool_settings(node, modules)
        if found is None:
            continue
        where = (f"MaxPool layer '{node.target}' ({type(modules[node.target]).__name__})" if node.op == "call_module"
                 else f"max-pooling node '{node.name}' ({describe(node, modules)})")
        if policy != "avg":
            raise ConfigError(f"the ANN has a {where}; max-pooling spikes does not pass on the maximum rate.",
                              key="convert.maxpool", fix=MAXPOOL_FIX)
        avg, settings = found
        pool = _average_pool(avg, settings, where)
        if node.op == "call_module":
            set_submodule(gm, node.target, pool)
        else:
            name = _free_attribute(gm, node.name)
            gm.add_submodule(name, pool)
            source = node.args[0] if node.args else node.kwargs["input"]
            node.op, node.target, node.args, node.kwargs = "call_module", name, (source,), {}
    gm.graph.lint()
    gm.recompile()
    return gm


def bake_parametrizations(model: nn.Module) -> None:
    """Replace every parametrized conv/linear (ternary weights) by a plain one holding the parametrized values.

    (Not ``parametrize.remove_parametrizations``: it deletes the weight property
    from the parametrized class, which a deep copy shares with the original
    model, and would break the caller's ANN.)
    """
    for name, module in list(model.named_modules()):
        if not parametrize.is_parametrized(module):
            continue
        if isinstance(module, nn.Conv2d):
            plain = nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, stride=module.stride,
                              padding=module.padding, dilation=module.dilation, groups=module.groups,
                              bias=module.bias is not None, padding_mode=module.padding_mode)
        elif isinstance(module, nn.Linear):
            plain = nn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
        else:
            raise ConfigError(f"'{name}' ({type(module).__name__}) is parametrized.", key="train.weight_quant",
                              fix="Conversion bakes parametrized conv/linear weights only.")
        with torch.no_grad():
            plain.weight.copy_(module.weight)
            if module.bias is not None:
                plain.bias.copy_(module.bias)
        set_submodule(model, name, plain.eval())


def prepare(ann: nn.Module, *, maxpool: str = "error") -> fx.GraphModule:
    """A traced, BN-folded, MaxPool-free copy of ``ann`` in eval mode (ternary weights baked in).

    Raises ConfigError naming the node if anything but the activation sites is not linear.
    """
    model = copy.deepcopy(ann).eval()
    bake_parametrizations(model)
    gm = trace(model)
    gm = fold_batchnorm(gm)
    gm = replace_maxpool(gm, maxpool)
    check_linear(gm, is_site=is_activation)
    return gm


def swap_activations(gm: fx.GraphModule, make_neuron) -> fx.GraphModule:
    """Replace each activation leaf with ``make_neuron(name, activation)``."""
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op == "call_module" and is_activation(modules[node.target]):
            set_submodule(gm, node.target, make_neuron(node.target, modules[node.target]))
    gm.recompile()
    return gm
