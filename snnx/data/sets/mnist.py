"""mnist: the 70,000 MNIST digits, read from torchvision's MNIST layout under ``dataset.root``.

``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (uncompressed IDX), or the
older ``<root>/MNIST/processed/{training,test}.pt``, which torchvision still reads.
"""

from __future__ import annotations

import os

from snnx.data.files import FileLayout
from snnx.data.info import DatasetInfo
from snnx.data.params import ImageParams, fits_inside
from snnx.data.registry import DATASETS

INFO = DatasetInfo("mnist", 1, 28, 10, (0.1307,), (0.3081,))

FILES = FileLayout(
    "MNIST",
    os.path.join("MNIST", "raw"),
    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    "{dir}/train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
    "t10k-labels-idx1-ubyte (the four MNIST IDX files, gunzipped)",
    legacy=(os.path.join("MNIST", "processed", "training.pt"), os.path.join("MNIST", "processed", "test.pt")),
)


# No geometric augmentation and no flip: digits are not mirror-symmetric, and the usual MNIST recipes
# train fine without a crop.
@DATASETS.register("mnist", params=ImageParams, info=INFO, check_present=FILES.check_present,
                   check=fits_inside(INFO),
                   doc="MNIST from torchvision's files under dataset.root (60,000 train / 10,000 test)")
def build(params, split, *, augment, limit):
    # torchvision loads when the data is built: composing a config must not wait for it.
    from torchvision import datasets as tvd

    from snnx.data.transforms import augments, build_transform
    from snnx.data.vision import build_archive, head

    train_aug = augments(split, augment)
    transform = build_transform(INFO, [], train_aug=train_aug, autoaugment=params["autoaugment"], policy="CIFAR10",
                                cutout=params["cutout"])
    ds = build_archive(FILES, INFO, split, root=params["root"], download=bool(params["download"]),
                       transform=transform, stock=tvd.MNIST, local=tvd.MNIST, channels_last=False)
    return head(ds, limit)
