"""Progress of long commands: rich bars with counts, elapsed time and ETA on a terminal; plain short lines (and no
bars) when the output goes to a file or a pipe, so CI logs stay short.

One :class:`Bars` per command, opened with :func:`progress_bars`; code that does the work takes callbacks (or a
:class:`Bars`) and never sets up rich itself.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable, Iterator


def interactive() -> bool:
    """True when standard output is a terminal rich can draw on (not a file, a pipe or ``TERM=dumb``)."""
    from rich.console import Console

    return Console(file=sys.stdout).is_interactive


class Bars:
    """Progress bars of one command; with no live display every bar call does nothing and :meth:`line` prints."""

    def __init__(self, progress: Any = None) -> None:
        self._progress = progress

    @property
    def live(self) -> bool:
        """True when bars are drawn."""
        return self._progress is not None

    def add(self, description: str, total: float | None = None, status: str = "") -> int:
        """A new bar of ``total`` units (None: unknown, no ETA); returns its id."""
        if self._progress is None:
            return -1
        return int(self._progress.add_task(description, total=total, status=status))

    def update(self, bar: int, *, advance: float = 0.0, completed: float | None = None, total: float | None = None,
               status: str | None = None) -> None:
        """Move bar ``bar`` by ``advance`` units or to ``completed``; ``status`` replaces its text column."""
        if self._progress is None:
            return
        fields: dict[str, Any] = {"advance": advance} if completed is None else {"completed": completed}
        if total is not None:
            fields["total"] = total
        if status is not None:
            fields["status"] = status
        self._progress.update(bar, **fields)

    def counter(self, description: str, line_every: int = 0) -> Callable[[int, int, str], None]:
        """A ``(done, total, status)`` callback for work that reports counts: it moves a bar of its own (added at the
        first call); with no bars drawn it prints a line when the work is done and every ``line_every`` units."""
        bar, printed = [-2], [0]

        def report(done: int, total: int, status: str = "") -> None:
            if self.live:
                if bar[0] == -2:
                    bar[0] = self.add(description, total)
                self.update(bar[0], completed=done, total=total, status=status)
            elif done >= total or (line_every and done - printed[0] >= line_every):
                printed[0] = done
                self.line(f"{description}: {done}/{total}" + (f", {status}" if status else ""))

        return report

    def line(self, text: str) -> None:
        """A milestone for logs: printed (flushed) when no bars are drawn; with bars, the bars already show it."""
        if self._progress is None:
            print(text, flush=True)


QUIET = Bars()  # no bars, milestone lines printed: what non-interactive runs and library callers get


@contextlib.contextmanager
def progress_bars(enabled: bool | None = None, console: Any = None) -> Iterator[Bars]:
    """Bars for the duration of the block: drawn when ``enabled`` (default: :func:`interactive`), on ``console``
    (default: standard output); finished bars stay on screen."""
    if enabled is None:
        enabled = console.is_interactive if console is not None else interactive()
    if not enabled:
        yield QUIET
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    columns = (TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        yield Bars(progress)
