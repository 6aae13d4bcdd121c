"""ANN model zoo for ANN→SNN conversion.

Every nonlinearity is built by an injected ``act_factory(num_channels)``
(called once per activation site, in forward order); layers follow
conv/linear → BatchNorm (optional) → act; the last layer is a plain Linear;
local pooling is an ``nn.AvgPool2d``/``nn.MaxPool2d`` module; every model is
``torch.fx.symbolic_trace``-able. Build models with :func:`create_model`.
"""

from snnx.models.registry import check_image_size, create_model, list_models, register_model
from snnx.models.build import build, check_compatible

# Import the families so their builders register themselves.
from snnx.models import cifarnet, lenet, mobilenet, resnet, vgg, vgg_allint  # noqa: E402,F401

__all__ = ["build", "check_compatible", "check_image_size", "create_model", "list_models", "register_model"]
