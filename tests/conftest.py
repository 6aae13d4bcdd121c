"""Shared test helpers: driving the real `snnx` CLI as a subprocess, and running a neuron over time.

Every CLI test passes ``paths.root=<tmp dir>`` (and runs in a tmp cwd), so
nothing is written into the repository.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SNNX = [sys.executable, "-m", "snnx.cli"]

# The smallest real setting: 8×8 digits, a quarter-width LeNet, one epoch, few time steps.
TINY = ["dataset=digits", "model=lenet", "model.width=0.25", "train=smoke", "sim.T=[1,4]",
        "convert.calib_size=200", "sim.batch_size=360"]
# The ANN the session fixture trains (a ReLU LeNet on digits).
RELU = [*TINY, "act=relu", "convert=maxnorm"]


def run_folded(neuron, xs, chunk: int = 1):
    """Outputs [T, …] of ``neuron`` on the input sequence ``xs`` [T, B, …]: time folded into the batch,
    ``chunk`` steps per forward (state reset first)."""
    import torch

    neuron.reset_state()
    outs = []
    for start in range(0, xs.shape[0], chunk):
        part = xs[start:start + chunk]
        neuron.time_steps, neuron.batch_size = part.shape[0], xs.shape[1]
        outs.append(neuron(part.flatten(0, 1)).view(part.shape))
    return torch.cat(outs)


def cli_env() -> dict:
    env = dict(os.environ)
    env["COLUMNS"] = "250"  # rich wraps log lines at the terminal width; keep each on one line
    env.pop("SNNX_MULTIRUN_FAILURES", None)
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def snnx(*args: str, cwd: Path | str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `snnx <args>` to completion; stdout and stderr as text."""
    return subprocess.run([*SNNX, *args], cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=timeout)


def _signals_as_at_a_terminal() -> None:
    # A blocked or ignored signal stays so across exec: whatever the test worker's earlier tests left, the
    # command starts with SIGINT unblocked and at Python's default, as a shell starts it.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.signal(signal.SIGINT, signal.default_int_handler)


def snnx_popen(*args: str, cwd: Path | str, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) -> subprocess.Popen:
    """Start `snnx <args>` in its own process group (so a SIGKILL reaches everything it started)."""
    return subprocess.Popen([*SNNX, *args], cwd=cwd, env=cli_env(), stdout=stdout, stderr=stderr, text=True,
                            start_new_session=True, preexec_fn=_signals_as_at_a_terminal)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def wait_for(predicate, timeout: float, proc: subprocess.Popen | None = None, interval: float = 0.02) -> bool:
    """Poll until ``predicate()`` is true; False on timeout or when ``proc`` ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return bool(predicate())
        time.sleep(interval)
    return False


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its (mtime_ns, size)."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(root.rglob("*")) if p.is_file()}


def cache_dirs(root: Path) -> list[Path]:
    base = root / "cache" / "ann"
    return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict:
    """One trained ReLU LeNet (digits) in a session root, shared by the CLI tests.

    Returns ``{"root", "cwd", "model", "args"}``; ``args`` are the overrides that
    reproduce its cache key (a second `snnx train` with them reuses it).
    """
    root = tmp_path_factory.mktemp("snnx_root")
    cwd = tmp_path_factory.mktemp("snnx_cwd")
    args = [*RELU, f"paths.root={root}"]
    done = snnx("train", *args, cwd=cwd)
    assert done.returncode == 0, done.stderr
    (model,) = list((root / "cache" / "ann").glob("*/model.pt"))
    return {"root": root, "cwd": cwd, "model": model, "args": args}
