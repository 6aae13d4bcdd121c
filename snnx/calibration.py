"""Threshold calibration: per-layer and per-channel activation statistics.

Runs the ANN (eval mode) over calibration data and records, for every
activation site, the layer maximum, the p-th percentile of its positive
activations (Rueckauer 2017) and the per-channel maximum (Kim 2020).

The ANN runs as :func:`snnx.convert.graph.trace` gives it (one module per
site: functional ReLUs and reused activation modules get their own), so the
statistics carry the site names conversion later sees, one entry per site.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from snnx.convert.graph import sites_of, trace
from snnx.errors import DataError
from snnx.finite import check_batch, check_model
from snnx.progress import track

# Percentiles are taken over at most this many positive values per layer
# (a uniform random subsample beyond it, seeded): memory stays bounded for
# large layers while the 99.99th percentile keeps ~1,700 values above it.
MAX_PERCENTILE_SAMPLES = 1 << 24


def _channel_max(out: torch.Tensor) -> torch.Tensor:
    if out.dim() == 2:
        return out.amax(0)
    return out.transpose(0, 1).flatten(1).amax(1)


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[torch.Tensor], *, percentile: float, num_batches: int,
              device: torch.device, seed: int = 0, progress: bool = True) -> dict:
    """Return ``{site: {"max": float, "percentile": float, "channel_max": Tensor[C]}}``.

    ``progress``: draw a bar over the ``num_batches`` batches (:func:`snnx.progress.track`)."""
    check_model(model)
    model = trace(model.to(device).eval())
    sites = sites_of(model)
    batch_index = [0]
    layer_max: dict[str, torch.Tensor] = {}
    channel_max: dict[str, torch.Tensor] = {}
    positives: dict[str, list[torch.Tensor]] = {name: [] for name, _ in sites}
    per_batch_cap = max(1, MAX_PERCENTILE_SAMPLES // max(num_batches, 1))
    generator = torch.Generator(device="cpu").manual_seed(seed)

    def hook_for(name):
        def hook(_module, _inputs, out):
            out = out.detach().float()
            if not bool(torch.isfinite(out).all()):
                raise DataError(f"the ANN's activations at layer {name!r} are not finite on calibration batch "
                                f"{batch_index[0]} (its weights and images are).", key="convert.calib_size",
                                fix="An overflow in the ANN: check its BatchNorm statistics and weights, or "
                                    "retrain it.")
            m = out.max()
            layer_max[name] = torch.maximum(layer_max[name], m) if name in layer_max else m
            cm = _channel_max(out)
            channel_max[name] = torch.maximum(channel_max[name], cm) if name in channel_max else cm
            pos = out[out > 0].cpu()
            if pos.numel() > per_batch_cap:
                pos = pos[torch.randperm(pos.numel(), generator=generator)[:per_batch_cap]]
            positives[name].append(pos)
        return hook

    handles = [module.register_forward_hook(hook_for(name)) for name, module in sites]
    try:
        for i, images in enumerate(track(batches, total=num_batches, description="calibrate", enabled=progress)):
            batch_index[0] = i
            check_batch(images, i, "the calibration images")
            model(images.to(device))
    finally:
        for h in handles:
            h.remove()

    stats = {}
    for name, _ in sites:
        values = torch.cat(positives[name]) if positives[name] else torch.zeros(0)
        if values.numel() > MAX_PERCENTILE_SAMPLES:
            values = values[torch.randperm(values.numel(), generator=generator)[:MAX_PERCENTILE_SAMPLES]]
        pct = float(torch.quantile(values.double(), percentile / 100.0)) if values.numel() else 0.0
        stats[name] = {"max": float(layer_max[name]), "percentile": pct,
                       "channel_max": channel_max[name].cpu()}
    return stats
