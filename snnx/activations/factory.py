"""``make_act_factory``: an activation's name and parameters → a callable that builds one module per site."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn

from snnx.activations.registry import ACTIVATIONS
from snnx.errors import ConfigError
from snnx.registry import Entry, declared_params


def resolve_grad_window(name: str, value) -> str | None:
    """``act.grad_window`` with ``auto``/None replaced by ``name``'s own window (None for acts without one)."""
    entry = ACTIVATIONS.get(name)
    if "grad_window" not in entry.keys:
        return None
    return entry.trait("grad_window") if value in (None, "auto") else value


class ActFactory:
    """``factory(num_channels) -> nn.Module``; called once per activation site in forward order.

    The first call builds the network's first (encoding) site, which some activations treat apart
    (act=quant: its own level and clip).
    """

    def __init__(self, entry: Entry, params: Mapping):
        self.entry = entry
        self.name = entry.name
        self.params = dict(params)
        self.calls = 0

    def __call__(self, num_channels: int) -> nn.Module:
        if isinstance(num_channels, bool) or not isinstance(num_channels, int) or num_channels < 1:
            raise ValueError(f"num_channels must be an integer >= 1, got {num_channels!r}")
        first = self.calls == 0
        self.calls += 1
        return self.entry.build(self.params, num_channels, first=first)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items() if k != "name")
        return f"ActFactory({self.name!r}{', ' if args else ''}{args})"


def make_act_factory(name: str, **params) -> Callable[[int], nn.Module]:
    """A new factory for activation ``name`` (an ``act=`` option, see ``snnx help act=<name>``).

    ``params`` are ``act.*`` values: a key the activation does not declare is a ConfigError naming
    its keys; a missing key, or None for a key that cannot be null, takes the declared default.
    """
    if not isinstance(name, str):
        raise ConfigError(f"unknown activation {name!r}.", key="act", fix=f"Choose one of: {', '.join(ACTIVATIONS.names())}.")
    entry = ACTIVATIONS.get(name.lower())
    nullable = {p for p in entry.keys if _nullable(entry, p)}
    given = {k: v for k, v in params.items() if v is not None or k in nullable}
    return ActFactory(entry, ACTIVATIONS.check({**given, "name": entry.name}))


def activation_params(act: Mapping) -> dict:
    """The keys of ``act`` (a config's act section) that its activation declares.

    Checkpoints written before each activation had its own schema carry every activation's keys;
    the ones that never applied are left out here.
    """
    return ACTIVATIONS.declared(act["name"], act)


def _nullable(entry: Entry, key: str) -> bool:
    return any(p.name == key and p.type.endswith("?") for p in declared_params(entry.params))
