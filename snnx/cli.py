"""The `snnx` entrypoint: `snnx <stage> key=value …`.

The stage word is popped and handed to one ``@hydra.main`` app as
``stage=<stage>``, so multirun (-m), launchers, ``--cfg job``, ``--help`` and
``hydra.run.dir=`` keep working. User errors (SnnxError, and config errors
Hydra raises while composing) end in one paragraph on stderr and exit status 2,
without a traceback unless ``debug=true``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

STAGES = {
    "train": "train the ANN (or reuse it from the artifact cache)",
    "calibrate": "record per-layer / per-channel activation statistics (thresholds)",
    "convert": "build the spiking network from the ANN and thresholds",
    "simulate": "simulate the SNN over sim.T, write results.csv and layers.csv",
    "run": "train → calibrate → convert → simulate in one process",
    "table": "aggregate results.csv files into a paper-style table and plot",
    "doctor": "say why the SNN falls short, layer by layer (dead layers, θ, BN, chance), write doctor.csv",
}


def config_dir() -> Path:
    """conf/ of a source checkout, else the copy shipped as the package snnx.conf."""
    here = Path(__file__).resolve().parent
    source = here.parent / "conf"
    if (source / "config.yaml").is_file():
        return source
    from importlib.resources import files

    return Path(str(files("snnx.conf")))


def group_options() -> dict[str, list[str]]:
    root = config_dir()
    from snnx.config import GROUPS

    return {
        group: sorted(p.stem for p in (root / group).glob("*.yaml")) for group in GROUPS
    }


def usage() -> str:
    lines = [
        "usage: snnx <stage> [key=value ...] [-m] [--cfg job] [--help]",
        "",
        "stages:",
    ]
    lines += [f"  {name:<10} {text}" for name, text in STAGES.items()]
    lines += ["", "config groups (choose with group=option):"]
    for group, options in group_options().items():
        lines.append(f"  {group:<11} {', '.join(options) if options else '(none yet)'}")
    lines += [
        "",
        "examples:",
        "  snnx run                                   # embedded default: mnist5k, LeNet, QCFS",
        "  snnx run act=relu convert=maxnorm 'sim.T=[8,32,128]'",
        "  snnx run -m act.L=2,4,8                    # multirun sweep",
        "  snnx run --cfg job                         # print the composed config",
        "  snnx table                                 # aggregate every results.csv",
        "",
        "`snnx <stage> --help` shows Hydra's help with the composed defaults.",
    ]
    return "\n".join(lines)


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"snnx: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return
    stage = args.pop(0)
    if stage not in STAGES:
        import difflib

        if "=" in stage or stage.startswith("-"):
            hint = f" Put the stage first, e.g. `snnx run {' '.join([stage, *args])}`."
        else:
            close = difflib.get_close_matches(stage, list(STAGES), n=1)
            hint = f" Did you mean `snnx {close[0]}`?" if close else ""
        fail(f"unknown stage '{stage}'. The first word must be a stage: {', '.join(STAGES)}.{hint}")

    from snnx.app import launch

    launch(stage, args)


if __name__ == "__main__":
    main()
