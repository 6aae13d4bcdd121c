"""Model registry: name → builder, with the smallest image each model accepts.

A builder is a function with keyword-only arguments::

    def lenet(*, in_channels, image_size, num_classes, act_factory,
              width, batch_norm, pool, dropout_conv, dropout_fc) -> nn.Module

(plus ``votes`` for a model registered with a voting output layer),
registered with :func:`register_model`. :func:`create_model` checks the
options that every model shares (name, image size, width, pool, dropout,
init) before calling the builder, so builders can assume valid input, and
applies ``init`` to the built model.
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

POOLS = ("avg", "max", "conv")  # "conv": a 2×2 stride-2 conv (+BN, act); vgg11_allint, lenet_allint only
INITS = ("default", "denggu")  # default: Kaiming-normal (fan_out) convs; denggu: Deng & Gu 2021, App. A.1
DROPOUT_SITES = ("conv", "fc")


@dataclass(frozen=True)
class _Entry:
    builder: Builder
    min_image_size: int
    dropout: tuple[str, ...]  # where the model has places for model.dropout.<site>
    votes: int | None  # default group size of a voting output layer; None: the model has none


_REGISTRY: dict[str, _Entry] = {}


def register_model(name: str, *, min_image_size: int = 1, dropout: tuple[str, ...] = DROPOUT_SITES,
                   votes: int | None = None) -> Callable[[Builder], Builder]:
    """Register ``builder`` under ``name`` (decorator).

    ``min_image_size`` is the smallest square image side the model is
    designed for; :func:`create_model` rejects smaller images with a
    :class:`ConfigError` instead of changing the architecture. ``dropout``
    names the sites the model has ("conv": a conv feeding a conv, "fc": a
    Linear feeding a Linear); a nonzero probability for a missing site is a
    ConfigError. ``votes`` (the default group size) marks a model whose
    builder takes ``votes``, the outputs per class of its voting layer.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    if not isinstance(min_image_size, int) or min_image_size < 1:
        raise ValueError(f"min_image_size must be an int >= 1, got {min_image_size!r}")
    if not set(dropout) <= set(DROPOUT_SITES):
        raise ValueError(f"dropout sites must be among {DROPOUT_SITES}, got {dropout!r}")

    def decorator(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = _Entry(builder, min_image_size, tuple(dropout), votes)
        return builder

    return decorator


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_models() -> list[str]:
    """Names of all registered models, sorted naturally (resnet18 before resnet101)."""
    return sorted(_REGISTRY, key=_natural_key)


def _min_image_size(name: str) -> int:
    return _REGISTRY[name].min_image_size


def dropout_sites(name: str) -> tuple[str, ...]:
    """The dropout sites ("conv", "fc") model ``name`` has."""
    return _REGISTRY[name].dropout


def default_votes(name: str) -> int | None:
    """The voting layer's default outputs per class for model ``name``; None if it has no voting layer."""
    return _REGISTRY[name].votes


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

    entry = _REGISTRY[name]
    check_image_size(name, image_size)
    extra = {} if entry.votes is None else {"votes": entry.votes if votes is None else votes}
    model = entry.builder(
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
        from snnx.models.layers import init_denggu

        init_denggu(model)
    return model


def _probability(value, key: str, site: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ConfigError(
            f"dropout must be a probability in [0, 1), got {value!r}.",
            key=key,
            fix=f"Use e.g. {key}=0.0 (off) or {key}={0.2 if site == 'conv' else 0.5} "
                "(Deng & Gu 2021, App. A.1).",
        )


def check_options(name: str, *, width: float = 1.0, batch_norm: bool = True, pool: str = "avg",
                  dropout_conv: float = 0.0, dropout_fc: float = 0.0, init: str = "default",
                  votes: int | None = None) -> None:
    """Raise ConfigError (key ``model`` / ``model.<option>``) for an unknown model or an option it cannot take."""
    if not isinstance(name, str) or name not in _REGISTRY:
        names = list_models()
        close = difflib.get_close_matches(str(name), names, n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ConfigError(
            f"unknown model {name!r}.",
            key="model",
            fix=f"Use one of: {', '.join(names)}.{hint}",
        )
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
    entry = _REGISTRY[name]
    for site, value in (("conv", dropout_conv), ("fc", dropout_fc)):
        key = f"model.dropout.{site}"
        _probability(value, key, site)
        if value > 0 and site not in entry.dropout:
            where = ("no conv layer feeding another conv layer directly" if site == "conv"
                     else "no fully connected layer feeding another one (its only Linear is the output layer)")
            raise ConfigError(
                f"model={name} has {where}, so there is no place for this dropout.",
                key=key,
                fix=f"Leave {key}=0.0 for model={name}, or use a model with such layers "
                    f"({' / '.join(n for n in list_models() if site in _REGISTRY[n].dropout)}).",
            )
    if init not in INITS:
        raise ConfigError(
            f"unknown init {init!r}.",
            key="model.init",
            fix="Use model.init=default (Kaiming-normal convs) or model.init=denggu "
                "(Deng & Gu 2021, App. A.1).",
        )
    if votes is not None:
        if entry.votes is None:
            raise ConfigError(
                f"model={name} has no voting output layer.",
                key="model.votes",
                fix=f"Leave model.votes unset (null) for model={name}; it applies to "
                    f"model={' / '.join(n for n in list_models() if _REGISTRY[n].votes is not None)}.",
            )
        if isinstance(votes, bool) or not isinstance(votes, int) or votes < 1:
            raise ConfigError(
                f"must be a positive int, got {votes!r}.",
                key="model.votes",
                fix=f"Use e.g. model.votes={entry.votes} (outputs per class, averaged) or 1 (a plain output layer).",
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

