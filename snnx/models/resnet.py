"""ResNets: ResNet-18/34 (BasicBlock), ResNet-50/101 (Bottleneck), CIFAR ResNet-20,
and the ResNet-20 of Sengupta et al. 2018 / Rathi et al. 2019 (``resnet20_sengupta``).

Every block puts its last activation after the residual addition::

    out = act(bn2(conv2(drop(act(bn1(conv1(x)))))) + shortcut(x))

with ``shortcut`` the identity, or a 1×1 conv (+ BN) where the shape changes,
and ``drop`` the between-conv ``model.dropout.conv`` (absent at p = 0; never on
a block's output, which is also the next block's shortcut). The He et al.
networks end with ``nn.AdaptiveAvgPool2d(1)`` → flatten → Linear (no
activation); their one Linear leaves no place for ``model.dropout.fc``.

Stems:

* ResNet-18/34/50/101 on images smaller than 128 px (CIFAR, MNIST, digits,
  64 px Tiny-ImageNet): 3×3 stride-1 conv, no pooling, as in conversion
  papers. Three stride-2 stages follow, so ``min_image_size`` = 8.
* The same models on images of 128 px or more (ImageNet): 7×7 stride-2 conv
  → BN → act → 3×3 stride-2 pooling (avg or max, per ``pool``), as in He et
  al. 2016 / torchvision.
* ResNet-20 (He et al. 2016, CIFAR): always a 3×3 stem with 16 channels,
  three stages of 16/32/64 channels × 3 BasicBlocks; ``min_image_size`` = 4.

Downsampling is done by the stride of the first block's 3×3 conv (ResNet
v1.5 for Bottleneck), with 1×1 stride-2 conv + BN shortcuts (option B).

``resnet20_sengupta`` (Deng & Gu 2021, App. A.1): "We use the VGG-16 and
ResNet-20 model provided by Rathi et al. (2019) on the CIFAR dataset ...
ResNet-20 is ResNet-18 adding two convolutional layers for pre-processing in
front, and an activation function is added after the basic blocks (Sengupta
et al., 2018)", and "All the pooling layers use average pooling". Built as
Rathi et al. describe it: three 3×3 pre-processing convs of 64 channels (the
ResNet-18 stem conv plus the two added), each followed by an activation (the
between-conv dropout after the first two), then a 2×2 pooling; ResNet-18's
four stages of two BasicBlocks (64-128-256-512 channels, strides 1-2-2-2,
1×1 projection shortcuts) with the activation after each addition; then the
last feature map flattened straight into the output Linear (512·2·2 inputs
at 32×32: no global pooling). 3 + 16 convs + 1 Linear = 20 weight layers.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from snnx.models.layers import ActFactory, ConvBNAct, conv_bn, pool2d, scaled

IMAGENET_STEM_MIN_SIZE = 128


def _shortcut(in_ch: int, out_ch: int, stride: int, batch_norm: bool) -> nn.Module:
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    conv, bn = conv_bn(in_ch, out_ch, 1, stride=stride, batch_norm=batch_norm)
    return nn.Sequential(conv, bn) if batch_norm else nn.Sequential(conv)


def _drop(x: torch.Tensor, drop: nn.Module | None) -> torch.Tensor:
    # No module at p = 0, so the default graph (and every checkpoint) is unchanged.
    return x if drop is None else drop(x)


class BasicBlock(nn.Module):
    """3×3 conv → BN → act → [Dropout] → 3×3 conv → BN, + shortcut, → act."""

    expansion = 1
    residual_convs = ("conv1", "conv2")  # the residual branch (snnx.models.layers.init_denggu)

    def __init__(self, in_ch: int, planes: int, stride: int, *, batch_norm: bool,
                 act_factory: ActFactory, dropout: float = 0.0):
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1, self.bn1 = conv_bn(in_ch, planes, 3, stride=stride, padding=1,
                                       batch_norm=batch_norm)
        self.act1 = act_factory(planes)
        self.drop1 = nn.Dropout(dropout) if dropout > 0 else None
        self.conv2, self.bn2 = conv_bn(planes, out_ch, 3, padding=1, batch_norm=batch_norm)
        self.shortcut = _shortcut(in_ch, out_ch, stride, batch_norm)
        self.act2 = act_factory(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = _drop(self.act1(self.bn1(self.conv1(x))), self.drop1)
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1 → BN → act → [Dropout] → 3×3 (stride) → BN → act → [Dropout] → 1×1 (×4) → BN, + shortcut,
    → act."""

    expansion = 4
    residual_convs = ("conv1", "conv2", "conv3")

    def __init__(self, in_ch: int, planes: int, stride: int, *, batch_norm: bool,
                 act_factory: ActFactory, dropout: float = 0.0):
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1, self.bn1 = conv_bn(in_ch, planes, 1, batch_norm=batch_norm)
        self.act1 = act_factory(planes)
        self.drop1 = nn.Dropout(dropout) if dropout > 0 else None
        self.conv2, self.bn2 = conv_bn(planes, planes, 3, stride=stride, padding=1,
                                       batch_norm=batch_norm)
        self.act2 = act_factory(planes)
        self.drop2 = nn.Dropout(dropout) if dropout > 0 else None
        self.conv3, self.bn3 = conv_bn(planes, out_ch, 1, batch_norm=batch_norm)
        self.shortcut = _shortcut(in_ch, out_ch, stride, batch_norm)
        self.act3 = act_factory(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = _drop(self.act1(self.bn1(self.conv1(x))), self.drop1)
        out = _drop(self.act2(self.bn2(self.conv2(out))), self.drop2)
        out = self.bn3(self.conv3(out))
        return self.act3(out + self.shortcut(x))


def _stages(block, depths: Sequence[int], stage_channels: Sequence[int], channels: int, *, width: float,
            batch_norm: bool, act_factory: ActFactory, dropout: float) -> tuple[nn.Sequential, int]:
    """Stages of residual blocks (stride 2 at the first block of every stage but the first)."""
    stages: list[nn.Module] = []
    for i, (depth, planes) in enumerate(zip(depths, stage_channels)):
        planes = scaled(planes, width)
        blocks: list[nn.Module] = []
        for j in range(depth):
            stride = 2 if (i > 0 and j == 0) else 1
            blocks.append(block(channels, planes, stride, batch_norm=batch_norm,
                                act_factory=act_factory, dropout=dropout))
            channels = planes * block.expansion
        stages.append(nn.Sequential(*blocks))
    return nn.Sequential(*stages), channels


class ResNet(nn.Module):
    """Stem → stages of residual blocks → global average pool → Linear."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], depths: Sequence[int],
                 stage_channels: Sequence[int], *, stem_channels: int, imagenet_stem: bool,
                 in_channels: int, num_classes: int, act_factory: ActFactory, width: float,
                 batch_norm: bool, pool: str, dropout_conv: float):
        super().__init__()
        stem_ch = scaled(stem_channels, width)
        if imagenet_stem:
            self.stem = nn.Sequential(
                ConvBNAct(in_channels, stem_ch, 7, stride=2, padding=3,
                          batch_norm=batch_norm, act_factory=act_factory),
                pool2d(pool, 3, stride=2, padding=1),
            )
        else:
            self.stem = ConvBNAct(in_channels, stem_ch, 3, padding=1, batch_norm=batch_norm,
                                  act_factory=act_factory)
        self.stages, channels = _stages(block, depths, stage_channels, stem_ch, width=width,
                                        batch_norm=batch_norm, act_factory=act_factory, dropout=dropout_conv)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


_IMAGENET_STAGES = (64, 128, 256, 512)


def _imagenet_resnet(block, depths, *, in_channels: int, image_size: int, num_classes: int,
                     act_factory: ActFactory, width: float, batch_norm: bool, pool: str,
                     dropout_conv: float) -> ResNet:
    return ResNet(block, depths, _IMAGENET_STAGES, stem_channels=64,
                  imagenet_stem=image_size >= IMAGENET_STEM_MIN_SIZE,
                  in_channels=in_channels, num_classes=num_classes, act_factory=act_factory,
                  width=width, batch_norm=batch_norm, pool=pool, dropout_conv=dropout_conv)


def resnet18(*, in_channels: int, image_size: int, num_classes: int, act_factory: ActFactory,
             width: float, batch_norm: bool, pool: str, dropout_conv: float, dropout_fc: float) -> nn.Module:
    """ResNet-18: BasicBlock × (2, 2, 2, 2), 64-128-256-512 channels."""
    return _imagenet_resnet(BasicBlock, (2, 2, 2, 2), in_channels=in_channels,
                            image_size=image_size, num_classes=num_classes,
                            act_factory=act_factory, width=width, batch_norm=batch_norm,
                            pool=pool, dropout_conv=dropout_conv)


def resnet34(*, in_channels: int, image_size: int, num_classes: int, act_factory: ActFactory,
             width: float, batch_norm: bool, pool: str, dropout_conv: float, dropout_fc: float) -> nn.Module:
    """ResNet-34: BasicBlock × (3, 4, 6, 3), 64-128-256-512 channels."""
    return _imagenet_resnet(BasicBlock, (3, 4, 6, 3), in_channels=in_channels,
                            image_size=image_size, num_classes=num_classes,
                            act_factory=act_factory, width=width, batch_norm=batch_norm,
                            pool=pool, dropout_conv=dropout_conv)


def resnet50(*, in_channels: int, image_size: int, num_classes: int, act_factory: ActFactory,
             width: float, batch_norm: bool, pool: str, dropout_conv: float, dropout_fc: float) -> nn.Module:
    """ResNet-50: Bottleneck × (3, 4, 6, 3), 256-512-1024-2048 output channels."""
    return _imagenet_resnet(Bottleneck, (3, 4, 6, 3), in_channels=in_channels,
                            image_size=image_size, num_classes=num_classes,
                            act_factory=act_factory, width=width, batch_norm=batch_norm,
                            pool=pool, dropout_conv=dropout_conv)


def resnet101(*, in_channels: int, image_size: int, num_classes: int,
              act_factory: ActFactory, width: float, batch_norm: bool, pool: str,
              dropout_conv: float, dropout_fc: float) -> nn.Module:
    """ResNet-101: Bottleneck × (3, 4, 23, 3), 256-512-1024-2048 output channels."""
    return _imagenet_resnet(Bottleneck, (3, 4, 23, 3), in_channels=in_channels,
                            image_size=image_size, num_classes=num_classes,
                            act_factory=act_factory, width=width, batch_norm=batch_norm,
                            pool=pool, dropout_conv=dropout_conv)


def resnet20(*, in_channels: int, image_size: int, num_classes: int, act_factory: ActFactory,
             width: float, batch_norm: bool, pool: str, dropout_conv: float, dropout_fc: float) -> nn.Module:
    """CIFAR ResNet-20 (He et al. 2016): 3×3 stem, BasicBlock × (3, 3, 3), 16-32-64 channels.

    Has no local pooling, so ``pool`` has no effect.
    """
    return ResNet(BasicBlock, (3, 3, 3), (16, 32, 64), stem_channels=16, imagenet_stem=False,
                  in_channels=in_channels, num_classes=num_classes, act_factory=act_factory,
                  width=width, batch_norm=batch_norm, pool=pool, dropout_conv=dropout_conv)


class ResNetSengupta(nn.Module):
    """Pre-processing convs → pooling → stages of BasicBlocks → flatten → Linear (module docstring)."""

    def __init__(self, *, in_channels: int, image_size: int, num_classes: int, act_factory: ActFactory,
                 width: float, batch_norm: bool, pool: str, dropout_conv: float):
        super().__init__()
        ch = scaled(64, width)
        self.pre_process = nn.Sequential(
            ConvBNAct(in_channels, ch, 3, padding=1, batch_norm=batch_norm, act_factory=act_factory,
                      dropout=dropout_conv),
            ConvBNAct(ch, ch, 3, padding=1, batch_norm=batch_norm, act_factory=act_factory, dropout=dropout_conv),
            ConvBNAct(ch, ch, 3, padding=1, batch_norm=batch_norm, act_factory=act_factory),
            pool2d(pool, 2),
        )
        self.stages, channels = _stages(BasicBlock, (2, 2, 2, 2), _IMAGENET_STAGES, ch, width=width,
                                        batch_norm=batch_norm, act_factory=act_factory, dropout=dropout_conv)
        side = image_size // 2
        for _ in range(3):  # a 3×3, padding-1, stride-2 conv maps a side s to ⌈s/2⌉
            side = (side + 1) // 2
        self.fc = nn.Linear(channels * side * side, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.pre_process(x))
        return self.fc(torch.flatten(x, 1))


def resnet20_sengupta(*, in_channels: int, image_size: int, num_classes: int, act_factory: ActFactory,
                      width: float, batch_norm: bool, pool: str, dropout_conv: float,
                      dropout_fc: float) -> nn.Module:
    """ResNet-20 of Sengupta et al. 2018 / Rathi et al. 2019 (Deng & Gu 2021, App. A.1): 3 pre-processing
    convs, pooling, BasicBlock × (2, 2, 2, 2) at 64-128-256-512 channels, flatten → Linear."""
    return ResNetSengupta(in_channels=in_channels, image_size=image_size, num_classes=num_classes,
                          act_factory=act_factory, width=width, batch_norm=batch_norm, pool=pool,
                          dropout_conv=dropout_conv)
