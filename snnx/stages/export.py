"""Stage `export`: the SNN as a file for other tools (format=nir: a NIR graph, snnx/export/nir.py).

The SNN is a saved one (``snn=<run>/snn.pt``) or converted here as `snnx convert` does. The graph goes to
``export.path`` (default: ``snn.nir`` in the run's folder). What NIR cannot express is an error naming the layer;
with ``export.lossy=true`` it is approximated, and the approximation's accuracy is measured: the file is read back
and run on the test images for ``export.T`` steps, beside snnx's own simulation of the same SNN.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import DictConfig

from snnx.console import log
from snnx.export import nir as nir_export
from snnx.pipeline import dataset, loader, make_simulator
from snnx.seeding import resolve_device
from snnx.snn_file import conversion_of, load
from snnx.stages import convert, plain_config, run_dir


def run(cfg: DictConfig, upstream: dict | None = None) -> dict:
    config = plain_config(cfg)
    device = resolve_device(config["device"])
    nir_export.require_nir("format")  # before any training or conversion: say how to install it first
    if config.get("snn"):
        loaded = load(config["snn"], key="snn")
        log(f"exporting the saved SNN {config['snn']} ({loaded.conversion.label})")
        upstream = {"snn": loaded.snn, "method": loaded.conversion.label}
    elif not (upstream and "snn" in upstream):
        upstream = convert.run(cfg, upstream)
    out = run_dir(cfg)
    settings = config["export"]
    snn = upstream["snn"].cpu()
    conversion = conversion_of(snn)
    shape = nir_export.input_shape_of(conversion) or _shape_from_config(config)
    made = nir_export.to_nir(snn, shape, lossy=bool(settings["lossy"]), key="format",
                             lossy_key="export.lossy=true", metadata=nir_export.metadata_for(conversion))
    path = Path(settings["path"]) if settings.get("path") else out / "snn.nir"
    made.path = nir_export.write(made.graph, path, key="export.path")
    record = {"format": config["format"], "path": str(made.path), "method": upstream["method"],
              "approximations": [f"{f.layer}: {f.what} → {f.instead}" for f in made.approximations]}
    if made.approximations:
        T = int(settings["T"])
        made.accuracy, made.snnx_accuracy = measure(config, snn, made.path, T, device)
        record.update(T=T, nir_acc=made.accuracy[T], snnx_acc=made.snnx_accuracy[T])
        log(f"warning: the NIR graph approximates what NIR cannot express ({made.summary()}); measured on the test "
            f"images at T={T}: {made.accuracy[T]:.2f}% as exported (read back from the file), "
            f"{made.snnx_accuracy[T]:.2f}% in snnx ({made.accuracy[T] - made.snnx_accuracy[T]:+.2f} points)")
    (out / "export.json").write_text(json.dumps(record, indent=2) + "\n")
    log(f"NIR graph ({len(made.graph.nodes)} nodes) → {made.path}")
    return {**upstream, "export": record, "run_dir": str(out)}


def _shape_from_config(config: dict) -> tuple[int, ...]:
    # snnx.data loads the dataset registry: only when the SNN file's conversion has no config of its own
    from snnx.data import dataset_info

    info = dataset_info(config["dataset"]["name"], config["dataset"].get("crop"))
    return (info.in_channels, info.image_size, info.image_size)


@torch.no_grad()
def measure(config: dict, snn, path: Path, T: int, device: torch.device) -> tuple[dict, dict]:
    """({T: accuracy %} of the file at ``path`` read back and run, {T: accuracy %} of snnx's simulation of ``snn``)."""
    test = dataset(config, "test", augment=False)
    batch = int(config["sim"]["batch_size"])
    exported = nir_export.accuracy(nir_export.read(path), loader(test, batch), [T], device=device)
    # The graph is fed the image at every step: snnx's side is simulated with the same direct encoding.
    simulator = make_simulator({**config, "sim": {**config["sim"], "encoding": "direct"}}, snn, device, torch.float32)
    result = simulator.run(loader(test, batch), [T], accounting=False)
    return exported, {T: 100.0 * result.correct[T] / max(result.total, 1)}
