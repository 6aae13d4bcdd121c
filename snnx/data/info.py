"""Static facts about each supported dataset (shape, classes, normalisation)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from snnx.errors import ConfigError


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset before seeing any data.

    ``image_size`` is the side of the (square) tensors that ``build_dataset``
    yields; ``mean``/``std`` are the per-channel statistics those tensors were
    normalised with (one entry per channel).
    """

    name: str
    in_channels: int
    image_size: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)

_INFOS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        # Mean/std of the 80 % train split of sklearn's digits after scaling
        # 0..16 to [0, 1] (computed once, rounded to 4 places).
        DatasetInfo("digits", 1, 8, 10, (0.3054,), (0.3761,)),
        DatasetInfo("mnist5k", 1, 28, 10, MNIST_MEAN, MNIST_STD),
        DatasetInfo("mnist", 1, 28, 10, MNIST_MEAN, MNIST_STD),
        DatasetInfo("cifar10", 3, 32, 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        DatasetInfo("cifar100", 3, 32, 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
        DatasetInfo("imagenet", 3, 224, 1000, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    )
}

DATASETS: tuple[str, ...] = ("digits", "mnist5k", "mnist", "cifar10", "cifar100", "imagenet")
assert set(DATASETS) == set(_INFOS)


#: Datasets that take ``dataset.crop`` (a crop of the stored 32×32 images).
CROPPABLE: tuple[str, ...] = ("cifar10", "cifar100")


def dataset_info(name: str, crop: int | None = None) -> DatasetInfo:
    """Return the :class:`DatasetInfo` for ``name``; unknown names raise ConfigError.

    ``crop`` (``dataset.crop``): the side of the crop the transforms cut, which is
    then the ``image_size`` the model is built for; None keeps the stored size.
    """
    try:
        info = _INFOS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown dataset {name!r}.",
            key="dataset",
            fix=f"Choose one of: {', '.join(DATASETS)}.",
        ) from None
    if crop is None:
        return info
    check_crop(name, crop)
    return dataclasses.replace(info, image_size=int(crop))


def check_crop(name: str, crop) -> None:
    """``dataset.crop`` must be null or a side between 1 and the stored size, on a CIFAR dataset."""
    if crop is None:
        return
    if name not in CROPPABLE:
        raise ConfigError(
            f"dataset={name} has no crop option (it applies to {', '.join(CROPPABLE)}).",
            key="dataset.crop",
            fix="Set dataset.crop=null for this dataset.",
        )
    size = _INFOS[name].image_size
    if isinstance(crop, bool) or not isinstance(crop, int) or not 1 <= crop <= size:
        raise ConfigError(
            f"must be null or a side between 1 and {size} pixels, got {crop!r}.",
            key="dataset.crop",
            fix="Use dataset.crop=24 (random 24×24 crops for training, the central one for testing; "
                "Zou et al. 2024, §4.2) or null (pad-4 random crops at 32).",
        )


def default_data_root() -> str:
    """The data root to use when none is configured: ``$SNNX_DATA`` if set, else ``data``."""
    return os.environ.get("SNNX_DATA") or "data"
