"""A scheduler's stop signal mid-epoch: the batch in hand finishes, a mid-epoch resume point is saved, the
run stops in one line (or submitit requeues it), and the rerun ends with an uninterrupted run's weights.

The signal is sent from inside the run, right after a chosen optimiser step (a global step hook), so the
test knows exactly which batch it interrupts.
"""

from __future__ import annotations

import os
import signal

import pandas as pd
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from snnx.app import compose, report_interrupt
from snnx.pipeline import ensure_ann
from snnx.preemption import Preempted, StopSignals
from snnx.stages import plain_config
from snnx.validate import validate

from conftest import TINY, cache_dirs

# Two epochs of a QCFS LeNet with dropout (the RNG must be restored too) and augmentation-free digits:
# 1437 training images in batches of 64 → 23 batches an epoch.
ARGS = [*TINY, "act=qcfs", "train.epochs=2", "model.dropout.fc=0.2", "seed=5", "progress=false"]
BATCHES = 23


def _config(root, *extra):
    return plain_config(validate(compose("train", [*ARGS, f"paths.root={root}", *extra]), note=None))


def _weights(root) -> dict:
    (directory,) = cache_dirs(root)
    return torch.load(directory / "model.pt", map_location="cpu", weights_only=True)["state_dict"]


def _log(root) -> pd.DataFrame:
    (directory,) = cache_dirs(root)
    return pd.read_csv(directory / "train.csv")[["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc"]]


class SignalAtStep:
    """Send ``signum`` to this process right after optimiser step ``step`` (1-based, counted over the run)."""

    def __init__(self, signum: int, step: int):
        self.signum, self.step, self.count = signum, step, 0

    def __enter__(self):
        self.handle = register_optimizer_step_post_hook(self._hook)
        return self

    def _hook(self, *_):
        self.count += 1
        if self.count == self.step:
            os.kill(os.getpid(), self.signum)

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    ensure_ann(_config(root), torch.device("cpu"))
    return {"weights": _weights(root), "log": _log(root)}


def _assert_same(root, reference) -> None:
    weights = _weights(root)
    assert weights.keys() == reference["weights"].keys()
    for name, value in reference["weights"].items():
        assert torch.equal(weights[name], value), f"{name} differs"
    pd.testing.assert_frame_equal(_log(root), reference["log"])


# Mid epoch 1 (no epoch completed yet) and an epoch's last batch; mid epoch 2 is the submitit test's.
@pytest.mark.parametrize("step", [4, BATCHES])
def test_sigterm_mid_epoch_saves_the_batch_and_the_rerun_matches(tmp_path, uninterrupted, step, capsys):
    config = _config(tmp_path)
    with SignalAtStep(signal.SIGTERM, step), pytest.raises(Preempted) as stopped:
        ensure_ann(config, torch.device("cpu"))
    (directory,) = cache_dirs(tmp_path)
    state = torch.load(directory / "train_last.pt", weights_only=True)
    epoch, done = divmod(step, BATCHES)
    if done == 0:  # the epoch's last batch: saved mid-epoch with every batch done, before its evaluation
        epoch, done = epoch - 1, BATCHES
    assert state["partial_epoch"]["batches"] == done
    assert state["epoch"] == epoch - 1  # the last completed epoch (0-based)
    assert not (directory / "model.pt").exists()
    assert stopped.value.signum == signal.SIGTERM and stopped.value.exit_status == 143
    report_interrupt(stopped.value)
    line = capsys.readouterr().err.strip()
    resume = f"epoch {epoch + 1}, batch {done + 1} of {BATCHES}" if done < BATCHES else f"the end of epoch {epoch + 1}"
    assert line == (f"snnx: SIGTERM received; saved epoch {epoch + 1} after batch {done} of {BATCHES}; "
                    f"rerun the same command to resume from {resume}")

    ensure_ann(_config(tmp_path), torch.device("cpu"))
    _assert_same(tmp_path, uninterrupted)
    assert not (directory / "train_last.pt").exists()


# A worker process per epoch, three trainings: about 10 s on the shared 2 cores.
@pytest.mark.slow
def test_with_dataloader_workers_the_skipped_batches_are_loaded_again(tmp_path, uninterrupted):
    """One worker: the resumed epoch replays the worker's loading (its own RNG) and trains on the rest."""
    config = _config(tmp_path, "dataset.num_workers=1")
    with SignalAtStep(signal.SIGUSR1, BATCHES + 5), pytest.raises(Preempted):
        ensure_ann(config, torch.device("cpu"))
    ensure_ann(_config(tmp_path, "dataset.num_workers=1"), torch.device("cpu"))
    _assert_same(tmp_path, uninterrupted)


def test_sigusr_under_submitit_checkpoints_then_requeues_and_the_requeued_job_matches(tmp_path, uninterrupted,
                                                                                    monkeypatch):
    """submitit's own handlers, installed as in a submitit job: our save comes first, then submitit's
    checkpoint-and-requeue (which calls the job's checkpoint(), dumps the requeued job and exits 144 —
    the local executor's requeue); the requeued job, loaded from that dump, resumes and matches."""
    submitit = pytest.importorskip("submitit")
    from submitit.core.job_environment import JobPaths
    from submitit.core.utils import DelayedSubmission
    from submitit.local.local import LOCAL_REQUEUE_RETURN_CODE, LocalJobEnvironment

    for key, value in {"SUBMITIT_LOCAL_JOB_ID": "7", "SUBMITIT_LOCAL_NTASKS": "1", "SUBMITIT_LOCAL_JOB_NUM_NODES": "1",
                       "SUBMITIT_LOCAL_NODEID": "0", "SUBMITIT_LOCAL_GLOBALID": "0", "SUBMITIT_LOCAL_LOCALID": "0",
                       "SUBMITIT_FOLDER": str(tmp_path / "submitit")}.items():
        monkeypatch.setenv(key, value)
    env = LocalJobEnvironment()
    paths = JobPaths(tmp_path / "submitit", job_id="7")
    paths.folder.mkdir(parents=True)
    job = DelayedSubmission(TrainJob(str(tmp_path)))
    job.set_timeout(60, 3)
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGCONT, env._usr_sig())}
    try:
        env._handle_signals(paths, job)
        with SignalAtStep(env._usr_sig(), BATCHES + 9), pytest.raises(SystemExit) as exited:
            job.result()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    assert exited.value.code == LOCAL_REQUEUE_RETURN_CODE
    (directory,) = cache_dirs(tmp_path)
    assert torch.load(directory / "train_last.pt", weights_only=True)["partial_epoch"]["batches"] == 9
    requeued = DelayedSubmission.load(paths.submitted_pickle)
    requeued.result()
    _assert_same(tmp_path, uninterrupted)


class TrainJob:
    """A job like Hydra's submitit launcher's: callable, and checkpoint() resubmits it as it is."""

    def __init__(self, root: str):
        self.root = root

    def __call__(self):
        ensure_ann(_config(self.root), torch.device("cpu"))

    def checkpoint(self):
        from submitit.core.utils import DelayedSubmission
        return DelayedSubmission(self)


def test_stop_signals_put_the_previous_handlers_back_and_leave_ignored_signals_ignored():
    calls = []
    old_term = signal.signal(signal.SIGTERM, lambda s, f: calls.append(s))
    old_usr1 = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        with StopSignals() as signals:
            os.kill(os.getpid(), signal.SIGUSR1)  # ignored before: stays ignored
            os.kill(os.getpid(), signal.SIGTERM)
            assert signals.received == signal.SIGTERM and calls == []
            with pytest.raises(Preempted):
                signals.stop(saved="x", resume="y")
            assert calls == [signal.SIGTERM]  # the previous handler had its turn first
        assert signal.getsignal(signal.SIGUSR1) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGTERM)
        assert calls == [signal.SIGTERM, signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGUSR1, old_usr1)
