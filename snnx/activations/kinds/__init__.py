"""One module per ANN activation; each registers itself in :data:`snnx.activations.registry.ACTIVATIONS`.

Modules here import no torch at module level (composing a config must stay fast); builders import
the torch modules they build when they run.
"""
