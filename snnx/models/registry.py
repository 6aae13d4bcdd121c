"""The models, by name (``model=<name>``): entries declared in :mod:`snnx.models.kinds`, one module per family.

An entry declares the model's parameters (:class:`ModelParams`; :class:`VotingModelParams` for a
voting output layer), the smallest square image it takes (``min_image_size``), where it has room
for dropout (``dropout``: "conv" — a conv feeding a conv, "fc" — a Linear feeding a Linear),
which local poolings it can build (``pools``) and its builder: a function with keyword-only
arguments::

    def lenet(*, in_channels, image_size, num_classes, act_factory,
              width, batch_norm, pool, dropout_conv, dropout_fc) -> nn.Module

(plus ``votes`` for a voting model). Entries name their builder as ``"module:function"``, imported
when a model is built: this module and the entries import no torch, so a config is checked
against them without loading it. :func:`snnx.models.create.create_model` builds an entry.
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass
from typing import Callable, Optional

from snnx.errors import ConfigError
from snnx.registry import Registry, param

MODELS = Registry("model", group="model", package="snnx.models.kinds")

POOLS = ("avg", "max")  # local poolings every model can build; "conv": 2×2 stride-2 convs (entries that say so)
INITS = ("default", "denggu")  # default: Kaiming-normal (fan_out) convs; denggu: Deng & Gu 2021, App. A.1
DROPOUT_SITES = ("conv", "fc")


@dataclass
class DropoutParams:
    conv: float = param(0.0, "p after the act of each conv that feeds a conv (Deng & Gu 2021, App. A.1: 0.2)",
                        ge=0, lt=1)
    fc: float = param(0.0, "p after the act of each Linear that feeds a Linear (Deng & Gu 2021, App. A.1: 0.5)",
                      ge=0, lt=1)


@dataclass
class ModelParams:
    name: str = param("", "the model")
    width: float = param(1.0, "scales every channel and hidden-feature count (max(1, round(c·width)))", gt=0,
                         fix="Use e.g. model.width=1.0 (full size) or 0.5 (half the channels).")
    batch_norm: bool = param(True, "BatchNorm after each conv; false: none anywhere, convs and Linears get a bias")
    pool: str = param("avg", "local pooling: avg | max (replaced at conversion: convert.maxpool=avg) | conv "
                      "(where the model has it)")
    dropout: DropoutParams = param(doc="dropout probabilities per site", default_factory=DropoutParams)
    init: str = param("default", "default: Kaiming-normal (fan_out) convs | denggu: N(0, √(2/(k²n))), residual-branch "
                      "convs √2/(k²n) (Deng & Gu 2021, App. A.1); Linears keep PyTorch's default",
                      choices=INITS)


@dataclass
class VotingModelParams(ModelParams):
    votes: Optional[int] = param(None, "outputs per class of the voting layer, averaged (1 = a plain Linear); "
                                 "null = the model's default", ge=1, integer=True)


def check_model(values: dict, prefix: str = "model") -> None:
    """The options an entry's traits restrict: its poolings, its dropout sites."""
    entry = MODELS.get(values["name"])
    pools = entry.trait("pools", POOLS)
    if values["pool"] not in pools:
        others = [n for n in MODELS.names() if values["pool"] in MODELS.get(n).trait("pools", POOLS)]
        elsewhere = f" ({values['pool']} is model={' / '.join(others)}'s)" if others else ""
        raise ConfigError(f"model={entry.name} has no {values['pool']!r} pooling{elsewhere}.", key=f"{prefix}.pool",
                          fix=f"Use one of: {', '.join(pools)}.")
    dropout = values["dropout"] or {}
    unknown = sorted(set(dropout) - set(DROPOUT_SITES))
    if unknown:
        raise ConfigError("unknown dropout site.", key=f"{prefix}.dropout.{unknown[0]}",
                          fix=f"The keys of {prefix}.dropout are: {', '.join(DROPOUT_SITES)}.")
    for site in DROPOUT_SITES:
        key = f"{prefix}.dropout.{site}"
        value = dropout.get(site, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ConfigError(f"dropout must be a probability in [0, 1), got {value!r}.", key=key,
                              fix=f"Use e.g. {key}=0.0 (off) or {key}={0.2 if site == 'conv' else 0.5} "
                                  "(Deng & Gu 2021, App. A.1).")
        if value > 0 and site not in entry.trait("dropout", DROPOUT_SITES):
            where = ("no conv layer feeding another conv layer directly" if site == "conv"
                     else "no fully connected layer feeding another one (its only Linear is the output layer)")
            fits = [n for n in MODELS.names() if site in MODELS.get(n).trait("dropout", DROPOUT_SITES)]
            raise ConfigError(f"model={entry.name} has {where}, so there is no place for this dropout.", key=key,
                              fix=f"Leave {key}=0.0 for model={entry.name}, or use a model with such layers "
                                  f"({' / '.join(fits)}).")


def _lazy(target: str) -> Callable:
    module, _, name = target.partition(":")

    def build(**kwargs):
        return getattr(importlib.import_module(module), name)(**kwargs)

    build.__qualname__ = build.__name__ = name
    build.target = target  # type: ignore[attr-defined]
    return build


def register_model(name: str, *, builder: str | Callable | None = None, min_image_size: int = 1,
                   dropout: tuple[str, ...] = DROPOUT_SITES, votes: int | None = None,
                   pools: tuple[str, ...] = POOLS, doc: str = "", params: type | None = None,
                   key_marks: Callable[[int], dict] | None = None):
    """Register model ``name``. ``builder``: ``"module:function"`` (imported when built) or the function;
    without it, a decorator for the builder function.

    ``min_image_size`` is the smallest square image side the model is designed for (smaller images
    are a ConfigError, the architecture is not changed); ``dropout`` names its dropout sites;
    ``votes`` (the default group size) marks a voting output layer, whose builder takes ``votes``;
    ``pools`` lists the poolings it can build; ``params`` replaces the params dataclass
    (:class:`ModelParams`, or :class:`VotingModelParams` with ``votes``); ``key_marks(image_size)`` gives
    the entries an architecture revision adds to the ANN cache key (so older caches are not taken for it).
    """
    if not isinstance(min_image_size, int) or min_image_size < 1:
        raise ValueError(f"min_image_size must be an int >= 1, got {min_image_size!r}")
    if not set(dropout) <= set(DROPOUT_SITES):
        raise ValueError(f"dropout sites must be among {DROPOUT_SITES}, got {dropout!r}")
    params = params or (ModelParams if votes is None else VotingModelParams)

    def decorator(build):
        if name in MODELS:
            raise ValueError(f"model {name!r} is already registered")
        MODELS.register(name, params=params, doc=doc or name, check=check_model, min_image_size=min_image_size,
                        dropout=tuple(dropout), votes=votes, pools=tuple(pools),
                        key_marks=key_marks)(build)
        return build

    if builder is None:
        return decorator
    return decorator(_lazy(builder) if isinstance(builder, str) else builder)


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_models() -> list[str]:
    """Names of all registered models, sorted naturally (resnet18 before resnet101)."""
    return sorted(MODELS.names(), key=_natural_key)


def min_image_size(name: str) -> int:
    return MODELS.get(name).trait("min_image_size")


def check_options(name: str, *, width: float = 1.0, batch_norm: bool = True, pool: str = "avg",
                  dropout_conv: float = 0.0, dropout_fc: float = 0.0, init: str = "default",
                  votes: int | None = None) -> None:
    """Raise ConfigError (key ``model`` / ``model.<option>``) for an unknown model or an option it cannot take."""
    entry = MODELS.get(name)
    values = {"name": name, "width": width, "batch_norm": batch_norm, "pool": pool,
              "dropout": {"conv": dropout_conv, "fc": dropout_fc}, "init": init}
    if votes is not None:
        if entry.trait("votes") is None:
            voting = [n for n in list_models() if MODELS.get(n).trait("votes") is not None]
            raise ConfigError(f"model={name} has no voting output layer.", key="model.votes",
                              fix=f"Leave model.votes unset (null) for model={name}; it applies to "
                                  f"model={' / '.join(voting)}.")
        values["votes"] = votes
    if isinstance(width, (int, float)) and not isinstance(width, bool) and not math.isfinite(width):
        raise ConfigError(f"width must be a positive number, got {width!r}.", key="model.width",
                          fix="Use e.g. model.width=1.0 (full size) or 0.5 (half the channels).")
    MODELS.check(values)


def check_image_size(name: str, image_size: int) -> None:
    """Raise ConfigError(key='model') when ``name`` cannot take ``image_size``² images."""
    least = min_image_size(name)
    if image_size < least:
        fits = [n for n in list_models() if min_image_size(n) <= image_size]
        if fits:
            fix = (f"Use a model that fits {image_size}×{image_size} images (model={' / '.join(fits)}), or a "
                   f"dataset with images of at least {least}×{least}.")
        else:
            fix = (f"No registered model fits {image_size}×{image_size} images; use a dataset with images of at "
                   f"least {least}×{least}.")
        raise ConfigError(f"model={name} needs images of at least {least}×{least} (image_size ≥ {least}; its "
                          f"poolings and strides would shrink smaller images too far), but the dataset has "
                          f"{image_size}×{image_size} images.", key="model", fix=fix)
