"""Model registry: name → builder, with the smallest image each model accepts.

A builder is a function with keyword-only arguments::

    def lenet(*, in_channels, image_size, num_classes, act_factory,
              width, batch_norm, pool, dropout) -> nn.Module

registered with :func:`register_model`. :func:`create_model` checks the
options that every model shares (name, image size, width, pool, dropout)
before calling the builder, so builders can assume valid input.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Callable

from torch import nn

from snnx.errors import ConfigError

ActFactory = Callable[[int], nn.Module]
Builder = Callable[..., nn.Module]

POOLS = ("avg", "max", "conv")  # "conv": a 2×2 stride-2 conv (+BN, act); vgg11_allint only


@dataclass(frozen=True)
class _Entry:
    builder: Builder
    min_image_size: int


_REGISTRY: dict[str, _Entry] = {}


def register_model(name: str, *, min_image_size: int = 1) -> Callable[[Builder], Builder]:
    """Register ``builder`` under ``name`` (decorator).

    ``min_image_size`` is the smallest square image side the model is
    designed for; :func:`create_model` rejects smaller images with a
    :class:`ConfigError` instead of changing the architecture.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    if not isinstance(min_image_size, int) or min_image_size < 1:
        raise ValueError(f"min_image_size must be an int >= 1, got {min_image_size!r}")

    def decorator(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = _Entry(builder, min_image_size)
        return builder

    return decorator


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_models() -> list[str]:
    """Names of all registered models, sorted naturally (resnet18 before resnet101)."""
    return sorted(_REGISTRY, key=_natural_key)


def _min_image_size(name: str) -> int:
    return _REGISTRY[name].min_image_size


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
    dropout: float = 0.0,
) -> nn.Module:
    """Build the registered model ``name`` for ``in_channels``×``image_size``² inputs.

    Every nonlinearity is ``act_factory(num_channels)``, called once per
    activation site in forward order. ``width`` scales every channel and
    hidden-feature count (``max(1, round(c * width))``); ``batch_norm``
    toggles BatchNorm after each conv; ``pool`` ("avg" or "max") picks the
    module type of the local poolings; ``dropout`` is the probability of the
    ``nn.Dropout`` before each Linear layer.

    Raises :class:`ConfigError` (key ``model`` or ``model.<option>``) for an
    unknown name, an image too small for the model, or an invalid option.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        names = list_models()
        close = difflib.get_close_matches(str(name), names, n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ConfigError(
            f"unknown model {name!r}.",
            key="model",
            fix=f"Use one of: {', '.join(names)}.{hint}",
        )
    for arg, value in (("in_channels", in_channels), ("image_size", image_size),
                       ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    if not callable(act_factory):
        raise TypeError(f"act_factory must be callable, got {type(act_factory).__name__}")

    if (isinstance(width, bool) or not isinstance(width, (int, float))
            or not math.isfinite(width) or width <= 0):
        raise ConfigError(
            f"width must be a positive number, got {width!r}.",
            key="model.width",
            fix="Use e.g. model.width=1.0 (full size) or 0.5 (half the channels).",
        )
    if not isinstance(batch_norm, bool):
        raise ConfigError(
            f"batch_norm must be true or false, got {batch_norm!r}.",
            key="model.batch_norm",
            fix="Use model.batch_norm=true or model.batch_norm=false.",
        )
    if pool not in POOLS:
        raise ConfigError(
            f"pool must be 'avg' or 'max', got {pool!r}.",
            key="model.pool",
            fix="Use model.pool=avg (converts exactly) or model.pool=max "
                "(replaced by average pooling at conversion).",
        )
    if (isinstance(dropout, bool) or not isinstance(dropout, (int, float))
            or not 0.0 <= dropout < 1.0):
        raise ConfigError(
            f"dropout must be a probability in [0, 1), got {dropout!r}.",
            key="model.dropout",
            fix="Use e.g. model.dropout=0.0 (off) or 0.5.",
        )

    entry = _REGISTRY[name]
    check_image_size(name, image_size)

    return entry.builder(
        in_channels=in_channels,
        image_size=image_size,
        num_classes=num_classes,
        act_factory=_once_per_site(act_factory),
        width=float(width),
        batch_norm=batch_norm,
        pool=pool,
        dropout=float(dropout),
    )

def check_image_size(name: str, image_size: int) -> None:
    """Raise ConfigError(key='model') when ``name`` cannot take ``image_size``² images."""
    entry = _REGISTRY[name]
    if image_size < entry.min_image_size:
        fits = [n for n in list_models() if _min_image_size(n) <= image_size]
        if fits:
            fix = (f"Use a model that fits {image_size}×{image_size} images "
                   f"(model={' / '.join(fits)}), or a dataset with images of at "
                   f"least {entry.min_image_size}×{entry.min_image_size}.")
        else:
            fix = (f"No registered model fits {image_size}×{image_size} images; use a "
                   f"dataset with images of at least {entry.min_image_size}×"
                   f"{entry.min_image_size}.")
        raise ConfigError(
            f"model={name} needs images of at least {entry.min_image_size}×"
            f"{entry.min_image_size} (image_size ≥ {entry.min_image_size}; its poolings "
            f"and strides would shrink smaller images too far), but the dataset has "
            f"{image_size}×{image_size} images.",
            key="model",
            fix=fix,
        )

