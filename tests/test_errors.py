"""Bad input through the real CLI: exit status 2, one paragraph naming the key and the fix, nothing written.

Every case runs `snnx run <tiny setting> <bad overrides>` against a root that
already holds a trained ANN and a run directory, and checks that no file under
it was created, changed or removed.
"""

from __future__ import annotations

import pytest
import torch

from conftest import TINY, snnx, snapshot

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
    ("launcher-option", ["hydra/launcher=foo"], "hydra/launcher=foo", "joblib"),
    ("act-key", ["act.foo=1"], "act.foo", "The keys of act=qcfs are"),
    ("train-key-typo", ["train.epoch=3"], "train.epoch", "Did you mean train.epochs?"),
    ("appended-key", ["+foo=1"], "foo", "The keys of the config are"),
    ("group-removed", ["~act"], "act", "act=<option>"),
    # wrong types
    ("epochs-type", ["train.epochs=abc"], "train.epochs", "e.g. train.epochs="),
    ("L-float", ["act.L=2.5"], "act.L", "e.g. act.L=4"),
    ("T-not-list", ["sim.T=4"], "sim.T", "'sim.T=["),
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


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_paragraph(case, trained, bad_files):
    name, overrides, key, fix = case
    root = trained["root"]
    overrides = [o.format(**{k: str(v) for k, v in bad_files.items()}) for o in overrides]
    before = snapshot(root)
    done = snnx("run", *TINY, *overrides, f"paths.root={root}", cwd=trained["cwd"], timeout=120)
    err = done.stderr.strip()
    assert done.returncode == 2, (done.returncode, err)
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
