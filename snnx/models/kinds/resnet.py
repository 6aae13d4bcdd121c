"""ResNets: ImageNet-style (18/34/50/101), CIFAR ResNet-20, and Sengupta / Rathi et al.'s ResNet-20."""

from snnx.models.registry import register_model

for depth in (18, 34, 50, 101):
    register_model(f"resnet{depth}", builder=f"snnx.models.resnet:resnet{depth}", min_image_size=8, dropout=("conv",),
                   doc=f"ResNet-{depth}")
register_model("resnet20", builder="snnx.models.resnet:resnet20", min_image_size=4, dropout=("conv",),
               doc="CIFAR ResNet-20 (He et al. 2016)")
register_model("resnet20_sengupta", builder="snnx.models.resnet:resnet20_sengupta", min_image_size=2,
               dropout=("conv",), doc="Sengupta / Rathi et al.'s ResNet-20 (three pre-processing convs)")
