"""imagenet: ImageNet-1k as class folders under ``dataset.root`` (torchvision's ImageFolder).

``<root>/imagenet/{train,val}/<class>/<image>``, the validation images sorted into the same class
folders as train. It cannot be downloaded (its licence asks for a manual download).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from snnx.data.files import absolute, summary
from snnx.data.info import DatasetInfo
from snnx.data.params import ImageParams, fits_inside
from snnx.data.registry import DATASETS
from snnx.errors import DataError
from snnx.registry import param

INFO = DatasetInfo("imagenet", 3, 224, 1000, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

_FIX = "Put the images there, or set dataset.root=<folder> (or SNNX_DATA) to the folder that contains imagenet/."


@dataclass
class ImageNetParams(ImageParams):
    flip: bool = param(True, "the RandomHorizontalFlip of the train augmentation (with augment)")


def _base(root) -> str:
    return os.path.join(absolute(root), "imagenet")


def _expect(base: str) -> str:
    return f"expected {base}/train/<class>/<image> and {base}/val/<class>/<image>"


def check_present(params: Mapping[str, Any]) -> None:
    base = _base(params["root"])
    absent = [os.path.join(base, sub) for sub in ("train", "val") if not os.path.isdir(os.path.join(base, sub))]
    if absent:
        raise DataError(
            f"cannot find the ImageNet folder{'s' if len(absent) > 1 else ''} {' and '.join(absent)}: "
            f"{_expect(base)}.",
            key="dataset.root", fix=_FIX)


def _image_loader(path: str) -> Any:
    """ImageFolder's default PIL loader, with unreadable images reported as DataError."""
    # torchvision loads when the data is built: composing a config must not wait for it
    from torchvision.datasets.folder import default_loader

    try:
        return default_loader(path)
    except Exception as exc:
        raise DataError(
            f"cannot read the ImageNet image {path} ({summary(exc)}).",
            key="dataset.root",
            fix="Delete or replace the damaged file.",
        ) from exc


def _folder(split: str, root, download: bool, transform):
    # torchvision loads when the data is built: composing a config must not wait for it
    from torchvision import datasets as tvd

    sub = "train" if split == "train" else "val"
    base = _base(root)
    folder = os.path.join(base, sub)
    expect = f"{_expect(base)} (ImageNet-1k, with the validation images sorted into the same class folders as train)"
    fix = _FIX
    if download:
        fix += " ImageNet cannot be downloaded automatically (its licence requires a manual download)."
    if not os.path.isdir(folder):
        raise DataError(f"cannot find the ImageNet {sub} folder {folder}: {expect}.", key="dataset.root", fix=fix)
    try:
        ds = tvd.ImageFolder(folder, transform=transform, loader=_image_loader)
    except (FileNotFoundError, OSError) as exc:
        raise DataError(
            f"the ImageNet {sub} folder {folder} holds no usable class folders or images ({summary(exc)}): {expect}.",
            key="dataset.root",
            fix=fix,
        ) from exc
    if len(ds.classes) > INFO.num_classes:
        raise DataError(
            f"the ImageNet {sub} folder {folder} has {len(ds.classes)} class folders, more than the "
            f"{INFO.num_classes} classes the imagenet dataset is defined with.",
            key="dataset.root",
            fix="Remove the extra folders (only the ImageNet-1k class folders belong there).",
        )
    return ds


@DATASETS.register("imagenet", params=ImageNetParams, info=INFO, check_present=check_present,
                   check=fits_inside(INFO),
                   doc="ImageNet-1k class folders under dataset.root (train / val); cannot be downloaded")
def build(params, split, *, augment, limit):
    # torchvision loads when the data is built: composing a config must not wait for it.
    from snnx.data.transforms import augments, build_transform, imagenet_geometry
    from snnx.data.vision import head

    train_aug = augments(split, augment)
    geometry = imagenet_geometry(INFO.image_size, flip=params["flip"], train_aug=train_aug)
    transform = build_transform(INFO, geometry, train_aug=train_aug, autoaugment=params["autoaugment"],
                                policy="IMAGENET", cutout=params["cutout"])
    return head(_folder(split, params["root"], bool(params["download"]), transform), limit)
