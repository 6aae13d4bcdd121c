"""The dataset registry: each dataset is one module of :mod:`snnx.data.sets` that registers itself here.

An entry's builder is ``build(params, split, *, augment, limit) -> Dataset`` (``params``: the checked
``dataset`` section, every declared key present). Its traits:

* ``info``: the :class:`~snnx.data.info.DatasetInfo` (shape, classes, normalisation) models are built from;
* ``check_present``: ``(params) -> None``, a DataError when the dataset's files are not under
  ``params["root"]`` (presence only, nothing is read); absent for the sets that read no files;
* ``embedded``: true for the sets that ship inside installed packages (no files, no download).

Its ``check`` compares values with the image size (``dataset.cutout``, ``dataset.crop``).
"""

from __future__ import annotations

from snnx.registry import Registry

DATASETS = Registry("dataset", group="dataset", package="snnx.data.sets")
