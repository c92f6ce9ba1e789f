"""Rendering for the CLI: rich consoles and the inversion progress bar."""

from __future__ import annotations

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

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


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
