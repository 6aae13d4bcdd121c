"""Energy models (snnx/energy): the counts they price, checked against a hand count of every operation and
memory access on a small hand-built net; horowitz45 against the formula results.csv always used; the
equal-bit QANN; the doctor's finding; `snnx run energy=memory` end to end."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from snnx.energy import ENERGY, build, qann_bits
from snnx.energy.rows import energy_rows, price_run
from snnx.neurons import IFNeuron
from snnx.sim import Simulator

from conftest import snnx

CPU = torch.device("cpu")


def _tiny_snn():
    """4 real inputs → Linear(4, 3) → IF (θ set per neuron) → Linear(3, 2) readout, hand-set weights."""
    from snnx.calibration import calibrate
    from snnx.convert import convert

    ann = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        ann[0].weight.copy_(torch.tensor([[0.3, -0.2, 0.5, 0.1], [0.2, 0.4, -0.1, 0.3], [-0.5, 0.6, 0.2, 0.2]]))
        ann[0].bias.copy_(torch.tensor([0.05, -0.02, 0.1]))
        ann[2].weight.copy_(torch.tensor([[1.0, -0.5, 0.2], [0.3, 0.7, -0.4]]))
        ann[2].bias.zero_()
    stats = calibrate(ann.eval(), [torch.randn(8, 4)], percentile=100, num_batches=1, device=CPU)
    snn, _ = convert(ann, method="maxnorm", stats=stats, convert={})
    (neuron,) = [m for m in snn.modules() if isinstance(m, IFNeuron)]
    neuron.threshold = torch.tensor([0.5, 0.8, 1.1])
    return snn, ann


def _hand_spikes(net, x: torch.Tensor, T: int) -> list[list[int]]:
    """Per image, each IF neuron's spike count over T steps, by the defining loop (v += z; fire; v −= θ)."""
    theta = [0.5, 0.8, 1.1]
    z = (x.double() @ net[0].weight.double().T + net[0].bias.double()).tolist()
    counts = []
    for row in z:
        v, c = [0.0] * 3, [0] * 3
        for _ in range(T):
            for j in range(3):
                v[j] += row[j]
                if v[j] >= theta[j]:
                    v[j] -= theta[j]
                    c[j] += 1
        counts.append(c)
    return counts


def test_memory_model_equals_a_hand_count_of_every_access():
    net, ann = _tiny_snn()
    x = torch.tensor([[1.0, 0.5, 2.0, -1.0], [0.2, 1.5, 0.3, 0.9], [2.0, -0.5, 1.0, 0.4]])
    T = 6
    result = Simulator(net, device=CPU, dtype=torch.float64).run([(x, torch.zeros(3, dtype=torch.long))], [T])
    counts = result.layer_counts
    spikes = _hand_spikes(ann, x, T)
    per_image_spikes = sum(map(sum, spikes)) / 3
    assert per_image_spikes > 0
    sops = per_image_spikes * 2  # each spike reaches the readout's 2 outputs
    (first, readout), (neurons,) = counts.synapses, counts.neurons
    assert (first.mode, first.macs, first.weights, first.inputs, first.outputs) == ("mac", 12, 12, 4, 3)
    assert (readout.mode, readout.macs, readout.weights, readout.inputs, readout.outputs) == ("sop", 6, 6, 3, 2)
    assert readout.sops[T] == pytest.approx(sops) and neurons.spikes[T] == pytest.approx(per_image_spikes)
    assert neurons.neurons == 3

    b = qann_bits(T)  # 3 bits for T = 6
    priced = build({"name": "memory"}).price(counts, T, b)
    # Every buffer here is far below 8 KB: one 32-bit word access costs 10 pJ; a value of w bits w/32 of it.
    word, add, mult = 10.0, 0.9, 3.7
    # ANN, first layer: 12 MACs (multiply + add), a weight and an input read each, 3 outputs written.
    ann_first = 12 * (add + mult) + 12 * word + 12 * word + 3 * word
    ann_readout = 6 * (add + mult) + 6 * word + 6 * word + 2 * word
    assert priced.ann_pj == pytest.approx(ann_first + ann_readout)
    # QANN: the first layer reads the real image at 32 bits and writes 3-bit activations; the readout reads
    # 3-bit activations (its multiply scaled by 3/32) and writes 3-bit outputs.
    q_first = 12 * (add + mult) + 12 * word + 12 * word + 3 * word * b / 32
    q_readout = 6 * (add + mult * b / 32) + 6 * word + 6 * word * b / 32 + 2 * word * b / 32
    assert priced.qann_pj == pytest.approx(q_first + q_readout)
    # SNN: the first layer's dense pass once, then each of its 3 currents read and added at every step; every
    # neuron's potential read and written at every step with a compare, one add and a 1-bit write per spike;
    # per SOP an add, a weight read and the output potential's read and write; each spike read as an event.
    snn_first = ann_first + 3 * T * (add + word)
    snn_neurons = T * 3 * (add + 2 * word) + per_image_spikes * (add + word / 32)
    snn_readout = sops * (add + word + 2 * word) + per_image_spikes * word / 32
    assert priced.snn_pj == pytest.approx(snn_first + snn_neurons + snn_readout)
    # horowitz45 on the same counts: 0.9 pJ per SOP, 4.6 pJ per MAC
    h = build({"name": "horowitz45"}).price(counts, T, b)
    assert h.snn_pj == pytest.approx(0.9 * sops + 4.6 * 12)
    assert h.ann_pj == pytest.approx(4.6 * 18)
    assert h.qann_pj == pytest.approx(4.6 * 12 + 6 * (0.9 + 3.7 * b / 32))


def test_buffer_tiers_price_by_size():
    m = build({"name": "memory"})
    assert m.access(2048, 32) == 10.0 and m.access(2049, 32) == 20.0  # 8 KB of 32-bit values, and one more
    assert m.access(8192, 32) == 20.0 and m.access(8193, 32) == 100.0
    assert m.access(262145, 32) == 1300.0  # beyond 1 MB: DRAM
    assert m.access(100, 8) == 10.0 * 8 / 32  # an 8-bit value: a quarter of a word access
    int8 = build({"name": "memory", "precision": "int8"})
    assert (int8.add, int8.mult, int8.w) == (0.03, 0.2, 8)


def test_qann_bits():
    assert [qann_bits(T) for T in (1, 2, 3, 4, 7, 8, 32)] == [1, 2, 2, 3, 3, 4, 6]
    assert qann_bits(32, levels=4) == 3 and qann_bits(1, levels=8) == 4


def test_horowitz45_totals_are_results_csv_formula_on_a_lenet():
    from snnx.activations import make_act_factory
    from snnx.calibration import calibrate
    from snnx.convert import convert
    from snnx.models import create_model
    from snnx.sim.accounting import ann_macs

    torch.manual_seed(0)
    ann = create_model("lenet", in_channels=1, image_size=28, num_classes=10, act_factory=make_act_factory("relu"),
                       width=0.25).eval()
    x, y = torch.randn(6, 1, 28, 28), torch.randint(0, 10, (6,))
    stats = calibrate(ann, [x], percentile=99.9, num_batches=1, device=CPU)
    snn, _ = convert(ann, method="maxnorm", stats=stats, convert={})
    result = Simulator(snn, device=CPU).run([(x, y)], [2, 8])
    priced = price_run(None, result.layer_counts, result.time_steps)
    for T in (2, 8):
        assert priced[T][0].snn_pj * 1e-9 == pytest.approx(result.per_image(T)["energy_mj"], rel=1e-12)
        assert priced[T][0].ann_pj == pytest.approx(4.6 * ann_macs(ann, x), rel=1e-12)
        assert priced[T][1] == qann_bits(T)
    rows = pd.DataFrame(energy_rows(priced, result.layer_counts, "horowitz45"))
    assert set(rows["kind"]) == {"synapse", "neuron"}
    assert rows.groupby("T")["energy_mj"].sum()[8] == pytest.approx(result.per_image(8)["energy_mj"])
    spiking = rows[(rows["T"] == 8) & rows["spikes_per_synapse"].notna()]
    assert len(spiking) == 3 and (spiking["spikes_per_synapse"] == spiking["sops"] / spiking["macs"]).all()


def test_qann_accuracy_quantises_at_the_snn_thresholds():
    from snnx.activations import make_act_factory
    from snnx.calibration import calibrate
    from snnx.convert import convert
    from snnx.models import create_model
    from snnx.sim.qann import qann_accuracy, site_thresholds

    torch.manual_seed(1)
    ann = create_model("lenet", in_channels=1, image_size=28, num_classes=10, act_factory=make_act_factory("relu"),
                       width=0.25).eval()
    x = torch.randn(40, 1, 28, 28)
    y = ann(x).argmax(1)  # labels the ANN gets right, so its accuracy is 100 %
    stats = calibrate(ann, [x], percentile=100, num_batches=1, device=CPU)
    snn, _ = convert(ann, method="maxnorm", stats=stats, convert={})
    thresholds = site_thresholds(ann, snn)
    assert set(thresholds) == {name for name, m in snn.named_modules() if isinstance(m, IFNeuron)}
    acc = qann_accuracy(ann, thresholds, [1, 16], [(x, y)], CPU)
    assert acc[16] == 100.0  # 65535 levels of [0, max]: the ANN's own decisions
    assert acc[1] < 100.0  # one bit (0 or θ) changes some
    assert torch.equal(ann(x).argmax(1), y)  # the hooks are gone
    # A neuron that is not θ·s (the signed all-integer neuron) has no such QANN
    from snnx.neurons import SignedDualThresholdNeuron

    snn.add_module("extra", SignedDualThresholdNeuron(torch.tensor(0.5), torch.tensor(1.0)))
    assert site_thresholds(ann, snn) is None


def test_doctor_names_the_layers_that_make_the_snn_cost_more():
    from snnx.doctor import energy_findings

    rows = [{"T": 4, "layer": "a", "energy_mj": 1.0, "qann_energy_mj": 2.0, "energy_model": "memory", "qann_bits": 3},
            {"T": 4, "layer": "b", "energy_mj": 0.5, "qann_energy_mj": 0.0, "energy_model": "memory", "qann_bits": 3},
            {"T": 32, "layer": "a", "energy_mj": 3.0, "qann_energy_mj": 2.0, "energy_model": "memory", "qann_bits": 6},
            {"T": 32, "layer": "b", "energy_mj": 2.0, "qann_energy_mj": 0.0, "energy_model": "memory", "qann_bits": 6}]
    (finding,) = energy_findings(rows)  # T = 4 is cheaper (1.5 vs 2.0): no finding
    assert (finding.T, finding.layer, finding.finding) == (32, "b", "snn_costs_more_than_qann")
    assert finding.value == pytest.approx(2.5)
    assert finding.severity == "note"
    assert "b 67 %" in finding.message and "a 33 %" in finding.message and "6-bit QANN" in finding.message


def test_every_energy_model_is_registered_with_documented_params():
    assert set(ENERGY.names()) >= {"horowitz45", "memory"}
    for entry in ENERGY:
        assert entry.doc
        for p in entry.params.__dataclass_fields__.values():
            assert p.metadata.get("doc"), (entry.name, p.name)


def test_snnx_run_energy_memory_prints_snn_ann_and_qann_energy(trained):
    root = trained["root"]
    done = snnx("run", *trained["args"], "energy=memory", "sim.T=[1,4,16]", "doctor=false", cwd=trained["cwd"])
    assert done.returncode == 0, done.stderr
    assert "QANN mJ (bits)" in done.stdout and "energy=memory" in done.stdout
    (run,) = [p.parent for p in root.glob("runs/*/*/results.csv") if
              (p.parent / "energy.csv").exists() and pd.read_csv(p)["energy_model"].iloc[0] == "memory"]
    results, layers = pd.read_csv(run / "results.csv"), pd.read_csv(run / "energy.csv")
    assert list(results["qann_bits"]) == [1, 3, 5]
    assert list(results["energy_ratio"]) == pytest.approx(list(results["energy_mj"] / results["qann_energy_mj"]),
                                                          rel=1e-3)
    assert results["qann_acc"].between(0, 100).all()
    for T, group in layers.groupby("T"):
        row = results[results["T"] == T].iloc[0]
        for column in ("energy_mj", "qann_energy_mj", "ann_energy_mj"):
            assert group[column].sum() == pytest.approx(row[column], rel=2e-3), (T, column)
    assert not math.isnan(results["ann_energy_mj"].iloc[0])


def test_api_simulate_takes_an_energy_model_and_its_keys():
    from snnx import api
    from snnx.activations import make_act_factory
    from snnx.errors import ConfigError
    from snnx.models import create_model

    torch.manual_seed(0)
    ann = create_model("lenet", in_channels=1, image_size=28, num_classes=10, act_factory=make_act_factory("relu"),
                       width=0.25).eval()
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    snn = api.convert(ann, method="maxnorm", calibration=x)
    frame = api.simulate(snn, (x, y), [3], ann=ann, energy="memory", precision="fp16").frame
    assert list(frame["energy_model"]) == ["memory"] and list(frame["qann_bits"]) == [2]
    assert frame["energy_ratio"].iloc[0] == pytest.approx(frame["energy_mj"].iloc[0] / frame["qann_energy_mj"].iloc[0])
    default = api.simulate(snn, (x, y), [3]).frame  # no ann: the QANN's energy, not its accuracy
    assert default["energy_model"].iloc[0] == "horowitz45" and math.isnan(default["qann_acc"].iloc[0])
    with pytest.raises(ConfigError, match=r"snnx\.api\.simulate\(precision=…\): does not apply to energy=horowitz45"):
        api.simulate(snn, (x, y), [3], precision="fp16")
    with pytest.raises(ConfigError, match=r"simulate\(energy=…\).*Did you mean energy=memory"):
        api.simulate(snn, (x, y), [3], energy="mem")
