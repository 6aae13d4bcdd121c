"""CS-QCFS two-stage training (Yang et al. 2025, Alg. 1) and the act.grad_window key (Eqs. 19–20).

Composition and one tiny two-stage run (digits LeNet, one epoch per stage, a few seconds on CPU).
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from snnx.activations import CSQCFS, QCFS
from snnx.app import compose
from snnx.artifacts import ann_key
from snnx.errors import ConfigError
from snnx.pipeline import ensure_ann, stage_one_config
from snnx.stages import plain_config
from snnx.validate import validate

from conftest import TINY


def _config(*overrides: str) -> dict:
    return plain_config(validate(compose("train", [*TINY, *overrides]), check_paths=False, note=None))


def test_grad_window_auto_resolves_per_act_and_enters_the_ann_key():
    assert _config("act=csqcfs")["act"]["grad_window"] == "shifted"  # Eqs. 19–20
    assert _config("act=cqcfs")["act"]["grad_window"] == "shifted"
    assert _config("act=sqcfs")["act"]["grad_window"] == "shifted"
    assert _config("act=qcfs")["act"]["grad_window"] == "clip"  # the QCFS reference code's [0, λ]
    assert ann_key(_config("act=csqcfs")) == ann_key(_config("act=csqcfs", "act.grad_window=shifted"))
    assert ann_key(_config("act=csqcfs")) != ann_key(_config("act=csqcfs", "act.grad_window=clip"))
    assert ann_key(_config("act=qcfs")) != ann_key(_config("act=qcfs", "act.grad_window=shifted"))


@pytest.mark.parametrize("overrides", [["act=csqcfs", "act.grad_window=wide"], ["act=relu", "act.grad_window=shifted"],
                                       ["act=clip", "act.grad_window=clip"]])
def test_bad_grad_window_names_the_key(overrides):
    with pytest.raises(ConfigError) as e:
        _config(*overrides)
    assert e.value.key == "act.grad_window" and e.value.fix


def test_two_stage_needs_a_qcfs_family_act():
    with pytest.raises(ConfigError) as e:
        _config("act=relu", "train=two_stage")
    assert e.value.key == "train.two_stage"


def test_stage_one_keeps_the_window_and_layer_and_channel_runs_share_it():
    # Table 4: the layer-wise (act=qcfs) and channel-wise (act=csqcfs) two-stage rows fine-tune one stage-1 ANN.
    cs = _config("act=csqcfs", "train=two_stage", "act.init_threshold=4")
    layer = _config("act=qcfs", "train=two_stage", "act.init_threshold=4", "act.grad_window=shifted")
    one = stage_one_config(cs)
    assert one["act"]["name"] == "qcfs" and one["act"]["grad_window"] == "shifted"
    assert not one["act"]["channelwise"] and not one["act"]["softplus"] and not one["train"]["two_stage"]
    assert ann_key(one) == ann_key(stage_one_config(layer))
    assert ann_key(cs) != ann_key(layer) != ann_key(one)


def test_two_stage_qcfs_fine_tunes_the_layer_wise_quantiser_at_the_lower_rate(tmp_path):
    config = _config("act=qcfs", "act.grad_window=shifted", "train=two_stage", "train.epochs=1",
                     "train.finetune_epochs=1", "dataset.limit_train=256", "train.threshold_lr_scale=1",
                     f"paths.root={tmp_path}")
    ann = ensure_ann(config, torch.device("cpu"))
    acts = [m for m in ann.model.modules() if isinstance(m, (QCFS, CSQCFS))]
    assert acts and all(type(m) is QCFS and m.grad_window == "shifted" for m in acts)  # no swap
    stage_one = ensure_ann(stage_one_config(config), torch.device("cpu"))  # the cached stage 1
    assert ann.metrics["stage1_key"] == stage_one.key
    first = pd.read_csv(stage_one.path.parent / "train.csv")["lr"].iloc[0]
    second = pd.read_csv(ann.path.parent / "finetune.csv")["lr"].iloc[0]
    assert second == pytest.approx(first * config["train"]["finetune_lr_scale"], rel=1e-12)
    # stage 2 trained from stage 1's weights: something moved, the layout did not
    before, after = stage_one.model.state_dict(), ann.model.state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
