"""Loading a torchvision archive dataset (MNIST, CIFAR) with every user-caused problem as a DataError.

Each dataset module says where its files lie (a :class:`~snnx.data.files.FileLayout`) and which
torchvision class reads them; :func:`build_archive` loads them. Every problem a user can cause
(files missing, download impossible, files truncated or not in the expected format) is raised as
a one-paragraph :class:`~snnx.errors.DataError` with key ``dataset.root``; torchvision's own
``RuntimeError``s never escape.

MD5 checks for CIFAR
--------------------
torchvision's ``CIFAR10``/``CIFAR100`` refuse to load unless every file
matches the MD5 of the official archive. With ``download=True`` we use those
stock classes unchanged: files are verified and fetched again when absent or
different. With ``download=False`` (the default, and the only option offline)
we use thin subclasses whose file lists carry no MD5 (:func:`without_md5`), so
torchvision only checks that the files are present. Genuine files load either
way; what the MD5 check would have caught (truncated or damaged files, wrong
format) is caught instead by unpickling and the structural checks in
:func:`_validate`, which raise a DataError naming the file. This also means
valid CIFAR-format files that are not byte-identical to the official ones
(e.g. a re-pickled subset, or the tiny fixtures the tests write) load too, and
that building the dataset does not hash ~180 MB each time.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Mapping

import numpy as np
from torch.utils.data import Dataset, Subset

from snnx.errors import DataError

from .files import FileLayout, absolute, summary
from .info import DatasetInfo, dataset_info
from .transforms import augments, build_transform, cifar_geometry

__all__ = ["HeadSubset", "build_archive", "build_cifar", "head", "without_md5"]


class HeadSubset(Subset):
    """The first ``n`` items of a dataset, keeping its ``classes``/``targets``."""

    def __init__(self, dataset: Dataset, n: int):
        super().__init__(dataset, range(n))
        self.classes = getattr(dataset, "classes", None)

    @property
    def targets(self) -> list[int]:
        base = getattr(self.dataset, "targets", None)
        if base is None:
            return [int(self.dataset[i][1]) for i in self.indices]
        return [int(base[i]) for i in self.indices]


def head(ds: Dataset, limit: int | None) -> Dataset:
    """The first ``limit`` items of ``ds`` (all of it for None or a limit past its end)."""
    return HeadSubset(ds, limit) if limit is not None and limit < len(ds) else ds


@functools.lru_cache(maxsize=None)
def without_md5(archive: type) -> type:
    """``archive`` (a torchvision CIFAR class) checking that its files are present instead of their MD5."""
    return type(f"{archive.__name__}Present", (archive,), {
        "__doc__": f"{archive.__name__} that checks file presence instead of MD5 (see snnx.data.vision).",
        "train_list": [[fname, None] for fname, _ in archive.train_list],
        "test_list": [[fname, None] for fname, _ in archive.test_list],
        "meta": {**archive.meta, "md5": None},
    })


def corrupt_error(pretty: str, where: str, exc: BaseException | str) -> DataError:
    detail = exc if isinstance(exc, str) else summary(exc)
    return DataError(
        f"the {pretty} files in {where} are unreadable or not in the expected format ({detail}).",
        key="dataset.root",
        fix="Replace them with a fresh copy unpacked from the official archive, or delete them and pass "
        "dataset.download=true on a machine with internet.",
    )


def _validate(ds: Any, info: DatasetInfo, pretty: str, where: str, channels_last: bool) -> None:
    """Structural checks that stand in for MD5 (catch truncated or foreign files)."""
    data, targets = ds.data, ds.targets
    n = len(data)
    shape = tuple(data.shape)
    want = (info.image_size, info.image_size, info.in_channels) if channels_last else (info.image_size, info.image_size)
    if n == 0:
        raise corrupt_error(pretty, where, "no images")
    if shape[1:] != want or str(data.dtype) not in ("uint8", "torch.uint8"):
        raise corrupt_error(pretty, where, f"images have shape {shape[1:]} and dtype {data.dtype}, expected {want} uint8")
    if len(targets) != n:
        raise corrupt_error(pretty, where, f"{n} images but {len(targets)} labels")
    labels = np.asarray(targets)
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= info.num_classes:
        raise corrupt_error(pretty, where, f"labels span {lo}..{hi}, expected 0..{info.num_classes - 1}")
    classes = getattr(ds, "classes", None)
    if channels_last and classes is not None and len(classes) != info.num_classes:
        raise corrupt_error(pretty, where, f"the metadata names {len(classes)} classes, expected {info.num_classes}")


def build_archive(files: FileLayout, info: DatasetInfo, split: str, *, root, download: bool, transform: Callable,
                  stock: type, local: type, channels_last: bool) -> Dataset:
    """The ``split`` of a torchvision archive dataset: ``stock`` (its class) when downloading, else ``local``.

    ``channels_last``: the arrays are [N, H, W, C] with class names in the metadata (CIFAR), not [N, H, W].
    """
    where = os.path.join(absolute(root), files.folder)
    train = split == "train"
    paths = files.paths(root)
    missing = files.missing(root)

    if download:
        # Stock class: MD5-verified, fetches anything absent or damaged.
        try:
            ds = stock(os.fspath(root), train=train, transform=transform, download=True)
        except Exception as exc:  # network, disk, or a damaged download: all user-facing
            if any(not os.path.isfile(p) for p in paths):
                raise files.missing_error(root, missing, True, exc) from exc
            raise DataError(
                f"loading {files.pretty} from {where} with dataset.download=true failed ({summary(exc)}): the files "
                "there are damaged, or they differ from the official ones and fetching a fresh copy failed.",
                key="dataset.root",
                fix="Check the network, replace them with a fresh copy of the official archive, or pass "
                "dataset.download=false to use the files as they are.",
            ) from exc
    else:
        if missing:
            raise files.missing_error(root, missing, False)
        try:
            ds = local(os.fspath(root), train=train, transform=transform, download=False)
        except Exception as exc:  # unpickling/parsing errors of damaged files
            raise corrupt_error(files.pretty, where, exc) from exc
    _validate(ds, info, files.pretty, where, channels_last)
    return ds


def build_cifar(params: Mapping[str, Any], split: str, *, augment: bool, limit: int | None, info: DatasetInfo,
                files: FileLayout, archive: type) -> Dataset:
    """The CIFAR recipe, shared by cifar10 and cifar100 (``archive``: torchvision's class for the files).

    Train augmentation: the random crop (pad 4 at the stored size, or an unpadded ``crop`` window) and
    flip of :func:`~snnx.data.transforms.cifar_geometry`, AutoAugment with the CIFAR10 policy, Cutout.
    """
    train_aug = augments(split, augment)
    crop = params["crop"]
    geometry = cifar_geometry(info.image_size, crop=crop, flip=params["flip"], train_aug=train_aug)
    transform = build_transform(dataset_info(info.name, crop), geometry, train_aug=train_aug,
                                autoaugment=params["autoaugment"], policy="CIFAR10", cutout=params["cutout"])
    ds = build_archive(files, info, split, root=params["root"], download=bool(params["download"]),
                       transform=transform, stock=archive, local=without_md5(archive), channels_last=True)
    return head(ds, limit)
