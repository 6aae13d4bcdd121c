"""Composing a config with Hydra, and turning Hydra's composition errors into one paragraph.

The one place besides the CLI app that calls Hydra: the app, the API, the help and the stages that
compose another preset (train.init_from=experiment:<name>, the doctor's preset comparison) use it.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.conf import HydraConf
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf

from snnx.config import GROUPS, SnnxConfig, config_dir, group_options, option_entry, registries
from snnx.errors import ConfigError, SnnxError


def schema_node(entry) -> DictConfig:
    """An entry's params as a config node: typed, with its name set, open to keys of other options.

    Open because an experiment preset may set a key for the option it chooses that a command-line
    choice of another option then leaves without a home; validate drops such a key (with a note)
    and rejects one the command line set (snnx.registry.Registry.check).
    """
    node = OmegaConf.structured(entry.params)
    node.name = entry.name
    OmegaConf.set_struct(node, False)
    return node


_STORED: set[tuple[int, str]] = set()


def register_configs(conf_dir: str | os.PathLike | None = None) -> None:
    """Store the schemas: the primary one, and each registered option's as ``schema/<group>/<name>``.

    A group option's YAML inherits its schema (``defaults: [/schema/<group>@_here_: <name>]``); an
    entry without a YAML file under ``conf_dir`` is stored as the option itself, so a component
    registered from Python (a test's toy method) can be chosen with group=<name>.
    """
    conf_dir = config_dir() if conf_dir is None else conf_dir
    cs = ConfigStore.instance()
    cs.store(name="snnx_schema", node=SnnxConfig)
    for group, registry in registries().items():
        for entry in registry:
            if (id(entry), str(conf_dir)) in _STORED:
                continue  # stored by an earlier composition in this process
            _STORED.add((id(entry), str(conf_dir)))
            node = schema_node(entry)
            cs.store(group=f"schema/{group}", name=entry.name, node=node)
            if not (Path(conf_dir) / group / f"{entry.name}.yaml").is_file():
                cs.store(group=group, name=entry.name, node=node)


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _override_value(override: str) -> str | None:
    return override.split("=", 1)[1] if "=" in override else None


# -- composition ----------------------------------------------------------------
# List keys that also take a single value: sim.T=32 means [32] (the schema's type stays a list).
SCALAR_AS_LIST = ("sim.T",)


def _as_list(value: str) -> str:
    return value if value.strip().startswith("[") else f"[{value}]"


def normalise_overrides(overrides: list[str]) -> list[str]:
    """The overrides with a single value of a SCALAR_AS_LIST key wrapped in a list: ``sim.T=32`` →
    ``sim.T=[32]``; in a sweep each value (``sim.T=4,8`` → ``sim.T=[4],[8]``). Only whole numbers are
    wrapped: any other value keeps its own error."""
    parser = OverridesParser.create()
    out = []
    for text in overrides:
        if _override_key(text) not in SCALAR_AS_LIST or "=" not in text:
            out.append(text)
            continue
        try:
            ov = parser.parse_override(text)
            values = list(ov.sweep_string_iterator()) if ov.is_sweep_override() else [_override_value(text)]
        except Exception:  # malformed, or a sweep without a list of values: composition explains it
            out.append(text)
            continue
        if not all(re.fullmatch(r"\s*(\[.*\]|[+-]?\d+)\s*", v or "") for v in values):
            out.append(text)
            continue
        out.append(f"{text.split('=', 1)[0]}={','.join(_as_list(v) for v in values)}")
    return out


def compose(stage: str, overrides: list[str]) -> DictConfig:
    """Compose the config the way the app will (for checks, tests and the API)."""
    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=[f"stage={stage}", *normalise_overrides(overrides)])


def compose_checked(stage: str, overrides: list[str]) -> DictConfig:
    """compose(), with Hydra/OmegaConf errors turned into a ConfigError that names the key and the fix."""
    try:
        return compose(stage, overrides)
    except SnnxError:
        raise
    except Exception as exc:  # Hydra and OmegaConf composition errors
        raise ConfigError(explain_hydra_error(exc, overrides, stage)) from exc



# -- explaining Hydra's errors ------------------------------------------------------
def _first_line(text: str, end: str = ".") -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    first = lines[0] if lines else str(text)
    return first.rstrip(".") + end


def _node_keys(path: str, overrides: list[str] = ()) -> list[str] | None:
    """The keys under ``path`` (dotted) in the schema (or in Hydra's own config for hydra.*); for a registered
    group, those of the option the overrides (else config.yaml) choose."""
    group = path.split(".")[0]
    if group in registries():
        chosen = next((_override_value(o) for o in overrides if _override_key(o) == group), None)
        entry = option_entry(group, chosen)
        if entry is not None:
            if path == group:
                return [k for k in entry.keys if k != "name"]
            node = OmegaConf.select(OmegaConf.structured(entry.params), path[len(group) + 1:])
            return [str(k) for k in node.keys()] if OmegaConf.is_dict(node) else None
    try:
        if path == "hydra" or path.startswith("hydra."):
            node = OmegaConf.structured(HydraConf)
            path = path[len("hydra"):].lstrip(".")
        else:
            node = OmegaConf.structured(SnnxConfig)
        if path:
            node = OmegaConf.select(node, path)
        return [str(k) for k in node.keys()] if OmegaConf.is_dict(node) else None
    except Exception:
        return None


def _format_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(str(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _example(key: str, stage: str, overrides: list[str]) -> str | None:
    """``key=<its value in the config these group choices give>``, quoted for the shell if a list."""
    groups = [o for o in overrides if "=" in o and "." not in _override_key(o) and "/" not in _override_key(o)
              and not o.startswith(("+", "~")) and _override_key(o) != key]
    for attempt in (groups, []):
        try:
            value = OmegaConf.select(compose(stage, attempt), key, default=None)
        except Exception:
            continue
        if value is None or OmegaConf.is_config(value) and OmegaConf.is_dict(value):
            return None
        value = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
        text = f"{key}={_format_value(value)}"
        return f"'{text}'" if isinstance(value, (list, tuple)) else text
    return None


_EXPECTED = (
    (r"could not be converted to Integer", "a whole number"),
    (r"could not be converted to Float", "a number"),
    (r"is not a valid bool", "true or false"),
    (r"is not a ListConfig, list or tuple", "a list such as [1,2,4]"),
    (r"Cannot convert '\w+' to string", "a single value, not a list or a group"),
    (r"could not be converted to", "a value of the declared type"),
)


def explain_hydra_error(exc: Exception, overrides: list[str], stage: str = "run") -> str:
    """Turn a Hydra/OmegaConf composition error into one paragraph: key, bad value, fix."""
    text = str(exc)
    flat = " ".join(text.split())
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    by_key = {_override_key(o): o for o in overrides}

    # A malformed override: say which one.
    if isinstance(exc, OverrideParseException) or "Config group override must be" in text:
        parser = OverridesParser.create()
        bad, reason = None, _first_line(text.replace("See https", "\nSee https"), end="")
        for ov in overrides:
            try:
                parsed = parser.parse_override(ov)
                if not parsed.key_or_group:
                    raise ValueError("the key before '=' is empty")
            except Exception as inner:
                bad, reason = ov, _first_line(str(inner).replace("See https", "\nSee https"), end="")
                break
        what = f"the override {bad!r}" if bad is not None else "an override"
        return (f"{_override_key(bad) if bad and _override_key(bad) else 'override'}: cannot read {what} ({reason}). "
                "Write group=option or group.key=value with no spaces around '='; quote lists for the shell, "
                "e.g. 'sim.T=[1,2,4,8]' (grammar: https://hydra.cc/docs/advanced/override_grammar/basic/).")

    # An option that is not in its group.
    match = re.search(r"Could not (?:find|load) '([\w/]+)/([^']*)'", flat)
    if isinstance(exc, MissingConfigException) or match:
        if match:
            group, bad = match.group(1), match.group(2)
            if group.startswith("hydra/"):
                listed = re.search(r"Available options in '[^']*':((?:\s+\S+)+?)\s+Config search path", text)
                names = listed.group(1).split() if listed else []
            else:
                names = group_options().get(group, [])
            if not names:
                return (f"{group}={bad}: the config group '{group}' has no options yet, so {group}={bad} cannot be "
                        f"chosen. Leave {group} out (or add conf/{group}/{bad}.yaml).")
            close = difflib.get_close_matches(bad, names, n=1)
            hint = f"Did you mean {group}={close[0]}? " if close else ""
            return (f"{group}={bad}: no such option in config group '{group}'. {hint}"
                    f"Choose one of: {', '.join(names)}.")
        return f"{_first_line(text)} Check the group=option overrides; `snnx --help` lists every group's options."

    ambiguous = re.search(r"Ambiguous value for argument '([^']*)'", flat)
    if ambiguous:
        bad = ambiguous.group(1)
        key, value = _override_key(bad), _override_value(bad)
        return (f"{key}: {bad} lists several values, a sweep, which only a multirun runs. Add -m for one job "
                f"per value: `snnx {stage} -m {bad}` (a list value is written '{key}=[{value}]').")

    if "Multiple values for" in flat:
        group = re.search(r"Multiple values for ([\w/]+)", flat).group(1)
        return (f"{group}: chosen twice (by the defaults and by +{group}=…). Drop the '+': "
                f"write {group}=<option> to choose another option.")

    full_key = getattr(cause, "full_key", None) or getattr(exc, "full_key", None)
    if not full_key:
        match = re.search(r"full_key: (\S+)", text + " " + str(cause))
        full_key = match.group(1) if match else None
    message = str(getattr(cause, "msg", None) or _first_line(str(cause)))

    # An unknown key.
    if full_key and ("not in" in message and "Key" in message or "Could not override" in flat
                     or "No match in config" in flat):
        parent, _, leaf = full_key.rpartition(".")
        known = _node_keys(parent, overrides) or []
        close = difflib.get_close_matches(leaf, known, n=1)
        hint = f"Did you mean {parent + '.' if parent else ''}{close[0]}? " if close else ""
        listing = f"The keys of {parent or 'the config'} are: {', '.join(known)}." if known else \
            f"`snnx {stage} --cfg {'hydra' if full_key.startswith('hydra') else 'job'}` prints every key."
        return f"{full_key}: unknown key: the config has no such setting. {hint}{listing}"

    # A value of the wrong type.
    if full_key:
        base_key = re.sub(r"\[\d+\]$", "", full_key)
        given = _override_value(by_key.get(base_key, "")) if base_key in by_key else None
        shown = f" {given!r}" if given is not None else ""
        sub_type = re.search(r"is not a subclass of (\w+)", message)
        if sub_type:
            keys = _node_keys(base_key, overrides) or []
            if base_key in GROUPS:
                fix = f"Choose an option with {base_key}=<option> (`snnx --help` lists them)."
            else:
                fix = f"Set one of its keys instead, e.g. {base_key}.{keys[0]}={given or '…'}." if keys else \
                    f"Set one of its keys, e.g. {base_key}.<key>=<value>."
            return f"{base_key}: is a group of settings ({', '.join(keys)}), not a single value{shown}. {fix}"
        for pattern, expected in _EXPECTED:
            if re.search(pattern, message):
                example = _example(base_key, stage, overrides)
                what = "every item must be" if full_key != base_key else "must be"
                fix = f"Give e.g. {example}." if example else f"Give {expected}."
                return f"{base_key}: {what} {expected}, got{shown or ' a value of another type'}. {fix}"
        return f"{full_key}: {_first_line(message)} Fix the value on the command line or in the preset."

    return (f"{_first_line(text)} Check the overrides: `snnx --help` lists the groups and their options, "
            f"`snnx {stage} --cfg job` prints every key.")
