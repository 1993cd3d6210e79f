"""Progress of a long run: a rich progress bar on a terminal, plain log lines otherwise.

A scheduler under systemd or cron writes to a log file, where a progress bar is noise; a person
running ``metricstore jobs run`` in a terminal wants to see it move. :func:`progress` picks one.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

log = logging.getLogger("metricstore.jobs")


class Progress(Protocol):
    def advance(self, what: str) -> None:
        """One more input done; ``what`` says what happened to it."""


class _Lines:
    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0

    def advance(self, what: str) -> None:
        self.done += 1
        log.info("%s: %d/%d %s", self.label, self.done, self.total, what)


class _Bar:
    def __init__(self, bar: object, task: object) -> None:
        self.bar, self.task = bar, task

    def advance(self, what: str) -> None:
        self.bar.update(self.task, advance=1, description=what[:60])  # type: ignore[attr-defined]


@contextmanager
def progress(label: str, total: int, *, terminal: bool | None = None) -> Iterator[Progress]:
    """Report progress over ``total`` inputs.

    Args:
        label: what is running (the job's name).
        total: how many inputs.
        terminal: force the bar (True) or log lines (False); default: whether stderr is a terminal.
    """
    tty = sys.stderr.isatty() if terminal is None else terminal
    if not tty or total <= 1:
        yield _Lines(label, total)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

    with RichProgress(TextColumn(f"[bold]{label}[/bold]"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TextColumn("{task.description}"), transient=False,
                      console=Console(stderr=True)) as bar:
        yield _Bar(bar, bar.add_task("", total=total))
