"""The all-integer SNN paper's VGG variant (Zou et al. 2024).

96C3-256C3-P-384C3-P-384C3-256C3-P-1024C3-FC1024-FC: 3×3 convs, each conv →
BN → act, with bias-free convs when BN is on (the all-integer conversion turns
each BN into the neuron's dual thresholds). Pooling "P" is a config choice:
``model.pool=avg`` (2×2 average pooling, the default) or ``model.pool=conv`` (a
2×2 stride-2 conv → BN → act, which keeps every layer a spiking layer).

Padding: the convs before the last pooling keep the map size (padding 1). The
last 1024C3 is unpadded wherever it can be, i.e. when its input map is at least
3×3 (images of 24 px or more): §4.4 counts 280,832 hidden neurons for this net
on 24×24 CIFAR crops, 24·24·256 + 12·12·256 + 12·12·384 + 6·6·384 + 6·6·384 +
6·6·256 + 3·3·256 + 1·1·1024 + 1024 (pool=conv; the 96C3 input layer and the
output layer not counted), which needs the 1024C3 to take 3×3 to 1×1 (padded it
would add 8·1024: 289,024). On smaller maps (8×8 digits: 1×1) an unpadded 3×3
conv has no output, so there it keeps padding 1, the net of before.
"""

from __future__ import annotations

import torch
from torch import nn

from snnx.models.kinds.vgg import last_conv_padding
from snnx.models.layers import ActFactory, ConvBNAct, conv_stack, mlp_head, pool2d, scaled

_CFG = (96, 256, "P", 384, "P", 384, 256, "P", 1024)
_HIDDEN = 1024


class VGGAllInt(nn.Module):
    def __init__(self, *, in_channels: int, image_size: int, num_classes: int, act_factory: ActFactory,
                 width: float, batch_norm: bool, pool: str, dropout_conv: float, dropout_fc: float):
        super().__init__()
        def pool_layer(channels: int) -> nn.Module:
            if pool == "conv":
                return ConvBNAct(channels, channels, 2, stride=2, batch_norm=batch_norm, act_factory=act_factory)
            return pool2d(pool, 2)

        self.features, channels, side = conv_stack(_CFG[:-1], in_channels=in_channels, image_size=image_size,
                                                   width=width, batch_norm=batch_norm, act_factory=act_factory,
                                                   pool_layer=pool_layer, dropout=dropout_conv)
        padding = last_conv_padding(image_size)
        out = scaled(_CFG[-1], width)
        self.features.append(ConvBNAct(channels, out, 3, padding=padding, batch_norm=batch_norm,
                                       act_factory=act_factory))
        channels, side = out, side + 2 * padding - 2
        self.classifier = mlp_head(channels * side * side, [scaled(_HIDDEN, width)], num_classes,
                                   act_factory=act_factory, dropout=dropout_fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def vgg11_allint(*, in_channels: int, image_size: int, num_classes: int, act_factory: ActFactory,
                 width: float, batch_norm: bool, pool: str, dropout_conv: float, dropout_fc: float) -> nn.Module:
    """All-integer VGG: 96C3-256C3-P-384C3-P-384C3-256C3-P-1024C3-FC1024-FC."""
    return VGGAllInt(in_channels=in_channels, image_size=image_size, num_classes=num_classes,
                     act_factory=act_factory, width=width, batch_norm=batch_norm, pool=pool,
                     dropout_conv=dropout_conv, dropout_fc=dropout_fc)
