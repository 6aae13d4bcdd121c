"""Simulation of converted spiking networks."""

from snnx.sim.engine import SimResult, Simulator, auto_chunk

__all__ = ["Simulator", "SimResult", "auto_chunk"]
