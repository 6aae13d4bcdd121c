"""The dataset registry: each dataset declares itself once (snnx/data/sets/<name>.py)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from snnx.data import build_dataset, check_dataset_files, dataset_info, dataset_params
from snnx.data.info import DatasetInfo
from snnx.data.params import DatasetParams
from snnx.data.registry import DATASETS
from snnx.errors import ConfigError, DataError
from snnx.registry import declared_params

ROOT = Path(__file__).resolve().parents[1]

# The flat schema every dataset shared before each declared its own keys (snnx.config.DatasetConfig):
# a key a dataset declares keeps its default from there.
FLAT_DEFAULTS = {"root": "${oc.env:SNNX_DATA,data}", "download": False, "augment": True, "autoaugment": False,
                 "cutout": 0, "crop": None, "flip": True, "limit_train": None, "limit_test": None, "num_workers": 0}
COMMON = {"name", "root", "download", "augment", "limit_train", "limit_test", "num_workers"}
# Which of the other keys apply where: augmentation keys on the file-backed image sets, crop on CIFAR,
# the flip on the sets whose augmentation has one.
EXTRA = {"digits": set(), "mnist5k": set(), "mnist": {"autoaugment", "cutout"},
         "cifar10": {"autoaugment", "cutout", "crop", "flip"}, "cifar100": {"autoaugment", "cutout", "crop", "flip"},
         "imagenet": {"autoaugment", "cutout", "flip"}}
INFOS = {  # name: (in_channels, image_size, num_classes, mean, std)
    "digits": (1, 8, 10, (0.3054,), (0.3761,)),
    "mnist5k": (1, 28, 10, (0.1307,), (0.3081,)),
    "mnist": (1, 28, 10, (0.1307,), (0.3081,)),
    "cifar10": (3, 32, 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": (3, 32, 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": (3, 224, 1000, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def test_every_dataset_declares_its_info_keys_and_defaults():
    assert sorted(DATASETS.names()) == sorted(INFOS)
    for entry in DATASETS:
        info = entry.trait("info")
        assert isinstance(info, DatasetInfo) and info.name == entry.name
        assert dataclasses.astuple(info)[1:] == INFOS[entry.name]
        assert dataset_info(entry.name) is info
        assert set(entry.keys) == COMMON | EXTRA[entry.name], entry.name
        assert issubclass(entry.params, DatasetParams)
        defaults = entry.defaults()
        assert {k: defaults[k] for k in entry.keys if k != "name"} == \
            {k: FLAT_DEFAULTS[k] for k in entry.keys if k != "name"}, entry.name
        for p in declared_params(entry.params):
            assert p.doc, f"dataset.{p.name} of {entry.name} has no doc"
        assert entry.doc
        assert entry.trait("embedded", False) == (entry.trait("check_present") is None), entry.name


def test_the_yaml_of_each_dataset_inherits_its_schema_and_sets_only_its_keys():
    files = sorted((ROOT / "conf" / "dataset").glob("*.yaml"))
    assert sorted(f.stem for f in files) == sorted(DATASETS.names())
    for path in files:
        text = path.read_text()
        assert text.startswith(f"defaults:\n  - /schema/dataset@_here_: {path.stem}\n  - _self_\n"), path
        data = yaml.safe_load(text)
        assert set(data) - {"defaults"} <= set(DATASETS.get(path.stem).keys), path


@pytest.mark.parametrize("env", [None, "/srv/datasets", ""])
def test_a_section_without_root_resolves_its_default_as_composing_does(monkeypatch, env):
    from omegaconf import OmegaConf

    if env is None:
        monkeypatch.delenv("SNNX_DATA", raising=False)
    else:
        monkeypatch.setenv("SNNX_DATA", env)
    composed = OmegaConf.create({"root": FLAT_DEFAULTS["root"]}).root  # OmegaConf's own oc.env resolver
    assert dataset_params("cifar10")["root"] == composed == ("data" if env is None else env)


def test_importing_the_registry_loads_no_torch():
    code = ("import sys, snnx.data.registry, snnx.data; from snnx.data.registry import DATASETS; names = DATASETS.names(); "
            "snnx.data.dataset_info('cifar10', 24); snnx.data.dataset_params({'name': 'cifar10', 'cutout': 16}); "
            "assert len(names) >= 6, names; "
            "heavy = [m for m in ('torch', 'torchvision', 'numpy') if m in sys.modules]; assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr


def test_cifar_file_lists_are_torchvisions():
    """The presence check and the MD5-free loader read the same file names as torchvision's own classes."""
    from torchvision import datasets as tvd

    from snnx.data.sets import cifar10, cifar100
    from snnx.data.vision import without_md5

    for files, archive in ((cifar10.FILES, tvd.CIFAR10), (cifar100.FILES, tvd.CIFAR100)):
        assert files.folder == archive.base_folder
        assert list(files.files) == [f for f, _ in archive.train_list + archive.test_list] + [archive.meta["filename"]]
        present = without_md5(archive)
        assert issubclass(present, archive) and present.meta["md5"] is None
        assert all(md5 is None for _, md5 in present.train_list + present.test_list)


def test_unknown_keys_ranges_and_fits_are_config_errors():
    with pytest.raises(ConfigError) as err:
        dataset_params({"name": "digits", "cutout": 4})
    assert err.value.key == "dataset.cutout"
    assert "dataset=digits" in str(err.value) and "limit_train" in str(err.value) and "cifar10" in str(err.value)
    for values, key in (({"name": "cifar10", "crop": 33}, "dataset.crop"), ({"name": "cifar10", "crop": 0}, "dataset.crop"),
                        ({"name": "cifar100", "crop": 2.5}, "dataset.crop"), ({"name": "mnist", "cutout": 28}, "dataset.cutout"),
                        ({"name": "imagenet", "cutout": -1}, "dataset.cutout"), ({"name": "mnist", "limit_train": 0}, "dataset.limit_train"),
                        ({"name": "digits", "num_workers": -1}, "dataset.num_workers"), ({"name": "mnist", "flip": False}, "dataset.flip"),
                        ({"name": "cifar10", "autoaugment": "yes"}, "dataset.autoaugment")):
        with pytest.raises(ConfigError) as err:
            dataset_params(values)
        assert err.value.key == key, values
    # The largest that fits, and the crop's own check, pass.
    assert DATASETS.check({"name": "cifar10", "crop": 32, "cutout": 31})["crop"] == 32
    assert dataset_info("cifar100", 16).image_size == 16


def test_an_old_flat_section_builds_the_same_dataset():
    """A checkpoint's config from before each dataset had its own keys carries every key at its default."""
    old = {"name": "digits", **{k: v for k, v in FLAT_DEFAULTS.items() if k != "root"}, "root": "data"}
    a, b = build_dataset(old, "test"), build_dataset("digits", "test")
    assert torch.equal(a.data, b.data) and torch.equal(a.targets, b.targets)
    with pytest.raises(ConfigError) as err:  # a value that would change something is still an error
        build_dataset({**old, "cutout": 8}, "test")
    assert err.value.key == "dataset.cutout"


# -- presence checks: the same DataError as the loader's, before any work starts --------------------


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100"])
def test_presence_check_says_what_the_loader_says(tmp_path, name):
    with pytest.raises(DataError) as before:
        check_dataset_files({"name": name, "root": str(tmp_path), "download": False})
    with pytest.raises(DataError) as loading:
        build_dataset({"name": name, "root": str(tmp_path)}, "test")
    assert str(before.value) == str(loading.value)
    assert before.value.key == "dataset.root" and "none of them is there" in str(before.value)
    check_dataset_files({"name": name, "root": str(tmp_path), "download": True})  # the loader fetches them


def test_presence_check_lists_what_is_missing(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for f in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_5", "test_batch", "batches.meta"):
        (folder / f).touch()
    with pytest.raises(DataError, match=r"; missing: data_batch_4\. "):
        check_dataset_files({"name": "cifar10", "root": str(tmp_path), "download": False})
    (folder / "data_batch_4").touch()
    check_dataset_files({"name": "cifar10", "root": str(tmp_path), "download": False})


def test_presence_check_takes_mnists_older_layout(tmp_path):
    processed = tmp_path / "MNIST" / "processed"
    processed.mkdir(parents=True)
    (processed / "training.pt").touch()
    with pytest.raises(DataError):
        check_dataset_files({"name": "mnist", "root": str(tmp_path), "download": False})
    (processed / "test.pt").touch()
    check_dataset_files({"name": "mnist", "root": str(tmp_path), "download": False})


def test_presence_check_of_imagenet_names_the_missing_folders(tmp_path):
    base = os.path.join(str(tmp_path), "imagenet")
    expect = f"expected {base}/train/<class>/<image> and {base}/val/<class>/<image>."
    fix = "Put the images there, or set dataset.root=<folder> (or SNNX_DATA) to the folder that contains imagenet/."
    with pytest.raises(DataError) as err:
        check_dataset_files({"name": "imagenet", "root": str(tmp_path), "download": False})
    assert str(err.value) == f"dataset.root: cannot find the ImageNet folders {base}/train and {base}/val: {expect} {fix}"
    (tmp_path / "imagenet" / "train").mkdir(parents=True)
    with pytest.raises(DataError) as err:
        check_dataset_files({"name": "imagenet", "root": str(tmp_path), "download": False})
    assert str(err.value) == f"dataset.root: cannot find the ImageNet folder {base}/val: {expect} {fix}"
    (tmp_path / "imagenet" / "val").mkdir()
    check_dataset_files({"name": "imagenet", "root": str(tmp_path), "download": False})


@pytest.mark.parametrize("name", ["digits", "mnist5k"])
def test_the_in_memory_sets_need_no_files(tmp_path, name):
    check_dataset_files({"name": name, "root": str(tmp_path / "nowhere"), "download": False})


# -- a toy dataset, registered from the test ----------------------------------------------------------

TOY_INFO = DatasetInfo("toy_ds", 1, 8, 10, (0.5,), (0.25,))


def _toy(params, split, *, augment, limit):
    """Class c: row c mod 8 bright (column block c // 8), plus noise; fixed per split."""
    from snnx.data.embedded import TensorImageDataset

    n = 300 if split == "train" else 100
    gen = torch.Generator().manual_seed(0 if split == "train" else 1)
    targets = torch.arange(n) % 10
    images = torch.rand(n, 1, 8, 8, generator=gen) * 0.3
    for i, c in enumerate(targets.tolist()):
        images[i, 0, c % 8, (c // 8) * 4:(c // 8) * 4 + 4] = 1.0
    data = (images - TOY_INFO.mean[0]) / TOY_INFO.std[0]
    return TensorImageDataset(data, targets).head(limit)


@pytest.fixture
def toy_dataset():
    DATASETS.register("toy_ds", params=DatasetParams, doc="a tiny in-memory test set", info=TOY_INFO,
                      embedded=True)(_toy)
    try:
        yield DATASETS.get("toy_ds")
    finally:
        DATASETS.unregister("toy_ds")


def test_a_toy_dataset_builds_through_the_public_functions(toy_dataset):
    assert "toy_ds" in DATASETS.names() and dataset_info("toy_ds") is TOY_INFO
    train = build_dataset({"name": "toy_ds", "limit_train": 50}, "train")
    assert len(train) == 50 and tuple(train[0][0].shape) == (1, 8, 8)
    assert len(build_dataset("toy_ds", "test")) == 100
    check_dataset_files({"name": "toy_ds", "root": "nowhere", "download": False})
    with pytest.raises(ConfigError) as err:
        dataset_info("toy_ds", 4)
    assert err.value.key == "dataset.crop"


# Needs the config wiring that stores each registered dataset's params as the ConfigStore node
# schema/dataset/<name> (and a dataset without a YAML as the option dataset=<name>): until snnx.config
# registers DATASETS that way, composing dataset=toy_ds fails.
def test_a_toy_dataset_runs_end_to_end(toy_dataset, tmp_path):
    import pandas as pd

    from snnx.app import compose
    from snnx.stages import run_stage
    from snnx.validate import validate

    cfg = compose("run", ["dataset=toy_ds", "train=smoke", "model=lenet", "model.width=0.25", "act=relu",
                          "convert=maxnorm", "sim.T=[1,4]", "convert.calib_size=100", "sim.batch_size=100",
                          "device=cpu", f"paths.root={tmp_path}"])
    assert cfg.dataset.name == "toy_ds" and cfg.dataset.limit_train is None
    validate(cfg)
    run_stage(cfg)
    results = list(tmp_path.rglob("results.csv"))
    assert len(results) == 1
    frame = pd.read_csv(results[0])
    assert list(frame["T"]) == [1, 4] and set(frame["dataset"]) == {"toy_ds"}
    assert frame["acc"].between(0, 100).all() and frame["ann_acc"].between(0, 100).all()
