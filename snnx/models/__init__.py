"""ANN model zoo for ANN→SNN conversion.

Every nonlinearity is built by an injected ``act_factory(num_channels)``
(called once per activation site, in forward order); layers follow
conv/linear → BatchNorm (optional) → act → Dropout (optional); the last weight
layer is a plain Linear;
local pooling is an ``nn.AvgPool2d``/``nn.MaxPool2d`` module (CIFARNet's voting
layer averages the last Linear's outputs per class); every model is
``torch.fx.symbolic_trace``-able. Which models exist: :data:`snnx.models.registry.MODELS`;
build one with :func:`create_model` (from a whole config: :func:`snnx.ann.build`).

Names load on first use (PEP 562): the registry is torch-free, so a config is checked without torch.
"""

from __future__ import annotations

from snnx.lazy import lazy_attributes

_EXPORTS = {
    "check_image_size": "registry",
    "check_model_options": "registry:check_options",
    "create_model": "create",
    "list_models": "registry",
    "register_model": "registry",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_attributes(__name__, _EXPORTS)
