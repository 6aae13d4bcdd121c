"""Component registries: each component (activation, conversion method, dataset …) declares itself once.

An entry holds the component's name (the config option that selects it), its parameters as a
dataclass whose fields carry a one-line doc and their ranges (:func:`param`), its constraints
(free keyword traits the code that uses the kind reads, e.g. which activations a method takes)
and its builder. A registry finds its entries by importing every module of one package, so a
new component is one new module there; nothing else keeps a list of names.

This module and every entry module import no torch at module level: composing a config and
rejecting a bad key must not wait for torch to load (seconds on a small machine). Builders
import what they need when they run.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import math
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from snnx.errors import ConfigError

_NO_DEFAULT = dataclasses.MISSING


def param(default: Any = _NO_DEFAULT, doc: str = "", *, ge: float | None = None, gt: float | None = None,
          le: float | None = None, lt: float | None = None, choices: tuple | None = None, integer: bool = False,
          required: bool = False, allow_inf: bool = False, runtime: bool = False, fix: str | None = None,
          default_factory: Callable[[], Any] | None = None):
    """A dataclass field with its doc and its checks.

    ``ge``/``gt``/``le``/``lt`` bound a number, ``choices`` lists the allowed values, ``integer``
    asks for a whole number, ``required`` rejects null, ``allow_inf`` lets a bounded number be
    infinite (else it must be finite); ``runtime`` marks a key that says where or how fast a run goes,
    not what it computes (left out of cache keys, table identities and the doctor's recipe); ``fix`` is the advice an error gives
    (default: use the field's default). A null value skips the range checks unless ``required``.
    """
    metadata = {"doc": doc, "ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "integer": integer,
                "required": required, "allow_inf": allow_inf, "runtime": runtime, "fix": fix}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Param:
    """One declared parameter, as help texts and checks read it."""

    name: str
    type: str
    default: Any
    doc: str
    metadata: Mapping[str, Any]


def _type_name(tp: Any) -> str:
    """``Optional[int]`` → ``int?``; ``float`` → ``float``; annotations arrive as strings (postponed evaluation)."""
    text = str(tp if isinstance(tp, str) else getattr(tp, "__name__", tp)).replace("typing.", "")
    if text.startswith("Optional[") and text.endswith("]"):
        return text[len("Optional["):-1] + "?"
    return text


def declared_params(params: type) -> list[Param]:
    """The fields of a params dataclass, in declaration order."""
    out = []
    for f in dataclasses.fields(params):
        if f.default is not _NO_DEFAULT:
            default = f.default
        elif f.default_factory is not _NO_DEFAULT:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = None
        out.append(Param(f.name, _type_name(f.type), default, str(f.metadata.get("doc", "")), f.metadata))
    return out


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    params: type
    build: Callable[..., Any] | None
    doc: str
    traits: Mapping[str, Any]
    check: Callable[[Mapping[str, Any], str], None] | None = None  # cross-field checks: (values, key prefix)

    def trait(self, key: str, default: Any = None) -> Any:
        return self.traits.get(key, default)

    @property
    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.params)]

    def defaults(self) -> dict[str, Any]:
        """Every declared key at its default (a nested dataclass default as a plain dict)."""
        return {p.name: dataclasses.asdict(p.default) if dataclasses.is_dataclass(p.default) else p.default
                for p in declared_params(self.params)}


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def check_value(prefix: str, p: Param, value: Any) -> None:
    """Raise a ConfigError if ``value`` breaks ``p``'s declared range or choices."""
    meta = p.metadata
    key = f"{prefix}.{p.name}" if prefix else p.name
    fix = meta.get("fix") or (f"Use e.g. {key}={_show(p.default)}." if p.default is not None else
                              f"Set {key} to a value.")
    if value is None:
        if meta.get("required"):
            raise ConfigError("has no value.", key=key, fix=fix)
        return
    if p.type == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"must be true or false, got {value!r}.", key=key, fix=f"Set {key}=true or {key}=false.")
        return
    choices = meta.get("choices")
    if choices is not None:
        if value not in choices:
            raise ConfigError(f"unknown value {value!r}.", key=key, fix=f"Use one of: {', '.join(map(_show, choices))}.")
        return
    bounds = [(meta.get(b), b) for b in ("ge", "gt", "le", "lt") if meta.get(b) is not None]
    if not bounds and not meta.get("integer"):
        return
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    if number and not meta.get("allow_inf"):
        number = math.isfinite(value)
    if number and meta.get("integer"):
        number = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())
    ok = number and all({"ge": value >= b, "gt": value > b, "le": value <= b, "lt": value < b}[which]
                        for b, which in bounds) if number else False
    if not ok:
        lower = next(((b, w) for b, w in bounds if w in ("ge", "gt")), None)
        upper = next(((b, w) for b, w in bounds if w in ("le", "lt")), None)
        noun = "an integer" if meta.get("integer") else "a number"
        if lower and upper:
            what = f"{noun} in {'[' if lower[1] == 'ge' else '('}{_show(lower[0])}, {_show(upper[0])}" \
                   f"{']' if upper[1] == 'le' else ')'}"
        elif lower:
            what = f"{noun} {'≥' if lower[1] == 'ge' else '>'} {_show(lower[0])}"
        elif upper:
            what = f"{noun} {'≤' if upper[1] == 'le' else '<'} {_show(upper[0])}"
        else:
            what = noun
        raise ConfigError(f"must be {what}, got {value!r}.", key=key, fix=fix)


class Registry:
    """Name → :class:`Entry` for one kind of component, filled by the modules of ``package``."""

    def __init__(self, kind: str, *, group: str, package: str | None = None):
        self.kind = kind
        self.group = group  # the config group (and key prefix) that selects an entry
        self.package = package
        self._entries: dict[str, Entry] = {}
        self._loaded = package is None

    def register(self, name: str, *, params: type, doc: str, check: Callable | None = None,
                 **traits: Any) -> Callable[[Callable], Callable]:
        """Decorator: register the decorated builder as entry ``name``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if not dataclasses.is_dataclass(params) or "name" not in {f.name for f in dataclasses.fields(params)}:
            raise ValueError(f"{self.kind} {name!r}: params must be a dataclass with a 'name' field")

        def decorator(build: Callable) -> Callable:
            if name in self._entries and self._entries[name].build is not build:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = Entry(self.kind, name, params, build, doc, dict(traits), check)
            return build

        return decorator

    def unregister(self, name: str) -> None:
        """Remove an entry (tests that register a toy component clean up with this)."""
        self._entries.pop(name, None)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(self.package)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")

    def names(self) -> list[str]:
        self._load()
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        self._load()
        return iter(list(self._entries.values()))

    def get(self, name: Any) -> Entry:
        """The entry, or a ConfigError that lists the registered names."""
        self._load()
        entry = self._entries.get(name) if isinstance(name, str) else None
        if entry is None:
            names = list(self._entries)
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f"Did you mean {self.group}={close[0]}? " if close else ""
            raise ConfigError(f"unknown {self.kind} {name!r}.", key=self.group, fix=f"{hint}Use one of: {', '.join(names)}.")
        return entry

    def where(self, predicate: Callable[[Entry], bool]) -> list[str]:
        """Names of the entries for which ``predicate(entry)`` holds, in registration order."""
        return [e.name for e in self if predicate(e)]

    def declared(self, name: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """The items of ``values`` that entry ``name`` declares, ``name`` left out: a section written for another
        option, or saved before each option had its own keys, reduced to what this option takes."""
        keys = set(self.get(name).keys) - {"name"}
        return {k: v for k, v in values.items() if k in keys}

    def check(self, values: Mapping[str, Any], *, explicit: Callable[[str], bool] | None = None,
              note: Callable[[str], None] | None = None) -> dict[str, Any]:
        """``values`` (one group of a config) checked against its entry; returns them with every declared key.

        A key the entry does not declare is an error naming the entry's keys — unless ``explicit``
        says it was not set by the user directly (an experiment preset set it for another option of
        the group) and another entry declares it: then it is dropped, with a note.
        """
        entry = self.get(values.get("name"))
        out = entry.defaults()
        declared = set(out)
        for key, value in values.items():
            if key in declared:
                out[key] = value
                continue
            elsewhere = [e.name for e in self if key in e.keys]
            if elsewhere and explicit is not None and not explicit(f"{self.group}.{key}"):
                if note is not None:
                    note(f"{self.group}.{key}={_show(value)} (set by the experiment preset) does not apply to "
                         f"{self.group}={entry.name}: dropped")
                continue
            raise unknown_key_error(self, entry, key, elsewhere)
        for p in declared_params(entry.params):
            check_value(self.group, p, out[p.name])
        if entry.check is not None:
            entry.check(out, self.group)
        return out


def unknown_key_error(registry: Registry, entry: Entry, key: str, elsewhere: list[str]) -> ConfigError:
    own = [k for k in entry.keys if k != "name"]
    close = difflib.get_close_matches(key, own, n=1)
    hint = f"Did you mean {registry.group}.{close[0]}? " if close else ""
    problem = (f"does not apply to {registry.group}={entry.name} (it is a key of {registry.group}={', '.join(elsewhere)})."
               if elsewhere else f"unknown key: {registry.group}={entry.name} has no such setting.")
    return ConfigError(problem, key=f"{registry.group}.{key}",
                       fix=f"{hint}The keys of {registry.group}={entry.name} are: {', '.join(own) or '(none)'}.")
