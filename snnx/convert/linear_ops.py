"""What may sit between the neurons of a converted SNN: the allowlist of operations, as data.

Conversion replaces each activation site by a spiking neuron and keeps every other node. The SNN's
firing rates then follow the ANN's activations only if every other node is linear (affine) in its
input, sample by sample: a linear map of the rates is the rate of the mapped currents. A nonlinear
node (sigmoid, softmax, max, the product of two tensors, …) computes something else on spike trains
than on rates, so :func:`check_linear` rejects it, naming the node, instead of letting a wrong SNN
through.

The simulator runs these nodes with time folded into the batch dimension ([steps·B, …]), so a node
must also leave dim 0 alone: no reduction, concatenation or flattening over it.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

from snnx.errors import ConfigError

# A further check of a node's arguments: what is wrong with it, or None. ``variable(arg)`` says whether an
# argument depends on the network's input (a constant, number or parameter does not).
Condition = Callable[[fx.Node, Callable[[object], bool]], "str | None"]


@dataclass(frozen=True)
class Rule:
    why: str  # why this kind of node is safe between neurons
    condition: Condition | None = None


def _argument(node: fx.Node, index: int, name: str, default=None):
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _dims(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


# -- conditions ----------------------------------------------------------------------------------------
def _constant_factor(node, variable):
    factors = [node.args[0] if node.args else node.kwargs.get("input"), _argument(node, 1, "other")]
    if sum(variable(f) for f in factors) > 1:
        return ("it multiplies two input-dependent tensors, and the product of two spike trains' rates is not "
                "the rate of their product")
    return None


def _constant_divisor(node, variable):
    if variable(_argument(node, 1, "other")):
        return "its divisor depends on the input (only division by a constant is linear)"
    if node.kwargs.get("rounding_mode") is not None:
        return "it rounds the quotient"
    return None


def _feature_reduction(node, variable):
    dim = _argument(node, 1, "dim")
    if dim is None:
        return "it reduces over every dimension, the batch included: give the feature dims (e.g. x.mean((2, 3)))"
    if 0 in _dims(dim):
        return "it reduces over dim 0, the batch (into which the simulator folds time)"
    return None


def _keeps_batch(index: int, name: str, default: int, what: str) -> Condition:
    def condition(node, variable):
        dim = _argument(node, index, name, default)
        if dim == 0:
            return f"it {what} along dim 0, the batch (into which the simulator folds time)"
        return None
    return condition


def _not_training(node, variable):
    if _argument(node, 2, "training", True):
        return ("it runs with training=True (F.dropout's default), dropping at random even in eval mode: "
                "pass training=self.training")
    return None


def _running_statistics(module: nn.Module) -> str | None:
    if module.running_mean is None:
        return "it has no running statistics (track_running_stats=False), so it normalises by the batch's own"
    return None


# -- the allowlist ---------------------------------------------------------------------------------------
_SYNAPSE = Rule("a synaptic layer: a weighted sum of its input spikes plus a bias each step; the simulator "
                "counts its synaptic operations (nn.Conv2d and nn.Linear are the layers it counts)")
_IDENTITY_IN_EVAL = Rule("the identity in eval mode (prepare() puts the model in eval mode)")
_RESHAPE = Rule("moves elements without changing them")

# Modules (matched with isinstance); their conditions take the module instead of the node.
MODULES: dict[type, Rule] = {
    nn.Conv2d: _SYNAPSE,
    nn.Linear: _SYNAPSE,
    nn.AvgPool1d: Rule("a fixed weighted sum over each window"),
    nn.AvgPool2d: Rule("a fixed weighted sum over each window"),
    nn.AvgPool3d: Rule("a fixed weighted sum over each window"),
    nn.AdaptiveAvgPool1d: Rule("a fixed weighted sum over each output cell's region"),
    nn.AdaptiveAvgPool2d: Rule("a fixed weighted sum over each output cell's region"),
    nn.AdaptiveAvgPool3d: Rule("a fixed weighted sum over each output cell's region"),
    nn.modules.batchnorm._BatchNorm: Rule("in eval mode a per-channel affine map (running mean and variance)",
                                          lambda module, variable: _running_statistics(module)),
    nn.Flatten: _RESHAPE,
    nn.Unflatten: _RESHAPE,
    nn.Identity: Rule("passes its input on"),
    nn.Dropout: _IDENTITY_IN_EVAL,
    nn.Dropout1d: _IDENTITY_IN_EVAL,
    nn.Dropout2d: _IDENTITY_IN_EVAL,
    nn.Dropout3d: _IDENTITY_IN_EVAL,
    nn.AlphaDropout: _IDENTITY_IN_EVAL,
    nn.FeatureAlphaDropout: _IDENTITY_IN_EVAL,
}

_SUM = Rule("a sum or difference of currents is the sum or difference of their rates")
_SCALE = Rule("scaling by a constant (a number, parameter or buffer) is linear", _constant_factor)
_DIVIDE = Rule("division by a constant is linear", _constant_divisor)
_REDUCE = Rule("a mean or sum over feature dims is a fixed weighted sum", _feature_reduction)
_AVERAGE_POOL = Rule("a fixed weighted sum over each window or region")
_PLUMBING = Rule("plumbing: sizes, attributes, tuple items and slices carry no arithmetic")

FUNCTIONS: dict[object, Rule] = {
    operator.add: _SUM, torch.add: _SUM, operator.sub: _SUM, torch.sub: _SUM,
    operator.neg: _SUM, torch.neg: _SUM,
    operator.mul: _SCALE, torch.mul: _SCALE,
    operator.truediv: _DIVIDE, torch.div: _DIVIDE,
    torch.cat: Rule("concatenation moves elements", _keeps_batch(1, "dim", 0, "concatenates")),
    torch.flatten: Rule("a reshape", _keeps_batch(1, "start_dim", 0, "flattens")),
    torch.reshape: _RESHAPE, torch.permute: _RESHAPE, torch.transpose: _RESHAPE, torch.squeeze: _RESHAPE,
    torch.unsqueeze: _RESHAPE, torch.chunk: _RESHAPE, torch.split: _RESHAPE,
    torch.mean: _REDUCE, torch.sum: _REDUCE,
    F.avg_pool1d: _AVERAGE_POOL, F.avg_pool2d: _AVERAGE_POOL, F.avg_pool3d: _AVERAGE_POOL,
    F.adaptive_avg_pool1d: _AVERAGE_POOL, F.adaptive_avg_pool2d: _AVERAGE_POOL, F.adaptive_avg_pool3d: _AVERAGE_POOL,
    F.dropout: Rule("the identity with training=False", _not_training),
    F.dropout1d: Rule("the identity with training=False", _not_training),
    F.dropout2d: Rule("the identity with training=False", _not_training),
    F.dropout3d: Rule("the identity with training=False", _not_training),
    operator.getitem: _PLUMBING, getattr: _PLUMBING,
}

METHODS: dict[str, Rule] = {
    "add": _SUM, "sub": _SUM, "neg": _SUM,
    "mul": _SCALE, "div": _DIVIDE,
    "mean": _REDUCE, "sum": _REDUCE,
    # x.flatten(start_dim): node.args[0] is the tensor, so start_dim is argument 1, as for torch.flatten
    "flatten": Rule("a reshape", _keeps_batch(1, "start_dim", 0, "flattens")),
    "view": _RESHAPE, "reshape": _RESHAPE, "unflatten": _RESHAPE, "permute": _RESHAPE, "transpose": _RESHAPE,
    "squeeze": _RESHAPE, "unsqueeze": _RESHAPE, "chunk": _RESHAPE, "split": _RESHAPE, "contiguous": _RESHAPE,
    "size": _PLUMBING, "dim": _PLUMBING,
}

SUPPORTED = ("conv (nn.Conv2d), linear (nn.Linear), average pooling, flatten/view/reshape/permute, add/sub/cat, "
             "means over non-batch dims, multiplication or division by a constant, eval-mode BatchNorm and "
             "dropout/identity")
FIX = ("Replace the op in the model by a supported one (a ReLU for a nonlinearity, average pooling for max "
       "pooling), or leave it out of the model passed to convert (apply it to the SNN's output yourself).")


def _qualified(target) -> str:
    for prefix, namespace in (("torch", torch), ("F", F), ("operator", operator)):
        name = getattr(target, "__name__", None)
        if name and getattr(namespace, name, None) is target:
            return f"{prefix}.{name}"
    return getattr(target, "__qualname__", None) or repr(target)


def describe(node: fx.Node, modules: dict) -> str:
    """``call_module <target>: <type>`` / ``call_function <name>`` / ``call_method .<name>()``."""
    if node.op == "call_module":
        return f"call_module {node.target}: {type(modules[node.target]).__name__}"
    if node.op == "call_function":
        return f"call_function {_qualified(node.target)}"
    if node.op == "call_method":
        return f"call_method .{node.target}()"
    return f"{node.op} {node.target}"


def _rule(node: fx.Node, modules: dict) -> Rule | None:
    if node.op == "call_module":
        module = modules[node.target]
        return next((rule for kind, rule in MODULES.items() if isinstance(module, kind)), None)
    if node.op == "call_function":
        return FUNCTIONS.get(node.target)
    if node.op == "call_method":
        return METHODS.get(node.target)
    return None


def check_linear(gm: fx.GraphModule, *, is_site: Callable[[nn.Module], bool]) -> None:
    """Raise ConfigError naming the first node that is neither an activation site nor in the allowlist.

    Nodes that do not depend on the input (constants, parameters read by get_attr and what is computed
    from them) are the same at every step and need no check.
    """
    modules = dict(gm.named_modules())
    variable_nodes: set[fx.Node] = set()

    def variable(arg) -> bool:
        return isinstance(arg, fx.Node) and arg in variable_nodes

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            variable_nodes.add(node)
            continue
        if node.op == "output" or not any(variable(a) for a in node.all_input_nodes):
            continue
        variable_nodes.add(node)
        if node.op == "call_module" and is_site(modules[node.target]):
            continue
        rule = _rule(node, modules)
        if rule is None:
            raise ConfigError(f"node '{node.name}' ({describe(node, modules)}) is not linear, and a converted SNN is "
                              f"only right when everything but its activations is: the activations (nn.ReLU, "
                              f"F.relu, clamp(min=0), snnx activations) become spiking neurons, and between them "
                              f"the converter takes {SUPPORTED}.", key="model", fix=FIX)
        subject = modules[node.target] if node.op == "call_module" else node
        problem = rule.condition(subject, variable) if rule.condition is not None else None
        if problem is not None:
            raise ConfigError(f"node '{node.name}' ({describe(node, modules)}) cannot be converted: {problem}.",
                              key="model", fix=FIX)
