"""The `snnx` entrypoint: dispatch, help, --cfg job, hydra.run.dir, and composition of every option."""

from __future__ import annotations

import itertools
import shlex
from pathlib import Path

import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from snnx.models.registry import min_image_size as _min_image_size
from snnx.app import compose
from snnx.config import STAGES, config_dir, group_options
from snnx.config import GROUPS
from snnx.errors import ConfigError
from snnx.validate import validate

from conftest import TINY, cache_dirs, snnx, snapshot

OPTIONS = {group: sorted(p.stem for p in (config_dir() / group).glob("*.yaml")) for group in GROUPS}


# -- dispatch and help ------------------------------------------------------------
@pytest.mark.parametrize("argv", [[], ["--help"], ["-h"], ["help"]])
def test_bare_and_help_list_stages_groups_and_options(argv, tmp_path):
    done = snnx(*argv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for stage in STAGES:
        assert f"  {stage} " in out
    groups = out[out.index("config groups"):].splitlines()
    for group, options in OPTIONS.items():
        line = next((ln for ln in groups if ln.strip().startswith(group + " ")), None)
        assert line is not None, f"group {group} not listed"
        for option in options:
            assert option in line, f"{group}={option} not listed"


def test_group_options_match_conf_tree():
    assert group_options() == OPTIONS
    assert all(OPTIONS[g] for g in GROUPS if g != "experiment")


@pytest.mark.parametrize("stage,hint", [("trian", "snnx train"), ("act=relu", "snnx run act=relu"), ("zzz", None)])
def test_unknown_stage_is_one_line_exit_2(stage, hint, tmp_path):
    done = snnx(stage, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snnx: error: unknown stage")
    for name in STAGES:
        assert name in lines[0]
    if hint:
        assert hint in lines[0]
    assert not list(tmp_path.iterdir())


def test_cfg_job_prints_the_composed_config_and_writes_nothing(tmp_path):
    root = tmp_path / "root"
    done = snnx("run", "--cfg", "job", "act=relu", "convert=maxnorm", "sim.T=[2,8]", f"paths.root={root}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    cfg = yaml.safe_load(done.stdout)
    assert cfg["stage"] == "run"
    assert cfg["act"]["name"] == "relu" and cfg["convert"]["name"] == "maxnorm"
    assert cfg["sim"]["T"] == [2, 8]
    assert set(GROUPS) - {"experiment", "hparams_search"} <= set(cfg)
    assert not root.exists()


def test_cfg_job_with_a_bad_override_is_a_clean_error(tmp_path):
    done = snnx("run", "--cfg", "job", "act=nope", cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "act=nope" in done.stderr


def test_stage_help_lists_the_keys_from_the_schemas(tmp_path):
    done = snnx("train", "act=clip", "act.y_th=2", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("snnx train: ")
    # The chosen act's keys with type, value (and default where it differs) and doc; no conversion keys.
    y_th = next(line for line in lines if line.strip().startswith("act.y_th"))
    assert "float" in y_th and "2.0 (default 1.0)" in y_th and "ceiling" in y_th
    assert any(line.strip().startswith("train.epochs") for line in lines)
    assert not any(line.strip().startswith("convert.") for line in lines)
    same = snnx("help", "train", "act=clip", "act.y_th=2", cwd=tmp_path)
    assert same.returncode == 0 and same.stdout == done.stdout
    hydra_help = snnx("run", "--hydra-help", cwd=tmp_path)
    assert hydra_help.returncode == 0, hydra_help.stderr
    assert "Hydra" in hydra_help.stdout


def test_hydra_run_dir_is_honoured_and_the_cache_reused(trained, tmp_path):
    model = trained["model"]
    stamp = model.stat().st_mtime_ns
    before = cache_dirs(trained["root"])
    run_dir = tmp_path / "my_run"
    done = snnx("train", *trained["args"], f"hydra.run.dir={run_dir}", cwd=trained["cwd"])
    assert done.returncode == 0, done.stderr
    saved = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert saved["stage"] == "train" and saved["paths"]["root"] == str(trained["root"])
    # A second `snnx train` with the same keys reuses the ANN: no epoch, the checkpoint untouched.
    assert "reusing" in done.stdout
    assert "epoch 1/" not in done.stdout
    assert model.stat().st_mtime_ns == stamp
    assert cache_dirs(trained["root"]) == before


# -- composition of every option ---------------------------------------------------
def _accepted_acts(method: str, params: dict | None = None) -> list[str]:
    """The acts convert=<method> takes, by its registry entry."""
    from snnx.activations.registry import ACTIVATIONS
    from snnx.convert.methods import METHODS

    entry = METHODS.get(method)
    params = entry.defaults() if params is None else params
    return ACTIVATIONS.where(lambda act: entry.trait("accepts")(act, params))


def test_paper_pairings_of_act_and_convert():
    # The papers' pairings: QCFS thresholds and offset-spike calibration need a trained λ (Yang et al. 2025),
    # the all-integer SNN its quantiser (Zou et al. 2024), Deng & Gu's T/TS the threshold ReLU, S any ReLU ANN.
    family = {"qcfs", "cqcfs", "sqcfs", "csqcfs"}
    assert set(_accepted_acts("qcfs")) == set(_accepted_acts("cos")) == family
    assert _accepted_acts("allint") == ["quant"]
    assert _accepted_acts("shift") == ["clip"]
    assert set(_accepted_acts("shift", {"variant": "S"})) == set(OPTIONS["act"])
    for method in ("maxnorm", "pnorm", "channelnorm", "msat"):
        assert set(_accepted_acts(method)) == set(OPTIONS["act"])
# Smallest image side of the models that cannot take small images (the rest fit 8×8 digits).
# Each model's smallest side comes from its registry entry (tests/test_models.py pins those values).
SIDE = {"digits": 8, "mnist5k": 28, "mnist": 28, "cifar10": 32, "cifar100": 32, "imagenet": 224}


def _option_overrides(group: str, option: str) -> list[str]:
    """A partner for options that need one: an act fitting the conversion."""
    if group == "convert":
        acts = _accepted_acts(compose("run", [f"convert={option}"]).convert.name)
        act = "relu" if "relu" in acts else sorted(acts)[0]
        return [f"convert={option}", f"act={act}"]
    if group == "act":
        return [f"act={option}", "convert=maxnorm"]
    if group == "model" and _min_image_size(option) > 28:
        return [f"model={option}", "dataset=cifar10"]
    if group == "train" and option == "two_stage":
        # Stage 2 turns layer-wise QCFS into the CS-QCFS family's thresholds.
        return ["train=two_stage", "act=csqcfs"]
    return [f"{group}={option}"]


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in OPTIONS.items() for o in opts])
def test_every_option_composes_and_validates(group, option):
    cfg = compose("run", _option_overrides(group, option))
    validate(cfg, check_paths=False, note=None)
    if group in ("dataset", "model", "act", "convert"):
        assert cfg[group].name == option.split("_")[0] if group == "convert" else cfg[group].name == option


@pytest.mark.parametrize("act,conv", list(itertools.product(OPTIONS["act"], OPTIONS["convert"])))
def test_act_convert_combinations_are_checked(act, conv):
    cfg = compose("run", [f"act={act}", f"convert={conv}"])
    if act not in _accepted_acts(cfg.convert.name, OmegaConf.to_container(cfg.convert)):
        with pytest.raises(ConfigError) as info:
            validate(cfg, check_paths=False, note=None)
        assert info.value.key.startswith("convert") and f"act={act}" in str(info.value)
        # Training alone never cares about the conversion.
        validate(compose("train", [f"act={act}", f"convert={conv}"]), check_paths=False, note=None)
    else:
        validate(cfg, check_paths=False, note=None)


@pytest.mark.parametrize("dataset", OPTIONS["dataset"])
def test_model_dataset_combinations_are_checked(dataset):
    for model in OPTIONS["model"]:
        cfg = compose("run", [f"dataset={dataset}", f"model={model}", "act=relu", "convert=maxnorm"])
        if SIDE[dataset] < _min_image_size(model):
            with pytest.raises(ConfigError) as info:
                validate(cfg, check_paths=False, note=None)
            assert info.value.key == "model / dataset" and f"dataset={dataset}" in str(info.value), model
        else:
            validate(cfg, check_paths=False, note=None)


def test_time_steps_are_sorted_and_deduplicated_with_one_note():
    notes = []
    cfg = validate(compose("run", ["sim.T=[8,2,2,1]"]), check_paths=False, note=notes.append)
    assert list(cfg.sim.T) == [1, 2, 8] and len(notes) == 1 and "[1, 2, 8]" in notes[0]


# -- multirun ----------------------------------------------------------------------
RESULT_COLUMNS = ["run_id", "dataset", "model", "act", "L", "convert", "method", "T", "acc", "ann_acc",
                  "conversion_loss", "spikes_per_neuron", "sops", "macs", "energy_mj", "seed", "ann_key",
                  "config_hash", "created"]


def check_results_csv(path: Path, time_steps: list[int]) -> pd.DataFrame:
    frame = pd.read_csv(path)
    assert list(frame.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert list(frame["T"]) == time_steps  # one row per T, in order
    assert frame["run_id"].nunique() == 1 and frame["ann_key"].nunique() == 1
    assert ((frame["conversion_loss"] - (frame["ann_acc"] - frame["acc"])).abs() < 1e-9).all()
    assert frame["acc"].between(0, 100).all() and frame["ann_acc"].between(0, 100).all()
    return frame


def test_multirun_sweep_writes_results_per_job(tmp_path):
    root = tmp_path / "root"
    done = snnx("run", "-m", *TINY, "dataset.limit_train=512", "act=qcfs", "convert=qcfs", "act.L=2,4", "sim.T=[4,1,4]",
                f"paths.root={root}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("snnx: note: sim.T sorted") == 1  # said once, not once per job
    files = sorted(root.glob("multirun/*/*/*/results.csv"))
    assert len(files) == 2
    frames = [check_results_csv(f, [1, 4]) for f in files]
    assert sorted(int(f["L"].iloc[0]) for f in frames) == [2, 4]
    assert frames[0]["ann_key"].iloc[0] != frames[1]["ann_key"].iloc[0]  # act.L is part of the ANN's key
    assert len(list((root / "cache" / "ann").glob("*/model.pt"))) == 2
    # run_id: <sweep directory>/<job>, so two sweeps' job 0 differ.
    sweep = files[0].parent.parent
    assert [f["run_id"].iloc[0] for f in frames] == [f"{sweep.name}/0", f"{sweep.name}/1"]
    # Each job says where it starts and labels its table; the sweep ends with one summary and the command
    # that aggregates it, which works as printed.
    out = done.stdout
    assert f"[job 0/2 act.L=2] → {sweep / '0'}" in out and f"[job 1/2 act.L=4] → {sweep / '1'}" in out
    assert "[job 1/2 act.L=4] digits / lenet / act=qcfs / convert=qcfs" in out
    summary = out[out.index("multirun: 2 jobs"):]
    for frame, job in zip(frames, ("0", "1")):
        row = next(line for line in summary.splitlines() if line.startswith(f"│ {' ' * 2}{job} │"))
        cells = [c.strip() for c in row.strip("│").split("│")]
        assert cells[1] == f"act.L={int(frame['L'].iloc[0])}" and cells[-1] == "ok"
        assert cells[2:-1] == [f"{frame['ann_acc'].iloc[0]:.2f}", *(f"{a:.2f}" for a in frame["acc"])]
    command = next(line for line in summary.splitlines() if line.startswith("aggregate them: snnx table "))
    args = shlex.split(command.split("snnx ", 1)[1])
    assert args == ["table", f"table.sweep_dir={sweep}", f"paths.root={root}"]
    table = snnx(*args, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert (root / "tables" / "summary.csv").is_file()
    assert not (root / ".multirun").exists()  # the jobs' records went with the sweep's end


def test_multirun_precheck_rejects_an_invalid_combination_before_any_job(trained):
    root = trained["root"]
    before = snapshot(root)
    done = snnx("run", "-m", *[a for a in trained["args"] if not a.startswith("model=")], "model=lenet,vgg16",
                cwd=trained["cwd"])
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "model=vgg16" in done.stderr and "no job was started" in done.stderr
    assert snapshot(root) == before


def test_multirun_runtime_failure_does_not_stop_the_others(trained):
    root = trained["root"]
    done = snnx("run", "-m", *trained["args"], "train.lr=1e6,0.05", cwd=trained["cwd"])
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    summary = done.stderr[done.stderr.index("1 multirun job failed"):]
    assert "job #0" in summary and "job #1" not in summary
    assert "│ failed: train.lr: training diverged" in done.stdout  # the summary table's status column
    # The NaN guard: epoch, batch and lr named, nothing kept since no epoch completed, a fix given.
    for phrase in ("train.lr: training diverged", "at epoch 1, batch", "(lr 1e+06)", "no epoch had completed",
                   "Lower train.lr"):
        assert phrase in summary, phrase
    assert len(list((root / "cache" / "ann").glob("*/model.pt"))) == 1
    sweep = max((root / "multirun").glob("*/*"), key=lambda p: p.stat().st_mtime_ns)
    assert not (sweep / "0" / "results.csv").exists()
    check_results_csv(sweep / "1" / "results.csv", [1, 4])


def _simulated(trained, run_dir, *extra):
    import pandas as pd

    done = snnx("simulate", *trained["args"], "sim.T=[1,4]", "sim.record_layers=false", *extra,
                f"hydra.run.dir={run_dir}", cwd=trained["cwd"])
    assert done.returncode == 0, done.stderr
    return pd.read_csv(run_dir / "results.csv")


@pytest.mark.slow
def test_compiled_poisson_run_repeats_the_eager_one(trained, tmp_path):
    """sim.compile reaches the simulator (torch.compile's first compilation costs ~15 s, hence slow); the
    run seed makes the rate coding repeatable, and compiled steps (all eager for so small a net) change
    nothing."""
    eager = _simulated(trained, tmp_path / "eager", "sim.encoding=poisson")
    compiled = _simulated(trained, tmp_path / "compiled", "sim.encoding=poisson", "sim.compile=true")
    assert eager["acc"].tolist() == compiled["acc"].tolist()


@pytest.mark.slow  # long end to end (make test-full)
def test_poisson_encoding_reaches_the_simulator(trained, tmp_path):

    results = {"direct": _simulated(trained, tmp_path / "direct"),
               "poisson": _simulated(trained, tmp_path / "poisson", "sim.encoding=poisson")}
    assert not results["direct"]["method"].str.contains("poisson").any()
    assert results["poisson"]["method"].str.endswith("poisson encoding").all()
    # Rate-coded input at T = 1 carries far less than the direct image.
    assert results["poisson"]["acc"].tolist() != results["direct"]["acc"].tolist()
    assert (results["poisson"]["macs"] < results["direct"]["macs"]).all()  # the first layer costs SOPs
