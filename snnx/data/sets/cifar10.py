"""cifar10: CIFAR-10, 60,000 32×32 colour images in 10 classes, from the python-version archive.

``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``; transforms: the CIFAR
recipe (:func:`snnx.data.vision.build_cifar`).
"""

from __future__ import annotations

from snnx.data.files import FileLayout
from snnx.data.info import DatasetInfo
from snnx.data.params import CifarParams, fits_inside
from snnx.data.registry import DATASETS

INFO = DatasetInfo("cifar10", 3, 32, 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))

FILES = FileLayout(
    "CIFAR-10",
    "cifar-10-batches-py",
    (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"),
    "{dir}/data_batch_1..5, test_batch and batches.meta (the 'CIFAR-10 python version' archive "
    "cifar-10-python.tar.gz, unpacked)",
)


@DATASETS.register("cifar10", params=CifarParams, info=INFO, check_present=FILES.check_present,
                   check=fits_inside(INFO),
                   doc="CIFAR-10 from its python-version archive under dataset.root (50,000 train / 10,000 test)")
def build(params, split, *, augment, limit):
    # torchvision loads when the data is built: composing a config must not wait for it.
    from torchvision import datasets as tvd

    from snnx.data.vision import build_cifar

    return build_cifar(params, split, augment=augment, limit=limit, info=INFO, files=FILES, archive=tvd.CIFAR10)
