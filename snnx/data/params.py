"""The parameters a dataset entry declares, and the checks of its values against the image size.

Every dataset takes the keys of :class:`DatasetParams`; the file-backed image sets add the
augmentation keys of :class:`ImageParams`, CIFAR its crop and flip (:class:`CifarParams`).
A dataset module may declare more. No torch here: composing a config reads these classes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from snnx.errors import ConfigError
from snnx.registry import param

from .info import DatasetInfo


DATA_ENV = "SNNX_DATA"  # the environment variable that sets the data root
DATA_FALLBACK = "data"  # the data root without it
# An OmegaConf interpolation, which composing a config resolves; resolve_root does it for a section
# given in Python.
ROOT_DEFAULT = f"${{oc.env:{DATA_ENV},{DATA_FALLBACK}}}"


def resolve_root(root: Any) -> Any:
    """``root`` as a composed config has it: the default is ``$SNNX_DATA`` when set, else ``data``."""
    return os.environ.get(DATA_ENV, DATA_FALLBACK) if root == ROOT_DEFAULT else root


# The keys every dataset takes, and why each is common:
# * root, download: where the file-backed sets live and whether to fetch them. The in-memory sets read
#   no files and ignore both, but SNNX_DATA sets root for every run and a sweep over datasets
#   (`-m dataset=mnist5k,cifar10 dataset.root=/srv/data`) sets them once for all of its jobs.
# * augment: the train-split augmentation switch. The in-memory sets have none and ignore it; it stays
#   common because the ANN cache key of every dataset has always held it, so the keys of the ANNs
#   already trained on them stay what they were.
# * limit_train, limit_test, num_workers: how much of a split to use and how to load it, which the
#   pipeline reads for any dataset.
@dataclass
class DatasetParams:
    name: str = param("", "the dataset (the config option that selects it; the registry sets it)")
    root: str = param(ROOT_DEFAULT, f"folder that holds the file-backed datasets (torchvision layout); env "
                                    f"{DATA_ENV} overrides", runtime=True)
    download: bool = param(False, "let torchvision fetch absent files (not ImageNet, whose licence asks for a manual "
                           "download)", runtime=True)
    augment: bool = param(True, "train-split augmentation (the test split is never augmented)")
    limit_train: Optional[int] = param(None, "first N training items only (smoke runs, tests); null = all",
                                       ge=1, integer=True,
                                       fix="Use dataset.limit_train=null for the whole split, or e.g. "
                                           "dataset.limit_train=256.")
    limit_test: Optional[int] = param(None, "first N test items only; null = all", ge=1, integer=True,
                                      fix="Use dataset.limit_test=null for the whole split, or e.g. "
                                          "dataset.limit_test=256.")
    num_workers: int = param(0, "DataLoader worker processes (0 = load in the main process)", ge=0, integer=True,
                             runtime=True,
                             fix="Use dataset.num_workers=0 (load in the main process) or more.")


@dataclass
class ImageParams(DatasetParams):
    """The file-backed image sets: their transforms take AutoAugment and Cutout."""

    autoaugment: bool = param(False, "AutoAugment on the training images (CIFAR10 policy; IMAGENET for imagenet)")
    cutout: int = param(0, "side in pixels of the square erased from each training image; 0 = off", ge=0,
                        integer=True, fix="Use dataset.cutout=0 (off) or the side of the erased square, e.g. 16.")


@dataclass
class CifarParams(ImageParams):
    """CIFAR-10 / CIFAR-100: 32×32 images that can be cropped, with a mirror flip in the augmentation."""

    # Zou et al. 2024, §4.2 train on random 24×24 windows and test on the central one.
    crop: Optional[int] = param(None, "side of a random (train) / central (test) crop without padding; the model "
                                      "is built for crop×crop; null = the pad-4 random crop at 32")
    # Yang et al. 2025, §5.1 name random crop, Cutout and AutoAugment, no flip: flip=false.
    flip: bool = param(True, "the RandomHorizontalFlip of the train augmentation (with augment)")


def fits_inside(info: DatasetInfo) -> Callable[[Mapping[str, Any], str], None]:
    """The entry check of an image dataset: ``cutout`` and ``crop`` (where declared) fit its stored images."""
    size = info.image_size

    def check(values: Mapping[str, Any], prefix: str) -> None:
        cutout = values.get("cutout") or 0
        if cutout >= size:
            raise ConfigError(
                f"a {cutout}x{cutout} Cutout square does not fit inside the {size}x{size} images of {values['name']}.",
                key=f"{prefix}.cutout",
                fix=f"Use a value between 1 and {size - 1} (16 is usual for 32x32 CIFAR), or 0 to disable it.",
            )
        crop = values.get("crop")
        if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or not 1 <= crop <= size):
            raise ConfigError(
                f"must be null or a side between 1 and {size} pixels, got {crop!r}.",
                key=f"{prefix}.crop",
                fix="Use dataset.crop=24 (random 24×24 crops for training, the central one for testing; "
                    "Zou et al. 2024, §4.2) or null (pad-4 random crops at 32).",
            )

    return check
