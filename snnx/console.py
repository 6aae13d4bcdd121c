"""One rich console for the whole program (stdout), and a log helper."""

from __future__ import annotations

import logging

from rich.console import Console

console = Console(highlight=False)
_log = logging.getLogger("snnx")


def log(message: str) -> None:
    console.print(message, soft_wrap=True)
    _log.info(message)
