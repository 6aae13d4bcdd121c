"""Find and read snnx's measured results: results.csv, plus what lies beside it.

Every results.csv under a root is one run (one row per T). Beside it, where
present: `.hydra/config.yaml` (the run's composed config: its keys become
dotted columns such as `act.k` or `convert.variant`, so layouts can match on
settings results.csv does not carry), `layers.csv` (per-layer statistics) and
`neurons.csv` (per-layer threshold ranges).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import yaml

from snnx.config import recipe, runtime_keys
from snnx.console import log
from snnx.errors import SnnxError
from snnx.tables.layout import norm

RUN_KEY = "_run"  # the run's directory (one results.csv each)
IDENTITY_KEY = "_identity"  # what determines the numbers, seed excluded: runs sharing it are repeats

# Besides the keys that say where or how a run went (snnx.config.runtime_keys), a run's identity leaves out
# these, so repeats of one setting with different seeds (or a T sweep split over two runs) share a cell.
_NOT_IDENTITY_KEYS = {"seed", "stage", "ckpt", "sim.name", "sim.T"}


def _not_identity(key: str, runtime: set[str]) -> bool:
    return key in _NOT_IDENTITY_KEYS or any(key == r or key.startswith(r + ".") for r in runtime)
# Without a saved config, these results.csv columns stand for the identity.
_FALLBACK_IDENTITY = ("dataset", "model", "act", "L", "convert", "method")


def find_results(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("results.csv") if p.is_file())


def no_results_error(root: Path) -> SnnxError:
    return SnnxError(
        f"no results.csv under {str(root)!r}, so there is nothing to tabulate.", key="paths.root",
        fix="Run `snnx run` (or a multirun such as `snnx run -m act.L=2,4,8`) first, or point paths.root "
            "(or table.sweep_dir) at the directory that holds its outputs.")


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(tree, list):
        out[prefix[:-1]] = json.dumps(tree, default=str)
    else:
        out[prefix[:-1]] = tree
    return out


def read_run_tree(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, OSError):
        return None
    return data if isinstance(data, dict) else None


def _identity(tree: dict[str, Any] | None, frame: pd.DataFrame) -> str:
    if tree is not None:
        payload = {k: v for k, v in flatten(recipe(tree)).items() if k not in _NOT_IDENTITY_KEYS}
    else:
        first = frame.iloc[0]
        payload = {k: first.get(k) for k in _FALLBACK_IDENTITY if k in frame.columns}
        if isinstance(payload.get("method"), str) and "passes" in frame.columns:
            payload["method"] = payload["method"].split(";")[0].strip()
    return json.dumps(payload, sort_keys=True, default=str)


def read_results(files: Iterable[Path]) -> pd.DataFrame:
    """All runs' rows in one frame, with the run directory, its identity and its config keys."""
    frames = []
    for path in files:
        try:
            frame = pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, UnicodeDecodeError) as exc:
            log(f"[yellow]skipping unreadable {path}: {str(exc).splitlines()[0][:120]}[/yellow]")
            continue
        if frame.empty or "T" not in frame.columns:
            continue
        run_dir = path.parent
        tree = read_run_tree(run_dir)
        config = None if tree is None else flatten(tree)
        frame[RUN_KEY] = str(run_dir)
        frame[IDENTITY_KEY] = _identity(tree, frame)
        if config:
            extra = pd.DataFrame({k: [v] * len(frame) for k, v in config.items() if k not in frame.columns},
                                 index=frame.index)
            frame = pd.concat([frame, extra], axis=1)
        frames.append(frame)
    if not frames:
        return pd.DataFrame()
    results = pd.concat(frames, ignore_index=True)
    # The same run copied to two places is one run.
    subset = [c for c in ("run_id", "config_hash", "created", "T") if c in results.columns]
    if len(subset) == 4:
        results = results.drop_duplicates(subset=subset, keep="first").reset_index(drop=True)
    return results


def read_layers(run_dir: str | Path) -> pd.DataFrame | None:
    path = Path(run_dir) / "layers.csv"
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError):
        return None
    return frame if {"T", "layer"} <= set(frame.columns) else None


def threshold_spread(run_dir: str | Path) -> dict[str, float]:
    """CS-QCFS Table 5: per layer Diff = (max θ_c − min θ_c)/min θ_c in %, MaxDiff and AvgDiff over layers.

    Only layers with more than one channel count (a layer-wise threshold has no spread).
    Empty when the run has no neurons.csv or it lacks threshold ranges.
    """
    path = Path(run_dir) / "neurons.csv"
    if not path.is_file():
        return {}
    try:
        frame = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError):
        return {}
    if not {"threshold_min", "threshold_max"} <= set(frame.columns):
        return {}
    if "channels" in frame.columns:
        frame = frame[pd.to_numeric(frame["channels"], errors="coerce") > 1]
    lo = pd.to_numeric(frame["threshold_min"], errors="coerce")
    hi = pd.to_numeric(frame["threshold_max"], errors="coerce")
    diff = ((hi - lo) / lo * 100.0)[lo > 0].dropna()
    if diff.empty:
        return {}
    return {"maxdiff": float(diff.max()), "avgdiff": float(diff.mean())}


def epoch_seconds(root: str | Path, ann_key: str) -> float:
    """Mean seconds per epoch of the ANN ``ann_key`` cached under ``root`` (Yang et al. 2025, Table 6).

    Over the epochs of its last training stage, the one that trains the run's own activation: finetune.csv
    after two-stage training (stage 1 trains layer-wise QCFS), else train.csv. Each epoch's ``seconds`` is
    the trainer's: the training pass and that epoch's test evaluation. NaN when the file is not there.
    """
    # snnx.artifacts loads torch: reading results and building tables needs none otherwise.
    from snnx.artifacts import ann_dir

    directory = ann_dir(root, str(ann_key))
    for stage in ("finetune", "train"):
        path = directory / f"{stage}.csv"
        if not path.is_file():
            continue
        try:
            frame = pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError):
            return float("nan")
        seconds = pd.to_numeric(frame.get("seconds", pd.Series(dtype=float)), errors="coerce").dropna()
        return float(seconds.mean()) if not seconds.empty else float("nan")
    return float("nan")


# The config groups that determine a trained ANN besides its activation (see snnx.artifacts.ann_key_payload).
_ANN_PREFIXES = ("dataset.", "model.", "train.")


def add_relu_loss(results: pd.DataFrame, column: str = "conversion_loss_relu") -> pd.DataFrame:
    """``column`` = the regular-ReLU ANN's accuracy − each row's SNN accuracy (Deng & Gu 2021, Table 1).

    That ANN is the one of an act=relu run (the shift-only sweep) that agrees with the row's run on the
    dataset, model and every ANN-determining dataset./model./train. key and seed; act.* may differ. With
    several such runs the newest one's ann_acc counts. Rows without such a run get NaN (an empty cell).
    """
    if results.empty or not {"acc", "ann_acc", "act"} <= set(results.columns):
        return results

    runtime = runtime_keys()
    keys = ["dataset", "model", "seed"] + sorted(
        c for c in results.columns if c.startswith(_ANN_PREFIXES) and not _not_identity(c, runtime))
    keys = [k for k in keys if k in results.columns]

    def twin(row) -> tuple:
        return tuple(norm(row[k]) if not isinstance(row[k], (list, dict)) else json.dumps(row[k]) for k in keys)

    acts = results["act.name"] if "act.name" in results.columns else results["act"]
    relu = results[acts.map(lambda a: norm(a) == "relu")]
    if "created" in relu.columns:
        relu = relu.sort_values("created", kind="stable")
    ann = {twin(r): float(r["ann_acc"]) for _, r in relu.iterrows()}
    reference = results.apply(lambda r: ann.get(twin(r), float("nan")), axis=1) if len(results) else []
    return results.assign(**{column: pd.to_numeric(reference, errors="coerce") -
                             pd.to_numeric(results["acc"], errors="coerce")})
