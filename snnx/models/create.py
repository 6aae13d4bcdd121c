"""``create_model``: build a registered model (:mod:`snnx.models.registry`) with an injected activation factory."""

from __future__ import annotations

from typing import Callable

from torch import nn

from snnx.models.layers import init_denggu
from snnx.models.registry import MODELS, check_image_size, check_options

ActFactory = Callable[[int], nn.Module]


def _once_per_site(act_factory: ActFactory) -> ActFactory:
    """Wrap ``act_factory`` so a module returned twice (reused at two sites) fails loudly."""
    seen: set[int] = set()
    keep: list[nn.Module] = []  # keep returned modules alive so ids stay unique

    def factory(num_channels: int) -> nn.Module:
        module = act_factory(num_channels)
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"act_factory({num_channels}) returned {type(module).__name__}, not an nn.Module"
            )
        if id(module) in seen:
            raise ValueError(
                "act_factory returned the same module for two activation sites; "
                "it must build a new module on every call"
            )
        seen.add(id(module))
        keep.append(module)
        return module

    return factory


def create_model(
    name: str,
    *,
    in_channels: int,
    image_size: int,
    num_classes: int,
    act_factory: ActFactory,
    width: float = 1.0,
    batch_norm: bool = True,
    pool: str = "avg",
    dropout_conv: float = 0.0,
    dropout_fc: float = 0.0,
    init: str = "default",
    votes: int | None = None,
) -> nn.Module:
    """Build the registered model ``name`` for ``in_channels``×``image_size``² inputs.

    Every nonlinearity is ``act_factory(num_channels)``, called once per
    activation site in forward order. ``width`` scales every channel and
    hidden-feature count (``max(1, round(c * width))``); ``batch_norm``
    toggles BatchNorm after each conv (without it convs and Linears have a
    bias); ``pool`` ("avg" or "max") picks the module type of the local
    poolings; ``dropout_conv`` / ``dropout_fc`` are the probabilities of the
    ``nn.Dropout`` between conv layers / between fully connected layers
    (placement: :mod:`snnx.models.layers`); ``init`` is "default" or
    "denggu" (:func:`snnx.models.layers.init_denggu`); ``votes`` is the
    outputs per class of a voting output layer (None: the model's default).

    Raises :class:`ConfigError` (key ``model`` or ``model.<option>``) for an
    unknown name, an image too small for the model, or an invalid option.
    """
    check_options(name, width=width, batch_norm=batch_norm, pool=pool, dropout_conv=dropout_conv,
                  dropout_fc=dropout_fc, init=init, votes=votes)
    for arg, value in (("in_channels", in_channels), ("image_size", image_size),
                       ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    if not callable(act_factory):
        raise TypeError(f"act_factory must be callable, got {type(act_factory).__name__}")

    entry = MODELS.get(name)
    check_image_size(name, image_size)
    default_votes = entry.trait("votes")
    extra = {} if default_votes is None else {"votes": default_votes if votes is None else votes}
    model = entry.build(
        in_channels=in_channels,
        image_size=image_size,
        num_classes=num_classes,
        act_factory=_once_per_site(act_factory),
        width=float(width),
        batch_norm=batch_norm,
        pool=pool,
        dropout_conv=float(dropout_conv),
        dropout_fc=float(dropout_fc),
        **extra,
    )
    if init == "denggu":
        init_denggu(model)
    return model
