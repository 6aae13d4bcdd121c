"""ANN activations for conversion-aware training (torch only).

``act=relu`` uses ``torch.nn.ReLU`` as is; every other activation derives
from :class:`Activation`, which tells a converter its threshold
(:meth:`Activation.conversion_threshold`) and shift φ (:attr:`Activation.shift`).
Formulas and gradients follow the papers each class cites. Which activations
exist, and their parameters: :data:`snnx.activations.registry.ACTIVATIONS`.

The names below load on first use (PEP 562), so that the torch-free registry can
be imported — to compose and check a config — without loading torch.
"""

from __future__ import annotations

from snnx.lazy import lazy_attributes

_EXPORTS = {
    "Activation": "base",
    "to_channelwise": "channelwise",
    "ActFactory": "factory",
    "make_act_factory": "factory",
    "CSQCFS": "modules",
    "Clip": "modules",
    "QCFS": "modules",
    "Quant": "modules",
    "inverse_softplus": "modules",
    "Ternary": "ternary",
    "apply_ternary": "ternary",
    "is_ternary": "ternary",
    "ternarize_": "ternary",
    "ternary_weight": "ternary",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_attributes(__name__, _EXPORTS)
