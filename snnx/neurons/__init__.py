"""Spiking neuron models (torch only; no knowledge of models, data or files)."""

from snnx.neurons.base import IFNeuron, Neuron, ShiftedIFNeuron, broadcast_channels

__all__ = ["Neuron", "IFNeuron", "ShiftedIFNeuron", "broadcast_channels"]
