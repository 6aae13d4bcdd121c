"""Data-parallel training under torchrun (train.distributed=true): same ANN as one process, rank 0 writes.

The sampler tests run in this process; the others start two gloo processes with
torchrun on the real CLI.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from snnx.app import compose
from snnx.distributed import Context, GlobalBatchSampler, train_loader
from snnx.errors import ConfigError
from snnx.pipeline import ensure_ann
from snnx.stages import plain_config
from snnx.validate import validate

from conftest import TINY, cache_dirs, cli_env

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
# Three epochs of a ReLU LeNet without BatchNorm (gloo has no SyncBatchNorm) at a rate where it learns;
# 1437 training images in global batches of 64: 22 full batches and a last one of 29, shared 15 / 14.
DDP = [*TINY, "act=relu", "convert=maxnorm", "model.batch_norm=false", "train.epochs=3", "train.lr=0.1", "seed=5"]
# Float summation order (two half-batch gradients averaged vs one batch) is the only difference.
ATOL = 1e-5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def torchrun(stage: str, *args: str, cwd: Path, nproc: int = 2) -> subprocess.Popen:
    return subprocess.Popen([*TORCHRUN, f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
                             f"--master_port={free_port()}", "-m", "snnx.cli", stage, *args],
                            cwd=cwd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


# -- the sampler: the ranks' shares make up the single-process batches -----------------------------
@pytest.mark.parametrize("n,batch,world", [(1437, 64, 2), (130, 64, 3), (129, 64, 2), (65, 64, 2), (10, 4, 3)])
def test_shares_make_up_the_single_process_batches(n, batch, world):
    data = TensorDataset(torch.arange(n))
    single_gen = torch.Generator().manual_seed(3)
    single = DataLoader(data, batch_size=batch, shuffle=True, generator=single_gen)
    gens = [torch.Generator().manual_seed(3) for _ in range(world)]
    loaders = [train_loader(data, batch, Context(rank, world), gens[rank]) for rank in range(world)]
    for _epoch in range(2):
        expected = [b[0].tolist() for b in single]
        shares = [[b[0].tolist() for b in loader] for loader in loaders]
        assert all(len(s) == len(expected) for s in shares)  # every rank takes every step
        for step, batch_items in enumerate(expected):
            samplers = [loader.batch_sampler for loader in loaders]
            real = [s.real_items(step) for s in samplers]
            joined = [i for rank in range(world) for i in shares[rank][step][: real[rank]]]
            assert joined == batch_items
            assert max(real) - min(real) <= 1
            # Loss weights: DDP's average of the weighted sums is the batch mean.
            total = sum(s.loss_weight(step) * r for s, r in zip(samplers, real)) / world
            assert total == pytest.approx(1.0)
        # The generator ends the epoch where the single-process loader leaves it (exact resume, next epoch).
        for g in gens:
            assert torch.equal(g.get_state(), single_gen.get_state())


def test_distributed_without_torchrun_is_one_process_with_a_note(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    notes = []
    validate(compose("train", [*DDP, "train.distributed=true"]), check_paths=False, note=notes.append)
    assert len(notes) == 1 and "not started by torchrun" in notes[0] and "one process" in notes[0]


def test_torchrun_without_train_distributed_is_a_config_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError) as info:
        validate(compose("train", DDP), check_paths=False, note=None)
    assert info.value.key == "train.distributed" and "train.distributed=true" in str(info.value)
    with pytest.raises(ConfigError) as info:
        validate(compose("train", [*DDP, "train.distributed=true", "train.batch_size=1"]), check_paths=False, note=None)
    assert info.value.key == "train.batch_size"


# -- two gloo processes through the CLI ------------------------------------------------------------
@pytest.mark.slow  # long end to end (make test-full)
def test_ddp_run_trains_the_single_process_ann_and_only_rank_0_writes(tmp_path):
    ddp_root, single_root = tmp_path / "ddp", tmp_path / "single"
    proc = torchrun("run", *DDP, "train.distributed=true", f"paths.root={ddp_root}", cwd=tmp_path)
    try:
        # The reference, in this process while the two ranks train.
        cfg = validate(compose("train", [*DDP, f"paths.root={single_root}"]), note=None)
        reference = ensure_ann(plain_config(cfg), torch.device("cpu"))
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "2 processes (DDP)" in out
    assert out.count("train epoch 3/3") == 1  # rank 1 trains silently

    (directory,) = cache_dirs(ddp_root)
    assert directory.name == reference.key  # train.distributed is not part of the cache key
    data = torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
    mine = data["state_dict"]
    theirs = reference.model.state_dict()
    assert mine.keys() == theirs.keys() and not any(k.startswith("module.") for k in mine)
    for name in mine:
        torch.testing.assert_close(mine[name], theirs[name], atol=ATOL, rtol=0, msg=name)
    assert abs(data["metrics"]["test_acc"] - reference.metrics["test_acc"]) <= 100 / 360 + 1e-9  # ≤ 1 test image
    assert reference.metrics["test_acc"] > 50  # it learnt: the comparison means something
    log = pd.read_csv(directory / "train.csv")
    ref_log = pd.read_csv(single_root / "cache" / "ann" / reference.key / "train.csv")
    assert list(log["epoch"]) == [1, 2, 3]
    pd.testing.assert_series_equal(log["train_loss"], ref_log["train_loss"], atol=1e-3, rtol=0)
    # The resume checkpoint goes once model.pt is written (its per-rank RNG: test_killed_ddp_run_resumes_…).
    assert not (directory / "train_last.pt").exists()

    # Rank 0 alone went on to simulate: one run directory, one results.csv; rank 1's run dir was temporary.
    runs = [p for p in (ddp_root / "runs").glob("*/*") if p.is_dir()]
    assert len(runs) == 1 and (runs[0] / "results.csv").is_file()
    assert len(pd.read_csv(runs[0] / "results.csv")) == 2  # T = 1, 4


@pytest.mark.slow
def test_ddp_with_batchnorm_on_cpu_trains_comparably(tmp_path):
    """gloo has no SyncBatchNorm: each rank normalises with its half batch, so only accuracy is comparable."""
    args = [*DDP, "model.batch_norm=true", "train.lr=0.05"]
    proc = torchrun("train", *args, "train.distributed=true", f"paths.root={tmp_path / 'ddp'}", cwd=tmp_path)
    cfg = validate(compose("train", [*args, f"paths.root={tmp_path / 'single'}"]), note=None)
    reference = ensure_ann(plain_config(cfg), torch.device("cpu"))
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    (directory,) = cache_dirs(tmp_path / "ddp")
    acc = torch.load(directory / "model.pt", weights_only=True)["metrics"]["test_acc"]
    assert abs(acc - reference.metrics["test_acc"]) <= 5.0


def _ddp_train_until_an_epoch_is_saved(root: Path, cwd: Path) -> subprocess.Popen:
    """A 2-process `snnx train` (in a session of its own) once its first epoch's train_last.pt is there."""
    from conftest import kill_group, wait_for

    victim = subprocess.Popen([*TORCHRUN, "--nproc_per_node=2", "--master_addr=127.0.0.1",
                               f"--master_port={free_port()}", "-m", "snnx.cli", "train", *DDP,
                               "train.distributed=true", f"paths.root={root}"],
                              cwd=cwd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True)
    if not wait_for(lambda: any((d / "train_last.pt").exists() for d in cache_dirs(root)), timeout=240, proc=victim):
        for pid in descendants(victim.pid):
            os.kill(pid, signal.SIGKILL)
        kill_group(victim)
        pytest.fail(f"no epoch was saved: {victim.communicate()[0]}")
    return victim


def _assert_one_process_trains_the_same(directory: Path, tmp_path: Path) -> None:
    """directory's model.pt equals a one-process run's up to float summation order (ATOL)."""
    cfg = validate(compose("train", [*DDP, f"paths.root={tmp_path / 'single'}"]), note=None)
    reference = ensure_ann(plain_config(cfg), torch.device("cpu")).model.state_dict()
    mine = torch.load(directory / "model.pt", weights_only=True)["state_dict"]
    for name in mine:
        torch.testing.assert_close(mine[name], reference[name], atol=ATOL, rtol=0, msg=name)


@pytest.mark.slow
def test_killed_ddp_run_resumes_in_one_process_and_matches(tmp_path):
    """A SIGKILLed 2-process run resumes from rank 0's last.pt, here in one process (the global batch is the same)."""
    from conftest import kill_group, snnx

    root = tmp_path / "root"
    victim = _ddp_train_until_an_epoch_is_saved(root, tmp_path)
    try:
        # torchrun starts each worker in a session of its own: kill them too, as a scheduler killing the job would.
        for pid in descendants(victim.pid):
            os.kill(pid, signal.SIGKILL)
        kill_group(victim)
    finally:
        if victim.poll() is None:
            kill_group(victim)
    (directory,) = cache_dirs(root)
    assert not (directory / "model.pt").exists(), "the DDP run finished before it was killed"
    assert len(torch.load(directory / "train_last.pt", weights_only=True)["rng_ranks"]) == 2

    resumed = snnx("train", *DDP, f"paths.root={root}", cwd=tmp_path, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    _assert_one_process_trains_the_same(directory, tmp_path)


@pytest.mark.slow
def test_sigterm_to_one_rank_stops_every_rank_mid_epoch_and_the_resumed_run_matches(tmp_path):
    """The stop signal reaches one rank only: the ranks agree at the next step (a collective), rank 0 saves the
    epoch's progress, all stop; the rerun (here one process) resumes mid-epoch and trains the same ANN."""
    from conftest import kill_group, snnx

    root = tmp_path / "root"
    victim = _ddp_train_until_an_epoch_is_saved(root, tmp_path)
    try:
        workers = [pid for pid in descendants(victim.pid)
                   if b"snnx.cli" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        os.kill(max(workers), signal.SIGTERM)  # one worker (the later-started one, usually rank 1)
        out, _ = victim.communicate(timeout=120)
    finally:
        if victim.poll() is None:
            for pid in descendants(victim.pid):
                os.kill(pid, signal.SIGKILL)
            kill_group(victim)
    (directory,) = cache_dirs(root)
    assert not (directory / "model.pt").exists(), out
    state = torch.load(directory / "train_last.pt", weights_only=True)
    # (Rank 0's one line may not make it: once a rank has exited, torchrun stops the others.)
    resumed = snnx("train", *DDP, f"paths.root={root}", cwd=tmp_path, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    if "partial_epoch" in state:
        assert "after batch" in resumed.stdout
    _assert_one_process_trains_the_same(directory, tmp_path)
