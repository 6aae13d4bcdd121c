"""The device audit, without a GPU: networks, neurons and training steps run on PyTorch's ``meta`` device.

A meta tensor has a shape, a dtype and a device but no data, so running the code on meta checks that
every tensor it makes takes its device (and dtype) from its inputs: an operation that mixes a meta
tensor with a CPU one raises, as it would on CUDA. Two gaps of meta are closed here:

* meta lets an in-place op mix devices (``cpu.add_(meta)`` and ``meta.add_(cpu)`` pass), so a
  dispatch mode (:class:`DeviceWatch`) records every op that mixes a meta tensor with a CPU tensor
  that is not a 0-dim scalar (which CUDA accepts too), and the tests require none;
* meta has no values, so the few places where the code turns a tensor into a Python number (or
  copies it to the CPU) get a stand-in value (:func:`python_boundary`): the tests require those to
  happen only where the code means to leave the device (listed in ``BOUNDARY``). What the numbers are
  is the CPU tests' business (tests/test_engine.py etc.); which branch a stand-in value takes is the
  only thing such a run leaves unchecked there.

``.numpy()`` gets no stand-in: the numba kernels must step aside for a non-CPU tensor
(``snnx.kernels.applies`` and each dispatch site), and a kernel reached on meta raises.

Every conversion method, neuron type and activation in the registries is audited: a new entry is
audited without a change here (a neuron with a required parameter not in ``SAMPLE`` fails, naming it).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import snnx
from snnx.activations import apply_ternary, make_act_factory
from snnx.activations.registry import ACTIVATIONS
from snnx.calibration import calibrate
from snnx.convert import convert
from snnx.convert.methods import METHODS
from snnx.models import create_model
from snnx.neurons import NEURONS, Neuron
from snnx.sim import Simulator
from snnx.sim.accounting import LayerProbe

META = torch.device("meta")
CPU = torch.device("cpu")
SNNX_DIR = os.path.dirname(os.path.abspath(snnx.__file__)) + os.sep

# Where a run may turn a tensor into a Python number or copy it to the host, by file: the functions
# (None: any function of that file — the engine is where a run's counts become Python numbers).
BOUNDARY = {
    "finite.py": {"check_batch"},  # non-finite images stop the run (one reduction per batch)
    "neurons/base.py": {"publishes_spikes"},  # θ > 0 everywhere, once per batch and layer
    "sim/accounting.py": {"_record", "_torch_sums"},  # the layer probe's sums at each read-out T
    "sim/engine.py": None,
}
# Where a CPU tensor may be made during a meta run: the fan-out tables (built once per layer and
# input shape, then cached on the device by Fanout._as) and the engine's totals after the boundary.
CPU_MAKERS = {
    "sim/accounting.py": {"layer_fanout", "_fanout_map", "fanout_map"},
    "sim/engine.py": None,
}
# Where a CPU tensor may be copied to the device during a run: once per table (Fanout._as caches it),
# and the engine's inputs (images, labels, the ANN of the layer probe).
UPLOADS = {
    "sim/accounting.py": {"_as"},
    "sim/engine.py": None,
}


def _snnx_frame(frame):
    """(file relative to snnx/, function) of the innermost snnx frame at or above ``frame``; None: none."""
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(SNNX_DIR):
            return os.path.relpath(name, SNNX_DIR).replace(os.sep, "/"), frame.f_code.co_name
        frame = frame.f_back
    return None


def _allowed(site, table: dict) -> bool:
    if site is None:  # torch's own code, outside any snnx call (e.g. the optimiser step of a test)
        return True
    file, function = site
    return file in table and (table[file] is None or function in table[file])


# Stand-ins for what meta cannot compute: a Python number, a list, a host copy (shapes and dtypes kept).
_STAND_INS = {
    "item": lambda t: 1.0 if t.is_floating_point() else 1,
    "__bool__": lambda t: True,
    "__float__": lambda t: 1.0,
    "__int__": lambda t: 1,
    "__index__": lambda t: 1,
    "tolist": lambda t: torch.ones(t.shape, dtype=t.dtype).tolist(),
    "cpu": lambda t: torch.ones(t.shape, dtype=t.dtype),
}


@contextmanager
def python_boundary(sites: dict):
    """Within: a meta tensor's Python number / host copy is a stand-in; ``sites`` gets (file, function) → kinds."""
    saved = {name: getattr(torch.Tensor, name) for name in _STAND_INS}

    def patched(name):
        original, stand_in = saved[name], _STAND_INS[name]

        def method(self, *args, **kwargs):
            if self.device.type == "meta":
                sites.setdefault(_snnx_frame(sys._getframe(1)), set()).add(name)
                return stand_in(self)
            return original(self, *args, **kwargs)
        return method

    for name in _STAND_INS:
        setattr(torch.Tensor, name, patched(name))
    try:
        yield sites
    finally:
        for name, original in saved.items():
            setattr(torch.Tensor, name, original)


class DeviceWatch(TorchDispatchMode):
    """Records ops that mix meta with (non-scalar) CPU tensors, where CPU tensors are made, and where
    CPU tensors are copied to the device (on a GPU: a host-to-device copy)."""

    def __init__(self):
        super().__init__()
        self.mixed: dict = {}
        self.cpu_made: dict = {}
        self.uploads: dict = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        devices = {t.device.type for t in inputs if not (t.device.type == "cpu" and t.dim() == 0)}
        if {"meta", "cpu"} <= devices:
            self.mixed.setdefault(_snnx_frame(sys._getframe(1)), set()).add(str(func))
        out = func(*args, **kwargs)
        outputs = {t.device.type for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)}
        if "cpu" in outputs:
            self.cpu_made.setdefault(_snnx_frame(sys._getframe(1)), set()).add(str(func))
        if devices == {"cpu"} and "meta" in outputs:
            self.uploads.setdefault(_snnx_frame(sys._getframe(1)), set()).add(str(func))
        return out


@contextmanager
def audited():
    """Run the block on meta under the stand-ins and the watch; then check what they saw."""
    sites: dict = {}
    watch = DeviceWatch()
    with python_boundary(sites), watch:
        yield watch
    assert not watch.mixed, f"ops mixing meta and CPU tensors: {watch.mixed}"
    stray = {site: kinds for site, kinds in sites.items() if not _allowed(site, BOUNDARY)}
    assert not stray, f"a tensor turned into a Python number / host copy outside the boundary: {stray}"
    made = {site: ops for site, ops in watch.cpu_made.items() if not _allowed(site, CPU_MAKERS)}
    assert not made, f"CPU tensors made during a meta run: {made}"
    uploads = {site: ops for site, ops in watch.uploads.items() if not _allowed(site, UPLOADS)}
    assert not uploads, f"CPU tensors copied to the device during a run: {uploads}"


def _on(t: torch.Tensor, dtype: torch.dtype | None = None) -> bool:
    return t.device.type == "meta" and (dtype is None or t.dtype == dtype)


# -- converted networks through the engine ---------------------------------------------------------
def _act_for(method: str) -> str:
    """The first registered activation whose trained ANN ``method`` converts."""
    entry = METHODS.get(method)
    for name in ACTIVATIONS.names():
        if entry.trait("accepts")(ACTIVATIONS.get(name), {}):
            return name
    pytest.fail(f"no registered activation is accepted by convert={method}")


def _tiny_ann(act: str) -> nn.Module:
    torch.manual_seed(0)
    model = create_model("lenet", in_channels=1, image_size=8, num_classes=10, act_factory=make_act_factory(act),
                         width=0.125, batch_norm=True, pool="avg")
    if ACTIVATIONS.get(act).trait("integer_levels"):
        apply_ternary(model)
    return model.eval()


def _converted(method: str, overrides: dict | None = None):
    act = _act_for(method)
    ann = _tiny_ann(act)
    stats = None
    if METHODS.get(method).trait("needs_stats"):
        stats = calibrate(ann, [torch.rand(16, 1, 8, 8)], percentile=99.9, num_batches=1, device=CPU)
    snn, _ = convert(ann, method=method, stats=stats, convert=dict(overrides or {}))
    return ann, snn


# (method, convert overrides, Simulator keywords, run keywords): every method at its defaults, and the
# paths a default run does not take.
VARIANTS = [(m, {}, {}, {}) for m in METHODS.names()] + [
    ("allint", {"integer": True}, {}, {}),
    ("allint", {"integer": True}, {"backend": "reference"}, {}),
    ("msat", {"confidence": 0.5}, {}, {}),
    ("msat", {"confidence": 0.5}, {"backend": "reference"}, {}),
    ("msat", {}, {"memory_format": "channels_last"}, {}),
    ("shift", {"shift_T": 4}, {}, {}),
    ("maxnorm", {}, {"memory_format": "channels_last"}, {"encoding": "poisson", "mean": [0.5], "std": [0.25]}),
    ("cos", {}, {"backend": "reference", "dtype": torch.float64}, {}),
]


def _variant_id(v) -> str:
    method, conv, sim, run = v
    extra = [f"{k}={val}" for k, val in {**conv, **sim, **run}.items() if k not in ("mean", "std")]
    return "-".join([method, *extra]).replace("torch.", "")


@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
def test_converted_network_runs_on_meta(variant):
    """One batch, two chunks, T ∈ {1, 3}: engine, spike/synapse counters, layer probe, kept outputs."""
    method, conv, sim_kw, run_kw = variant
    ann, snn = _converted(method, conv)
    dtype = sim_kw.get("dtype", torch.float32)
    sim = Simulator(snn, device=META, chunk=2, **sim_kw)
    images = torch.empty(4, 1, 8, 8, device=META)
    labels = torch.empty(4, dtype=torch.long, device=META)
    seen: dict = {}

    def record(module, _inputs, out):
        seen[module] = out

    handles = [m.register_forward_hook(record) for _, m in sim.neurons]
    try:
        with audited():
            result = sim.run([(images, labels)], [1, 3], ann=ann, record_layers=True, keep_outputs=True, **run_kw)
    finally:
        for h in handles:
            h.remove()
    assert result.total == 4 and result.time_steps == [1, 3]
    assert {r["layer"] for r in result.layer_rows} == {name for name, _ in sim.neurons}
    assert all(result.outputs[T].shape == (4, 10) for T in (1, 3))
    assert len(result.layer_counts.neurons) == len(sim.neurons)
    assert all(p.device.type == "meta" for p in sim.snn.parameters())
    # Every neuron ran, on meta, in the simulation's dtype (int64 stays int64 in integer mode).
    assert set(seen) == {m for _, m in sim.neurons}
    for _, neuron in sim.neurons:
        out = seen[neuron]
        integer = getattr(neuron, "integer", False)
        assert _on(out, torch.int64 if integer else dtype), (type(neuron).__name__, out.device, out.dtype)


class _OddPaddingNet(nn.Module):
    """Convs whose fan-out is a full per-element table (padding="same", a non-zero padding mode)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding="same")
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular")
        self.act2 = nn.ReLU()
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.act2(self.conv2(self.act1(self.conv1(x)))), 1))


def test_full_fanout_tables_are_built_on_the_cpu_and_moved_once():
    torch.manual_seed(0)
    ann = _OddPaddingNet().eval()
    stats = calibrate(ann, [torch.rand(8, 1, 8, 8)], percentile=99.9, num_batches=1, device=CPU)
    snn, _ = convert(ann, method="maxnorm", stats=stats, convert={})
    sim = Simulator(snn, device=META, chunk=2)
    with audited():
        result = sim.run([(torch.empty(2, 1, 8, 8, device=META), torch.empty(2, dtype=torch.long, device=META))],
                         [1, 3])
    assert [c.name for c in result.layer_counts.synapses] == ["conv1", "conv2", "fc"]


def test_every_neuron_type_is_reached_by_a_conversion():
    """Every registered neuron type is put into a network by some method at its defaults (so audited above)."""
    made = set()
    for method in METHODS.names():
        _, snn = _converted(method)
        made |= {type(m) for m in snn.modules() if isinstance(m, Neuron)}
    assert {e.build for e in NEURONS} <= made


# -- each neuron type on its own -------------------------------------------------------------------
C = 3
# Values for required constructor parameters, by name (a new neuron's new required parameter goes here).
SAMPLE = {
    "threshold": lambda: torch.rand(C) + 0.5,
    "theta_plus0": lambda: torch.rand(C) + 0.5,
    "delta": lambda: torch.rand(C) + 0.25,
    "k": lambda: 1,
}
# Settings that take other code paths than the defaults, per neuron name; "int64": integer mode.
SETTINGS = {
    "shifted_if": [{}, {"horizon": 4}],
    "cos_if": [{"presim": 2}],
    "msat": [{}, {"confidence": 0.5}, {"fixed_fraction": 0.7}, {"units": "raw", "det_tau": "once"}],
    "signed": [{}, {"int64": True}, {"fire_on_equal": False}],
    "scatter_gather": [{}, {"integer": True}],
}


def _neuron_cases():
    for entry in NEURONS:
        for setting in SETTINGS.get(entry.name, [{}]):
            yield pytest.param(entry.name, setting, id="-".join([entry.name, *(f"{k}={v}" for k, v in setting.items())]))


def _build_neuron(name: str, setting: dict) -> Neuron:
    entry = NEURONS.get(name)
    kwargs = {k: v for k, v in setting.items() if k != "int64"}
    for field in dataclasses.fields(entry.params):
        if field.name != "name" and field.metadata.get("required") and field.name not in kwargs:
            if field.name not in SAMPLE:
                pytest.fail(f"neuron {name!r}: no sample value for its required parameter {field.name!r} (SAMPLE)")
            kwargs[field.name] = SAMPLE[field.name]()
    if setting.get("int64"):
        kwargs = {k: (v * 100).round().long() if torch.is_tensor(v) else v for k, v in kwargs.items()}
    return entry.build(**kwargs)


@pytest.mark.parametrize("shape, backend", [((2, C, 4, 4), "reference"), ((2, C, 4, 4), "fused"), ((2, C), "fused")],
                         ids=["conv-reference", "conv-fused", "linear-fused"])
@pytest.mark.parametrize("name, setting", list(_neuron_cases()))
def test_neuron_runs_on_meta(name, setting, shape, backend):
    """Two chunks (4 steps, then 2) of time-folded input, and one of a constant [B, …] input (direct encoding)."""
    neuron = _build_neuron(name, setting).to(META)
    integer = bool(setting.get("int64"))
    in_dtype = torch.int64 if integer else torch.float32
    out_dtype = torch.int64 if (integer or setting.get("integer")) else torch.float32
    batch = shape[0]
    with audited():
        neuron.start_run(backend=backend, track_spikes=True)
        for constant in (False, True):
            neuron.begin_batch(6)
            for steps in (4, 2):
                neuron.begin_chunk(steps, batch)
                rows = batch if constant else steps * batch
                out = neuron(torch.empty((rows, *shape[1:]), dtype=in_dtype, device=META))
                assert out.shape == (steps * batch, *shape[1:]) and _on(out, out_dtype), (out.device, out.dtype)
                for state in (neuron.v, neuron.spike_indicator, neuron.spike_counts,
                              getattr(neuron, "count", None), getattr(neuron, "v_post_sum", None)):
                    assert state is None or state.device.type == "meta"
        neuron.finish_run()
    assert all(b.device.type == "meta" for b in neuron.buffers())


def test_layer_probe_on_meta_reads_the_ann_on_meta():
    """The probe on its own: its sums live on the input's device; the read-outs are the only boundary."""
    neuron = NEURONS.get("if").build(threshold=torch.rand(C) + 0.5).to(META)
    probe = LayerProbe("site", neuron)
    pre = torch.empty(2, C, 4, 4, device=META)
    with audited():
        neuron.start_run(backend="fused", track_spikes=True)
        neuron.begin_batch(3)
        probe.start_batch([1, 3], pre, pre)
        for steps in (1, 2):
            neuron.begin_chunk(steps, 2)
            neuron(torch.empty(steps * 2, C, 4, 4, device=META))
    probe.remove()
    assert _on(probe.in_sum, torch.float64) and _on(probe.out_sum, torch.float64)
    assert [r["T"] for r in probe.rows()] == [1, 3]


# -- one training step per activation --------------------------------------------------------------
@pytest.mark.parametrize("act", ACTIVATIONS.names())
def test_training_step_on_meta(act):
    """Forward, cross-entropy, backward and an SGD step (momentum) of a LeNet built by the real builders."""
    model = _tiny_ann(act).to(META).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.empty(4, 1, 8, 8, device=META)
    y = torch.empty(4, dtype=torch.long, device=META)
    with audited():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert _on(loss, torch.float32)
    for name, p in model.named_parameters():
        assert p.grad is not None and _on(p.grad, p.dtype), name
    assert all(b.device.type == "meta" for b in model.buffers())


# -- the audit itself --------------------------------------------------------------------------------
def test_the_audit_catches_a_tensor_made_on_the_cpu(monkeypatch):
    """A neuron whose start potential ignores its input's device fails the audit (meta alone or the watch)."""
    from snnx.neurons.base import IFNeuron

    monkeypatch.setattr(IFNeuron, "initial_potential", lambda self, x_t, theta: torch.zeros(x_t.shape))
    neuron = IFNeuron(torch.tensor(1.0)).to(META)
    neuron.start_run(backend="fused")
    neuron.begin_batch(2)
    neuron.begin_chunk(2, 2)
    with pytest.raises((AssertionError, RuntimeError)):
        with audited():
            neuron(torch.empty(4, C, device=META))


def test_the_watch_sees_in_place_mixing_that_meta_lets_through():
    cpu = torch.zeros(3)
    with DeviceWatch() as watch:
        cpu.add_(torch.empty(3, device=META))  # meta itself does not raise here
    assert watch.mixed
