"""ANN → SNN conversion: graph preparation and per-method neuron choice."""

from snnx.convert.graph import activation_sites, fold_batchnorm, prepare, replace_maxpool, trace
from snnx.convert.methods import METHODS, convert

__all__ = ["activation_sites", "fold_batchnorm", "prepare", "replace_maxpool", "trace", "convert", "METHODS"]
