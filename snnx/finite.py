"""Non-finite numbers (NaN, ±Inf) stop a stage where they first appear, naming what holds them: a data batch,
an ANN parameter or buffer, a calibrated statistic, a neuron's threshold. A NaN that got through would only
show as a 10 % results row."""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from snnx.errors import CheckpointError, DataError


def check_batch(images: torch.Tensor, batch: int, what: str) -> None:
    """``images`` of batch number ``batch`` (from 0) of ``what`` ("the calibration images" …) are finite."""
    if images.is_floating_point() and not bool(torch.isfinite(images).all()):
        bad = int((~torch.isfinite(images)).sum())
        raise DataError(f"batch {batch} of {what} holds {bad} non-finite value{'s' if bad != 1 else ''} "
                        "(NaN or ±Inf).", key="dataset",
                        fix="Fix or drop those images (check the dataset files and any transform that divides).")


def check_model(model: nn.Module, what: str = "the ANN") -> None:
    """Every floating parameter and buffer of ``model`` is finite; else name the first that is not."""
    for kind, items in (("parameter", model.named_parameters()), ("buffer", model.named_buffers())):
        for name, tensor in items:
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                bad = int((~torch.isfinite(tensor.detach())).sum())
                raise CheckpointError(f"{what}'s {kind} {name!r} holds {bad} non-finite value"
                                      f"{'s' if bad != 1 else ''} (NaN or ±Inf).", key="ckpt",
                                      fix="Retrain it (a diverged run: lower train.lr) or use an intact checkpoint.")


def check_stats(stats: Mapping | None) -> None:
    """Calibrated statistics (snnx.calibration.calibrate's) are finite."""
    for site, entry in (stats or {}).items():
        for key, value in entry.items():
            bad = (not bool(torch.isfinite(value).all())) if torch.is_tensor(value) else \
                (isinstance(value, float) and not math.isfinite(value))
            if bad:
                shown = "a NaN or ±Inf entry" if torch.is_tensor(value) else value
                raise DataError(f"the calibrated {key} of layer {site!r} is not finite ({shown}).",
                                key="convert.calib_size",
                                fix="The ANN's activations there overflowed or the calibration images are not "
                                    "finite: check the data and the ANN's weights.")


def check_thresholds(snn: nn.Module) -> None:
    """Every neuron's threshold in the converted network is finite (a trained λ can be NaN)."""
    for name, module in snn.named_modules():
        theta = getattr(module, "threshold", None)
        if torch.is_tensor(theta) and theta.is_floating_point() and not bool(torch.isfinite(theta).all()):
            raise CheckpointError(f"the threshold of layer {name!r} is not finite (NaN or ±Inf) after conversion.",
                                  key="ckpt", fix="Retrain the ANN (its trained thresholds diverged) or recalibrate.")
