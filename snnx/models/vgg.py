"""VGG-11 / VGG-16 in the form used by ANN→SNN conversion papers.

Features: 3×3 convs (padding 1), each conv → BN (optional) → act, and a 2×2
pooling after every block (5 poolings, so ``min_image_size`` = 32; smaller
images are rejected rather than dropping poolings).

Classifier: Linear(512·f², 4096) → act → Dropout → Linear(4096, 4096) → act →
Dropout → Linear(4096, num_classes) (``model.dropout.fc``; ``model.dropout.conv``
follows each conv that feeds a conv, inside the blocks), where f is the side of the last
feature map (image_size // 32 after floor-halving five times). For CIFAR
(32×32) that is the QCFS-line ``Linear(512, 4096)`` head; at 224×224 (f = 7)
it is torchvision's ``Linear(512·7·7, 4096)`` head. If the feature map is
larger than 7×7 (images ≥ 256 px) an ``nn.AdaptiveAvgPool2d(7)`` is inserted
first, as in torchvision, so the head never exceeds 512·7·7 inputs; below 7×7
no adaptive pool is used (it would only duplicate values and inflate the
first Linear). All channel and hidden-feature counts scale with ``width``.

``vgg16_rathi`` is the CIFAR VGG-16 of Rathi et al. 2019 that Deng & Gu 2021
(App. A.1) use: the same 13 convs, but 4 average poolings (none after the last
block) and the last 512-channel map flattened straight into the head, so at
32×32 the head is ``Linear(512·2·2, 4096)`` → act → Dropout → ``Linear(4096,
4096)`` → act → Dropout → ``Linear(4096, num_classes)``. The between-conv
dropout sits as in ``vgg16`` (after a conv that feeds a conv; Rathi et al.'s
released code also drops after the last conv, where the features meet the
first Linear, which is "between" neither kind). Convs and Linears have biases
when BatchNorm is off, as every snnx model (Deng & Gu's Alg. 1 shifts the
layers' biases; Rathi et al.'s code has none). The head sees 512·(s/16)²
features (s = image side; above 7×7 the ``AdaptiveAvgPool2d(7)`` above caps it
as in ``vgg16``): a CIFAR model, ``min_image_size`` = 16.
"""

from __future__ import annotations

import torch
from torch import nn

from snnx.models.layers import ActFactory, conv_stack, mlp_head, pool2d, scaled

_CFGS: dict[str, tuple] = {
    "vgg11": (64, "P", 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P"),
    "vgg16": (64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P",
              512, 512, 512, "P"),
    # Rathi et al. 2019's CIFAR VGG-16: no pooling after the fifth block.
    "vgg16_rathi": (64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P",
                    512, 512, 512),
}
_HIDDEN = 4096
_MAX_SIDE = 7


class VGG(nn.Module):
    def __init__(self, cfg: tuple, *, in_channels: int, image_size: int, num_classes: int,
                 act_factory: ActFactory, width: float, batch_norm: bool, pool: str,
                 dropout_conv: float, dropout_fc: float):
        super().__init__()
        self.features, channels, side = conv_stack(cfg, in_channels=in_channels, image_size=image_size, width=width,
                                                   batch_norm=batch_norm, act_factory=act_factory,
                                                   pool_layer=lambda _channels: pool2d(pool, 2), dropout=dropout_conv)
        if side > _MAX_SIDE:
            self.avgpool = nn.AdaptiveAvgPool2d(_MAX_SIDE)
            side = _MAX_SIDE
        else:
            self.avgpool = nn.Identity()
        hidden = scaled(_HIDDEN, width)
        self.classifier = mlp_head(channels * side * side, [hidden, hidden], num_classes,
                                   act_factory=act_factory, dropout=dropout_fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def vgg11(*, in_channels: int, image_size: int, num_classes: int, act_factory: ActFactory,
          width: float, batch_norm: bool, pool: str, dropout_conv: float, dropout_fc: float) -> nn.Module:
    """VGG-11 (8 convs, 5 poolings, FC4096-FC4096-FC)."""
    return VGG(_CFGS["vgg11"], in_channels=in_channels, image_size=image_size,
               num_classes=num_classes, act_factory=act_factory, width=width,
               batch_norm=batch_norm, pool=pool, dropout_conv=dropout_conv, dropout_fc=dropout_fc)


def vgg16(*, in_channels: int, image_size: int, num_classes: int, act_factory: ActFactory,
          width: float, batch_norm: bool, pool: str, dropout_conv: float, dropout_fc: float) -> nn.Module:
    """VGG-16 (13 convs, 5 poolings, FC4096-FC4096-FC)."""
    return VGG(_CFGS["vgg16"], in_channels=in_channels, image_size=image_size,
               num_classes=num_classes, act_factory=act_factory, width=width,
               batch_norm=batch_norm, pool=pool, dropout_conv=dropout_conv, dropout_fc=dropout_fc)


def vgg16_rathi(*, in_channels: int, image_size: int, num_classes: int, act_factory: ActFactory,
                width: float, batch_norm: bool, pool: str, dropout_conv: float, dropout_fc: float) -> nn.Module:
    """VGG-16 of Rathi et al. 2019 (Deng & Gu 2021, App. A.1): 13 convs, 4 poolings, FC4096-FC4096-FC on the
    flattened last feature map (512·2·2 at 32×32)."""
    return VGG(_CFGS["vgg16_rathi"], in_channels=in_channels, image_size=image_size,
               num_classes=num_classes, act_factory=act_factory, width=width,
               batch_norm=batch_norm, pool=pool, dropout_conv=dropout_conv, dropout_fc=dropout_fc)
