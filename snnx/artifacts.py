"""Content-addressed artifacts, atomic writes, locks and safe checkpoint loading.

A trained ANN is keyed by a hash of exactly the config that determines it, so
any later stage (and any sweep over conversion or simulation settings) finds
it instead of retraining. Concurrent jobs that need the same artifact take a
file lock: one builds it, the others wait and reuse it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from snnx.config import registries, runtime_keys
from snnx.console import log
from snnx.errors import CheckpointError, ChecksumError, ConfigError, DiskError

# Besides the keys that say where or how a run goes (snnx.config.runtime_keys), the ANN's key leaves out the test
# subset: it changes which images the ANN is scored on, not what it learns.
_NOT_HASHED = ("dataset.limit_test",)


def stable_hash(payload: Any, length: int = 16) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _trains_thresholds(act_name: str | None) -> bool:
    """Only an act with a trained threshold learns differently with train.threshold_lr_scale."""
    acts = registries()["act"]
    return act_name in acts and bool(acts.get(act_name).trait("trains_threshold"))


# Likewise the dataset section: the keys a dataset does not declare at the values every dataset had.
_FLAT_DATASET_KEYS = {"augment": True, "autoaugment": False, "cutout": 0, "crop": None, "flip": True,
                      "limit_train": None}
# The act section as every cache key was computed before each activation had its own schema: one flat section
# with every activation's keys at these values. Keys an activation does not declare hash at them still, so the
# ANNs already in a cache keep their keys (their results.csv rows their ann_key).
_FLAT_ACT_KEYS = {"L": None, "init_threshold": 8.0, "shift": 0.5, "y_th": 1.0, "warmup_epochs": 0,
                  "channelwise": False, "softplus": False, "grad_window": "auto", "k": None, "clip_first": 4.0,
                  "k_first": 0}


def _model_payload(model: Mapping[str, Any]) -> dict:
    """The model section as the cache key sees it: the options at their "off" value leave the keys of older caches.

    Dropout off in both places builds the module the old flat ``dropout: 0.0`` built (Dropout(0) and
    Identity are the same no-op, module numbering unchanged), so it hashes as that; any nonzero
    probability is a new placement and keeps the nested form. ``init=default`` and an unset
    ``votes`` are what every older cache was built with.
    """
    payload = dict(model)
    dropout = payload.get("dropout")
    if isinstance(dropout, Mapping):
        payload["dropout"] = 0.0 if not any(dropout.values()) else dict(dropout)
    if payload.get("init") == "default":
        payload.pop("init")
    if payload.get("votes") is None:
        payload.pop("votes", None)
    return payload


def ann_key_payload(config: Mapping[str, Any]) -> dict:
    """The part of a resolved config that determines the trained ANN."""
    skip = runtime_keys(config) | set(_NOT_HASHED)
    dataset = {k: v for k, v in {**_FLAT_DATASET_KEYS, **config["dataset"]}.items() if f"dataset.{k}" not in skip}
    train = {k: v for k, v in config["train"].items() if f"train.{k}" not in skip}
    if not _trains_thresholds(config["act"].get("name")):
        train.pop("threshold_lr_scale", None)
    if train.get("init_from"):
        # What the weights start from, not where it was named: the source ANN's key or the file's content.
        train["init_from"] = init_source_identity(config)
    else:
        train.pop("init_from", None)  # absent from the keys of ANNs trained before train.init_from existed
    if train.get("weight_quant") != "ternary" or train.get("ternary_ste") == "identity":
        train.pop("ternary_ste", None)  # no ternary weights, or the estimator every older cache was trained with
    if dataset.get("crop") is None:
        dataset.pop("crop", None)  # the augmentation older caches were trained with
    if dataset.get("flip", True) is True:
        dataset.pop("flip", None)  # likewise: every older cache was trained with the flip
    act = {**_FLAT_ACT_KEYS, **config["act"]}
    if act.get("grad_window") in (None, "auto", "clip"):
        act.pop("grad_window", None)  # no quantiser, or the [0, λ] window every older cache was trained with
    if act.get("name") != "quant" or act.get("k_first") in (None, act.get("k")):
        act.pop("k_first", None)  # no first-layer level, or the one older caches used (act.k)
    payload = {
        "dataset": dataset,
        "model": _model_payload(config["model"]),
        "act": act,
        "train": train,
        "seed": config["seed"],
    }
    if train.get("weight_quant") == "ternary" and config["model"].get("batch_norm"):
        # A ternary net's hidden Linears gained a BatchNorm1d (snnx.ann.build): not the ANN of older caches.
        payload["ternary_linear_bn"] = True
    marks = registries()["model"].get(config["model"]["name"]).trait("key_marks")
    if marks is not None:
        # Architecture revisions the model declares, which the ANNs of older caches lack.
        info = registries()["dataset"].get(config["dataset"]["name"]).trait("info")
        payload.update(marks(config["dataset"].get("crop") or info.image_size))
    return payload


def ann_key(config: Mapping[str, Any]) -> str:
    return stable_hash(ann_key_payload(config))


INIT_FROM_EXPERIMENT = "experiment:"
# Where snnx.stages puts the composed config of train.init_from=experiment:<preset> (a plain dict).
INIT_SOURCE_KEY = "_init_from"
_FILE_DIGESTS: dict[str, tuple[int, int, str]] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """The file's sha256 (remembered per path while its mtime and size stay the same)."""
    path = str(path)
    stat = os.stat(path)
    known = _FILE_DIGESTS.get(path)
    if known is not None and known[:2] == (stat.st_mtime_ns, stat.st_size):
        return known[2]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    _FILE_DIGESTS[path] = (stat.st_mtime_ns, stat.st_size, digest.hexdigest())
    return digest.hexdigest()


def init_source_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The composed config of train.init_from=experiment:<preset> (put into the run's config by the stage)."""
    source = config.get(INIT_SOURCE_KEY)
    if not isinstance(source, Mapping):
        raise ConfigError(f"{config['train']['init_from']!r} names a preset that was not composed for this run.",
                          key="train.init_from", fix="Run it through the snnx CLI, or call "
                          "snnx.stages.resolve_init_from(config) before using the config from Python.")
    return source


def init_source_identity(config: Mapping[str, Any]) -> dict:
    """train.init_from as the cache key sees it: the source preset's ANN key, or the checkpoint's sha256."""
    ref = str(config["train"]["init_from"])
    if ref.startswith(INIT_FROM_EXPERIMENT):
        return {"ann_key": ann_key(init_source_config(config))}
    if not os.path.isfile(ref):
        raise CheckpointError(f"no checkpoint file at {ref!r}.", key="train.init_from",
                              fix="Give the path of an ANN checkpoint (outputs/cache/ann/<key>/model.pt), or "
                                  "experiment:<preset> for that preset's ANN.")
    return {"sha256": file_sha256(ref)}


def ann_dir(root: str | os.PathLike, key: str) -> Path:
    return Path(root) / "cache" / "ann" / key


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Write failures that are the disk's or the file system's, not the program's.
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO}


def disk_error(path: Path, exc: OSError) -> DiskError:
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return DiskError(f"could not write {str(path)!r}: {reason} (errno {exc.errno}). Nothing was left half-written: "
                     "a file that was there before is unchanged.", key="paths.root",
                     fix="Free space (or fix the permissions) there, or point paths.root at another disk, and run "
                         "the same command again: finished steps are reused from the cache.")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it over ``path`` only on success.

    The temp file is flushed to disk before the rename, so ``path`` is always
    either the old complete file or the new complete file, never a part of one
    (also after SIGKILL or a crash). A temp file left by a killed writer is
    named ``.<name>.*.tmp`` and is removed by :func:`artifact_lock`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise disk_error(path, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_umask())
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except OSError as exc:  # the old file (if any) is untouched; the partial one goes below
        if isinstance(exc, (FileNotFoundError, IsADirectoryError)) or exc.errno not in DISK_ERRNOS:
            raise
        raise disk_error(path, exc) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save ``obj`` to ``path`` atomically, with its checksum sidecar (:func:`checksum_path`)."""
    # torch loads only when a tensor file is written or read: `snnx clean` (and the CLI) need the rest of this module.
    import torch

    path = Path(path)
    sidecar = checksum_path(path)
    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as exc:  # torch's zip writer reports a failed write (a full disk) as a RuntimeError
            if "write" not in str(exc).lower():
                raise
            raise disk_error(path, OSError(errno.ENOSPC, str(exc))) from None
        digest = file_sha256(tmp)
        # The old sidecar goes before the new file replaces the old one: a sidecar never vouches for other bytes.
        sidecar.unlink(missing_ok=True)
    atomic_write_text(sidecar, f"{digest}  {path.name}\n")


# A tensor file's checksum sidecar: <file>.sha256, in sha256sum's format (`sha256sum -c model.pt.sha256` checks it).
CHECKSUM_SUFFIX = ".sha256"


def checksum_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def verify_checksum(path: str | os.PathLike, *, key: str) -> bool:
    """Check ``path`` against its sidecar; False when it has none (a file from before checksums, or not snnx's).
    A mismatch is a :class:`ChecksumError` naming the file."""
    path = Path(path)
    sidecar = checksum_path(path)
    try:
        recorded = sidecar.read_text().split()[0].lower()
    except (OSError, IndexError):
        return False
    actual = file_sha256(path)
    if actual != recorded:
        raise ChecksumError(
            f"{str(path)!r} does not match its checksum ({sidecar.name}: sha256 {recorded[:12]}…, the file now "
            f"{actual[:12]}…): its bytes changed after snnx wrote it (bit rot, or a partial copy between machines).",
            key=key, fix="Copy it again from where it came from, or delete it and its .sha256 so snnx builds it anew.")
    return True


def set_aside(path: str | os.PathLike) -> Path:
    """Rename an unusable file (and its checksum sidecar) to ``<name>.corrupt-<time>`` beside it: kept for a
    look, out of the way of the rebuilt one. Returns the new path."""
    path = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    moved = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, moved)
    sidecar = checksum_path(path)
    if sidecar.exists():
        os.replace(sidecar, checksum_path(moved))
    return moved


def write_csv(frame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _remove_stale_temp_files(directory: Path) -> None:
    """Temp files of a writer that was killed between write and rename (we hold the lock)."""
    if directory.is_dir():
        for leftover in directory.glob(".*.tmp"):
            try:
                leftover.unlink()
            except OSError:
                pass


@contextmanager
def artifact_lock(directory: str | os.PathLike, *, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Exclusive lock on one artifact directory, held while it is built or read.

    The lock is an OS ``flock`` on ``<directory>.lock``: the kernel releases it
    when the holding process ends in any way (SIGKILL included), so a lock
    left by a killed job never blocks anyone and needs no stale-lock timeout.
    The lock file itself is never deleted (deleting it would let two jobs hold
    locks on two different files). ``on_wait`` is told once when another job
    holds the lock and this one waits (default: the console log). On acquiring the lock, temp files a
    killed writer left in ``directory`` are removed.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    lock_path = str(lock_file(directory))
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is None:
                on_wait = log
            on_wait(f"waiting for another job that holds {lock_path}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        _remove_stale_temp_files(directory)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def lock_file(directory: str | os.PathLike) -> Path:
    """The file :func:`artifact_lock` locks for ``directory``: ``<directory>.lock`` beside it."""
    return Path(str(directory) + ".lock")


@contextmanager
def try_artifact_lock(directory: str | os.PathLike) -> Iterator[bool]:
    """:func:`artifact_lock` without waiting: yields False (and holds nothing) when another job holds it."""
    fd = os.open(lock_file(directory), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def sync_directory(directory: str | os.PathLike) -> None:
    """Flush ``directory``'s entries to disk: a rename into it (atomic_path) then survives a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _first_sentence(text: str, limit: int = 160) -> str:
    """The first sentence of a library's message, without terminal colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text))
    text = " ".join(text.split())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    first = match.group(1) if match else text
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _refused_global(text: str) -> str | None:
    """The global a weights-only load refused (``builtins.open`` …), if that is what failed."""
    match = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(text))
    if match:
        return match.group(1)
    # ("Unsupported operand N" means bytes that are no pickle at all: a corrupt file, not a refused object.)
    match = re.search(r"not an allowed global|Unsupported class", str(text))
    return "an object" if match else None


# What load_checkpoint says a file should have been, and how to get one: a trained ANN's by default.
ANN_CHECKPOINT = ("a snnx checkpoint", "a dict with at least 'config', 'state_dict', 'epoch' and 'metrics'",
                  "Use a model.pt written by `snnx train` (outputs/cache/ann/<key>/model.pt).")


def load_checkpoint(path: str | os.PathLike, *, key: str = "ckpt", expected: tuple[str, str, str] = ANN_CHECKPOINT,
                    required: tuple[str, ...] = ("config", "state_dict")) -> dict:
    """Load a snnx checkpoint safely: tensors and plain containers only.

    ``weights_only=True`` refuses any pickled object before it is built, so a
    checkpoint from someone else can never run code here. A file with a
    checksum sidecar (every file snnx writes) is checked against it first: a
    file that still loads but whose bytes changed is a :class:`ChecksumError`.
    Every failure is a CheckpointError naming ``key`` (the config key or file at fault).
    """
    # As in atomic_save: torch loads only when a checkpoint is read.
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {str(path)!r}.", key=key,
                              fix="Give the path of a snnx checkpoint (outputs/cache/ann/<key>/model.pt).")
    verify_checksum(path, key=key)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any library error while reading user input is the user's file
        refused = _refused_global(str(exc))
        if refused is not None:
            raise CheckpointError(
                f"{str(path)!r} contains a pickled Python object ({refused}), not only tensors and plain "
                "containers; it was refused without running anything, since unpickling it could execute code.",
                key=key, fix="Use a checkpoint written by snnx, or re-save its state_dict and config as plain "
                "data (dicts, lists, numbers, strings, tensors).") from exc
        raise CheckpointError(
            f"{str(path)!r} is not a readable torch checkpoint: it is truncated, corrupt or another kind of file "
            f"({type(exc).__name__}: {_first_sentence(exc)}).",
            key=key, fix="Point to an intact checkpoint, or delete it so snnx trains a new one.") from exc
    if not isinstance(data, dict) or not set(required) <= set(data):
        found = f"a dict with keys {sorted(map(str, data))[:8]}" if isinstance(data, dict) else f"a {type(data).__name__}"
        name, layout, fix = expected
        raise CheckpointError(f"{str(path)!r} is a torch file but not {name}: it holds {found}, and {name} is "
                              f"{layout}.", key=key, fix=fix)
    return data


def plain_tree(node):
    """``node`` with every mapping a dict and every sequence a list (what yaml.safe_dump writes, what a stable
    hash reads)."""
    if isinstance(node, Mapping):
        return {str(k): plain_tree(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [plain_tree(v) for v in node]
    return node
