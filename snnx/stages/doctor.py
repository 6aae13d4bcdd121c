"""Stage `doctor`: say why the converted network falls short, layer by layer (snnx.doctor).

``snnx doctor <overrides of run>`` builds (or finds in the cache) the ANN, its
calibration and the SNN exactly as ``simulate`` does, simulates one batch of
test images over sim.T with per-layer recording, and prints the findings in a
panel, each once with the Ts it holds for (one "doctor: no findings" line when
healthy); ``doctor.csv`` in the run directory holds the same findings, one row
per finding and T. ``after_simulate`` runs the same analysis on the rows a
``simulate`` / ``run`` already recorded, printing only findings (``doctor=false``
turns that automatic check off).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Mapping

import torch
from hydra import compose as hydra_compose
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from rich.panel import Panel
from rich.text import Text

from snnx import doctor
from snnx.activations.registry import resolve_weight_quant
from snnx.artifacts import write_csv
from snnx.composition import compose
from snnx.console import console, log
from snnx.data import dataset_info
from snnx.pipeline import dataset, loader
from snnx.stages import plain_config, prepare_snn, run_dir
from snnx.seeding import resolve_device

# At most this many test images (one batch of sim.batch_size, capped): the doctor stays quick.
MAX_IMAGES = 256
_STYLE = {"error": ("red", "✗"), "warning": ("yellow", "!"), "note": ("cyan", "·")}


# -- preset departures ----------------------------------------------------------------
def preset_name() -> str | None:
    """The ``experiment=`` preset of the running Hydra job, if any."""
    try:
        return HydraConfig.get().runtime.choices.get("experiment")
    except (ValueError, AttributeError):
        return None


def _searchpath_overrides() -> list[str]:
    """hydra.searchpath=… of the running job: a preset may live in a config dir added that way."""
    try:
        return [o for o in HydraConfig.get().overrides.hydra if o.split("=", 1)[0].lstrip("+") == "hydra.searchpath"]
    except (ValueError, AttributeError):
        return []


def compose_preset(name: str, stage: str = "run") -> dict:
    """The config the preset gives on its own (no other override), as a plain dict."""
    overrides = [f"experiment={name}", *_searchpath_overrides()]
    if GlobalHydra.instance().is_initialized():  # inside the running app: compose with its own search path
        cfg = hydra_compose(config_name="config", overrides=[f"stage={stage}", *overrides])
    else:
        cfg = compose(stage, overrides)
    preset = OmegaConf.to_container(cfg, resolve=True)
    # the run's config went through validate, which resolves train.weight_quant=auto: so must the preset's
    train = preset.get("train", {})
    if "weight_quant" in train:
        train["weight_quant"] = resolve_weight_quant(preset.get("act", {}).get("name", ""), train["weight_quant"])
    return preset


def departure_findings(config: Mapping, name: str | None) -> list[doctor.Finding]:
    if not name or name == "null":
        return []
    preset = compose_preset(name, config.get("stage", "run"))
    return doctor.departure_findings(name, doctor.preset_departures(config, preset))


# -- output ---------------------------------------------------------------------------
def _ts(ts: list[int]) -> str:
    if not ts:
        return ""
    return f"T={ts[0]}" if len(ts) == 1 else f"T={','.join(str(t) for t in ts)}"


def _value(f: doctor.Finding) -> str:
    return "" if f.value != f.value else f"{f.value:.3g}"


def show(findings: list[doctor.Finding], *, quiet_when_healthy: bool = False) -> None:
    """A rich panel, one line per finding with the Ts it holds for (a finding that holds at several T is
    printed once); one line when there is none."""
    if not findings:
        if not quiet_when_healthy:
            console.print("doctor: no findings")
        return
    lines = Text()
    groups = doctor.grouped(findings)
    for i, members in enumerate(groups):
        first, last = members[0], members[-1]
        ts = [f.T for f in members if f.T is not None]
        colour, mark = _STYLE[first.severity]
        if i:
            lines.append("\n")
        lines.append(f"{mark} ", style=f"bold {colour}")
        # A network-wide finding may name another layer at another T: then each layer with its Ts.
        layers: dict[str, list[int]] = {}
        for f in members:
            layers.setdefault(f.layer, []).extend([f.T] if f.T is not None else [])
        where = " ".join(x for x in (_ts(ts), first.layer if len(layers) == 1 else "") if x)
        if where:
            lines.append(where + " ", style="bold")
        value = _value(first) if first is last or _value(first) == _value(last) else \
            f"{_value(first)} (T={first.T}) … {_value(last)} (T={last.T})"
        lines.append(f"{first.finding}" + (f" = {value}" if value else "") + ": ", style=colour)
        lines.append(first.message)
        if len(layers) > 1:
            lines.append(" (here = " + "; ".join(f"{name or 'no layer'} at {_ts(at)}" for name, at in layers.items())
                         + ")")
        suggestions = list(dict.fromkeys(f.suggestion for f in members))
        lines.append(f" → {'; or '.join(suggestions)}", style="dim")
    # The title counts the lines shown, not the (finding, T) rows of doctor.csv.
    counts = {s: sum(members[0].severity == s for members in groups) for s in doctor.SEVERITIES}
    title = "doctor: " + ", ".join(f"{n} {s}{'s' if n > 1 else ''}" for s, n in counts.items() if n)
    console.print(Panel(lines, title=title, title_align="left", border_style=_STYLE[findings_worst(findings)][0]))


def findings_worst(findings: list[doctor.Finding]) -> str:
    return min((f.severity for f in findings), key=doctor.SEVERITIES.index)


def _test_batch(config: Mapping, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    data = dataset(config, "test", augment=False)
    images, labels = next(iter(loader(data, min(size, len(data)))))
    return images, labels


def _dtype(config: Mapping) -> torch.dtype:
    return torch.float64 if config["sim"]["dtype"] == "float64" else torch.float32


# -- the stage --------------------------------------------------------------------------
def run(cfg: DictConfig, upstream: dict | None = None) -> dict:
    config = plain_config(cfg)
    device = resolve_device(config["device"])
    ann, stats, snn, method = prepare_snn(config, upstream, device)
    images, labels = _test_batch(config, min(config["sim"]["batch_size"], MAX_IMAGES))
    out = run_dir(cfg)
    log(f"doctor: {method}, {len(images)} test images, T up to {max(config['sim']['T'])}")
    report = doctor.examine(snn, ann.model, images, labels, config["sim"]["T"],
                            num_classes=dataset_info(config["dataset"]["name"]).num_classes, device=device,
                            dtype=_dtype(config), chunk=config["sim"]["chunk"],
                            departures=departure_findings(config, preset_name()),
                            progress=config.get("progress", True), energy=config.get("energy"),
                            levels=config["act"].get("L"))
    write_csv(doctor.frame(report.findings), out / "doctor.csv")
    accs = ", ".join(f"T={T} {a:.1f} %" for T, a in report.accuracy.items())
    log(f"ANN {report.ann_acc:.1f} %, SNN {accs} on these images")
    show(report.findings)
    log(f"doctor → {out / 'doctor.csv'}")
    return {"ann": ann, "stats": stats, "snn": snn, "method": method, "doctor": report.findings,
            "run_dir": str(out)}


def after_simulate(cfg: DictConfig, result: Mapping, out: Path) -> list[doctor.Finding]:
    """The doctor on what ``simulate`` recorded (no second simulation): doctor.csv, findings printed."""
    config = plain_config(cfg)
    snn = result["snn"]
    order = doctor.neuron_order(snn)
    infos = doctor.layer_infos(snn)
    images, _ = _test_batch(config, min(config["sim"]["batch_size"], MAX_IMAGES))
    device = next(snn.parameters(), torch.empty(0)).device
    # The ANN's activation range (θ check, error scale) from one batch of the same test images.
    ann = copy.deepcopy(result["ann"].model).to(device, _dtype(config)).eval()
    stats, _ = doctor.ann_activation_stats(ann, order, images.to(device, _dtype(config)))
    doctor.add_ann_stats(infos, stats)
    frame = result["results"]
    findings = doctor.diagnose(result.get("layers") or [], infos, order=order,
                               accuracy={int(T): float(acc) for T, acc in zip(frame["T"], frame["acc"])},
                               ann_acc=float(result["ann_acc"]),
                               num_classes=dataset_info(config["dataset"]["name"]).num_classes,
                               batchnorms=doctor.unfolded_batchnorms(snn),
                               departures=departure_findings(config, preset_name()),
                               energy_rows=result.get("energy") or ())
    write_csv(doctor.frame(findings), out / "doctor.csv")
    show(findings, quiet_when_healthy=True)
    return findings
