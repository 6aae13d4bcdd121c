"""NIR export (snnx/export/nir.py, `snnx export`, snnx.api.export_nir), checked by reading the file back.

The second consumer is snnTorch 1.0.0 (``snntorch.import_nir.import_from_nir``, through nirtorch). Its reading of
a feed-forward IF graph needs three corrections before it computes what the NIR graph says, and the helper below
makes them, each against NIR's own definition (nir/ir/neuron.py, nir/ir/flatten.py):

* ``nir.IF`` becomes ``snn.Leaky(beta=0.9, init_hidden=False, reset_delay=False)`` with one scalar threshold: a
  leak NIR's IF does not have, a (spike, mem) tuple the next layer cannot take, and ``np.unique(v_threshold)`` must
  be one value (so channel-wise thresholds fail to import at all). Here: ``Leaky(beta=1)`` with the node's
  per-neuron ``v_threshold`` array, ``reset_mechanism="subtract"`` (the graph's metadata ``reset``) and
  ``reset_delay=True`` — the one of snnTorch's two orders that is snnx's IF step: with ``reset_delay=False`` the
  reset is re-derived from the already-reset potential, and a neuron left above θ by a large input must then pass
  2θ to fire (1.6 % of spikes differ on random inputs; with ``reset_delay=True``, none of 6.4 M).
* ``nir.Flatten(start_dim=0)`` becomes ``torch.nn.Flatten(0, -1)``, which flattens the batch too (NIR's dimensions
  leave the batch out, as snnTorch's own exporter writes them): here ``Flatten(start_dim + 1)``.

snnTorch compares ``mem > threshold`` where snnx fires on ``v >= θ`` (recorded in the metadata): they differ only
where a potential lands exactly on θ, which the round trip below measures (no prediction differs).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import snnx.api as api
from snnx import snn_file
from snnx.errors import ConfigError
from snnx.neurons import NEURONS, IFNeuron, Neuron

from conftest import SNNX, cli_env, snnx

nir = pytest.importorskip("nir")

T = 32


# -- helpers ------------------------------------------------------------------------------------
def snntorch_network(graph):
    """snnTorch's network for ``graph`` (import_from_nir), its IF and Flatten modules read as NIR defines them."""
    snn = pytest.importorskip("snntorch")
    import_nir = pytest.importorskip("snntorch.import_nir")
    net = import_nir.import_from_nir(graph)
    for name, node in graph.nodes.items():
        attr = name.replace(".", "_")  # nirtorch's module names
        if isinstance(node, nir.IF):
            assert node.metadata["reset"] in ("subtract", b"subtract")
            setattr(net, attr, snn.Leaky(beta=1.0, threshold=torch.as_tensor(node.v_threshold), init_hidden=True,
                                         reset_mechanism="subtract", reset_delay=True))
        elif isinstance(node, nir.Flatten):
            setattr(net, attr, nn.Flatten(int(node.start_dim) + 1, int(node.end_dim)))
    return net


@torch.no_grad()
def snntorch_outputs(graph, images: torch.Tensor, steps: int) -> torch.Tensor:
    """The Output node summed over ``steps`` steps, divided by ``steps`` (snnx's readout), by snnTorch."""
    snn = pytest.importorskip("snntorch")
    net = snntorch_network(graph)
    for m in net.modules():
        if isinstance(m, snn.Leaky):
            m.reset_mem()
    total = 0
    for _ in range(steps):
        out, _state = net(images)  # nirtorch's graph returns (output, state)
        total = total + out
    return total / steps


@pytest.fixture(scope="module")
def lenet(trained):
    """The session's ReLU LeNet (digits) converted with maxnorm, its config and the test images."""
    model, config = api.load_ann(str(trained["model"]))
    snn = api.convert(model, config)
    test = api.build_dataset(config, "test")
    images = torch.stack([test[i][0] for i in range(len(test))])
    labels = torch.tensor([int(test[i][1]) for i in range(len(test))])
    return {"snn": snn, "config": config, "test": test, "images": images, "labels": labels, "model": model}


def replaced(snn, name: str, neuron: Neuron):
    """A copy of ``snn`` with the neuron at ``name`` replaced (its recorded conversion kept: the input shape)."""
    out = copy.deepcopy(snn)
    parent, _, leaf = name.rpartition(".")
    setattr(out.get_submodule(parent) if parent else out, leaf, neuron)
    # torch.fx's GraphModule.__deepcopy__ drops attributes set on the module after tracing
    return snn_file.record(out, snn_file.conversion_of(snn))


def neuron_sites(snn) -> list[str]:
    return [n for n, m in snn.named_modules() if isinstance(m, Neuron)]


# -- the round trip ------------------------------------------------------------------------------------
def test_snntorch_reads_back_the_predictions_of_snnx_at_T32(lenet, tmp_path):
    snn = lenet["snn"]
    made = api.export_nir(snn, tmp_path / "lenet.nir")
    assert made.path.is_file() and not made.approximations
    graph = nir.read(str(made.path))
    ours = api.simulate(snn, lenet["test"], [T], keep_outputs=True, device="cpu").outputs[T]
    theirs = snntorch_outputs(graph, lenet["images"], T)
    assert theirs.shape == ours.shape == (360, 10)
    # Every prediction equal; the outputs a rounding apart (θ folded into the weights: W·θ rounds once).
    assert torch.equal(theirs.argmax(1), ours.argmax(1))
    assert float((theirs - ours).abs().max()) < 1e-4
    # snnx's own reading of the file (the lossy exports' measurement) agrees too.
    from snnx.export.nir import GraphRunner

    mine = GraphRunner(graph).run(lenet["images"], T)[-1] / T
    assert torch.equal(mine.argmax(1), ours.argmax(1))
    assert float((mine - ours).abs().max()) < 1e-4


def test_graph_holds_per_neuron_thresholds_folded_weights_and_the_conventions(lenet, tmp_path):
    snn = lenet["snn"]
    graph = nir.read(str(api.export_nir(snn, tmp_path / "g.nir").path))
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert kinds == {"input": "Input", "features.0.conv": "Conv2d", "features.0.act": "IF", "features.1": "AvgPool2d",
                     "features.2.conv": "Conv2d", "features.2.act": "IF", "features.3": "AvgPool2d",
                     "flatten": "Flatten", "classifier.1": "Affine", "classifier.2": "IF", "classifier.4": "Affine",
                     "output": "Output"}
    assert graph.metadata["reset"] == "subtract" and graph.metadata["spike_condition"] == "v >= v_threshold"
    assert graph.metadata["lossy"] == "none" and "direct" in graph.metadata["input_encoding"]
    first = graph.nodes["features.0.act"]
    theta = float(snn.get_submodule("features.0.act").threshold)
    c = snn.get_submodule("features.0.conv").out_channels
    assert first.v_threshold.shape == (c, 8, 8) and np.all(first.v_threshold == np.float32(theta))
    assert np.all(first.r == 1) and np.all(first.v_reset == 0)
    # The next conv's weights carry θ (one float32 product per weight); the first conv's are the SNN's.
    w2 = snn.get_submodule("features.2.conv").weight.detach()
    assert np.array_equal(graph.nodes["features.2.conv"].weight, (w2 * torch.tensor(theta)).numpy())
    assert np.array_equal(graph.nodes["features.0.conv"].weight, snn.get_submodule("features.0.conv").weight
                          .detach().numpy())
    hidden = float(snn.get_submodule("classifier.2").threshold)
    w4 = snn.get_submodule("classifier.4").weight.detach()
    assert np.array_equal(graph.nodes["classifier.4"].weight, (w4 * torch.tensor(hidden)).numpy())


def test_without_folding_the_file_computes_snnx_bit_for_bit(lenet, tmp_path):
    from snnx.export.nir import GraphRunner
    from snnx.sim import Simulator

    # A copy: the Simulator changes its network's memory format in place (and a deep copy loses the record).
    snn = snn_file.record(copy.deepcopy(lenet["snn"]).to(memory_format=torch.contiguous_format),
                          snn_file.conversion_of(lenet["snn"]))
    graph = nir.read(str(api.export_nir(snn, tmp_path / "s.nir", fold_thresholds=False).path))
    assert sum(isinstance(n, nir.Scale) for n in graph.nodes.values()) == 3
    # The reader's conv memory layout (contiguous) and its order of summing the readout (one step at a time):
    # every spike of every step the same, so the outputs too, bit for bit.
    batches = [(lenet["images"], lenet["labels"])]
    ours = Simulator(snn, device=torch.device("cpu"), memory_format="contiguous", chunk=1).run(
        batches, [T], keep_outputs=True, accounting=False).outputs[T]
    mine = GraphRunner(graph).run(lenet["images"], T)[-1] / T
    assert torch.equal(mine, ours)


def test_channel_wise_thresholds_are_per_neuron_arrays(lenet, tmp_path):
    model, config = lenet["model"], lenet["config"]
    snn = api.convert(model, config, method="channelnorm")
    made = api.export_nir(snn, tmp_path / "c.nir")
    graph = nir.read(str(made.path))
    theta = snn.get_submodule("features.2.act").threshold
    assert theta.dim() == 1 and theta.unique().numel() > 1
    node = graph.nodes["features.2.act"]
    assert node.v_threshold.shape == (theta.numel(), 4, 4)
    assert np.array_equal(node.v_threshold, theta.view(-1, 1, 1).expand(-1, 4, 4).numpy())
    # Through the flatten, channel c's θ multiplies its 2·2 positions' columns of the Linear.
    w = snn.get_submodule("classifier.1").weight.detach()
    assert np.array_equal(graph.nodes["classifier.1"].weight, (w * theta.repeat_interleave(4)[None, :]).numpy())
    from snnx.export.nir import GraphRunner

    ours = api.simulate(snn, lenet["test"], [T], keep_outputs=True, device="cpu").outputs[T]
    mine = GraphRunner(graph).run(lenet["images"], T)[-1] / T
    assert torch.equal(mine.argmax(1), ours.argmax(1))


# -- what NIR cannot express -----------------------------------------------------------------------------
def _neurons(theta: torch.Tensor) -> dict[str, tuple[Neuron, str, bool]]:
    """neuron name → (an instance, words its error names, whether a lossy export approximates it)."""
    return {
        "v_init": (IFNeuron(theta, v_init=0.5), "start potential v(0) = 0.5·θ", True),
        "shifted_if": (NEURONS.get("shifted_if").build(theta, horizon=None), "θ/(2T)", True),
        "cos_if": (NEURONS.get("cos_if").build(theta), "offset-spike calibration", True),
        "msat": (NEURONS.get("msat").build(theta), "adaptive threshold", True),
        "signed": (NEURONS.get("signed").build(theta, torch.ones_like(theta)), "signed ±1 spikes", False),
        "scatter_gather": (NEURONS.get("scatter_gather").build(3), "scatter-and-gather", False),
    }


@pytest.mark.parametrize("kind", ["v_init", "shifted_if", "cos_if", "msat", "signed", "scatter_gather"])
def test_what_nir_cannot_express_is_an_error_naming_layer_and_feature(lenet, tmp_path, kind):
    site = "features.2.act"
    theta = lenet["snn"].get_submodule(site).threshold
    neuron, words, approximable = _neurons(theta)[kind]
    snn = replaced(lenet["snn"], site, neuron)
    with pytest.raises(ConfigError) as err:
        api.export_nir(snn, tmp_path / "x.nir")
    text = str(err.value)
    assert err.value.key == "snnx.api.export_nir(snn=…)"
    assert f"layer {site} ({type(neuron).__name__})" in text and words in text
    assert ("lossy=True" in text) == approximable
    assert not (tmp_path / "x.nir").exists()
    if not approximable:  # no approximation exists: lossy changes nothing
        with pytest.raises(ConfigError, match="No approximation"):
            api.export_nir(snn, tmp_path / "x.nir", lossy=True, data=lenet["test"])


def test_lossy_export_warns_with_the_measured_accuracy_of_what_was_written(lenet, tmp_path):
    snn = lenet["snn"]
    sites = neuron_sites(snn)
    lossy = snn
    for site in sites:  # QCFS-style start potential θ/2 everywhere
        lossy = replaced(lossy, site, IFNeuron(snn.get_submodule(site).threshold, v_init=0.5))
    with pytest.warns(api.nir_export.LossyExportWarning, match=r"measured at T=32: .*% as exported") as caught:
        made = api.export_nir(lossy, tmp_path / "l.nir", lossy=True, data=lenet["test"], time_steps=T)
    assert len(caught) == 1 and "v(0) = 0.5·θ → v(0) = 0" in str(caught[0].message)
    assert [f.layer for f in made.approximations] == sites
    graph = nir.read(str(made.path))
    assert "v(0) = 0" in graph.metadata["lossy"]
    # What was written is the same network with v0 = 0: its measured accuracy is snnx's of that network,
    # and snnx's of the network asked for is reported beside it.
    assert made.accuracy[T] == pytest.approx(api.simulate(snn, lenet["test"], [T], device="cpu").accuracy[T])
    assert made.snnx_accuracy[T] == pytest.approx(api.simulate(lossy, lenet["test"], [T], device="cpu").accuracy[T])


# -- the API's arguments ----------------------------------------------------------------------------------
def test_api_argument_errors(lenet, tmp_path):
    snn = lenet["snn"]
    cases = [
        (dict(snn=nn.Linear(2, 2), path=tmp_path / "a.nir"), "snn", "no spiking neurons"),
        (dict(snn="snn.pt", path=tmp_path / "a.nir"), "snn", "torch.nn.Module"),
        (dict(snn=snn, path=3), "path", "file path"),
        (dict(snn=snn, path=tmp_path / "a.nir", lossy="yes"), "lossy", "True or False"),
        (dict(snn=snn, path=tmp_path / "a.nir", time_steps=0), "time_steps", "integer ≥ 1"),
        (dict(snn=snn, path=tmp_path / "a.nir", fold_thresholds=1), "fold_thresholds", "True or False"),
        (dict(snn=snn, path=tmp_path / "a.nir", input_shape=(1, 0, 8)), "input_shape", "positive sizes"),
        (dict(snn=snn, path=tmp_path), "path", "is a folder"),
    ]
    for kwargs, argument, words in cases:
        with pytest.raises(ConfigError) as err:
            api.export_nir(**kwargs)
        assert err.value.key == f"snnx.api.export_nir({argument}=…)", (argument, err.value.key)
        assert words in str(err.value)


def test_own_model_needs_input_shape_and_lossy_needs_data(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    snn = api.convert(model, method="maxnorm", calibration=torch.rand(32, 1, 4, 4))
    with pytest.raises(ConfigError, match="input_shape=") as err:
        api.export_nir(snn, tmp_path / "m.nir")
    assert err.value.key == "snnx.api.export_nir(input_shape=…)"
    made = api.export_nir(snn, tmp_path / "m.nir", input_shape=(1, 4, 4))
    assert [type(n).__name__ for n in made.graph.nodes.values()] == ["Input", "Flatten", "Affine", "IF", "Affine",
                                                                      "Output"]
    snn.get_submodule(neuron_sites(snn)[0]).v_init = 0.25
    with pytest.raises(ConfigError) as err:
        api.export_nir(snn, tmp_path / "m.nir", input_shape=(1, 4, 4), lossy=True)
    assert err.value.key == "snnx.api.export_nir(data=…)"
    images = torch.rand(20, 1, 4, 4)
    with pytest.warns(api.nir_export.LossyExportWarning):
        made = api.export_nir(snn, tmp_path / "m.nir", input_shape=(1, 4, 4), lossy=True,
                              data=(images, torch.zeros(20, dtype=torch.long)), time_steps=8)
    assert set(made.accuracy) == {8}


def test_missing_nir_package_says_how_to_install(monkeypatch, lenet, tmp_path):
    monkeypatch.setitem(sys.modules, "nir", None)  # `import nir` now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'snnx\[nir\]'"):
        api.export_nir(lenet["snn"], tmp_path / "n.nir")


# -- the CLI stage -----------------------------------------------------------------------------------------
@pytest.mark.slow  # long end to end (make test-full)
def test_cli_export_converts_or_reads_a_saved_snn(trained, tmp_path):
    done = snnx("export", "format=nir", *trained["args"], cwd=trained["cwd"])
    assert done.returncode == 0, done.stderr
    (run,) = [p for p in (trained["root"] / "runs").glob("*/*_export") if (p / "snn.nir").is_file()][-1:]
    graph = nir.read(str(run / "snn.nir"))
    assert sum(isinstance(n, nir.IF) for n in graph.nodes.values()) == 3
    assert (run / "export.json").is_file() and (run / "snn.pt").is_file()
    # The file the CLI wrote, run by snnTorch: snnx's predictions at T = 32 for every test image.
    saved = api.load_snn(run / "snn.pt")
    config = snn_file.conversion_of(saved).config
    test = api.build_dataset(config, "test")
    images = torch.stack([test[i][0] for i in range(len(test))])
    ours = api.simulate(saved, test, [T], keep_outputs=True, device="cpu").outputs[T]
    assert torch.equal(snntorch_outputs(graph, images, T).argmax(1), ours.argmax(1))
    # snn=<run>/snn.pt, to a path of one's own: the same graph.
    target = tmp_path / "out" / "lenet.nir"
    again = snnx("export", f"snn={run / 'snn.pt'}", f"export.path={target}", f"paths.root={trained['root']}",
                 cwd=trained["cwd"])
    assert again.returncode == 0, again.stderr
    copy = nir.read(str(target))
    assert all(np.array_equal(getattr(copy.nodes[k], "weight", 0), getattr(graph.nodes[k], "weight", 0))
               for k in graph.nodes)


@pytest.mark.slow  # four more CLI processes (~15 s); the API's tests above cover the same paths
def test_cli_lossy_export_and_errors_without_nir_or_for_another_format(trained, tmp_path):
    # A feature NIR cannot express: one paragraph, exit 2, the layer named.
    bad = snnx("export", *trained["args"], "convert=msat", cwd=trained["cwd"])
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    (line,) = bad.stderr.strip().splitlines()
    assert line.startswith("snnx: error: format: NIR cannot express layer features.0.act (MSATNeuron)")
    assert "export.lossy=true" in line
    # With export.lossy=true: written, with a warning and the accuracy measured.
    lossy = snnx("export", *trained["args"], "convert=msat", "export.lossy=true", "export.T=8", cwd=trained["cwd"])
    assert lossy.returncode == 0, lossy.stderr
    out = " ".join(lossy.stdout.split())
    assert "warning: the NIR graph approximates" in out and "measured on the test images at T=8" in out
    runs = sorted((trained["root"] / "runs").glob("*/*_export"))
    record = next(json.loads((r / "export.json").read_text()) for r in reversed(runs) if (r / "export.json").is_file())
    assert record["T"] == 8 and 0 <= record["nir_acc"] <= 100 and 0 <= record["snnx_acc"] <= 100
    assert len(record["approximations"]) == 3 and "θ_max" in record["approximations"][0]
    hidden = tmp_path / "hide"
    hidden.mkdir()
    (hidden / "nir.py").write_text("raise ImportError('nir is hidden for this test')\n")
    env = {**cli_env(), "PYTHONPATH": os.pathsep.join([str(hidden), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([*SNNX, "export", *trained["args"]], cwd=trained["cwd"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "pip install 'snnx[nir]'" in line
    other = snnx("export", "format=onnx", *trained["args"], cwd=trained["cwd"])
    assert other.returncode == 2 and "format" in other.stderr and "nir" in other.stderr
    assert "Traceback" not in other.stderr


class _OwnNet(nn.Module):
    """Sum pooling (divisor 1), x.reshape(x.size(0), -1) and torch.relu: other spellings the export reads."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.pool = nn.AvgPool2d(2, divisor_override=1)
        self.fc = nn.Linear(4 * 3 * 3, 5)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv(x)))
        return self.fc(x.reshape(x.size(0), -1))


def test_own_model_with_sum_pooling_and_channel_thresholds_round_trips(tmp_path):
    torch.manual_seed(1)
    images = torch.rand(64, 2, 6, 6)
    # Calibrated on other images: on its own calibration images a max-norm threshold meets the
    # largest input exactly, a tie that the two paths' conv roundings may break either way.
    snn = api.convert(_OwnNet(), method="channelnorm", calibration=torch.rand(64, 2, 6, 6))
    made = api.export_nir(snn, tmp_path / "own.nir", input_shape=(2, 6, 6))
    graph = nir.read(str(made.path))
    assert sorted(type(n).__name__ for n in graph.nodes.values()) == ["Affine", "Conv2d", "Flatten", "IF", "Input",
                                                                       "Output", "SumPool2d"]
    from snnx.export.nir import GraphRunner

    labels = torch.zeros(64, dtype=torch.long)
    ours = api.simulate(snn, (images, labels), [T], keep_outputs=True, device="cpu").outputs[T]
    mine = GraphRunner(graph).run(images, T)[-1] / T
    assert torch.equal(mine.argmax(1), ours.argmax(1)) and float((mine - ours).abs().max()) < 1e-4
