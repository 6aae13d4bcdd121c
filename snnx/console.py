"""One rich console for the whole program (stdout), and a log helper."""

from __future__ import annotations

import logging
import os

from rich.console import Console
from rich.markup import escape

console = Console(highlight=False)
_log = logging.getLogger("snnx")


# torchrun's processes other than rank 0 train along silently (snnx.distributed): one log, not one per process.
_HELPER = os.environ.get("RANK", "0") not in ("", "0") and os.environ.get("WORLD_SIZE", "1") not in ("", "1")


# A multirun job's label ("[job 2/3 act.L=8]"), set once per job by the app; with ``prefix`` every log line
# starts with it (parallel jobs interleave their lines).
_job = {"label": "", "prefix": False}


def set_job(label: str, prefix: bool = False) -> None:
    _job.update(label=label, prefix=prefix)


def job_label() -> str:
    """The running multirun job's label, or "" outside a multirun."""
    return _job["label"]


def in_parallel_job() -> bool:
    """Whether this is a job of a parallel multirun (its lines interleave with the other jobs')."""
    return bool(_job["prefix"] and _job["label"])


def log(message: str) -> None:
    if _HELPER:
        return
    shown = f"{escape(_job['label'])} {message}" if _job["prefix"] and _job["label"] else message
    console.print(shown, soft_wrap=True)
    _log.info(message)
