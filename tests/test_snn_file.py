"""A run's snn.pt: `snnx simulate snn=<file>` reproduces the run's results.csv, snnx.api.load_snn reads it
without a model, and what does not fit is refused before anything runs."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from snnx import api

from conftest import snapshot, snnx

# Columns that say when and as which run a row was made (config_hash: the config now holds stage and snn=).
RUN_IDENTITY = ["run_id", "created", "config_hash"]


@pytest.fixture(scope="module")
def converted_run(trained, tmp_path_factory):
    """A `snnx simulate` run of the session's ReLU LeNet: its folder holds results.csv and snn.pt."""
    run_dir = tmp_path_factory.mktemp("converted_run")
    done = snnx("simulate", *trained["args"], "sim.record_layers=false", f"hydra.run.dir={run_dir}",
                cwd=trained["cwd"])
    assert done.returncode == 0, done.stderr
    assert (run_dir / "snn.pt").is_file() and (run_dir / "results.csv").is_file()
    return run_dir


def test_simulating_the_saved_snn_reproduces_the_results(trained, converted_run, tmp_path):
    again = tmp_path / "again"
    done = snnx("simulate", f"snn={converted_run / 'snn.pt'}", "sim.T=[1,4]", "sim.record_layers=false",
                f"paths.root={trained['root']}", f"hydra.run.dir={again}", cwd=trained["cwd"])
    assert done.returncode == 0, done.stderr
    before = pd.read_csv(converted_run / "results.csv").drop(columns=RUN_IDENTITY)
    after = pd.read_csv(again / "results.csv").drop(columns=RUN_IDENTITY)
    pd.testing.assert_frame_equal(before, after)
    assert "simulating the saved SNN" in done.stdout


def test_the_api_loads_a_runs_snn_without_a_model(trained, converted_run):
    snn = api.load_snn(converted_run / "snn.pt")
    config = yaml_config(converted_run)
    test = api.build_dataset(config, "test")
    result = api.simulate(snn, test, [1, 4], batch_size=config["sim"]["batch_size"])
    saved = pd.read_csv(converted_run / "results.csv")
    # results.csv rounds accuracy to 2 decimals and SOPs per image to 1.
    assert [round(result.accuracy[T], 2) for T in (1, 4)] == list(saved["acc"])
    assert list(result.to_pandas()["sops"].round(1)) == pytest.approx(list(saved["sops"]), rel=1e-12)


def yaml_config(run_dir):
    import yaml

    return yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())


@pytest.mark.parametrize("extra, key", [(["act=clip"], "act"), (["convert.v_init=0.5"], "convert.v_init"),
                                        (["seed=3"], "seed")])
def test_a_key_the_file_fixes_is_refused(trained, converted_run, tmp_path, extra, key):
    before = snapshot(trained["root"])
    done = snnx("simulate", f"snn={converted_run / 'snn.pt'}", *extra, f"paths.root={trained['root']}",
                f"hydra.run.dir={tmp_path / 'x'}", cwd=trained["cwd"])
    assert done.returncode == 2
    assert f"snnx: error: {key}: snn= simulates the saved SNN as it was converted" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "x").exists()
    assert snapshot(trained["root"]) == before


def test_snn_is_for_the_simulate_stage_and_a_real_file(trained, converted_run, tmp_path):
    done = snnx("run", f"snn={converted_run / 'snn.pt'}", f"paths.root={trained['root']}", cwd=trained["cwd"])
    assert done.returncode == 2 and "snn: snn= is read by `snnx simulate`" in done.stderr
    done = snnx("simulate", f"snn={tmp_path / 'none.pt'}", f"paths.root={trained['root']}", cwd=trained["cwd"])
    assert done.returncode == 2 and "snn: there is no file at" in done.stderr
    bogus = tmp_path / "bogus.pt"
    torch.save({"state_dict": {}}, bogus)
    done = snnx("simulate", f"snn={bogus}", f"paths.root={trained['root']}", cwd=trained["cwd"])
    assert done.returncode == 2 and "is a torch file but not an SNN file" in done.stderr


def test_an_snn_of_ones_own_model_points_to_the_api(trained, tmp_path):
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.ReLU(), nn.Linear(10, 10)).eval()
    path = api.save_snn(api.convert(net, method="maxnorm", calibration=torch.rand(8, 1, 8, 8)), tmp_path / "own.pt")
    done = snnx("simulate", f"snn={path}", f"paths.root={trained['root']}", cwd=trained["cwd"])
    assert done.returncode == 2
    assert "converted from your own model" in done.stderr and "snnx.api.load_snn" in done.stderr


def test_the_api_converts_a_snnx_checkpoint_as_the_cli_does(trained, converted_run):
    """api.convert(model, config): the config's convert section and training set, the run's SNN exactly."""
    model, config = api.load_ann(str(trained["model"]))
    snn = api.convert(model, config)
    saved = torch.load(converted_run / "snn.pt", weights_only=True)["state_dict"]
    ours = snn.state_dict()
    assert ours.keys() == saved.keys() and all(torch.equal(ours[k], saved[k]) for k in ours)


def test_a_deep_copy_keeps_the_conversion_record():
    """A GraphModule's deep copy is rebuilt from its graph: the record travels in its meta."""
    import copy

    import torch

    from snnx import api, snn_file
    from snnx.activations import make_act_factory
    from snnx.models import create_model

    ann = create_model("lenet", in_channels=1, image_size=28, num_classes=10, act_factory=make_act_factory("relu"),
                       width=0.25).eval()
    snn = api.convert(ann, method="maxnorm", calibration=torch.randn(4, 1, 28, 28))
    copied = snn_file.conversion_of(copy.deepcopy(snn))
    assert copied is not None and copied.method == "maxnorm" and copied.label == snn_file.conversion_of(snn).label
