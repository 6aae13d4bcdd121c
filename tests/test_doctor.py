"""`snnx doctor`: small networks with known faults, and the doctor names the layer and the cause."""

from __future__ import annotations

import copy
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from snnx import doctor
from snnx.activations import make_act_factory
from snnx.calibration import calibrate
from snnx.convert import convert
from snnx.data import build_dataset
from snnx.models import create_model

from conftest import snnx

HIDDEN = ["features.0.act", "features.2.act", "classifier.2"]  # LeNet's spiking layers, in forward order


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These networks are tiny: one intra-op thread is as fast, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _train_lenet(act: str = "relu", epochs: int = 3, **act_params) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = create_model("lenet", in_channels=1, image_size=8, num_classes=10,
                         act_factory=make_act_factory(act, **act_params), width=0.25, batch_norm=True, pool="avg")
    train = build_dataset("digits", "train", augment=False)
    test = build_dataset("digits", "test", augment=False)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batches = DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    for _ in range(epochs):
        model.train()
        for x, y in batches:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    model.eval()
    images, labels = next(iter(DataLoader(test, batch_size=200)))
    return model, images, labels


@pytest.fixture(scope="module")
def lenet():
    """A ReLU LeNet (quarter width) trained on digits, its calibration statistics and the test images."""
    model, images, labels = _train_lenet()
    train = build_dataset("digits", "train", augment=False, limit=500)
    stats = calibrate(model, (x for x, _ in DataLoader(train, batch_size=250)), percentile=99.99, num_batches=2,
                      device=torch.device("cpu"))
    with torch.no_grad():
        assert (model(images).argmax(1) == labels).double().mean() > 0.9
    return model, stats, images, labels


def _snn(lenet, **convert_cfg):
    model, stats, _, _ = lenet
    snn, _ = convert(model, method="maxnorm", stats=stats, convert={"name": "maxnorm", **convert_cfg})
    return snn


def _examine(lenet, snn, time_steps, ann=None):
    model, _, images, labels = lenet
    return doctor.examine(snn, ann if ann is not None else model, images, labels, time_steps, num_classes=10)


def _kinds(report, T=None, layer=None):
    return {f.finding for f in report.findings if (T is None or f.T == T) and (layer is None or f.layer == layer)}


def test_healthy_lenet_at_large_T_has_no_finding(lenet):
    report = _examine(lenet, _snn(lenet), [64])
    # An efficiency note (the SNN at T = 64 against its 7-bit QANN) is not a conversion fault.
    faults = [f for f in report.findings if f.finding != "snn_costs_more_than_qann"]
    assert faults == [], [f.line() for f in faults]
    assert [f.severity for f in report.findings if f not in faults] in ([], ["note"])
    assert report.accuracy[64] > report.ann_acc - 2
    rows = pd.DataFrame(report.rows)
    assert list(rows["layer"]) == HIDDEN and (rows["active_fraction"] > 0.05).all()


def test_threshold_100x_too_high_kills_that_layer(lenet):
    snn = _snn(lenet)
    with torch.no_grad():
        snn.get_submodule("features.2.act").threshold.mul_(100)
    report = _examine(lenet, snn, [16, 32])
    high = [f for f in report.findings if f.finding == "threshold_above_range"]
    assert [f.layer for f in high] == ["features.2.act"] and high[0].value > 10 * doctor.THETA_RANGE_FACTOR / 10
    for T in (16, 32):
        silent = [f for f in report.findings if f.T == T and f.finding in ("dead_layer", "nearly_dead_layer")]
        assert [f.layer for f in silent] == ["features.2.act"], [f.line() for f in report.findings]
        chance = [f for f in report.findings if f.T == T and f.finding == "output_at_chance"]
        assert [f.layer for f in chance] == ["features.2.act"]
    # The first layer is fine and not blamed.
    assert not _kinds(report, layer="features.0.act")


def test_negative_threshold_is_named(lenet):
    snn = _snn(lenet)
    with torch.no_grad():
        snn.get_submodule("classifier.2").threshold.fill_(-0.5)
    report = _examine(lenet, snn, [8])
    bad = [f for f in report.findings if f.finding == "threshold_nonpositive"]
    assert [(f.layer, f.value, f.severity) for f in bad] == [("classifier.2", -0.5, "error")]
    assert bad[0].T is None


def test_nonfinite_threshold_is_named():
    infos = {"a": doctor.LayerInfo("a", torch.tensor([1.0, float("nan"), 2.0]))}
    (f,) = doctor.threshold_findings(infos)
    assert (f.layer, f.finding, f.value) == ("a", "threshold_nonfinite", 1.0)


class PoolThenBN(nn.Module):
    """conv → ReLU → avgpool → BN → linear: the BN follows a pooling, so it cannot be folded."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.act1 = nn.ReLU()
        self.pool = nn.AvgPool2d(2)
        self.bn = nn.BatchNorm2d(4)
        self.fc1 = nn.Linear(4 * 4 * 4, 16)
        self.act2 = nn.ReLU()
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        x = self.bn(self.pool(self.act1(self.conv(x))))
        return self.fc2(self.act2(self.fc1(torch.flatten(x, 1))))


def test_unfolded_batchnorm_is_named():
    torch.manual_seed(0)
    ann = PoolThenBN().eval()
    with torch.no_grad():
        ann.bn.running_mean.fill_(-0.5)
        ann.bn.bias.fill_(0.3)
    images = torch.rand(64, 1, 8, 8)
    labels = torch.randint(0, 10, (64,))
    stats = calibrate(ann, [images], percentile=99.99, num_batches=1, device=torch.device("cpu"))
    snn, _ = convert(ann, method="maxnorm", stats=stats, convert={"name": "maxnorm"})
    assert doctor.unfolded_batchnorms(snn)[0][:2] == ("bn", "pool")
    report = doctor.examine(snn, ann, images, labels, [32], num_classes=10)
    bn = [f for f in report.findings if f.finding == "unfolded_batchnorm"]
    assert [(f.layer, f.severity) for f in bn] == [("bn", "error")] and bn[0].value == pytest.approx(0.8, rel=1e-3)
    # A BN that follows a conv is folded and not reported.
    folded, _ = convert(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2).eval(), nn.ReLU()).eval(), method="maxnorm",
                        stats={"2": {"max": 1.0, "percentile": 1.0, "channel_max": torch.ones(2)}},
                        convert={"name": "maxnorm"})
    assert doctor.unfolded_batchnorms(folded) == []
    # A BN on the real-valued input (before any neuron) runs once per image: harmless, not reported.
    first, _ = convert(nn.Sequential(nn.BatchNorm2d(1).eval(), nn.Conv2d(1, 2, 3), nn.ReLU()).eval(), method="maxnorm",
                       stats={"2": {"max": 1.0, "percentile": 1.0, "channel_max": torch.ones(2)}},
                       convert={"name": "maxnorm"})
    assert any(isinstance(m, nn.BatchNorm2d) for m in first.modules())
    assert doctor.unfolded_batchnorms(first) == []


def test_T1_with_silent_last_hidden_layer(lenet):
    """v0 = θ/2 everywhere, and θ of the last hidden layer at 3× its activations' 99.9th percentile (within the
    10× range check): at T = 1 only inputs ≥ θ/2 fire, which that layer never gets."""
    model, _, images, _ = lenet
    snn = _snn(lenet, v_init=0.5)
    acts = doctor.ann_activation_stats(model, HIDDEN, images)[0]
    with torch.no_grad():
        snn.get_submodule("classifier.2").threshold.fill_(3 * acts["classifier.2"]["percentile"])
    report = _examine(lenet, snn, [1, 64])
    at1 = [f for f in report.findings if f.T == 1]
    dead = [f for f in at1 if f.finding in ("dead_layer", "nearly_dead_layer")]
    assert [f.layer for f in dead] == ["classifier.2"], [f.line() for f in report.findings]
    chance = [f for f in at1 if f.finding == "output_at_chance"]
    assert [f.layer for f in chance] == ["classifier.2"] and chance[0].value <= doctor.chance_level(10)
    assert "threshold_above_range" not in _kinds(report)
    assert not [f for f in report.findings if f.T == 64 and f.finding in ("dead_layer", "output_at_chance")]


def test_first_dead_layer_named_once_and_later_ones_counted():
    rows = [{"T": 4, "layer": name, "firing_rate": rate, "sin_ratio": 0.0, "clip_error": 0.0, "floor_error": 0.0,
             "ann_error": 1.0} for name, rate in (("a", 0.2), ("b", 0.0), ("c", 0.0))]
    infos = {n: doctor.LayerInfo(n, torch.tensor(1.0), ann_mean_abs=1.0) for n in "abc"}
    findings = doctor.diagnose(rows, infos, accuracy={4: 10.0}, ann_acc=95.0, num_classes=10)
    dead = [f for f in findings if f.finding == "dead_layer"]
    assert [(f.T, f.layer) for f in dead] == [(4, "b")] and "(later layers: 1 silent)" in dead[0].message
    # Without a measured active fraction, rate·T bounds it: 0.0002 spikes/neuron by T → nearly dead.
    rows[1]["firing_rate"] = 0.00005
    findings = doctor.diagnose(rows, infos, accuracy={4: 90.0}, ann_acc=95.0, num_classes=10)
    assert [(f.finding, f.layer) for f in findings if "dead" in f.finding] == [("nearly_dead_layer", "b")]


@pytest.mark.parametrize("source,row", [
    ("clip", {"clip_error": 0.6, "floor_error": 0.05, "sin_ratio": 0.0}),
    ("floor", {"clip_error": 0.0, "floor_error": 0.8, "sin_ratio": 0.0}),
    ("sin", {"clip_error": 0.0, "floor_error": 0.01, "sin_ratio": 0.9}),
])
def test_error_dominated_by_clip_floor_or_sin(source, row):
    rows = [{"T": 1, "layer": "x", "firing_rate": 0.3, "ann_error": 0.7, **row}]
    infos = {"x": doctor.LayerInfo("x", torch.tensor(2.0), ann_mean_abs=1.0, ann_positive_fraction=0.5,
                                   ann_percentile=3.0)}
    findings = doctor.diagnose(rows, infos, accuracy={1: 50.0}, ann_acc=95.0, num_classes=10)
    assert [(f.finding, f.layer) for f in findings] == [(f"{source}_dominated", "x")]
    assert findings[0].suggestion == doctor.SUGGEST[source]
    # No gap to the ANN at this T: nothing to explain.
    assert doctor.diagnose(rows, infos, accuracy={1: 94.5}, ann_acc=95.0, num_classes=10) == []


def test_ann_at_chance_is_blamed_on_the_ann():
    findings = doctor.diagnose([], {}, accuracy={8: 10.0}, ann_acc=11.0, num_classes=10)
    assert {f.finding for f in findings} == {"ann_at_chance", "output_at_chance"}
    assert all(f.suggestion == doctor.SUGGEST["chance_ann"] for f in findings)


def test_frame_and_group():
    findings = [doctor.Finding(T, "x", "floor_dominated", 0.5 / T, "warning", "m", "s") for T in (1, 2)] + \
               [doctor.Finding(None, "", "preset_departure", 3.0, "note", f"k{i}", "s") for i in range(2)]
    table = doctor.frame(findings)
    assert list(table.columns) == doctor.COLUMNS and len(table) == 4
    assert table["T"].isna().sum() == 2
    groups = doctor.group(findings)
    assert [g[0] for g in groups] == [[1, 2], [], []]


# -- presets --------------------------------------------------------------------------------
def _config_dir_with_preset(tmp_path: Path) -> Path:
    from snnx.config import config_dir

    conf = tmp_path / "conf"
    shutil.copytree(config_dir(), conf)
    (conf / "experiment" / "doctor_test.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /act: qcfs\n  - override /train: default\n"
        "act:\n  L: 8\n  init_threshold: 4.0\ntrain:\n  epochs: 200\ndataset:\n  augment: true\n")
    return conf


def _compose(conf: Path, overrides: list[str]) -> dict:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from snnx.composition import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return OmegaConf.to_container(compose(config_name="config", overrides=["stage=run", *overrides]), resolve=True)


def test_preset_departures_list_the_changed_recipe_keys(tmp_path):
    conf = _config_dir_with_preset(tmp_path)
    preset = _compose(conf, ["experiment=doctor_test"])
    run = _compose(conf, ["experiment=doctor_test", "train.epochs=3", "act.L=4", "dataset.augment=false",
                          "sim.T=[1,2]", "sim.batch_size=10", f"paths.root={tmp_path}", "device=cpu"])
    departures = doctor.preset_departures(run, preset)
    assert departures == [("act.L", 4, 8), ("dataset.augment", False, True), ("train.epochs", 3, 200)]
    findings = doctor.departure_findings("doctor_test", departures)
    assert [f.finding for f in findings] == ["preset_departure"] * 3
    assert "train.epochs = 3 but experiment=doctor_test has 200" in findings[2].message
    assert doctor.preset_departures(preset, preset) == []


def test_preset_departures_with_a_real_preset():
    from snnx.config import config_dir
    from snnx.stages.doctor import compose_preset

    presets = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))
    if not presets:
        pytest.skip("conf/experiment/ has no preset yet (the tmp-config test covers the comparison)")
    preset = compose_preset(presets[0])
    assert doctor.preset_departures(preset, preset) == []
    changed = copy.deepcopy(preset)
    changed["train"]["epochs"] = preset["train"]["epochs"] + 1
    assert [d[0] for d in doctor.preset_departures(changed, preset)] == ["train.epochs"]


# -- the CLI ----------------------------------------------------------------------------------
def test_cli_doctor_writes_doctor_csv(trained, tmp_path):
    root = trained["root"]
    done = snnx("doctor", "dataset=digits", "model=lenet", "model.width=0.25", "train=smoke", "act=relu",
                "convert=maxnorm", "sim.T=[1,64]", "convert.calib_size=200", f"paths.root={root}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (csv,) = sorted(root.glob("runs/*/*_doctor/doctor.csv"))
    table = pd.read_csv(csv)
    assert list(table.columns) == doctor.COLUMNS
    # T = 1 with θ = max and v0 = 0: the first layer hardly fires; T = 64 is healthy.
    assert set(table.loc[table["T"] == 1, "finding"]) & {"dead_layer", "nearly_dead_layer"}
    assert not ((table["T"] == 64) & (table["severity"] != "note")).any(), table.to_string()
    assert "doctor:" in done.stdout and "doctor.csv" in done.stdout
    assert not math.isnan(table["value"].iloc[0])


def test_cli_doctor_lists_departures_from_an_experiment_preset(trained, tmp_path):
    """A preset in a config dir added with hydra.searchpath; the run overrides one of its keys."""
    presets = tmp_path / "presets" / "experiment"
    presets.mkdir(parents=True)
    (presets / "doctor_cli.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /dataset: digits\n  - override /act: relu\n"
        "  - override /convert: maxnorm\n  - override /train: smoke\nmodel:\n  width: 0.25\nconvert:\n"
        "  calib_size: 200\n")
    root = trained["root"]
    done = snnx("doctor", f"hydra.searchpath=[file://{presets.parent}]", "experiment=doctor_cli", "convert.v_init=0.5",
                "sim.T=[8]", "sim.batch_size=60", f"paths.root={root}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (csv,) = [p for p in root.glob("runs/*/*_doctor/doctor.csv") if "preset_departure" in p.read_text()]
    table = pd.read_csv(csv)
    notes = table[table["finding"] == "preset_departure"]
    assert list(notes["message"]) == ["convert.v_init = 0.5 but experiment=doctor_cli has None"]
    assert "preset_departure" in done.stdout


def test_simulate_runs_the_doctor_on_its_own_rows(trained, monkeypatch):
    """The end of `simulate` diagnoses the rows it recorded (no second simulation) and writes doctor.csv."""
    from snnx import sim
    from snnx.app import compose
    from snnx.stages import simulate
    from snnx.validate import validate

    from conftest import RELU

    runs = []
    original = sim.Simulator.run
    monkeypatch.setattr(sim.Simulator, "run", lambda self, *a, **k: runs.append(1) or original(self, *a, **k))
    cfg = compose("simulate", [*[o for o in RELU if not o.startswith("sim.T")], "sim.T=[1,32]",
                               f"paths.root={trained['root']}", "device=cpu"])
    validate(cfg, note=None)
    result = simulate.run(cfg)
    assert len(runs) == 1
    table = pd.read_csv(Path(result["run_dir"]) / "doctor.csv")
    assert list(table.columns) == doctor.COLUMNS
    # θ = max and v0 = 0: at T = 1 hardly any neuron of the first layer reaches θ (bounded by rate·T here).
    first = result["doctor"][0]
    assert (first.T, first.layer) == (1, "features.0.act") and first.finding in ("dead_layer", "nearly_dead_layer")
    assert set(table.loc[table["severity"] != "note", "T"].dropna()) == {1}  # T = 32: at most an energy note


def test_rate_limit_is_the_ann_with_its_quantisers_clipped():
    """A net that needs its 1-level quantiser (0.6 → 1) fails with clip(x, 0, λ) (0.6 stays 0.6)."""
    from snnx.activations import QCFS

    net = nn.Sequential(nn.Linear(2, 2, bias=False), QCFS(1, init_threshold=1.0), nn.Linear(2, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[2].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
        net[2].bias.copy_(torch.tensor([0.0, 0.8]))
    images = torch.tensor([[0.6, 0.1]] * 10)
    labels = torch.zeros(10, dtype=torch.long)
    with torch.no_grad():
        assert (net(images).argmax(1) == labels).all()
    assert doctor.rate_limit_accuracy(net, images, labels) == 0.0
    assert isinstance(net[1], QCFS)  # the ANN itself is untouched
    [finding] = doctor.rate_limit_findings(100.0, 0.0, 10)
    assert finding.finding == "rate_limit_below_ann" and finding.T is None and "0.0 %" in finding.message
    assert doctor.rate_limit_accuracy(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), images, labels) is None


@pytest.mark.parametrize("ann_acc,limit,images,expected", [
    (97.7, 96.9, 1000, True),   # 8 images
    (97.7, 97.4, 1000, False),  # 0.3 points
    (100.0, 99.0, 100, False),  # one image only
    (100.0, 98.0, 100, True),
    (97.0, None, 1000, False),
])
def test_rate_limit_finding_needs_two_images_and_half_a_point(ann_acc, limit, images, expected):
    assert bool(doctor.rate_limit_findings(ann_acc, limit, images)) == expected


# -- once per run -------------------------------------------------------------------------------
def _printed(monkeypatch, findings) -> str:
    """What the stage prints for ``findings`` (its panel, on a wide console)."""
    import io

    from rich.console import Console

    from snnx.stages import doctor as doctor_stage

    buffer = io.StringIO()
    monkeypatch.setattr(doctor_stage, "console", Console(file=buffer, width=400, color_system=None))
    doctor_stage.show(findings)
    return buffer.getvalue()


def test_a_dead_ann_prints_output_at_chance_once_with_its_ts(lenet, monkeypatch):
    model, _, images, labels = lenet
    dead = copy.deepcopy(model)
    with torch.no_grad():
        for p in dead.parameters():
            p.zero_()
    train = build_dataset("digits", "train", augment=False, limit=200)
    stats = calibrate(dead, (x for x, _ in DataLoader(train, batch_size=200)), percentile=99.99, num_batches=1,
                      device=torch.device("cpu"))
    snn, _ = convert(dead, method="maxnorm", stats=stats, convert={"name": "maxnorm"})
    report = doctor.examine(snn, dead, images[:60], labels[:60], [1, 2, 4], num_classes=10)
    at_chance = [f for f in report.findings if f.finding == "output_at_chance"]
    assert [f.T for f in at_chance] == [1, 2, 4]  # doctor.csv: one row per finding and T
    assert len(doctor.frame(report.findings)) == len(report.findings)
    text = _printed(monkeypatch, report.findings)
    lines = [line for line in text.splitlines() if "output_at_chance" in line]
    assert len(lines) == 1 and "T=1,2,4 " in lines[0], text
    # The title counts the printed lines, not the rows.
    groups = doctor.grouped(report.findings)
    errors = sum(g[0].severity == "error" for g in groups)
    assert errors < sum(f.severity == "error" for f in report.findings)
    assert f"doctor: {errors} errors" in text


def test_output_at_chance_naming_another_layer_at_another_T_is_still_one_line(monkeypatch):
    findings = [doctor.Finding(T, layer, "output_at_chance", acc, "error", f"accuracy {acc} %", fix)
                for T, layer, acc, fix in [(1, "a", 10.0, "x"), (2, "b", 11.0, "y"), (4, "a", 9.0, "x")]]
    findings.append(doctor.Finding(2, "b", "dead_layer", 0.0, "error", "m", "z"))
    groups = doctor.grouped(findings)
    assert [[f.T for f in g] for g in groups] == [[1, 2, 4], [2]]
    text = _printed(monkeypatch, findings)
    [line] = [line for line in text.splitlines() if "output_at_chance" in line]
    assert "T=1,2,4 output_at_chance" in line and "a at T=1,4; b at T=2" in line and "x; or y" in line


def test_doctor_false_skips_the_automatic_check(trained):
    from snnx.app import compose
    from snnx.stages import simulate
    from snnx.validate import validate

    from conftest import RELU

    cfg = compose("simulate", [*[o for o in RELU if not o.startswith("sim.T")], "sim.T=[1,4]", "doctor=false",
                               f"paths.root={trained['root']}", "device=cpu"])
    validate(cfg, note=None)
    result = simulate.run(cfg)
    out = Path(result["run_dir"])
    assert (out / "results.csv").exists() and not (out / "doctor.csv").exists()
    assert result["doctor"] is None
