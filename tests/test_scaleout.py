"""Scale-out: the Slurm site template and submitit launchers, the Optuna sweep, objective.metric.

Nothing is submitted to a cluster: the Slurm launcher is checked by composing it.
(Data-parallel training under torchrun: test_distributed.py.)
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from snnx.app import compose, precheck
from snnx.errors import ConfigError
from snnx.validate import validate

from conftest import TINY, snnx

SLURM_TARGET = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
LOCAL_TARGET = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"


# -- launchers -------------------------------------------------------------------------------------
def test_site_slurm_template_composes_with_its_values_and_submits_nothing(tmp_path):
    root = tmp_path / "root"
    done = snnx("run", "hydra/launcher=site_slurm", *TINY, f"paths.root={root}", "--cfg", "hydra", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    launcher = yaml.safe_load(done.stdout)["hydra"]["launcher"]
    assert launcher["_target_"] == SLURM_TARGET
    expected = {"partition": "gpu", "gpus_per_node": 1, "tasks_per_node": 1, "cpus_per_task": 8, "mem_gb": 32,
                "timeout_min": 240, "array_parallelism": 16}
    assert {k: launcher[k] for k in expected} == expected
    assert launcher["setup"] and all(line.startswith("# PLACEHOLDER") for line in launcher["setup"])
    assert launcher["submitit_folder"].startswith("${hydra.sweep.dir}")
    assert not root.exists() and not list(tmp_path.glob("**/.submitit"))
    # A site overrides the placeholders on the command line (or in its copy of the file).
    done = snnx("run", "hydra/launcher=site_slurm", "hydra.launcher.partition=a100", *TINY, "--cfg", "hydra",
                "-p", "hydra.launcher.partition", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "a100", done.stderr


@pytest.mark.parametrize("launcher", ["site_slurm", "submitit_slurm", "submitit_local"])
def test_multirun_precheck_composes_every_job_with_the_submitit_launchers(launcher):
    configs = precheck("run", ["-m", f"hydra/launcher={launcher}", *TINY, "act=qcfs", "act.L=2,4"])
    assert [c.act.L for c in configs] == [2, 4]


def test_submitit_local_launcher_target():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from snnx.config import config_dir
    from snnx.composition import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=["stage=run", "hydra/launcher=submitit_local"],
                            return_hydra_config=True)
    assert cfg.hydra.launcher._target_ == LOCAL_TARGET


def test_multirun_with_cfg_is_a_clean_error(tmp_path):
    done = snnx("run", "-m", "hydra/launcher=site_slurm", "--cfg", "hydra", cwd=tmp_path)
    assert done.returncode == 2
    err = done.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and "Drop -m" in err


@pytest.mark.slow
def test_submitit_local_runs_a_job(trained, tmp_path):
    sweep = tmp_path / "sweep"
    done = snnx("run", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", *trained["args"],
                f"hydra.sweep.dir={sweep}", cwd=trained["cwd"])
    assert done.returncode == 0, done.stderr
    assert (sweep / "0" / "results.csv").is_file()


# -- objective.metric -------------------------------------------------------------------------------
def _objective(*overrides: str, stage: str = "run"):
    return validate(compose(stage, [*TINY, "act=relu", "convert=maxnorm", *overrides]), check_paths=False, note=None)


def test_objective_is_checked_against_metrics_stages_and_sim_T():
    assert _objective("objective.metric=acc", "objective.T=4").objective.T == 4
    _objective("objective.metric=acc")  # T null: the largest T
    _objective("objective.metric=ann_acc", stage="train")
    bad = {("objective.metric=snn_acc",): ("objective.metric", "Did you mean objective.metric=acc?"),
           ("objective.metric=acc", "objective.T=16"): ("objective.T", "sim.T is [1, 4]"),
           ("objective.T=4",): ("objective.metric", "no metric")}
    for overrides, (key, phrase) in bad.items():
        with pytest.raises(ConfigError) as info:
            _objective(*overrides)
        assert info.value.key == key and phrase in str(info.value), overrides
    with pytest.raises(ConfigError) as info:
        _objective("objective.metric=acc", stage="train")
    assert info.value.key == "objective.metric" and "snnx run" in str(info.value)


def test_objective_error_through_the_cli_is_one_paragraph(tmp_path):
    done = snnx("run", *TINY, "objective.metric=acc", "objective.T=16", f"paths.root={tmp_path / 'root'}",
                cwd=tmp_path)
    assert done.returncode == 2
    err = done.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert err.startswith("snnx: error: objective.T: T=16 is not simulated")
    assert not (tmp_path / "root").exists()


# -- the Optuna example ------------------------------------------------------------------------------
@pytest.mark.slow  # long end to end (make test-full)
def test_optuna_msat_search_through_the_cli(trained, tmp_path):
    sweep = tmp_path / "sweep"
    args = [a for a in trained["args"] if not a.startswith("convert=")]
    done = snnx("run", "-m", "hparams_search=msat_optuna", *args, "sim.record_layers=false", "objective.T=4",
                "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={sweep}", cwd=trained["cwd"])
    assert done.returncode == 0, done.stderr
    assert "reusing" in done.stdout and "train epoch" not in done.stdout  # the ANN is trained once, before
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    best = result["best_params"]
    assert set(best) == {"convert.alpha", "convert.tau_mp", "convert.tau_rd"}
    assert 0.003 <= best["convert.alpha"] <= 0.3
    assert 0.25 <= best["convert.tau_mp"] <= 4.0 and 0.25 <= best["convert.tau_rd"] <= 4.0
    assert 0 <= result["best_value"] <= 100
    jobs = sorted(sweep.glob("*/results.csv"))
    assert len(jobs) == 3
    # The best value is SNN accuracy at T=4 of one of the trials.
    at_t = [float(pd.read_csv(p).set_index("T").loc[4, "acc"]) for p in jobs]
    assert result["best_value"] == pytest.approx(max(at_t), abs=0.005)  # results.csv: 2 decimals
    assert all(pd.read_csv(p)["convert"].iloc[0] == "msat" for p in jobs)
