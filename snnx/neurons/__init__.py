"""Spiking neuron models (torch only; no knowledge of models, data or files).

Every neuron class registers itself in :data:`NEURONS` (``snnx.neurons.registry``) where it is
defined; importing this package fills the registry.
"""

from snnx.neurons.base import (BACKENDS, IFNeuron, Neuron, OffsetCalibratedIFNeuron, ShiftedIFNeuron,
                               broadcast_channels)
from snnx.neurons.msat import MSATNeuron
from snnx.neurons.registry import NEURONS
from snnx.neurons.signed import ScatterGatherEncoder, SignedDualThresholdNeuron, dual_thresholds, quant_level

__all__ = ["BACKENDS", "NEURONS", "Neuron", "IFNeuron", "ShiftedIFNeuron", "OffsetCalibratedIFNeuron",
           "broadcast_channels", "MSATNeuron", "SignedDualThresholdNeuron", "ScatterGatherEncoder", "dual_thresholds",
           "quant_level"]
