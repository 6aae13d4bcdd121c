"""digits: scikit-learn's ``load_digits``, 1,797 8×8 greyscale digits (values 0..16) scaled to [0, 1].

Held in memory (:mod:`snnx.data.embedded`); stratified 80/20 split, 1,437 / 360.
"""

from __future__ import annotations

import functools

from snnx.data.info import DatasetInfo
from snnx.data.params import DatasetParams
from snnx.data.registry import DATASETS

# Mean/std of the 80 % train split after scaling 0..16 to [0, 1] (computed once, rounded to 4 places).
INFO = DatasetInfo("digits", 1, 8, 10, (0.3054,), (0.3761,))


@functools.lru_cache(maxsize=None)
def _load():
    # numpy, scikit-learn and torch load when the data is first built: composing a config must not wait for them.
    import numpy as np
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.data.reshape(-1, 1, 8, 8) / 16.0
    return x, bunch.target.astype(np.int64)


@DATASETS.register("digits", params=DatasetParams, info=INFO, embedded=True,
                   doc="scikit-learn's 1,797 8×8 digits, in memory (1,437 train / 360 test); no augmentation")
def build(params, split, *, augment, limit):
    # torch loads when the data is first built: composing a config must not wait for it
    from snnx.data.embedded import build_embedded

    return build_embedded(INFO, _load, 0.2, split).head(limit)
