"""Static facts about a dataset (shape, classes, normalisation), as each registered entry declares them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from snnx.registry import unknown_key_error

from .registry import DATASETS


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


def dataset_info(name: str, crop: int | None = None) -> DatasetInfo:
    """The :class:`DatasetInfo` of dataset ``name``; an unknown name is a ConfigError listing the datasets.

    ``crop`` (``dataset.crop``): the side of the crop the transforms cut, which is
    then the ``image_size`` the model is built for; None keeps the stored size. A
    crop on a dataset that declares none, or one that does not fit, is a ConfigError.
    """
    entry = DATASETS.get(name)
    info: DatasetInfo = entry.trait("info")
    if crop is None:
        return info
    if "crop" not in entry.keys:
        raise unknown_key_error(DATASETS, entry, "crop", DATASETS.where(lambda e: "crop" in e.keys))
    if entry.check is not None:
        entry.check({**entry.defaults(), "name": name, "crop": crop}, DATASETS.group)
    return dataclasses.replace(info, image_size=int(crop))
