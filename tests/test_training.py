"""Training: seed determinism, exact resume after SIGKILL, the NaN guard.

(A loss that is NaN from the first epoch on, with no checkpoint to keep, is
test_cli.py::test_multirun_runtime_failure_does_not_stop_the_others.)
"""

from __future__ import annotations

import pandas as pd
import torch

from snnx.app import compose
from snnx.pipeline import ensure_ann
from snnx.stages import plain_config
from snnx.validate import validate

from conftest import TINY, cache_dirs, kill_group, snnx, snnx_popen, wait_for

# Three epochs of a QCFS LeNet (trainable λ) with dropout, so resume must restore the RNG too.
RESUME = [*TINY, "act=qcfs", "convert=qcfs", "train.epochs=3", "model.dropout=0.2", "seed=7"]


def _state(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs"


def test_same_seed_same_weights_on_cpu(tmp_path):
    states = []
    for run in ("a", "b"):
        cfg = validate(compose("train", [*TINY, "act=qcfs", "model.dropout=0.2", "seed=3", "dataset.limit_train=512",
                                         f"paths.root={tmp_path / run}"]), note=None)
        states.append(ensure_ann(plain_config(cfg), torch.device("cpu")).model.state_dict())
    assert_same_weights(*states)


def test_sigkill_then_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path):
    killed_root, clean_root = tmp_path / "killed", tmp_path / "clean"
    args_killed = [*RESUME, f"paths.root={killed_root}"]
    args_clean = [*RESUME, f"paths.root={clean_root}"]
    clean = snnx_popen("train", *args_clean, cwd=tmp_path)
    victim = snnx_popen("train", *args_killed, cwd=tmp_path)

    def first_epoch_saved():
        return any((d / "train_last.pt").exists() for d in cache_dirs(killed_root))

    try:
        assert wait_for(first_epoch_saved, timeout=240, proc=victim), victim.communicate()[0]
        kill_group(victim)  # SIGKILL: no cleanup, no atexit, the lock's holder just vanishes
    finally:
        if victim.poll() is None:
            kill_group(victim)
    assert victim.returncode == -9
    (directory,) = cache_dirs(killed_root)
    assert not (directory / "model.pt").exists(), "the victim finished before it was killed"
    interrupted_at = torch.load(directory / "train_last.pt", weights_only=True)["epoch"]
    assert interrupted_at < 2

    # The victim held the cache lock when it died; the kernel dropped its flock, so the rerun
    # neither waits nor needs a stale-lock timeout.
    resumed = snnx("train", *args_killed, cwd=tmp_path, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert "waiting" not in resumed.stdout
    assert "resuming" in resumed.stdout
    assert f"epoch {interrupted_at + 1}/3" not in resumed.stdout  # the completed epoch is not trained again
    assert "epoch 3/3" in resumed.stdout
    out, _ = clean.communicate(timeout=300)
    assert clean.returncode == 0, out

    (clean_dir,) = cache_dirs(clean_root)
    assert directory.name == clean_dir.name  # same key
    assert_same_weights(_state(directory / "model.pt"), _state(clean_dir / "model.pt"))
    log = pd.read_csv(directory / "train.csv")
    assert list(log["epoch"]) == [1, 2, 3]
    reference = pd.read_csv(clean_dir / "train.csv")
    cols = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc"]
    pd.testing.assert_frame_equal(log[cols], reference[cols])
    assert not list(directory.glob(".*.tmp")), "a temp file survived the kill and the rerun"


def test_divergence_keeps_the_last_good_checkpoint(tmp_path):
    root = tmp_path / "root"
    # Epoch 1 trains normally; the step schedule then multiplies lr by 1e8 and epoch 2 diverges.
    done = snnx("train", *TINY, "act=relu", "train.epochs=2", "train.schedule=step", "train.milestones=[1]",
                "train.gamma=1e8", f"paths.root={root}", cwd=tmp_path)
    assert done.returncode == 2
    err = done.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert "epoch 2, batch" in err and "lr 5e+06" in err and "last good epoch (1)" in err
    (directory,) = cache_dirs(root)
    assert not (directory / "model.pt").exists()
    kept = torch.load(directory / "train_last.pt", weights_only=True)
    assert kept["epoch"] == 0  # the completed first epoch
    assert all(torch.isfinite(t).all() for t in kept["state_dict"].values() if t.is_floating_point())
    assert list(pd.read_csv(directory / "train.csv")["epoch"]) == [1]
