"""A simulation's resume state: its sums saved every few batches, found again by content on the rerun.

A rerun of the same command gets a new run directory, so the state lives in the artifact cache,
``<paths.root>/cache/sim/<key>/state.pt``, keyed by what the sums depend on (:func:`sim_state_payload`).
:class:`ResumePoint` saves it (every ``sim.checkpoint_every`` batches, after the last one, and where
Ctrl-C or a stop signal arrives), reads it back and removes it once the results are written;
:func:`snnx.pipeline.simulate` drives it around :meth:`snnx.sim.Simulator.run`.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from snnx.artifacts import (atomic_save, checksum_path, load_checkpoint, lock_file, plain_tree as _plain, set_aside,
                            stable_hash, try_artifact_lock)
from snnx.config import runtime_keys
from snnx.console import log
from snnx.errors import CheckpointError
from snnx.preemption import Preempted, StopSignals
from snnx.sim.engine import STATE_FORMAT


SIM_STATE = "state.pt"
# sim keys that change neither the numbers nor the batches (sim.compile: bit for bit the same, see Simulator).
_SIM_NOT_KEYED = ("checkpoint_every", "save_snn", "compile")


def snn_digest(snn: nn.Module) -> str:
    """sha256 of the SNN's graph and of every tensor of its state (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256(str(getattr(snn, "code", "")).encode())
    digest.update(repr(snn).encode())
    for name, value in snn.state_dict().items():
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())  # the tensor's own bytes, not a copy
    return digest.hexdigest()


def sim_state_payload(config: Mapping, ann, snn: nn.Module) -> dict:
    """What a simulation's sums depend on: the ANN (``ann.key``, a TrainedANN's cache key), the SNN itself, the conversion, the sim section (batch
    size and chunk included: they set the batches and the order of the sums), the test split and the seed.
    Not where it runs: a run preempted on one machine resumes on another."""
    skip = runtime_keys(config)
    return {"format": STATE_FORMAT, "ann": ann.key, "snn": snn_digest(snn), "convert": _plain(config["convert"]),
            "sim": {k: _plain(v) for k, v in config["sim"].items() if k not in _SIM_NOT_KEYED},
            "dataset": {k: _plain(v) for k, v in config["dataset"].items() if f"dataset.{k}" not in skip},
            "seed": config["seed"]}


def sim_state_dir(config: Mapping, ann, snn: nn.Module) -> Path:
    """Where the simulation's resume state goes: ``<paths.root>/cache/sim/<key>/`` (found by content, since a
    rerun of the same command gets a new run directory)."""
    return Path(config["paths"]["root"]) / "cache" / "sim" / stable_hash(sim_state_payload(config, ann, snn))


class SimulationInterrupted(KeyboardInterrupt):
    """Ctrl-C during a simulation whose sums were saved: ``resume_hint`` says where a rerun goes on."""

    def __init__(self, resume_batch: int, batches: int):
        super().__init__(resume_batch, batches)
        self.resume_batch = resume_batch
        self.batches = batches

    @property
    def resume_hint(self) -> str:
        if self.resume_batch > self.batches:
            return f"rerun the same command to finish (all {self.batches} simulated batches are saved)"
        return f"rerun the same command to resume the simulation from batch {self.resume_batch} of {self.batches}"


_STATE_FILE = ("a snnx simulation state", "a dict with 'format', 'key', 'created', 'batches' and 'engine'",
               "Delete it: the rerun then simulates from the first batch.")


class ResumePoint:
    """A simulation's resume state on disk (``directory``/state.pt; None: the run keeps none).

    :meth:`watch` saves the sums every sim.checkpoint_every batches, after the last one, and at the batch
    boundary where a stop signal (:class:`snnx.preemption.StopSignals`) or Ctrl-C arrived; :meth:`load`
    reads them back for the rerun; :meth:`remove` drops them once the results are written.
    """

    def __init__(self, directory: Path | None, batches: int, every: int):
        self.directory = directory
        self.path = None if directory is None else directory / SIM_STATE
        self.batches = batches
        self.every = every
        self.key = None if directory is None else directory.name
        self.saved_batches = 0

    def load(self) -> dict | None:
        """The saved state of this simulation, or None. An unusable file is set aside (the run starts over)."""
        if self.path is None or not self.path.is_file():
            return None
        try:
            data = load_checkpoint(self.path, key=str(self.path), expected=_STATE_FILE,
                                   required=("format", "key", "created", "batches", "engine"))
            if data["format"] != STATE_FORMAT or data["key"] != self.key or not 0 < data["batches"] <= self.batches:
                raise CheckpointError(f"{str(self.path)!r} was saved by another simulation or snnx version.",
                                      key=str(self.path), fix=_STATE_FILE[2])
        except CheckpointError as exc:
            moved = set_aside(self.path)
            log(f"simulate: the saved state {self.path} is unusable ({exc.problem}) → moved to {moved.name}; "
                "simulating from the first batch")
            return None
        self.saved_batches = data["batches"]
        return data

    def save(self, state: dict, created: str) -> None:
        atomic_save({"format": STATE_FORMAT, "key": self.key, "created": created, "batches": state["batches"],
                     "engine": state}, self.path)
        self.saved_batches = state["batches"]

    @contextmanager
    def watch(self, created: str):
        """The ``on_batch`` callback for :meth:`snnx.sim.Simulator.run` (None without a state to keep)."""
        if self.path is None:
            yield None
            return
        latest: dict = {}

        def on_batch(state: dict) -> None:
            latest["state"] = state
            done = state["batches"]
            if done % self.every == 0 or signals.received is not None:
                self.save(state, created)
            if signals.received is not None and done < self.batches:
                signals.stop(saved=f"the simulation's sums after batch {done} of {self.batches} to {self.path}",
                             resume=f"batch {done + 1} of {self.batches}")

        with StopSignals() as signals:
            try:
                yield on_batch
                # The whole simulation saved: an interrupt while the results are written loses none of it.
                if "state" in latest and self.saved_batches < latest["state"]["batches"]:
                    self.save(latest["state"], created)
            except Preempted:
                raise
            except KeyboardInterrupt:
                state = latest.get("state")
                if state is not None and self.saved_batches < state["batches"]:
                    self.save(state, created)  # the last batch boundary's sums
                raise
            if signals.received is not None:
                signals.stop(saved=f"the simulation's sums after all {self.batches} batches to {self.path}",
                             resume="the writing of the results")

    def remove(self) -> None:
        """Drop the state (and its folder and lock once empty): the results it was kept for are written."""
        if self.path is None:
            return
        self.path.unlink(missing_ok=True)
        checksum_path(self.path).unlink(missing_ok=True)
        for leftover in self.directory.glob(f".{SIM_STATE}*.tmp"):  # a killed writer's
            leftover.unlink(missing_ok=True)
        try:
            self.directory.rmdir()  # a set-aside copy keeps it
        except OSError:
            return
        lock_file(self.directory).unlink(missing_ok=True)


@contextmanager
def resume_point(directory: Path | None, batches: int, every: int):
    """The :class:`ResumePoint` of a simulation of ``batches`` batches, its lock held while it runs.

    A second job simulating the same thing meanwhile keeps no state of its own (one writer per state file)
    and says so; it simulates from the first batch.
    """
    if directory is None:
        yield ResumePoint(None, batches, 0)
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    with try_artifact_lock(directory) as held:
        if not held:
            log(f"simulate: another job is simulating the same run and keeps its resume state in {directory}; "
                "this one keeps none")
            yield ResumePoint(None, batches, 0)
            return
        point = ResumePoint(directory, batches, every)
        try:
            yield point
        except KeyboardInterrupt as exc:
            if isinstance(exc, Preempted) or not point.saved_batches:
                raise
            raise SimulationInterrupted(point.saved_batches + 1, batches) from None
