"""What a run leaves on disk: snn.pt only when asked or small (sim.save_snn), no resume checkpoint beside a
finished model.pt, `snnx clean` freeing the cache (and only snnx's files), and results.csv's rounded numbers."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from snnx import api, cli
from snnx import pipeline
from snnx.app import compose
from snnx.artifacts import artifact_lock, write_csv
from snnx.clean import clean, plan
from snnx.errors import ConfigError
from snnx.pipeline import EXTRA_COLUMNS, RESULT_COLUMNS, drop_resume_checkpoints, ensure_ann, rounded_results
from snnx.snn_file import estimated_bytes
from snnx.stages import convert as convert_stage
from snnx.stages import plain_config
from snnx.validate import validate

from conftest import TINY, cache_dirs, snapshot


def _snn():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10)).eval()
    return api.convert(net, method="maxnorm", calibration=torch.rand(16, 1, 8, 8))


# -- sim.save_snn ---------------------------------------------------------------------------------------
def test_estimated_bytes_is_the_files_size_but_its_structure(tmp_path):
    snn = _snn()
    path = api.save_snn(snn, tmp_path / "snn.pt")
    # The tensors' storages: the ANN's weights, the SNN's state, the calibration statistics.
    assert 0 < os.path.getsize(path) - estimated_bytes(snn) < 20_000
    assert estimated_bytes(snn) >= 2 * 4 * (4 * 9 + 4 + 256 * 10 + 10)  # ANN weights + the SNN's copy, float32


def test_save_snn_auto_writes_a_small_snn_and_skips_a_large_one_with_the_way_to_get_it(tmp_path, monkeypatch):
    lines = []
    monkeypatch.setattr(convert_stage, "log", lines.append)
    snn, ann_path = _snn(), tmp_path / "cache" / "model.pt"
    assert convert_stage.save_snn(snn, tmp_path / "a.pt", "auto", ann_path) == tmp_path / "a.pt"
    assert (tmp_path / "a.pt").is_file() and not lines
    monkeypatch.setattr(convert_stage, "AUTO_SAVE_LIMIT", estimated_bytes(snn))  # now "too large" by one byte
    assert convert_stage.save_snn(snn, tmp_path / "b.pt", "auto", ann_path) is None
    assert not (tmp_path / "b.pt").exists()
    (line,) = lines
    assert "snn.pt not written" in line and "sim.save_snn=true" in line and "rerun the same command" in line
    assert f"snnx.api.load_ann('{ann_path}')" in line
    # true writes whatever the size, false never.
    assert convert_stage.save_snn(snn, tmp_path / "c.pt", True, ann_path) == tmp_path / "c.pt"
    assert convert_stage.save_snn(_snn(), tmp_path / "d.pt", False, ann_path) is None
    assert (tmp_path / "c.pt").is_file() and not (tmp_path / "d.pt").exists() and len(lines) == 1


def test_save_snn_takes_auto_true_false_only():
    for value in ("auto", "true", "false"):
        validate(compose("convert", [*TINY, f"sim.save_snn={value}"]), check_paths=False, note=None)
    with pytest.raises(ConfigError) as info:
        validate(compose("convert", [*TINY, "sim.save_snn=maybe"]), check_paths=False, note=None)
    assert info.value.key == "sim.save_snn" and "auto" in str(info.value)


# -- resume checkpoints ---------------------------------------------------------------------------------
def test_resume_checkpoints_go_only_once_model_pt_exists(tmp_path):
    for name in ("train_last.pt", "finetune_last.pt", "train.csv"):
        (tmp_path / name).write_text("x")
    assert drop_resume_checkpoints(tmp_path, tmp_path / "model.pt") == []
    assert (tmp_path / "train_last.pt").exists() and (tmp_path / "finetune_last.pt").exists()
    (tmp_path / "model.pt").write_text("m")
    assert sorted(p.name for p in drop_resume_checkpoints(tmp_path, tmp_path / "model.pt")) == \
        ["finetune_last.pt", "train_last.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "train.csv"]


def test_train_last_is_kept_until_model_pt_is_written_then_removed(tmp_path, monkeypatch):
    config = plain_config(validate(compose("train", [*TINY, "act=relu", "dataset.limit_train=256",
                                                     f"paths.root={tmp_path}"]), note=None))
    real_save = pipeline._save_final

    def failing_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pipeline, "_save_final", failing_save)
    with pytest.raises(OSError):
        ensure_ann(config, torch.device("cpu"))
    (directory,) = cache_dirs(tmp_path)
    assert (directory / "train_last.pt").is_file() and not (directory / "model.pt").exists()
    resume_point = torch.load(directory / "train_last.pt", weights_only=True)["state_dict"]

    monkeypatch.setattr(pipeline, "_save_final", real_save)
    lines = []
    monkeypatch.setattr(pipeline, "log", lines.append)
    ann = ensure_ann(config, torch.device("cpu"))  # resumes after the last epoch: nothing left to train
    assert (directory / "model.pt").is_file() and not (directory / "train_last.pt").exists()
    assert (directory / "train.csv").is_file()
    saved = torch.load(directory / "model.pt", weights_only=True)["state_dict"]
    assert saved.keys() == resume_point.keys() and all(torch.equal(saved[k], resume_point[k]) for k in saved)
    assert ann.path == directory / "model.pt"


# -- snnx clean -----------------------------------------------------------------------------------------
KEY_A, KEY_B, KEY_C = "0123456789abcdef", "fedcba9876543210", "00000000000000aa"


def _outputs(root: Path) -> dict[str, int]:
    """A outputs folder as runs leave it, with files of known sizes; the bytes of each cache part."""
    files = {f"cache/ann/{KEY_A}/model.pt": 3000, f"cache/ann/{KEY_A}/train.csv": 100, f"cache/ann/{KEY_A}/key.json": 50,
             f"cache/ann/{KEY_B}/model.pt": 5000, f"cache/calib/{KEY_C}/stats.pt": 700,
             "runs/2024-01-01/10-00-00-000000_run/.hydra/config.yaml": 40,
             "runs/2024-01-01/10-00-00-000000_run/results.csv": 300, "tables/summary.csv": 200,
             "cache/ann/README.txt": 10, "notes.txt": 20}
    for name, size in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
    for key, kind in ((KEY_A, "ann"), (KEY_B, "ann"), (KEY_C, "calib")):
        (root / "cache" / kind / f"{key}.lock").touch()
    return {"ann": 3150 + 5000, "calib": 700, "runs": 340, "tables": 200}


def test_clean_frees_the_cache_and_only_the_cache(tmp_path):
    sizes = _outputs(tmp_path)
    before = snapshot(tmp_path)
    lines = []
    assert clean(tmp_path, dry_run=True, say=lines.append) == sizes["ann"] + sizes["calib"]
    assert snapshot(tmp_path) == before and "would free 0.0 MB" in lines[-1]
    lines.clear()
    assert clean(tmp_path, say=lines.append) == sizes["ann"] + sizes["calib"]
    left = snapshot(tmp_path)
    assert sorted(left) == ["cache/ann/README.txt", "notes.txt", "runs/2024-01-01/10-00-00-000000_run/.hydra/config.yaml",
                            "runs/2024-01-01/10-00-00-000000_run/results.csv", "tables/summary.csv"]
    assert all(left[k] == before[k] for k in left)  # untouched
    text = "\n".join(lines)
    assert "2 ANNs" in text and "1 calibration" in text and "cache/ann/README.txt: left alone" in text
    assert "kept: runs/" in text and "all=true" in text


def test_clean_all_removes_the_results_too_but_nothing_of_anyone_else(tmp_path):
    sizes = _outputs(tmp_path)
    assert clean(tmp_path, everything=True, say=lambda _: None) == sum(sizes.values())
    assert sorted(snapshot(tmp_path)) == ["cache/ann/README.txt", "notes.txt"]


def test_clean_leaves_an_artifact_a_running_job_holds(tmp_path):
    _outputs(tmp_path)
    lines = []
    with artifact_lock(tmp_path / "cache" / "ann" / KEY_B):
        assert clean(tmp_path, say=lines.append) == 3150 + 700
    assert (tmp_path / "cache" / "ann" / KEY_B / "model.pt").is_file()
    assert not (tmp_path / "cache" / "ann" / KEY_A).exists()
    assert any(f"{KEY_B}: left alone, a running job holds its lock" in line for line in lines)


def test_clean_refuses_a_folder_that_is_not_snnx_outputs(tmp_path):
    (tmp_path / "Documents").mkdir()
    (tmp_path / "cache" / "pip").mkdir(parents=True)
    (tmp_path / "cache" / "pip" / "wheel").write_text("x")
    before = snapshot(tmp_path)
    with pytest.raises(ConfigError) as info:
        plan(tmp_path)
    assert info.value.key == "paths.root" and "does not look like a snnx outputs folder" in str(info.value)
    assert snapshot(tmp_path) == before
    # A folder with only snnx's own (emptied) folders, or none at all, is fine: nothing to free.
    (tmp_path / "empty" / "cache").mkdir(parents=True)
    assert clean(tmp_path / "empty", say=lambda _: None) == 0
    assert clean(tmp_path / "absent", say=lambda _: None) == 0


def test_snnx_clean_command(tmp_path, capsys):
    _outputs(tmp_path)
    cli.main(["clean", f"paths.root={tmp_path}"])
    out = capsys.readouterr().out
    assert out.startswith(f"snnx clean: {tmp_path}") and out.rstrip().endswith(f"freed 0.0 MB under {tmp_path}")
    assert not (tmp_path / "cache" / "ann" / KEY_A).exists() and (tmp_path / "runs").is_dir()
    for bad, key in (("all=maybe", "all"), ("root=x", "root")):
        with pytest.raises(SystemExit) as done:
            cli.main(["clean", bad])
        assert done.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith(f"snnx: error: {key}: ")
    cli.main(["clean", "--help"])
    assert "all=true" in capsys.readouterr().out


# -- results.csv numbers --------------------------------------------------------------------------------
def _significant(value: float, digits: int) -> float:
    """Independent of snnx: round at the decimal place of the digits-th significant digit."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def test_results_csv_numbers_are_rounded_where_written(tmp_path):
    noisy = {"acc": 37.39999999999999, "ann_acc": 97.22222222222223, "conversion_loss": 59.82222222222224,
             "spikes_per_neuron": 0.123456789, "sops": 15705.2345678, "macs": 9248.0, "energy_mj": 5.66812345e-05,
             "negative_spikes_per_neuron": 0.0, "ann_macs": 82500.0, "ann_energy_mj": 0.00037949999999999995,
             "hidden_spikes": 27.1666666, "hidden_negative_ratio": float("nan"), "hidden_neurons": 506.0,
             "ops_ratio": 6.26234567, "energy_model": "memory", "qann_bits": 3.0, "qann_acc": 96.4444444,
             "qann_energy_mj": 1.23456789e-4, "energy_ratio": 0.459123456}
    frame = pd.DataFrame([{**{c: "x" for c in RESULT_COLUMNS + EXTRA_COLUMNS}, "T": 4, **noisy}],
                         columns=RESULT_COLUMNS + EXTRA_COLUMNS)
    write_csv(rounded_results(frame), tmp_path / "results.csv")
    (row,) = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert frame["acc"].iloc[0] == noisy["acc"]  # the frame itself keeps full precision
    assert row["acc"] == "37.4" and row["ann_acc"] == "97.22"
    assert float(row["conversion_loss"]) == round(97.22 - 37.4, 2)  # the written columns agree
    assert row["ann_macs"] == "82500" and row["hidden_neurons"] == "506"  # whole counts
    assert row["sops"] == "15705.2" and row["macs"] == "9248.0" and row["hidden_spikes"] == "27.2"
    assert row["qann_bits"] == "3" and row["qann_acc"] == "96.44" and row["energy_model"] == "memory"
    for column in ("spikes_per_neuron", "energy_mj", "ann_energy_mj", "ops_ratio", "qann_energy_mj", "energy_ratio"):
        assert float(row[column]) == pytest.approx(_significant(noisy[column], 4), rel=1e-15), column
    assert row["hidden_negative_ratio"] == "" and row["negative_spikes_per_neuron"] == "0.0"


def test_method_column_has_no_passes_text():
    snn = _snn()
    data = TensorDataset(torch.rand(20, 1, 8, 8), torch.randint(0, 10, (20,)))
    frame = api.simulate(snn, data, [1, 4]).to_pandas()
    assert set(frame["method"]) == {snn.snnx_conversion.label}
    assert set(frame["passes"]) == {"one pass for the sweep"}
