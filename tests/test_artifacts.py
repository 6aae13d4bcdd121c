"""The artifact cache: reuse, keys, atomic writes, the checkpoint contract, locks and concurrent jobs."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch

from snnx.app import compose
from snnx.artifacts import (ann_key, artifact_lock, atomic_save, atomic_write_text, load_checkpoint, verify_checksum,
                            write_csv)
from snnx.errors import CheckpointError
from snnx.ann import build as build_model
from snnx.stages import plain_config

from conftest import RELU, TINY, cache_dirs, kill_group, snnx, snnx_popen


def _key(*overrides: str) -> str:
    return ann_key(plain_config(compose("run", [*TINY, *overrides])))


# -- keys (reuse itself: test_cli.py::test_hydra_run_dir_is_honoured_and_the_cache_reused) ----------
def test_key_depends_on_exactly_what_determines_the_ann():
    base = _key()
    # Conversion, simulation and where the data lives do not change the trained ANN.
    for same in (["sim.T=[1,2,4,8]"], ["sim=long"], ["convert=maxnorm", "act=qcfs"], ["convert.calib_size=50"],
                 ["sim.chunk=2"], ["dataset.root=/elsewhere"], ["dataset.num_workers=3"], ["device=cpu"],
                 ["dataset.limit_test=10"]):
        assert _key(*same) == base, same
    for different in (["act.L=8"], ["act=relu"], ["seed=1"], ["train.lr=0.01"], ["train.epochs=2"],
                      ["model.width=0.5"], ["dataset=mnist5k"], ["dataset.limit_train=100"]):
        assert _key(*different) != base, different


# -- the checkpoint contract ----------------------------------------------------------
def test_checkpoint_is_plain_data_that_rebuilds_the_model(trained):
    data = torch.load(trained["model"], map_location="cpu", weights_only=True)
    assert {"config", "state_dict", "epoch", "metrics"} <= set(data)
    config = data["config"]

    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, (str, int, float, bool))

    assert type(config) is dict and plain(config)
    assert config["dataset"]["name"] == "digits" and config["act"]["name"] == "relu"
    assert isinstance(data["epoch"], int) and data["epoch"] == 1
    assert 0 <= data["metrics"]["test_acc"] <= 100
    model = build_model(config)
    model.load_state_dict(data["state_dict"])
    assert model.eval()(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert load_checkpoint(trained["model"])["config"] == config


# -- atomic writes --------------------------------------------------------------------
class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot be saved")


def test_failed_writes_leave_the_old_file_and_no_temp_files(tmp_path):
    target = tmp_path / "model.pt"
    atomic_save({"a": torch.ones(1000)}, target)
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        atomic_save({"a": torch.ones(1000), "b": Unpicklable()}, target)
    assert target.read_bytes() == before

    text = tmp_path / "key.json"
    atomic_write_text(text, "old\n")

    class Exploding(pd.DataFrame):
        def to_csv(self, *args, **kwargs):
            with open(args[0], "w") as handle:
                handle.write("partial,")
            raise OSError("disk full")

    table = tmp_path / "train.csv"
    write_csv(pd.DataFrame({"epoch": [1]}), table)
    with pytest.raises(OSError):
        write_csv(Exploding({"epoch": [1, 2]}), table)
    assert pd.read_csv(table)["epoch"].tolist() == [1]
    assert text.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.json", "model.pt", "model.pt.sha256", "train.csv"]
    assert verify_checksum(target, key="model.pt")  # the failed save left the old file's sidecar with it
    # Written files get the usual permissions, not mkstemp's private 0600.
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_load_checkpoint_refuses_pickled_objects_without_running_them(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"config": {}, "state_dict": {}, "x": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "evil.pt", key="ckpt")
    assert "refused without running anything" in str(info.value)
    assert not marker.exists()


# -- locks and concurrent jobs ------------------------------------------------------------
HOLDER = textwrap.dedent("""
    import sys, time
    from snnx.artifacts import artifact_lock
    with artifact_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(600)
""")


def test_lock_of_a_killed_holder_is_released_by_the_kernel(tmp_path):
    # (A real `snnx train` killed mid-training while holding the lock, then rerun, is
    # test_training.py::test_sigkill_then_rerun_resumes_and_matches_an_uninterrupted_run.)
    directory = tmp_path / "cache" / "ann" / "k"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory)], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        fd = os.open(str(directory) + ".lock", os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: a second job would wait
        kill_group(holder)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free at once, no stale-lock timeout
        os.close(fd)
    finally:
        if holder.poll() is None:
            kill_group(holder)
    (directory).mkdir(parents=True)
    (directory / ".model.pt.abc.tmp").write_bytes(b"half")
    with artifact_lock(directory):
        assert not list(directory.glob(".*.tmp"))  # a dead writer's temp file is cleared


def test_two_jobs_with_the_same_key_train_once(tmp_path):
    root = tmp_path / "root"
    args = [*RELU, "seed=11", f"paths.root={root}"]
    jobs = [snnx_popen("train", *args, cwd=tmp_path) for _ in range(2)]
    outputs = [job.communicate(timeout=300)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], outputs
    both = "\n".join(outputs)
    assert both.count("epoch 1/1") == 1, both  # exactly one of them trained
    assert both.count("reusing") == 1
    assert len(cache_dirs(root)) == 1


@pytest.mark.slow  # long end to end (make test-full)
def test_joblib_multirun_jobs_share_one_training(tmp_path):
    root = tmp_path / "root"
    # Two jobs that differ only in the simulation settings need the same ANN.
    done = snnx("train", "-m", *RELU, "seed=13", "sim.T=[1],[2]", "hydra/launcher=joblib",
                "hydra.launcher.n_jobs=2", f"paths.root={root}", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    both = done.stdout + done.stderr
    assert both.count("epoch 1/1") == 1, both
    assert both.count("reusing") == 1, both
    assert len(cache_dirs(root)) == 1
    # The jobs' lines interleave, so each log line names its job.
    jobs = [line for line in done.stdout.splitlines() if "epoch 1/1" in line or "reusing" in line]
    assert sorted(line.split("]] ", 1)[0] + "]]" for line in jobs) == ["[job 0/2 sim.T=[1]]", "[job 1/2 sim.T=[2]]"]
    assert "multirun: 2 jobs" in done.stdout and "aggregate them: snnx table table.sweep_dir=" in done.stdout
