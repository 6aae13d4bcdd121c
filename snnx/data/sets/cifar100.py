"""cifar100: CIFAR-100, 60,000 32×32 colour images in 100 (fine) classes, from the python-version archive.

``<root>/cifar-100-python/{train,test,meta}``; transforms: the CIFAR recipe
(:func:`snnx.data.vision.build_cifar`).
"""

from __future__ import annotations

from snnx.data.files import FileLayout
from snnx.data.info import DatasetInfo
from snnx.data.params import CifarParams, fits_inside
from snnx.data.registry import DATASETS

INFO = DatasetInfo("cifar100", 3, 32, 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))

FILES = FileLayout(
    "CIFAR-100",
    "cifar-100-python",
    ("train", "test", "meta"),
    "{dir}/train, test and meta (the 'CIFAR-100 python version' archive cifar-100-python.tar.gz, unpacked)",
)


@DATASETS.register("cifar100", params=CifarParams, info=INFO, check_present=FILES.check_present,
                   check=fits_inside(INFO),
                   doc="CIFAR-100 from its python-version archive under dataset.root (50,000 train / 10,000 test)")
def build(params, split, *, augment, limit):
    # torchvision loads when the data is built: composing a config must not wait for it.
    from torchvision import datasets as tvd

    from snnx.data.vision import build_cifar

    return build_cifar(params, split, augment=augment, limit=limit, info=INFO, files=FILES, archive=tvd.CIFAR100)
