"""Per-sample transforms for the file-backed image datasets (mnist, cifar*, imagenet).

Train-time augmentation, in order:

* geometric: CIFAR ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip``, or
  with ``crop=c`` a ``RandomCrop(c)`` of the 32×32 image (no padding) +
  ``RandomHorizontalFlip`` (Zou et al. 2024, §4.2: "random image flipping and
  cropping for training", with c = 24 to match the 24×24 test crop);
  ImageNet ``RandomResizedCrop(224)`` + ``RandomHorizontalFlip``; MNIST none
  (digits are not mirror-symmetric and the usual MNIST recipes train fine
  without it, so it is kept off to stay simple);
* ``autoaugment``: ``AutoAugment`` with the CIFAR10 policy (IMAGENET policy for
  imagenet), on the PIL image;
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
"""

from __future__ import annotations

from typing import Callable

from torchvision import transforms as T

from snnx.errors import ConfigError

from .info import check_crop, dataset_info

__all__ = ["build_transform", "check_augment_options", "cutout_transform"]


def check_augment_options(name: str, *, autoaugment: bool, cutout: int) -> None:
    """Validate ``autoaugment``/``cutout`` for dataset ``name`` (ConfigError if unusable)."""
    if not isinstance(autoaugment, bool):
        raise ConfigError(
            f"must be true or false, got {autoaugment!r}.", key="dataset.autoaugment", fix="Set dataset.autoaugment=true or false."
        )
    if isinstance(cutout, bool) or not isinstance(cutout, int) or cutout < 0:
        raise ConfigError(
            f"must be a whole number of pixels >= 0, got {cutout!r}.",
            key="dataset.cutout",
            fix="Set dataset.cutout=0 to disable Cutout, or e.g. dataset.cutout=16 for a 16x16 square on CIFAR.",
        )
    size = dataset_info(name).image_size
    if cutout >= size:
        raise ConfigError(
            f"a {cutout}x{cutout} Cutout square does not fit inside the {size}x{size} images of {name}.",
            key="dataset.cutout",
            fix=f"Use a value between 1 and {size - 1} (16 is usual for 32x32 CIFAR), or 0 to disable it.",
        )


def cutout_transform(size: int, image_size: int) -> T.RandomErasing:
    """Cutout as ``RandomErasing``: always erase one ``size``×``size`` square to 0."""
    scale = (size * size) / float(image_size * image_size)
    return T.RandomErasing(p=1.0, scale=(scale, scale), ratio=(1.0, 1.0), value=0)


def build_transform(
    name: str, split: str, *, augment: bool = True, autoaugment: bool = False, cutout: int = 0,
    crop: int | None = None, flip: bool = True,
) -> Callable:
    """The PIL-image -> normalised float tensor transform for a file-backed dataset.

    Augmentation (including ``autoaugment`` and ``cutout``) only happens when
    ``split == "train"`` and ``augment`` is true. ``crop`` (CIFAR only): the
    side of a random (augmenting) or central crop, see the module docstring.
    ``flip=False`` leaves the ``RandomHorizontalFlip`` out of the augmentation.
    """
    if not isinstance(flip, bool):
        raise ConfigError(f"must be true or false, got {flip!r}.", key="dataset.flip",
                          fix="Set dataset.flip=true (crop + flip) or false (crop only).")
    flips = [T.RandomHorizontalFlip()] if flip else []
    check_crop(name, crop)
    info = dataset_info(name, crop)
    check_augment_options(name, autoaugment=autoaugment, cutout=cutout)
    train_aug = split == "train" and bool(augment)

    steps: list[Callable] = []
    if name == "imagenet":
        if train_aug:
            steps += [T.RandomResizedCrop(info.image_size), *flips]
        else:
            steps += [T.Resize(256), T.CenterCrop(info.image_size)]
    elif name in ("cifar10", "cifar100"):
        if crop is not None:
            steps += [T.RandomCrop(crop), *flips] if train_aug else [T.CenterCrop(crop)]
        elif train_aug:
            steps += [T.RandomCrop(info.image_size, padding=4), *flips]
    elif name != "mnist":
        raise ConfigError(
            f"dataset {name!r} is held in memory as tensors and has no file transform.",
            key="dataset",
            fix="Use build_dataset(), which handles every dataset.",
        )

    if train_aug and autoaugment:
        policy = T.AutoAugmentPolicy.IMAGENET if name == "imagenet" else T.AutoAugmentPolicy.CIFAR10
        steps.append(T.AutoAugment(policy))

    steps += [T.ToTensor(), T.Normalize(info.mean, info.std)]

    if train_aug and cutout > 0:
        steps.append(cutout_transform(cutout, info.image_size))
    return T.Compose(steps)
