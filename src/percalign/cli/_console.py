"""Rendering for the CLI: rich consoles, the step log and the progress bars.

On a terminal, progress is a live bar. Anywhere else (a log file, a pipe, CI) a live bar
shows nothing until it ends, so progress is written as plain lines instead: when a task
starts, at most every :data:`EVERY_S` seconds while it runs, and when it ends, each with the
time elapsed and the time left.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from percalign.inversion import Progress as InversionProgress

# Piped output (logs, CI) gets a wide fixed width instead of rich's default of 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 140)

#: Seconds between two progress lines when the output is not a terminal.
EVERY_S = 30.0


def clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a duration in seconds.

    >>> clock(5.2), clock(83), clock(3725)
    ('0:05', '1:23', '1:02:05')
    """
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def step_log(console: Console | None = None) -> Callable[[str], None]:
    """A log for a long command's steps: each line starts with the time since the log was
    made (``[1:23] Step judge: running``), so any output shows where the time goes."""
    started = time.monotonic()
    target = console or err

    def log(line: str) -> None:
        target.print(f"[{clock(time.monotonic() - started)}] {line}")

    return log


class Lines:
    """Progress of one task as plain lines on ``console``: the first update, then one at most
    every ``every_s`` seconds, and the last (done == total); with the elapsed time and ETA."""

    def __init__(self, label: str, console: Console | None = None, every_s: float = EVERY_S):
        self.label, self.console, self.every_s = label, console or err, every_s
        self.started = time.monotonic()
        self.last: float | None = None

    def update(self, done: int, total: int | None, unit: str = "", info: str = "") -> None:
        """Report ``done`` of ``total`` (``unit`` after the count, ``info`` after that)."""
        now = time.monotonic()
        finished = total is not None and done >= total
        if self.last is not None and not finished and now - self.last < self.every_s:
            return
        self.last = now
        elapsed = now - self.started
        count = f"{done}/{total}" if total is not None else str(done)
        line = f"{self.label}: {count}{' ' + unit if unit else ''}"
        line += f", {info}" if info else ""
        line += f"; {clock(elapsed)} elapsed"
        if total and 0 < done < total:
            line += f", ETA {clock(elapsed * (total - done) / done)}"
        self.console.print(line)


@contextmanager
def inversion_progress(label: str) -> Iterator[Callable[[InversionProgress], None]]:
    """A progress bar (steps, ETA, current mean distance) fed by the engine's callback; plain
    lines (:class:`Lines`) when the output is not a terminal."""
    if not err.is_terminal:
        lines = Lines(label)

        def report(p: InversionProgress) -> None:
            info = f"batch {p.batch + 1}/{p.batches}, dist {p.mean_distance:.4f}"
            lines.update(p.steps_done, p.steps_total, "steps", info)

        yield report
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("batch {task.fields[batch]}"),
        TextColumn("dist {task.fields[dist]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )
    with bar:
        task = bar.add_task(label, total=None, batch="-", dist="-")

        def update(p: InversionProgress) -> None:
            bar.update(
                task,
                total=p.steps_total,
                completed=p.steps_done,
                batch=f"{p.batch + 1}/{p.batches}",
                dist=f"{p.mean_distance:.4f}",
            )

        yield update
