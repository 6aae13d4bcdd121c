"""Tests for snnx.data: embedded sets, on-disk formats written here, and error paths."""

from __future__ import annotations

import os
import pickle
import struct
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from snnx.data import DatasetInfo, build_dataset, dataset_info, dataset_params
from snnx.data.registry import DATASETS
from snnx.errors import ConfigError, DataError, SnnxError


def _ds(name: str, split: str, *, augment=None, limit=None, **params):
    """build_dataset on the dataset section ``{"name": name, **params}`` (keys left out: the dataset's defaults)."""
    return build_dataset({"name": name, **params}, split, augment=augment, limit=limit)


def _labels(ds) -> list[int]:
    return [int(ds[i][1]) for i in range(len(ds))]


def _expected(pixels_0_255: np.ndarray, mean, std) -> torch.Tensor:
    """Normalise a [C,H,W] uint8 image like ToTensor + Normalize."""
    x = torch.from_numpy(pixels_0_255.astype(np.float32) / 255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return (x - m) / s


# --------------------------------------------------------------------------- info


def test_dataset_info_all():
    assert sorted(DATASETS.names()) == ["cifar10", "cifar100", "digits", "imagenet", "mnist", "mnist5k"]
    for name in DATASETS.names():
        info = dataset_info(name)
        assert isinstance(info, DatasetInfo) and info.name == name
        assert len(info.mean) == len(info.std) == info.in_channels
    assert dataset_info("digits").image_size == 8
    assert dataset_info("cifar100").num_classes == 100
    assert dataset_info("imagenet").image_size == 224
    with pytest.raises(Exception):
        dataset_info("cifar10").name = "x"  # frozen


def test_unknown_dataset_names_options():
    with pytest.raises(ConfigError) as ei:
        dataset_info("svhn")
    msg = str(ei.value)
    assert ei.value.key == "dataset" and msg.startswith("dataset:")
    for name in DATASETS.names():
        assert name in msg
    with pytest.raises(ConfigError, match="cifar100"):
        _ds("cifar-10", "train")


def test_bad_split_and_options():
    with pytest.raises(ConfigError) as ei:
        _ds("digits", "val")
    assert ei.value.key == "split"
    with pytest.raises(ConfigError) as ei:
        _ds("digits", "train", limit=0)
    assert ei.value.key == "dataset.limit"
    with pytest.raises(ConfigError) as ei:
        _ds("digits", "train", cutout=4)
    assert ei.value.key == "dataset.cutout"
    with pytest.raises(ConfigError) as ei:
        _ds("mnist5k", "train", autoaugment=True)
    assert ei.value.key == "dataset.autoaugment"
    # Options are checked before any file is looked for.
    with pytest.raises(ConfigError) as ei:
        _ds("cifar10", "train", root="/nonexistent", cutout=32)
    assert ei.value.key == "dataset.cutout"
    with pytest.raises(ConfigError):
        _ds("cifar10", "train", root="/nonexistent", cutout=-1)


def test_root_defaults_to_snnx_data_else_data(monkeypatch):
    """A section without root gets the schema's default, ${oc.env:SNNX_DATA,data}, resolved."""
    monkeypatch.delenv("SNNX_DATA", raising=False)
    assert dataset_params("mnist")["root"] == "data"
    monkeypatch.setenv("SNNX_DATA", "/srv/datasets")
    assert dataset_params({"name": "cifar10"})["root"] == "/srv/datasets"
    assert dataset_params({"name": "cifar10", "root": "/mnt/x"})["root"] == "/mnt/x"


def test_limits_of_the_section_apply_unless_a_limit_is_given():
    full = _ds("digits", "test")
    assert len(_ds("digits", "test", limit_test=30)) == 30
    assert len(_ds("digits", "train", limit_train=40, limit_test=30)) == 40
    assert len(_ds("digits", "test", limit=12, limit_test=30)) == 12
    assert torch.equal(_ds("digits", "test", limit_test=30).data, full.data[:30])


# ----------------------------------------------------------------------- embedded


@pytest.mark.parametrize(
    "name,n_train,n_test,shape",
    [("digits", 1437, 360, (1, 8, 8)), ("mnist5k", 4000, 1000, (1, 28, 28))],
)
def test_embedded_splits(name, n_train, n_test, shape):
    train = _ds(name, "train")
    test = _ds(name, "test")
    assert (len(train), len(test)) == (n_train, n_test)
    x, y = train[0]
    assert x.dtype == torch.float32 and tuple(x.shape) == shape
    assert isinstance(y, int)
    for ds in (train, test):
        counts = np.bincount(_labels(ds), minlength=10)
        assert len(counts) == 10 and counts.min() > 0
    # stratified: each class is ~ the same share of both splits
    tr = np.bincount(_labels(train)) / len(train)
    te = np.bincount(_labels(test)) / len(test)
    assert np.abs(tr - te).max() < 0.01
    # normalised with the dataset's (train) statistics
    data = train.data
    assert abs(float(data.mean())) < 0.05 and abs(float(data.std()) - 1) < 0.05
    info = dataset_info(name)
    lo = (0 - info.mean[0]) / info.std[0]
    hi = (1 - info.mean[0]) / info.std[0]
    assert float(data.min()) == pytest.approx(lo, abs=1e-5)
    assert float(data.max()) == pytest.approx(hi, abs=1e-5)


@pytest.mark.parametrize("name", ["digits", "mnist5k"])
def test_embedded_deterministic_and_limit(name):
    a = _ds(name, "train")
    b = _ds(name, "train", augment=False)
    assert torch.equal(a.data, b.data) and torch.equal(a.targets, b.targets)
    small = _ds(name, "test", limit=25)
    full = _ds(name, "test")
    assert len(small) == 25
    for i in (0, 24):
        assert torch.equal(small[i][0], full[i][0]) and small[i][1] == full[i][1]
    assert len(_ds(name, "test", limit=10**9)) == len(full)
    xb, yb = next(iter(DataLoader(small, batch_size=8)))
    assert xb.shape[0] == 8 and yb.dtype == torch.int64


def test_digits_train_test_disjoint():
    from sklearn.datasets import load_digits

    train, test = _ds("digits", "train"), _ds("digits", "test")
    assert len(train) + len(test) == len(load_digits().target)


# ------------------------------------------------------------------- MNIST (IDX)


def _write_idx_images(path, images: np.ndarray) -> None:
    n, h, w = images.shape
    with open(path, "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, h, w))
        f.write(images.astype(np.uint8).tobytes())


def _write_idx_labels(path, labels: np.ndarray) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack(">II", 2049, len(labels)))
        f.write(labels.astype(np.uint8).tobytes())


def _make_mnist(root, n_train=12, n_test=7):
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        _write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
        out[prefix] = (images, labels)
    return out


def test_mnist_idx(tmp_path):
    truth = _make_mnist(tmp_path)
    train = _ds("mnist", "train", root=str(tmp_path))
    test = _ds("mnist", "test", root=tmp_path)
    assert (len(train), len(test)) == (12, 7)
    images, labels = truth["t10k"]
    for i in range(len(test)):
        x, y = test[i]
        assert x.dtype == torch.float32 and tuple(x.shape) == (1, 28, 28)
        assert isinstance(y, int) and y == labels[i]
        assert torch.allclose(x, _expected(images[i][None], (0.1307,), (0.3081,)), atol=1e-5)
    # MNIST has no augmentation by default: train items are deterministic
    x0 = train[0][0]
    assert torch.allclose(x0, _expected(truth["train"][0][0][None], (0.1307,), (0.3081,)), atol=1e-5)
    # extra augmentation runs on greyscale images
    aug = _ds("mnist", "train", root=tmp_path, autoaugment=True, cutout=6, limit=5)
    assert len(aug) == 5
    for i in range(5):
        x, _ = aug[i]
        assert tuple(x.shape) == (1, 28, 28) and int((x == 0).sum()) >= 36


def test_mnist_corrupt(tmp_path):
    _make_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08")  # truncated header
    with pytest.raises(DataError) as ei:
        _ds("mnist", "test", root=tmp_path)
    assert ei.value.key == "dataset.root" and str(tmp_path) in str(ei.value)


# ----------------------------------------------------------------- CIFAR (pickle)


def _pickle(path, obj) -> None:
    # The official archives are Python 2 pickles whose str keys load as str
    # under torchvision's encoding="latin1"; str keys here mirror that.
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _cifar_images(rng, n):
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _make_cifar10(root, per_batch=4, n_test=6):
    rng = np.random.default_rng(1)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    train_x, train_y = [], []
    for b in range(1, 6):
        x = _cifar_images(rng, per_batch)
        y = [int(v) for v in rng.integers(0, 10, per_batch)]
        _pickle(d / f"data_batch_{b}", {"batch_label": f"training batch {b} of 5", "data": x, "labels": y,
                                        "filenames": [f"img{b}_{i}.png" for i in range(per_batch)]})
        train_x.append(x)
        train_y += y
    tx = _cifar_images(rng, n_test)
    ty = list(range(n_test))
    _pickle(d / "test_batch", {"batch_label": "testing batch 1 of 1", "data": tx, "labels": ty,
                               "filenames": [f"t{i}.png" for i in range(n_test)]})
    _pickle(d / "batches.meta", {"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": per_batch,
                                 "num_vis": 3072})
    return (np.vstack(train_x), train_y), (tx, ty)


def _make_cifar100(root, n_train=10, n_test=5):
    rng = np.random.default_rng(2)
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = _cifar_images(rng, n)
        fine = [int(v) for v in rng.integers(0, 100, n)]
        fine[0] = 99
        _pickle(d / split, {"filenames": [f"{split}{i}.png" for i in range(n)], "batch_label": split,
                            "fine_labels": fine, "coarse_labels": [f // 5 for f in fine], "data": x})
        out[split] = (x, fine)
    _pickle(d / "meta", {"fine_label_names": [f"fine{i}" for i in range(100)],
                         "coarse_label_names": [f"coarse{i}" for i in range(20)]})
    return out


def test_cifar10_pickle(tmp_path):
    (train_x, train_y), (test_x, test_y) = _make_cifar10(tmp_path)
    info = dataset_info("cifar10")
    test = _ds("cifar10", "test", root=tmp_path)
    assert len(test) == 6 and test.classes[3] == "class3"
    for i in range(len(test)):
        x, y = test[i]
        assert x.dtype == torch.float32 and tuple(x.shape) == (3, 32, 32) and y == test_y[i]
        assert torch.allclose(x, _expected(test_x[i].reshape(3, 32, 32), info.mean, info.std), atol=1e-5)
    train = _ds("cifar10", "train", root=tmp_path)
    assert len(train) == 20 and _labels(train) == train_y
    # augment=False: train items are the plain normalised images
    plain = _ds("cifar10", "train", root=tmp_path, augment=False)
    assert torch.allclose(plain[7][0], _expected(train_x[7].reshape(3, 32, 32), info.mean, info.std), atol=1e-5)
    # default augmentation (crop + flip) keeps shapes
    torch.manual_seed(0)
    xb, yb = next(iter(DataLoader(train, batch_size=20)))
    assert xb.shape == (20, 3, 32, 32) and yb.tolist() == train_y
    lim = _ds("cifar10", "test", root=tmp_path, limit=4)
    assert len(lim) == 4 and lim.targets == test_y[:4] and lim.classes == test.classes
    assert len(_ds("cifar10", "test", root=tmp_path, limit=1000)) == 6


def test_cifar_cutout_and_autoaugment(tmp_path):
    _make_cifar10(tmp_path)
    torch.manual_seed(0)
    cut = _ds("cifar10", "train", root=tmp_path, cutout=8)
    for i in range(len(cut)):
        x, _ = cut[i]
        # exactly one 8x8 square is erased to 0 in every channel
        zero = (x == 0).all(0)
        assert int(zero.sum()) == 64
        rows, cols = torch.nonzero(zero, as_tuple=True)
        assert int(rows.max() - rows.min()) == 7 and int(cols.max() - cols.min()) == 7
    both = _ds("cifar10", "train", root=tmp_path, autoaugment=True, cutout=16)
    for i in range(len(both)):
        x, _ = both[i]
        assert tuple(x.shape) == (3, 32, 32) and x.dtype == torch.float32 and torch.isfinite(x).all()
    # the test split is never augmented
    t1 = _ds("cifar10", "test", root=tmp_path, autoaugment=True, cutout=16)
    t2 = _ds("cifar10", "test", root=tmp_path)
    assert all(torch.equal(t1[i][0], t2[i][0]) for i in range(len(t2)))


def test_cifar100_pickle(tmp_path):
    truth = _make_cifar100(tmp_path)
    info = dataset_info("cifar100")
    for split in ("train", "test"):
        ds = _ds("cifar100", split, root=tmp_path, augment=False)
        x_true, y_true = truth[split]
        assert len(ds) == len(y_true) and _labels(ds) == y_true and len(ds.classes) == 100
        assert torch.allclose(ds[1][0], _expected(x_true[1].reshape(3, 32, 32), info.mean, info.std), atol=1e-5)
    aug = _ds("cifar100", "train", root=tmp_path, autoaugment=True, cutout=4)
    assert tuple(aug[0][0].shape) == (3, 32, 32)


def test_cifar_corrupt_files(tmp_path):
    _make_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])  # truncated pickle
    with pytest.raises(DataError) as ei:
        _ds("cifar10", "train", root=tmp_path)
    msg = str(ei.value)
    assert ei.value.key == "dataset.root" and "cifar-10-batches-py" in msg and "\n" not in msg
    # the test split does not read data_batch_3 and still loads
    assert len(_ds("cifar10", "test", root=tmp_path)) == 6


def test_cifar_wrong_labels(tmp_path):
    _make_cifar100(tmp_path)
    _pickle(tmp_path / "cifar-100-python" / "test", {"data": _cifar_images(np.random.default_rng(0), 3),
                                                     "fine_labels": [0, 1, 100]})
    with pytest.raises(DataError, match="labels"):
        _ds("cifar100", "test", root=tmp_path)


# ------------------------------------------------------------------- ImageFolder


def _make_imagenet(root):
    rng = np.random.default_rng(3)
    for sub, per_class in (("train", 3), ("val", 2)):
        for cls in ("n01440764", "n01443537"):
            d = root / "imagenet" / sub / cls
            d.mkdir(parents=True)
            for i in range(per_class):
                arr = rng.integers(0, 256, size=(40 + 7 * i, 50, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{cls}_{i}.png")


def test_imagenet_folder(tmp_path):
    _make_imagenet(tmp_path)
    val = _ds("imagenet", "test", root=tmp_path)
    assert len(val) == 4 and _labels(val) == [0, 0, 1, 1]
    x, y = val[0]
    assert x.dtype == torch.float32 and tuple(x.shape) == (3, 224, 224)
    # a constant image normalises to (v/255 - mean)/std everywhere
    const = tmp_path / "imagenet" / "val" / "n01440764" / "n01440764_0.png"
    Image.fromarray(np.full((300, 260, 3), 200, dtype=np.uint8)).save(const)
    info = dataset_info("imagenet")
    x = _ds("imagenet", "test", root=tmp_path)[0][0]
    want = _expected(np.full((3, 1, 1), 200, dtype=np.uint8), info.mean, info.std)
    assert torch.allclose(x, want.expand(3, 224, 224), atol=1e-5)
    train = _ds("imagenet", "train", root=tmp_path, autoaugment=True, cutout=56)
    assert len(train) == 6
    for i in range(len(train)):
        x, _ = train[i]
        assert tuple(x.shape) == (3, 224, 224) and int((x == 0).all(0).sum()) >= 56 * 56


def test_imagenet_bad_image(tmp_path):
    _make_imagenet(tmp_path)
    (tmp_path / "imagenet" / "val" / "n01440764" / "n01440764_0.png").write_bytes(b"not a png")
    ds = _ds("imagenet", "test", root=tmp_path)
    with pytest.raises(DataError, match="n01440764_0.png"):
        ds[0]


# -------------------------------------------------------------------- missing data


@pytest.mark.parametrize(
    "name,expect",
    [
        ("cifar10", ["cifar-10-batches-py", "data_batch_1", "test_batch", "batches.meta"]),
        ("cifar100", ["cifar-100-python", "train", "meta"]),
        ("mnist", ["MNIST", "raw", "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]),
        ("imagenet", ["imagenet", "train"]),
    ],
)
def test_missing_data(tmp_path, name, expect):
    with pytest.raises(DataError) as ei:
        _ds(name, "train", root=tmp_path)
    err = ei.value
    msg = str(err)
    assert isinstance(err, SnnxError) and err.key == "dataset.root"
    assert msg.startswith("dataset.root:") and str(tmp_path) in msg and "\n" not in msg
    for word in expect:
        assert word in msg
    assert "SNNX_DATA" in msg
    if name != "imagenet":
        assert "dataset.download=true" in msg


def test_missing_relative_root_reports_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as ei:
        _ds("cifar10", "test", root="nowhere")
    assert os.path.join(str(tmp_path), "nowhere", "cifar-10-batches-py") in str(ei.value)


def test_partial_cifar_lists_missing(tmp_path):
    _make_cifar10(tmp_path)
    os.remove(tmp_path / "cifar-10-batches-py" / "data_batch_4")
    with pytest.raises(DataError, match="missing: data_batch_4"):
        _ds("cifar10", "train", root=tmp_path)


@pytest.mark.parametrize("name,module", [("cifar10", "cifar"), ("mnist", "mnist")])
def test_download_failure_is_data_error(tmp_path, monkeypatch, name, module):
    import importlib

    mod = importlib.import_module(f"torchvision.datasets.{module}")

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(mod, "download_and_extract_archive", offline)
    with pytest.raises(DataError) as ei:
        _ds(name, "train", root=tmp_path, download=True)
    msg = str(ei.value)
    assert ei.value.key == "dataset.root" and "download" in msg and str(tmp_path) in msg and "\n" not in msg


def test_download_with_nonofficial_files_offline(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    _make_cifar10(tmp_path)  # valid format, but not the official bytes: MD5 fails, a re-download is tried

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    with pytest.raises(DataError, match="dataset.download=false"):
        _ds("cifar10", "test", root=tmp_path, download=True)
    assert len(_ds("cifar10", "test", root=tmp_path, download=False)) == 6


def test_imagenet_cannot_download(tmp_path):
    with pytest.raises(DataError, match="cannot be downloaded"):
        _ds("imagenet", "test", root=tmp_path, download=True)


def test_cifar_crop_24_random_for_training_central_for_testing(tmp_path):
    """dataset.crop=24 (Zou et al. 2024, §4.2): train = a random 24×24 window of the 32×32 image (no
    padding), maybe mirrored; test = the central 24×24 window; the model is built for 24×24."""
    (train_x, _), (test_x, _) = _make_cifar10(tmp_path)
    info = dataset_info("cifar10", 24)
    assert info.image_size == 24 and info.mean == dataset_info("cifar10").mean
    test = _ds("cifar10", "test", root=tmp_path, crop=24)
    for i in range(len(test)):
        full = _expected(test_x[i].reshape(3, 32, 32), info.mean, info.std)
        assert torch.allclose(test[i][0], full[:, 4:28, 4:28], atol=1e-5)  # (32 − 24) / 2 = 4 on each side
    train = _ds("cifar10", "train", root=tmp_path, crop=24)
    torch.manual_seed(0)
    offsets, flips = set(), 0
    for i in range(len(train)):
        x = train[i][0]
        assert tuple(x.shape) == (3, 24, 24)
        full = _expected(train_x[i].reshape(3, 32, 32), info.mean, info.std)
        found = [(r, c, f) for r in range(9) for c in range(9) for f in (False, True)
                 if torch.allclose(x, full[:, r:r + 24, c:c + 24].flip(-1) if f else full[:, r:r + 24, c:c + 24],
                                   atol=1e-5)]
        assert len(found) == 1, "every training item is one window of its image (or its mirror image)"
        offsets.add(found[0][:2])
        flips += found[0][2]
    assert len(offsets) > 1 and 0 < flips < len(train)  # random positions, random flips
    plain = _ds("cifar10", "train", root=tmp_path, crop=24, augment=False)  # e.g. calibration
    assert torch.allclose(plain[3][0], _expected(train_x[3].reshape(3, 32, 32), info.mean, info.std)[:, 4:28, 4:28],
                          atol=1e-5)


def test_flip_false_crops_without_mirroring(tmp_path):
    """dataset.flip=false (Yang et al. 2025, §5.1 names random crop, Cutout and AutoAugment only): every training
    item is a window of its image, never its mirror image; the ANN key changes only then."""
    from snnx.artifacts import ann_key_payload

    (train_x, _), _ = _make_cifar10(tmp_path)
    info = dataset_info("cifar10", 24)
    torch.manual_seed(0)
    for flip in (False, True):
        train = _ds("cifar10", "train", root=tmp_path, crop=24, flip=flip)
        mirrored = 0
        for i in range(len(train)):
            x = train[i][0]
            full = _expected(train_x[i].reshape(3, 32, 32), info.mean, info.std)
            windows = [full[:, r:r + 24, c:c + 24] for r in range(9) for c in range(9)]
            plain = any(torch.allclose(x, w, atol=1e-5) for w in windows)
            mirror = any(torch.allclose(x, w.flip(-1), atol=1e-5) for w in windows)
            mirrored += mirror and not plain
        assert (mirrored == 0) if not flip else (0 < mirrored < len(train))
    with pytest.raises(ConfigError) as err:
        _ds("cifar10", "train", root=tmp_path, flip="no")
    assert err.value.key == "dataset.flip"
    base = {"dataset": {"name": "cifar10", "augment": True}, "model": {"name": "vgg16"}, "act": {"name": "relu"},
            "train": {"name": "default"}, "seed": 0}
    with_flip = {**base, "dataset": {**base["dataset"], "flip": True}}
    without = {**base, "dataset": {**base["dataset"], "flip": False}}
    assert ann_key_payload(with_flip) == ann_key_payload(base)  # older caches were trained with the flip
    assert ann_key_payload(without) != ann_key_payload(base)


def test_crop_is_checked_and_the_allint_vgg_builds_on_24(tmp_path):
    from snnx.activations import make_act_factory
    from snnx.models import create_model

    for name, crop in (("digits", 24), ("mnist", 24), ("cifar10", 33), ("cifar10", 0), ("cifar100", 2.5)):
        with pytest.raises(ConfigError) as err:
            dataset_info(name, crop)
        assert err.value.key == "dataset.crop"
    with pytest.raises(ConfigError) as err:
        _ds("digits", "train", crop=24)
    assert err.value.key == "dataset.crop"
    model = create_model("vgg11_allint", in_channels=3, image_size=dataset_info("cifar10", 24).image_size,
                         num_classes=10, act_factory=make_act_factory("quant", k=0, k_first=0), width=0.125)
    assert model(torch.zeros(2, 3, 24, 24)).shape == (2, 10)
