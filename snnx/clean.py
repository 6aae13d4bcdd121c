"""`snnx clean`: free the artifact cache under paths.root; with all=true the results too.

Only what snnx writes there is removed, each by its name: the cache's ``ann/<key>/``,
``calib/<key>/`` and ``sim/<key>/`` (an interrupted simulation's resume state) entries with their
lock files, and with all=true the ``runs/``, ``multirun/``, ``sweeps/`` and ``tables/`` folders.
Anything else is left where it is and listed. An artifact whose lock a running job holds is skipped.
A folder with none of snnx's marks is refused, so a mistyped paths.root (a home folder, ``/``) is
never emptied.

Removing a lock file is safe for the jobs that start afterwards; a job that opened it in the instant
between our lock and its removal may train the same ANN as a later job (twice the work), and the
atomic writes keep every file whole either way.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from snnx.artifacts import lock_file, try_artifact_lock
from snnx.errors import ConfigError

# The cache's kinds of artifact (snnx.artifacts.ann_dir, snnx.pipeline.ensure_stats, snnx.sim_state.sim_state_dir),
# each entry named by its key.
CACHE_KINDS = {"ann": "ANN", "calib": "calibration", "sim": "simulation resume state"}
# What runs and tables write under paths.root (conf/config.yaml's hydra dirs, the Makefile's sweeps, snnx table).
RESULT_FOLDERS = ("runs", "multirun", "sweeps", "tables")
_KEY = re.compile(r"^[0-9a-f]{16}$")


@dataclass
class Plan:
    root: Path
    artifacts: dict = field(default_factory=dict)  # kind → [(key, bytes)]
    results: dict = field(default_factory=dict)  # folder → bytes
    foreign: list = field(default_factory=list)  # paths under cache/ that snnx did not write


def size_of(path: Path) -> int:
    """Bytes of the files under ``path`` (or of the file itself); links are not followed."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    total = 0
    for base, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(base, name)).st_size
            except OSError:
                pass  # removed meanwhile
    return total


def _marks(root: Path) -> bool:
    """Whether ``root`` holds something only snnx writes: a cache entry or a run's record."""
    cache = root / "cache"
    for kind in CACHE_KINDS:
        for entry in (cache / kind).glob("*") if (cache / kind).is_dir() else ():
            if _KEY.match(entry.name.removesuffix(".lock")):
                return True
    patterns = {"runs": "*/*/.hydra/config.yaml", "multirun": "*/*/multirun.yaml", "sweeps": "**/.hydra/config.yaml",
                "tables": "*.csv"}
    return any(next((root / folder).glob(pattern), None) is not None
               for folder, pattern in patterns.items() if (root / folder).is_dir())


def plan(root: str | os.PathLike, *, everything: bool = False) -> Plan:
    """What :func:`clean` would remove under ``root``, with sizes; a ConfigError if ``root`` is not snnx's."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{str(root)!r} is a file, not an outputs folder.", key="paths.root",
                          fix="Point paths.root to the folder your runs write to (default: outputs).")
    if not root.exists():
        return Plan(root)
    # A folder that holds only snnx's own folders (or nothing: cleaned before) is snnx's too.
    if not _marks(root) and not {p.name for p in root.iterdir()} <= {"cache", *RESULT_FOLDERS}:
        raise ConfigError(f"{str(root)!r} does not look like a snnx outputs folder (no cache/ann/<key>, "
                          "cache/calib/<key> or run records under runs/, multirun/ or sweeps/), so nothing in it "
                          "is removed.", key="paths.root",
                          fix="Point paths.root to the folder your runs write to (default: outputs).")
    out = Plan(root)
    cache = root / "cache"
    if cache.is_dir():
        for kind_dir in sorted(cache.iterdir()):
            if kind_dir.name not in CACHE_KINDS or not kind_dir.is_dir():
                out.foreign.append(kind_dir)
                continue
            keys = {}
            for entry in sorted(kind_dir.iterdir()):
                key = entry.name.removesuffix(".lock")
                if not _KEY.match(key):
                    out.foreign.append(entry)
                    continue
                keys[key] = keys.get(key, 0) + size_of(entry)
            out.artifacts[kind_dir.name] = sorted(keys.items())
    if everything:
        out.results = {name: size_of(root / name) for name in RESULT_FOLDERS if (root / name).is_dir()}
    return out


def clean(root: str | os.PathLike, *, everything: bool = False, dry_run: bool = False,
          say: Callable[[str], None] = print) -> int:
    """Remove what :func:`plan` lists (nothing with ``dry_run``), saying what and how many MB; the bytes freed."""
    todo = plan(root, everything=everything)
    root = todo.root
    if not root.exists():
        say(f"snnx clean: nothing to free, {root} does not exist")
        return 0
    verb = "would free" if dry_run else "freed"
    say(f"snnx clean: {root}{' (dry run: nothing is removed)' if dry_run else ''}")
    freed = 0
    for kind, entries in todo.artifacts.items():
        done, busy, size = 0, [], 0
        for key, nbytes in entries:
            directory = root / "cache" / kind / key
            if dry_run:
                done, size = done + 1, size + nbytes
                continue
            with try_artifact_lock(directory) as held:
                if not held:
                    busy.append(key)
                    continue
                shutil.rmtree(directory, ignore_errors=True)
                lock_file(directory).unlink(missing_ok=True)
            done, size = done + 1, size + nbytes
        freed += size
        name = CACHE_KINDS[kind]
        say(f"  cache/{kind:<6} {done} {name}{'s' if done != 1 else ''}: {size / 1e6:.1f} MB")
        for key in busy:
            say(f"  cache/{kind}/{key}: left alone, a running job holds its lock")
    for folder, nbytes in todo.results.items():
        if not dry_run:
            shutil.rmtree(root / folder, ignore_errors=True)
        freed += nbytes
        say(f"  {folder + '/':<12} {nbytes / 1e6:.1f} MB")
    if not dry_run:
        for kind in CACHE_KINDS:
            _remove_if_empty(root / "cache" / kind)
        _remove_if_empty(root / "cache")
    for path in todo.foreign:
        say(f"  {path.relative_to(root)}: left alone (not written by snnx)")
    kept = {name: size_of(root / name) for name in RESULT_FOLDERS if not everything and (root / name).is_dir()}
    if kept:
        shown = ", ".join(f"{name}/ {nbytes / 1e6:.1f} MB" for name, nbytes in kept.items())
        say(f"  kept: {shown} (the results; all=true removes them too)")
    say(f"{verb} {freed / 1e6:.1f} MB under {root}")
    return freed


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass  # absent, or something is left in it


# `snnx clean` takes these keys (with their values' kind); anything else is an error naming them.
KEYS = {"paths.root": str, "all": bool, "dry_run": bool}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def parse(args: list[str]) -> dict:
    """``snnx clean``'s command line (key=value words) as {root, everything, dry_run}."""
    values = {"paths.root": "outputs", "all": False, "dry_run": False}
    for arg in args:
        key, sep, value = arg.lstrip("+").partition("=")
        if not sep or key not in KEYS:
            raise ConfigError(f"`snnx clean` takes {', '.join(f'{k}=' for k in KEYS)} only, not {arg!r}.",
                              key=key or arg, fix="Use e.g. `snnx clean paths.root=outputs` (the cache), "
                              "`snnx clean all=true` (the results too) or `snnx clean dry_run=true` (only say).")
        if KEYS[key] is bool:
            if value.lower() not in _TRUE + _FALSE:
                raise ConfigError(f"must be true or false, got {value!r}.", key=key,
                                  fix=f"Set {key}=true or {key}=false.")
            values[key] = value.lower() in _TRUE
        else:
            values[key] = value
    return {"root": values["paths.root"], "everything": values["all"], "dry_run": values["dry_run"]}


USAGE = """usage: snnx clean [paths.root=outputs] [all=true] [dry_run=true]

Frees the artifact cache under paths.root (cache/ann: trained ANNs; cache/calib: calibrations;
cache/sim: interrupted simulations' resume states), printing what each part frees. A later run
trains or calibrates again what it needs (and simulates from the first batch).
  all=true      also remove the results: runs/, multirun/, sweeps/ and tables/
  dry_run=true  only say what would be freed
An artifact a running job holds is left alone; a folder that is not a snnx outputs folder is refused."""
