"""Datasets for snnx: one call, ``build_dataset(name, split, ...)``, for all of them.

Items are ``(float32 tensor [C, H, W] normalised with the dataset's mean/std,
int label)``. ``digits`` and ``mnist5k`` ship inside installed packages and are
held in memory (see :mod:`snnx.data.embedded`); ``mnist``, ``cifar10``,
``cifar100`` and ``imagenet`` are read from files under ``root`` in
torchvision's layout (see :mod:`snnx.data.vision`); train-time augmentation
is described in :mod:`snnx.data.transforms`.
"""

from __future__ import annotations

import os

from torch.utils.data import Dataset, Subset

from snnx.errors import ConfigError

from .embedded import EMBEDDED, TensorImageDataset, build_embedded
from .info import DATASETS, DatasetInfo, check_crop, dataset_info, default_data_root
from .transforms import build_transform
from .vision import build_vision

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "HeadSubset",
    "TensorImageDataset",
    "build_dataset",
    "dataset_info",
    "default_data_root",
]

SPLITS = ("train", "test")


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


def build_dataset(
    name: str,
    split: str,
    *,
    root: str | os.PathLike = "data",
    download: bool = False,
    augment: bool = True,
    autoaugment: bool = False,
    cutout: int = 0,
    crop: int | None = None,
    flip: bool = True,
    limit: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Build the ``split`` ("train" or "test") of dataset ``name``.

    * ``root``: folder holding the files of the file-backed datasets
      (torchvision layout); ignored by ``digits``/``mnist5k``.
    * ``download``: let torchvision fetch mnist/cifar10/cifar100 when absent.
    * ``augment``: train-split augmentation on/off (the test split is never
      augmented). ``digits``/``mnist5k`` have no augmentation: the flag is
      ignored for them, and ``autoaugment``/``cutout`` are rejected.
    * ``autoaugment``/``cutout``: extra train augmentation for image datasets
      (see :mod:`snnx.data.transforms`).
    * ``crop``: CIFAR only, the side of a random (train) / central (test)
      crop without padding (see :mod:`snnx.data.transforms`); None: none.
    * ``flip``: the horizontal flip of the CIFAR / ImageNet train augmentation
      (ignored where the augmentation has none: mnist, digits, mnist5k).
    * ``limit``: keep only the first ``limit`` items (a deterministic subset;
      larger than the dataset is fine).
    * ``seed``: accepted for interface stability; currently unused, because
      the train/test splits are fixed (independent of the run's seed) and
      augmentation draws from torch's global RNG, which the caller seeds.

    User-caused problems raise :class:`~snnx.errors.ConfigError` (bad option)
    or :class:`~snnx.errors.DataError` (missing or damaged files).
    """
    info = dataset_info(name)
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}.", key="split", fix="Use 'train' or 'test'.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(
            f"must be a positive whole number of items or null, got {limit!r}.",
            key="dataset.limit",
            fix="Set dataset.limit=null to use the whole dataset, or e.g. dataset.limit=256 for a smoke run.",
        )
    if name in EMBEDDED:
        if crop is not None:
            check_crop(name, crop)  # a ConfigError: the in-memory datasets take no crop
        if autoaugment or cutout:
            key = "dataset.autoaugment" if autoaugment else "dataset.cutout"
            raise ConfigError(
                f"the in-memory dataset {name} has no augmentation, so {key} cannot be used with it.",
                key=key,
                fix=f"Set {key}={'false' if autoaugment else '0'}, or use an image dataset (mnist, cifar10, cifar100, imagenet).",
            )
        ds: Dataset = build_embedded(name, split)
        if limit is not None:
            ds = ds.head(limit)
        return ds

    # build_transform validates autoaugment/cutout before any file is touched.
    transform = build_transform(name, split, augment=augment, autoaugment=autoaugment, cutout=cutout, crop=crop,
                                flip=flip)
    ds = build_vision(name, split, root=root, download=bool(download), transform=transform)
    if limit is not None and limit < len(ds):
        ds = HeadSubset(ds, limit)
    return ds
