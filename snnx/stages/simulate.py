"""Stage `simulate`: one pass over the T sweep, results.csv, layers.csv and energy.csv."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig
from rich.markup import escape
from rich.table import Table

from snnx.console import console, job_label, log
from snnx.pipeline import TrainedANN, simulate
from snnx.snn_file import load
from snnx.stages import convert, doctor
from snnx.stages import plain_config, run_dir
from snnx.seeding import resolve_device


def print_results(frame, ann_acc: float, title: str) -> None:
    qann = "qann_energy_mj" in frame and frame["qann_energy_mj"].notna().any()
    table = Table(title=title)
    columns = ["T", "SNN acc %", "loss (ANN−SNN)", "spikes/neuron", "SOPs/img", "energy mJ/img"]
    if qann:  # the QANN's columns instead of the loss (results.csv has it), so the table fits a terminal
        columns = ["T", "SNN acc %", "spikes/neuron", "SOPs/img", "SNN mJ", "QANN mJ (bits)", "SNN/QANN", "QANN %"]
    for col in columns:
        table.add_column(col, justify="right")
    for row in frame.itertuples():
        cells = [str(row.T), f"{row.acc:.2f}", *([] if qann else [f"{row.conversion_loss:+.2f}"]),
                 f"{row.spikes_per_neuron:.3f}", f"{row.sops:.3g}", f"{row.energy_mj:.3g}"]
        if qann:
            cells += [f"{row.qann_energy_mj:.3g} ({int(row.qann_bits)})", f"{row.energy_ratio:.2g}",
                      "" if row.qann_acc != row.qann_acc else f"{row.qann_acc:.2f}"]
        table.add_row(*cells)
    console.print(table)
    model = frame["energy_model"].iloc[0] if "energy_model" in frame else "horowitz45"
    log(f"ANN accuracy {ann_acc:.2f}%   ANN energy {frame['ann_energy_mj'].iloc[0]:.3g} mJ/img "
        f"({frame['ann_macs'].iloc[0]:.3g} MACs; energy={model})")


def run(cfg: DictConfig, upstream: dict | None = None) -> dict:
    config = plain_config(cfg)
    device = resolve_device(config["device"])
    if config.get("snn"):
        upstream = saved_snn(config)
    elif not (upstream and "snn" in upstream):
        upstream = convert.run(cfg, upstream)
    out = run_dir(cfg)
    result = simulate(config, upstream["ann"], upstream["snn"], upstream["method"], device, out)
    frame = result["results"]
    title = (f"{config['dataset']['name']} / {config['model']['name']} / act={config['act']['name']} / "
             f"convert={config['convert']['name']}")
    if job_label():  # a multirun job: its table says which job (and which overrides) it is
        title = f"{escape(job_label())} {title}"
    print_results(frame, result["ann_acc"], title)
    log(f"results → {out / 'results.csv'}")
    findings = run_doctor(cfg, {**upstream, **result}, out)
    return {**upstream, **result, "run_dir": str(out), "doctor": findings}


def saved_snn(config: dict) -> dict:
    """snn=<file>: the saved SNN and its ANN, as the convert stage passes them on (validate has put the
    file's dataset, model, act, train, convert and seed into ``config``)."""
    loaded = load(config["snn"], key="snn")
    ann = TrainedANN(loaded.ann, config, loaded.conversion.ann_key or "", Path(config["snn"]), {})
    log(f"simulating the saved SNN {config['snn']} ({loaded.conversion.label})")
    return {"ann": ann, "stats": loaded.conversion.stats, "snn": loaded.snn, "method": loaded.conversion.label}


def run_doctor(cfg: DictConfig, result: dict, out) -> list | None:
    """`snnx doctor` on the layer rows just recorded (no second simulation), printing only its findings.

    The diagnosis never fails the simulation: a doctor error is reported in one line (raised under debug=true).
    """
    if not cfg.get("doctor", True):  # doctor=false: no automatic check (no doctor.csv)
        return None
    try:
        return doctor.after_simulate(cfg, result, out)
    except Exception as exc:
        if cfg.get("debug", False):
            raise
        log(f"doctor: skipped ({type(exc).__name__}: {exc})")
        return None
