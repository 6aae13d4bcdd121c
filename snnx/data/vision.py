"""File-backed image datasets: mnist, cifar10, cifar100 (torchvision) and imagenet (ImageFolder).

Root layout is torchvision's own::

    <root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte   (uncompressed IDX)
    <root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}
    <root>/cifar-100-python/{train,test,meta}
    <root>/imagenet/{train,val}/<class>/<image>                     (val sorted into class folders)

Every problem a user can cause (files missing, download impossible, files
truncated or not in the expected format) is raised as a one-paragraph
:class:`~snnx.errors.DataError` with key ``dataset.root``; torchvision's own
``RuntimeError``s never escape.

MD5 checks for CIFAR
--------------------
torchvision's ``CIFAR10``/``CIFAR100`` refuse to load unless every file
matches the MD5 of the official archive. With ``download=True`` we use those
stock classes unchanged: files are verified and fetched again when absent or
different. With ``download=False`` (the default, and the only option offline)
we use thin subclasses whose file lists carry no MD5, so torchvision only
checks that the files are present. Genuine files load either way; what the
MD5 check would have caught (truncated or damaged files, wrong format) is
caught instead by unpickling and the structural checks in
:func:`_validate`, which raise a DataError naming the file. This also means
valid CIFAR-format files that are not byte-identical to the official ones
(e.g. a re-pickled subset, or the tiny fixtures the tests write) load too, and
that building the dataset does not hash ~180 MB each time.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
from torch.utils.data import Dataset
from torchvision import datasets as tvd

from snnx.errors import DataError

from .info import dataset_info

__all__ = ["build_vision", "expected_files", "VISION"]

VISION = ("mnist", "cifar10", "cifar100", "imagenet")


class _CIFAR10Present(tvd.CIFAR10):
    """CIFAR-10 that checks file presence instead of MD5 (see module docstring)."""

    train_list = [[fname, None] for fname, _ in tvd.CIFAR10.train_list]
    test_list = [[fname, None] for fname, _ in tvd.CIFAR10.test_list]
    meta = {**tvd.CIFAR10.meta, "md5": None}


class _CIFAR100Present(tvd.CIFAR100):
    """CIFAR-100 that checks file presence instead of MD5 (see module docstring)."""

    train_list = [[fname, None] for fname, _ in tvd.CIFAR100.train_list]
    test_list = [[fname, None] for fname, _ in tvd.CIFAR100.test_list]
    meta = {**tvd.CIFAR100.meta, "md5": None}


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# name -> (pretty name, folder under root, files, description of what to put there)
_LAYOUT: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "mnist": (
        "MNIST",
        os.path.join("MNIST", "raw"),
        _MNIST_FILES,
        "{dir}/train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
        "t10k-labels-idx1-ubyte (the four MNIST IDX files, gunzipped)",
    ),
    "cifar10": (
        "CIFAR-10",
        "cifar-10-batches-py",
        tuple(f for f, _ in tvd.CIFAR10.train_list + tvd.CIFAR10.test_list) + (tvd.CIFAR10.meta["filename"],),
        "{dir}/data_batch_1..5, test_batch and batches.meta (the 'CIFAR-10 python version' archive "
        "cifar-10-python.tar.gz, unpacked)",
    ),
    "cifar100": (
        "CIFAR-100",
        "cifar-100-python",
        tuple(f for f, _ in tvd.CIFAR100.train_list + tvd.CIFAR100.test_list) + (tvd.CIFAR100.meta["filename"],),
        "{dir}/train, test and meta (the 'CIFAR-100 python version' archive cifar-100-python.tar.gz, unpacked)",
    ),
}


def _fix_local(top: str) -> str:
    return (
        f"Put them there, or set dataset.root (or the SNNX_DATA environment variable) to the folder that "
        f"contains {top}/, or pass dataset.download=true on a machine with internet."
    )


def _abs(root: str | os.PathLike) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(root)))


def expected_files(name: str, root: str | os.PathLike) -> list[str]:
    """Absolute paths of the files ``name`` needs under ``root`` (empty for imagenet)."""
    if name not in _LAYOUT:
        return []
    _, folder, files, _ = _LAYOUT[name]
    return [os.path.join(_abs(root), folder, f) for f in files]


def _summary(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _missing_error(name: str, root: str | os.PathLike, missing: list[str], download: bool, exc=None) -> DataError:
    pretty, folder, _, desc = _LAYOUT[name]
    where = desc.format(dir=os.path.join(_abs(root), folder))
    if download:
        problem = (
            f"downloading {pretty} into {_abs(root)} failed ({_summary(exc)}). "
            f"Without a download snnx expects {where}."
        )
        fix = (
            f"Check the network, or fetch the archive on a machine with internet, unpack it under {_abs(root)} "
            "and run again with dataset.download=false."
        )
    else:
        if len(missing) == len(_LAYOUT[name][2]):
            which = "none of them is there"
        else:
            which = "missing: " + ", ".join(os.path.basename(m) for m in missing)
        problem = f"cannot find the {pretty} files: expected {where}; {which}."
        fix = _fix_local(folder.split(os.sep)[0])
    return DataError(problem, key="dataset.root", fix=fix)


def _corrupt_error(pretty: str, where: str, exc: BaseException | str) -> DataError:
    detail = exc if isinstance(exc, str) else _summary(exc)
    return DataError(
        f"the {pretty} files in {where} are unreadable or not in the expected format ({detail}).",
        key="dataset.root",
        fix="Replace them with a fresh copy unpacked from the official archive, or delete them and pass "
        "dataset.download=true on a machine with internet.",
    )


def _validate(name: str, ds: Any, where: str) -> None:
    """Structural checks that stand in for MD5 (catch truncated or foreign files)."""
    info = dataset_info(name)
    pretty = _LAYOUT[name][0]
    data, targets = ds.data, ds.targets
    n = len(data)
    shape = tuple(data.shape)
    channels_last = name != "mnist"
    want = (info.image_size, info.image_size, info.in_channels) if channels_last else (info.image_size, info.image_size)
    if n == 0:
        raise _corrupt_error(pretty, where, "no images")
    if shape[1:] != want or str(data.dtype) not in ("uint8", "torch.uint8"):
        raise _corrupt_error(pretty, where, f"images have shape {shape[1:]} and dtype {data.dtype}, expected {want} uint8")
    if len(targets) != n:
        raise _corrupt_error(pretty, where, f"{n} images but {len(targets)} labels")
    labels = np.asarray(targets)
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= info.num_classes:
        raise _corrupt_error(pretty, where, f"labels span {lo}..{hi}, expected 0..{info.num_classes - 1}")
    classes = getattr(ds, "classes", None)
    if name != "mnist" and classes is not None and len(classes) != info.num_classes:
        raise _corrupt_error(pretty, where, f"the metadata names {len(classes)} classes, expected {info.num_classes}")


def _build_torchvision(name: str, split: str, root, download: bool, transform: Callable) -> Dataset:
    pretty, folder, _, _ = _LAYOUT[name]
    where = os.path.join(_abs(root), folder)
    train = split == "train"
    paths = expected_files(name, root)
    missing = [p for p in paths if not os.path.isfile(p)]
    if name == "mnist" and all(
        os.path.isfile(os.path.join(_abs(root), "MNIST", "processed", f)) for f in ("training.pt", "test.pt")
    ):
        missing = []  # torchvision's legacy MNIST/processed/*.pt layout, which it still loads
    stock = {"mnist": tvd.MNIST, "cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}[name]
    local = {"mnist": tvd.MNIST, "cifar10": _CIFAR10Present, "cifar100": _CIFAR100Present}[name]

    if download:
        # Stock class: MD5-verified, fetches anything absent or damaged.
        try:
            ds = stock(os.fspath(root), train=train, transform=transform, download=True)
        except Exception as exc:  # network, disk, or a damaged download: all user-facing
            if any(not os.path.isfile(p) for p in paths):
                raise _missing_error(name, root, missing, True, exc) from exc
            raise DataError(
                f"loading {pretty} from {where} with dataset.download=true failed ({_summary(exc)}): the files "
                "there are damaged, or they differ from the official ones and fetching a fresh copy failed.",
                key="dataset.root",
                fix="Check the network, replace them with a fresh copy of the official archive, or pass "
                "dataset.download=false to use the files as they are.",
            ) from exc
    else:
        if missing:
            raise _missing_error(name, root, missing, False)
        try:
            ds = local(os.fspath(root), train=train, transform=transform, download=False)
        except Exception as exc:  # unpickling/parsing errors of damaged files
            raise _corrupt_error(pretty, where, exc) from exc
    _validate(name, ds, where)
    return ds


def _image_loader(path: str) -> Any:
    """ImageFolder's default PIL loader, with unreadable images reported as DataError."""
    try:
        return tvd.folder.default_loader(path)
    except Exception as exc:
        raise DataError(
            f"cannot read the ImageNet image {path} ({_summary(exc)}).",
            key="dataset.root",
            fix="Delete or replace the damaged file.",
        ) from exc


def _build_imagenet(split: str, root, download: bool, transform: Callable) -> Dataset:
    sub = "train" if split == "train" else "val"
    base = os.path.join(_abs(root), "imagenet")
    folder = os.path.join(base, sub)
    expect = (
        f"expected {base}/train/<class>/<image> and {base}/val/<class>/<image> (ImageNet-1k, with the validation "
        "images sorted into the same class folders as train)"
    )
    fix = "Put the images there, or set dataset.root=<folder> (or SNNX_DATA) to the folder that contains imagenet/."
    if download:
        fix += " ImageNet cannot be downloaded automatically (its licence requires a manual download)."
    if not os.path.isdir(folder):
        raise DataError(f"cannot find the ImageNet {sub} folder {folder}: {expect}.", key="dataset.root", fix=fix)
    try:
        ds = tvd.ImageFolder(folder, transform=transform, loader=_image_loader)
    except (FileNotFoundError, OSError) as exc:
        raise DataError(
            f"the ImageNet {sub} folder {folder} holds no usable class folders or images ({_summary(exc)}): {expect}.",
            key="dataset.root",
            fix=fix,
        ) from exc
    limit = dataset_info("imagenet").num_classes
    if len(ds.classes) > limit:
        raise DataError(
            f"the ImageNet {sub} folder {folder} has {len(ds.classes)} class folders, more than the {limit} classes "
            "the imagenet dataset is defined with.",
            key="dataset.root",
            fix="Remove the extra folders (only the ImageNet-1k class folders belong there).",
        )
    return ds


def build_vision(name: str, split: str, *, root: str | os.PathLike, download: bool, transform: Callable) -> Dataset:
    """Build a file-backed dataset; ``transform`` maps a PIL image to a tensor."""
    if name == "imagenet":
        return _build_imagenet(split, root, download, transform)
    return _build_torchvision(name, split, root, download, transform)
