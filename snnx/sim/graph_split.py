"""Split a converted graph into its time-invariant prefix and the rest.

With direct encoding the image is the same at every step, so every node that
depends on no neuron (the first conv, its folded BN, …) gives the same value
at every step: it is computed once per batch by ``prefix`` and fed to
``body`` for every chunk of steps.
"""

from __future__ import annotations

import torch
from torch import fx, nn

from snnx.neurons import Neuron
from snnx.sim.accounting import INPUT_SOURCE

INPUT = INPUT_SOURCE  # synapse_sources: the layer reads the network input


def split_time_invariant(gm: fx.GraphModule) -> tuple[fx.GraphModule, fx.GraphModule]:
    modules = dict(gm.named_modules())
    invariant: set[fx.Node] = set()
    for node in gm.graph.nodes:
        if node.op == "output":
            continue
        if node.op == "call_module" and isinstance(modules[node.target], Neuron):
            continue
        if all(arg in invariant for arg in node.all_input_nodes):
            invariant.add(node)
    boundary = [n for n in gm.graph.nodes if n in invariant and any(u not in invariant for u in n.users)]

    prefix_graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in gm.graph.nodes:
        if node in invariant:
            env[node] = prefix_graph.node_copy(node, lambda n: env[n])
    prefix_graph.output(tuple(env[n] for n in boundary))

    body_graph = fx.Graph()
    body_env: dict[fx.Node, fx.Node] = {}
    for i, node in enumerate(boundary):
        body_env[node] = body_graph.placeholder(f"invariant_{i}")
    for node in gm.graph.nodes:
        if node in invariant:
            continue
        body_env[node] = body_graph.node_copy(node, lambda n: body_env[n])
    prefix = fx.GraphModule(gm, prefix_graph, "Prefix")
    body = fx.GraphModule(gm, body_graph, "Body")
    return prefix, body


def spike_fed_layers(gm: fx.GraphModule) -> tuple[list[str], list[str]]:
    """Conv/linear layers fed (through any stateless ops) by neurons, and the others.

    The first are synaptic layers whose inputs are spikes (accumulate ops, AC);
    the second see real values (multiply-accumulate ops, MAC).
    """
    modules = dict(gm.named_modules())
    downstream: set[fx.Node] = set()
    spike_fed, real_fed = [], []
    for node in gm.graph.nodes:
        fed = any(arg in downstream for arg in node.all_input_nodes)
        is_neuron = node.op == "call_module" and isinstance(modules[node.target], Neuron)
        if node.op == "call_module" and isinstance(modules[node.target], (nn.Conv2d, nn.Linear)):
            (spike_fed if fed else real_fed).append(node.target)
        if fed or is_neuron:
            downstream.add(node)
    return spike_fed, real_fed


# Nodes that hand their input on unchanged (same values, same order): a
# synaptic layer behind them sees exactly its source's output.
_PASS_MODULES = (nn.Flatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
_PASS_FUNCTIONS = {torch.flatten, torch.reshape}
_PASS_METHODS = {"view", "reshape", "flatten", "contiguous"}


def _passes_through(node: fx.Node, modules: dict) -> bool:
    if node.op == "call_module":
        return isinstance(modules[node.target], _PASS_MODULES)
    if node.op == "call_function":
        return node.target in _PASS_FUNCTIONS
    if node.op == "call_method":
        return node.target in _PASS_METHODS
    return False


def synapse_sources(gm: fx.GraphModule) -> dict[str, str | None]:
    """For each conv/linear layer, what its input is, looking through reshapes and identities.

    The name of a neuron module whose output it receives unchanged, ``"<input>"``
    for the network's input, or None (its input is computed: pooled, summed, …).
    """
    modules = dict(gm.named_modules())
    sources: dict[str, str | None] = {}
    for node in gm.graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], (nn.Conv2d, nn.Linear)):
            continue
        arg = node.args[0] if node.args else None
        while isinstance(arg, fx.Node) and _passes_through(arg, modules) and arg.args:
            arg = arg.args[0]
        source = None
        if isinstance(arg, fx.Node):
            if arg.op == "placeholder":
                source = INPUT
            elif arg.op == "call_module" and isinstance(modules[arg.target], Neuron):
                source = arg.target
        sources[node.target] = source
    return sources

