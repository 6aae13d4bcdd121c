"""ANN model zoo for ANN→SNN conversion.

Every nonlinearity is built by an injected ``act_factory(num_channels)``
(called once per activation site, in forward order); layers follow
conv/linear → BatchNorm (optional) → act → Dropout (optional); the last weight
layer is a plain Linear;
local pooling is an ``nn.AvgPool2d``/``nn.MaxPool2d`` module (CIFARNet's voting
layer averages the last Linear's outputs per class); every model is
``torch.fx.symbolic_trace``-able. Build models with :func:`create_model`.
"""

from snnx.models.registry import check_image_size, create_model, list_models, register_model
from snnx.models.registry import check_options as check_model_options
from snnx.models.build import build, check_compatible

# Import the families so their builders register themselves.
from snnx.models import cifarnet, lenet, mobilenet, resnet, vgg, vgg_allint  # noqa: E402,F401

__all__ = ["build", "check_compatible", "check_image_size", "check_model_options", "create_model", "list_models",
           "register_model"]
