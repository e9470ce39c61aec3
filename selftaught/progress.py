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
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second in the phase's own unit (samples, steps, problems), and generated
    or trained tokens per second where the phase reports them."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        parts = [f"{speed:,.1f} {task.fields['unit']}/s"] if speed else []
        elapsed = task.elapsed or 0.0
        if task.fields["tokens"] and elapsed > 0:
            parts.append(f"{task.fields['tokens'] / elapsed:,.0f} tokens/s")
        return Text("  ".join(parts), style="progress.data.speed")


class Reporter:
    def __init__(self, quiet: bool = False, console: Console | None = None):
        self.quiet = quiet
        self.console = console or Console(stderr=True)

    def line(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)  # one line, whatever the width

    @contextmanager
    def phase(self, description: str, total: int, unit: str = "it") -> Iterator[PhaseBar]:
        """A bar for one phase of ``total`` items of ``unit`` (its rate is shown per second)."""
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
            RateColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=False,
        )
        with progress:
            task = progress.add_task(description, total=total, info="", unit=unit, tokens=0)
            yield PhaseBar(progress, task)


class PhaseBar:
    def __init__(self, progress: Progress | None, task):
        self._progress, self._task = progress, task

    def advance(self, n: int = 1, info: str | None = None, tokens: int = 0) -> None:
        """``n`` more items done; ``info`` replaces the text at the end (e.g. the loss);
        ``tokens`` adds to the phase's token count, shown as tokens/s."""
        if self._progress is None:
            return
        fields = {"info": info} if info is not None else {}
        if tokens:
            fields["tokens"] = self._progress.tasks[self._task].fields["tokens"] + tokens
        self._progress.update(self._task, advance=n, **fields)
