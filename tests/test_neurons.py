"""Neuron dynamics against the closed forms of the conversion papers; the neuron registry and contract."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import pytest
import torch

from snnx.activations import CSQCFS, QCFS
from snnx.neurons import NEURONS, IFNeuron, Neuron, OffsetCalibratedIFNeuron, ShiftedIFNeuron


def run_constant(neuron, z: torch.Tensor, steps: int) -> torch.Tensor:
    """Spike count per neuron for a constant input, one step at a time."""
    neuron.reset_state()
    neuron.begin_chunk(1, z.shape[0])
    count = torch.zeros_like(z)
    theta = neuron.threshold if neuron.threshold.dim() == 0 else neuron.threshold.view(1, -1, *([1] * (z.dim() - 2)))
    for _ in range(steps):
        count += neuron(z) / theta
    return count


@pytest.mark.parametrize("L", [1, 2, 3, 4, 8, 16])
def test_qcfs_to_if_is_exact_at_T_equal_L_layerwise(L):
    torch.manual_seed(L)
    lam = 2.5
    act = QCFS(L, init_threshold=lam, shift=0.5).double()
    # Inputs below 0, inside, on every step boundary, and above λ.
    grid = torch.arange(-2 * L, 3 * L + 1, dtype=torch.float64) * lam / (2 * L)
    z = torch.cat([torch.rand(500, dtype=torch.float64) * 1.4 * lam - 0.2 * lam, grid]).view(-1, 1)
    neuron = IFNeuron(torch.tensor(lam, dtype=torch.float64), v_init=0.5).double()
    count = run_constant(neuron, z, L)
    expected = L * act(z)
    assert torch.equal(count * lam, expected)


@pytest.mark.parametrize("L", [2, 4, 8])
def test_qcfs_to_if_is_exact_channelwise(L):
    torch.manual_seed(0)
    channels = 5
    act = CSQCFS(channels, L, init_threshold=4.0, shift=0.5, channelwise=True, softplus=True).double()
    with torch.no_grad():
        act.threshold_param.add_(torch.randn(channels, dtype=torch.float64))
    lam = act.conversion_threshold()
    z = (torch.rand(64, channels, 3, 3, dtype=torch.float64) * 1.5 - 0.25) * lam.view(1, -1, 1, 1)
    neuron = IFNeuron(lam, v_init=0.5).double()
    count = run_constant(neuron, z, L)
    assert torch.equal(count * lam.view(1, -1, 1, 1), L * act(z))


def test_if_rate_matches_closed_form_for_any_T():
    # φ(T) = θ/T · clip(floor((T·z + v0)/θ), 0, T) for constant input.
    theta, v0 = 1.0, 0.0
    z = torch.linspace(-0.5, 1.5, 401, dtype=torch.float64).view(-1, 1)
    for T in (1, 3, 7, 32):
        neuron = IFNeuron(torch.tensor(theta, dtype=torch.float64), v_init=v0).double()
        count = run_constant(neuron, z, T)
        expected = torch.clamp(torch.floor((T * z + v0) / theta), 0, T)
        # The sequential sum can differ from T·z in the last bit exactly on a boundary.
        mismatch = (count != expected)
        assert mismatch.float().mean() < 0.01
        boundary = torch.isclose((T * z + v0) / theta, torch.round((T * z + v0) / theta), atol=1e-9)
        assert bool((~mismatch | boundary).all())


def test_shift_lowers_error_against_clip_relu_at_small_T():
    torch.manual_seed(0)
    theta = 1.0
    z = torch.rand(20000, 1, dtype=torch.float64) * theta
    for T in (2, 4, 8):
        plain = run_constant(IFNeuron(torch.tensor(theta), 0.0).double(), z, T) * theta / T
        shifted_neuron = ShiftedIFNeuron(torch.tensor(theta), 0.0).double()
        shifted_neuron.set_horizon(T)
        shifted = run_constant(shifted_neuron, z, T) * theta / T
        target = z.clamp(0, theta)
        assert (shifted - target).abs().mean() < 0.6 * (plain - target).abs().mean()


def test_shift_horizon_fixed_by_config_is_not_per_T():
    neuron = ShiftedIFNeuron(torch.tensor(1.0), 0.0, horizon=8)
    assert not neuron.depends_on_T
    neuron.set_horizon(2)
    assert neuron.horizon == 8
    assert ShiftedIFNeuron(torch.tensor(1.0), 0.0).depends_on_T


def test_cos_corrects_one_spike_too_many_and_too_few():
    theta = torch.tensor(1.0, dtype=torch.float64)
    neuron = OffsetCalibratedIFNeuron(theta, v_init=0.5, presim=4).double()
    # Neuron 0: strong input then negative (fired, ends below 0) -> v0 lowered by θ.
    # Neuron 1: input that leaves v ≥ θ after 4 steps -> v0 raised by θ. Neuron 2: fine.
    x = torch.tensor([[0.9, 0.2, 0.3], [-0.6, 0.2, 0.3], [-0.6, 0.2, 0.3], [0.0, 2.0, 0.3]], dtype=torch.float64)
    x_seq = x.view(4, 1, 3)
    v0 = neuron.calibrated_potential(x_seq, theta)
    assert v0.tolist() == [[-0.5, 1.5, 0.5]]


@pytest.mark.parametrize("steps", [1, 4])
def test_inplace_if_path_equals_generic_charge_fire_reset(steps):
    torch.manual_seed(1)
    theta = torch.rand(6) + 0.5
    fast, generic = IFNeuron(theta, 0.5), IFNeuron(theta, 0.5)
    generic.start_run(backend="reference")
    for n in (fast, generic):
        n.begin_chunk(steps, 3)
    for _ in range(5):  # several chunks: state carries over
        x = torch.randn(steps * 3, 6, 2, 2)
        a = fast(x)
        b = generic(x)
        assert torch.equal(a, b)
    assert torch.equal(fast.v, generic.v)


# -- the registry: every neuron class declares its parameters and traits once --------------
# Example values for the constructor arguments without a default (tensors have none to declare).
REQUIRED = {"threshold": lambda: torch.tensor([0.6, 1.0, 1.7]), "theta_plus0": lambda: torch.tensor([0.3, 0.1, -0.2]),
            "delta": lambda: torch.tensor([0.5, 0.25, 0.4]), "k": lambda: 1}


def _neuron_classes() -> set[type]:
    """Every Neuron subclass defined in a module of snnx.neurons (all of them imported first)."""
    import snnx.neurons

    for info in pkgutil.iter_modules(snnx.neurons.__path__):
        importlib.import_module(f"snnx.neurons.{info.name}")
    found, todo = set(), [Neuron]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("snnx.neurons."):
                found.add(sub)
    return found


def _example(entry, **overrides):
    required = {f.name: REQUIRED[f.name]() for f in dataclasses.fields(entry.params)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    return entry.build(**{**required, **overrides})


def test_every_neuron_class_is_registered_once():
    registered = [entry.build for entry in NEURONS]
    assert len(set(registered)) == len(registered)
    assert set(registered) == _neuron_classes()


@pytest.mark.parametrize("name", NEURONS.names())
def test_registered_params_match_the_constructor(name):
    """The params dataclass lists the constructor's arguments: same names, order, types and defaults."""
    entry = NEURONS.get(name)
    fields = [f for f in dataclasses.fields(entry.params) if f.name != "name"]
    arguments = [p for p in inspect.signature(entry.build.__init__).parameters.values() if p.name != "self"]
    assert [f.name for f in fields] == [p.name for p in arguments]
    for f, p in zip(fields, arguments):
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        assert (p.default is inspect.Parameter.empty) == no_default, f.name
        if not no_default:
            assert f.default == p.default and type(f.default) is type(p.default), f.name
        assert f.type == p.annotation, f.name  # the same annotation text (postponed evaluation)
        assert f.metadata["doc"], f"{name}.{f.name} has no doc"
    assert dataclasses.fields(entry.params)[0].default == name
    assert entry.doc


@pytest.mark.parametrize("name", NEURONS.names())
def test_registered_traits_match_the_neurons(name):
    """Each trait says what an instance built with the declared defaults does."""
    entry = NEURONS.get(name)
    neuron = _example(entry)
    assert neuron.depends_on_T == entry.trait("depends_on_T")
    assert neuron.rate_coded == entry.trait("rate_coded") == (neuron.unit is None)
    assert (neuron.presim > 0) == entry.trait("presimulates", False)
    assert neuron.encodes_input == entry.trait("encodes_input", False)
    assert (type(neuron).fused_steps is not Neuron.fused_steps) == entry.trait("fused")
    # Signed output: negative spikes on inputs of both signs; the others never emit one.
    torch.manual_seed(0)
    out = neuron.run(torch.randn(12, 4, 3) * 1.5)
    assert bool((out < 0).any()) == entry.trait("signed")
    assert neuron.t == 12


def test_run_is_the_reference_step_through_time():
    """run() = reset, horizon T, then step() on one [B, …] slice after another (here COS: v0 calibrated first)."""
    torch.manual_seed(2)
    theta = torch.tensor([0.6, 1.0, 1.7])
    x = torch.randn(9, 4, 3) + 0.4
    neuron = OffsetCalibratedIFNeuron(theta, 0.5, presim=3)
    neuron.run(torch.randn(9, 4, 3))  # state left by another batch is reset
    out = neuron.run(x)
    manual = OffsetCalibratedIFNeuron(theta, 0.5, presim=3)
    manual.v = manual.calibrated_potential(x, theta)
    assert torch.equal(out, torch.stack([manual.step(x[t]) for t in range(9)]))
    assert torch.equal(neuron.v, manual.v) and neuron.t == manual.t == 9
    with pytest.raises(RuntimeError, match="first 3 steps"):
        neuron.run(x[:2])
    shifted = ShiftedIFNeuron(theta)
    shifted.run(x[:5])
    assert shifted.horizon == 5  # a T-dependent neuron gets the input's length as its horizon
