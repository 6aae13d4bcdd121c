"""snnx: a configuration-driven experiment CLI for ANN→SNN conversion research."""

__version__ = "0.1.0"
