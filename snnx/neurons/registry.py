"""The spiking neuron models, by name: each class registers itself where it is defined.

An entry's builder is the neuron class; its params dataclass lists the constructor's arguments
(type, default, range, one line of doc each), so ``entry.build(**kwargs)`` makes one. Its traits
say what the engine and the diagnostics can expect of every instance:

* ``depends_on_T`` — the dynamics need the pass length T (the engine runs one pass per T); for the
  shifted IF neuron only while no fixed horizon is given;
* ``signed`` — the output carries negative spikes;
* ``rate_coded`` — the output is θ·s, a rate code of the activation (else ±1 spikes worth ``unit``);
* ``fused`` — a fused multi-step path exists besides the reference step (``Neuron.backend``);
* ``presim`` — the neuron pre-simulates input steps at the start of a batch (COS);
* ``encodes_input`` — the neuron turns the network's input into spikes itself.

Nothing here imports torch; the entries are filled when the registry is first read (each module of
:mod:`snnx.neurons` is imported then).
"""

from __future__ import annotations

from snnx.registry import Registry

# Every module of snnx.neurons is imported when the registry is first read, so a new neuron is one new module.
NEURONS = Registry("neuron", group="neuron", package="snnx.neurons")

__all__ = ["NEURONS"]
