"""Content-addressed artifacts, atomic writes, locks and safe checkpoint loading.

A trained ANN is keyed by a hash of exactly the config that determines it, so
any later stage (and any sweep over conversion or simulation settings) finds
it instead of retraining. Concurrent jobs that need the same artifact take a
file lock: one builds it, the others wait and reuse it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from filelock import FileLock

from snnx.errors import CheckpointError

# Dataset keys that say where files are or how they are read, not what is learnt.
_DATASET_KEYS_NOT_HASHED = ("root", "download", "num_workers", "limit_test")
# A lock held longer than this by a job that is gone counts as stale.
LOCK_POLL_SECONDS = 1.0


def stable_hash(payload: Any, length: int = 16) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def ann_key_payload(config: Mapping[str, Any]) -> dict:
    """The part of a resolved config that determines the trained ANN."""
    dataset = {k: v for k, v in config["dataset"].items() if k not in _DATASET_KEYS_NOT_HASHED}
    train = {k: v for k, v in config["train"].items() if k not in ("distributed",)}
    return {
        "dataset": dataset,
        "model": dict(config["model"]),
        "act": dict(config["act"]),
        "train": train,
        "seed": config["seed"],
    }


def ann_key(config: Mapping[str, Any]) -> str:
    return stable_hash(ann_key_payload(config))


def ann_dir(root: str | os.PathLike, key: str) -> Path:
    return Path(root) / "cache" / "ann" / key


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def write_csv(frame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


@contextmanager
def artifact_lock(directory: str | os.PathLike) -> Iterator[None]:
    """Exclusive lock on one artifact directory.

    filelock's lock is an OS-level flock: it is released by the kernel when the
    holding process dies, so a lock left by a killed job never blocks anyone.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(directory) + ".lock")
    with lock:
        yield


def load_checkpoint(path: str | os.PathLike, *, key: str = "ckpt") -> dict:
    """Load a snnx checkpoint safely: tensors and plain containers only.

    ``weights_only=True`` refuses any pickled object, so a checkpoint from
    someone else can never run code here.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {str(path)!r}.", key=key,
                              fix="Give the path of a snnx checkpoint (outputs/cache/ann/<key>/model.pt).")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{str(path)!r} holds objects other than tensors and plain containers, so it was refused "
            f"unread (loading it could run arbitrary code) [{str(exc).splitlines()[0][:160]}].",
            key=key, fix="Use a checkpoint written by snnx, or re-save its state_dict and config as plain data.") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{str(path)!r} is not a readable torch checkpoint (truncated or corrupt: {str(exc).splitlines()[0][:160]}).",
            key=key, fix="Point to an intact checkpoint, or delete it so snnx trains a new one.") from exc
    if not isinstance(data, dict) or not {"config", "state_dict"} <= set(data):
        raise CheckpointError(
            f"{str(path)!r} is a torch file but not a snnx checkpoint (it needs the keys 'config' and 'state_dict').",
            key=key, fix="Use a model.pt written by `snnx train`.")
    return data
