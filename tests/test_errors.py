"""Bad input through the real CLI: exit status 2, one paragraph naming the key and the fix, nothing written.

Every case runs `snnx run <tiny setting> <bad overrides>` against a root that
already holds a trained ANN and a run directory, and checks that no file under
it was created, changed or removed (a few in a process of their own, the others
through the same entry point in this process).
"""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from conftest import TINY, snnx, snapshot
from snnx import cli
from snnx.app import precheck
from snnx.errors import ConfigError, DataError
from snnx.pipeline import _check_ckpt_matches

# (id, overrides, key the message must name, a phrase of the fix it must give)
CASES = [
    # unknown options and keys
    ("act-option", ["act=foo"], "act=foo", "Choose one of: clip"),
    ("act-option-typo", ["act=qcsf"], "act=qcsf", "Did you mean act=qcfs?"),
    ("model-option", ["model=resnet"], "model=resnet", "Choose one of:"),
    ("dataset-option", ["dataset=cifar11"], "dataset=cifar11", "Did you mean dataset=cifar10"),
    ("convert-option", ["convert=foo"], "convert=foo", "Choose one of:"),
    ("train-option", ["train=fast"], "train=fast", "Choose one of: default"),
    ("sim-option", ["sim=short"], "sim=short", "Choose one of: default"),
    ("table-option", ["table=nope"], "table=nope", "Choose one of:"),
    ("energy-option", ["energy=horowitz"], "energy=horowitz", "Did you mean energy=horowitz45?"),
    ("energy-key", ["energy.precision=fp16"], "energy.precision", "a key of energy=memory"),
    ("energy-precision", ["energy=memory", "energy.precision=fp64"], "energy.precision", "fp32, fp16, int8"),
    ("energy-tiers", ["energy=memory", "energy.access_pj=[10,20]"], "energy.buffer_bytes", "as many increasing"),
    ("launcher-option", ["hydra/launcher=foo"], "hydra/launcher=foo", "joblib"),
    ("act-key", ["act.foo=1"], "act.foo", "The keys of act=qcfs are"),
    ("train-key-typo", ["train.epoch=3"], "train.epoch", "Did you mean train.epochs?"),
    ("appended-key", ["+foo=1"], "foo", "The keys of the config are"),
    ("group-removed", ["~act"], "act", "act=<option>"),
    # wrong types
    ("epochs-type", ["train.epochs=abc"], "train.epochs", "e.g. train.epochs="),
    ("L-float", ["act.L=2.5"], "act.L", "e.g. act.L=4"),
    ("T-not-list", ["sim.T=abc"], "sim.T", "'sim.T=["),
    ("T-items", ["sim.T=[a,b]"], "sim.T", "'sim.T=["),
    ("bool-type", ["dataset.download=maybe"], "dataset.download", "true or false"),
    ("group-as-value", ["paths=foo"], "paths", "paths.root="),
    ("parse-error", ["sim.T=[1,2"], "sim.T", "quote lists"),
    # ranges
    ("L-zero", ["act.L=0"], "act.L", "act.L=4"),
    ("T-negative", ["sim.T=[-1,2]"], "sim.T", "positive integer"),
    ("T-zero", ["sim.T=[0]"], "sim.T", "positive integer"),
    ("T-empty", ["sim.T=[]"], "sim.T", "at least one"),
    ("percentile-0", ["act=relu", "convert=pnorm", "convert.percentile=0"], "convert.percentile", "99.99"),
    ("percentile-101", ["act=relu", "convert=pnorm", "convert.percentile=101"], "convert.percentile", "99.99"),
    ("k-negative", ["act=quant", "act.k=-1", "convert=maxnorm"], "act.k", "act.k"),
    ("confidence", ["act=relu", "convert=msat", "convert.confidence=1.5"], "convert.confidence", "confidence=1.0"),
    ("inapplicable", ["act=relu", "convert=maxnorm", "convert.confidence=1.0"], "convert.confidence",
     "The keys of convert=maxnorm are"),
    ("epochs-zero", ["train.epochs=0"], "train.epochs", "train.epochs=10"),
    ("lr-zero", ["train.lr=0"], "train.lr", "positive learning rate"),
    ("lr-negative", ["train.lr=-0.1"], "train.lr", "positive learning rate"),
    ("batch-zero", ["train.batch_size=0"], "train.batch_size", "batch size ≥ 1"),
    ("chunk-zero", ["sim.chunk=0"], "sim.chunk", "sim.chunk=auto"),
    ("limit-zero", ["dataset.limit_train=0"], "dataset.limit_train", "dataset.limit_train=null"),
    ("width-zero", ["model.width=0"], "model.width", "model.width=1.0"),
    ("optimizer", ["train.optimizer=rmsprop"], "train.optimizer", "sgd, adam"),
    ("device-tpu", ["device=tpu"], "device", "auto, cpu, cuda"),
    ("stage-override", ["stage=foo"], "stage", "snnx <stage>"),
    # combinations
    ("qcfs-needs-qcfs-act", ["convert=qcfs", "act=relu"], "convert / act", "Use act=qcfs"),
    ("cos-needs-qcfs-act", ["convert=cos", "act=clip"], "convert / act", "Use act=qcfs"),
    ("model-too-big", ["model=vgg16"], "model / dataset", "model=cifarnet"),
    ("poisson-allint", ["act=quant", "convert=allint", "sim.encoding=poisson"], "sim.encoding / convert",
     "sim.encoding=direct"),
    ("encoding-option", ["sim.encoding=rate"], "sim.encoding", "poisson"),
    # files
    ("cifar10-missing", ["dataset=cifar10", "model=cifarnet", "dataset.root={empty}"], "dataset.root",
     "cifar-10-batches-py"),
    ("ckpt-missing", ["ckpt={tmp}/nope.pt"], "ckpt", "leave ckpt unset"),
    ("ckpt-truncated", ["ckpt={tmp}/truncated.pt"], "ckpt", "intact checkpoint"),
    ("ckpt-not-snnx", ["ckpt={tmp}/weights.pt"], "ckpt", "written by `snnx train`"),
    ("ckpt-wrong-model", ["ckpt={tmp}/wrong_shapes.pt", "act=relu", "convert=maxnorm"], "ckpt",
     "written by `snnx train`"),
    ("ckpt-pickled-object", ["ckpt={tmp}/payload.pt"], "ckpt", "plain data"),
    ("ckpt-other-act", ["ckpt={model}", "act=qcfs", "convert=qcfs"], "ckpt / act", "act=relu"),
]
if not torch.cuda.is_available():
    CASES.append(("device-cuda", ["device=cuda"], "device", "device=cpu"))


class Payload:
    """Unpickling this creates a file: what a hostile checkpoint could do."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, trained):
    d = tmp_path_factory.mktemp("bad_files")
    (d / "empty").mkdir()
    good = trained["model"].read_bytes()
    (d / "truncated.pt").write_bytes(good[: len(good) // 2])
    torch.save({"weights": torch.zeros(3)}, d / "weights.pt")
    data = torch.load(trained["model"], weights_only=True)
    data["state_dict"] = {k: torch.zeros(1) for k in data["state_dict"]}
    torch.save(data, d / "wrong_shapes.pt")
    pwned = d / "PWNED"
    torch.save({"config": data["config"], "state_dict": data["state_dict"], "x": Payload(str(pwned))},
               d / "payload.pt")
    assert not pwned.exists()
    return {"tmp": d, "empty": d / "empty", "model": trained["model"], "pwned": pwned}


# Cases run as a user runs them, in a `snnx` process of their own; the others call the same entry point
# (snnx.cli.main) in this process, which is the same code without the ~2.5 s start-up of a process.
AS_A_PROCESS = {"T-zero", "ckpt-pickled-object", "cifar10-missing", "model-too-big", "device-cuda", "ckpt-truncated"}


def _run_cli(args: list[str], cwd, capsys, monkeypatch, own_process: bool) -> tuple[int, str]:
    if own_process:
        done = snnx(*args, cwd=cwd, timeout=120)
        return done.returncode, done.stderr
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    with pytest.raises(SystemExit) as ended:
        cli.main(list(args))
    return ended.value.code, capsys.readouterr().err


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_paragraph(case, trained, bad_files, capsys, monkeypatch):
    name, overrides, key, fix = case
    root = trained["root"]
    overrides = [o.format(**{k: str(v) for k, v in bad_files.items()}) for o in overrides]
    before = snapshot(root)
    code, err = _run_cli(["run", *TINY, *overrides, f"paths.root={root}"], trained["cwd"], capsys, monkeypatch,
                         own_process=name in AS_A_PROCESS)
    err = err.strip()
    assert code == 2, (code, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err  # one paragraph
    assert lines[0].startswith("snnx: error: ")
    assert key in lines[0], err
    assert fix in lines[0], err
    assert snapshot(root) == before, "a rejected command wrote under paths.root"
    assert not bad_files["pwned"].exists(), "the checkpoint's pickled payload ran"


def test_debug_true_shows_the_traceback(trained):
    done = snnx("run", *TINY, "act.L=0", "debug=true", f"paths.root={trained['root']}", cwd=trained["cwd"])
    assert done.returncode == 2
    assert "Traceback" in done.stderr and "ConfigError" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("snnx: error: act.L:")


def test_at_least_thirty_bad_inputs():
    assert len(CASES) >= 30


# -- in-process: the checks precheck makes before anything runs ---------------------------------------------
def test_a_single_time_step_is_a_list_of_one():
    assert [list(c.sim.T) for c in precheck("run", [*TINY, "sim.T=32"])] == [[32]]
    assert [list(c.sim.T) for c in precheck("run", [*TINY, "sim.T=[32]"])] == [[32]]
    # In a sweep, each value is one job's list.
    assert [list(c.sim.T) for c in precheck("run", ["-m", *TINY, "sim.T=4,8"])] == [[4], [8]]
    assert [list(c.sim.T) for c in precheck("run", ["-m", *TINY, "sim.T=[1,2],16"])] == [[1, 2], [16]]


def test_a_single_time_step_reaches_the_app(tmp_path):
    done = snnx("run", *TINY, "sim.T=32", "--cfg", "job", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert OmegaConf.create(done.stdout).sim.T == [32]


def test_info_prints_hydras_information(tmp_path):
    done = snnx("run", "--info", f"paths.root={tmp_path / 'root'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Hydra" in done.stdout and "Defaults List" in done.stdout and "Config search path" in done.stdout
    assert not (tmp_path / "root").exists()


def test_a_sweep_without_m_says_to_add_it():
    with pytest.raises(ConfigError) as info:
        precheck("run", [*TINY, "act.L=2,4,8"])
    assert str(info.value).startswith("act.L: ") and "snnx run -m act.L=2,4,8" in str(info.value)


def test_ckpt_options_the_command_did_not_choose_come_from_the_checkpoint(trained, capsys):
    (cfg,) = precheck("simulate", [f"ckpt={trained['model']}", "convert=maxnorm", "sim.T=[1]",
                                   "dataset.limit_test=50", f"paths.root={trained['root']}"])
    # The checkpoint is a ReLU LeNet on digits; the defaults (mnist5k, qcfs) gave way to it.
    assert (cfg.dataset.name, cfg.model.name, cfg.act.name) == ("digits", "lenet", "relu")
    assert cfg.dataset.limit_test == 50  # the command line's key of the replaced section stays
    assert "dataset=digits act=relu taken from the checkpoint" in capsys.readouterr().out


def test_ckpt_mismatches_are_named_in_one_error(trained):
    with pytest.raises(ConfigError) as info:
        precheck("simulate", [f"ckpt={trained['model']}", "dataset=mnist5k", "model=lenet", "act=qcfs",
                              f"paths.root={trained['root']}"])
    assert info.value.key == "ckpt / dataset / act"
    assert "trained with dataset=digits act=relu but this run asks for dataset=mnist5k act=qcfs" in str(info.value)
    # The stage's own check (a config given from Python) names them all as well.
    with pytest.raises(ConfigError) as info:
        _check_ckpt_matches({"dataset": {"name": "mnist5k"}, "model": {"name": "vgg16"}, "act": {"name": "qcfs"}},
                            {"dataset": {"name": "digits"}, "model": {"name": "lenet"}, "act": {"name": "relu"}})
    assert info.value.key == "ckpt / dataset / model / act"
    assert "Add dataset=digits model=lenet act=relu" in str(info.value)


def test_table_sweep_dir_is_named_when_it_holds_no_results(tmp_path):
    (tmp_path / "empty").mkdir()
    for where, phrase in ((tmp_path / "nope", "there is no folder"), (tmp_path / "empty", "no results.csv")):
        with pytest.raises(ConfigError) as info:
            precheck("table", [f"table.sweep_dir={where}", f"paths.root={tmp_path / 'root'}"])
        assert info.value.key == "table.sweep_dir" and phrase in str(info.value)
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("dataset,folder", [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")])
def test_a_cifar_root_inside_the_archive_folder_says_use_the_parent(tmp_path, dataset, folder):
    inside = tmp_path / folder
    inside.mkdir()
    with pytest.raises(DataError) as info:
        precheck("run", [f"dataset={dataset}", "model=cifarnet", f"dataset.root={inside}"])
    assert info.value.key == "dataset.root"
    assert f"use the parent folder, dataset.root={tmp_path}" in str(info.value)
    # A root that is simply empty gets the usual advice.
    with pytest.raises(DataError) as info:
        precheck("run", [f"dataset={dataset}", "model=cifarnet", f"dataset.root={inside}/elsewhere"])
    assert "parent folder" not in str(info.value) and f"contains {folder}/" in str(info.value)
