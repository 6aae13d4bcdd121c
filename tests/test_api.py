"""snnx.api on one's own model: conversion by every method, calibration and simulation inputs, the result
object, saving and loading an SNN, and the errors of misuse."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from snnx import api
from snnx.calibration import calibrate
from snnx.convert import convert
from snnx.errors import CheckpointError, SnnxError
from snnx.pipeline import EXTRA_COLUMNS, RESULT_COLUMNS
from snnx.sim import Simulator
from snnx.sim.accounting import energy_mj


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def _net(act=nn.ReLU, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), act(), nn.AvgPool2d(2), nn.Flatten(),
                        nn.Linear(6 * 16, 12), act(), nn.Linear(12, 4))
    with torch.no_grad():  # BN with statistics of its own, so that folding it matters
        net[1].running_mean.uniform_(-0.2, 0.2)
        net[1].running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.fixture(scope="module")
def data():
    images = _images(64)
    labels = torch.randint(0, 4, (64,), generator=torch.Generator().manual_seed(1))
    return TensorDataset(images, labels)


def test_convert_equals_the_converter_on_stats_of_the_same_images(data):
    net = _net()
    snn = api.convert(net, method="maxnorm", calibration=data, calib_size=40, calib_batch_size=16)
    images = torch.stack([data[i][0] for i in range(40)])
    stats = calibrate(net, images.split(16), percentile=99.99, num_batches=3, device=torch.device("cpu"))
    reference, _ = convert(net, method="maxnorm", stats=stats, convert={"name": "maxnorm"})
    ours, theirs = snn.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.parametrize("form", ["dataloader", "tensor", "list of batches", "list of pairs"])
def test_calibration_accepts_every_form_of_the_same_images(data, form):
    net = _net()
    images = torch.stack([data[i][0] for i in range(50)])
    given = {"dataloader": DataLoader(data, batch_size=8), "tensor": images,
             "list of batches": list(images.split(8)),
             "list of pairs": [(x, torch.zeros(len(x))) for x in images.split(8)]}[form]
    reference = api.calibrate(net, data, size=50, batch_size=8)
    stats = api.calibrate(net, given, size=50, batch_size=8)
    for site in reference:
        assert stats[site]["max"] == reference[site]["max"]
        assert stats[site]["percentile"] == reference[site]["percentile"]
        assert torch.equal(stats[site]["channel_max"], reference[site]["channel_max"])


def test_simulate_reports_what_the_simulator_counts(data):
    net = _net()
    snn = api.convert(net, method="maxnorm", calibration=data)
    result = api.simulate(snn, data, [2, 8], ann=net, batch_size=16)
    reference = Simulator(snn, device=torch.device("cpu")).run(DataLoader(data, batch_size=16), [2, 8])
    frame = result.to_pandas()
    assert list(frame.columns) == RESULT_COLUMNS + EXTRA_COLUMNS
    assert result.time_steps == [2, 8]
    for T in (2, 8):
        expected = reference.per_image(T)
        assert result.accuracy[T] == expected["acc"]
        assert result.spikes_per_neuron[T] == expected["spikes_per_neuron"]
        assert result.sops[T] == expected["sops"] and result.macs[T] == expected["macs"]
        assert result.energy_mj[T] == pytest.approx(energy_mj(expected["sops"], expected["macs"]))
    with torch.no_grad():
        ann_acc = 100.0 * float((net(data.tensors[0]).argmax(1) == data.tensors[1]).float().mean())
    assert frame["ann_acc"].iloc[0] == pytest.approx(ann_acc)
    assert (frame["conversion_loss"] == frame["ann_acc"] - frame["acc"]).all()
    assert set(frame["convert"]) == {"maxnorm"} and set(frame["model"]) == {"Sequential"}


def test_simulate_takes_a_dataset_a_dataloader_and_tensors_alike(data):
    snn = api.convert(_net(), method="maxnorm", calibration=data)
    forms = [data, DataLoader(data, batch_size=10), tuple(data.tensors)]
    frames = [api.simulate(snn, form, [1, 4], batch_size=10).to_pandas().drop(columns="created") for form in forms]
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame, frames[0])


def test_kept_outputs_approach_the_ann_as_T_grows(data):
    """IF neurons with reset by subtraction: the mean output up to T tends to the ANN's output (when no
    layer saturates, θ being each layer's maximum over the same images)."""
    net = _net()
    images = data.tensors[0]
    snn = api.convert(net, method="maxnorm", calibration=images)
    result = api.simulate(snn, data, [16, 64, 256], keep_outputs=True)
    with torch.no_grad():
        logits = net(images)
    errors = [float((result.outputs[T] - logits).norm() / logits.norm()) for T in (16, 64, 256)]
    assert errors[0] > errors[1] > errors[2]
    assert result.outputs[16].shape == logits.shape


def _qcfs_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), api.activation("qcfs", L=4, init_threshold=2.0),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(96, 12),
                         api.activation("qcfs", L=4, init_threshold=2.0), nn.Linear(12, 4)).eval()


def _quant_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), api.activation("quant", first=True),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(96, 12), nn.BatchNorm1d(12),
                         api.activation("quant"), nn.Linear(12, 4)).eval()


def _clip_net():
    return _net(lambda: api.activation("clip", y_th=1.0))


@pytest.mark.parametrize("method, make, params", [
    ("maxnorm", _net, {}), ("pnorm", _net, {"percentile": 99.0}), ("channelnorm", _net, {}),
    ("shift", _net, {"variant": "S"}), ("shift", _clip_net, {"variant": "TS"}), ("msat", _net, {}),
    ("qcfs", _qcfs_net, {}), ("cos", _qcfs_net, {"presim": 2}), ("allint", _quant_net, {}),
])
def test_every_method_converts_through_the_api(data, method, make, params):
    net = make()
    snn = api.convert(net, method=method, calibration=data, **params)
    result = api.simulate(snn, data, [1, 4, 16], ann=net)
    frame = result.to_pandas()
    assert list(frame["T"]) == [1, 4, 16] and set(frame["convert"]) == {method}
    assert all(0 <= a <= 100 for a in result.accuracy.values())
    assert result.spikes_per_neuron[16] > 0  # the network is spiking


def test_shift_with_a_fixed_horizon_differs_from_no_shift(data):
    """variant=TS at shift_T adds Eq. 15's θ/(2T) shift (Deng & Gu 2021): the SNN differs from the unshifted
    T variant of the same ANN and thresholds."""
    net = _clip_net()
    shifted = api.simulate(api.convert(net, method="shift", calibration=data, variant="TS", shift_T=4), data, [4],
                           keep_outputs=True).outputs[4]
    plain = api.simulate(api.convert(net, method="shift", calibration=data, variant="T"), data, [4],
                         keep_outputs=True).outputs[4]
    assert not torch.equal(shifted, plain)


# -- saving and loading -------------------------------------------------------------------
@pytest.mark.parametrize("method, make, params", [("maxnorm", _net, {}), ("msat", _net, {"confidence": 0.8}),
                                                  ("cos", _qcfs_net, {}), ("allint", _quant_net, {})])
def test_save_and_load_round_trip_bit_for_bit(data, tmp_path, method, make, params):
    net = make()
    snn = api.convert(net, method=method, calibration=data, seed=3, **params)
    path = api.save_snn(snn, tmp_path / "snn.pt")
    loaded = api.load_snn(path, model=make())
    ours, theirs = snn.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    before = api.simulate(snn, data, [1, 8]).to_pandas().drop(columns="created")
    after = api.simulate(loaded, data, [1, 8]).to_pandas().drop(columns="created")
    pd.testing.assert_frame_equal(before, after)
    # The file is plain data: tensors and containers only.
    torch.load(path, weights_only=True)


def test_a_loaded_snn_does_not_depend_on_later_training_of_the_ann(data, tmp_path):
    net = _net()
    snn = api.convert(net, method="maxnorm", calibration=data)
    with torch.no_grad():
        net[0].weight.add_(1.0)
    loaded = api.load_snn(api.save_snn(snn, tmp_path / "snn.pt"), model=_net(seed=5))
    assert torch.equal(loaded.state_dict()["0.weight"], snn.state_dict()["0.weight"])


def test_load_errors_name_the_argument(data, tmp_path):
    path = api.save_snn(api.convert(_net(), method="maxnorm", calibration=data), tmp_path / "snn.pt")
    with pytest.raises(SnnxError, match=r"^model: .*own model.*model=<an instance"):
        api.load_snn(path)
    other = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))
    with pytest.raises(CheckpointError, match="another architecture"):
        api.load_snn(path, model=other)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated, corrupt"):
        api.load_snn(broken, model=_net())
    with pytest.raises(SnnxError, match=r"load_snn\(path=…\)"):
        api.load_snn(42)
    with pytest.raises(SnnxError, match="not made by snnx's converter"):
        api.save_snn(_net(), tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


# -- errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("call, pattern", [
    (lambda d: api.convert(_net(), calibration=d), r"convert\(method=…\).*no config"),
    (lambda d: api.convert(_net(), method="maxnrom", calibration=d), r"unknown conversion method 'maxnrom'"),
    (lambda d: api.convert(_net(), method="maxnorm"), r"convert\(calibration=…\).*no calibration images"),
    (lambda d: api.convert(_net(), method="maxnorm", calibration=d, percentile=99.0),
     r"convert\(percentile=…\)"),
    (lambda d: api.convert(_net(), method="pnorm", calibration=d, percentile=120), r"convert\(percentile=…\)"),
    (lambda d: api.convert(_net(), {}, calibration=d), r"convert\(config=…\)"),
    (lambda d: api.convert("net", method="maxnorm", calibration=d), r"convert\(model=…\).*nn.Module"),
    (lambda d: api.convert(_net(), method="maxnorm", calibration=5), r"convert\(calibration=…\)"),
    (lambda d: api.convert(_net(), method="maxnorm", calibration=torch.rand(4, 3, 8, 8)), r"cannot run on its images"),
    (lambda d: api.convert(_net(), method="maxnorm", calibration=d, stats=[1]), r"convert\(stats=…\)"),
    (lambda d: api.convert(_net(), method="cos"), r"convert\(model=…\).*no trained threshold.*snnx.api.activation"),
    (lambda d: api.convert(_net(), method="allint"), r"convert\(model=…\).*needs quant activations"),
    (lambda d: api.simulate(_net(), d, [1, 4]), r"simulate\(snn=…\).*no spiking neurons"),
    (lambda d: api.convert(nn.Sequential(nn.Flatten(), nn.Linear(64, 4)), method="maxnorm", calibration=d),
     r"convert\(model=…\).*no activation to become a spiking neuron"),
    (lambda d: api.simulate(api.convert(_net(), method="maxnorm", calibration=d), d, [0, 4]),
     r"simulate\(time_steps=…\)"),
    (lambda d: api.simulate(api.convert(_net(), method="maxnorm", calibration=d), 5, [4]), r"simulate\(data=…\)"),
    (lambda d: api.simulate(api.convert(_net(), method="maxnorm", calibration=d), [torch.rand(2, 1, 8, 8)], [4]),
     r"simulate\(data=…\).*not an \(images, labels\) pair"),
    (lambda d: api.simulate(api.convert(_net(), method="maxnorm", calibration=d), d, [4], chunk=0),
     r"simulate\(chunk=…\)"),
    (lambda d: api.simulate(api.convert(_net(), method="maxnorm", calibration=d), d, [4], encoding="rate"),
     r"simulate\(encoding=…\)"),
    (lambda d: api.compose("act=reluu"), r"act"),
    (lambda d: api.compose(5), r"compose\(overrides=…\)"),
    (lambda d: api.activation("qcfs", L=0), r"act\.L"),
])
def test_misuse_is_one_paragraph_naming_the_argument(data, call, pattern):
    with pytest.raises(SnnxError) as caught:
        call(data)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert __import__("re").search(pattern, message), message


def test_compose_misspelt_option_suggests_the_right_one():
    with pytest.raises(SnnxError, match="relu"):
        api.compose("act=reluu")


def test_methods_lists_the_registry():
    listed = api.methods()
    assert {"maxnorm", "pnorm", "msat", "shift", "qcfs", "cos", "allint", "channelnorm"} <= set(listed)
    assert all(isinstance(doc, str) and doc for doc in listed.values())


def test_energy_column_is_the_formula(data):
    frame = api.simulate(api.convert(_net(), method="maxnorm", calibration=data), data, [4]).to_pandas()
    row = frame.iloc[0]
    assert math.isclose(row["energy_mj"], energy_mj(row["sops"], row["macs"]))


def test_an_op_the_converter_cannot_handle_names_the_node(data):
    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(256, 4)

        def forward(self, x):
            return self.fc(torch.sigmoid(self.conv(x)).flatten(1))

    with pytest.raises(SnnxError, match=r"^snnx\.api\.convert\(model=…\): node 'sigmoid' \(call_function torch.sigmoid\)"):
        api.convert(Gated().eval(), method="maxnorm", calibration=data)
