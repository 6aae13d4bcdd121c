"""LeNet for conversion experiments: 32C5-P2-64C5-P2-FC1000-FC.

The 5×5 convs use padding 2 (size-preserving), so the network works on any
image of at least 4×4: 8×8 digits → 2×2, 28×28 MNIST → 7×7, 32×32 CIFAR → 8×8
feature maps before the classifier. ``min_image_size`` = 4 (two 2×2 poolings).
Each conv is followed by a pooling, so only ``model.dropout.fc`` (between the two
Linears) has a place here.

``lenet_allint`` is the all-integer SNN paper's LeNet as printed (Zou et al. 2024,
§4.1): "a classical 6-layer LeNet architecture, i.e., 32C5-2P2-64C5-2P2-1000FC-10FC".
The six layers are the six tokens, so each "2P2" is a layer of its own, and §4.4
counts 10,728 hidden neurons on 28×28 MNIST, which is 12·12·32 + 8·8·64 + 4·4·64 +
1000: unpadded 5×5 convs (28 → 24, 12 → 8) and neurons after each pooling. The
pooling is therefore a spiking layer: with ``model.pool=conv`` (the model's
default, conf/model/lenet_allint.yaml) a 2×2 stride-2 conv → BN → act, ternary like
every hidden layer; ``avg`` / ``max`` pool without neurons (not the paper's count).
With ``model.batch_norm`` the 1000FC is a bias-free Linear → BatchNorm1d → act
(the form :func:`snnx.models.layers.normalise_hidden_linears` gives ternary nets), so
every hidden neuron takes its thresholds from a BN (Eqs. 5–7) with or without
ternary weights. ``min_image_size`` = 16 (16 → 12 → 6 → 2 → 1).
"""

from __future__ import annotations

import torch
from torch import nn

from snnx.models.layers import ActFactory, ConvBNAct, dropout_or_identity, mlp_head, pool2d, scaled


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


def lenet(*, in_channels: int, image_size: int, num_classes: int, act_factory: ActFactory,
          width: float, batch_norm: bool, pool: str, dropout_conv: float, dropout_fc: float) -> nn.Module:
    """LeNet 32C5-P2-64C5-P2-FC1000-FC (padded convs)."""
    return LeNet(in_channels=in_channels, image_size=image_size, num_classes=num_classes,
                 act_factory=act_factory, width=width, batch_norm=batch_norm, pool=pool,
                 dropout_fc=dropout_fc)


class LeNetAllInt(nn.Module):
    """32C5-2P2-64C5-2P2-1000FC-10FC with unpadded 5×5 convs (module docstring).

    ``features``: 0 the input layer (32C5), 1 and 3 the poolings, 2 the 64C5; ``classifier``: 1 the
    1000FC (Linear → BN, or a Linear with a bias without BN), 2 its act, 3 the ``model.dropout.fc``
    slot, 4 the 10FC output layer (the numbering of ``lenet``'s head).
    """

    def __init__(self, *, in_channels: int, image_size: int, num_classes: int,
                 act_factory: ActFactory, width: float, batch_norm: bool, pool: str,
                 dropout_fc: float):
        super().__init__()
        c1, c2, hidden = scaled(32, width), scaled(64, width), scaled(1000, width)

        def pool_layer(channels: int) -> nn.Module:
            if pool == "conv":
                return ConvBNAct(channels, channels, 2, stride=2, batch_norm=batch_norm, act_factory=act_factory)
            return pool2d(pool, 2)

        self.features = nn.Sequential(
            ConvBNAct(in_channels, c1, 5, batch_norm=batch_norm, act_factory=act_factory),
            pool_layer(c1),
            ConvBNAct(c1, c2, 5, batch_norm=batch_norm, act_factory=act_factory),
            pool_layer(c2),
        )
        side = ((image_size - 4) // 2 - 4) // 2
        features = c2 * side * side
        fc: nn.Module = nn.Linear(features, hidden, bias=not batch_norm)
        if batch_norm:
            fc = nn.Sequential(fc, nn.BatchNorm1d(hidden))
        self.classifier = nn.Sequential(nn.Identity(), fc, act_factory(hidden), dropout_or_identity(dropout_fc),
                                        nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def lenet_allint(*, in_channels: int, image_size: int, num_classes: int, act_factory: ActFactory,
                 width: float, batch_norm: bool, pool: str, dropout_conv: float, dropout_fc: float) -> nn.Module:
    """Zou et al. 2024's LeNet 32C5-2P2-64C5-2P2-1000FC-10FC (unpadded convs, spiking poolings)."""
    return LeNetAllInt(in_channels=in_channels, image_size=image_size, num_classes=num_classes,
                       act_factory=act_factory, width=width, batch_norm=batch_norm, pool=pool,
                       dropout_fc=dropout_fc)
