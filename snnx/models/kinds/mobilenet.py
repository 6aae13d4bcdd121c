"""MobileNet (the all-integer paper's ImageNet net)."""

from snnx.models.registry import register_model

register_model("mobilenet", builder="snnx.models.mobilenet:mobilenet", min_image_size=16, dropout=("conv",),
               doc="MobileNet (depthwise-separable convs)")
