"""Building blocks shared by the model families.

Layers are initialised where they are created (kaiming-normal convs, BN
weight 1 / bias 0, PyTorch-default Linear), so modules returned by the
activation factory are never re-initialised by a sweep over the model;
``model.init=denggu`` re-draws the conv weights only (:func:`init_denggu`).

Dropout follows Deng & Gu 2021, App. A.1: "dropout layer that p = 0.2
between convolutional layers and p = 0.5 between fully connected layers",
read literally: a conv dropout after the activation of a conv whose output is
the next conv's input (none in front of a pooling, as in the VGG/ResNet of
Rathi et al. 2019 that the paper uses, and none on a residual block's output,
which is also the next block's shortcut), an FC dropout after the activation
of a Linear whose output is the next Linear's input, and none where the conv
features meet the first Linear (that is between neither).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

from snnx.errors import ConfigError

ActFactory = Callable[[int], nn.Module]


def scaled(channels: int, width: float) -> int:
    """``channels`` scaled by ``width``: ``max(1, round(channels * width))``."""
    return max(1, int(round(channels * width)))


def conv2d(in_ch: int, out_ch: int, kernel_size: int, *, stride: int = 1, padding: int = 0,
           groups: int = 1, bias: bool = True) -> nn.Conv2d:
    conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                     groups=groups, bias=bias)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def batch_norm2d(channels: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels)
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)
    return bn


def conv_bn(in_ch: int, out_ch: int, kernel_size: int, *, stride: int = 1, padding: int = 0,
            groups: int = 1, batch_norm: bool) -> tuple[nn.Conv2d, nn.Module]:
    """A conv (bias only without BN) and its BN, or ``nn.Identity`` when BN is off."""
    conv = conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                  groups=groups, bias=not batch_norm)
    bn = batch_norm2d(out_ch) if batch_norm else nn.Identity()
    return conv, bn


def dropout_or_identity(p: float) -> nn.Module:
    """``nn.Dropout(p)``, or ``nn.Identity`` for p = 0 where a slot must keep a Sequential's numbering."""
    return nn.Dropout(p) if p > 0 else nn.Identity()


class ConvBNAct(nn.Sequential):
    """conv → BatchNorm (optional) → ``act_factory(out_ch)`` → Dropout (only for ``dropout`` > 0).

    Children are named ``conv``, ``bn`` (absent without BN), ``act`` and ``drop`` (absent
    without dropout), so the dropout never shifts a checkpoint key.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, *, stride: int = 1,
                 padding: int = 0, groups: int = 1, batch_norm: bool,
                 act_factory: ActFactory, dropout: float = 0.0):
        super().__init__()
        self.conv = conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                           groups=groups, bias=not batch_norm)
        if batch_norm:
            self.bn = batch_norm2d(out_ch)
        self.act = act_factory(out_ch)
        if dropout > 0:
            self.drop = nn.Dropout(dropout)


def conv_stack(cfg: Sequence[int | str], *, in_channels: int, image_size: int, width: float, batch_norm: bool,
               act_factory: ActFactory, pool_layer: Callable[[int], nn.Module],
               dropout: float = 0.0) -> tuple[nn.Sequential, int, int]:
    """The VGG-style feature stack: ``(features, channels, side)`` for a config of conv widths and "P"s.

    An int is a 3×3 (padding 1) :class:`ConvBNAct` with ``scaled(item, width)`` output channels; "P" is
    ``pool_layer(channels)`` (a 2×2, stride-2 downsampling) and halves the side (floor). Modules are numbered
    in ``cfg`` order (``features.<i>``), so checkpoints keep their keys. A conv directly followed by another
    conv gets the between-conv ``dropout`` after its activation (module docstring).
    """
    layers: list[nn.Module] = []
    channels, side = in_channels, image_size
    for i, item in enumerate(cfg):
        if item == "P":
            layers.append(pool_layer(channels))
            side //= 2
        else:
            out = scaled(item, width)
            feeds_conv = i + 1 < len(cfg) and cfg[i + 1] != "P"
            layers.append(ConvBNAct(channels, out, 3, padding=1, batch_norm=batch_norm, act_factory=act_factory,
                                    dropout=dropout if feeds_conv else 0.0))
            channels = out
    return nn.Sequential(*layers), channels, side


def pool2d(pool: str, kernel_size: int, stride: int | None = None,
           padding: int = 0) -> nn.Module:
    """A local pooling module: ``nn.AvgPool2d`` for "avg", ``nn.MaxPool2d`` for "max".

    The converter swaps MaxPool2d for AvgPool2d with the same geometry.
    """
    if pool == "avg":
        return nn.AvgPool2d(kernel_size, stride=stride, padding=padding)
    if pool == "max":
        return nn.MaxPool2d(kernel_size, stride=stride, padding=padding)
    if pool == "conv":
        raise ConfigError("pooling by a strided conv is only built into model=vgg11_allint and model=lenet_allint.",
                          key="model.pool",
                          fix="Use model.pool=avg (or max) for this model.")
    raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")


def mlp_head(in_features: int, hidden: list[int], num_classes: int, *,
             act_factory: ActFactory, dropout: float) -> nn.Sequential:
    """[slot → Linear → act] per hidden layer, then slot → Linear (no activation).

    ``dropout`` is the between-FC probability: every slot after a hidden act is a Dropout
    (Identity at p = 0). The first slot, where the conv features enter, is always an Identity
    (module docstring); it keeps the numbering (``classifier.1`` is the first Linear), so
    checkpoints keep their keys. The final Linear's output is the logits; in the SNN it
    accumulates over time.
    """
    layers: list[nn.Module] = []
    features = in_features
    for i, h in enumerate(hidden):
        layers += [nn.Identity() if i == 0 else dropout_or_identity(dropout), nn.Linear(features, h), act_factory(h)]
        features = h
    layers += [dropout_or_identity(dropout) if hidden else nn.Identity(), nn.Linear(features, num_classes)]
    return nn.Sequential(*layers)


class Voting(nn.Module):
    """The mean of each class's group of ``votes`` consecutive outputs: [B, C·votes] → [B, C].

    The "Voting" output layer of CIFARNet (Wu et al. 2019, as used by Deng & Gu 2021,
    App. A.1) is a Linear with ``votes`` neurons per class followed by this average. It is
    linear, so in the SNN the average of the accumulated outputs is the accumulated average.
    """

    def __init__(self, votes: int):
        super().__init__()
        self.votes = votes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (-1, self.votes)).mean(dim=2)

    def extra_repr(self) -> str:
        return f"votes={self.votes}"


# Blocks list the attribute names of their residual-branch convs here (read by init_denggu).
RESIDUAL_CONVS_ATTR = "residual_convs"


def denggu_std(conv: nn.Conv2d, *, residual: bool) -> float:
    """Deng & Gu 2021, App. A.1 (after Sengupta et al. 2018): a conv with kernel size k and n output
    channels is drawn from N(0, σ²) with σ = √(2/(k²n)) for a non-residual conv and σ = √2/(k²n)
    for a residual conv, as printed."""
    k2n = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels
    return math.sqrt(2.0) / k2n if residual else math.sqrt(2.0 / k2n)


def init_denggu(model: nn.Module) -> nn.Module:
    """Re-draw every conv weight of ``model`` by :func:`denggu_std`; biases stay zero. In place.

    "Residual conv" is read as a conv on a residual block's residual branch (the convs of F(x) in
    y = act(F(x) + shortcut(x)); the branch is named ``residual`` in Rathi et al. 2019's ResNet-20
    that the paper uses); stems, pre-processing convs, 1×1 projection shortcuts and every conv of a
    plain net are non-residual. The paper states no rule for Linear layers, so they keep PyTorch's
    default (ours). The other reading of the residual σ, a typo for √(2/(k²n)) (what the released
    code of Rathi et al. and Deng & Gu draws for every conv), is ``model.init=default``.
    """
    residual: set[int] = set()
    for module in model.modules():
        for name in getattr(module, RESIDUAL_CONVS_ATTR, ()):
            residual.add(id(getattr(module, name)))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.normal_(0.0, denggu_std(module, residual=id(module) in residual))
                if module.bias is not None:
                    module.bias.zero_()
    return model


def normalise_hidden_linears(model: nn.Module) -> nn.Module:
    """Give every hidden Linear (all but the last) a BatchNorm1d, its bias dropped, as the convs have.

    Ternary weights carry no scale (Zou et al. 2024, Eq. 8): a ±1 layer's output grows with its
    fan-in, and only a BatchNorm after it brings that back to the quantiser's range (a wide FC
    layer without one trains to levels far above it, which need many time steps to spike out,
    or does not train; README, "Training"). In place; returns ``model``.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    hidden = {id(m) for m in linears[:-1]}
    for parent in list(model.modules()):
        if isinstance(parent, nn.Sequential) and len(parent) == 2 and isinstance(parent[0], nn.Linear) \
                and isinstance(parent[1], nn.BatchNorm1d):
            hidden.discard(id(parent[0]))  # built with its BN already (model=lenet_allint)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if id(child) in hidden:
                layer = nn.Linear(child.in_features, child.out_features, bias=False)
                layer.weight = child.weight
                setattr(parent, name, nn.Sequential(layer, nn.BatchNorm1d(child.out_features)))
    return model
