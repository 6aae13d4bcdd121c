"""ANN activations for conversion-aware training (torch only).

``act=relu`` uses ``torch.nn.ReLU`` as is; every other activation derives
from :class:`Activation`, which tells a converter its threshold
(:meth:`Activation.conversion_threshold`) and shift φ (:attr:`Activation.shift`).
Formulas and gradients follow the papers each class cites.
"""

from .base import Activation, shift_of, threshold_of
from .channelwise import to_channelwise
from .factory import ACTIVATIONS, ActFactory, make_act_factory
from .modules import CSQCFS, QCFS, Clip, Quant, inverse_softplus
from .ternary import Ternary, apply_ternary, is_ternary, ternarize_, ternary_weight

__all__ = [
    "ACTIVATIONS",
    "ActFactory",
    "Activation",
    "CSQCFS",
    "Clip",
    "QCFS",
    "Quant",
    "Ternary",
    "apply_ternary",
    "inverse_softplus",
    "is_ternary",
    "make_act_factory",
    "shift_of",
    "ternarize_",
    "ternary_weight",
    "threshold_of",
    "to_channelwise",
]
