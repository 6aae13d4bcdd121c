"""Progress bars over batches (training, calibration, simulation): :func:`track`.

A bar shows the batch count, the rate and the time left, and disappears when
its loop ends (the per-epoch and per-stage log lines stay the record). It is
shown only where someone watches: ``enabled`` (the config's ``progress``
key), an interactive terminal, no ``CI`` variable in the environment (other
than ``CI=0`` / ``CI=false``), the main process of a torchrun group, and not
a multirun job running in parallel with others. Otherwise the items pass
straight through: tracking never changes what is iterated, nor its order.

A bar whose loop ends by an exception is erased when its iterator is dropped,
which can be later than the error message (a traceback keeps the frame
holding it); :func:`close_all` erases every open bar first, so a message
printed after it is not overdrawn.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator, TypeVar

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

from snnx import console as _console

T = TypeVar("T")

# The bars now drawn, innermost last: what close_all() erases.
_OPEN: list[Progress] = []


def shown(enabled: bool = True, console: Console | None = None) -> bool:
    """Whether a bar would be drawn on ``console`` (default: snnx's stdout console)."""
    console = console or _console.console
    # Parallel multirun jobs (joblib, whose log lines carry a job prefix) share one terminal: their bars
    # would overdraw each other.
    parallel = _console.in_parallel_job()
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false")
    return bool(enabled) and not _console._HELPER and not parallel and not ci and console.is_terminal


class _Rate(ProgressColumn):
    """Items per second (or seconds per item when slower than one a second)."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed:
            return Text(f"– {self.unit}/s", style="progress.data.speed")
        text = f"{speed:.1f} {self.unit}/s" if speed >= 1 else f"{1 / speed:.1f} s/{self.unit}"
        return Text(text, style="progress.data.speed")


def track(iterable: Iterable[T], *, total: int | None = None, description: str = "", unit: str = "batch",
          enabled: bool = True, console: Console | None = None, completed: int = 0) -> Iterator[T]:
    """Yield the items of ``iterable``, drawing a bar while they are consumed (see the module doc).

    ``total``: the number of items (default: ``len(iterable)`` where it has one; without it the bar shows
    the count and the rate only). ``console``: where to draw (default: snnx's stdout console).
    ``completed``: items done before ``iterable``'s first (a resumed epoch's bar starts there).
    """
    console = console or _console.console
    if not shown(enabled, console):
        yield from iterable
        return
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _Rate(unit),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    # transient: the finished bar is erased, so the log the run leaves reads as without bars.
    with Progress(*columns, console=console, transient=True) as progress:
        _OPEN.append(progress)
        try:
            task = progress.add_task(description, total=total, completed=completed)
            for item in iterable:
                yield item
                progress.advance(task)
        finally:
            if progress in _OPEN:  # close_all() may have taken it already
                _OPEN.remove(progress)


def close_all() -> None:
    """Erase every bar still drawn (before an error or interrupt message; see the module doc)."""
    while _OPEN:
        _OPEN.pop().stop()
