"""Training: seed determinism, exact resume after SIGKILL, the NaN guard.

(A loss that is NaN from the first epoch on, with no checkpoint to keep, is
test_cli.py::test_multirun_runtime_failure_does_not_stop_the_others.)
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from snnx.app import compose
from snnx.pipeline import ensure_ann
from snnx.stages import plain_config
from snnx.validate import validate

from conftest import TINY, cache_dirs, kill_group, snnx, snnx_popen, wait_for

# Three epochs of a QCFS LeNet (trainable λ) with dropout, so resume must restore the RNG too.
RESUME = [*TINY, "act=qcfs", "convert=qcfs", "train.epochs=3", "model.dropout.fc=0.2", "seed=7"]


def _state(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs"


def test_same_seed_same_weights_on_cpu(tmp_path):
    states = []
    for run in ("a", "b"):
        cfg = validate(compose("train", [*TINY, "act=qcfs", "model.dropout.fc=0.2", "seed=3", "dataset.limit_train=512",
                                         f"paths.root={tmp_path / run}"]), note=None)
        states.append(ensure_ann(plain_config(cfg), torch.device("cpu")).model.state_dict())
    assert_same_weights(*states)


@pytest.mark.slow  # long end to end (make test-full)
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
    assert not (directory / "train_last.pt").exists()  # the resume point goes once model.pt is written


def _signal_once_an_epoch_is_saved(root, signum) -> tuple[int, str]:
    """Start a long `snnx train`, send ``signum`` once its first epoch is saved; (exit status, stderr).

    Far more epochs than can finish before the signal lands, on a loaded machine too."""
    import subprocess

    victim = snnx_popen("train", *TINY, "act=relu", "train.epochs=100000", "dataset.limit_train=256",
                        f"paths.root={root}", cwd=root, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: any((d / "train_last.pt").exists() for d in cache_dirs(root)), timeout=240,
                        proc=victim), victim.communicate()
        try:  # what to look at if the signal is not answered (Linux)
            with open(f"/proc/{victim.pid}/status") as status:
                masks = [line.strip() for line in status if line.startswith(("SigBlk", "SigIgn"))]
        except OSError:
            masks = "unknown"
        victim.send_signal(signum)
        try:
            _, err = victim.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the signal went unanswered; the command's signal masks were {masks}") from None
    finally:
        if victim.poll() is None:
            kill_group(victim)
    return victim.returncode, err


def test_ctrl_c_ends_with_one_line_naming_the_epoch_to_resume_from(tmp_path):
    """SIGINT (Ctrl-C) once an epoch is saved: exit status 130, no traceback, one line on stderr."""
    import signal

    code, err = _signal_once_an_epoch_is_saved(tmp_path, signal.SIGINT)
    (directory,) = cache_dirs(tmp_path)
    saved = torch.load(directory / "train_last.pt", weights_only=True)["epoch"]  # 0-based
    assert code == 130, err
    assert err.splitlines() == [f"snnx: interrupted; rerun the same command to resume from epoch {saved + 2}"]


def test_sigterm_from_the_command_line_saves_mid_epoch_and_exits_143_in_one_line(tmp_path):
    """SIGTERM as Slurm sends it, once an epoch is saved: the batch in hand ends, the epoch's progress is
    saved, exit status 143, one line on stderr naming what was saved and where the rerun resumes."""
    import re
    import signal

    code, err = _signal_once_an_epoch_is_saved(tmp_path, signal.SIGTERM)
    assert code == 143, err
    (line,) = err.splitlines()
    assert re.fullmatch(r"snnx: SIGTERM received; saved (epoch \d+'s checkpoint|epoch \d+ after batch \d of 4); "
                        r"rerun the same command to resume from (epoch \d+(, batch \d of 4)?|the end of epoch \d+)",
                        line), line


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


# CS-QCFS two-stage: stage 1 layer-wise QCFS (its own cache entry), stage 2 channel-wise softplus λ_c.
TWO_STAGE = [*(a for a in TINY if a != "train=smoke"), "act=csqcfs", "convert=qcfs", "train=two_stage",
             "train.epochs=3", "train.finetune_epochs=3", "model.dropout.fc=0.2", "dataset.limit_train=512",
             "seed=7"]


# Four CLI processes (the clean run, two victims, the final rerun): 35-50 s on the shared 2 cores.
@pytest.mark.slow
def test_two_stage_sigkill_in_each_stage_then_rerun_matches_an_uninterrupted_run(tmp_path):
    from snnx.artifacts import ann_dir, ann_key
    from snnx.pipeline import stage_one_config

    killed_root, clean_root = tmp_path / "killed", tmp_path / "clean"
    config = plain_config(validate(compose("train", TWO_STAGE), check_paths=False, note=None))
    keys = {"stage1": ann_key(stage_one_config(config)), "stage2": ann_key(config)}
    one, two = (ann_dir(killed_root, keys[s]) for s in ("stage1", "stage2"))
    args = [*TWO_STAGE, f"paths.root={killed_root}"]
    clean = snnx_popen("train", *TWO_STAGE, f"paths.root={clean_root}", cwd=tmp_path)

    def kill_when(path, proc) -> str:
        try:
            assert wait_for(path.exists, timeout=240, proc=proc), proc.communicate()[0]
            kill_group(proc)
        finally:
            if proc.poll() is None:
                kill_group(proc)
        assert proc.returncode == -9
        return proc.stdout.read()

    # Killed in stage 1, after its first epoch.
    kill_when(one / "train_last.pt", snnx_popen("train", *args, cwd=tmp_path))
    assert not (one / "model.pt").exists(), "stage 1 finished before it was killed"
    assert (two / "key.json").exists() and not (two / "finetune_last.pt").exists()
    # The rerun resumes stage 1, finishes it, and is killed in stage 2 after its first epoch.
    out = kill_when(two / "finetune_last.pt", snnx_popen("train", *args, cwd=tmp_path))
    assert "train: resuming" in out
    assert (one / "model.pt").exists() and not (two / "model.pt").exists(), "stage 2 finished before the kill"
    assert torch.load(two / "finetune_last.pt", weights_only=True)["epoch"] < 2
    # The third run reuses stage 1 and resumes stage 2.
    done = snnx("train", *args, cwd=tmp_path, timeout=240)
    assert done.returncode == 0, done.stderr
    assert f"ANN {keys['stage1']}: reusing" in done.stdout and "finetune: resuming" in done.stdout
    assert "finetune epoch 1/3" not in done.stdout and "finetune epoch 3/3" in done.stdout
    out, _ = clean.communicate(timeout=300)
    assert clean.returncode == 0, out

    cols = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc"]
    for stage, csv in (("stage1", "train.csv"), ("stage2", "finetune.csv")):
        mine, theirs = ann_dir(killed_root, keys[stage]), ann_dir(clean_root, keys[stage])
        assert_same_weights(_state(mine / "model.pt"), _state(theirs / "model.pt"))
        log = pd.read_csv(mine / csv)
        assert list(log["epoch"]) == [1, 2, 3]
        pd.testing.assert_frame_equal(log[cols], pd.read_csv(theirs / csv)[cols])
        assert not list(mine.glob(".*.tmp"))
    metrics = torch.load(two / "model.pt", weights_only=True)["metrics"]
    assert metrics["stage1_key"] == keys["stage1"]


def test_train_compile_is_not_part_of_the_ann_cache_key():
    from snnx.artifacts import ann_key

    keys = {flag: ann_key(plain_config(validate(compose("train", [*TINY, "act=csqcfs", f"train.compile={flag}"]),
                                                check_paths=False, note=None)))
            for flag in ("false", "true")}
    assert keys["false"] == keys["true"]


def _key(*overrides: str) -> str:
    from snnx.artifacts import ann_key

    return ann_key(plain_config(validate(compose("train", [*TINY, *overrides]), check_paths=False, note=None)))


def test_threshold_lr_scale_is_in_the_key_only_for_acts_with_trained_thresholds():
    for act in ("qcfs", "csqcfs"):
        assert _key(f"act={act}", "train.threshold_lr_scale=1") != _key(f"act={act}", "train.threshold_lr_scale=10")
    for act in ("relu", "clip", "quant"):  # nothing to scale: the same ANN, one cache entry
        assert _key(f"act={act}", "train.threshold_lr_scale=1") == _key(f"act={act}", "train.threshold_lr_scale=10")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("act", ["qcfs", "csqcfs"])
def test_thresholds_get_their_own_learning_rate(optimizer, act):
    from snnx.activations import make_act_factory
    from snnx.models import create_model
    from snnx.trainer import make_optimizer, make_scheduler, threshold_parameters

    model = create_model("lenet", in_channels=1, image_size=8, num_classes=10, act_factory=make_act_factory(act, L=4),
                         width=0.125, batch_norm=True, pool="avg")
    train = {"optimizer": optimizer, "momentum": 0.9, "weight_decay": 5e-4, "threshold_lr_scale": 10.0,
             "schedule": "cosine"}
    opt = make_optimizer(model, train, 0.05)
    thresholds = threshold_parameters(model)
    assert len(thresholds) == 3  # two conv sites and one hidden FC site, one λ tensor each
    weights, scaled = opt.param_groups
    assert {id(p) for p in scaled["params"]} == {id(p) for p in thresholds}
    assert len(weights["params"]) + len(thresholds) == len(list(model.parameters()))
    assert weights["lr"] == pytest.approx(0.05) and scaled["lr"] == pytest.approx(0.5)
    assert weights["weight_decay"] == scaled["weight_decay"] == 5e-4  # decayed like the weights (one SGD group in QCFS training)
    scheduler = make_scheduler(opt, {**train, "schedule": "cosine"}, 4)
    opt.step()
    scheduler.step()
    assert scaled["lr"] / weights["lr"] == pytest.approx(10.0)  # the schedule keeps the ratio


def test_weight_quant_auto_means_ternary_for_the_all_integer_act_only():
    def resolved(*overrides: str) -> str:
        return validate(compose("train", [*TINY, *overrides]), check_paths=False, note=None).train.weight_quant

    assert resolved("act=quant") == "ternary"  # the all-integer method's ANN (Zou et al. 2024, §3.2)
    assert resolved("act=quant", "train.weight_quant=none") == "none"  # the paper's full-precision ablation
    for act in ("relu", "clip", "qcfs", "csqcfs"):
        assert resolved(f"act={act}") == "none"
    assert resolved("act=relu", "train.weight_quant=ternary") == "ternary"
    # auto and its resolution name the same ANN (one cache entry)
    assert _key("act=quant") == _key("act=quant", "train.weight_quant=ternary")
    assert _key("act=quant") != _key("act=quant", "train.weight_quant=none")


def test_threshold_lr_scale_is_20_in_the_embedded_recipes_and_1_in_the_paper_presets():
    def scale(*overrides: str) -> float:
        return validate(compose("train", list(overrides)), check_paths=False, note=None).train.threshold_lr_scale

    assert scale() == scale("train=two_stage", "act=csqcfs") == scale("train=smoke") == 20.0
    assert scale("experiment=embedded_csqcfs") == 20.0
    for preset in ("csqcfs_cifar10_vgg16", "csqcfs_cifar100_resnet20", "allint_mnist_lenet", "denggu_cifar10_vgg16",
                   "msat_cifar10_vgg16"):
        assert validate(compose("train", [f"experiment={preset}"]), check_paths=False,
                        note=None).train.threshold_lr_scale == 1.0, preset


def test_threshold_lr_scale_must_be_positive():
    from snnx.errors import ConfigError

    with pytest.raises(ConfigError, match="train.threshold_lr_scale"):
        validate(compose("train", [*TINY, "train.threshold_lr_scale=0"]), check_paths=False, note=None)


# torch.compile of a CS-QCFS LeNet from a cold inductor cache: about 30 s on the shared 2 cores.
@pytest.mark.slow
def test_train_compile_trains_like_eager_and_saves_plain_state_dict_keys(tmp_path):
    runs = {}
    for flag in ("false", "true"):
        root = tmp_path / flag
        cfg = validate(compose("train", [*TINY, "act=csqcfs", f"train.compile={flag}", f"paths.root={root}"]),
                       note=None)
        ensure_ann(plain_config(cfg), torch.device("cpu"))
        (directory,) = cache_dirs(root)
        runs[flag] = (directory, pd.read_csv(directory / "train.csv"), _state(directory / "model.pt"))
    (eager_dir, eager_log, eager_sd), (comp_dir, comp_log, comp_sd) = runs["false"], runs["true"]
    assert comp_dir.name == eager_dir.name  # same cache key
    assert comp_sd.keys() == eager_sd.keys()  # the module's own state_dict, no `_orig_mod.` prefix
    for name in eager_sd:
        assert torch.allclose(comp_sd[name].double(), eager_sd[name].double(), rtol=1e-3, atol=1e-4), name
    for col in ("train_loss", "test_loss"):
        assert comp_log[col].tolist() == pytest.approx(eager_log[col].tolist(), rel=1e-3)
