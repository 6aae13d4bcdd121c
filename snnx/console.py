"""One rich console for the whole program (stdout), and a log helper."""

from __future__ import annotations

import logging
import os

from rich.console import Console

console = Console(highlight=False)
_log = logging.getLogger("snnx")


# torchrun's processes other than rank 0 train along silently (snnx.distributed): one log, not one per process.
_HELPER = os.environ.get("RANK", "0") not in ("", "0") and os.environ.get("WORLD_SIZE", "1") not in ("", "1")


def log(message: str) -> None:
    if _HELPER:
        return
    console.print(message, soft_wrap=True)
    _log.info(message)
