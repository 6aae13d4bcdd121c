"""ANN → SNN conversion: graph preparation and the registered methods (:data:`snnx.convert.methods.METHODS`).

Names load on first use (PEP 562), so that the torch-free method registry can be imported — to
compose and check a config — without loading torch.
"""

from __future__ import annotations

from snnx.lazy import lazy_attributes

_EXPORTS = {
    "activation_sites": "graph",
    "fold_batchnorm": "graph",
    "prepare": "graph",
    "replace_maxpool": "graph",
    "trace": "graph",
    "convert": "run",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_attributes(__name__, _EXPORTS)
