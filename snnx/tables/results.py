"""Find and read snnx's measured results: results.csv, plus what lies beside it.

Every results.csv under a root is one run (one row per T). Beside it, where
present: `.hydra/config.yaml` (the run's composed config: its keys become
dotted columns such as `act.k` or `convert.variant`, so layouts can match on
settings results.csv does not carry), `layers.csv` (per-layer statistics) and
`neurons.csv` (per-layer threshold ranges).

A results.csv that cannot be used (unreadable, half-written, not numbers where
numbers belong, required columns missing) is never dropped silently:
:func:`read_results` reports it as a :class:`SkippedFile` with the reason, and
:func:`pending_jobs` counts the jobs of a multirun sweep that have no
results.csv yet (still running, queued on Slurm, or failed).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import yaml

from snnx.config import recipe, runtime_keys
from snnx.console import log
from snnx.errors import DataError, SnnxError
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


def no_results_error(root: Path, pending: "list[PendingJobs] | None" = None) -> SnnxError:
    waiting = "".join(f" {p.note}." for p in pending or [])
    return SnnxError(
        f"no results.csv under {str(root)!r}, so there is nothing to tabulate.{waiting}", key="paths.root",
        fix="Run `snnx run` (or a multirun such as `snnx run -m act.L=2,4,8`) first, or point paths.root "
            "(or table.sweep_dir) at the directory that holds its outputs.")


# -- files that cannot be used, jobs without results ----------------------------------------
# Every row of a results.csv needs these; snnx has written both since its first results.csv.
REQUIRED_COLUMNS = ("T", "acc")
# The results.csv columns that hold numbers (snnx.pipeline.RESULT_COLUMNS and EXTRA_COLUMNS; listed here, as
# snnx.pipeline loads torch). An empty cell is allowed (NaN: not measured); any other text is not.
NUMERIC_COLUMNS = ("T", "acc", "ann_acc", "conversion_loss", "spikes_per_neuron", "sops", "macs", "energy_mj",
                   "negative_spikes_per_neuron", "ann_macs", "ann_energy_mj", "time_steps_simulated",
                   "hidden_spikes", "hidden_negative_ratio", "hidden_neurons", "ops_ratio", "qann_bits", "qann_acc",
                   "qann_energy_mj", "energy_ratio")
# The stages whose runs write a results.csv: a sweep of any other stage has no job waiting for one.
RESULT_STAGES = ("run", "simulate")


@dataclass(frozen=True)
class SkippedFile:
    """A results.csv left out of the table, and why."""

    path: Path
    reason: str

    @property
    def note(self) -> str:
        return f"skipped {self.path}: {self.reason}"


@dataclass(frozen=True)
class PendingJobs:
    """The jobs of one multirun sweep (``<sweep_dir>/<job num>/.hydra``) that have no results.csv yet."""

    sweep_dir: Path
    jobs: int  # the sweep's jobs whose stage writes a results.csv
    missing: tuple[int, ...]  # their job numbers, ascending

    @property
    def note(self) -> str:
        shown = ", ".join(str(n) for n in self.missing[:20])
        if len(self.missing) > 20:
            shown += f", … ({len(self.missing) - 20} more)"
        verb = "has" if len(self.missing) == 1 else "have"
        return f"sweep {self.sweep_dir}: {len(self.missing)} of {self.jobs} jobs {verb} no results.csv yet: {shown}"


def _short(text: str, limit: int = 40) -> str:
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _check_text(text: str) -> str | None:
    """Why a results.csv's text is unusable (rows shorter or longer than the header, no rows); None if fine."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        while header is not None and not header:  # blank lines before the header
            header = next(reader, None)
        if header is None:
            return "empty file (no header, no rows)"
        rows = 0
        for fields in reader:
            if not fields:  # a blank line (pandas skips them too)
                continue
            rows += 1
            if len(fields) != len(header):
                cut = " (truncated: half-written?)" if len(fields) < len(header) else ""
                return f"line {reader.line_num} has {len(fields)} of the header's {len(header)} fields{cut}"
    except csv.Error as exc:
        return f"not CSV at line {reader.line_num}: {exc}"
    if rows == 0:
        return "a header and no rows (half-written?)"
    return None


def _check_frame(frame: pd.DataFrame) -> str | None:
    """Why a parsed results.csv is unusable (required columns missing, text where numbers belong); None if fine."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        return f"no {', '.join(missing)} column{'s' if len(missing) > 1 else ''} (not a snnx results.csv?)"
    for column in (c for c in NUMERIC_COLUMNS if c in frame.columns):
        values = frame[column]
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna() & values.notna() & (values.astype(str).str.strip() != "")
        if column in REQUIRED_COLUMNS:
            bad |= values.isna()
        if bad.any():
            first = int(bad.to_numpy().nonzero()[0][0])
            value = values.iloc[first]
            what = "an empty value" if pd.isna(value) else f"{_short(value)}, not a number"
            # +2: the header is line 1 (blank lines aside, the row's line in the file)
            return f"{column} on line {first + 2} is {what}" + (f" ({int(bad.sum())} such rows)" if bad.sum() > 1 else "")
    return None


def read_result_file(path: Path) -> tuple[pd.DataFrame | None, str | None]:
    """One results.csv as a frame, or None and the reason it cannot be used."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot be read: {str(exc).splitlines()[0][:120]}"
    reason = _check_text(text)
    if reason:
        return None, reason
    try:
        # keep_default_na: "nan"/"" are NaN as pandas writes them; object columns keep text for _check_frame.
        frame = pd.read_csv(io.StringIO(text))
    except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError) as exc:
        return None, f"not CSV: {str(exc).splitlines()[0][:120]}"
    reason = _check_frame(frame)
    if reason:
        return None, reason
    for column in (c for c in NUMERIC_COLUMNS if c in frame.columns):
        if frame[column].dtype == object:  # numbers with blanks around them, say
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame, None


def pending_jobs(root: Path) -> list[PendingJobs]:
    """Per multirun sweep under ``root``: its jobs (``<sweep>/<num>/`` with a ``.hydra/``) without a results.csv.

    Only jobs of stages that write one (run, simulate) count; a job whose config cannot be read counts too.
    """
    sweeps: dict[Path, dict[int, bool]] = {}
    root = Path(root)
    if not root.is_dir():
        return []
    for hydra in root.rglob(".hydra"):
        job = hydra.parent
        if not hydra.is_dir() or not job.name.isdigit():
            continue
        tree = read_run_tree(job)
        if tree is not None and tree.get("stage") is not None and str(tree.get("stage")) not in RESULT_STAGES:
            continue
        sweeps.setdefault(job.parent, {})[int(job.name)] = (job / "results.csv").is_file()
    out = []
    for sweep, jobs in sorted(sweeps.items()):
        missing = tuple(sorted(n for n, done in jobs.items() if not done))
        if missing:
            out.append(PendingJobs(sweep, len(jobs), missing))
    return out


def strict_error(root: Path, skipped: list[SkippedFile], pending: list[PendingJobs]) -> SnnxError:
    """table.strict=true: every unusable results.csv and every sweep job without one, in one paragraph."""
    parts = []
    if skipped:
        parts.append(f"{len(skipped)} results.csv file{'s' if len(skipped) > 1 else ''} under {str(root)!r} "
                     f"cannot be used — " + "; ".join(f"{s.path}: {s.reason}" for s in skipped) + ".")
    parts.extend(f"{p.note[0].upper()}{p.note[1:]}." for p in pending)
    return DataError(" ".join(parts) + " So no table is written.", key="table.strict",
                     fix="Rerun or finish those jobs (or move the broken files away), or drop table.strict=true "
                         "to tabulate the runs that have results, with a note for each left out.")


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


def read_results(files: Iterable[Path], skipped: list[SkippedFile] | None = None) -> pd.DataFrame:
    """All runs' rows in one frame, with the run directory, its identity and its config keys.

    A file that cannot be used is left out and appended to ``skipped`` with the reason (``skipped`` None: a
    warning is logged for it instead); it is never dropped silently.
    """
    frames = []
    for path in files:
        frame, reason = read_result_file(path)
        if frame is None:
            entry = SkippedFile(Path(path), reason or "unusable")
            if skipped is None:
                log(f"[yellow]note:[/yellow] {entry.note}")
            else:
                skipped.append(entry)
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
