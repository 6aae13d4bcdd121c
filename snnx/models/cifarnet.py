"""CIFARNet as Deng & Gu 2021 (App. A.1) give it, after Wu et al. 2019.

    "CIFARNet is a 8 layer structure like: 128C3 (Encoding)-256C3-AP2-512C3-AP2-1024C3-512C3-1024FC-512FC-Voting,
    where C means convolutional layer, AP means average pooling and FC means fully connected layer."

3×3 convs with padding 1; the first conv ("Encoding") is the one that sees the real-valued image, as
every first layer here does. "AP2" is a 2×2 pooling (average by default; ``model.pool``). "Voting" is
the eighth weight layer: a Linear with ``votes`` outputs per class whose outputs are averaged per
class (:class:`~snnx.models.layers.Voting`), the voting layer of Wu et al. 2019, where a population of
neurons stands for each class. The paper gives no group size; ``votes`` = 10 follows Wu et al.'s
released code (ours where the paper is silent), and ``model.votes=1`` is the other reading, a plain
Linear to the classes (what Deng & Gu's own code builds). Every channel and hidden-feature count
scales with ``width``. The classifier sees 512·(s/4)² features (s = image side), so it is meant for
small images (32×32 → 32768 features); ``min_image_size`` = 4 (two poolings).
"""

from __future__ import annotations

import torch
from torch import nn

from snnx.models.layers import ActFactory, Voting, conv_stack, mlp_head, pool2d, scaled

# Conv channels, "P" = 2×2 pooling.
_CFG = (128, 256, "P", 512, "P", 1024, 512)
_HIDDEN = (1024, 512)


class CIFARNet(nn.Module):
    def __init__(self, *, in_channels: int, image_size: int, num_classes: int,
                 act_factory: ActFactory, width: float, batch_norm: bool, pool: str,
                 dropout_conv: float, dropout_fc: float, votes: int):
        super().__init__()
        self.features, channels, side = conv_stack(_CFG, in_channels=in_channels, image_size=image_size, width=width,
                                                   batch_norm=batch_norm, act_factory=act_factory,
                                                   pool_layer=lambda _channels: pool2d(pool, 2), dropout=dropout_conv)
        self.classifier = mlp_head(channels * side * side, [scaled(h, width) for h in _HIDDEN],
                                   num_classes * votes, act_factory=act_factory, dropout=dropout_fc)
        # votes = 1: no averaging module at all, the plain output Linear (same graph as without voting).
        self.voting = Voting(votes) if votes > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.voting(self.classifier(torch.flatten(x, 1)))


def cifarnet(*, in_channels: int, image_size: int, num_classes: int,
             act_factory: ActFactory, width: float, batch_norm: bool, pool: str,
             dropout_conv: float, dropout_fc: float, votes: int) -> nn.Module:
    """CIFARNet 128C3-256C3-AP2-512C3-AP2-1024C3-512C3-1024FC-512FC-Voting."""
    return CIFARNet(in_channels=in_channels, image_size=image_size, num_classes=num_classes,
                    act_factory=act_factory, width=width, batch_norm=batch_norm, pool=pool,
                    dropout_conv=dropout_conv, dropout_fc=dropout_fc, votes=votes)
