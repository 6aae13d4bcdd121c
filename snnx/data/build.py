"""From a ``dataset`` config section to a Dataset: the values checked against the entry, then its builder.

No torch here: the builders import it when they run.
"""

from __future__ import annotations

from typing import Any, Mapping

from snnx.errors import ConfigError

from .params import resolve_root
from .registry import DATASETS

SPLITS = ("train", "test")


def _off_elsewhere(key: str, value: Any) -> bool:
    """``key`` is another dataset's and ``value`` its default there (cutout=0 on digits): it changes nothing.

    A config written before each dataset declared its own keys (the checkpoints of older ANNs)
    carries every dataset's keys at their defaults; such a key is dropped instead of rejected.
    """
    for entry in DATASETS:
        if key in entry.keys:
            default = entry.defaults()[key]
            if type(value) is type(default) and value == default:
                return True
    return False


def dataset_params(params: str | Mapping[str, Any]) -> dict[str, Any]:
    """The values of a ``dataset`` section (or just a dataset's name), checked, with every declared key.

    Unknown name, a key the dataset does not declare (unless it is another dataset's, at its
    default), a value out of range or a crop/Cutout that does not fit: ConfigError naming the key.
    ``root``'s default, the interpolation ``${oc.env:SNNX_DATA,data}``, is resolved as composing does.
    """
    given = {"name": params} if isinstance(params, str) else dict(params)
    entry = DATASETS.get(given.get("name"))
    given = {k: v for k, v in given.items() if k in entry.keys or not _off_elsewhere(k, v)}
    values = DATASETS.check(given)
    values["root"] = resolve_root(values["root"])
    return values


def build_dataset(params: str | Mapping[str, Any], split: str, *, augment: bool | None = None,
                  limit: int | None = None):
    """Build the ``split`` ("train" or "test") of the dataset that ``params`` describes.

    ``params``: a ``dataset`` config section (``{"name": "cifar10", "root": ..., "crop": 24}``;
    keys left out take the dataset's defaults) or just a dataset's name. ``augment``: the
    train-split augmentation on/off (None: ``params["augment"]``; the test split is never
    augmented, the in-memory sets have none). ``limit``: keep only the first ``limit`` items, a
    deterministic subset (larger than the dataset is fine; None: ``limit_train`` /
    ``limit_test`` of ``params``). The splits are fixed, independent of the run's seed;
    augmentation draws from torch's global RNG, which the caller seeds.

    Items are ``(float32 tensor [C, H, W] normalised with the dataset's mean/std, int label)``.
    User-caused problems raise :class:`~snnx.errors.ConfigError` (bad option, before any file is
    looked at) or :class:`~snnx.errors.DataError` (missing or damaged files).
    """
    values = dataset_params(params)
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}.", key="split", fix="Use 'train' or 'test'.")
    if limit is None:
        limit = values["limit_train"] if split == "train" else values["limit_test"]
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(
            f"must be a positive whole number of items or null, got {limit!r}.",
            key="dataset.limit",
            fix="Set dataset.limit=null to use the whole dataset, or e.g. dataset.limit=256 for a smoke run.",
        )
    entry = DATASETS.get(values["name"])
    return entry.build(values, split, augment=values["augment"] if augment is None else augment, limit=limit)
