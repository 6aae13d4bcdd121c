"""Where a file-backed dataset's files lie under ``dataset.root``, and the errors when they are not there.

A dataset module describes its files with a :class:`FileLayout`; the loaders (:mod:`snnx.data.vision`)
and the check before any work starts (:func:`check_dataset_files`) raise the same DataError from it.
No torch here: validation checks presence before torch loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from snnx.errors import DataError

from .registry import DATASETS


def absolute(root: str | os.PathLike) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(root)))


def summary(exc: BaseException) -> str:
    """An exception as one short line, for the message of a DataError."""
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class FileLayout:
    """The files of a dataset, as torchvision lays them out under the root."""

    pretty: str  # the dataset's name in messages ("CIFAR-10")
    folder: str  # the folder under root that holds ``files``
    files: tuple[str, ...]
    where: str  # what to put there; "{dir}" stands for the folder's absolute path
    # Files under root that, all present, stand in for ``files`` (an older layout the loader still reads).
    legacy: tuple[str, ...] = ()

    def paths(self, root: str | os.PathLike) -> list[str]:
        """Absolute paths of the files under ``root``."""
        return [os.path.join(absolute(root), self.folder, f) for f in self.files]

    def missing(self, root: str | os.PathLike) -> list[str]:
        """The absolute paths of the files that are not there (none when the legacy layout is complete)."""
        missing = [p for p in self.paths(root) if not os.path.isfile(p)]
        if missing and self.legacy and all(os.path.isfile(os.path.join(absolute(root), f)) for f in self.legacy):
            return []
        return missing

    def missing_error(self, root: str | os.PathLike, missing: list[str], download: bool,
                      exc: BaseException | None = None) -> DataError:
        where = self.where.format(dir=os.path.join(absolute(root), self.folder))
        if download:
            problem = (
                f"downloading {self.pretty} into {absolute(root)} failed ({summary(exc)}). "
                f"Without a download snnx expects {where}."
            )
            fix = (
                f"Check the network, or fetch the archive on a machine with internet, unpack it under "
                f"{absolute(root)} and run again with dataset.download=false."
            )
        else:
            if len(missing) == len(self.files):
                which = "none of them is there"
            else:
                which = "missing: " + ", ".join(os.path.basename(m) for m in missing)
            problem = f"cannot find the {self.pretty} files: expected {where}; {which}."
            fix = (
                f"Put them there, or set dataset.root (or the SNNX_DATA environment variable) to the folder that "
                f"contains {self.folder.split(os.sep)[0]}/, or pass dataset.download=true on a machine with internet."
            )
            parent = self.root_above(root)
            if parent is not None:
                inside = os.path.join(*self.folder.split(os.sep)[:self._depth_inside(root)])
                fix = (f"dataset.root points inside {inside}/: use the parent folder, dataset.root={parent} "
                       f"(the folder that contains {self.folder.split(os.sep)[0]}/).")
        return DataError(problem, key="dataset.root", fix=fix)

    def _depth_inside(self, root: str | os.PathLike) -> int:
        """How many levels of ``folder`` the root already names at its end (cifar-10-batches-py: 1)."""
        parts = self.folder.split(os.sep)
        tail = absolute(root).split(os.sep)
        for depth in range(len(parts), 0, -1):
            if tail[-depth:] == parts[:depth]:
                return depth
        return 0

    def root_above(self, root: str | os.PathLike) -> str | None:
        """The folder ``root`` should have been when it points inside the dataset's own folder (…/cifar-10-
        batches-py, …/MNIST/raw): the first place users look when the files are not found. None otherwise."""
        depth = self._depth_inside(root)
        if not depth:
            return None
        return os.sep.join(absolute(root).split(os.sep)[:-depth]) or os.sep

    def check_present(self, params: Mapping[str, Any]) -> None:
        """A DataError naming what is missing, when the files are not under ``params["root"]``."""
        missing = self.missing(params["root"])
        if missing:
            raise self.missing_error(params["root"], missing, False)


def check_dataset_files(params: Mapping[str, Any]) -> None:
    """The files of the dataset ``params`` (a ``dataset`` config section) selects are there.

    Presence only, nothing is read. Nothing to check for the sets that read no files, nor with
    ``download`` (the loader fetches what is missing).
    """
    check = DATASETS.get(params["name"]).trait("check_present")
    if check is None or params.get("download"):
        return
    check(params)
