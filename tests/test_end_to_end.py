"""Every act × convert combination through the real stages, on a tiny setting."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from snnx.app import compose
from snnx.errors import ConfigError
from snnx.stages import run as run_stage
from snnx.validate import validate

from snnx.activations.registry import ACTIVATIONS
from snnx.convert.methods import METHODS

ACTS = ACTIVATIONS.names()
# MSAT and the all-integer SNN have end-to-end tests of their own (test_msat.py, test_allint.py).
CONVERTS = [name for name in METHODS.names() if name not in ("msat", "allint")]


def should_work(act: str, conv: str, variant: str = "TS") -> bool:
    entry = METHODS.get(conv)
    return entry.trait("accepts")(ACTIVATIONS.get(act), {**entry.defaults(), "variant": variant})


TINY = ["dataset=digits", "model=lenet", "model.width=0.25", "train=smoke", "train.epochs=5", "train.batch_size=32", "sim.T=[1,4,16]",
        "convert.calib_size=200", "sim.batch_size=200"]


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory):
    # One artifact cache for the module: each act's ANN is trained once and reused.
    return tmp_path_factory.mktemp("snnx-e2e")


@pytest.mark.parametrize("act,conv", list(itertools.product(ACTS, CONVERTS)))
def test_act_convert_combination(act, conv, shared_root):
    overrides = [*TINY, f"act={act}", f"convert={conv}", f"paths.root={shared_root}"]
    cfg = compose("run", overrides)
    if not should_work(act, conv):
        with pytest.raises(ConfigError) as info:
            validate(cfg)
        assert "act" in str(info.value) and "convert" in str(info.value)
        return
    validate(cfg)
    result = run_stage.run(cfg)
    frame = result["results"]
    assert list(frame["T"]) == [1, 4, 16]
    assert frame["acc"].between(0, 100).all()
    assert (frame["conversion_loss"] == frame["ann_acc"] - frame["acc"]).all()
    # Above chance by T = 16 for every method on this easy task.
    assert frame.loc[frame["T"] == 16, "acc"].item() > 50.0
    written = pd.read_csv(f"{result['run_dir']}/results.csv")
    assert len(written) == 3


@pytest.mark.slow  # long end to end (make test-full)
def test_maxnorm_lenet_mnist5k_reaches_the_ann_at_large_T(tmp_path):
    cfg = compose("run", ["act=relu", "convert=maxnorm", "train=smoke", "sim.T=[32,128]", "dataset.limit_test=500",
                          "model.width=0.5",
                          f"paths.root={tmp_path}"])
    validate(cfg)
    frame = run_stage.run(cfg)["results"]
    ann_acc = frame["ann_acc"].iloc[0]
    assert ann_acc > 85.0
    assert abs(frame.loc[frame["T"] == 128, "acc"].item() - ann_acc) <= 2.0
