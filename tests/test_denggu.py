"""Deng & Gu 2021 training recipe: the presets' App. A.1 values, the ReLU warm-up, train.init_from.

Tiny LeNets on digits (a few seconds each); the presets are composed, never trained.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from snnx.app import compose
from snnx.errors import CheckpointError, ConfigError
from snnx.pipeline import build_model, ensure_ann, init_from_source, output_layer
from snnx.stages import plain_config, resolve_init_from
from snnx.app import explicit_keys
from snnx.validate import validate

from conftest import TINY, cache_dirs

CPU = torch.device("cpu")
CLIP = [*TINY, "act=clip", "convert=shift", "dataset.limit_train=256"]


def _original_hooks():
    from snnx.pipeline import _epoch_hooks

    return _epoch_hooks


_EPOCH_HOOKS = _original_hooks()


class Stopped(Exception):
    """The test's stand-in for a kill between two epochs."""


def _config(*overrides: str, root=None) -> dict:
    extra = [f"paths.root={root}"] if root is not None else []
    return plain_config(validate(compose("train", [*CLIP, *overrides, *extra]), check_paths=False, note=None))


# -- the presets ----------------------------------------------------------------------------------
def test_done_when_the_vgg16_preset_composes_to_app_a1():
    cfg = validate(compose("run", ["experiment=denggu_cifar10_vgg16"]), check_paths=False, note=None)
    tr = cfg.train
    assert (tr.lr, tr.epochs, list(tr.milestones), tr.gamma, tr.schedule) == (0.01, 300, [180, 240, 270], 0.1, "step")
    assert (tr.batch_size, tr.optimizer, tr.momentum, tr.weight_decay) == (128, "sgd", 0.9, 5e-4)
    assert cfg.act.warmup_epochs == 20 and cfg.act.y_th == 1.0
    assert (cfg.model.dropout.conv, cfg.model.dropout.fc, cfg.model.batch_norm) == (0.2, 0.5, False)
    assert cfg.model.init == "denggu" and cfg.model.pool == "avg"


@pytest.mark.parametrize("net", ["vgg16", "resnet20"])
def test_cifar100_presets_start_from_the_cifar10_preset_of_the_same_net(net):
    c100 = compose("run", [f"experiment=denggu_cifar100_{net}"])
    c10 = compose("run", [f"experiment=denggu_cifar10_{net}"])
    assert c100.train.init_from == f"experiment:denggu_cifar10_{net}" and c10.train.init_from is None
    assert (c100.act.y_th, c10.act.y_th) == (2.0, 1.0)  # §7.1
    assert c100.model.name == c10.model.name


# -- the ReLU warm-up -----------------------------------------------------------------------------
def _record_warmup(monkeypatch, stop_at: int | None = None) -> list:
    """Wrap the pipeline's epoch hook: note each epoch's Clip mode; optionally stop before epoch ``stop_at``."""
    import snnx.pipeline as pipeline

    seen: list = []
    real = _EPOCH_HOOKS

    def hooks(config):
        hook = real(config)

        def before_epoch(model, epoch):
            if stop_at is not None and epoch == stop_at:
                raise Stopped(f"stopped before epoch {epoch + 1}")
            hook(model, epoch)
            seen.append({m.relu_warmup for m in model.modules() if hasattr(m, "relu_warmup")})
        return before_epoch
    monkeypatch.setattr(pipeline, "_epoch_hooks", hooks)
    return seen


def test_warmup_trains_plain_relu_then_the_threshold_with_one_lr_schedule(tmp_path, monkeypatch):
    seen = _record_warmup(monkeypatch)
    overrides = ["act.warmup_epochs=2", "train.epochs=3", "train.schedule=step", "train.milestones=[1,2]",
                 "train.gamma=0.5", "train.lr=0.04"]
    ensure_ann(_config(*overrides, root=tmp_path), CPU)
    assert seen == [{True}, {True}, {False}]  # App. A.1: regular ReLU for the first N epochs, then the threshold
    (directory,) = cache_dirs(tmp_path)
    lrs = pd.read_csv(directory / "train.csv")["lr"].tolist()
    assert lrs == pytest.approx([0.04, 0.02, 0.01])  # the step schedule runs on across the switch


def test_resume_in_the_middle_of_the_warmup_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    overrides = ["act.warmup_epochs=2", "train.epochs=3"]
    _record_warmup(monkeypatch, stop_at=1)
    with pytest.raises(Stopped):
        ensure_ann(_config(*overrides, root=tmp_path / "cut"), CPU)
    seen = _record_warmup(monkeypatch)
    resumed = ensure_ann(_config(*overrides, root=tmp_path / "cut"), CPU).model.state_dict()
    assert seen == [{True}, {False}]  # epochs 2 and 3: still warming up, then clipping
    clean = ensure_ann(_config(*overrides, root=tmp_path / "clean"), CPU).model.state_dict()
    for name in clean:
        assert torch.equal(resumed[name], clean[name]), name


def test_warmup_must_leave_epochs_for_the_threshold():
    with pytest.raises(ConfigError, match="act.warmup_epochs"):
        validate(compose("train", [*CLIP, "act.warmup_epochs=1", "train.epochs=1"]), check_paths=False, note=None)


# -- train.init_from ----------------------------------------------------------------------------
def _source_file(tmp_path, num_classes: int = 7, width: float = 0.25) -> tuple:
    """A bare state_dict of a LeNet on 8×8 images with another number of classes."""
    from snnx.activations import make_act_factory
    from snnx.models import create_model

    torch.manual_seed(123)
    model = create_model("lenet", in_channels=1, image_size=8, num_classes=num_classes, act_factory=make_act_factory("clip"),
                         width=width, batch_norm=True, pool="avg")
    path = tmp_path / "source.pt"
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


def test_init_from_a_checkpoint_copies_everything_but_the_output_layer(tmp_path):
    path, source = _source_file(tmp_path)
    config = _config(f"train.init_from={path}")
    fresh = build_model(config)
    model = build_model(config)
    model.load_state_dict(fresh.state_dict())
    skip = init_from_source(model, config, CPU)
    assert skip == output_layer(model)
    state = model.state_dict()
    copied = [k for k in state if not k.startswith(skip + ".")]
    assert copied and all(torch.equal(state[k], source[k]) for k in copied)
    for k in state:
        if k.startswith(skip + "."):  # the output layer keeps its own (seeded) initialisation
            assert torch.equal(state[k], fresh.state_dict()[k]) and state[k].shape != source[k].shape


def test_init_from_a_preset_uses_its_cached_ann_and_its_key(tmp_path):
    carried = ["model.width=0.25", "train.epochs=1", "dataset.limit_train=256"]
    from omegaconf import OmegaConf

    cfg = validate(compose("train", [*CLIP, "train.init_from=experiment:embedded_denggu_digits",
                                     f"paths.root={tmp_path}"]), check_paths=False, note=None)
    config = resolve_init_from(OmegaConf.to_container(cfg, resolve=True), carried)  # what plain_config does in a run
    source = config["_init_from"]
    assert source["dataset"]["name"] == "digits" and source["act"]["y_th"] == 2.0  # the preset's own values
    assert source["model"]["width"] == 0.25 and source["train"]["epochs"] == 1  # the run's overrides
    assert source["paths"]["root"] == str(tmp_path)
    source_ann = ensure_ann(source, CPU)
    ann = ensure_ann(config, CPU)
    from snnx.artifacts import ann_key_payload

    assert ann_key_payload(config)["train"]["init_from"] == {"ann_key": source_ann.key}
    assert {d.name for d in cache_dirs(tmp_path)} == {source_ann.key, ann.key}  # the source trained once
    model = build_model(config)
    init_from_source(model, config, CPU)
    skip = output_layer(model)
    for name, value in model.state_dict().items():
        if not name.startswith(skip + "."):
            assert torch.equal(value, source_ann.model.state_dict()[name]), name


def test_init_from_is_in_the_ann_key_by_content(tmp_path):
    from snnx.artifacts import ann_key, ann_key_payload

    path, _ = _source_file(tmp_path)
    copy = tmp_path / "elsewhere.pt"
    copy.write_bytes(path.read_bytes())
    plain = _config()
    assert "init_from" not in ann_key_payload(plain)["train"]  # older cache keys are unchanged
    keys = {ann_key(_config(f"train.init_from={p}")) for p in (path, copy)}
    assert len(keys) == 1 and ann_key(plain) not in keys  # the same content, wherever it lies
    _source_file(tmp_path, num_classes=5)  # new content under the same name
    assert ann_key(_config(f"train.init_from={path}")) not in keys


def test_init_from_errors_name_the_key(tmp_path):
    path, _ = _source_file(tmp_path, width=0.5)
    with pytest.raises(ConfigError, match="train.init_from") as err:
        init_from_source(build_model(_config(f"train.init_from={path}")), _config(f"train.init_from={path}"), CPU)
    assert "is (" in str(err.value) and "model.width" in str(err.value)
    with pytest.raises(CheckpointError, match="train.init_from"):
        validate(compose("train", [*CLIP, f"train.init_from={tmp_path / 'absent.pt'}"]), note=None)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="train.init_from"):
        init_from_source(build_model(_config()), {**_config(), "train": {**_config()["train"],
                                                                          "init_from": str(broken)}}, CPU)
    with pytest.raises(ConfigError, match="train.init_from"):
        validate(compose("train", [*CLIP, "train.init_from=experiment:denggu_cifar10_vgg61"]), note=None)


def test_presets_that_start_from_each_other_in_a_circle_are_refused(monkeypatch):
    import snnx.stages as stages

    def compose_source(name, overrides):
        other = "b" if name == "a" else "a"
        return {"train": {"init_from": f"experiment:{other}"}}
    monkeypatch.setattr(stages, "_compose_source", compose_source)
    with pytest.raises(ConfigError, match="circle"):
        resolve_init_from({"train": {"init_from": "experiment:a"}, "paths": {"root": "x"}, "device": "cpu"})


# -- App. A.2: the constant shift θ/1600 ---------------------------------------------------------
def _shifted_lenet(shift_T):
    from torch import nn

    from snnx.convert.graph import activation_sites
    from snnx.convert import convert
    from snnx.models import create_model

    torch.manual_seed(0)
    ann = create_model("lenet", in_channels=1, image_size=8, num_classes=3, act_factory=lambda c: nn.ReLU(),
                       width=0.25, batch_norm=False).eval()
    sites = [name for name, _ in activation_sites(ann)]
    thetas = {name: 0.5 + 0.75 * i for i, name in enumerate(sites)}
    stats = {name: {"max": theta} for name, theta in thetas.items()}
    snn, _ = convert(ann, method="shift", stats=stats, convert={"variant": "TS", "shift_T": shift_T})
    return snn, thetas


def test_a2_constant_shift_is_theta_over_1600_at_every_T_and_skips_the_output_layer():
    """App. A.2: "the shift operation is shifting constant V_th/1600, except for the output layer"."""
    from torch import nn

    from snnx.neurons import Neuron, ShiftedIFNeuron

    cfg = compose("run", ["experiment=denggu_cifar10_vgg16", "convert.shift_T=800"])
    validate(cfg, check_paths=False, note=None)
    snn, thetas = _shifted_lenet(cfg.convert.shift_T)
    neurons = {name: m for name, m in snn.named_modules() if isinstance(m, Neuron)}
    assert sorted(neurons) == sorted(thetas)  # one neuron per hidden activation, none after the output layer
    for name, neuron in neurons.items():
        assert isinstance(neuron, ShiftedIFNeuron) and not neuron.depends_on_T
        for T in (16, 400, 512, 600):
            neuron.set_horizon(T)  # what the engine does per T: a fixed horizon ignores it
            shift = float(neuron.charge(torch.zeros(1), torch.zeros(1)))
            assert shift == pytest.approx(thetas[name] / 1600, rel=1e-6), (name, T)
    # The output layer is the last Linear, whose accumulated output is the readout: no neuron applies to it.
    modules = dict(snn.named_modules())
    (output,) = [n for n in snn.graph.nodes if n.op == "output"]
    readout = output.args[0]
    assert readout.op == "call_module" and isinstance(modules[readout.target], nn.Linear)


def test_shift_T_applies_only_to_a_shift():
    def check(overrides):  # as the CLI does: the command line's keys are the user's, the preset's may be dropped
        validate(compose("run", overrides), check_paths=False, note=None, explicit=explicit_keys(overrides))

    with pytest.raises(ConfigError, match="convert.shift_T"):
        check(["experiment=denggu_cifar10_vgg16", "convert.variant=T", "convert.shift_T=800"])
    with pytest.raises(ConfigError, match="convert.shift_T"):
        check(["experiment=denggu_cifar10_vgg16", "act=relu", "convert=maxnorm", "convert.shift_T=800"])
    for variant, act in (("S", "relu"), ("TS", "clip")):
        check(["experiment=denggu_cifar10_vgg16", f"act={act}", f"convert.variant={variant}", "convert.shift_T=800"])
