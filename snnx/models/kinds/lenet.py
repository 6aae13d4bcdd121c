"""LeNet-style nets for the small datasets."""

from snnx.models.registry import POOLS, register_model

register_model("lenet", builder="snnx.models.lenet:lenet", min_image_size=4, dropout=("fc",),
               doc="LeNet-5-style conv net (the embedded default)")
# Zou et al. 2024's LeNet 32C5-2P2-64C5-2P2-1000FC-10FC: its poolings are spiking 2×2 stride-2 convs (§4.1, §4.4).
register_model("lenet_allint", builder="snnx.models.lenet:lenet_allint", min_image_size=16, dropout=("fc",),
               pools=POOLS + ("conv",), doc="the all-integer paper's LeNet (Zou et al. 2024)")
