"""The all-integer SNN paper's VGG variant (Zou et al. 2024).

96C3-256C3-P-384C3-P-384C3-256C3-P-1024C3-FC1024-FC: 3×3 convs (padding 1),
each conv → BN → act, with bias-free convs when BN is on (the all-integer
conversion turns each BN into the neuron's dual thresholds). Pooling "P" is a
config choice: ``model.pool=avg`` (2×2 average pooling, the default) or
``model.pool=conv`` (a 2×2 stride-2 conv → BN → act, which keeps every layer
a spiking layer).
"""

from __future__ import annotations

import torch
from torch import nn

from snnx.models.layers import ActFactory, ConvBNAct, conv_stack, mlp_head, pool2d, scaled
from snnx.models.registry import register_model

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

        self.features, channels, side = conv_stack(_CFG, in_channels=in_channels, image_size=image_size, width=width,
                                                   batch_norm=batch_norm, act_factory=act_factory,
                                                   pool_layer=pool_layer, dropout=dropout_conv)
        self.classifier = mlp_head(channels * side * side, [scaled(_HIDDEN, width)], num_classes,
                                   act_factory=act_factory, dropout=dropout_fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


@register_model("vgg11_allint", min_image_size=8)
def vgg11_allint(*, in_channels: int, image_size: int, num_classes: int, act_factory: ActFactory,
                 width: float, batch_norm: bool, pool: str, dropout_conv: float, dropout_fc: float) -> nn.Module:
    """All-integer VGG: 96C3-256C3-P-384C3-P-384C3-256C3-P-1024C3-FC1024-FC."""
    return VGGAllInt(in_channels=in_channels, image_size=image_size, num_classes=num_classes,
                     act_factory=act_factory, width=width, batch_norm=batch_norm, pool=pool,
                     dropout_conv=dropout_conv, dropout_fc=dropout_fc)
