"""The `snnx` entrypoint: `snnx <stage> key=value …`.

The stage word is popped and handed to one ``@hydra.main`` app as
``stage=<stage>``, so multirun (-m), launchers, ``--cfg job``, ``--help`` and
``hydra.run.dir=`` keep working. User errors (SnnxError, and config errors
Hydra raises while composing) end in one paragraph on stderr and exit status 2,
without a traceback unless ``debug=true``.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import NoReturn

from snnx.config import STAGES, group_options
from snnx.errors import SnnxError

def usage() -> str:
    lines = [
        "usage: snnx <stage> [key=value ...] [-m] [--cfg job] [--help]   |   snnx --version",
        "",
        "stages:",
    ]
    lines += [f"  {name:<10} {text}" for name, (text, _groups) in STAGES.items()]
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
        "  snnx clean                                 # free the artifact cache (all=true: results too)",
        "",
        "`snnx <stage> [key=value ...] --help` lists the keys that stage and the chosen options read,",
        "with type, value, default and doc; `--hydra-help` shows Hydra's own flags.",
    ]
    return "\n".join(lines)


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"snnx: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["help"] and len(args) > 1:
        args = [*args[1:], "--help"]  # snnx help <stage> [overrides] = snnx <stage> [overrides] --help
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return
    if args[0] in ("-V", "--version"):
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"snnx {version('snnx')}")
        except PackageNotFoundError:  # a source tree on sys.path, never installed
            print("snnx (not installed: no version recorded)")
        return
    stage = args.pop(0)
    if stage == "clean":
        clean_command(args)
        return
    if stage not in STAGES:
        if "=" in stage or stage.startswith("-"):
            hint = f" Put the stage first, e.g. `snnx run {' '.join([stage, *args])}`."
        else:
            close = difflib.get_close_matches(stage, list(STAGES), n=1)
            hint = f" Did you mean `snnx {close[0]}`?" if close else ""
        fail(f"unknown stage '{stage}'. The first word must be a stage: {', '.join(STAGES)}.{hint}")

    if any(a in ("--help", "-h") for a in args):
        # OmegaConf and Hydra load only for a stage's help or run: `snnx`, `snnx --help` and a typo answer at once.
        from snnx.help import describe

        try:
            print(describe(stage, [a for a in args if a not in ("--help", "-h") and not a.startswith("-")]))
        except SnnxError as exc:
            fail(str(exc), exc.exit_code)
        return

    # Hydra loads only when a stage runs: `snnx`, `snnx --help` and a mistyped stage answer without it.
    from snnx.app import launch

    launch(stage, args)


def clean_command(args: list[str]) -> None:
    """`snnx clean …`: no Hydra and no torch, it only reads and removes folders."""
    from snnx import clean  # only this stage needs it (start-up time of every other command)

    if any(a in ("--help", "-h") for a in args):
        print(clean.USAGE)
        return
    try:
        options = clean.parse(args)
        clean.clean(options["root"], everything=options["everything"], dry_run=options["dry_run"])
    except SnnxError as exc:
        fail(str(exc), exc.exit_code)


if __name__ == "__main__":
    main()
