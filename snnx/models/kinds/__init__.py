"""One module per model family; each declares its models in :data:`snnx.models.registry.MODELS`.

Declarations only (no torch): each names its builder as ``"module:function"``, imported when the
model is built.
"""
