"""A converted SNN as a NIR graph (Neuromorphic Intermediate Representation, nir 1.0), and a NIR graph run back.

What is written (``to_nir``), node by node, for the graph modules snnx's conversion makes:

* ``nn.Conv2d`` → ``nir.Conv2d``; ``nn.Linear`` → ``nir.Affine`` (``nir.Linear`` without a bias). BatchNorm is
  already folded into them by the conversion. Bias is the current added at every step, as in snnx.
* ``nn.AvgPool2d`` → ``nir.AvgPool2d`` (``nir.SumPool2d`` for ``divisor_override=1``); an ``AdaptiveAvgPool2d``
  whose output divides its input → the equivalent ``nir.AvgPool2d``.
* ``torch.flatten(x, 1)`` / ``nn.Flatten`` / ``x.reshape(x.size(0), -1)`` → ``nir.Flatten`` (NIR's dimensions
  leave the batch out: start_dim 0).
* ``Identity`` / ``Dropout`` (eval): nothing (an edge).
* An IF neuron (``IFNeuron``: v ← v + z; s = [v ≥ θ]; v ← v − θ·s) → ``nir.IF`` with ``r`` = 1, ``v_threshold``
  = θ as a per-neuron array (a layer's or channel's θ repeated over its neurons) and ``v_reset`` = 0.

Conventions NIR's IF node does not state, recorded in the graph's ``metadata`` (and each IF node's): NIR's IF
(nir/ir/neuron.py: dv/dt = R·I; z = [v > v_thr]; v ← v_reset where z) resets *to* v_reset and fires on
v > v_thr; snnx resets *by subtraction* (v ← v − v_thr) and fires on v ≥ θ. The time step is discrete (dt = 1,
one NIR step per SNN step, no delay on any edge), the image is the input current at every step (direct
encoding) and the class is the argmax of the Output node summed over T. snnx's neurons emit θ·s (threshold
balancing); a NIR IF emits a unit spike, so θ is multiplied into the input side of the next Conv2d/Affine's
weights: W'[:, c] = W[:, c]·θ_c, one float32 rounding per weight (exact only where θ is a power of two; the sum
the next layer forms is then the same real number, possibly a last bit apart). Where no weighted layer follows a
neuron, or with ``fold=False``, a ``nir.Scale`` node by θ does it (θ·1 = θ: snnx's own product, bit for bit).

What NIR cannot say (``unsupported_features``): a non-zero start potential (NIR's IF has no v0, and no node adds a
current on the first step only), signed ±1 / dual-threshold neurons, MSAT's adaptive threshold, COS's calibrated
start potential, the θ/(2T) shift of shifted_if. Each is a ConfigError naming the layer, or with ``lossy=True`` an
approximation (listed in ``NIRExport.approximations`` and the metadata) whose accuracy the caller measures with
:class:`GraphRunner` (the graph as written, read back).

``nir`` is imported only here, when a graph is made or read (the optional ``nir`` extra).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from snnx.errors import ConfigError
from snnx.neurons import NEURONS, IFNeuron, Neuron

INSTALL = "pip install 'snnx[nir]'"

# The conventions every IF node of an snnx graph follows (graph metadata and each node's).
RESET = "subtract"
SPIKE_CONDITION = "v >= v_threshold"

METADATA = {
    "producer": "snnx",
    "time": "discrete: dt = 1, one NIR step per SNN time step; every node takes its input within the same step "
            "(no delay on any edge)",
    "input_encoding": "direct: the normalised image is the input current at every time step",
    "neuron": "IF: v[t] = v[t-1] + r*I[t] with r = 1 and v[0] = 0; a spike s[t] = 1 where v[t] >= v_threshold "
              "(snnx compares with >=; NIR's IF says >); then reset by subtraction v[t] -= v_threshold*s[t] "
              "(not NIR's reset to v_reset); the spike sent on is a unit spike",
    "reset": RESET,
    "spike_condition": SPIKE_CONDITION,
    "threshold_folding": "snnx's neurons emit theta*s; here they emit s, and theta is multiplied into the input "
                         "side of the next Conv2d/Affine weights (float32, one rounding per weight, exact where "
                         "theta is a power of two), or into a Scale node where no weighted layer follows",
    "readout": "the Output node summed over the T time steps; the predicted class is its argmax",
}


def require_nir(key: str = "format"):
    """The ``nir`` module, or a ConfigError that says how to install it."""
    try:
        import nir  # optional dependency: the `nir` extra
    except ImportError:
        raise ConfigError("writing or reading a NIR graph needs the nir package, which is not installed.", key=key,
                          fix=f"Install it: {INSTALL} (nir, and snnTorch to read the graph back).") from None
    return nir


# -- what NIR cannot express ------------------------------------------------------------------------
@dataclass(frozen=True)
class Feature:
    """One property of one layer that NIR's IF node does not have."""

    layer: str
    neuron: str
    what: str  # the feature, as an error names it
    why: str  # what NIR lacks for it
    instead: str | None  # what a lossy export writes in its place; None: no approximation exists


def _entry_of(neuron: Neuron):
    """The neuron's registry entry (its declared facts), or None for a class that is not registered."""
    return next((e for e in NEURONS if e.build is type(neuron)), None)


def unsupported_features(name: str, neuron: Neuron) -> list[Feature]:
    """What of ``neuron`` (at layer ``name``) NIR's IF node cannot express, from the facts it declares."""
    cls = type(neuron).__name__
    entry = _entry_of(neuron)

    def feature(what: str, why: str, instead: str | None) -> Feature:
        return Feature(name, cls, what, why, instead)

    if neuron.encodes_input or (entry is not None and entry.trait("encodes_input")):
        return [feature("its own encoding of the input into spikes (scatter-and-gather)", "NIR has no such node",
                        None)]
    if entry is not None and (entry.trait("signed") or not entry.trait("rate_coded", True)):
        return [feature("signed ±1 spikes from two thresholds without reset (the all-integer dual-threshold neuron)",
                        "NIR's IF node sends positive spikes from one threshold", None)]
    out: list[Feature] = []
    if neuron.threshold_varies:
        out.append(feature("an adaptive threshold that changes every step (MSAT)", "NIR's IF threshold is fixed",
                           "an IF neuron at its fixed threshold θ_max"))
    elif not isinstance(neuron, IFNeuron):
        return [feature("dynamics other than integrate-and-fire", "NIR's IF node integrates and fires", None)]
    if neuron.presim or (entry is not None and entry.trait("presimulates")):
        # COS's start potential is v_init·θ corrected per neuron: one feature, not two.
        return [*out, feature(f"offset-spike calibration of its start potential over the first {neuron.presim} "
                              f"steps (COS, from v(0) = {neuron.v_init:g}·θ)",
                              "NIR's IF node has no start potential", "no calibration, v(0) = 0")]
    if entry is not None and entry.trait("depends_on_T"):
        out.append(feature("the input shift θ/(2T), which depends on T (shifted_if)",
                           "a NIR graph is the same for every T", "no shift"))
    if neuron.v_init != 0:
        out.append(feature(f"a start potential v(0) = {neuron.v_init:g}·θ",
                           "NIR's IF node has no initial potential, and no node adds a current on the first step "
                           "only", "v(0) = 0"))
    return out


def _refuse(features: list[Feature], key: str, lossy_key: str, lossy: bool) -> None:
    """A ConfigError for the first layer NIR cannot express (all its features, and how many layers more)."""
    fatal = [f for f in features if f.instead is None]
    shown = fatal if fatal else features
    if not shown or (lossy and not fatal):
        return
    first = shown[0]
    mine = [f for f in shown if f.layer == first.layer]
    others = list(dict.fromkeys(f.layer for f in shown if f.layer != first.layer))
    more = (f" The same holds for {len(others)} more layer{'s' if len(others) > 1 else ''}: "
            f"{', '.join(others[:4])}{', …' if len(others) > 4 else ''}.") if others else ""
    has = " and ".join(f"{f.what} ({f.why})" for f in mine)
    if fatal:
        fix = ("No approximation of it exists in NIR; export a network of IF neurons instead (e.g. one converted "
               "with convert=maxnorm).")
    else:
        fix = (f"Convert with plain IF neurons that start at v = 0 (e.g. convert=maxnorm), or set {lossy_key} to "
               f"write an approximation ({'; '.join(dict.fromkeys(f.instead for f in shown))}) and measure its "
               "accuracy.")
    raise ConfigError(f"NIR cannot express layer {first.layer} ({first.neuron}): it has {has}.{more}", key=key,
                      fix=fix)


class LossyExportWarning(UserWarning):
    """A NIR graph was written with approximations (``lossy=True``); the message gives the accuracy measured."""


# -- the graph ----------------------------------------------------------------------------------------
@dataclass
class NIRExport:
    """A NIR graph made of an SNN, and what a lossy export changed."""

    graph: Any  # nir.NIRGraph
    approximations: list[Feature] = field(default_factory=list)
    path: Path | None = None
    # Filled by the caller that measures a lossy export: T → accuracy % of the graph as written and of snnx's SNN.
    accuracy: dict[int, float] | None = None
    snnx_accuracy: dict[int, float] | None = None

    def summary(self) -> str:
        """The approximations, one clause each (empty for an exact export)."""
        return "; ".join(f"{f.layer}: {f.what} → {f.instead}" for f in self.approximations)


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy().copy()


def _is_flatten(node: fx.Node, modules: dict, value_in: torch.Tensor, value_out: torch.Tensor) -> bool:
    """Whether the node flattens every dimension but the batch."""
    if value_out.dim() != 2 or value_in.dim() < 2 or value_out.shape[0] != value_in.shape[0]:
        return False
    if node.op == "call_module":
        return isinstance(modules[node.target], nn.Flatten)
    if node.op == "call_function":
        return node.target in (torch.flatten, torch.reshape)
    return node.op == "call_method" and node.target in ("flatten", "view", "reshape")


def _pool_pair(value, what: str, layer: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ConfigError(f"layer {layer}: a 2-d pooling with {what}={value!r} cannot be written as NIR.",
                          key="format", fix="Use square 2-d poolings.")
    return pair  # type: ignore[return-value]


def _per_channel(scale: torch.Tensor, layer: str) -> torch.Tensor:
    """A [C, H, W] scale that is one value per channel, as [C]."""
    channel = scale.reshape(scale.shape[0], -1)[:, 0]
    if not torch.equal(scale, channel.view(-1, *([1] * (scale.dim() - 1))).expand_as(scale)):
        raise ConfigError(f"layer {layer}: the thresholds feeding it vary within a channel, so they cannot be "
                          "multiplied into its weights.", key="format", fix="Export a network with layer- or "
                          "channel-wise thresholds.")
    return channel


def _evaluate(node: fx.Node, modules: dict, value: dict):
    """The node's value on the sample values of its inputs."""
    args = fx.node.map_arg(node.args, lambda n: value[n])
    kwargs = fx.node.map_arg(node.kwargs, lambda n: value[n])
    if node.op == "call_module":
        return modules[node.target](*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)
    self_, *rest = args  # call_method
    return getattr(self_, node.target)(*rest, **kwargs)


def to_nir(snn: fx.GraphModule, input_shape: Sequence[int], *, lossy: bool = False, key: str = "format",
           lossy_key: str = "export.lossy=true", metadata: dict | None = None, fold: bool = True) -> NIRExport:
    """The NIR graph of ``snn`` (a converted network) for inputs of ``input_shape`` ([C, H, W], no batch).

    ``fold``: θ multiplied into the next weighted layer (default; readers without a Scale node, snnTorch, run
    it); False: a ``nir.Scale`` node by θ after every IF node, the θ·s of snnx without a rounded product.

    Every neuron NIR cannot express is a ConfigError naming the layer and the feature (``key`` is the error's key,
    ``lossy_key`` the setting it suggests), unless ``lossy`` and the feature has an approximation: then the
    approximation is written and listed in the result.
    """
    nir = require_nir(key)
    if not isinstance(snn, fx.GraphModule):
        raise ConfigError(f"a NIR graph is written from a converted network (a torch.fx GraphModule), got "
                          f"{type(snn).__name__}.", key=key, fix="Export what snnx.api.convert or load_snn returned.")
    if any(t.device.type != "cpu" or (t.is_floating_point() and t.dtype != torch.float32)
           for t in [*snn.parameters(), *snn.buffers()]):
        # the graph is float32 numpy: a copy on the CPU in float32, the caller's network left where it is
        snn = copy.deepcopy(snn).to("cpu", torch.float32)
    modules = dict(snn.named_modules())
    features = [f for name, m in modules.items() if isinstance(m, Neuron) for f in unsupported_features(name, m)]
    _refuse(features, key, lossy_key, lossy)

    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    # Per fx node: its sample value (shapes), the NIR node whose output it is (None: the input of the graph's
    # Input node … always set), and the per-element factor its consumers must still apply (θ of spiking layers).
    value: dict[fx.Node, torch.Tensor] = {}
    source: dict[fx.Node, str] = {}
    scale: dict[fx.Node, torch.Tensor | None] = {}
    used: dict[str, int] = {}

    def fresh(name: str) -> str:
        base = name.replace("/", ".") or "node"
        used[base] = used.get(base, 0) + 1
        return base if used[base] == 1 else f"{base}.{used[base]}"

    def scaled_source(arg: fx.Node, where: str) -> str:
        """The NIR node carrying ``arg`` at its true scale (a Scale node where θ is still pending)."""
        pending = scale[arg]
        if pending is None or bool((pending == 1).all()):
            return source[arg]
        name = fresh(f"{where}.theta")
        nodes[name] = nir.Scale(scale=_array(pending))
        edges.append((source[arg], name))
        return name

    dtype = torch.float32
    with torch.no_grad():
        for node in snn.graph.nodes:
            layer = node.target if node.op == "call_module" else node.name
            if node.op == "placeholder":
                if node is not next(iter(snn.graph.nodes)):
                    raise ConfigError(f"the network takes more than one input ({node.name}); a NIR export takes "
                                      "one image.", key=key, fix="Export a network with one input.")
                value[node] = torch.zeros(1, *input_shape, dtype=dtype)
                nodes["input"] = nir.Input(input_type=np.array(list(input_shape)))
                source[node], scale[node] = "input", None
                continue
            if node.op == "output":
                if not isinstance(node.args[0], fx.Node):
                    raise ConfigError("the network returns several tensors; a NIR export writes one output.",
                                      key=key, fix="Export a network with one output tensor.")
                arg = node.args[0]
                name = scaled_source(arg, "output")
                nodes["output"] = nir.Output(output_type=np.array(list(value[arg].shape[1:])))
                edges.append((name, "output"))
                continue
            if node.op == "get_attr":
                raise ConfigError(f"the network reads the tensor {node.target} directly; a NIR export takes "
                                  "layers only.", key=key, fix="Export a network of conv, linear, pooling and "
                                  "flatten layers.")
            # Inputs that are tensors (x.size(0) in x.view(x.size(0), -1) is a number, not a layer's output).
            inputs = [n for n in node.all_input_nodes if isinstance(value.get(n), torch.Tensor)]
            if not inputs:  # a number computed from shapes: kept for the nodes that use it, nothing written
                value[node] = _evaluate(node, modules, value)
                continue
            if len(inputs) != 1:
                raise ConfigError(f"layer {layer} ({node.op} {getattr(node.target, '__name__', node.target)}) "
                                  f"combines {len(inputs)} tensors (a residual sum or a concatenation), which this "
                                  "NIR export does not write yet.", key=key,
                                  fix="Export a feed-forward chain of conv, linear, pooling and flatten layers "
                                      "(e.g. LeNet, VGG).")
            (arg,) = inputs
            x = value[arg]
            module = modules.get(node.target) if node.op == "call_module" else None
            # The sample value: neurons pass their input's shape on (they are not run).
            out = x if isinstance(module, Neuron) else _evaluate(node, modules, value)
            value[node] = out
            if not isinstance(out, torch.Tensor):  # x.size(0) and the like: a number for a later view
                continue
            pending = scale[arg]

            if isinstance(module, Neuron):
                name = fresh(layer)
                shape = tuple(out.shape[1:])
                theta = module.threshold.detach().to(dtype)
                if theta.dim() == 1 and len(shape) > 1:
                    theta = theta.view(-1, *([1] * (len(shape) - 1)))
                theta = theta.expand(shape).contiguous()
                nodes[name] = nir.IF(r=np.ones(shape, dtype=np.float32), v_threshold=_array(theta),
                                     v_reset=np.zeros(shape, dtype=np.float32),
                                     metadata={"reset": RESET, "spike_condition": SPIKE_CONDITION,
                                               "snnx_neuron": type(module).__name__})
                edges.append((scaled_source(arg, layer), name))
                source[node], scale[node] = name, theta
                if not fold:
                    source[node], scale[node] = scaled_source(node, layer), None
            elif isinstance(module, (nn.Identity, nn.Dropout)):
                source[node], scale[node] = source[arg], pending
            elif isinstance(module, nn.Conv2d):
                if module.padding_mode != "zeros":
                    raise ConfigError(f"layer {layer}: a conv with padding_mode={module.padding_mode!r} cannot be "
                                      "written as NIR (its Conv2d pads with zeros).", key=key,
                                      fix="Use padding_mode='zeros'.")
                weight = module.weight.detach().to(dtype)
                if pending is not None:
                    # θ of input channel c multiplies W[o, c - group offset] (one rounding per weight).
                    per_channel = _per_channel(pending, layer)
                    groups, c_in = module.groups, weight.shape[1]
                    index = torch.arange(weight.shape[0]) // (weight.shape[0] // groups) * c_in
                    theta_in = per_channel[index[:, None] + torch.arange(c_in)[None, :]]
                    weight = weight * theta_in[:, :, None, None]
                bias = module.bias.detach().to(dtype) if module.bias is not None else torch.zeros(weight.shape[0])
                name = fresh(layer)
                padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
                nodes[name] = nir.Conv2d(input_shape=tuple(int(s) for s in x.shape[2:]), weight=_array(weight),
                                         stride=tuple(module.stride), padding=padding,
                                         dilation=tuple(module.dilation), groups=module.groups, bias=_array(bias))
                edges.append((source[arg], name))
                source[node], scale[node] = name, None
            elif isinstance(module, nn.Linear):
                weight = module.weight.detach().to(dtype)
                if pending is not None:
                    weight = weight * pending.reshape(1, -1)
                name = fresh(layer)
                nodes[name] = nir.Affine(weight=_array(weight), bias=_array(module.bias)) if module.bias is not None \
                    else nir.Linear(weight=_array(weight))
                edges.append((source[arg], name))
                source[node], scale[node] = name, None
            elif isinstance(module, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
                if isinstance(module, nn.AdaptiveAvgPool2d):
                    (h, w), (oh, ow) = x.shape[2:], out.shape[2:]
                    if h % oh or w % ow:
                        raise ConfigError(f"layer {layer}: adaptive average pooling from {h}×{w} to {oh}×{ow} has "
                                          "windows of different sizes, which NIR's AvgPool2d cannot say.", key=key,
                                          fix="Use an input size the pooling's output divides.")
                    kernel, stride, padding, divisor = (h // oh, w // ow), (h // oh, w // ow), (0, 0), None
                else:
                    if module.ceil_mode or (module.padding and not module.count_include_pad):
                        raise ConfigError(f"layer {layer}: average pooling with ceil_mode or count_include_pad="
                                          "False cannot be written as NIR.", key=key,
                                          fix="Use nn.AvgPool2d's defaults (ceil_mode=False, count_include_pad=True).")
                    kernel = _pool_pair(module.kernel_size, "kernel_size", layer)
                    stride = _pool_pair(module.stride if module.stride is not None else module.kernel_size,
                                        "stride", layer)
                    padding = _pool_pair(module.padding, "padding", layer)
                    divisor = module.divisor_override
                name = fresh(layer)
                if divisor == 1:  # divisor 1: a sum over the window
                    nodes[name] = nir.SumPool2d(kernel_size=np.array(kernel), stride=np.array(stride),
                                                padding=np.array(padding))
                elif divisor is None:
                    nodes[name] = nir.AvgPool2d(kernel_size=np.array(kernel), stride=np.array(stride),
                                                padding=np.array(padding))
                else:
                    raise ConfigError(f"layer {layer}: average pooling with divisor_override={divisor} cannot be "
                                      "written as NIR (AvgPool2d divides by the window, SumPool2d by 1).", key=key,
                                      fix="Use plain average or sum pooling.")
                edges.append((source[arg], name))
                # A per-channel θ is constant over every window: it passes through the pooling.
                scale[node] = None if pending is None else \
                    _per_channel(pending, layer).view(-1, 1, 1).expand(out.shape[1:]).contiguous()
                source[node] = name
            elif _is_flatten(node, modules, x, out):
                name = fresh(layer if node.op == "call_module" else "flatten")
                nodes[name] = nir.Flatten(input_type={"input": np.array(list(x.shape[1:]))}, start_dim=0, end_dim=-1)
                edges.append((source[arg], name))
                source[node], scale[node] = name, None if pending is None else pending.reshape(-1)
            else:
                what = type(module).__name__ if module is not None else \
                    f"{node.op} {getattr(node.target, '__name__', node.target)}"
                raise ConfigError(f"layer {layer} ({what}) has no NIR node in this export.", key=key,
                                  fix="Export a network of Conv2d, Linear, average/sum pooling, flatten and IF "
                                      "neurons.")

    approximations = [f for f in features if f.instead is not None] if lossy else []
    meta = {**METADATA, **(metadata or {}),
            "lossy": "; ".join(f"{f.layer}: {f.instead}" for f in approximations) or "none"}
    if not fold:
        meta["threshold_folding"] = "none: a Scale node by theta after every IF node"
    try:
        graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=True)
    except Exception as exc:  # the nir package's own shape check: a bug here, said plainly
        raise ConfigError(f"the NIR graph made of this network does not type-check in nir "
                          f"({type(exc).__name__}: {str(exc)[:200]}).", key=key,
                          fix="Report it with the network's layers (snnx export debug=true shows where).") from exc
    return NIRExport(graph=graph, approximations=approximations)


def write(graph, path: str | Path, *, key: str = "export.path") -> Path:
    """Write ``graph`` to ``path`` (NIR's HDF5 file, conventionally ``.nir``)."""
    nir = require_nir()
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{str(path)!r} is a folder.", key=key, fix="Give a file path, e.g. snn.nir.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    nir.write(tmp, graph)
    tmp.replace(path)  # readers never see half a file
    return path


def read(path: str | Path):
    """The NIR graph at ``path``."""
    return require_nir().read(str(path))


# -- running a NIR graph ----------------------------------------------------------------------------------
def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class GraphRunner:
    """A NIR graph (as read from a file) run in discrete time, for measuring what a file holds.

    Node semantics are NIR's (nir/ir/*.py), dt = 1, no delay on an edge, several edges into a node summed. An IF
    node follows its metadata where it has one (``reset`` = subtract, ``spike_condition`` ≥: snnx's graphs), else
    NIR's spec (reset to v_reset, fire on v > v_threshold). The input is fed at every step; the Output node is
    summed over the steps.
    """

    SUPPORTED = ("Input", "Output", "Affine", "Linear", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "Scale", "IF")

    def __init__(self, graph, *, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.graph = graph
        kinds = {name: type(n).__name__ for name, n in graph.nodes.items()}
        odd = sorted({k for k in kinds.values() if k not in self.SUPPORTED})
        if odd:
            raise ConfigError(f"the NIR graph has nodes this reader does not run: {', '.join(odd)}.", key="graph",
                              fix=f"Read graphs made of {', '.join(self.SUPPORTED)}.")
        self.preds: dict[str, list[str]] = {name: [] for name in graph.nodes}
        for a, b in graph.edges:
            self.preds[b].append(a)
        self.order = self._topological(graph)
        self.inputs = [n for n, k in kinds.items() if k == "Input"]
        self.outputs = [n for n, k in kinds.items() if k == "Output"]
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            raise ConfigError("the NIR graph must have one Input and one Output node.", key="graph",
                              fix="Read a graph with one input and one output.")
        self.params = {name: self._tensors(node) for name, node in graph.nodes.items()}
        self.v: dict[str, torch.Tensor] = {}

    def _topological(self, graph) -> list[str]:
        indegree = {name: len(p) for name, p in self.preds.items()}
        ready = [n for n, d in indegree.items() if d == 0]
        order = []
        succ: dict[str, list[str]] = {name: [] for name in graph.nodes}
        for a, b in graph.edges:
            succ[a].append(b)
        while ready:
            n = ready.pop(0)
            order.append(n)
            for m in succ[n]:
                indegree[m] -= 1
                if indegree[m] == 0:
                    ready.append(m)
        if len(order) != len(graph.nodes):
            raise ConfigError("the NIR graph has a cycle (a recurrent connection), which this reader does not run.",
                              key="graph", fix="Read a feed-forward graph.")
        return order

    def _tensors(self, node) -> dict:
        def t(a):
            return torch.as_tensor(np.asarray(a), dtype=torch.float32, device=self.device)

        kind = type(node).__name__
        if kind in ("Affine", "Linear"):
            return {"weight": t(node.weight), "bias": t(node.bias) if kind == "Affine" else None}
        if kind == "Conv2d":
            return {"weight": t(node.weight), "bias": t(node.bias)}
        if kind == "Scale":
            return {"scale": t(node.scale)}
        if kind == "IF":
            meta = {k: _text(v) for k, v in (node.metadata or {}).items()}
            return {"r": t(node.r), "ones": bool(np.all(np.asarray(node.r) == 1)), "theta": t(node.v_threshold),
                    "v_reset": t(node.v_reset), "subtract": meta.get("reset") == RESET,
                    "ge": meta.get("spike_condition") == SPIKE_CONDITION}
        return {}

    def reset(self) -> None:
        self.v = {}

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One time step on a batch ``x`` [B, …]; returns the Output node's value."""
        values: dict[str, torch.Tensor] = {}
        for name in self.order:
            node = self.graph.nodes[name]
            kind = type(node).__name__
            if kind == "Input":
                values[name] = x
                continue
            ins = [values[p] for p in self.preds[name]]
            h = ins[0]
            for other in ins[1:]:
                h = h + other
            p = self.params[name]
            if kind in ("Affine", "Linear"):
                h = F.linear(h, p["weight"], p["bias"])
            elif kind == "Conv2d":
                padding = node.padding if isinstance(node.padding, str) else tuple(int(v) for v in node.padding)
                h = F.conv2d(h, p["weight"], p["bias"], stride=tuple(int(v) for v in np.atleast_1d(node.stride)),
                             padding=padding, dilation=tuple(int(v) for v in np.atleast_1d(node.dilation)),
                             groups=int(node.groups))
            elif kind in ("AvgPool2d", "SumPool2d"):
                h = F.avg_pool2d(h, tuple(int(v) for v in np.atleast_1d(node.kernel_size)),
                                 tuple(int(v) for v in np.atleast_1d(node.stride)),
                                 tuple(int(v) for v in np.atleast_1d(node.padding)),
                                 divisor_override=1 if kind == "SumPool2d" else None)
            elif kind == "Flatten":
                start = int(node.start_dim) + 1 if int(node.start_dim) >= 0 else int(node.start_dim)
                end = int(node.end_dim) + 1 if int(node.end_dim) >= 0 else int(node.end_dim)
                h = h.flatten(start, end)
            elif kind == "Scale":
                h = h * p["scale"]
            elif kind == "IF":
                v = self.v.get(name)
                v = torch.zeros_like(h) if v is None else v
                # v + r·I; with r = 1 (snnx's graphs) the product is skipped: the same bits as snnx's v + z.
                v = v + (h if p["ones"] else p["r"] * h)
                theta = p["theta"]
                spikes = (v >= theta if p["ge"] else v > theta).to(v.dtype)
                v = v - theta * spikes if p["subtract"] else torch.where(spikes.bool(), p["v_reset"], v)
                self.v[name] = v
                h = spikes
            values[name] = h
        self.values = values  # every node's value at this step (for inspecting a run)
        return values[self.outputs[0]]

    @torch.no_grad()
    def run(self, images: torch.Tensor, steps: int) -> torch.Tensor:
        """The Output node's value summed over each number of steps: [steps, B, …] (cumulative)."""
        self.reset()
        images = images.to(self.device, torch.float32)
        total, rows = None, []
        for _ in range(steps):
            y = self.step(images)
            total = y if total is None else total + y
            rows.append(total)
        return torch.stack(rows)


@torch.no_grad()
def accuracy(graph, batches: Iterable, time_steps: Sequence[int], *, device: torch.device | str = "cpu") -> dict:
    """T → accuracy % of ``graph`` (run by :class:`GraphRunner`) on labelled ``batches`` of (images, labels)."""
    runner = GraphRunner(graph, device=device)
    steps = max(time_steps)
    correct = {T: 0 for T in time_steps}
    total = 0
    for images, labels in batches:
        out = runner.run(images, steps)
        labels = labels.to(out.device)
        for T in time_steps:
            correct[T] += int((out[T - 1].argmax(-1) == labels).sum())
        total += labels.numel()
    return {T: 100.0 * correct[T] / max(total, 1) for T in time_steps}


def metadata_for(conversion) -> dict:
    """Graph metadata from an SNN's recorded conversion (method, dataset normalisation), when there is one."""
    if conversion is None:
        return {}
    out = {"snnx_method": str(conversion.label)}
    config = conversion.config or {}
    dataset = config.get("dataset") or {}
    if dataset.get("name"):
        out["dataset"] = str(dataset["name"])
    return out


def input_shape_of(conversion) -> tuple[int, ...] | None:
    """[C, H, W] of the images a snnx config's dataset gives, or None without one."""
    config = getattr(conversion, "config", None) or {}
    dataset = config.get("dataset") or {}
    if not dataset.get("name"):
        return None
    # the dataset registry is read only when a shape must come from it (an SNN of one's own model has none)
    from snnx.data import dataset_info

    info = dataset_info(dataset["name"], dataset.get("crop"))
    return (info.in_channels, info.image_size, info.image_size)


__all__ = ["Feature", "GraphRunner", "INSTALL", "LossyExportWarning", "METADATA", "NIRExport", "accuracy",
           "input_shape_of", "metadata_for", "read", "require_nir", "to_nir", "unsupported_features", "write"]

