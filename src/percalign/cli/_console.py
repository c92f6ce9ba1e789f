"""Rendering for the CLI: rich consoles and the inversion progress bar."""

from __future__ import annotations

import sys
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


@contextmanager
def inversion_progress(label: str) -> Iterator[Callable[[InversionProgress], None]]:
    """A progress bar (steps, ETA, current mean distance) fed by the engine's callback."""
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
