"""CIFARNet (Wu et al. 2019, as used by Deng & Gu 2021).

128C3-256C3-P2-512C3-P2-1024C3-512C3-FC1024-FC512-FC, 3×3 convs with
padding 1; every channel and hidden-feature count scales with ``width``.
The classifier sees 512·(s/4)² features (s = image side), so it is meant for
small images (32×32 → 32768 features); ``min_image_size`` = 4 (two poolings).
"""

from __future__ import annotations

import torch
from torch import nn

from snnx.models.layers import ActFactory, conv_stack, mlp_head, pool2d, scaled
from snnx.models.registry import register_model

# Conv channels, "P" = 2×2 pooling.
_CFG = (128, 256, "P", 512, "P", 1024, 512)
_HIDDEN = (1024, 512)


class CIFARNet(nn.Module):
    def __init__(self, *, in_channels: int, image_size: int, num_classes: int,
                 act_factory: ActFactory, width: float, batch_norm: bool, pool: str,
                 dropout: float):
        super().__init__()
        self.features, channels, side = conv_stack(_CFG, in_channels=in_channels, image_size=image_size, width=width,
                                                   batch_norm=batch_norm, act_factory=act_factory,
                                                   pool_layer=lambda _channels: pool2d(pool, 2))
        self.classifier = mlp_head(channels * side * side, [scaled(h, width) for h in _HIDDEN],
                                   num_classes, act_factory=act_factory, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))


@register_model("cifarnet", min_image_size=4)
def cifarnet(*, in_channels: int, image_size: int, num_classes: int,
             act_factory: ActFactory, width: float, batch_norm: bool, pool: str,
             dropout: float) -> nn.Module:
    """CIFARNet 128C3-256C3-P2-512C3-P2-1024C3-512C3-FC1024-FC512-FC."""
    return CIFARNet(in_channels=in_channels, image_size=image_size, num_classes=num_classes,
                    act_factory=act_factory, width=width, batch_norm=batch_norm, pool=pool,
                    dropout=dropout)
