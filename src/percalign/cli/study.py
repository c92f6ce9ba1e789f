"""``percalign study run study.toml`` and ``percalign report STUDY``."""

from __future__ import annotations

import argparse
from pathlib import Path

from percalign.cli._console import err, inversion_progress, out


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="run a whole study from its spec (study.toml)")
    cmds = p.add_subparsers(dest="study_command", metavar="COMMAND", required=True)
    r = cmds.add_parser(
        "run",
        help="train, invert, judge, build the survey, score, trust and report",
        description="Run every step of the study that is not done yet; a re-run skips what "
        "is done and redoes what a changed setting touches.",
    )
    r.add_argument("spec", type=Path, help="the study spec (see docs/study.md)")
    r.add_argument("--out", type=Path, default=None, help="study folder (default: the spec's)")
    r.add_argument("--backend", default="local", help="local (default)")
    r.set_defaults(run=_run)
    q = sub.add_parser("report", help="write the HTML report of a study folder")
    q.add_argument("study", type=Path, help="a folder made by `percalign study run`")
    q.set_defaults(run=_report)


def _run(args: argparse.Namespace) -> int:
    from percalign.errors import ConfigError
    from percalign.study.pipeline import run_study
    from percalign.study.spec import load_spec

    spec = load_spec(args.spec)
    if args.backend != "local":
        raise ConfigError(f"Unknown --backend {args.backend!r}; use local.")
    with inversion_progress("invert") as progress:
        pipeline = run_study(spec, args.out, log=err.print, progress=progress)
    done = pipeline.executed
    out.print(
        f"Study {spec.study.name}: ran {len(done)} step(s)"
        + (f" ({', '.join(done)})" if done else " (everything was already done)")
    )
    out.print(f"Report: {pipeline.folder / 'report' / 'index.html'}")
    if spec.survey.enabled:
        out.print(
            f"Serve the survey to people: percalign survey serve {pipeline.folder / 'survey'}"
        )
    return 0


def _report(args: argparse.Namespace) -> int:
    from percalign.errors import MissingFileError
    from percalign.report import build_report

    if not (args.study / "scores" / "summary.json").is_file():
        raise MissingFileError(
            f"{str(args.study)!r} is not a scored study folder; run `percalign study run` first."
        )
    out.print(f"Report: {build_report(args.study)}")
    return 0
