"""Building blocks shared by the model families.

Layers are initialised where they are created (kaiming-normal convs, BN
weight 1 / bias 0, PyTorch-default Linear), so modules returned by the
activation factory are never re-initialised by a sweep over the model.
"""

from __future__ import annotations

from typing import Callable, Sequence

from torch import nn

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


class ConvBNAct(nn.Sequential):
    """conv → BatchNorm (optional) → ``act_factory(out_ch)``.

    Children are named ``conv``, ``bn`` (absent without BN) and ``act``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, *, stride: int = 1,
                 padding: int = 0, groups: int = 1, batch_norm: bool,
                 act_factory: ActFactory):
        super().__init__()
        self.conv = conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                           groups=groups, bias=not batch_norm)
        if batch_norm:
            self.bn = batch_norm2d(out_ch)
        self.act = act_factory(out_ch)


def conv_stack(cfg: Sequence[int | str], *, in_channels: int, image_size: int, width: float, batch_norm: bool,
               act_factory: ActFactory, pool_layer: Callable[[int], nn.Module]) -> tuple[nn.Sequential, int, int]:
    """The VGG-style feature stack: ``(features, channels, side)`` for a config of conv widths and "P"s.

    An int is a 3×3 (padding 1) :class:`ConvBNAct` with ``scaled(item, width)`` output channels; "P" is
    ``pool_layer(channels)`` (a 2×2, stride-2 downsampling) and halves the side (floor). Modules are numbered
    in ``cfg`` order (``features.<i>``), so checkpoints keep their keys.
    """
    layers: list[nn.Module] = []
    channels, side = in_channels, image_size
    for item in cfg:
        if item == "P":
            layers.append(pool_layer(channels))
            side //= 2
        else:
            out = scaled(item, width)
            layers.append(ConvBNAct(channels, out, 3, padding=1, batch_norm=batch_norm, act_factory=act_factory))
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
        from snnx.errors import ConfigError

        raise ConfigError("pooling by a strided conv is only built into model=vgg11_allint.", key="model.pool",
                          fix="Use model.pool=avg (or max) for this model.")
    raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")


def mlp_head(in_features: int, hidden: list[int], num_classes: int, *,
             act_factory: ActFactory, dropout: float) -> nn.Sequential:
    """[Dropout → Linear → act] per hidden layer, then Dropout → Linear (no activation).

    The final Linear's output is the logits; in the SNN it accumulates over time.
    """
    layers: list[nn.Module] = []
    features = in_features
    for h in hidden:
        layers += [nn.Dropout(dropout), nn.Linear(features, h), act_factory(h)]
        features = h
    layers += [nn.Dropout(dropout), nn.Linear(features, num_classes)]
    return nn.Sequential(*layers)
