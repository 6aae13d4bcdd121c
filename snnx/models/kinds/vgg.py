"""VGG nets for CIFAR / ImageNet."""

from snnx.models.registry import POOLS, register_model

register_model("vgg11", builder="snnx.models.vgg:vgg11", min_image_size=32, doc="VGG-11")
register_model("vgg16", builder="snnx.models.vgg:vgg16", min_image_size=32, doc="VGG-16")
register_model("vgg16_rathi", builder="snnx.models.vgg:vgg16_rathi", min_image_size=16,
               doc="Rathi et al.'s CIFAR VGG-16 (4 average poolings, Linear(512·2·2, 4096) head)")


def last_conv_padding(image_size: int) -> int:
    """vgg11_allint's last 1024C3 padding: 0 (the paper's net, §4.4) when its input map is ≥ 3×3, else 1.

    The map is ``image_size // 8`` after three 2×2 stride-2 poolings (either kind).
    """
    return 0 if image_size // 8 >= 3 else 1


def _allint_marks(image_size: int) -> dict:
    # The unpadded last conv on maps ≥ 3×3 (Zou et al. 2024, §4.4) came after caches of the padded one.
    return {"vgg11_allint_last_conv_padding": 0} if last_conv_padding(image_size) == 0 else {}


# 96C3-256C3-P-384C3-P-384C3-256C3-P-1024C3-FC1024-FC (Zou et al. 2024, §4.4); "P" may be a 2×2 stride-2 conv.
register_model("vgg11_allint", builder="snnx.models.vgg_allint:vgg11_allint", min_image_size=8,
               pools=POOLS + ("conv",), doc="the all-integer paper's VGG-11 (Zou et al. 2024)", key_marks=_allint_marks)
