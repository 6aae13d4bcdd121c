"""Spiking neuron models (torch only; no knowledge of models, data or files)."""

from snnx.neurons.base import IFNeuron, Neuron, OffsetCalibratedIFNeuron, ShiftedIFNeuron, broadcast_channels
from snnx.neurons.msat import MSATNeuron
from snnx.neurons.signed import ScatterGatherEncoder, SignedDualThresholdNeuron, dual_thresholds, quant_level

__all__ = ["Neuron", "IFNeuron", "ShiftedIFNeuron", "OffsetCalibratedIFNeuron", "broadcast_channels",
           "MSATNeuron", "SignedDualThresholdNeuron", "ScatterGatherEncoder", "dual_thresholds", "quant_level"]
