"""The component registries: one declaration per component, read by composition, validation and the stages."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from dataclasses import dataclass

import pandas as pd
import pytest
from hydra.core.config_store import ConfigStore

from snnx.activations.registry import ACTIVATIONS
from snnx.app import compose, precheck
from snnx.config import config_dir, registries
from snnx.convert.methods import METHODS, IFParams, any_act
from snnx.errors import ConfigError
from snnx.registry import declared_params, param
from snnx.validate import validate


def test_every_yaml_option_is_a_registered_entry_and_inherits_its_schema():
    for group, registry in registries().items():
        for path in sorted((config_dir() / group).glob("*.yaml")):
            cfg = compose("train", [f"{group}={path.stem}"])
            entry = registry.get(cfg[group].name)
            assert set(cfg[group].keys()) == set(entry.keys), path  # exactly the entry's keys, nothing else
        for entry in registry:
            for p in declared_params(entry.params):
                assert p.doc, f"{group}={entry.name}: {p.name} has no doc"


@pytest.mark.parametrize("overrides,key,listed", [
    (["convert=maxnorm", "convert.alpha=0.5"], "convert.alpha", "calib_size, calib_batch_size, maxpool, v_init"),
    (["act=clip", "act.L=4"], "act.L", "y_th, warmup_epochs"),
    (["act=qcfs", "act.shift=1"], "act.shift", "[0, 1)"),
    (["model=vgg16", "dataset=cifar10", "model.pool=conv"], "model.pool", "avg, max"),
])
def test_inapplicable_keys_and_values_fail_at_composition(overrides, key, listed, tmp_path):
    with pytest.raises(ConfigError) as info:
        precheck("train", [*overrides, f"paths.root={tmp_path}"])
    assert info.value.key == key and listed in str(info.value)
    assert not any(tmp_path.iterdir())  # failed before any work: nothing written under paths.root


def test_a_bad_key_fails_without_loading_torch():
    code = ("import sys\nfrom snnx.app import precheck\nfrom snnx.errors import ConfigError\n"
            "for args in (['convert=maxnorm', 'convert.alpha=0.5'], ['act=clip', 'act.L=4'], ['act=qcfs', 'act.shift=1'],"
            " ['model=vgg16', 'model.pool=conv']):\n"
            "    try:\n        precheck('train', args)\n    except ConfigError as exc:\n        print(exc.key)\n"
            "assert 'torch' not in sys.modules, 'torch was loaded'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["convert.alpha", "act.L", "act.shift", "model.pool"]


def test_a_preset_key_for_a_replaced_option_is_dropped_with_a_note():
    notes: list[str] = []
    cfg = compose("run", ["experiment=embedded_msat", "convert=maxnorm"])
    validate(cfg, check_paths=False, note=notes.append, explicit=lambda key: key == "convert")
    assert "confidence_last" not in cfg.convert
    assert any("convert.confidence_last=0.683" in n and "convert=maxnorm" in n for n in notes)
    # The same key on the command line is the user's: an error.
    cfg = compose("run", ["experiment=embedded_msat", "convert=maxnorm", "convert.confidence_last=0.5"])
    with pytest.raises(ConfigError) as info:
        validate(cfg, check_paths=False, note=None, explicit=lambda key: key in ("convert", "convert.confidence_last"))
    assert info.value.key == "convert.confidence_last"


@dataclass
class ScaledMaxParams(IFParams):
    name: str = param("toy_scaled", "the conversion method")
    scale: float = param(1.0, "θ = scale × the layer maximum", gt=0)


@pytest.fixture
def toy_method():
    calls = []

    @METHODS.register("toy_scaled", params=ScaledMaxParams, doc="a test's toy method: θ = scale·max",
                      needs_stats=True, accepts=any_act, accepts_doc="any ANN")
    def build(ann, *, stats, params):
        import torch

        from snnx.convert.graph import prepare, swap_activations
        from snnx.neurons import IFNeuron

        calls.append(dict(params))
        gm = prepare(ann, maxpool=params["maxpool"])
        theta = {name: torch.as_tensor(s["max"]).clamp_min(1e-6) * params["scale"] for name, s in stats.items()}
        return swap_activations(gm, lambda name, act: IFNeuron(theta[name], 0.0)), f"toy ×{params['scale']}"

    yield calls
    METHODS.unregister("toy_scaled")
    ConfigStore.instance().repo.get("convert", {}).pop("toy_scaled.yaml", None)


def test_a_toy_method_registered_in_a_test_runs_end_to_end(toy_method, tmp_path):
    from snnx.stages import run_stage

    overrides = ["dataset=digits", "model.width=0.25", "act=relu", "train=smoke", "convert=toy_scaled",
                 "convert.scale=0.9", "convert.calib_size=200", "sim.T=[1,8]", f"paths.root={tmp_path}"]
    with pytest.raises(ConfigError) as info:
        precheck("run", [*overrides, "convert.percentile=99"])  # its keys and no others
    assert info.value.key == "convert.percentile" and "scale" in str(info.value)
    cfg = precheck("run", overrides)[0]
    result = run_stage(cfg)
    assert toy_method and toy_method[-1]["scale"] == 0.9
    frame = pd.read_csv(next(tmp_path.rglob("results.csv")))
    assert list(frame["T"]) == [1, 8] and set(frame["convert"]) == {"toy_scaled"}
    assert frame["method"].str.startswith("toy ×0.9").all() and frame["acc"].between(0, 100).all()
    assert result is not None


def test_entries_declare_dataclass_params_with_a_name():
    for registry in registries().values():
        for entry in registry:
            assert dataclasses.is_dataclass(entry.params) and entry.defaults()["name"] in ("", entry.name)
            assert callable(entry.build)
    assert {"relu", "clip", "qcfs", "csqcfs", "quant"} <= set(ACTIVATIONS.names())
