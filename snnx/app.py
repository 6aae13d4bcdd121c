"""The Hydra application behind the CLI: composition, checks, stage dispatch."""

from __future__ import annotations

import itertools
import sys
import traceback

from omegaconf import DictConfig, OmegaConf

from snnx.errors import ConfigError, SnnxError

# Composing a multirun's every combination up front is cheap (tens of ms each);
# past this many we check the first combinations only.
MAX_PRECHECKED_JOBS = 256


def _explain_hydra_error(exc: Exception, overrides: list[str]) -> str:
    """Turn Hydra/OmegaConf composition errors into one paragraph with a fix."""
    from hydra.errors import ConfigCompositionException, MissingConfigException
    from omegaconf.errors import ConfigKeyError, ValidationError

    from snnx.cli import group_options

    text = str(exc).strip().replace("\n", " ")
    if isinstance(exc, MissingConfigException) or "Could not find" in text:
        options = group_options()
        for group, names in options.items():
            if f"'{group}/" in text or f"{group}/" in text:
                bad = text.split(f"{group}/")[1].split("'")[0]
                return (f"{group}={bad}: no such option in config group '{group}'. "
                        f"Options: {', '.join(names)}. Pick one of them, e.g. {group}={names[0] if names else '...'}.")
        return f"{text} Check the group=option overrides; `snnx --help` lists the options."
    cause = exc.__cause__ or exc
    if isinstance(cause, (ConfigKeyError, ValidationError)) or isinstance(exc, ConfigCompositionException):
        inner = str(cause).strip().splitlines()
        first = inner[0] if inner else text
        full_key = next((ln.split(":", 1)[1].strip() for ln in inner if ln.strip().startswith("full_key:")), None)
        key = full_key or "config"
        if "not in struct" in first or "not in" in first and "Key" in first:
            return (f"{key}: unknown key ({first}). Check the spelling; `snnx <stage> --cfg job` "
                    f"prints every key the config has.")
        return f"{key}: {first}. Fix the value on the command line or in the preset."
    return f"{text}"


def _sweep_combinations(overrides: list[str]) -> list[list[str]]:
    """Expand a multirun's sweep overrides (a=1,2 b=x,y) into the job override lists."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = []
    for ov in parsed:
        if ov.is_sweep_override():
            values = [f"{ov.get_key_element()}={v}" for v in ov.sweep_string_iterator()]
        else:
            values = [ov.input_line]
        choices.append(values)
    combos = itertools.product(*choices)
    return [list(c) for c in itertools.islice(combos, MAX_PRECHECKED_JOBS)]


def compose(stage: str, overrides: list[str]) -> DictConfig:
    """Compose the config the way the app will (for checks, tests and the API)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from snnx.cli import config_dir
    from snnx.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=[f"stage={stage}", *overrides])


def precheck(stage: str, args: list[str]) -> None:
    """Compose and check every job before any work starts: a typo fails in a second."""
    from snnx.validate import validate

    multirun = any(a in ("-m", "--multirun") for a in args)
    overrides = [a for a in args if not a.startswith("-") and not a.startswith("hydra")]
    jobs = _sweep_combinations(overrides) if multirun else [overrides]
    for job in jobs:
        try:
            cfg = compose(stage, job)
        except SnnxError:
            raise
        except Exception as exc:  # Hydra and OmegaConf composition errors
            raise ConfigError(_explain_hydra_error(exc, job)) from exc
        validate(cfg, check_paths=True)


def report_error(exc: SnnxError, debug: bool) -> None:
    if debug:
        traceback.print_exception(exc)
    print(f"snnx: error: {exc}", file=sys.stderr)


def run_stage(cfg: DictConfig) -> dict:
    from snnx import stages
    from snnx.validate import validate

    validate(cfg, check_paths=True)
    return stages.run_stage(cfg)


def launch(stage: str, args: list[str]) -> None:
    import hydra

    from snnx.cli import config_dir
    from snnx.config import register_configs

    register_configs()
    debug = any(a in ("debug=true", "debug=True") for a in args)
    informational = any(a in ("--help", "-h", "--cfg", "-c", "--info", "--hydra-help") or a.startswith("--cfg")
                        for a in args)
    if not informational:
        try:
            precheck(stage, args)
        except SnnxError as exc:
            report_error(exc, debug)
            raise SystemExit(exc.exit_code)

    multirun = any(a in ("-m", "--multirun") for a in args)

    @hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
    def app(cfg: DictConfig):
        try:
            return run_stage(cfg)
        except SnnxError as exc:
            report_error(exc, bool(cfg.get("debug", False)))
            if multirun:
                # One failing job must not stop the others; Hydra records the failure.
                raise
            raise SystemExit(exc.exit_code)

    sys.argv = ["snnx", f"stage={stage}", *args]
    app()
