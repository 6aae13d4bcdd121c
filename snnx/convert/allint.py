"""``convert=allint``: the all-integer SNN of Zou et al. 2024 from an ``act=quant`` ANN.

What the converter does to the traced ANN (Zou et al. 2024, §2.2, §3):

* Ternary weights: a ``train.weight_quant=ternary`` parametrization is baked
  in, so the SNN uses the ternarized values {−1, 0, +1}.
* First activation site → :class:`~snnx.neurons.ScatterGatherEncoder`: the
  first (full-precision) conv and its BN stay as in the ANN, run once per
  image (the engine's time-invariant prefix); the encoder turns y into the
  ANN's level n = round(2^k₁·clip(y, 0, B)) and sends one unit spike on each of
  the first n steps. This layer is the only real-valued (MAC) layer. Its level
  k₁ is the first quant site's (``act.k_first``: 0 by default, so at most B = 4
  input steps whatever k, §3.1); one of its spikes is 2^−k₁ of activation.
* Every other quant site → :class:`~snnx.neurons.SignedDualThresholdNeuron`.
  Its conv/linear must feed it directly, optionally through a BatchNorm. The
  BN is **not** folded: μ, σ, γ, β (and the layer's bias, as μ − b) become
  θ⁺₀ and δ; the synaptic layer keeps only its (ternary) weights, no bias.
  A channel with γ < 0 has its weights negated (still ternary) and μ − b
  negated, so that δ = σ/|γ| > 0; γ = 0 is an error.
* Spikes are unit ±1 (one spike = 2^−k of activation), so weights are used
  unchanged and a neuron's v sums to 2^k_in·z, k_in the level of its input
  spikes (k₁ for the layer after the encoder, k after a hidden layer); its
  thresholds are in those units (see ``snnx.neurons.signed``).
* Readout (a conv/linear whose output reaches the network output without a
  quant site): full-precision weights; its bias, scaled by 2^k, is added
  **once** (on the first step of a batch) instead of at every step, so the
  accumulated output equals 2^k_in × the ANN's logits once every spike has
  arrived, and stops changing after that (this is what makes a "final time
  step" exist). The first step is read off the encoder's step counter (the
  engine resets neurons per batch, not plain layers).
* AvgPool2d and AdaptiveAvgPool2d stay (float mode); MaxPool is handled by
  ``convert.maxpool``.

Integer mode (``convert.integer=true``): weights × ``int_scale`` and rounded
(ternary weights exactly ±int_scale); AvgPool2d → :class:`SumPool2d` (window
sum, no division), so a layer's input carries a gain g = product of the pool
areas since the last neuron; each neuron gets θ⁺₀ and δ × int_scale·g,
rounded (θ⁻₀ = θ⁺₀ − δ after rounding), the readout bias
round(2^k·b·int_scale·g). A global AdaptiveAvgPool2d(1) in front of the
readout (MobileNet) → :class:`GlobalSumPool2d`, whose area H·W is known only
when a map arrives: the readout multiplies its once-added integer bias by it
(a neuron behind a global pooling has no integer version). Everything
downstream of the encoder is int64: synaptic layers run exact integer
multiply-accumulates (:func:`int_conv2d`: strided patches + int64
``tensordot``, a per-channel window sum for depthwise convs; ``F.conv2d`` has
no int64 CPU kernel), neurons only add, multiply by counts, compare and take maxima. The
encoder's level computation is the full-precision first layer's quantiser
(float, as in float mode), and its output spikes are int64.
"""

from __future__ import annotations

import copy
import operator
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from snnx import console
from snnx.activations import Quant
from snnx.convert.graph import bake_parametrizations, is_activation, replace_maxpool, set_submodule, trace
from snnx.errors import ConfigError
from snnx.neurons import Neuron
from snnx.neurons.signed import ScatterGatherEncoder, SignedDualThresholdNeuron, dual_thresholds

_BN = nn.modules.batchnorm._BatchNorm


# -- integer arithmetic ---------------------------------------------------------
def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _patches(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
             dilation: tuple[int, int] = (1, 1)) -> torch.Tensor:
    """[N, C, Ho, Wo, kh, kw] strided view of the (zero-padded) input windows."""
    ph, pw = padding
    if ph or pw:
        x = F.pad(x, (pw, pw, ph, ph))
    x = x.contiguous()
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    ho = (h - dh * (kh - 1) - 1) // sh + 1
    wo = (w - dw * (kw - 1) - 1) // sw + 1
    s_n, s_c, s_h, s_w = x.stride()
    return x.as_strided((n, c, ho, wo, kh, kw), (s_n, s_c, s_h * sh, s_w * sw, s_h * dh, s_w * dw))


def int_conv2d(x: torch.Tensor, weight: torch.Tensor, stride=1, padding=0, dilation=1, groups: int = 1) -> torch.Tensor:
    """Exact integer 2-d convolution (zero padding) on int64 tensors.

    out[n, o, i, j] = Σ_{c, a, b} x_pad[n, c, i·s + a·d, j·s + b·d] · w[o, c, a, b], computed as an int64
    matrix product of the strided input windows with the weights: integer
    multiply-accumulate only, so the result is exact (barring int64 overflow).
    """
    if x.is_floating_point() or weight.is_floating_point():
        raise TypeError("int_conv2d works on integer tensors")
    kernel = tuple(weight.shape[2:])
    patches = _patches(x, kernel, _pair(stride), _pair(padding), _pair(dilation))
    if groups == 1:
        out = torch.tensordot(patches, weight, dims=([1, 4, 5], [1, 2, 3]))
    elif groups == x.shape[1] == weight.shape[0]:
        # Depthwise (MobileNet): one filter per channel, an elementwise product and a window sum per channel
        # instead of one product per group.
        return (patches * weight.view(1, groups, 1, 1, *kernel)).sum(dim=(-1, -2))
    else:
        cin, cout = x.shape[1] // groups, weight.shape[0] // groups
        out = torch.cat([torch.tensordot(patches[:, g * cin:(g + 1) * cin], weight[g * cout:(g + 1) * cout],
                                         dims=([1, 4, 5], [1, 2, 3])) for g in range(groups)], dim=-1)
    return out.permute(0, 3, 1, 2).contiguous()


class SumPool2d(nn.Module):
    """Window sum (average pooling without the division): the integer-mode AvgPool2d."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride if stride is not None else kernel_size)
        self.padding = _pair(padding)

    @property
    def area(self) -> int:
        return self.kernel_size[0] * self.kernel_size[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _patches(x, self.kernel_size, self.stride, self.padding).sum(dim=(-1, -2))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class GlobalSumPool2d(nn.Module):
    """The integer-mode AdaptiveAvgPool2d(1): the sum over the whole map, keeping 1×1 spatial dims.

    Its gain is the map's area, which the converter cannot know (it never sees an image): ``area``
    holds the last input's H·W, read by the readout that scales its once-added bias by it.
    """

    def __init__(self):
        super().__init__()
        self.area: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.area = int(x.shape[-2] * x.shape[-1])
        return x.sum(dim=(-2, -1), keepdim=True)


# -- synaptic layers ----------------------------------------------------------------
class _Synapse:
    """Shared by SpikeConv2d / SpikeLinear: weight buffer (float or int64) and the once-added bias."""

    def _init_synapse(self, weight: torch.Tensor, bias_once: torch.Tensor | None, clock: Neuron | None,
                      area_of: GlobalSumPool2d | None = None):
        del self.weight  # the nn parameter; a buffer keeps int64 weights out of autograd and .to(dtype)
        self.register_buffer("weight", weight.detach().clone())
        self.register_buffer("bias_once", None if bias_once is None else bias_once.detach().clone())
        if bias_once is not None and clock is None:
            raise ValueError("a once-added bias needs a clock neuron")
        object.__setattr__(self, "_clock", clock)  # not a submodule: the neuron lives elsewhere in the graph
        object.__setattr__(self, "_area_of", area_of)  # the global sum pool whose area scales the bias

    @property
    def integer(self) -> bool:
        return not self.weight.is_floating_point()

    def _check_input(self, x: torch.Tensor) -> None:
        if self.integer and x.is_floating_point():
            raise TypeError(f"{type(self).__name__} in integer mode got a {x.dtype} input")

    def _add_bias_once(self, out: torch.Tensor) -> torch.Tensor:
        if self.bias_once is None:
            return out
        steps = self._clock.time_steps
        if self._clock.t - steps != 0:  # not the chunk that holds a batch's first step
            return out
        bias = self.bias_once.view(-1, *([1] * (out.dim() - 2)))
        if self._area_of is not None:
            bias = bias * self._area_of.area  # an integer times the pooled map's area: exact
        head = out.view(steps, -1, *out.shape[1:])
        head[0] += bias.to(out.dtype)
        return out


class SpikeConv2d(_Synapse, nn.Conv2d):
    """Bias-free conv fed by spikes; float (``F.conv2d``) or exact int64 (:func:`int_conv2d`)."""

    def __init__(self, conv: nn.Conv2d, weight: torch.Tensor, *, bias_once: torch.Tensor | None = None,
                 clock: Neuron | None = None, area_of: GlobalSumPool2d | None = None):
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str) and conv.padding != "valid":
            raise ConfigError(f"conv {conv} uses padding {conv.padding!r}/{conv.padding_mode}.", key="convert",
                              fix="convert=allint supports explicit zero padding only.")
        padding = 0 if isinstance(conv.padding, str) else conv.padding
        nn.Conv2d.__init__(self, conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                           padding=padding, dilation=conv.dilation, groups=conv.groups, bias=False, device="meta")
        self._init_synapse(weight, bias_once, clock, area_of)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if self.integer:
            out = int_conv2d(x, self.weight, self.stride, self.padding, self.dilation, self.groups)
        else:
            out = F.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation, self.groups)
        return self._add_bias_once(out)


class SpikeLinear(_Synapse, nn.Linear):
    """Bias-free linear layer fed by spikes; float or exact int64 matrix product."""

    def __init__(self, linear: nn.Linear, weight: torch.Tensor, *, bias_once: torch.Tensor | None = None,
                 clock: Neuron | None = None, area_of: GlobalSumPool2d | None = None):
        nn.Linear.__init__(self, linear.in_features, linear.out_features, bias=False, device="meta")
        self._init_synapse(weight, bias_once, clock, area_of)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        out = x @ self.weight.t() if self.integer else F.linear(x, self.weight)
        return self._add_bias_once(out)


# -- the converter ----------------------------------------------------------------------
def _is_module(node: fx.Node, modules: Mapping, kinds) -> bool:
    return isinstance(node, fx.Node) and node.op == "call_module" and isinstance(modules[node.target], kinds)


def _synapse_of(site: fx.Node, modules: Mapping) -> tuple[fx.Node, fx.Node | None]:
    prev, bn = site.args[0], None
    if _is_module(prev, modules, _BN):
        bn, prev = prev, prev.args[0]
    if not _is_module(prev, modules, (nn.Conv2d, nn.Linear)) or len(prev.users) != 1 or \
            (bn is not None and len(bn.users) != 1):
        raise ConfigError(f"activation site '{site.target}' is not fed directly by a conv/linear layer (+ BatchNorm).",
                          key="convert", fix="convert=allint needs conv/linear → [BN] → quant at every activation site.")
    return prev, bn


def _affine_of(layer: nn.Module, bn: nn.Module | None) -> tuple[torch.Tensor, ...]:
    """(μ − b, σ, γ, β) in float64 per output channel: y = γ(W·x − (μ − b))/σ + β."""
    out = layer.weight.shape[0]
    bias = layer.bias.detach().double() if layer.bias is not None else torch.zeros(out, dtype=torch.float64)
    if bn is None:
        ones = torch.ones(out, dtype=torch.float64)
        return -bias, ones, ones.clone(), torch.zeros(out, dtype=torch.float64)
    if bn.running_mean is None:
        raise ConfigError("a BatchNorm without running statistics cannot set thresholds.", key="model",
                          fix="Train with track_running_stats (the snnx models do).")
    sigma = torch.sqrt(bn.running_var.detach().double() + bn.eps)
    gamma = bn.weight.detach().double() if bn.affine else torch.ones(out, dtype=torch.float64)
    beta = bn.bias.detach().double() if bn.affine else torch.zeros(out, dtype=torch.float64)
    return bn.running_mean.detach().double() - bias, sigma, gamma, beta


def _downstream_of(gm: fx.GraphModule, roots: set[fx.Node]) -> set[fx.Node]:
    seen = set(roots)
    for node in gm.graph.nodes:
        if any(a in seen for a in node.all_input_nodes):
            seen.add(node)
    return seen


def _check_config(convert: Mapping) -> tuple[bool, int, bool]:
    integer = convert.get("integer", False)
    scale = convert.get("int_scale", 10000)
    fire_on_equal = convert.get("fire_on_equal", True)
    if not isinstance(integer, bool):
        raise ConfigError(f"must be true or false, got {integer!r}.", key="convert.integer", fix="Set convert.integer=true or false.")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ConfigError(f"must be an integer ≥ 1, got {scale!r}.", key="convert.int_scale", fix="Set convert.int_scale=10000.")
    if not isinstance(fire_on_equal, bool):
        raise ConfigError(f"must be true or false, got {fire_on_equal!r}.", key="convert.fire_on_equal",
                          fix="Set convert.fire_on_equal=true (paper, v ≥ θ⁺) or false (reference code, v > θ⁺).")
    return integer, scale, fire_on_equal


def _note_weight_rounding(plans: list, int_scale: int) -> None:
    """Say when integer mode rounds full-precision hidden weights, and by how much at worst.

    Ternary weights scale to exact integers, so only the thresholds are rounded and the
    integer simulation reproduces the float one. Full-precision weights rounded to
    1/int_scale move a neuron's input current by up to Σ|rounding error| per step: a
    neuron that close to a threshold can fire where the float neuron does not, so the log
    gives the worst bound as a fraction of the threshold step δ.
    """
    worst: tuple[str, float] | None = None
    for site, _layer_node, weight, _theta_plus0, delta in plans:
        scaled = weight.flatten(1) * int_scale
        error = (torch.round(scaled) - scaled).abs().sum(1) / int_scale  # per output channel, one unit spike per input
        if not bool(error.any()):
            continue
        ratio = float((error / delta).max())
        if worst is None or ratio > worst[1]:
            worst = (str(site.target), ratio)
    if worst is not None:
        console.log(f"convert.integer=true rounds full-precision hidden weights to 1/{int_scale}: a neuron's current "
                    f"can move by up to {worst[1]:.2g} of its threshold step δ per step (worst at '{worst[0]}'), so a "
                    f"prediction can differ from float mode's where a neuron sits that close to a threshold. Ternary "
                    f"weights (train.weight_quant=ternary, the paper's all-integer setting) scale exactly; a larger "
                    f"convert.int_scale shrinks the bound.")


def convert_allint(ann: nn.Module, *, convert: Mapping) -> tuple[fx.GraphModule, str]:
    """The all-integer SNN for an ``act=quant`` ANN, and the label for the ``method`` column."""
    integer, int_scale, fire_on_equal = _check_config(convert)
    model = copy.deepcopy(ann).eval()
    bake_parametrizations(model)
    gm = replace_maxpool(trace(model), convert.get("maxpool", "error"))
    modules = dict(gm.named_modules())
    for name, module in list(modules.items()):
        if isinstance(module, nn.Dropout):
            set_submodule(gm, name, nn.Identity())
    modules = dict(gm.named_modules())

    sites = [n for n in gm.graph.nodes if n.op == "call_module" and is_activation(modules[n.target])]
    if not sites:
        raise ConfigError("the ANN has no activation sites.", key="act", fix="convert=allint needs act=quant.")
    bad = [n.target for n in sites if not isinstance(modules[n.target], Quant)]
    if bad:
        raise ConfigError(f"convert=allint needs quant activations, found {type(modules[bad[0]]).__name__} at '{bad[0]}'.",
                          key="act", fix="Train the ANN with act=quant.")
    first = modules[sites[0].target]
    ks = {modules[n.target].k for n in sites[1:]} or {first.k}
    if len(ks) != 1:
        raise ConfigError(f"all hidden quant sites must share one level k, found {sorted(ks)}.", key="act.k",
                          fix="Use one act.k.")
    k = ks.pop()
    if any(modules[n.target].clip is not None for n in sites[1:]):
        raise ConfigError("only the first quant site may be clipped (the signed neuron has no upper clip).",
                          key="act.clip_first", fix="Use the snnx quant factory (clip on the first site only).")

    # First site: the scatter-and-gather encoder; its conv/BN stay full precision (the prefix).
    encoder = ScatterGatherEncoder(first.k, first.clip, integer=integer)
    set_submodule(gm, sites[0].target, encoder)
    spiking = _downstream_of(gm, {sites[0]})
    # The level of the spikes each node carries: first.k out of the encoder, k out of a hidden neuron.
    levels = _spike_levels(gm, {sites[0]: first.k, **{site: k for site in sites[1:]}})

    # Hidden sites: signed neurons with thresholds from the (unfolded) BN.
    plans = []  # (site node, synapse node, W float64, θ⁺₀, δ) — float64 master values
    for site in sites[1:]:
        layer_node, bn_node = _synapse_of(site, modules)
        if layer_node not in spiking:
            raise ConfigError(f"layer '{layer_node.target}' feeds '{site.target}' but is not fed by spikes.",
                              key="model", fix="convert=allint supports one real-valued input layer only.")
        layer = modules[layer_node.target]
        mu, sigma, gamma, beta = _affine_of(layer, modules[bn_node.target] if bn_node is not None else None)
        if bool((gamma == 0).any()):
            raise ConfigError(f"'{site.target}': a BatchNorm channel has γ = 0 (a constant output).", key="model",
                              fix="convert=allint cannot express constant channels; retrain or prune them.")
        weight = layer.weight.detach().double().clone()
        flip = gamma < 0
        weight[flip] = -weight[flip]
        mu = torch.where(flip, -mu, mu)
        theta_plus0, delta = dual_thresholds(k, mu, sigma, gamma.abs(), beta, k_in=levels[layer_node.args[0]])
        if bn_node is not None:
            bn_node.replace_all_uses_with(layer_node)
            gm.graph.erase_node(bn_node)
        plans.append((site, layer_node, weight, theta_plus0, delta))

    if integer:
        _note_weight_rounding(plans, int_scale)

    # Readouts: spike-fed conv/linear layers that feed no site.
    synapse_nodes = {p[1] for p in plans}
    readouts = []  # (node, W float64, bias float64)
    for node in list(gm.graph.nodes):
        if node in synapse_nodes or node not in spiking or not _is_module(node, modules, (nn.Conv2d, nn.Linear)):
            continue
        layer = modules[node.target]
        users = list(node.users)
        if len(users) == 1 and _is_module(users[0], modules, _BN):
            bn_node = users[0]
            fuse = fuse_conv_bn_eval if isinstance(layer, nn.Conv2d) else fuse_linear_bn_eval
            layer = fuse(copy.deepcopy(layer).eval(), modules[bn_node.target].eval())
            bn_node.replace_all_uses_with(node)
            gm.graph.erase_node(bn_node)
        bias = layer.bias.detach().double() if layer.bias is not None else \
            torch.zeros(layer.weight.shape[0], dtype=torch.float64)
        readouts.append((node, layer, layer.weight.detach().double().clone(), bias, levels[node.args[0]]))

    # Integer mode: the gain of every spike-fed tensor (product of window-sum areas since the last neuron).
    gains: dict[fx.Node, int] = {}
    global_pools: dict[fx.Node, GlobalSumPool2d] = {}
    if integer:
        gains, global_pools = _integer_gains(gm, modules, set(sites))
        behind = next((p[0] for p in plans if p[1].args[0] in global_pools), None)
        if behind is not None:
            raise ConfigError(f"'{behind.target}' is fed through a global average pooling, whose area integer mode "
                              "can only apply to the readout's bias.", key="convert.integer",
                              fix="Use convert.integer=false for this model.")

    def scale_of(node: fx.Node) -> float:
        return float(int_scale * gains[node.args[0]]) if integer else 1.0

    for site, layer_node, weight, theta_plus0, delta in plans:
        layer = modules[layer_node.target]
        if integer:
            s = scale_of(layer_node)
            synapse_w = torch.round(weight * int_scale).to(torch.int64)
            tp0 = torch.round(theta_plus0 * s).to(torch.int64)
            dl = torch.round(delta * s).to(torch.int64).clamp_min(1)
        else:
            synapse_w = weight.to(layer.weight.dtype)
            tp0, dl = theta_plus0, delta
        cls = SpikeConv2d if isinstance(layer, nn.Conv2d) else SpikeLinear
        set_submodule(gm, layer_node.target, cls(layer, synapse_w))
        set_submodule(gm, site.target, SignedDualThresholdNeuron(tp0, dl, fire_on_equal=fire_on_equal,
                                                                   unit=2.0 ** -k))

    for node, layer, weight, bias, k_in in readouts:
        scale_k = float(2 ** k_in)
        if integer:
            synapse_w = torch.round(weight * int_scale).to(torch.int64)
            bias_once = torch.round(bias * scale_k * scale_of(node)).to(torch.int64)
        else:
            synapse_w = weight.to(layer.weight.dtype)
            bias_once = (bias * scale_k).to(layer.weight.dtype)
        cls = SpikeConv2d if isinstance(layer, nn.Conv2d) else SpikeLinear
        set_submodule(gm, node.target, cls(layer, synapse_w, bias_once=bias_once, clock=encoder,
                                           area_of=global_pools.get(node.args[0])))

    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    hidden = [modules[p[1].target].weight for p in plans]
    ternary = bool(hidden) and all(bool(((w == 0) | (w.abs() == 1)).all()) for w in hidden)
    label = (f"allint k={k} {'int64 ×' + str(int_scale) if integer else 'float'} "
             f"{'ternary' if ternary else 'full-precision'} weights, +1 on v{'≥' if fire_on_equal else '>'}θ⁺, "
             f"scatter-gather input k={first.k}, readout bias once")
    return gm, label


def _spike_levels(gm: fx.GraphModule, sources: Mapping[fx.Node, int]) -> dict[fx.Node, int]:
    """The level k of the spikes every spike-fed node carries (one spike = 2^−k of activation).

    ``sources``: the neuron nodes and the level they emit. A node takes the level of the
    neurons upstream of it (up to the nearest neuron); two different levels meeting is an error.
    """
    levels: dict[fx.Node, int] = {}
    for node in gm.graph.nodes:
        if node in sources:
            levels[node] = sources[node]
            continue
        ins = {levels[a] for a in node.all_input_nodes if a in levels}
        if len(ins) > 1:
            raise ConfigError(f"'{node.name}' combines spikes of the input layer (act.k_first) and of hidden "
                              f"layers (act.k): levels {sorted(ins)}.", key="act.k_first",
                              fix="Set act.k_first=null (the input layer at act.k) for this model.")
        if ins:
            levels[node] = ins.pop()
    return levels


_SAME_GAIN_FUNCTIONS = {torch.flatten, torch.reshape, operator.add, torch.add, operator.getitem, torch.squeeze,
                        torch.unsqueeze}
_SAME_GAIN_METHODS = {"view", "reshape", "flatten", "size", "contiguous", "squeeze", "unsqueeze", "add"}


def _integer_gains(gm: fx.GraphModule, modules: Mapping,
                   neurons: set[fx.Node]) -> tuple[dict[fx.Node, int], dict[fx.Node, GlobalSumPool2d]]:
    """Replace AvgPool2d by SumPool2d (AdaptiveAvgPool2d(1) by GlobalSumPool2d) downstream of the encoder.

    Returns the static gain of every spike-fed node, and for the nodes behind a global sum pooling that
    pooling (its area is a further gain, known at run time). ``neurons``: the activation-site nodes
    (gain 1: they emit unit spikes).
    """
    gains: dict[fx.Node, int] = {}
    global_pools: dict[fx.Node, GlobalSumPool2d] = {}
    for node in gm.graph.nodes:
        if node in neurons:
            gains[node] = 1
            continue
        ins = {gains[a] for a in node.all_input_nodes if a in gains}
        if not ins or node.op == "output":
            continue
        if len(ins) > 1:
            raise ConfigError(f"'{node.name}' combines spike tensors of different scales {sorted(ins)}.",
                              key="convert.integer", fix="Integer mode supports average pooling only on single paths.")
        gain = ins.pop()
        pools = {global_pools[a] for a in node.all_input_nodes if a in global_pools}
        if pools:
            global_pools[node] = pools.pop()
        if node.op == "call_module":
            module = modules[node.target]
            if isinstance(module, nn.AdaptiveAvgPool2d):
                if module.output_size not in (1, (1, 1)) or node in global_pools:
                    raise ConfigError(f"AdaptiveAvgPool2d '{node.target}' is not a single global average pooling.",
                                      key="convert.integer", fix="Use convert.integer=false for this model.")
                pool = GlobalSumPool2d()
                set_submodule(gm, node.target, pool)
                global_pools[node] = pool
            elif isinstance(module, nn.AvgPool2d):
                if module.ceil_mode or (not module.count_include_pad and _pair(module.padding) != (0, 0)):
                    raise ConfigError(f"AvgPool2d '{node.target}' has windows of varying size.", key="convert.integer",
                                      fix="Use pooling without ceil_mode (and count_include_pad with padding).")
                pool = SumPool2d(module.kernel_size, module.stride, module.padding)
                area = module.divisor_override or pool.area
                if area != pool.area:
                    raise ConfigError(f"AvgPool2d '{node.target}' has divisor_override.", key="convert.integer",
                                      fix="Use plain average pooling.")
                set_submodule(gm, node.target, pool)
                gain *= pool.area
            elif not isinstance(module, (nn.Conv2d, nn.Linear, nn.Identity, nn.Flatten)):
                raise ConfigError(f"'{node.target}' ({type(module).__name__}) has no integer version.",
                                  key="convert.integer", fix="Use convert.integer=false for this model.")
        elif node.op == "call_function" and node.target not in _SAME_GAIN_FUNCTIONS or \
                node.op == "call_method" and node.target not in _SAME_GAIN_METHODS:
            raise ConfigError(f"'{node.name}' ({node.target}) has no integer version.", key="convert.integer",
                              fix="Use convert.integer=false for this model.")
        gains[node] = gain
    return gains, global_pools
