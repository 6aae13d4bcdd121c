"""Datasets for snnx: one call, ``build_dataset(params, split)``, for all of them.

Each dataset is one module of :mod:`snnx.data.sets`, registered in
:data:`snnx.data.registry.DATASETS` with its facts (:class:`DatasetInfo`), its parameters, where
its files lie and its builder. Items are ``(float32 tensor [C, H, W] normalised with the dataset's
mean/std, int label)``. Shared code: :mod:`snnx.data.embedded` (sets held in memory as tensors),
:mod:`snnx.data.vision` (torchvision archives), :mod:`snnx.data.transforms` (train-time
augmentation), :mod:`snnx.data.files` (file layouts and their errors).

Importing this package loads no torch (composing and checking a config must not wait for it):
the names that need torch are loaded on first use.
"""

from __future__ import annotations


from snnx.lazy import lazy_attributes

from .build import build_dataset, dataset_params
from .files import check_dataset_files
from .info import DatasetInfo, dataset_info

__all__ = [
    "DatasetInfo",
    "HeadSubset",
    "TensorImageDataset",
    "build_dataset",
    "check_dataset_files",
    "dataset_info",
    "dataset_params",
]

# Names whose modules import torch: loaded when first asked for (PEP 562).
_LAZY = {"HeadSubset": "vision", "TensorImageDataset": "embedded"}
__getattr__ = lazy_attributes(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
