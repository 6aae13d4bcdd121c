"""Per-sample transforms for the file-backed image datasets: the pieces each dataset module composes.

Train-time augmentation, in order:

* geometric, chosen by the dataset: :func:`cifar_geometry` (``RandomCrop(32, padding=4)`` +
  ``RandomHorizontalFlip``, or with ``crop=c`` a ``RandomCrop(c)`` of the 32×32 image, no padding,
  + flip: Zou et al. 2024, §4.2, "random image flipping and cropping for training", with c = 24 to
  match the 24×24 test crop); :func:`imagenet_geometry` (``RandomResizedCrop(224)`` + flip); none
  for MNIST (digits are not mirror-symmetric and the usual MNIST recipes train fine without it);
  ``flip=False`` leaves the flip out;
* ``autoaugment``: ``AutoAugment`` with the dataset's policy (CIFAR10; IMAGENET for imagenet), on
  the PIL image;
* ``ToTensor`` + ``Normalize(mean, std)``;
* ``cutout=n``: ``RandomErasing`` applied after normalisation with p=1, a
  square (ratio 1) whose area is n² pixels, filled with 0 (= the dataset mean
  in normalised space). Unlike the original Cutout, the square always lies
  fully inside the image.

Test transforms are deterministic: ``ToTensor`` + ``Normalize`` (ImageNet first
does ``Resize(256)`` + ``CenterCrop(224)``; CIFAR with ``crop=c`` first does
``CenterCrop(c)``: "test evaluation is based solely on central 24×24 crop",
Zou et al. 2024, §4.2). The crop applies to the train split also when
``augment`` is off (then the central crop), so every split has the model's size.
The values were checked against the dataset's parameters before (``build_dataset``).
"""

from __future__ import annotations

from typing import Callable, Sequence

from torchvision import transforms as T

from .info import DatasetInfo

__all__ = ["augments", "build_transform", "cifar_geometry", "cutout_transform", "imagenet_geometry"]


def augments(split: str, augment: bool) -> bool:
    """Whether the items of ``split`` are augmented: the train split with ``augment`` on, never the test split."""
    return split == "train" and bool(augment)


def cifar_geometry(stored: int, *, crop: int | None, flip: bool, train_aug: bool) -> list[Callable]:
    """CIFAR's geometric steps for ``stored``×``stored`` images (``crop``: the side of an unpadded window)."""
    flips = [T.RandomHorizontalFlip()] if flip else []
    if crop is not None:
        return [T.RandomCrop(crop), *flips] if train_aug else [T.CenterCrop(crop)]
    return [T.RandomCrop(stored, padding=4), *flips] if train_aug else []


def imagenet_geometry(size: int, *, flip: bool, train_aug: bool) -> list[Callable]:
    """ImageNet's geometric steps to ``size``×``size``: a random resized crop, else resize 256 + centre crop."""
    flips = [T.RandomHorizontalFlip()] if flip else []
    return [T.RandomResizedCrop(size), *flips] if train_aug else [T.Resize(256), T.CenterCrop(size)]


def cutout_transform(size: int, image_size: int) -> T.RandomErasing:
    """Cutout as ``RandomErasing``: always erase one ``size``×``size`` square to 0."""
    scale = (size * size) / float(image_size * image_size)
    return T.RandomErasing(p=1.0, scale=(scale, scale), ratio=(1.0, 1.0), value=0)


def build_transform(info: DatasetInfo, geometry: Sequence[Callable], *, train_aug: bool, autoaugment: bool = False,
                    policy: str = "CIFAR10", cutout: int = 0) -> T.Compose:
    """The PIL-image → normalised float tensor transform: ``geometry``, then the steps every image set shares.

    ``info``: the dataset at the size the tensors come out (its crop); ``policy``: the name of the
    ``AutoAugmentPolicy``. AutoAugment and Cutout only apply with ``train_aug`` (:func:`augments`).
    """
    steps: list[Callable] = list(geometry)
    if train_aug and autoaugment:
        steps.append(T.AutoAugment(T.AutoAugmentPolicy[policy]))
    steps += [T.ToTensor(), T.Normalize(info.mean, info.std)]
    if train_aug and cutout > 0:
        steps.append(cutout_transform(cutout, info.image_size))
    return T.Compose(steps)
