"""LeNet for conversion experiments: 32C5-P2-64C5-P2-FC1000-FC.

The 5×5 convs use padding 2 (size-preserving), so the network works on any
image of at least 4×4: 8×8 digits → 2×2, 28×28 MNIST → 7×7, 32×32 CIFAR → 8×8
feature maps before the classifier. ``min_image_size`` = 4 (two 2×2 poolings).
Each conv is followed by a pooling, so only ``model.dropout.fc`` (between the two
Linears) has a place here.
"""

from __future__ import annotations

import torch
from torch import nn

from snnx.models.layers import ActFactory, ConvBNAct, mlp_head, pool2d, scaled
from snnx.models.registry import register_model


class LeNet(nn.Module):
    def __init__(self, *, in_channels: int, image_size: int, num_classes: int,
                 act_factory: ActFactory, width: float, batch_norm: bool, pool: str,
                 dropout_fc: float):
        super().__init__()
        c1, c2, hidden = scaled(32, width), scaled(64, width), scaled(1000, width)
        self.features = nn.Sequential(
            ConvBNAct(in_channels, c1, 5, padding=2, batch_norm=batch_norm,
                      act_factory=act_factory),
            pool2d(pool, 2),
            ConvBNAct(c1, c2, 5, padding=2, batch_norm=batch_norm, act_factory=act_factory),
            pool2d(pool, 2),
        )
        side = image_size // 2 // 2
        self.classifier = mlp_head(c2 * side * side, [hidden], num_classes,
                                   act_factory=act_factory, dropout=dropout_fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))


@register_model("lenet", min_image_size=4, dropout=("fc",))
def lenet(*, in_channels: int, image_size: int, num_classes: int, act_factory: ActFactory,
          width: float, batch_norm: bool, pool: str, dropout_conv: float, dropout_fc: float) -> nn.Module:
    """LeNet 32C5-P2-64C5-P2-FC1000-FC (padded convs)."""
    return LeNet(in_channels=in_channels, image_size=image_size, num_classes=num_classes,
                 act_factory=act_factory, width=width, batch_norm=batch_norm, pool=pool,
                 dropout_fc=dropout_fc)
