"""Graph surgery on an ANN before it becomes an SNN (torch.fx).

Tracing keeps every activation module as one leaf node, so a converter can
swap it for a neuron by name; BatchNorm is folded into the preceding
conv/linear with ``torch.nn.utils.fusion``; MaxPool is replaced by AvgPool
(max over spikes is not max over rates).
"""

from __future__ import annotations

import copy

import torch
from torch import fx, nn
from torch.nn.utils import parametrize
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from snnx.activations import Activation
from snnx.errors import ConfigError


def is_activation(module: nn.Module) -> bool:
    return isinstance(module, (nn.ReLU, Activation))


class _ActivationLeafTracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_activation(m) or super().is_leaf_module(m, module_qualified_name)


def trace(model: nn.Module) -> fx.GraphModule:
    tracer = _ActivationLeafTracer()
    graph = tracer.trace(model)
    return fx.GraphModule(model, graph, model.__class__.__name__)


def set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def activation_sites(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Activation modules in forward order (the traced graph's order)."""
    gm = trace(model)
    modules = dict(gm.named_modules())
    return [(node.target, modules[node.target]) for node in gm.graph.nodes
            if node.op == "call_module" and is_activation(modules[node.target])]


def fold_batchnorm(gm: fx.GraphModule) -> fx.GraphModule:
    """Fold every BatchNorm that directly follows a conv/linear (whose only user it is)."""
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], nn.modules.batchnorm._BatchNorm):
            continue
        prev = node.args[0]
        if not isinstance(prev, fx.Node) or prev.op != "call_module" or len(prev.users) != 1:
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


def replace_maxpool(gm: fx.GraphModule, policy: str) -> fx.GraphModule:
    for name, module in list(gm.named_modules()):
        if isinstance(module, nn.MaxPool2d):
            if policy != "avg":
                raise ConfigError(
                    f"the ANN has a MaxPool layer ({name}); max-pooling spikes does not pass on the maximum rate.",
                    key="convert.maxpool", fix="Set convert.maxpool=avg to replace it by average pooling, or train with model.pool=avg.")
            set_submodule(gm, name, nn.AvgPool2d(module.kernel_size, module.stride, module.padding,
                                                 ceil_mode=module.ceil_mode))
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
    """A traced, BN-folded, MaxPool-free copy of ``ann`` in eval mode (ternary weights baked in)."""
    model = copy.deepcopy(ann).eval()
    bake_parametrizations(model)
    gm = trace(model)
    gm = fold_batchnorm(gm)
    return replace_maxpool(gm, maxpool)


def swap_activations(gm: fx.GraphModule, make_neuron) -> fx.GraphModule:
    """Replace each activation leaf with ``make_neuron(name, activation)``."""
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op == "call_module" and is_activation(modules[node.target]):
            set_submodule(gm, node.target, make_neuron(node.target, modules[node.target]))
    gm.recompile()
    return gm
