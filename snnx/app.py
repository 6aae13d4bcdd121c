"""The Hydra application behind the CLI: composition, checks, stage dispatch.

``launch(stage, args)`` first composes and validates every job the command
line describes (all combinations of a multirun sweep), so a typo or an
impossible combination fails in a second, before anything is written; only
then does it hand the same arguments to one ``@hydra.main`` function.

User errors (:class:`~snnx.errors.SnnxError`, and the composition errors Hydra
and OmegaConf raise) end as one paragraph on stderr and exit status 2, with a
traceback only under ``debug=true``. In a multirun a failing job does not stop
the others: each failure is reported where it happens and listed again when
the sweep ends (exit status 2).

With ``objective.metric`` set the job returns that number (a float) instead of
its result dict, which is what an optimising sweeper (Optuna) needs. Under
torchrun, the processes other than rank 0 get a throw-away Hydra run
directory: rank 0's is the run's record.
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import traceback

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from rich.markup import escape
from rich.table import Table

from snnx.composition import (_override_key, _override_value, compose, compose_checked,  # noqa: F401 (re-exported)
                              explain_hydra_error, normalise_overrides, register_configs)
from snnx.config import config_dir
from snnx.console import console, log, set_job
from snnx.errors import ConfigError, SnnxError
from snnx.validate import validate

# Composing a multirun's every combination up front is cheap (tens of ms each);
# past this many we check the first combinations only.
MAX_PRECHECKED_JOBS = 256
# Hydra's own flags that take the next argument as their value.
_FLAGS_WITH_VALUE = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--package", "-p",
                     "--cfg", "-c", "--shell-completion", "-sc", "--experimental-rerun"}
_HELP_FLAGS = {"--help", "-h", "--hydra-help"}
_INFO_FLAGS = {"--cfg", "-c", "--info", "-i", "--resolve", "--shell-completion", "-sc"}
_MULTIRUN_FLAGS = {"-m", "--multirun"}
_FAILURES_ENV = "SNNX_MULTIRUN_FAILURES"
_TRUE = {"true", "yes", "on", "1"}


# -- command line ---------------------------------------------------------------
def split_args(args: list[str]) -> tuple[list[str], list[str]]:
    """(overrides, flags): Hydra's flags (and their values) apart from key=value overrides."""
    overrides, flags = [], []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-"):
            flags.append(arg)
            if arg in _FLAGS_WITH_VALUE and i + 1 < len(args) and "=" not in args[i + 1]:
                flags.append(args[i + 1])
                i += 1
            elif arg in ("--info", "-i") and i + 1 < len(args) and "=" not in args[i + 1] \
                    and not args[i + 1].startswith("-"):
                flags.append(args[i + 1])
                i += 1
        else:
            overrides.append(arg)
        i += 1
    return overrides, flags


def _sweep_combinations(overrides: list[str]) -> tuple[list[list[str]], list[str]]:
    """Expand a multirun's sweep overrides (a=1,2 b=x,y) into job override lists; also the swept keys."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    choices, swept = [], []
    for ov in parsed:
        if ov.is_sweep_override():
            try:
                values = [f"{ov.get_key_element()}={v}" for v in ov.sweep_string_iterator()]
            except Exception:  # an interval sweep (Optuna …) has no list of values to check
                continue
            swept.append(ov.get_key_element())
        else:
            values = [ov.input_line]
        choices.append(values)
    combos = itertools.product(*choices)
    return [list(c) for c in itertools.islice(combos, MAX_PRECHECKED_JOBS)], swept


def _sweep_size(overrides: list[str]) -> int | None:
    """How many jobs Hydra's basic sweeper makes of these overrides (None: a sweep with no list of values)."""
    size = 1
    for ov in OverridesParser.create().parse_overrides(overrides):
        if ov.is_sweep_override():
            try:
                size *= len(list(ov.sweep_string_iterator()))
            except Exception:  # an interval sweep: its sweeper decides
                return None
    return size


def _hydra_flags(flags: list[str]) -> list[str]:
    """The flags as Hydra's argparse takes them: a bare --info gets its value (all), since the overrides
    that follow it would otherwise be read as the value."""
    out = []
    for i, flag in enumerate(flags):
        out.append(flag)
        if flag in ("--info", "-i") and (i + 1 == len(flags) or flags[i + 1].startswith("-")):
            out.append("all")
    return out


# -- checks before any work ----------------------------------------------------------
def _debug_requested(overrides: list[str]) -> bool:
    return any(_override_key(o) == "debug" and str(_override_value(o)).lower() in _TRUE for o in overrides)


def precheck(stage: str, args: list[str], *, semantic: bool = True) -> list[DictConfig]:
    """Compose (and validate) every job before any work starts: a typo fails in a second.

    Returns the composed configs. Notes on tidied values are printed once.
    """
    overrides, flags = split_args(args)
    multirun = any(f in _MULTIRUN_FLAGS for f in flags)
    printing = [i for i, f in enumerate(flags) if f in ("--cfg", "-c", "--info", "-i")]
    if multirun and printing:
        i = printing[0]
        info = " ".join(flags[i:i + 2]) if i + 1 < len(flags) and not flags[i + 1].startswith("-") else flags[i]
        raise ConfigError(f"-m and {flags[i]} cannot be combined (Hydra prints one config, it does not sweep).",
                          key="-m", fix=f"Drop -m: `snnx {stage} {info} …` prints the config with the same overrides "
                          "(`--cfg hydra` shows the launcher and the sweeper).")
    if multirun and os.environ.get("WORLD_SIZE", "1") not in ("", "1"):
        raise ConfigError("a multirun cannot run under torchrun: each sweep job would be shared by all its processes.",
                          key="-m / torchrun", fix="Run one job per torchrun command (a shell loop over the settings), "
                          "or sweep without torchrun.")
    try:
        jobs, swept = _sweep_combinations(overrides) if multirun else ([overrides], [])
    except Exception as exc:  # a malformed sweep override
        raise ConfigError(explain_hydra_error(exc, overrides, stage)) from exc
    notes: list[str] = []
    configs = []
    for job in jobs:
        try:
            cfg = compose_checked(stage, job)
            if semantic:
                validate(cfg, check_paths=True, note=lambda t: notes.append(t) if t not in notes else None,
                         explicit=explicit_keys(job))
        except SnnxError as exc:
            if len(jobs) > 1:
                which = " ".join(o for o in job if _override_key(o) in swept)
                raise type(exc)(f"{exc.problem} [sweep job {which}; no job was started]", key=exc.key,
                                fix=exc.fix) from exc
            raise
        configs.append(cfg)
    for text in notes:
        print(f"snnx: note: {text}")
    return configs


def explicit_keys(overrides: list[str] | None):
    """``explicit(key)`` for validate: whether ``key`` was set by one of these command-line overrides
    (None: no command line is known, so every key counts as the user's)."""
    if overrides is None:
        return None
    keys = {_override_key(o).lstrip("+~") for o in overrides}
    return lambda key: key in keys


def _job_overrides() -> list[str] | None:
    """The overrides of the running Hydra job (a multirun job's own values included)."""
    try:
        return list(HydraConfig.get().overrides.task)
    except Exception:  # noqa: BLE001 — not inside a Hydra job (a test calling run_stage directly)
        return None


def _close_bars() -> None:
    """Erase any progress bar still drawn, so that the message printed next is not overdrawn."""
    bars = sys.modules.get("snnx.progress")  # loaded only by a stage that draws bars: nothing to import here
    if bars is not None:
        bars.close_all()


def report_error(exc: BaseException, debug: bool) -> None:
    _close_bars()
    if debug:
        traceback.print_exception(exc)
    print(f"snnx: error: {exc}", file=sys.stderr, flush=True)


# Exit status of a run ended by Ctrl-C (128 + SIGINT, as a shell reports it).
INTERRUPTED_STATUS = 130


def report_interrupt(exc: KeyboardInterrupt) -> None:
    """Ctrl-C: one line on stderr, with the epoch a rerun resumes from when training had saved one
    (snnx.trainer.TrainingInterrupted carries it). A torchrun process other than rank 0 says nothing."""
    _close_bars()
    if os.environ.get("RANK", "0") not in ("", "0"):
        return
    resume = getattr(exc, "resume_epoch", None)
    if resume is None:
        print("snnx: interrupted", file=sys.stderr, flush=True)
        return
    stage, epochs = getattr(exc, "stage_name", "train"), getattr(exc, "epochs", None)
    name = "epoch" if stage == "train" else f"{stage} epoch"
    if epochs is not None and resume > epochs:  # stopped after the last epoch's checkpoint, before model.pt
        print(f"snnx: interrupted; rerun the same command to finish (all {epochs} {name}s are saved)",
              file=sys.stderr, flush=True)
        return
    print(f"snnx: interrupted; rerun the same command to resume from {name} {resume}", file=sys.stderr, flush=True)


def run_stage(cfg: DictConfig, on_result=None) -> dict | float | None:
    """The stage's result dict, or the number objective.metric names (None in a torchrun helper process).

    ``on_result(result)`` sees the result dict either way (a multirun job records it for the summary)."""
    # snnx.stages loads pandas, and the stage that runs its own libraries (torch for all but `table`):
    # composing and checking a config (precheck, --help) must not wait for them.
    from snnx import stages

    # Already checked (and its notes printed) before launch; this sorts sim.T again in the job's config.
    validate(cfg, check_paths=True, note=None, explicit=explicit_keys(_job_overrides()))
    result = stages.run_stage(cfg)
    if on_result is not None:
        on_result(result)
    if cfg.objective.metric is not None:
        return stages.objective_value(cfg, result)
    return result


# -- multirun bookkeeping: one line per job in a file the launching process reads at the end --------
def _job_context(swept: list[str], command_keys: set[str], total: int | None) -> dict:
    """The running multirun job: its number (Hydra's, the run directory's name), the overrides that tell it
    apart (the swept keys; those an optimising sweeper adds), its label and where it writes."""
    try:
        hc = HydraConfig.get()
        num, task = hc.job.num, list(hc.overrides.task)
        run_dir = str(hc.runtime.output_dir)
        sweep_dir = str(hc.sweep.dir) if hc.sweep.dir else os.path.dirname(run_dir)
        basic = str(hc.sweeper.get("_target_", "")).endswith("BasicSweeper")
        parallel = not str(hc.launcher.get("_target_", "")).endswith("BasicLauncher")
    except Exception:  # noqa: BLE001 — not inside a Hydra job
        num, task, run_dir, sweep_dir, basic, parallel = "?", [], "", "", True, False
    shown = [o for o in task if _override_key(o) in swept or _override_key(o) not in command_keys] or task
    count = f"{num}/{total}" if basic and total is not None else f"{num}"
    return {"num": num, "task": task, "shown": shown, "label": f"[job {count} {' '.join(shown)}]".replace(" ]", "]"),
            "run_dir": run_dir, "sweep_dir": sweep_dir, "parallel": parallel}


def _record_job(job: dict, **fields) -> None:
    path = os.environ.get(_FAILURES_ENV)
    if not path:
        return
    record = {"num": job["num"], "overrides": job["task"], "shown": job["shown"], "sweep_dir": job["sweep_dir"],
              **fields}
    line = json.dumps(record, default=float) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())  # one small O_APPEND write: lines from parallel jobs never mix
    finally:
        os.close(fd)


def _record_failure(job: dict, exc: BaseException, user_error: bool) -> None:
    _record_job(job, status="failed", message=str(exc), user=user_error)


def _record_result(job: dict, root: str, result) -> None:
    """A finished job's accuracies: the ANN's, and the SNN's at each simulated T."""
    result = result if isinstance(result, dict) else {}
    ann_acc = result.get("ann_acc", (result.get("metrics") or {}).get("test_acc"))
    frame = result.get("results")
    acc = {} if frame is None else {str(int(t)): float(a) for t, a in zip(frame["T"], frame["acc"])}
    _record_job(job, status="ok", root=root, ann_acc=None if ann_acc is None else float(ann_acc), acc=acc)


def _read_jobs(path: str) -> list[dict]:
    try:
        with open(path) as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except (OSError, ValueError):
        return []


# At most this many Ts get a column in the end-of-sweep summary (the largest ones).
SUMMARY_TS = 4


def _report_sweep(jobs: list[dict]) -> None:
    """The end of a multirun: one row per job (overrides, accuracies, status) and how to aggregate them."""
    if not jobs:
        return
    jobs = sorted(jobs, key=lambda j: (not str(j["num"]).isdigit(), int(j["num"]) if str(j["num"]).isdigit() else 0))
    steps = sorted({int(t) for j in jobs for t in (j.get("acc") or {})})[-SUMMARY_TS:]
    table = Table(title=f"multirun: {len(jobs)} job{'s' if len(jobs) != 1 else ''}")
    for name in ("job", "overrides", "ANN acc %", *(f"T={t}" for t in steps), "status"):
        table.add_column(name, justify="right" if name not in ("overrides", "status") else "left")
    for j in jobs:
        acc = j.get("acc") or {}
        status = "ok" if j.get("status") == "ok" else \
            "failed: " + (str(j.get("message", "")).strip().splitlines() or [""])[0][:80]
        ann = j.get("ann_acc")
        table.add_row(str(j["num"]), escape(" ".join(j.get("shown") or j.get("overrides") or [])),
                      "" if ann is None else f"{ann:.2f}", *(f"{acc[str(t)]:.2f}" if str(t) in acc else ""
                                                             for t in steps), escape(status))
    console.print(table)
    sweep_dir = next((j["sweep_dir"] for j in jobs if j.get("sweep_dir")), None)
    if sweep_dir:
        root = next((j["root"] for j in jobs if j.get("root")), None)
        extra = f" paths.root={shlex.quote(root)}" if root and os.path.normpath(root) != "outputs" else ""
        console.print(f"results → {sweep_dir}\naggregate them: snnx table table.sweep_dir={shlex.quote(sweep_dir)}"
                      f"{extra}", soft_wrap=True, markup=False)


def _report_failures(path: str, swept: list[str]) -> int:
    """Print the failed jobs of a multirun; return the exit status (0 when none failed)."""
    failures = [j for j in _read_jobs(path) if j.get("status") != "ok"]
    if not failures:
        return 0
    failures.sort(key=lambda f: (str(f["num"])))
    print(f"snnx: error: {len(failures)} multirun job{'s' if len(failures) > 1 else ''} failed; the others "
          "finished and kept their results:", file=sys.stderr)
    for f in failures:
        shown = [o for o in f["overrides"] if _override_key(o) in swept] or f["overrides"]
        print(f"  job #{f['num']} ({' '.join(shown)}): {f['message']}", file=sys.stderr)
    return 2 if all(f["user"] for f in failures) else 1


# -- entry -------------------------------------------------------------------------
def _failed_value(cfg: DictConfig) -> float | None:
    """A failed multirun job's return: NaN for an optimising sweeper (Optuna records the trial as failed)."""
    objective = cfg.get("objective")
    return float("nan") if objective is not None and objective.get("metric") is not None else None


def launch(stage: str, args: list[str]) -> None:
    register_configs()
    overrides, flags = split_args(args)
    multirun = any(f in _MULTIRUN_FLAGS for f in flags)
    debug = _debug_requested(overrides)
    swept: list[str] = []
    if not any(f in _HELP_FLAGS for f in flags):
        informational = any(f in _INFO_FLAGS for f in flags)
        try:
            # --cfg / --info print the config: composition must work, the values need not.
            configs = precheck(stage, args, semantic=not informational)
            debug = bool(configs[0].get("debug", debug)) if configs else debug
            if multirun:
                swept = _sweep_combinations(overrides)[1]
        except SnnxError as exc:
            report_error(exc, debug)
            raise SystemExit(exc.exit_code)

    helper_dir = None
    if os.environ.get("WORLD_SIZE", "1") not in ("", "1") and os.environ.get("RANK", "0") not in ("", "0"):
        # A torchrun process other than rank 0 writes nothing that lasts: its run directory is temporary.
        helper_dir = tempfile.mkdtemp(prefix="snnx-rank-")
        overrides = [*overrides, f"hydra.run.dir={helper_dir}", "hydra.output_subdir=null"]

    failures_path = None
    total = None
    command_keys = {"stage", *(_override_key(o) for o in overrides)}
    if multirun:
        fd, failures_path = tempfile.mkstemp(prefix="snnx-multirun-", suffix=".jsonl")
        os.close(fd)
        os.environ[_FAILURES_ENV] = failures_path
        total = _sweep_size(overrides)

    @hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
    def app(cfg: DictConfig):
        job = None
        if multirun:
            # One line per job where it starts, then its label on its results table (and, when jobs run in
            # parallel, on every log line).
            job = _job_context(swept, command_keys, total)
            set_job("", False)
            log(f"{escape(job['label'])} → {escape(job['run_dir'])}")
            set_job(job["label"], prefix=job["parallel"])
        try:
            return run_stage(cfg, on_result=None if job is None else
                             lambda result: _record_result(job, str(cfg.paths.root), result))
        except SnnxError as exc:
            report_error(exc, bool(cfg.get("debug", False)))
            if multirun:
                # One failing job must not stop the others; the failures are listed at the end.
                _record_failure(job, exc, user_error=True)
                return _failed_value(cfg)
            raise SystemExit(exc.exit_code)
        except KeyboardInterrupt as exc:
            report_interrupt(exc)
            raise SystemExit(INTERRUPTED_STATUS) from None
        except Exception as exc:
            _close_bars()
            if multirun:
                traceback.print_exception(exc)
                _record_failure(job, exc, user_error=False)
                return _failed_value(cfg)
            raise
        finally:
            if multirun:
                set_job("", False)

    # Hydra's own help composes only its config, which has no `stage` key.
    # Flags before overrides: argparse cannot take flags between positional overrides.
    # sim.T=32 is sim.T=[32] here as in the precheck's composition.
    sys.argv = ["snnx", *_hydra_flags(flags), *([] if "--hydra-help" in flags else [f"stage={stage}"]),
                *normalise_overrides(overrides)]
    try:
        app()
    finally:
        if helper_dir is not None:
            shutil.rmtree(helper_dir, ignore_errors=True)
        if failures_path is not None:
            _report_sweep(_read_jobs(failures_path))
            status = _report_failures(failures_path, swept)
            os.environ.pop(_FAILURES_ENV, None)
            os.unlink(failures_path)
    if failures_path is not None and status:
        raise SystemExit(status)
