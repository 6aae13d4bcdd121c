"""A NaN or Inf in the data, the weights, a calibrated statistic or a threshold stops the stage naming it
(issue 19), instead of producing a results row at chance."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnx.activations import make_act_factory
from snnx.calibration import calibrate
from snnx.convert import convert
from snnx.errors import CheckpointError, DataError
from snnx.models import create_model
from snnx.sim import Simulator

CPU = torch.device("cpu")


def _lenet(act="relu", **kw):
    torch.manual_seed(0)
    return create_model("lenet", in_channels=1, image_size=28, num_classes=10, act_factory=make_act_factory(act, **kw),
                        width=0.25).eval()


def test_non_finite_calibration_images_name_the_batch():
    images = [torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)]
    images[1][2, 0, 3, 3] = float("nan")
    with pytest.raises(DataError, match=r"dataset: batch 1 of the calibration images holds 1 non-finite value"):
        calibrate(_lenet(), images, percentile=99.9, num_batches=2, device=CPU)


def test_a_non_finite_weight_is_named_before_calibration_and_conversion():
    ann = _lenet()
    with torch.no_grad():
        ann.features[0].conv.weight[0, 0, 0, 0] = float("inf")
    with pytest.raises(CheckpointError, match=r"parameter 'features\.0\.conv\.weight' holds 1 non-finite value"):
        calibrate(ann, [torch.randn(4, 1, 28, 28)], percentile=99.9, num_batches=1, device=CPU)
    qcfs = _lenet("qcfs", L=4)
    with torch.no_grad():
        next(p for n, p in qcfs.named_parameters() if "threshold" in n or "lam" in n).fill_(float("nan"))
    with pytest.raises(CheckpointError, match=r"non-finite"):
        convert(qcfs, method="qcfs", stats=None, convert={"name": "qcfs"})


def test_an_overflowing_activation_names_its_layer():
    ann = _lenet()
    with torch.no_grad():
        ann.features[0].conv.weight.fill_(3e38)
    with pytest.raises(DataError, match=r"activations at layer '[^']+' are not finite on calibration batch 0"):
        calibrate(ann, [torch.ones(4, 1, 28, 28)], percentile=99.9, num_batches=1, device=CPU)


def test_non_finite_statistics_and_simulated_images_are_named():
    ann = _lenet()
    x = torch.randn(4, 1, 28, 28)
    stats = calibrate(ann, [x], percentile=99.9, num_batches=1, device=CPU)
    site = next(iter(stats))
    bad = {**stats, site: {**stats[site], "max": float("nan")}}
    with pytest.raises(DataError, match=rf"the calibrated max of layer '{site}' is not finite"):
        convert(ann, method="maxnorm", stats=bad, convert={})
    snn, _ = convert(ann, method="maxnorm", stats=stats, convert={})
    x[1, 0, 0, 0] = float("inf")
    with pytest.raises(DataError, match=r"batch 0 of the simulated images holds 1 non-finite value"):
        Simulator(snn, device=CPU).run([(x, torch.zeros(4, dtype=torch.long))], [2])
