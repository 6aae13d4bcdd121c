"""``make_act_factory``: config ``act.*`` → a callable that builds one activation per site."""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn

from snnx.errors import ConfigError

from .functional import GRAD_WINDOWS
from .modules import CSQCFS, QCFS, Clip, Quant

ACTIVATIONS: tuple[str, ...] = ("relu", "clip", "qcfs", "cqcfs", "sqcfs", "csqcfs", "quant")

#: Which ``act.*`` parameters each activation uses; the others are ignored.
PARAMS: dict[str, tuple[str, ...]] = {
    "relu": (),
    "clip": ("y_th",),
    "qcfs": ("L", "init_threshold", "shift", "grad_window"),
    "cqcfs": ("L", "init_threshold", "shift", "channelwise", "softplus", "grad_window"),
    "sqcfs": ("L", "init_threshold", "shift", "channelwise", "softplus", "grad_window"),
    "csqcfs": ("L", "init_threshold", "shift", "channelwise", "softplus", "grad_window"),
    "quant": ("k", "clip_first", "k_first"),
}

#: Every parameter name the factory accepts. ``warmup_epochs`` belongs to
#: ``act=clip`` but is read by the trainer, not the factory.
KNOWN_PARAMS: tuple[str, ...] = (
    "L",
    "init_threshold",
    "shift",
    "y_th",
    "channelwise",
    "softplus",
    "k",
    "clip_first",
    "k_first",
    "warmup_epochs",
    "grad_window",
)

#: ``act.grad_window=auto`` per activation: the window its paper gives. CS-QCFS and its two
#: ablations (Yang et al. 2025, Eqs. 16–18) take Eqs. 19–20's shifted window; plain QCFS keeps the
#: [0, λ] window of the QCFS reference code (clamp before floor), which the other papers compare
#: against. Yang et al.'s own layer-wise runs (the csqcfs presets) set ``act.grad_window=shifted``.
GRAD_WINDOW_DEFAULTS: dict[str, str] = {"qcfs": "clip", "cqcfs": "shifted", "sqcfs": "shifted", "csqcfs": "shifted"}


def resolve_grad_window(name: str, value) -> str | None:
    """``act.grad_window`` with ``auto``/None replaced by ``name``'s default (None for acts without one)."""
    if name not in GRAD_WINDOW_DEFAULTS:
        return None
    return GRAD_WINDOW_DEFAULTS[name] if value in (None, "auto") else value

DEFAULTS: dict[str, object] = {
    "init_threshold": 8.0,
    "shift": 0.5,
    "y_th": 1.0,
    "clip_first": 4.0,
}

#: (channelwise, softplus) fixed by the name; csqcfs takes both from its flags.
_CS_FLAGS: dict[str, tuple[bool, bool]] = {
    "cqcfs": (True, False),
    "sqcfs": (False, True),
    "csqcfs": (True, True),
}


def _int_param(key: str, value, minimum: int, fix: str) -> int:
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    if ok and isinstance(value, float):
        ok = math.isfinite(value) and value.is_integer()
    if not ok or int(value) < minimum:
        raise ConfigError(f"must be an integer ≥ {minimum}, got {value!r}.", key=f"act.{key}", fix=fix)
    return int(value)


def _positive_param(key: str, value, fix: str, *, allow_inf: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    if ok:
        value_f = float(value)
        ok = value_f > 0 and (allow_inf or math.isfinite(value_f))
    if not ok:
        what = "a number > 0" if allow_inf else "a finite number > 0"
        raise ConfigError(f"must be {what}, got {value!r}.", key=f"act.{key}", fix=fix)
    return float(value)


def _bool_param(key: str, value) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(
            f"must be true or false, got {value!r}.", key=f"act.{key}", fix=f"Set act.{key}=true or act.{key}=false."
        )
    return value


def _validate(name: str, params: dict) -> dict:
    out: dict = {}
    for key in PARAMS[name]:
        if params.get(key) is None and key in DEFAULTS:
            out[key] = DEFAULTS[key]
        elif params.get(key) is not None:
            out[key] = params[key]
    if "L" in PARAMS[name]:
        if "L" not in out:
            raise ConfigError(
                f"is required for act={name}.", key="act.L", fix="Set act.L to the number of quantisation steps, e.g. act.L=4."
            )
        out["L"] = _int_param("L", out["L"], 1, "Set act.L to the number of quantisation steps, e.g. act.L=4.")
    if "init_threshold" in out:
        out["init_threshold"] = _positive_param(
            "init_threshold", out["init_threshold"], "Set act.init_threshold to the initial λ, e.g. 8.0."
        )
    if "shift" in out:
        shift = out["shift"]
        if isinstance(shift, bool) or not isinstance(shift, (int, float)) or not 0 <= shift < 1:
            raise ConfigError(
                f"must be a number in [0, 1), got {shift!r}.",
                key="act.shift",
                fix="Set act.shift=0.5 (QCFS) or 0 (plain floor).",
            )
        out["shift"] = float(shift)
    if "y_th" in out:
        out["y_th"] = _positive_param("y_th", out["y_th"], "Set act.y_th to the clip level, e.g. 1.0 (CIFAR-10) or 2.0.")
    if "k" in PARAMS[name]:
        if "k" not in out:
            raise ConfigError(f"is required for act={name}.", key="act.k", fix="Set act.k to the quantisation level, e.g. act.k=0.")
        out["k"] = _int_param("k", out["k"], 0, "Set act.k to an integer ≥ 0 (activation step 2^-k).")
    if "clip_first" in out:
        out["clip_first"] = _positive_param(
            "clip_first", out["clip_first"], "Set act.clip_first to the first layer's clip B, e.g. 4.0.", allow_inf=True
        )
    if "k_first" in out:
        out["k_first"] = _int_param("k_first", out["k_first"], 0,
                                    "Set act.k_first=0 (the paper's 4-step input layer) or null (the same level as act.k).")
    if "grad_window" in PARAMS[name]:
        window = resolve_grad_window(name, out.get("grad_window"))
        if window not in GRAD_WINDOWS:
            raise ConfigError(
                f"unknown gradient window {window!r}.",
                key="act.grad_window",
                fix="Use act.grad_window=shifted (Yang et al. 2025, Eq. 19: (−λ/2L, λ − λ/2L)), "
                "clip (QCFS's [0, λ]) or auto (the act's default).",
            )
        out["grad_window"] = window
    if name in _CS_FLAGS:
        fixed_cw, fixed_sp = _CS_FLAGS[name]
        for key, fixed in (("channelwise", fixed_cw), ("softplus", fixed_sp)):
            if key in out:
                value = _bool_param(key, out[key])
                if name != "csqcfs" and value != fixed:
                    raise ConfigError(
                        f"act={name} means {key}={str(fixed).lower()}, got {str(value).lower()}.",
                        key=f"act.{key}",
                        fix=f"Drop act.{key}, or use act=csqcfs with act.channelwise/act.softplus for other ablations.",
                    )
                out[key] = value
            else:
                out[key] = fixed
    return out


class ActFactory:
    """``factory(num_channels) -> nn.Module``; called once per activation site in forward order.

    Stateful only for ``quant``: the first call gets the first-layer clip.
    """

    def __init__(self, name: str, params: dict):
        self.name = name
        self.params = params
        self.calls = 0

    def __call__(self, num_channels: int) -> nn.Module:
        if isinstance(num_channels, bool) or not isinstance(num_channels, int) or num_channels < 1:
            raise ValueError(f"num_channels must be an integer >= 1, got {num_channels!r}")
        first = self.calls == 0
        self.calls += 1
        p = self.params
        if self.name == "relu":
            return nn.ReLU()
        if self.name == "clip":
            return Clip(p["y_th"])
        if self.name == "qcfs":
            return QCFS(p["L"], p["init_threshold"], p["shift"], num_channels=num_channels,
                        grad_window=p["grad_window"])
        if self.name in _CS_FLAGS:
            return CSQCFS(
                num_channels,
                p["L"],
                p["init_threshold"],
                p["shift"],
                channelwise=p["channelwise"],
                softplus=p["softplus"],
                grad_window=p["grad_window"],
            )
        if self.name == "quant":
            if first:  # the encoding layer: its own level (Zou et al. 2024, §3.1), clipped at B
                return Quant(p.get("k_first", p["k"]), clip=p["clip_first"])
            return Quant(p["k"])
        raise AssertionError(self.name)  # unreachable: name validated

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"ActFactory({self.name!r}{', ' if args else ''}{args})"


def make_act_factory(name: str, **params) -> Callable[[int], nn.Module]:
    """A new factory for activation ``name`` (one of :data:`ACTIVATIONS`).

    ``params`` are the config's ``act.*`` values; ``None`` means "not set"
    (default used). Which apply (others are ignored):

    * ``relu``: none (``nn.ReLU()``).
    * ``clip``: ``y_th`` (> 0, default 1.0). ``warmup_epochs`` is the trainer's.
    * ``qcfs``: ``L`` (int ≥ 1, required), ``init_threshold`` (> 0, default 8.0),
      ``shift`` (φ ∈ [0, 1), default 0.5).
    * ``cqcfs`` / ``sqcfs`` / ``csqcfs``: as qcfs, plus ``channelwise`` and
      ``softplus`` (bools). cqcfs fixes (True, False), sqcfs (False, True) —
      a contradicting flag is an error; csqcfs defaults to (True, True) and
      honours both flags.
    * QCFS family: ``grad_window`` — ``shifted`` (Yang et al. 2025, Eqs. 19–20),
      ``clip`` ([0, λ]) or ``auto``/None (:data:`GRAD_WINDOW_DEFAULTS`).
    * ``quant``: ``k`` (int ≥ 0, required), ``clip_first`` (B > 0, default 4.0)
      and ``k_first`` (int ≥ 0; unset: ``k``), the level and clip of the factory's
      first call only.

    Unknown names and invalid values raise :class:`ConfigError` with key
    ``act`` / ``act.<param>``.
    """
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        raise ConfigError(
            f"unknown activation {name!r}.",
            key="act",
            fix=f"Choose one of: {', '.join(ACTIVATIONS)}.",
        )
    name = name.lower()
    for key in params:
        if key not in KNOWN_PARAMS:
            raise ConfigError(
                f"unknown parameter for act={name}.",
                key=f"act.{key}",
                fix=f"Remove it; act=* takes: {', '.join(KNOWN_PARAMS)} (act={name} uses: "
                f"{', '.join(PARAMS[name]) or 'none'}).",
            )
    return ActFactory(name, _validate(name, params))
