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

import itertools
import os
import shutil
import sys
import tempfile
import traceback

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig
from rich.markup import escape

from snnx.composition import (_override_key, _override_value, compose, compose_checked,  # noqa: F401 (re-exported)
                              explain_hydra_error, normalise_overrides, register_configs)
from snnx.config import config_dir
from snnx import sweep_jobs
from snnx.console import log, set_job
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
    (snnx.trainer.TrainingInterrupted carries it); a stop signal (snnx.preemption.Preempted): what was saved
    and where the rerun resumes. A torchrun process other than rank 0 says nothing."""
    _close_bars()
    if os.environ.get("RANK", "0") not in ("", "0"):
        return
    if hasattr(exc, "signal_name"):  # snnx.preemption.Preempted: a scheduler's stop signal, answered
        print(f"snnx: {exc.signal_name} received; saved {exc.saved}; rerun the same command to resume from "
              f"{exc.resume}", file=sys.stderr, flush=True)
        return
    if getattr(exc, "resume_hint", None):  # snnx.sim_state.SimulationInterrupted: the simulation's sums are saved
        print(f"snnx: interrupted; {exc.resume_hint}", file=sys.stderr, flush=True)
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
    configs: list = []
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
        root = str(configs[0].paths.root) if configs else "outputs"
        failures_path = sweep_jobs.make_records_dir(root)
        os.environ[sweep_jobs.JOBS_ENV] = failures_path
        total = _sweep_size(overrides)

    @hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
    def app(cfg: DictConfig):
        job = None
        if multirun:
            # One line per job where it starts, then its label on its results table (and, when jobs run in
            # parallel, on every log line).
            job = sweep_jobs.job_context(swept, command_keys, total)
            set_job("", False)
            log(f"{escape(job['label'])} → {escape(job['run_dir'])}")
            set_job(job["label"], prefix=job["parallel"])
        try:
            return run_stage(cfg, on_result=None if job is None else
                             lambda result: sweep_jobs.record_result(job, str(cfg.paths.root), result))
        except SnnxError as exc:
            report_error(exc, bool(cfg.get("debug", False)))
            if multirun:
                # One failing job must not stop the others; the failures are listed at the end.
                sweep_jobs.record_failure(job, exc, user_error=True)
                return _failed_value(cfg)
            raise SystemExit(exc.exit_code)
        except KeyboardInterrupt as exc:
            report_interrupt(exc)
            # 128 + the signal, as a shell reports a process it ended: SIGINT's 130, SIGTERM's 143 …
            raise SystemExit(getattr(exc, "exit_status", INTERRUPTED_STATUS)) from None
        except Exception as exc:
            _close_bars()
            if multirun:
                traceback.print_exception(exc)
                sweep_jobs.record_failure(job, exc, user_error=False)
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
            sweep_jobs.report_sweep(sweep_jobs.read_jobs(failures_path))
            status = sweep_jobs.report_failures(failures_path, swept)
            os.environ.pop(sweep_jobs.JOBS_ENV, None)
            sweep_jobs.remove_records_dir(failures_path)
    if failures_path is not None and status:
        raise SystemExit(status)
