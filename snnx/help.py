"""``snnx <stage> --help`` / ``snnx help <stage> [overrides]``: the keys a stage reads, from the schemas.

For each config group the stage reads, the chosen option and each of its keys with its type, its
value in the composed config, its default (when the value differs) and its one-line doc — all read
from the registered entries' params and the dataclasses of snnx.config, never from a second list.
"""

from __future__ import annotations

import dataclasses

from omegaconf import OmegaConf

from snnx.composition import compose_checked
from snnx.config import STAGES, ExportConfig, SimConfig, SnnxConfig, TableConfig, TrainConfig, registries
from snnx.registry import declared_params

_GROUP_SCHEMAS = {"train": TrainConfig, "sim": SimConfig, "table": TableConfig, "export": ExportConfig}


def _show(value) -> str:
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value).replace(" ", "") if isinstance(value, (list, dict)) else str(value)


def _lines(prefix: str, params, values, width: int = 26) -> list[str]:
    out = []
    for p in params:
        if p.name == "name":
            continue
        if dataclasses.is_dataclass(p.default):  # a nested group of keys (model.dropout.conv …)
            nested = values.get(p.name) if values is not None else None
            out += _lines(f"{prefix}.{p.name}" if prefix else p.name, declared_params(type(p.default)), nested, width)
            continue
        value = values.get(p.name) if values is not None else p.default
        shown = _show(value)
        default = _show(p.default)
        extra = "" if shown == default else f" (default {default})"
        doc = f"  — {p.doc}" if p.doc else ""
        out.append(f"  {prefix + '.' + p.name if prefix else p.name:<{width}} {p.type:<10} {shown}{extra}{doc}")
    return out


def describe(stage: str, overrides: list[str]) -> str:
    """The help text for ``snnx <stage> [overrides]``."""
    text, groups = STAGES[stage]
    cfg = compose_checked(stage, overrides)
    lines = [f"snnx {stage}: {text}", "", "usage: snnx {stage} [key=value ...] [-m] [--cfg job]".replace("{stage}", stage)]

    top = [p for p in declared_params(SnnxConfig)
           if p.metadata and p.name != "stage" and not dataclasses.is_dataclass(p.default)]
    lines += ["", "general:"] + _lines("", top, cfg)
    regs = registries()
    for group in groups:
        if group in regs:
            registry = regs[group]
            entry = registry.get(cfg[group].name)
            options = ", ".join(sorted(registry.names()))
            lines += ["", f"{group}={entry.name}: {entry.doc}  (options: {options}; `snnx help {stage} {group}=<option>`)"]
            lines += _lines(group, declared_params(entry.params), cfg[group])
        elif group in _GROUP_SCHEMAS:
            lines += ["", f"{group}={cfg[group].name}:" if "name" in cfg[group] else f"{group}:"]
            lines += _lines(group, declared_params(_GROUP_SCHEMAS[group]), cfg[group])
        else:
            lines += ["", f"{group}: `snnx {stage} --cfg job` prints its keys"]
    lines += ["", "Set a key with group.key=value; choose an option with group=option; `--hydra-help`: Hydra's flags."]
    return "\n".join(lines)
