"""Base class shared by every snnx activation.

Only torch is imported here: activations know nothing about models, neurons,
data or configs.
"""

from __future__ import annotations

import torch
from torch import nn


class Activation(nn.Module):
    """Base class of every snnx activation (``act=relu`` uses ``nn.ReLU`` as is).

    Two things a converter reads from an activation:

    * :meth:`conversion_threshold` — the threshold θ the spiking neuron that
      replaces this activation should use: the trained λ as a 0-dim tensor, or
      per-channel λ_c as a ``[C]`` tensor; ``None`` when the activation has no
      threshold of its own (the converter calibrates one).
    * :attr:`shift` — the shift φ of the activation's quantiser (0 when none);
      a converter starts the membrane at ``v0 = φ·θ``.
    """

    #: φ used by the activation's quantiser; 0.0 when it has none.
    shift: float = 0.0

    def conversion_threshold(self) -> torch.Tensor | None:
        """θ a converter should use, detached; ``None`` if there is no trained one."""
        return None

