"""MobileNet v1 (Howard et al. 2017) for conversion experiments.

Stem: 3×3 conv (32 channels) → BN → act. Then 13 depthwise-separable blocks,
each a depthwise 3×3 conv → BN → act followed by a pointwise 1×1 conv → BN →
act; then ``nn.AdaptiveAvgPool2d(1)`` → flatten → Linear. ``model.dropout.conv``
follows every activation that feeds the next conv (all but the last); the one
Linear leaves no place for ``model.dropout.fc``.

On images smaller than 128 px the stem has stride 1 (CIFAR variant), leaving
4 stride-2 blocks, so ``min_image_size`` = 16 (32×32 → 2×2 before the global
pool). On images of 128 px or more the stem has stride 2 as in the paper
(224×224 → 7×7). There is no local pooling, so ``pool`` has no effect.
"""

from __future__ import annotations

import torch
from torch import nn

from snnx.models.layers import ActFactory, ConvBNAct, scaled

IMAGENET_STEM_MIN_SIZE = 128
_STEM = 32
# (pointwise output channels, depthwise stride) for the 13 blocks.
_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
           (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


class DepthwiseSeparable(nn.Sequential):
    """Depthwise 3×3 conv → BN → act, pointwise 1×1 conv → BN → act."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, *, batch_norm: bool,
                 act_factory: ActFactory, dropout: float = 0.0, last: bool = False):
        super().__init__()
        self.depthwise = ConvBNAct(in_ch, in_ch, 3, stride=stride, padding=1, groups=in_ch,
                                   batch_norm=batch_norm, act_factory=act_factory, dropout=dropout)
        self.pointwise = ConvBNAct(in_ch, out_ch, 1, batch_norm=batch_norm,
                                   act_factory=act_factory, dropout=0.0 if last else dropout)


class MobileNetV1(nn.Module):
    def __init__(self, *, in_channels: int, image_size: int, num_classes: int,
                 act_factory: ActFactory, width: float, batch_norm: bool, pool: str,
                 dropout_conv: float):
        super().__init__()
        stem_stride = 2 if image_size >= IMAGENET_STEM_MIN_SIZE else 1
        channels = scaled(_STEM, width)
        self.stem = ConvBNAct(in_channels, channels, 3, stride=stem_stride, padding=1,
                              batch_norm=batch_norm, act_factory=act_factory, dropout=dropout_conv)
        blocks: list[nn.Module] = []
        for i, (out, stride) in enumerate(_BLOCKS):
            out = scaled(out, width)
            blocks.append(DepthwiseSeparable(channels, out, stride, batch_norm=batch_norm,
                                             act_factory=act_factory, dropout=dropout_conv,
                                             last=i == len(_BLOCKS) - 1))
            channels = out
        self.blocks = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def mobilenet(*, in_channels: int, image_size: int, num_classes: int,
              act_factory: ActFactory, width: float, batch_norm: bool, pool: str,
              dropout_conv: float, dropout_fc: float) -> nn.Module:
    """MobileNet v1 (stride-1 stem below 128 px)."""
    return MobileNetV1(in_channels=in_channels, image_size=image_size,
                       num_classes=num_classes, act_factory=act_factory, width=width,
                       batch_norm=batch_norm, pool=pool, dropout_conv=dropout_conv)
