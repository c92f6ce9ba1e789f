"""``percalign study run study.toml`` and ``percalign report STUDY``."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from percalign.cli._console import Lines, err, out, step_log
from percalign.cli.options import DEVICE_HELP, add_device, add_output, add_set_option

if TYPE_CHECKING:
    from percalign.execution.backends import TaskProgress

BACKENDS = ("local", "ray")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="run a whole study from its spec (study.toml)")
    cmds = p.add_subparsers(dest="study_command", metavar="COMMAND", required=True)
    r = cmds.add_parser(
        "run",
        help="train, invert, judge, build the survey, score, trust and report",
        description="Run every step of the study that is not done yet; a re-run skips what "
        "is done and redoes what a changed setting touches. The invert and judge steps run "
        "as tasks in this process (--backend local) or on Ray (--backend ray).",
    )
    r.add_argument("spec", type=Path, help="the study spec (see docs/study.md)")
    add_output(r, help="study folder (default: the spec's)", required=False, overwrite=False)
    r.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="where the invert and judge tasks run: local (this process, default) or ray "
        "(needs pip install 'percalign[ray]')",
    )
    r.add_argument(
        "--address",
        default=None,
        help="the Ray cluster: auto (started on this machine with `ray start --head`), "
        "HOST:PORT or ray://HOST:10001; default: start a local Ray instance",
    )
    add_device(
        r,
        default=None,
        help=f"{DEVICE_HELP}, for every model step (default: the spec's [study] device)",
    )
    add_set_option(r)
    r.set_defaults(run=_run)
    c = cmds.add_parser(
        "check",
        help="check every value of a study spec, as `study run` does before any work",
        description="Refuse, in one line, any value of the spec that a step of `study run` "
        "would refuse (unknown models, layers or judges, zoo names and recipe options of the "
        "models to train, a survey plan the study's targets cannot fill...); train nothing.",
    )
    c.add_argument("spec", type=Path, help="the study spec (see docs/study.md)")
    add_set_option(c)
    c.set_defaults(run=_check)
    d = cmds.add_parser(
        "docs",
        help="print the settings reference of docs/study.md (generated from the settings)",
    )
    d.add_argument(
        "--write",
        type=Path,
        default=None,
        metavar="PAGE",
        help="put it between the reference markers of PAGE (docs/study.md) instead",
    )
    d.set_defaults(run=_docs)
    q = sub.add_parser("report", help="write the HTML report of a study folder")
    q.add_argument("study", type=Path, help="a folder made by `percalign study run`")
    q.set_defaults(run=_report)


@contextmanager
def study_progress() -> Iterator[tuple[Callable[[Any], None], Callable[[TaskProgress], None]]]:
    """Progress bars: tasks done / total with ETA, and inversion steps run in this process.

    Inversions run in this process with the local backend and in the trust analysis. Yields
    the engine's progress callback and the task callback. When the output is not a terminal,
    both write plain lines instead (:class:`~percalign.cli._console.Lines`).
    """
    if not err.is_terminal:
        steps, tasks = Lines("inversion steps"), dict[str, Lines]()

        def task_line(p: TaskProgress) -> None:
            lines = tasks.setdefault(p.step, Lines(f"{p.step} tasks"))
            lines.update(p.done, p.total, info=p.label)

        def step_line(p: Any) -> None:
            info = f"batch {p.batch + 1}/{p.batches}, dist {p.mean_distance:.4f}"
            steps.update(p.steps_done, p.steps_total, info=info)

        yield step_line, task_line
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=err,
        speed_estimate_period=24 * 3600.0,  # tasks may take hours: average over all of them
    )
    rows: dict[str, Any] = {}

    def on_task(p: TaskProgress) -> None:
        if p.step not in rows:
            rows[p.step] = bar.add_task(f"{p.step} tasks", total=p.total, info="")
        bar.update(rows[p.step], completed=p.done, total=p.total, info=p.label)

    def on_step(p: Any) -> None:
        if "steps" not in rows:
            rows["steps"] = bar.add_task("inversion steps", total=p.steps_total, info="")
        bar.update(
            rows["steps"],
            completed=p.steps_done,
            total=p.steps_total,
            info=f"batch {p.batch + 1}/{p.batches} dist {p.mean_distance:.4f}",
        )

    with bar:
        yield on_step, on_task


def _run(args: argparse.Namespace) -> int:
    from percalign.study.pipeline import run_study
    from percalign.study.spec import load_spec

    spec = load_spec(args.spec, args.overrides)
    if args.device is not None:
        from dataclasses import replace

        from percalign._device import resolve_device

        resolve_device(args.device)  # a missing device fails before any work
        spec = replace(spec, study=replace(spec.study, device=args.device))
    with study_progress() as (progress, on_task):
        pipeline = run_study(
            spec,
            args.out,
            log=step_log(),
            progress=progress,
            backend=args.backend,
            address=args.address,
            on_task=on_task,
        )
    done = pipeline.executed
    out.print(
        f"Study {spec.study.name}: ran {len(done)} step(s)"
        + (f" ({', '.join(done)})" if done else " (everything was already done)")
    )
    out.print(f"Report: {pipeline.folder / 'report' / 'index.html'}")
    if spec.survey.enabled:
        out.print(
            "To ask people, serve a fresh copy of the survey:\n" + people_hint(pipeline.folder)
        )
    return 0


def _check(args: argparse.Namespace) -> int:
    from percalign.study.preflight import check_study
    from percalign.study.spec import load_spec

    spec = load_spec(args.spec, args.overrides)
    check_study(spec)
    out.print(f"{args.spec}: every value is valid ({len(spec.models)} model(s)).")
    return 0


def people_hint(folder: Path) -> str:
    """The commands that serve a study's survey to people: a fresh copy, since the study's
    own survey may hold simulated participants' answers, with the researcher's texts."""
    survey = (Path(folder) / "survey").resolve()
    people = (Path(folder) / "survey-people").resolve()
    return (
        f"  percalign survey copy {survey} {people} --texts YOUR_TEXTS.toml\n"
        f"  percalign survey serve {people} --prolific-study ID --no-plain-links ..."
    )


def _docs(args: argparse.Namespace) -> int:
    from percalign.study.reference import reference_text, write_reference

    if args.write is None:
        out.print(reference_text(), end="", markup=False, highlight=False, soft_wrap=True)
        return 0
    changed = write_reference(args.write)
    out.print(f"{args.write}: {'updated' if changed else 'already up to date'}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from percalign.errors import MissingFileError
    from percalign.report import build_report
    from percalign.study.spec import load_spec

    if not (args.study / "scores" / "summary.json").is_file():
        raise MissingFileError(
            f"{str(args.study)!r} is not a scored study folder; run `percalign study run` first."
        )
    out.print(f"Report: {build_report(args.study, load_spec(args.study / 'study.toml'))}")
    return 0
