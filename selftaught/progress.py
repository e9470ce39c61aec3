"""What a person watching the run sees: a rich progress bar per phase, one summary line
per iteration; in quiet mode only the summary lines (for CI logs)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Reporter:
    def __init__(self, quiet: bool = False, console: Console | None = None):
        self.quiet = quiet
        self.console = console or Console(stderr=True)

    def line(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)  # one line, whatever the width

    @contextmanager
    def phase(self, description: str, total: int) -> Iterator[PhaseBar]:
        if self.quiet:
            yield PhaseBar(None, None)
            return
        progress = Progress(
            TextColumn("[bold]{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=False,
        )
        with progress:
            task = progress.add_task(description, total=total, info="")
            yield PhaseBar(progress, task)


class PhaseBar:
    def __init__(self, progress: Progress | None, task):
        self._progress, self._task = progress, task

    def advance(self, n: int = 1, info: str | None = None) -> None:
        if self._progress is None:
            return
        fields = {"info": info} if info is not None else {}
        self._progress.update(self._task, advance=n, **fields)
