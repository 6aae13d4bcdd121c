"""Resumable simulation (sim.checkpoint_every): a simulation stopped after some batches (Ctrl-C, a stop signal)
and run again writes the results.csv, layers.csv and energy.csv of an uninterrupted run, having simulated only
the batches that were left; the saved state is found by content, dropped once the results are written, and a
corrupt one is set aside."""

from __future__ import annotations

import copy
import os
import signal
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from snnx import api, pipeline, sim_state
from snnx.app import compose
from snnx.clean import clean, plan
from snnx.errors import ConfigError
from snnx.preemption import Preempted
from snnx.sim import Simulator
from snnx.stages import plain_config
from snnx.validate import validate

from conftest import TINY

CPU = torch.device("cpu")
# 48 test digits in 6 batches of 8; T up to 8 so that the random-weight LeNet spikes.
SMALL = [*TINY, "act=relu", "dataset.limit_test=48", "sim.batch_size=8", "sim.T=[2,8]", "sim.chunk=4"]
BATCHES = 6


def _config(root: Path, *overrides: str) -> dict:
    convert = [] if any(o.startswith("convert=") for o in overrides) else ["convert=maxnorm"]
    return plain_config(validate(compose("simulate", [*SMALL, *convert, f"paths.root={root}", *overrides]),
                                 note=None))


def _ann(config: dict) -> pipeline.TrainedANN:
    """A LeNet with seeded random weights (what is compared is two runs' files, not the accuracy)."""
    torch.manual_seed(0)
    return pipeline.TrainedANN(pipeline.build_model(config).eval(), config, "0123456789abcdef",
                               Path("model.pt"), {})


class Clock:
    """pipeline's ``dt``: a datetime whose now() is whatever the test sets."""

    def __init__(self):
        self.now = "2030-01-01T10:00:00"
        clock = self

        class _Datetime:
            @staticmethod
            def now():
                return types.SimpleNamespace(isoformat=lambda timespec=None: clock.now)

        self.module = types.SimpleNamespace(datetime=_Datetime)


class Batches:
    """pipeline's ``track``: counts the batches the simulation loads, and can stop the run at one."""

    def __init__(self):
        self.loaded = 0
        self.stop_at: int | None = None  # stop when the batch with this index (of the run) is asked for
        self.how = "ctrl-c"

    def __call__(self, iterable, *, completed: int = 0, **_):
        for index, item in enumerate(iterable, start=completed):
            if index == self.stop_at:
                self.stop_at = None
                if self.how == "ctrl-c":
                    raise KeyboardInterrupt
                os.kill(os.getpid(), signal.SIGTERM)  # StopSignals records it; the run stops after this batch
            self.loaded += 1
            yield item


@pytest.fixture(autouse=True)
def one_thread():
    # Tensors of 8 digits: threads only add their fork/join (which a busy machine makes slow).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def env(monkeypatch):
    clock, batches, lines = Clock(), Batches(), []
    monkeypatch.setattr(pipeline, "dt", clock.module)
    monkeypatch.setattr(pipeline, "track", batches)
    monkeypatch.setattr(pipeline, "log", lines.append)
    monkeypatch.setattr(sim_state, "log", lines.append)
    return types.SimpleNamespace(clock=clock, batches=batches, lines=lines)


def _simulate(config: dict, ann: pipeline.TrainedANN, run_dir: Path) -> dict:
    """One `snnx simulate` as a rerun makes it: the SNN converted afresh (its calibration from the cache)."""
    stats = pipeline.ensure_stats(config, ann, CPU) if pipeline.needs_stats(config) else None
    snn, method = pipeline.build_snn(config, ann, stats)
    run_dir.mkdir(parents=True, exist_ok=True)
    return pipeline.simulate(config, ann, snn, method, CPU, run_dir)


def _files(run_dir: Path) -> dict[str, str]:
    """The run's CSV files, run_id (the run directory's name) blanked."""
    out = {}
    for name in ("results.csv", "layers.csv", "energy.csv"):
        if (run_dir / name).exists():
            text = (run_dir / name).read_text()
            if name == "results.csv":
                text = text.replace(f"{run_dir.parent.name}/{run_dir.name},", "RUN,")
            out[name] = text
    return out


def _state_files(root: Path) -> list[Path]:
    return sorted((root / "cache" / "sim").glob("*/*")) if (root / "cache" / "sim").is_dir() else []


def _interrupt_and_resume(tmp_path, env, overrides, how: str):
    """(uninterrupted run's files, resumed run's files, the interrupting exception, the saved state, the resumed
    run's result), all runs of one command (one config, run_id aside)."""
    config = _config(tmp_path, "sim.checkpoint_every=2", *overrides)
    ann = _ann(config)
    _simulate(config, ann, tmp_path / "runs" / "whole")
    expected = _files(tmp_path / "runs" / "whole")
    assert env.batches.loaded == BATCHES and not _state_files(tmp_path)

    env.batches.loaded, env.batches.stop_at, env.batches.how = 0, 3, how
    with pytest.raises(KeyboardInterrupt) as stopped:
        _simulate(config, ann, tmp_path / "runs" / "first")
    assert not (tmp_path / "runs" / "first" / "results.csv").exists()
    (state,) = [p for p in _state_files(tmp_path) if p.name == "state.pt"]
    saved = torch.load(state, weights_only=True)
    assert saved["created"] == "2030-01-01T10:00:00"

    env.clock.now = "2030-01-01T11:30:00"  # the rerun starts later; its results keep the first start
    env.batches.loaded = 0
    env.lines.clear()
    result = _simulate(config, ann, tmp_path / "runs" / "second")
    assert env.batches.loaded == BATCHES - saved["batches"]  # only the batches left were loaded
    assert f"simulate: resuming after batch {saved['batches']} of {BATCHES} from {state}" in env.lines
    assert not _state_files(tmp_path) and not list((tmp_path / "cache" / "sim").iterdir())
    return expected, _files(tmp_path / "runs" / "second"), stopped.value, saved, result


def test_ctrl_c_then_rerun_writes_the_uninterrupted_runs_files(tmp_path, env):
    expected, resumed, stopped, saved, result = _interrupt_and_resume(tmp_path, env, ["sim.record_layers=true"],
                                                                      "ctrl-c")
    # Ctrl-C while batch 4 was asked for: the sums of the 3 simulated batches were saved (not only the 2 of the
    # last periodic save), and the message says where the rerun goes on.
    assert isinstance(stopped, sim_state.SimulationInterrupted) and saved["batches"] == 3
    assert stopped.resume_hint == f"rerun the same command to resume the simulation from batch 4 of {BATCHES}"
    assert sorted(expected) == ["energy.csv", "layers.csv", "results.csv"]
    assert resumed == expected
    frame = result["results"]
    assert frame["spikes_per_neuron"].iloc[-1] > 0 and (frame["created"] == "2030-01-01T10:00:00").all()


def test_stop_signal_then_rerun_with_poisson_encoding(tmp_path, env):
    # The Poisson draws are seeded by batch index: the resumed batches must keep theirs.
    expected, resumed, stopped, saved, _ = _interrupt_and_resume(
        tmp_path, env, ["sim.encoding=poisson", "sim.record_layers=false"], "sigterm")
    assert isinstance(stopped, Preempted) and stopped.signal_name == "SIGTERM"
    assert saved["batches"] == 4  # the signal came while batch 4 was loaded: it was finished, then saved
    assert stopped.resume == f"batch 5 of {BATCHES}"
    assert stopped.saved.startswith(f"the simulation's sums after batch 4 of {BATCHES} to ")
    assert stopped.saved.endswith("state.pt")
    assert "poisson encoding" in expected["results.csv"] and resumed == expected


def test_per_T_neurons_resume_too(tmp_path, env):
    expected, resumed, stopped, saved, result = _interrupt_and_resume(
        tmp_path, env, ["convert=shift", "convert.variant=S", "sim.record_layers=true"], "ctrl-c")
    assert result["sim"].passes == "one pass per T"
    assert saved["batches"] == 3 and resumed == expected


def test_a_corrupt_state_is_set_aside_and_the_run_starts_over(tmp_path, env):
    config = _config(tmp_path, "sim.checkpoint_every=1", "sim.record_layers=false")
    ann = _ann(config)
    env.batches.stop_at = 2
    with pytest.raises(sim_state.SimulationInterrupted):
        _simulate(config, ann, tmp_path / "runs" / "first")
    (state,) = [p for p in _state_files(tmp_path) if p.name == "state.pt"]
    state.write_bytes(state.read_bytes()[:100])  # truncated (and no longer its checksum's)
    env.batches.loaded = 0
    env.lines.clear()
    _simulate(config, ann, tmp_path / "runs" / "second")
    assert env.batches.loaded == BATCHES
    (line,) = [line for line in env.lines if "unusable" in line]
    assert str(state) in line and "simulating from the first batch" in line
    # The unusable file is kept for a look (snnx clean frees it); the new run's state is gone.
    (moved,) = [p for p in _state_files(tmp_path) if ".corrupt-" in p.name and not p.name.endswith(".sha256")]
    assert moved.parent == state.parent and not state.exists()
    assert plan(tmp_path).artifacts["sim"] == [(state.parent.name, pytest.approx(moved.stat().st_size, abs=200))]
    assert clean(tmp_path, say=lambda _: None) > 0 and not state.parent.exists()


def _changed(config: dict, dotted: str, value) -> dict:
    out = copy.deepcopy(config)
    *path, last = dotted.split(".")
    node = out
    for part in path:
        node = node[part]
    assert last in node, dotted
    node[last] = value
    return out


def test_the_state_is_keyed_by_what_the_simulation_computes(tmp_path):
    config = _config(tmp_path)
    ann = _ann(config)
    snn, _ = pipeline.build_snn(config, ann, pipeline.ensure_stats(config, ann, CPU))
    key = sim_state.sim_state_dir(config, ann, snn)
    assert key.parent == tmp_path / "cache" / "sim"
    # Neither how often it saves nor where it runs: the same state.
    for key_path, value in (("sim.checkpoint_every", 5), ("sim.compile", True), ("device", "cuda"),
                            ("progress", False), ("dataset.num_workers", 2), ("dataset.root", "elsewhere")):
        assert sim_state.sim_state_dir(_changed(config, key_path, value), ann, snn) == key, key_path
    for key_path, value in (("sim.T", [2, 4]), ("sim.batch_size", 30), ("sim.encoding", "poisson"), ("seed", 1),
                            ("dataset.limit_test", 100), ("sim.dtype", "float64"), ("sim.record_layers", False),
                            ("sim.chunk", 2), ("convert.calib_size", 100)):
        assert sim_state.sim_state_dir(_changed(config, key_path, value), ann, snn) != key, key_path
    # Another SNN (a threshold changed) under the same config: another state.
    changed = next(m for m in snn.modules() if hasattr(m, "threshold") and isinstance(m.threshold, torch.Tensor))
    with torch.no_grad():
        changed.threshold.mul_(1.5)
    assert sim_state.sim_state_dir(config, ann, snn) != key


def test_ctrl_c_after_the_last_batch_reruns_no_batch(tmp_path, env, monkeypatch):
    config = _config(tmp_path, "sim.record_layers=false")  # the default sim.checkpoint_every: no periodic save
    ann = _ann(config)
    _simulate(config, ann, tmp_path / "runs" / "whole")
    expected = _files(tmp_path / "runs" / "whole")
    baseline = pipeline.equal_bit_baseline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # while the equal-bit QANN is scored, after the simulation

    monkeypatch.setattr(pipeline, "equal_bit_baseline", interrupted)
    with pytest.raises(sim_state.SimulationInterrupted) as stopped:
        _simulate(config, ann, tmp_path / "runs" / "first")
    assert (stopped.value.resume_batch, stopped.value.batches) == (BATCHES + 1, BATCHES)
    monkeypatch.setattr(pipeline, "equal_bit_baseline", baseline)
    env.batches.loaded = 0
    _simulate(config, ann, tmp_path / "runs" / "second")
    assert env.batches.loaded == 0 and _files(tmp_path / "runs" / "second") == expected
    assert f"simulate: resuming after batch {BATCHES} of {BATCHES}" in " ".join(env.lines)


def test_checkpoint_every_zero_keeps_no_state(tmp_path, env):
    with pytest.raises(ConfigError) as bad:
        _config(tmp_path, "sim.checkpoint_every=-1")
    assert bad.value.key == "sim.checkpoint_every"

    config = _config(tmp_path, "sim.checkpoint_every=0", "sim.record_layers=false")
    env.batches.stop_at = 2
    with pytest.raises(KeyboardInterrupt) as stopped:
        _simulate(config, _ann(config), tmp_path / "runs" / "first")
    assert type(stopped.value) is KeyboardInterrupt and not (tmp_path / "cache" / "sim").exists()


def test_engine_resume_gives_the_uninterrupted_result():
    """Simulator.run from a mid-run state: the same sums, counts and kept outputs as one run over every batch."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10)).eval()
    data = [(torch.rand(5, 1, 8, 8), torch.randint(0, 10, (5,))) for _ in range(4)]
    snn = api.convert(net, method="maxnorm", calibration=torch.cat([x for x, _ in data]))
    sim = Simulator(snn, device=CPU, chunk=3, encoding="poisson", seed=7)
    states = []
    whole = sim.run(data, [1, 3, 8], keep_outputs=True, on_batch=states.append)
    assert [s["batches"] for s in states] == [1, 2, 3, 4]
    resumed = sim.run(data[2:], [1, 3, 8], keep_outputs=True, resume=states[1])
    for name in ("correct", "total", "spikes", "negative_spikes", "sops", "input_spikes", "macs_per_image",
                 "neurons_per_image"):
        assert getattr(resumed, name) == getattr(whole, name), name
    assert all(torch.equal(resumed.outputs[T], whole.outputs[T]) for T in whole.outputs)
    assert resumed.layer_counts == whole.layer_counts
    # A state from another sweep is refused.
    with pytest.raises(ValueError, match="time_steps"):
        sim.run(data[2:], [1, 3], resume=states[1])


def test_ctrl_c_message_names_the_batch_to_resume_from(capsys):
    from snnx.app import report_interrupt

    report_interrupt(sim_state.SimulationInterrupted(4, 6))
    report_interrupt(sim_state.SimulationInterrupted(7, 6))  # every batch simulated, the results not yet written
    assert capsys.readouterr().err.splitlines() == [
        "snnx: interrupted; rerun the same command to resume the simulation from batch 4 of 6",
        "snnx: interrupted; rerun the same command to finish (all 6 simulated batches are saved)"]
